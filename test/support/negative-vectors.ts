/**
 * Negative vectors: committed inputs that must be refused, shared by every vector file (PayPub's,
 * the node's) and the one check that runs them.
 */
import { expect } from 'vitest';
import { fromHex } from '../../src/util/bytes.js';
import { expectCode } from './errors.js';

/** One input that must be refused, and how. */
export interface NegativeVector {
  readonly description: string;
  readonly hex: string;
  /** What refuses it: a decode error (PROTOCOL) matching `error`, or a failed signature/witness check. */
  readonly refusedBy: 'decode' | 'signature' | 'witness';
  /** A substring of the decode error (for refusedBy "decode"). */
  readonly error?: string;
}

/** Asserts there are at least three negative vectors and each is refused the way it says. */
export function expectRefused(negatives: readonly NegativeVector[], decode: (b: Uint8Array) => unknown, verify: (decoded: unknown) => boolean): void {
  expect(negatives.length).toBeGreaterThanOrEqual(3);
  for (const n of negatives) {
    const bytes = fromHex(n.hex);
    if (n.refusedBy === 'decode') expectCode(() => decode(bytes), 'PROTOCOL', n.error);
    else expect(verify(decode(bytes)), n.description).toBe(false);
  }
}
