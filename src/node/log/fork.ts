/**
 * Fork (equivocation) proofs: two entries by one author with the same sequence number and
 * different signed content, both validly signed. Anyone can check one without any other data,
 * so a proof can be gossiped and believed by nodes that never saw either branch.
 *
 * Encoding: `version:u8 = 1 | lenA:u32 | entryA | lenB:u32 | entryB`, with A the entry whose hash
 * sorts first, so one pair of entries has exactly one proof encoding.
 */
import { DeaddropError } from '../../util/errors.js';
import { decodeEntry, sameSignedContent, verifyEntry } from './codec.js';
import type { LogEntry } from './codec.js';
import { equalBytes } from '../../util/bytes.js';

export const FORK_PROOF_VERSION = 1;

/** Two conflicting signed entries. */
export interface ForkProof {
  readonly a: LogEntry;
  readonly b: LogEntry;
}

/** Orders the pair canonically. Does not check validity: see verifyForkProof. */
export function makeForkProof(x: LogEntry, y: LogEntry): ForkProof {
  return Buffer.compare(x.hash, y.hash) <= 0 ? { a: x, b: y } : { a: y, b: x };
}

/** True when the proof shows equivocation by `proof.a.author`. Never throws. */
export function verifyForkProof(proof: ForkProof): boolean {
  const { a, b } = proof;
  if (a.seq !== b.seq || !equalBytes(a.author, b.author)) return false;
  if (Buffer.compare(a.hash, b.hash) >= 0) return false;
  if (sameSignedContent(a, b)) return false;
  return verifyEntry(a) && verifyEntry(b);
}

/** Canonical encoding. */
export function encodeForkProof(proof: ForkProof): Uint8Array {
  const { a, b } = makeForkProof(proof.a, proof.b);
  const out = new Uint8Array(1 + 4 + a.raw.length + 4 + b.raw.length);
  const v = new DataView(out.buffer);
  out[0] = FORK_PROOF_VERSION;
  v.setUint32(1, a.raw.length);
  out.set(a.raw, 5);
  v.setUint32(5 + a.raw.length, b.raw.length);
  out.set(b.raw, 9 + a.raw.length);
  return out;
}

/** Decodes a proof (structure only; call verifyForkProof). Throws DeaddropError PROTOCOL. */
export function decodeForkProof(bytes: Uint8Array): ForkProof {
  if (bytes.length < 9 || bytes[0] !== FORK_PROOF_VERSION) throw DeaddropError.protocol('fork proof: bad version or length');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenA = v.getUint32(1);
  if (9 + lenA > bytes.length) throw DeaddropError.protocol('fork proof: truncated');
  const lenB = v.getUint32(5 + lenA);
  if (9 + lenA + lenB !== bytes.length) throw DeaddropError.protocol('fork proof: length mismatch');
  const a = decodeEntry(bytes.slice(5, 5 + lenA));
  const b = decodeEntry(bytes.slice(9 + lenA));
  if (Buffer.compare(a.hash, b.hash) >= 0) throw DeaddropError.protocol('fork proof: not canonical');
  return { a, b };
}
