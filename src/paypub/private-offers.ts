/**
 * Private-mode terms handed to strangers, bounded so that strangers cannot use them up.
 *
 * Anyone may ask a seller for terms (`POST /paypub/content/<id>/private`): each answer is a fresh
 * secret, a signed offer and a wrap, kept until the buyer funds the HTLC. Nothing in the request
 * costs the asker anything, so the seller makes *unfunded* terms cheap to lose instead:
 *
 * - they expire PENDING_TTL_MS after they were handed out;
 * - each source address holds at most MAX_PENDING_PER_SOURCE per sale: its next request
 *   replaces its own oldest;
 * - a sale holds at most MAX_PENDING per sale: the next request evicts the oldest terms of the
 *   source holding the most (terms from before a restart, whose source is not known, go first).
 *
 * Terms an HTLC pays (a pledge row: seen in a block or the mempool, or announced) are never
 * evicted, and do not count. A real buyer therefore always gets terms, however many strangers
 * asked before, and keeps them through a flood from other sources as long as they are funded
 * within the TTL; terms lost anyway are refunded by the HTLC's own CSV leaf, never lost money.
 * Sources live in memory only (IPv4 address, IPv6 /64): paypub.db never links a buyer's address
 * to a sale.
 */

/** Most unfunded terms one sale keeps. */
export const MAX_PENDING = 64;
/** Most unfunded terms one source address (IPv6: /64) holds per sale. */
export const MAX_PENDING_PER_SOURCE = 4;
/** Unfunded terms older than this are dropped (the buyer funds right after getting them). */
export const PENDING_TTL_MS = 60 * 60 * 1000;

/** Source of terms handed out before this process started. */
const UNKNOWN_SOURCE = '';

/** One unfunded offer as the policy sees it. */
export interface PendingOffer {
  readonly paymentHash: string;
  readonly createdAt: number;
  /** '' when not known (handed out before a restart). */
  readonly source: string;
}

/**
 * The source key of a remote address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64, which
 * one end host usually holds whole.
 */
export function sourceKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Which unfunded offers to drop before handing `source` one more (see the module header).
 * Pure: the caller deletes them. `pending` holds only unfunded offers of one sale.
 */
export function offersToEvict(pending: readonly PendingOffer[], source: string, now: number): string[] {
  const evict = new Set<string>();
  const live = pending.filter((o) => {
    if (now - o.createdAt > PENDING_TTL_MS) {
      evict.add(o.paymentHash);
      return false;
    }
    return true;
  });
  const bySource = new Map<string, PendingOffer[]>();
  for (const o of [...live].sort((a, b) => a.createdAt - b.createdAt)) bySource.set(o.source, [...(bySource.get(o.source) ?? []), o]);
  const take = (src: string): void => {
    const list = bySource.get(src);
    const oldest = list?.shift();
    if (!oldest) return;
    evict.add(oldest.paymentHash);
    if (list && list.length === 0) bySource.delete(src);
  };
  while ((bySource.get(source)?.length ?? 0) >= MAX_PENDING_PER_SOURCE) take(source);
  let count = [...bySource.values()].reduce((n, l) => n + l.length, 0);
  while (count >= MAX_PENDING) {
    take(heaviestSource(bySource));
    count--;
  }
  return [...evict];
}

/** The unknown source first, then the source holding the most (ties: the one with the oldest offer). */
function heaviestSource(bySource: ReadonlyMap<string, readonly PendingOffer[]>): string {
  if (bySource.has(UNKNOWN_SOURCE)) return UNKNOWN_SOURCE;
  let best = '';
  let bestLen = -1;
  let bestAge = Infinity;
  for (const [src, list] of bySource) {
    const age = list[0]?.createdAt ?? Infinity;
    if (list.length > bestLen || (list.length === bestLen && age < bestAge)) {
      best = src;
      bestLen = list.length;
      bestAge = age;
    }
  }
  return best;
}

/** Remembers, in memory only, which source each unfunded offer was handed to. */
export class OfferSources {
  readonly #byHash = new Map<string, string>();

  /** The policy's view of a sale's unfunded offers. */
  view(pending: readonly { paymentHash: string; createdAt: number }[]): PendingOffer[] {
    return pending.map((o) => ({ ...o, source: this.#byHash.get(o.paymentHash) ?? UNKNOWN_SOURCE }));
  }

  record(paymentHash: string, source: string): void {
    this.#byHash.set(paymentHash, source);
  }

  forget(paymentHash: string): void {
    this.#byHash.delete(paymentHash);
  }
}
