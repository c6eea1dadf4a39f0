/**
 * The one bytes module: hex, equality and concatenation for every layer. Hex and concatenation
 * are @noble/hashes' (checked, table-driven); equality is constant-time so that it is safe on
 * secrets, MACs and hashes alike (its cost is linear in the length either way).
 * Bitcoin-specific byte order (display hashes, little-endian reads) stays in `chain/bytes.ts`.
 */
import { bytesToHex, concatBytes as nobleConcat, hexToBytes } from '@noble/hashes/utils.js';

/** Lower-case hex of `bytes` in their stored order. */
export function toHex(bytes: Uint8Array): string {
  return bytesToHex(bytes);
}

/** Parses even-length hex ([0-9a-fA-F]) into bytes. TypeError on anything else. */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== 'string') throw new TypeError(`hex: expected string, got ${typeof hex}`);
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`hex: expected an even-length hex string, got ${hex.length} characters`);
  }
  return hexToBytes(hex);
}

/** Constant-time equality of two byte strings (their lengths are not secret). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** One new array holding `parts` in order. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return nobleConcat(...parts);
}
