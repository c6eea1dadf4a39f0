/**
 * The one form a node may announce as its listener in a signed log (mix and provider descriptors,
 * storage servers): a `ws://` or `wss://` URL with an explicit port, at most 200 characters. An
 * announcement is a stranger's input: anything else makes it unusable, never a dial to a guess.
 */
export const MAX_ANNOUNCED_ENDPOINT = 200;

export function isAnnouncedEndpoint(s: string): boolean {
  if (s.length > MAX_ANNOUNCED_ENDPOINT) return false;
  try {
    const u = new URL(s);
    return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.port !== '';
  } catch {
    return false;
  }
}
