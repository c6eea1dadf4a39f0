import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { describe, expect, it } from 'vitest';
import {
  anchorPayload, anchorScript, checkAnchorTiming, createManifest, decodeManifest, encodeManifest, encodeManifestBody,
  findAnchorOutput, manifestHash, manifestProblem, signManifest, verifyManifest, type ManifestFields,
} from '../../src/paypub/manifest.js';
import { encryptContent } from '../../src/paypub/content.js';
import { TIMING } from '../../src/paypub/params.js';
import { expectCode } from '../support/errors.js';
import { makeSale, someP2trScript } from '../support/paypub-fixtures.js';

describe('manifest codec', () => {
  it('round-trips and verifies', () => {
    const { manifest } = makeSale();
    const bytes = encodeManifest(manifest);
    // 3 + 32 + 8 + 4 + 2 + 2 + 24 + 8 + 32 + 64*N + sig
    expect(bytes.length).toBe(115 + 64 * 32 + 64);
    const back = decodeManifest(bytes, 'regtest');
    expect(back).toEqual(manifest);
    expect(verifyManifest(back)).toBe(true);
  });

  it('changing any field changes the hash', () => {
    const { manifest: m } = makeSale();
    const flip = (b: Uint8Array): Uint8Array => Uint8Array.from(b, (x, i) => (i === 0 ? x ^ 1 : x));
    const variants: Partial<ManifestFields>[] = [
      { network: 'mainnet' }, { mode: 'private' }, { contentId: flip(m.contentId) }, { fileLength: m.fileLength + 1 },
      { chunkSize: m.chunkSize + 1 }, { chunkCount: m.chunkCount - 1 }, { sampleSize: m.sampleSize + 1 },
      { price: m.price + 1n }, { threshold: m.threshold + 1n }, { minPledge: m.minPledge + 1n },
      { beaconHeight: m.beaconHeight + 1 }, { deadlineHeight: m.deadlineHeight + 1 }, { sellerKey: schnorr.getPublicKey(randomBytes(32)) },
      { keyCommitments: [flip(m.keyCommitments[0] as Uint8Array), ...m.keyCommitments.slice(1)] },
      { ciphertextHashes: [...m.ciphertextHashes.slice(0, -1), flip(m.ciphertextHashes[31] as Uint8Array)] },
      // swapping two commitments must matter too
      { keyCommitments: [m.keyCommitments[1] as Uint8Array, m.keyCommitments[0] as Uint8Array, ...m.keyCommitments.slice(2)] },
    ];
    const base = Buffer.from(m.hash).toString('hex');
    const seen = new Set([base]);
    for (const v of variants) {
      const h = Buffer.from(manifestHash({ ...m, ...v })).toString('hex');
      expect(seen.has(h), JSON.stringify(Object.keys(v))).toBe(false);
      seen.add(h);
    }
  });

  it('rejects a bad signature, a foreign signer, truncation and trailing bytes', () => {
    const { manifest: m } = makeSale();
    const bytes = encodeManifest(m);
    const badSig = bytes.slice();
    badSig[badSig.length - 1] = (badSig[badSig.length - 1] as number) ^ 1;
    expect(() => decodeManifest(badSig)).toThrow(/signature/);
    const other = schnorr.utils.randomSecretKey();
    expect(() => signManifest(m, other)).toThrow(TypeError);
    const forged = { ...m, signature: schnorr.sign(m.hash, other) };
    expect(verifyManifest(forged)).toBe(false);
    expect(() => decodeManifest(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated/);
    expect(() => decodeManifest(Uint8Array.of(...bytes, 0))).toThrow(/trailing/);
  });

  it('rejects unknown version, network and mode ids, and the wrong network', () => {
    const bytes = encodeManifest(makeSale().manifest);
    const at = (i: number, v: number): Uint8Array => Uint8Array.from(bytes, (x, j) => (j === i ? v : x));
    expect(() => decodeManifest(at(0, 2))).toThrow(/version/);
    expect(() => decodeManifest(at(1, 9))).toThrow(/unknown/);
    expect(() => decodeManifest(at(2, 2))).toThrow(/unknown/);
    expect(() => decodeManifest(bytes, 'mainnet')).toThrow(/regtest, not mainnet/);
    // The codec's one error type, not a crash: a PROTOCOL error naming the version.
    expectCode(() => decodeManifest(at(0, 7)), 'PROTOCOL', /version/);
  });

  it('field rules: chunk size, sample size, amounts, timing', () => {
    const { manifest: m } = makeSale();
    expect(manifestProblem(m)).toBeNull();
    expect(manifestProblem({ ...m, chunkSize: m.chunkSize + 1 })).toMatch(/chunk size/);
    expect(manifestProblem({ ...m, sampleSize: 32 })).toMatch(/unsampled/);
    expect(manifestProblem({ ...m, minPledge: m.threshold + 1n })).toMatch(/minimum pledge/);
    expect(manifestProblem({ ...m, price: 0n })).toMatch(/price/);
    expect(manifestProblem({ ...m, mode: 'private' })).toMatch(/private mode/);
    const t = TIMING.regtest;
    const tight = m.beaconHeight + t.beaconConfirmations + t.pledgeConfirmations + t.claimMargin;
    expect(manifestProblem({ ...m, deadlineHeight: tight })).toMatch(/deadline/);
    expect(manifestProblem({ ...m, deadlineHeight: tight + 1 })).toBeNull();
    expect(manifestProblem({ ...m, deadlineHeight: 500_000_000 })).toMatch(/below 500000000/);
    expect(manifestProblem({ ...m, sellerKey: new Uint8Array(32).fill(0xff) })).toMatch(/seller key/);
  });

  it('createManifest refuses broken parameters with BAD_INPUT', () => {
    const content = encryptContent(randomBytes(1000), 10);
    const base = { content, network: 'regtest' as const, price: 1000n, sampleSize: 3, beaconHeight: 110, deadlineHeight: 150, sellerSecretKey: schnorr.utils.randomSecretKey() };
    expect(createManifest(base).minPledge).toBe(1000n);
    expectCode(() => createManifest({ ...base, sampleSize: 10 }), 'BAD_INPUT');
  });

  it('body encoding is fixed width: the length depends only on the chunk count', () => {
    const a = makeSale({ chunks: 4, sample: 1, size: 10, price: 1n, threshold: 1n, minPledge: 1n });
    const b = makeSale({ chunks: 4, sample: 3, size: 99_999, price: 2_000_000_000_000_000n, threshold: 2_000_000_000_000_000n, minPledge: 3n });
    expect(encodeManifestBody(a.manifest).length).toBe(encodeManifestBody(b.manifest).length);
  });
});

describe('anchor', () => {
  it('is a bare 34-byte OP_RETURN of the manifest hash, found in a transaction', () => {
    const { manifest: m } = makeSale();
    expect(anchorPayload(m)).toEqual(m.hash);
    const script = anchorScript(m);
    expect(script.length).toBe(34);
    expect(Array.from(script.subarray(0, 2))).toEqual([0x6a, 0x20]);
    const tx = new Transaction({ allowUnknownOutputs: true });
    tx.addInput({ txid: 'ab'.repeat(32), index: 0 });
    tx.addOutput({ script: someP2trScript(), amount: 1000n });
    tx.addOutput({ script, amount: 0n });
    tx.updateInput(0, { finalScriptWitness: [new Uint8Array(64)] });
    const raw = tx.toBytes(true, true);
    expect(findAnchorOutput(raw, m.hash)).toBe(1);
    expect(findAnchorOutput(raw, randomBytes(32))).toBe(-1);
    expect(findAnchorOutput(randomBytes(50), m.hash)).toBe(-1);
  });

  it('a manifest anchored too late (after beacon - margin) is refused', () => {
    const { manifest: m } = makeSale({ beaconHeight: 110 });
    const margin = TIMING.regtest.anchorMargin;
    expect(checkAnchorTiming(m, 110 - margin)).toEqual({ ok: true });
    expect(checkAnchorTiming(m, 110 - margin + 1)).toEqual({ ok: false, reason: 'too-late' });
    expect(checkAnchorTiming(m, 110)).toEqual({ ok: false, reason: 'too-late' });
    expect(checkAnchorTiming(m, 0)).toEqual({ ok: false, reason: 'unconfirmed' });
    expect(checkAnchorTiming({ ...m, network: 'mainnet' }, 110 - 2)).toEqual({ ok: false, reason: 'too-late' });
  });
});
