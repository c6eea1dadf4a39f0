import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { schnorr } from '@noble/curves/secp256k1.js';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hash160, ser32, taggedHash } from '../../src/util/hash.js';
import { equalBytes } from '../../src/util/bytes.js';

describe('util/hash', () => {
  it('taggedHash matches noble for any tag and parts, and the cached prefix is not mutated', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 4 }), (tag, parts) => {
        const expected = schnorr.utils.taggedHash(tag, ...parts);
        expect(taggedHash(tag, ...parts)).toEqual(expected);
        expect(taggedHash(tag, ...parts)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('hash160 is RIPEMD160(SHA256(x))', () => {
    const x = new TextEncoder().encode('deaddrop');
    expect(hash160(x)).toEqual(ripemd160(sha256(x)));
  });

  it('ser32 is big-endian and refuses non-uint32 values', () => {
    expect(ser32(0x01020304)).toEqual(new Uint8Array([1, 2, 3, 4]));
    for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) expect(() => ser32(bad)).toThrow(RangeError);
  });

  it('equalBytes compares length and every byte', () => {
    expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(equalBytes(new Uint8Array([1]), new Uint8Array([1, 0]))).toBe(false);
  });
});
