/**
 * Version 2 manifests and reveals (src/paypub/adaptor-manifest.ts): T instead of key
 * commitments, K_i with DLEQ proofs instead of keys; canonical encodings; a buyer's checks.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import {
  adaptorTerms, createAdaptorManifest, createAdaptorReveal, decodeAdaptorManifest, decodeAdaptorReveal, encodeAdaptorManifest,
  encodeAdaptorReveal, verifyAdaptorReveal, type AdaptorManifest,
} from '../../src/paypub/adaptor-manifest.js';
import { chunkKeyPoint, deriveChunkKeys, newSaleSecret } from '../../src/paypub/chunk-keys.js';
import { encryptContent, encryptContentWithKeys } from '../../src/paypub/content.js';
import { decodeManifest, encodeManifest } from '../../src/paypub/manifest.js';
import { sampleIndices } from '../../src/paypub/sample.js';
import { toHex } from '../../src/util/bytes.js';
import { expectCode } from '../support/errors.js';
import { makeSale } from '../support/paypub-fixtures.js';

const beacon = toHex(randomBytes(32));

function sale(): { m: AdaptorManifest; t: Uint8Array; sk: Uint8Array; cts: readonly Uint8Array[]; plaintext: Uint8Array } {
  const t = newSaleSecret();
  const sk = schnorr.utils.randomSecretKey();
  const contentId = randomBytes(32);
  const plaintext = randomBytes(32 * 20 + 1);
  const content = encryptContentWithKeys(plaintext, deriveChunkKeys(t, contentId, 32), contentId);
  const m = createAdaptorManifest({
    content, saleSecret: t, network: 'regtest', price: 50_000n, threshold: 100_000n, minPledge: 10_000n, sampleSize: 8, beaconHeight: 110, deadlineHeight: 150, sellerSecretKey: sk,
  });
  return { m, t, sk, cts: content.ciphertexts, plaintext };
}

describe('version 2 manifest', () => {
  it('round-trips through its canonical encoding: 33-byte T, no key commitments', () => {
    const { m } = sale();
    const bytes = encodeAdaptorManifest(m);
    expect(bytes.length).toBe(115 + 33 + 32 * 32 + 64);
    expect(decodeAdaptorManifest(bytes, 'regtest')).toEqual(m);
    expect(adaptorTerms(m).salePoint).toEqual(m.salePoint);
  });

  it('the two versions never decode as each other', () => {
    const { m } = sale();
    expectCode(() => decodeManifest(encodeAdaptorManifest(m)), 'PROTOCOL');
    expectCode(() => decodeAdaptorManifest(encodeManifest(makeSale({ chunks: 8, sample: 2 }).manifest)), 'PROTOCOL');
  });

  it('refuses tampering, trailing bytes, another network and a bad T', () => {
    const { m } = sale();
    const bytes = encodeAdaptorManifest(m);
    const tampered = bytes.slice();
    tampered[60] = (tampered[60] as number) ^ 1;
    expectCode(() => decodeAdaptorManifest(tampered), 'PROTOCOL');
    expectCode(() => decodeAdaptorManifest(Uint8Array.of(...bytes, 0)), 'PROTOCOL');
    expectCode(() => decodeAdaptorManifest(bytes, 'mainnet'), 'PROTOCOL');
    const badT = bytes.slice();
    badT.set(new Uint8Array(33).fill(5), 115);
    expectCode(() => decodeAdaptorManifest(badT), 'PROTOCOL');
  });

  it('refuses content not encrypted under the keys of the sale secret', () => {
    const content = encryptContent(randomBytes(400), 8);
    expect(() => createAdaptorManifest({
      content, saleSecret: newSaleSecret(), network: 'regtest', price: 50_000n, sampleSize: 2, beaconHeight: 110, deadlineHeight: 150,
      sellerSecretKey: schnorr.utils.randomSecretKey(),
    })).toThrow(TypeError);
  });
});

describe('version 2 reveal', () => {
  it('round-trips and verifies: the sampled keys and chunks come out', () => {
    const { m, t, sk, cts, plaintext } = sale();
    const r = createAdaptorReveal(m, beacon, t, sk);
    const d = decodeAdaptorReveal(encodeAdaptorReveal(r));
    expect(d).toEqual(r);
    const check = verifyAdaptorReveal(m, beacon, d, (i) => cts[i]);
    expect(check.ok).toBe(true);
    if (!check.ok) return;
    expect([...check.keys.keys()]).toEqual(sampleIndices(m, beacon));
    const keys = deriveChunkKeys(t, m.contentId, 32);
    for (const [i, k] of check.keys) expect(toHex(k)).toBe(toHex(keys[i] as Uint8Array));
    expect(check.plaintexts.size).toBe(8);
    expect(plaintext.length).toBe(m.fileLength);
  });

  it('refuses another manifest or beacon, a forged key point, a bad signature, a missing or wrong chunk', () => {
    const s = sale();
    const r = createAdaptorReveal(s.m, beacon, s.t, s.sk);
    const cts = (i: number): Uint8Array | undefined => s.cts[i];
    expect(verifyAdaptorReveal(sale().m, beacon, r, cts)).toMatchObject({ ok: false, reason: 'wrong-manifest' });
    expect(verifyAdaptorReveal(s.m, toHex(randomBytes(32)), r, cts)).toMatchObject({ ok: false, reason: 'wrong-beacon' });
    const forged = { ...r, proofs: r.proofs.map((p, j) => (j === 0 ? { ...p, keyPoint: chunkKeyPoint(newSaleSecret(), s.m.contentId, p.index) } : p)) };
    expect(verifyAdaptorReveal(s.m, beacon, forged, cts)).toMatchObject({ ok: false, reason: 'bad-proof' });
    const sig = r.signature.slice();
    sig[10] = (sig[10] as number) ^ 1;
    expect(verifyAdaptorReveal(s.m, beacon, { ...r, signature: sig }, cts)).toMatchObject({ ok: false, reason: 'bad-signature' });
    const first = r.proofs[0]!.index;
    expect(verifyAdaptorReveal(s.m, beacon, r, (i) => (i === first ? undefined : cts(i)))).toMatchObject({ ok: false, reason: 'missing-chunk', index: first });
    expect(verifyAdaptorReveal(s.m, beacon, r, (i) => (i === first ? cts(first + 1 === 32 ? 0 : first + 1) : cts(i)))).toMatchObject({ ok: false, reason: 'chunk-failed', index: first });
  });

  it('refuses truncated and trailing bytes, and another version', () => {
    const s = sale();
    const bytes = encodeAdaptorReveal(createAdaptorReveal(s.m, beacon, s.t, s.sk));
    expectCode(() => decodeAdaptorReveal(bytes.subarray(0, bytes.length - 1)), 'PROTOCOL');
    expectCode(() => decodeAdaptorReveal(Uint8Array.of(...bytes, 0)), 'PROTOCOL');
    expectCode(() => decodeAdaptorReveal(Uint8Array.of(1, ...bytes.subarray(1))), 'PROTOCOL');
    expect(() => createAdaptorReveal(s.m, beacon, newSaleSecret(), s.sk)).toThrow(TypeError);
  });
});
