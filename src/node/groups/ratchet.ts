/**
 * The sender-key hash ratchet (docs/protocol/groups.md section 5), Signal "sender keys" style:
 *
 *   mk_i     = HMAC-SHA256(ck_i, 0x01)     the message key of index i, used once
 *   ck_{i+1} = HMAC-SHA256(ck_i, 0x02)     the chain moves on; ck_i is forgotten
 *
 * One-way: whoever holds ck_i derives every later key and no earlier one, which is what lets a
 * newcomer receive a chain key without reading the past, and gives forward secrecy along the
 * chain. Pure functions over values; the caller stores the new state and wipes the old.
 */
import { hmacSha256, wipe } from '../crypto.js';

/** Keys skipped over in one jump at most (a sender's index cannot jump further ahead). */
export const MAX_SKIP = 1000;
/** Skipped keys kept per group at most; the oldest are evicted. */
export const MAX_SKIPPED_KEYS = 1000;
/** A sender rotates after this many messages of one generation... */
export const ROTATE_AFTER_MESSAGES = 1000;
/** ...or when the generation is this old. */
export const ROTATE_AFTER_MS = 7 * 24 * 3600_000;

const MK = Uint8Array.of(0x01);
const CK = Uint8Array.of(0x02);

/** A chain at an index: the next message key to use or expect is that of `index`. */
export interface ChainState {
  readonly generation: number;
  readonly index: number;
  readonly chainKey: Uint8Array;
}

/** mk_i from ck_i. */
export function messageKey(chainKey: Uint8Array): Uint8Array {
  return hmacSha256(chainKey, MK);
}

/** ck_{i+1} from ck_i. */
export function nextChainKey(chainKey: Uint8Array): Uint8Array {
  return hmacSha256(chainKey, CK);
}

/** The message key for `chain.index` and the chain one step on (the input chain key is not wiped). */
export function step(chain: ChainState): { messageKey: Uint8Array; next: ChainState } {
  return { messageKey: messageKey(chain.chainKey), next: { generation: chain.generation, index: chain.index + 1, chainKey: nextChainKey(chain.chainKey) } };
}

/** A skipped message key, remembered for a message that has not arrived yet. */
export interface SkippedKey {
  readonly generation: number;
  readonly index: number;
  readonly messageKey: Uint8Array;
}

/**
 * The message key for `index` on a receiving chain: from the skipped keys, or by moving the chain
 * forward (collecting the keys skipped on the way). Null for an index below the chain with no
 * skipped key (used already, or too old) or more than MAX_SKIP ahead. Intermediate chain keys are
 * wiped.
 */
export function keyFor(chain: ChainState, index: number, skipped: readonly SkippedKey[]): { messageKey: Uint8Array; chain: ChainState; used: SkippedKey | null; newSkipped: SkippedKey[] } | null {
  if (!Number.isInteger(index) || index < 0 || index > 0xffff_ffff) return null;
  if (index < chain.index) {
    const s = skipped.find((k) => k.generation === chain.generation && k.index === index);
    return s ? { messageKey: s.messageKey, chain, used: s, newSkipped: [] } : null;
  }
  if (index - chain.index > MAX_SKIP) return null;
  const newSkipped: SkippedKey[] = [];
  let ck: Uint8Array = chain.chainKey.slice();
  for (let i = chain.index; i < index; i++) {
    newSkipped.push({ generation: chain.generation, index: i, messageKey: messageKey(ck) });
    const n = nextChainKey(ck);
    wipe(ck);
    ck = n;
  }
  const mk = messageKey(ck);
  const next = nextChainKey(ck);
  wipe(ck);
  return { messageKey: mk, chain: { generation: chain.generation, index: index + 1, chainKey: next }, used: null, newSkipped };
}
