/**
 * How group byte strings travel between nodes: as entries of the sender's own signed feed,
 * sealed to one recipient (the contact-card construction of ../contact-card.ts, with a fresh
 * nonce per entry so that entries to one recipient cannot be linked by their tag):
 *
 *   header  { type: "deaddrop/group", app: "deaddrop" }
 *   body    version:u8=1 | nonce(16) | tag(16) | XChaCha20-Poly1305(K, random, kind:u8 | bytes, ad = author || nonce || tag)
 *   K       = HKDF-SHA256(X25519(author, recipient), salt "deaddrop/group-entry/v1", info = both Ed25519 keys sorted)
 *   tag     = HMAC-SHA256(K, nonce)[0..16)
 *
 * Feeds replicate through contacts (a contact relays the feeds it follows), over a direct session
 * or, with none, through the mixnet providers (../mixnet/feed-relay.ts), so the entry reaches the
 * recipient whenever a path of following nodes exists, later if it is offline.
 * Readers of the feed see that the author wrote an entry of some size, not to whom or what.
 */
import { concatBytes, equalBytes } from '../../util/bytes.js';
import { aeadOpen, aeadSeal, hkdf, hmacSha256, randomBytes, utf8, wipe } from '../crypto.js';
import type { NodeIdentity } from '../identity.js';
import type { EntryDraft, LogEntry } from '../log/codec.js';

export const GROUP_ENTRY_TYPE = 'deaddrop/group';
const VERSION = 1;
const NONCE = 16;
const TAG = 16;
const SALT = utf8('deaddrop/group-entry/v1');
const KINDS = ['op', 'welcome', 'key', 'message', 'join'] as const;
export type CarriedKind = (typeof KINDS)[number];

/** Pairwise entry keys, cached per peer (hex) by the caller. */
export type EntryKeyCache = Map<string, Uint8Array>;

function entryKey(me: NodeIdentity, peer: Uint8Array, cache: EntryKeyCache): Uint8Array | null {
  const k = Buffer.from(peer).toString('hex');
  const hit = cache.get(k);
  if (hit) return hit;
  const shared = me.sharedSecret(peer);
  if (!shared) return null;
  const [lo, hi] = Buffer.compare(me.publicKey, peer) < 0 ? [me.publicKey, peer] : [peer, me.publicKey];
  const key = hkdf(shared, SALT, concatBytes(lo, hi), 32);
  wipe(shared);
  cache.set(k, key);
  return key;
}

/** One byte string for one recipient. */
export interface Carried {
  readonly to: Uint8Array;
  readonly kind: CarriedKind;
  readonly bytes: Uint8Array;
}

/** The entry draft carrying `out` to its recipient, or null for a recipient key that is not a point. */
export function groupEntryDraft(me: NodeIdentity, out: Carried, cache: EntryKeyCache): EntryDraft | null {
  const key = entryKey(me, out.to, cache);
  if (!key) return null;
  const nonce = randomBytes(NONCE);
  const tag = hmacSha256(key, nonce).subarray(0, TAG);
  const plain = concatBytes(Uint8Array.of(KINDS.indexOf(out.kind) + 1), out.bytes);
  const sealed = aeadSeal(key, plain, concatBytes(me.publicKey, nonce, tag));
  return { header: { type: GROUP_ENTRY_TYPE, app: 'deaddrop' }, body: concatBytes(Uint8Array.of(VERSION), nonce, tag, sealed) };
}

/** What an entry carries for us, or null (not a group entry, not for us, malformed). Never throws. */
export function readGroupEntry(me: NodeIdentity, entry: LogEntry, cache: EntryKeyCache): { kind: CarriedKind; bytes: Uint8Array } | null {
  try {
    if (entry.header.type !== GROUP_ENTRY_TYPE || equalBytes(entry.author, me.publicKey)) return null;
    const b = entry.body;
    if (b.length < 1 + NONCE + TAG + 24 + 16 + 1 || b[0] !== VERSION) return null;
    const key = entryKey(me, entry.author, cache);
    if (!key) return null;
    const nonce = b.subarray(1, 1 + NONCE);
    const tag = b.subarray(1 + NONCE, 1 + NONCE + TAG);
    if (!equalBytes(tag, hmacSha256(key, nonce).subarray(0, TAG))) return null;
    const plain = aeadOpen(key, b.subarray(1 + NONCE + TAG), concatBytes(entry.author, nonce, tag));
    if (!plain || plain.length < 1) return null;
    const kind = KINDS[plain[0]! - 1];
    return kind ? { kind, bytes: plain.subarray(1) } : null;
  } catch {
    return null;
  }
}
