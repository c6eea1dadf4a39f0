import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256, sha256Into, sha256Split, sha256Tagged } from '../../src/node/crypto.js';
import { toHex } from '../../src/util/bytes.js';

const reference = (...parts: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('node SHA-256 wrappers', () => {
  // one part: node:crypto's one-shot hash; several: concatenated up to 4096 bytes, a Hash object beyond
  const sizes = [0, 1, 31, 32, 33, 64, 65, 255, 256, 257, 1000, 4095, 4096, 4097, 70_000];

  it('sha256 of one part equals SHA-256 at every size', () => {
    for (const n of sizes) {
      const input = bytes(n);
      const out = sha256(input);
      expect(toHex(out), `n=${n}`).toBe(reference(input));
      expect(out.byteLength).toBe(32);
    }
  });

  it('sha256 of several parts and of a subarray equals SHA-256 of their bytes', () => {
    for (const n of sizes) {
      const a = bytes(n, 2);
      const b = bytes(n >> 1, 3);
      expect(toHex(sha256(a, b)), `n=${n}`).toBe(reference(a, b));
      const big = bytes(n + 40, 4);
      expect(toHex(sha256(big.subarray(17, 17 + n)))).toBe(reference(big.subarray(17, 17 + n)));
    }
  });

  it('digests come out as plain Uint8Arrays with every byte value intact', () => {
    expect(sha256(bytes(10)).constructor).toBe(Uint8Array);
    // the one-shot digest travels as a latin1 string: bytes 0x80-0xff must survive it
    const digests = Array.from({ length: 64 }, (_, i) => sha256(bytes(i + 1, i)));
    expect(new Set(digests.flatMap((d) => [...d])).size).toBe(256);
  });

  it('sha256Into writes the digest in place and nothing else', () => {
    const a = bytes(65, 8);
    const out = new Uint8Array(40).fill(0xee);
    sha256Into(out, 5, a);
    expect(toHex(out.subarray(5, 37))).toBe(reference(a));
    expect([...out.subarray(0, 5), ...out.subarray(37)]).toEqual(Array(8).fill(0xee));
    expect(() => sha256Into(out, 9, a)).toThrow(RangeError);
  });

  it('sha256Tagged and sha256Split agree with the reference', () => {
    const a = bytes(32, 5);
    const b = bytes(32, 6);
    expect(toHex(sha256Tagged(1, a, b))).toBe(reference(Uint8Array.of(1), a, b));
    expect(toHex(sha256Tagged(0, a))).toBe(reference(Uint8Array.of(0), a));
    for (const n of [100, 5000]) {
      const data = bytes(n, 7);
      const { prefix, whole } = sha256Split(data, 60);
      expect(toHex(prefix)).toBe(reference(data.subarray(0, 60)));
      expect(toHex(whole)).toBe(reference(data));
    }
  });
});
