/**
 * Sender-key distribution (docs/protocol/groups.md section 6): a chain state sealed to one member.
 *
 *   header = version:u8=1 | group(32) | from(32) | to(32) | E(32)
 *   k      = HKDF-SHA256(X25519(e, To) || X25519(From, To), salt "deaddrop/group-key/v1", info = header)
 *   dist   = header | XChaCha20-Poly1305(k, random nonce, generation:u32 | index:u32 | chainKey(32), ad = header)
 *
 * The static-static term authenticates the sender to the recipient; the ephemeral term (one per
 * batch: one rotation's distributions share `e`) keeps what was sent closed to a later thief of
 * the sender's key. `openSenderKey` never throws: null for anything not sealed to us by `from`.
 */
import { concatBytes } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { aeadOpen, aeadSeal, ed25519PublicToX25519, hkdf, randomBytes, utf8, wipe, x25519, x25519Public } from '../crypto.js';
import type { NodeIdentity } from '../identity.js';
import type { ChainState } from './ratchet.js';

export const KEY_DIST_VERSION = 1;
export const KEY_DIST_HEADER_BYTES = 129;
const PLAIN_BYTES = 40;
/** header + nonce(24) + plain + tag(16) */
export const KEY_DIST_BYTES = KEY_DIST_HEADER_BYTES + 24 + PLAIN_BYTES + 16;
const SALT = utf8('deaddrop/group-key/v1');

/** Who sent a distribution to whom, readable without opening it. */
export interface KeyDistHeader {
  readonly group: Uint8Array;
  readonly from: Uint8Array;
  readonly to: Uint8Array;
}

function encodePlain(c: ChainState): Uint8Array {
  const out = new Uint8Array(PLAIN_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, c.generation);
  v.setUint32(4, c.index);
  out.set(c.chainKey, 8);
  return out;
}

/** Static-static X25519 secrets, cached per peer (hex) by the caller. */
export type PairCache = Map<string, Uint8Array>;

function staticSecret(me: NodeIdentity, peer: Uint8Array, cache: PairCache | undefined): Uint8Array | null {
  const k = Buffer.from(peer).toString('hex');
  const hit = cache?.get(k);
  if (hit) return hit;
  const s = me.sharedSecret(peer);
  if (s && cache) cache.set(k, s);
  return s;
}

/**
 * Seals `chain` to each recipient (Ed25519 node keys) with one ephemeral key for the batch.
 * RangeError for a recipient key that is not a valid point.
 */
export function sealSenderKeys(me: NodeIdentity, group: Uint8Array, chain: ChainState, recipients: readonly Uint8Array[], cache?: PairCache): Uint8Array[] {
  const e = randomBytes(32);
  const E = x25519Public(e);
  const plain = encodePlain(chain);
  try {
    return recipients.map((to) => {
      const X = ed25519PublicToX25519(to);
      const dhE = X ? x25519(e, X) : null;
      const dhS = staticSecret(me, to, cache);
      if (!dhE || !dhS) throw new RangeError('recipient is not a valid key');
      const header = concatBytes(Uint8Array.of(KEY_DIST_VERSION), group, me.publicKey, to, E);
      const ikm = concatBytes(dhE, dhS);
      const k = hkdf(ikm, SALT, header, 32);
      const out = concatBytes(header, aeadSeal(k, plain, header));
      for (const s of [dhE, ikm, k]) wipe(s);
      if (!cache) wipe(dhS);
      return out;
    });
  } finally {
    wipe(e);
    wipe(plain);
  }
}

/** The clear header of a distribution; DeaddropError PROTOCOL when malformed. */
export function decodeKeyDistHeader(raw: Uint8Array): KeyDistHeader {
  if (!(raw instanceof Uint8Array) || raw.length !== KEY_DIST_BYTES || raw[0] !== KEY_DIST_VERSION) throw DeaddropError.protocol('invalid sender-key distribution');
  return { group: raw.slice(1, 33), from: raw.slice(33, 65), to: raw.slice(65, 97) };
}

/** Opens a distribution sealed to `me`; null when it is not ours, malformed or altered. */
export function openSenderKey(me: NodeIdentity, raw: Uint8Array, cache?: PairCache): (KeyDistHeader & { chain: ChainState }) | null {
  try {
    const h = decodeKeyDistHeader(raw);
    if (!Buffer.from(h.to).equals(Buffer.from(me.publicKey))) return null;
    const header = raw.subarray(0, KEY_DIST_HEADER_BYTES);
    const dhE = me.sharedSecretX(raw.subarray(97, 129));
    const dhS = staticSecret(me, h.from, cache);
    if (!dhE || !dhS) return null;
    const ikm = concatBytes(dhE, dhS);
    const k = hkdf(ikm, SALT, header, 32);
    const plain = aeadOpen(k, raw.subarray(KEY_DIST_HEADER_BYTES), header);
    for (const s of [dhE, ikm, k]) wipe(s);
    if (!cache) wipe(dhS);
    if (!plain || plain.length !== PLAIN_BYTES) return null;
    const v = new DataView(plain.buffer, plain.byteOffset, plain.length);
    const chain = { generation: v.getUint32(0), index: v.getUint32(4), chainKey: plain.slice(8) };
    wipe(plain);
    return { ...h, chain };
  } catch {
    return null;
  }
}
