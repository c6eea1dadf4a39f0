/**
 * Chunk keys derived from one per-sale secret (src/paypub/chunk-keys.ts): hash-to-curve points,
 * DLEQ proofs that sampled keys come from T, and the derivation of every key from t.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { describe, expect, it } from 'vitest';
import {
  chunkKeyFromPoint, chunkKeyPoint, chunkPoint, deriveChunkKeys, dleqContext, dleqProve, dleqVerify, isSaleSecret,
  newSaleSecret, proveSampledKeys, salePoint, secretScalar, verifySampledKeys,
} from '../../src/paypub/chunk-keys.js';
import { decryptContent, encryptContentWithKeys } from '../../src/paypub/content.js';
import { toHex } from '../../src/util/bytes.js';
import { fixed } from '../support/paypub-vectors.js';

const contentId = fixed('chunk-keys content id');
const t = fixed('chunk-keys sale secret');
const T = salePoint(t);

describe('chunk points', () => {
  it('are valid, distinct per index and per content, and deterministic', () => {
    const pts = Array.from({ length: 16 }, (_, i) => toHex(chunkPoint(contentId, i)));
    expect(new Set(pts).size).toBe(16);
    for (const p of pts) expect(() => secp256k1.Point.fromHex(p)).not.toThrow();
    expect(toHex(chunkPoint(contentId, 3))).toBe(pts[3]);
    expect(toHex(chunkPoint(fixed('other content'), 3))).not.toBe(pts[3]);
  });

  it('refuses a bad content id or index', () => {
    expect(() => chunkPoint(new Uint8Array(31), 0)).toThrow(TypeError);
    expect(() => chunkPoint(contentId, -1)).toThrow(RangeError);
    expect(() => chunkPoint(contentId, 1.5)).toThrow(RangeError);
  });
});

describe('key derivation', () => {
  it('derives every key from t alone, K_i = t·H_i', () => {
    const keys = deriveChunkKeys(t, contentId, 8);
    expect(keys.map(toHex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => toHex(chunkKeyFromPoint(chunkKeyPoint(t, contentId, i)))));
    expect(new Set(keys.map(toHex)).size).toBe(8);
    expect(deriveChunkKeys(newSaleSecret(), contentId, 8).map(toHex)).not.toEqual(keys.map(toHex));
  });

  it('refuses secrets out of range', () => {
    expect(() => secretScalar(new Uint8Array(32))).toThrow(RangeError);
    expect(() => secretScalar(new Uint8Array(32).fill(0xff))).toThrow(RangeError);
    expect(() => secretScalar(new Uint8Array(31))).toThrow(TypeError);
    expect(isSaleSecret(T, t)).toBe(true);
    expect(isSaleSecret(T, fixed('other secret'))).toBe(false);
    expect(isSaleSecret(T, new Uint8Array(32))).toBe(false);
  });

  it('content encrypted under the derived keys decrypts with the keys derived again from t', () => {
    const plaintext = new Uint8Array(1000).map((_, i) => i * 7);
    const content = encryptContentWithKeys(plaintext, deriveChunkKeys(t, contentId, 10), contentId);
    expect(decryptContent(content, content.ciphertexts, deriveChunkKeys(t, contentId, 10))).toEqual(plaintext);
  });
});

describe('DLEQ', () => {
  const H = chunkPoint(contentId, 5);
  const K = chunkKeyPoint(t, contentId, 5);
  const ctx = dleqContext(contentId, 5);
  const proof = dleqProve(t, H, ctx);

  it('verifies an honest proof, and proofs are randomised', () => {
    expect(dleqVerify(T, H, K, proof, ctx)).toBe(true);
    const again = dleqProve(t, H, ctx);
    expect(toHex(again)).not.toBe(toHex(proof));
    expect(dleqVerify(T, H, K, again, ctx)).toBe(true);
  });

  it('rejects a wrong K, H, T or context, and a tampered proof', () => {
    expect(dleqVerify(T, H, chunkKeyPoint(t, contentId, 6), proof, ctx)).toBe(false);
    expect(dleqVerify(T, chunkPoint(contentId, 6), K, proof, ctx)).toBe(false);
    expect(dleqVerify(salePoint(fixed('other secret')), H, K, proof, ctx)).toBe(false);
    expect(dleqVerify(T, H, K, proof, dleqContext(contentId, 6))).toBe(false);
    for (const at of [0, 31, 32, 63]) {
      const bad = proof.slice();
      bad[at] = (bad[at] as number) ^ 1;
      expect(dleqVerify(T, H, K, bad, ctx)).toBe(false);
    }
  });

  it('rejects a K made with another secret even with a proof for that secret (the seller cannot decouple keys from T)', () => {
    const t2 = fixed('other secret');
    const K2 = chunkKeyPoint(t2, contentId, 5);
    expect(dleqVerify(T, H, K2, dleqProve(t2, H, ctx), ctx)).toBe(false);
  });

  it('never throws on malformed input', () => {
    expect(dleqVerify(T, H, K, proof.subarray(0, 63), ctx)).toBe(false);
    expect(dleqVerify(T, H, new Uint8Array(33), proof, ctx)).toBe(false);
    expect(dleqVerify(new Uint8Array(33).fill(2), H, K, proof, ctx)).toBe(false);
    expect(dleqVerify(T, H, K, new Uint8Array(64).fill(0xff), ctx)).toBe(false);
    expect(dleqVerify(T, H, K, new Uint8Array(64), ctx)).toBe(false);
  });

  it('checks a whole sample: exact indices, every proof, and gives the keys', () => {
    const sampled = [1, 4, 9];
    const proofs = proveSampledKeys(t, contentId, sampled);
    const keys = verifySampledKeys(T, contentId, sampled, proofs);
    const all = deriveChunkKeys(t, contentId, 10);
    expect([...(keys ?? new Map<number, Uint8Array>())].map(([i, k]) => [i, toHex(k)])).toEqual(sampled.map((i) => [i, toHex(all[i] as Uint8Array)]));
    expect(verifySampledKeys(T, contentId, [1, 4, 8], proofs)).toBeNull();
    expect(verifySampledKeys(T, contentId, sampled, proofs.slice(0, 2))).toBeNull();
    expect(verifySampledKeys(T, contentId, sampled, [proofs[0]!, proofs[2]!, proofs[1]!])).toBeNull();
    const forged = proofs.map((p, j) => (j === 1 ? { ...p, keyPoint: chunkKeyPoint(fixed('other secret'), contentId, p.index) } : p));
    expect(verifySampledKeys(T, contentId, sampled, forged)).toBeNull();
    expect(verifySampledKeys(salePoint(fixed('other secret')), contentId, sampled, proofs)).toBeNull();
  });
});
