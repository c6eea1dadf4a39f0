/**
 * Pledge hints: how a seller's daemon finds pledges on chain that nobody told it about (it was
 * offline when the buyer pledged; docs/protocol/paypub.md, "Pledges while the seller is offline").
 *
 * A pledge output's script depends on the buyer's refund key, which the seller cannot guess. The
 * buyer therefore adds one OP_RETURN output to the pledge transaction:
 *
 *   6a 20 <buyerKey XOR taggedHash("deaddrop/paypub/pledge-hint/v1", manifestHash)>
 *
 * Whoever holds the manifest (the seller, buyers) unmasks the key and derives the pledge script
 * from it; to anyone else the 32 bytes are random, the same shape as an anchor. The hint is only a
 * candidate: a pledge counts only when a P2TR output of the same transaction is exactly the
 * script the manifest, the sample and that key make (and holds at least the minimum pledge).
 */
import { DeaddropError } from '../util/errors.js';
import { taggedHash } from '../util/hash.js';
import type { Manifest } from './manifest.js';
import { pledgeOutput } from './scripts.js';
import { equalBytes } from '../util/bytes.js';

export const HINT_TAG = 'deaddrop/paypub/pledge-hint/v1';

function xor32(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** The 32-byte OP_RETURN payload of a pledge by `buyerKey` (x-only, 32 bytes) to the sale `m`. */
export function pledgeHint(m: Pick<Manifest, 'hash'>, buyerKey: Uint8Array): Uint8Array {
  if (!(buyerKey instanceof Uint8Array) || buyerKey.length !== 32) throw new TypeError('buyer key must be 32 bytes (x-only)');
  return xor32(buyerKey, taggedHash(HINT_TAG, m.hash));
}

/** The buyer key a hint payload names (the inverse of {@link pledgeHint}). */
export function hintBuyerKey(m: Pick<Manifest, 'hash'>, payload: Uint8Array): Uint8Array {
  if (!(payload instanceof Uint8Array) || payload.length !== 32) throw DeaddropError.protocol('pledge hint: not 32 bytes');
  return xor32(payload, taggedHash(HINT_TAG, m.hash));
}

/** A pledge found through its hint. */
export interface HintedPledge {
  readonly vout: number;
  readonly buyerKey: Uint8Array;
  readonly value: bigint;
  readonly script: Uint8Array;
}

/**
 * The hinted pledges of sale `m` (sample `sampled`) in `tx`: every 32-byte OP_RETURN is unmasked
 * and the pledge script of that key looked for among the P2TR outputs. Never throws on chain data.
 */
export function findHintedPledges(m: Manifest, sampled: readonly number[], tx: { readonly outputs: readonly { readonly script: Uint8Array; readonly value: bigint }[] }): HintedPledge[] {
  const found: HintedPledge[] = [];
  const taproot = tx.outputs.map((o, vout) => ({ o, vout })).filter(({ o }) => o.script.length === 34 && o.script[0] === 0x51 && o.script[1] === 0x20);
  if (taproot.length === 0) return found;
  for (const out of tx.outputs) {
    const s = out.script;
    if (s.length !== 34 || s[0] !== 0x6a || s[1] !== 0x20) continue;
    const buyerKey = hintBuyerKey(m, s.subarray(2));
    let script: Uint8Array;
    try {
      script = pledgeOutput(m, sampled, { buyerKey }).script;
    } catch {
      continue; // not a key on the curve: not a hint for this sale
    }
    for (const { o, vout } of taproot) {
      if (equalBytes(o.script, script) && o.value >= m.minPledge && !found.some((f) => f.vout === vout)) found.push({ vout, buyerKey, value: o.value, script: o.script.slice() });
    }
  }
  return found;
}
