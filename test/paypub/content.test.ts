import { randomBytes } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkChunkPlan, checkCiphertext, chunkBounds, collectKeys, decryptContent, decryptRaw, encryptContent, maxChunkLength, openChunk,
} from '../../src/paypub/content.js';
import { sha256 } from '../../src/paypub/bytes.js';
import { isDeaddropError } from '../../src/util/errors.js';

describe('chunk layout', () => {
  it('refuses an empty file with BAD_INPUT', () => {
    expect(() => checkChunkPlan(0, 4)).toThrow(/empty file/);
    try {
      encryptContent(new Uint8Array(0), 4);
      expect.unreachable();
    } catch (err) {
      expect(isDeaddropError(err, 'BAD_INPUT')).toBe(true);
    }
  });

  it('refuses a file shorter than the chunk count, naming the largest usable count', () => {
    expect(() => encryptContent(new Uint8Array(5), 32)).toThrow(/at most 5 chunks/);
    // exactly as many bytes as chunks: one byte each
    const c = encryptContent(Uint8Array.of(1, 2, 3, 4, 5), 5);
    expect(c.ciphertexts.map((x) => x.length)).toEqual([17, 17, 17, 17, 17]);
    expect(decryptContent(c, c.ciphertexts, c.keys)).toEqual(Uint8Array.of(1, 2, 3, 4, 5));
  });

  it('exact multiple: equal chunks; otherwise the last chunks are one byte shorter', () => {
    const exact = encryptContent(randomBytes(32 * 100), 32);
    expect(new Set(exact.ciphertexts.map((c) => c.length))).toEqual(new Set([116]));
    expect(exact.chunkSize).toBe(100);
    const uneven = encryptContent(randomBytes(100), 32); // 4 chunks of 4, 28 of 3: none empty
    const lens = uneven.ciphertexts.map((c) => c.length - 16);
    expect(lens.slice(0, 4)).toEqual([4, 4, 4, 4]);
    expect(lens.slice(4).every((l) => l === 3)).toBe(true);
    expect(uneven.chunkSize).toBe(4);
  });

  it('chunk bounds tile the file exactly, for any length >= count (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 256 }), fc.integer({ min: 0, max: 100_000 }), (n, extra) => {
      const len = n + extra;
      let next = 0;
      for (let i = 0; i < n; i++) {
        const { start, end } = chunkBounds(len, n, i);
        if (start !== next || end - start < 1 || end - start > maxChunkLength(len, n)) return false;
        next = end;
      }
      return next === len;
    }));
  });

  it('rejects a chunk count out of range as misuse', () => {
    expect(() => checkChunkPlan(100, 0)).toThrow(RangeError);
    expect(() => checkChunkPlan(1000, 257)).toThrow(RangeError);
  });
});

describe('encryption', () => {
  it('round-trips a file and records commitments to keys and ciphertexts', () => {
    const pt = randomBytes(10_001);
    const c = encryptContent(pt, 16);
    expect(c.keys).toHaveLength(16);
    c.keys.forEach((k, i) => expect(c.keyCommitments[i]).toEqual(sha256(k)));
    c.ciphertexts.forEach((ct, i) => expect(c.ciphertextHashes[i]).toEqual(sha256(ct)));
    expect(decryptContent(c, c.ciphertexts, c.keys)).toEqual(pt);
  });

  it('identical chunks get different keys and different ciphertexts (keys are not derived from content)', () => {
    const pt = new Uint8Array(64 * 8).fill(0x41);
    const a = encryptContent(pt, 8);
    const b = encryptContent(pt, 8);
    expect(new Set(a.keys.map((k) => Buffer.from(k).toString('hex'))).size).toBe(8);
    expect(new Set(a.ciphertexts.map((k) => Buffer.from(k).toString('hex'))).size).toBe(8);
    expect(a.keys[0]).not.toEqual(b.keys[0]);
  });

  it('a flipped ciphertext bit fails authentication', () => {
    const c = encryptContent(randomBytes(1000), 4);
    const bad = (c.ciphertexts[2] as Uint8Array).slice();
    bad[5] = (bad[5] as number) ^ 1;
    expect(decryptRaw(c, 2, bad, c.keys[2] as Uint8Array)).toEqual({ ok: false, reason: 'aead-failed' });
    expect(openChunk(c, 2, bad, c.keys[2] as Uint8Array)).toEqual({ ok: false, reason: 'ciphertext-mismatch' });
    expect(checkCiphertext(c, 2, bad)).toBe(false);
    expect(checkCiphertext(c, 2, c.ciphertexts[2] as Uint8Array)).toBe(true);
  });

  it('swapped chunks fail: the index is bound in the associated data', () => {
    const c = encryptContent(randomBytes(800), 8);
    // even with the right key for that ciphertext, decrypting it at another index fails
    expect(decryptRaw(c, 3, c.ciphertexts[4] as Uint8Array, c.keys[4] as Uint8Array).ok).toBe(false);
    expect(decryptRaw(c, 4, c.ciphertexts[4] as Uint8Array, c.keys[4] as Uint8Array).ok).toBe(true);
    const swapped = c.ciphertexts.slice();
    [swapped[3], swapped[4]] = [swapped[4] as Uint8Array, swapped[3] as Uint8Array];
    expect(() => decryptContent(c, swapped, c.keys)).toThrow(/chunk 3/);
  });

  it('the chunk count and content id are bound too', () => {
    const c = encryptContent(randomBytes(800), 8);
    const ct = c.ciphertexts[0] as Uint8Array;
    const k = c.keys[0] as Uint8Array;
    expect(decryptRaw({ contentId: c.contentId, chunkCount: 9 }, 0, ct, k).ok).toBe(false);
    expect(decryptRaw({ contentId: randomBytes(32), chunkCount: 8 }, 0, ct, k).ok).toBe(false);
  });

  it('wrong key or wrong length is reported, not thrown', () => {
    const c = encryptContent(randomBytes(800), 8);
    expect(openChunk(c, 1, c.ciphertexts[1] as Uint8Array, randomBytes(32))).toEqual({ ok: false, reason: 'key-mismatch' });
    expect(openChunk(c, 1, c.ciphertexts[1] as Uint8Array, randomBytes(31))).toEqual({ ok: false, reason: 'bad-key-length' });
    expect(openChunk(c, 1, (c.ciphertexts[1] as Uint8Array).subarray(1), c.keys[1] as Uint8Array)).toEqual({ ok: false, reason: 'bad-length' });
    expect(openChunk(c, 99, c.ciphertexts[1] as Uint8Array, c.keys[1] as Uint8Array)).toEqual({ ok: false, reason: 'bad-index' });
  });

  it('collectKeys merges the reveal and claims, ignores bad keys, reports what is missing', () => {
    const c = encryptContent(randomBytes(800), 8);
    const reveal = new Map([[0, c.keys[0] as Uint8Array], [5, c.keys[5] as Uint8Array]]);
    const claim = new Map(c.keys.map((k, i) => [i, k] as [number, Uint8Array]).filter(([i]) => i !== 0 && i !== 5 && i !== 7));
    const bogus = new Map([[7, randomBytes(32)]]);
    expect(collectKeys(c, reveal, claim, bogus)).toEqual({ keys: null, missing: [7] });
    const all = collectKeys(c, reveal, bogus, claim, new Map([[7, c.keys[7] as Uint8Array]]));
    expect(all.missing).toEqual([]);
    expect(decryptContent(c, c.ciphertexts, all.keys as Uint8Array[])).toHaveLength(800);
  });

  it('decryption error messages carry no key material', () => {
    const c = encryptContent(randomBytes(800), 8);
    const keys = c.keys.slice();
    keys[6] = randomBytes(32);
    try {
      decryptContent(c, c.ciphertexts, keys);
      expect.unreachable();
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).toBe('chunk 6: key-mismatch');
      for (const k of keys) expect(msg).not.toContain(Buffer.from(k).toString('hex'));
    }
  });
});
