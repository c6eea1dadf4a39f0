import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256, u32be } from '../../src/paypub/bytes.js';
import {
  createReveal, decodeReveal, describeSample, drawSample, encodeReveal, HashStream, sampleIndices, sampleOdds,
  sampleSeed, sampleStatus, unsampledIndices, verifyReveal, type SampleReveal,
} from '../../src/paypub/sample.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { makeSale } from '../support/paypub-fixtures.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('sample draw', () => {
  it('matches the spec vector (checked against an independent Python implementation)', () => {
    const seed = sampleSeed(new Uint8Array(32).fill(0x11), 'deadbeef00000000000000000000000000000000000000000000000000000001');
    expect(hex(seed)).toBe('03726f1cc02b015f056449feaf507a4bbd0c40bc6a0a6522cfa04077ccae274b');
    expect(drawSample(seed, 32, 8)).toEqual([1, 6, 27, 4, 11, 21, 26, 0]);
  });

  it('is deterministic, and depends on both the manifest and the beacon', () => {
    const { manifest: m, beaconHash } = makeSale();
    expect(sampleIndices(m, beaconHash)).toEqual(sampleIndices(m, beaconHash));
    expect(sampleIndices(m, beaconHash)).toEqual(sampleIndices(m, beaconHash.toUpperCase()));
    const other = '00'.repeat(31) + '01';
    expect(sampleIndices(m, other)).not.toEqual(sampleIndices(m, beaconHash));
    expect(sampleIndices({ ...m, hash: sha256(m.hash) }, beaconHash)).not.toEqual(sampleIndices(m, beaconHash));
  });

  it('gives distinct in-range indices for any n, s (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 256 }), fc.nat(), (seed, n, k) => {
      const s = k % (n + 1);
      const d = drawSample(seed, n, s);
      return d.length === s && new Set(d).size === s && d.every((i) => Number.isInteger(i) && i >= 0 && i < n);
    }));
  });

  it('is unbiased: every index is sampled equally often (chi-square, fixed seeds)', () => {
    const n = 10;
    const s = 3;
    const runs = 20_000;
    const counts = new Array<number>(n).fill(0);
    const firsts = new Array<number>(n).fill(0);
    for (let r = 0; r < runs; r++) {
      const d = drawSample(sha256(u32be(r)), n, s);
      d.forEach((i) => counts[i]!++);
      firsts[d[0]!]!++;
    }
    const chi = (obs: number[], exp: number): number => obs.reduce((a, o) => a + (o - exp) ** 2 / exp, 0);
    // 9 degrees of freedom: P(chi2 > 27.88) = 0.001
    expect(chi(counts, (runs * s) / n)).toBeLessThan(27.88);
    expect(chi(firsts, runs / n)).toBeLessThan(27.88);
  });

  it('rejection sampling removes modulo bias for large bounds', () => {
    // bound = 1.5 * 2^31: plain "x mod bound" would make [0, 2^30) twice as likely as [2^30, 2^31).
    const bound = 3 * 2 ** 30;
    const stream = new HashStream(sha256(Uint8Array.of(1)));
    let low = 0;
    let mid = 0;
    let max = 0;
    for (let i = 0; i < 30_000; i++) {
      const v = stream.below(bound);
      max = Math.max(max, v);
      if (v < 2 ** 30) low++;
      else if (v < 2 ** 31) mid++;
    }
    expect(max).toBeLessThan(bound);
    expect(low / mid).toBeGreaterThan(0.9);
    expect(low / mid).toBeLessThan(1.1);
  });

  it('unsampled indices are the complement, ascending', () => {
    expect(unsampledIndices(6, [4, 1])).toEqual([0, 2, 3, 5]);
  });

  it('beacon status: final only after enough confirmations', () => {
    expect(sampleStatus(110, 109, 'regtest')).toBe('before-beacon');
    expect(sampleStatus(110, 110, 'regtest')).toBe('maturing');
    expect(sampleStatus(110, 111, 'regtest')).toBe('final');
    expect(sampleStatus(110, 114, 'mainnet')).toBe('maturing');
    expect(sampleStatus(110, 115, 'mainnet')).toBe('final');
  });
});

describe('sample reveal', () => {
  const sale = makeSale();
  const { manifest: m, beaconHash, content } = sale;
  const cts = (i: number): Uint8Array | undefined => content.ciphertexts[i];
  const reveal = createReveal(m, beaconHash, content.keys, sale.sellerSk);

  it('a correct reveal verifies and decrypts the sampled chunks', () => {
    const res = verifyReveal(m, beaconHash, reveal, cts);
    expect(res.ok).toBe(true);
    if (res.ok) {
      expect([...res.plaintexts.keys()]).toEqual(sale.sampled);
      for (const [i, pt] of res.plaintexts) {
        const size = Math.floor(m.fileLength / m.chunkCount);
        const r = m.fileLength % m.chunkCount;
        const start = i * size + Math.min(i, r);
        expect(pt).toEqual(sale.plaintext.subarray(start, start + size + (i < r ? 1 : 0)));
      }
    }
  });

  it('round-trips through its codec; garbage is a PROTOCOL error', () => {
    const back = decodeReveal(encodeReveal(reveal));
    expect(back).toEqual(reveal);
    expect(verifyReveal(m, beaconHash, back, cts).ok).toBe(true);
    try {
      decodeReveal(randomBytes(40));
      expect.unreachable();
    } catch (err) {
      expect(isDeaddropError(err, 'PROTOCOL')).toBe(true);
    }
  });

  it('a wrong key is caught', () => {
    const keys = reveal.keys.slice();
    keys[2] = randomBytes(32);
    expect(verifyReveal(m, beaconHash, { ...reveal, keys }, cts)).toMatchObject({ ok: false, reason: 'key-mismatch', index: reveal.indices[2] });
  });

  it('a missing key is caught', () => {
    const short: SampleReveal = { ...reveal, indices: reveal.indices.slice(0, -1), keys: reveal.keys.slice(0, -1) };
    expect(verifyReveal(m, beaconHash, short, cts)).toMatchObject({ ok: false, reason: 'missing-key' });
  });

  it('indices other than the drawn ones are caught (a seller choosing what to show)', () => {
    const chosen = unsampledIndices(m.chunkCount, reveal.indices).slice(0, m.sampleSize);
    const cherry = { ...reveal, indices: chosen, keys: chosen.map((i) => content.keys[i] as Uint8Array) };
    expect(verifyReveal(m, beaconHash, cherry, cts)).toMatchObject({ ok: false, reason: 'wrong-indices' });
  });

  it('a reveal for a reorged-away beacon does not verify against the new beacon', () => {
    const newBeacon = hex(randomBytes(32));
    expect(verifyReveal(m, newBeacon, reveal, cts)).toMatchObject({ ok: false, reason: 'wrong-beacon' });
    expect(verifyReveal(m, newBeacon, createReveal(m, newBeacon, content.keys, sale.sellerSk), cts).ok).toBe(true);
  });

  it('a reveal signed by someone else, or for another manifest, is caught', () => {
    const forged = createReveal({ ...m, sellerKey: schnorr.getPublicKey(randomBytes(32)) }, beaconHash, content.keys, schnorr.utils.randomSecretKey());
    expect(verifyReveal(m, beaconHash, { ...reveal, signature: forged.signature }, cts)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(verifyReveal(m, beaconHash, { ...reveal, manifestHash: randomBytes(32) }, cts)).toMatchObject({ ok: false, reason: 'wrong-manifest' });
  });

  it('a missing or wrong served chunk is caught', () => {
    expect(verifyReveal(m, beaconHash, reveal, () => undefined)).toMatchObject({ ok: false, reason: 'missing-chunk' });
    expect(verifyReveal(m, beaconHash, reveal, (i) => content.ciphertexts[(i + 1) % m.chunkCount])).toMatchObject({ ok: false, reason: 'chunk-failed' });
  });

  it('the seller cannot reveal keys that do not match the commitments', () => {
    const keys = content.keys.slice();
    keys[reveal.indices[0] as number] = randomBytes(32);
    expect(() => createReveal(m, beaconHash, keys, sale.sellerSk)).toThrow(/commitment/);
  });
});

describe('sample odds', () => {
  it('hypergeometric escape probability', () => {
    expect(sampleOdds(32, 8, 1)).toBeCloseTo(0.75, 12);
    expect(sampleOdds(32, 8, 2)).toBeCloseTo((24 * 23) / (32 * 31), 12);
    expect(sampleOdds(32, 8, 0)).toBe(1);
    expect(sampleOdds(32, 8, 25)).toBe(0);
    expect(sampleOdds(10, 0, 3)).toBe(1);
    expect(() => sampleOdds(5, 6, 1)).toThrow(RangeError);
    expect(() => sampleOdds(5, 2, -1)).toThrow(RangeError);
  });

  it('matches a brute-force count of subsets', () => {
    const n = 8;
    const s = 3;
    const bad = new Set([0, 5]);
    let total = 0;
    let miss = 0;
    for (let mask = 0; mask < 1 << n; mask++) {
      const picked = [...Array(n).keys()].filter((i) => mask & (1 << i));
      if (picked.length !== s) continue;
      total++;
      if (picked.every((i) => !bad.has(i))) miss++;
    }
    expect(sampleOdds(n, s, 2)).toBeCloseTo(miss / total, 12);
  });

  it('the explanation states what is and is not proven, with the odds', () => {
    const text = describeSample(32, 8);
    expect(text).toMatch(/does not prove/);
    expect(text).toMatch(/1 bad chunk escapes the sample 75% of the time/);
  });
});
