/**
 * Adaptor-signature claims (src/paypub/adaptor-claim.ts): the committed vector, the sighash the
 * buyer pre-signs against the one the claim transaction really has, extraction of t by anyone
 * holding a pre-signature, the claim's size, and the fraud proof. Node acceptance of these
 * transactions is in adaptor-claim.int.test.ts.
 */
import { readFileSync } from 'node:fs';
import { schnorr } from '@noble/curves/secp256k1.js';
import { RawTx } from '@scure/btc-signer/script.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { describe, expect, it } from 'vitest';
import {
  SIGHASH_NONE_ACP, adaptorClaimInputVbytes, adaptorPledgeOutput, buildAdaptorClaimTx, claimInputSighash, extractSaleSecret,
  findAdaptorClaimSpends, presignPledgeClaim, verifyPledgePresig, type AdaptorSaleTerms, type PresignedPledge,
} from '../../src/paypub/adaptor-claim.js';
import { decodeAdaptorManifest, decodeAdaptorReveal, encodeAdaptorManifest, encodeAdaptorReveal, verifyAdaptorReveal } from '../../src/paypub/adaptor-manifest.js';
import { chunkKeyFromPoint, chunkPoint, deriveChunkKeys, dleqContext, dleqVerify, newSaleSecret, salePoint, verifyAdaptorFraudProof } from '../../src/paypub/chunk-keys.js';
import { encryptContentWithKeys } from '../../src/paypub/content.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { ADAPTOR_VECTOR, ADAPTOR_VECTOR_FILE, adaptorClaimVectorText, adaptorVectorTerms } from '../support/adaptor-claim-vectors.js';
import { keypair, someP2trScript } from '../support/paypub-fixtures.js';

interface Vector {
  expected: {
    salePoint: string;
    chunks: { index: number; H: string; K: string; key: string; dleqProof: string }[];
    pledges: { buyerKey: string; script: string; claimLeaf: string; controlBlock: string; sighash: string; presig: string }[];
    claim: { tx: string; txid: string; vsize: number; weight: number; fee: string };
    manifest: string;
    manifestHash: string;
    beaconHash: string;
    reveal: string;
    ciphertexts: string[];
  };
}
const vector = JSON.parse(readFileSync(ADAPTOR_VECTOR_FILE, 'utf8')) as Vector;

function sale(n: number): { terms: AdaptorSaleTerms; t: Uint8Array; sellerSk: Uint8Array; pledges: (PresignedPledge & { sk: Uint8Array })[] } {
  const t = newSaleSecret();
  const seller = keypair();
  const terms: AdaptorSaleTerms = { network: 'regtest', sellerKey: seller.pk, deadlineHeight: 500, salePoint: salePoint(t) };
  const pledges = Array.from({ length: n }, (_, i) => {
    const b = keypair();
    const p = { txid: toHex(fixedish(i)), vout: i, value: 30_000n + BigInt(i), buyerKey: b.pk };
    return { ...p, sk: b.sk, presig: presignPledgeClaim(terms, p, b.sk) };
  });
  return { terms, t, sellerSk: seller.sk, pledges };
}
const fixedish = (i: number): Uint8Array => new Uint8Array(32).fill(i + 1);

describe('adaptor claim vector (test/vectors/paypub/adaptor-claim.json)', () => {
  it('the generator rebuilds the committed file byte for byte', () => {
    expect(adaptorClaimVectorText()).toBe(readFileSync(ADAPTOR_VECTOR_FILE, 'utf8'));
  });

  it('chunk points, keys and DLEQ proofs check out from the committed bytes', () => {
    const T = fromHex(vector.expected.salePoint);
    for (const c of vector.expected.chunks) {
      expect(toHex(chunkPoint(ADAPTOR_VECTOR.contentId, c.index))).toBe(c.H);
      expect(toHex(chunkKeyFromPoint(fromHex(c.K)))).toBe(c.key);
      expect(dleqVerify(T, fromHex(c.H), fromHex(c.K), fromHex(c.dleqProof), dleqContext(ADAPTOR_VECTOR.contentId, c.index))).toBe(true);
    }
    expect(deriveChunkKeys(ADAPTOR_VECTOR.saleSecret, ADAPTOR_VECTOR.contentId, 4).map(toHex)).toEqual(vector.expected.chunks.map((c) => c.key));
  });

  it('the claim transaction: witness layout, both signatures verify against sighashes computed from the transaction itself, t comes out', () => {
    const raw = fromHex(vector.expected.claim.tx);
    const tx = Transaction.fromRaw(raw, { allowUnknownOutputs: true, allowUnknownInputs: true });
    expect(tx.version).toBe(2);
    expect(tx.lockTime).toBe(0);
    const scripts = vector.expected.pledges.map((p) => fromHex(p.script));
    const amounts = ADAPTOR_VECTOR.pledges.map((p) => p.value);
    const witnesses = RawTx.decode(raw).witnesses ?? [];
    const sellerKey = schnorr.getPublicKey(ADAPTOR_VECTOR.sellerSecretKey);
    vector.expected.pledges.forEach((p, idx) => {
      const [sellerSig, buyerSig, leaf, control] = witnesses[idx] as Uint8Array[];
      expect(witnesses[idx]).toHaveLength(4);
      expect(toHex(leaf as Uint8Array)).toBe(p.claimLeaf);
      expect(toHex(control as Uint8Array)).toBe(p.controlBlock);
      expect(tx.getInput(idx).sequence).toBe(0xfffffffd);
      const sellerMsg = tx.preimageWitnessV1(idx, scripts, 0, amounts, undefined, leaf, 0xc0);
      expect(schnorr.verify(sellerSig as Uint8Array, sellerMsg, sellerKey)).toBe(true);
      expect(buyerSig).toHaveLength(65);
      expect((buyerSig as Uint8Array)[64]).toBe(SIGHASH_NONE_ACP);
      const buyerMsg = tx.preimageWitnessV1(idx, scripts, SIGHASH_NONE_ACP, amounts, undefined, leaf, 0xc0);
      expect(toHex(buyerMsg)).toBe(p.sighash);
      expect(schnorr.verify((buyerSig as Uint8Array).subarray(0, 64), buyerMsg, fromHex(p.buyerKey))).toBe(true);
    });
    const t = extractSaleSecret(raw, adaptorVectorTerms(), [fromHex(vector.expected.pledges[1]!.presig)]);
    expect(toHex(t ?? new Uint8Array())).toBe(toHex(ADAPTOR_VECTOR.saleSecret));
  });
});

describe('version 2 manifest and reveal vector', () => {
  it('the committed bytes decode, verify and re-encode; the revealed key opens its chunk', () => {
    const m = decodeAdaptorManifest(fromHex(vector.expected.manifest), 'regtest');
    expect(toHex(m.hash)).toBe(vector.expected.manifestHash);
    expect(toHex(encodeAdaptorManifest(m))).toBe(vector.expected.manifest);
    expect(toHex(m.salePoint)).toBe(vector.expected.salePoint);
    const r = decodeAdaptorReveal(fromHex(vector.expected.reveal));
    expect(toHex(encodeAdaptorReveal(r))).toBe(vector.expected.reveal);
    const check = verifyAdaptorReveal(m, vector.expected.beaconHash, r, (i) => (vector.expected.ciphertexts[i] ? fromHex(vector.expected.ciphertexts[i]) : undefined));
    expect(check.ok).toBe(true);
    if (check.ok) for (const [i, k] of check.keys) expect(toHex(k)).toBe(vector.expected.chunks[i]!.key);
  });
});

describe('pre-signatures', () => {
  it('the pre-signed message does not depend on the claim: position, other inputs, outputs', () => {
    const s = sale(3);
    const a = buildAdaptorClaimTx({ terms: s.terms, saleSecret: s.t, sellerSecretKey: s.sellerSk, pledges: s.pledges, payoutScript: someP2trScript(), feeRate: 1 });
    const b = buildAdaptorClaimTx({ terms: s.terms, saleSecret: s.t, sellerSecretKey: s.sellerSk, pledges: [s.pledges[2]!], payoutScript: someP2trScript(), feeRate: 7 });
    const sigOf = (raw: Uint8Array, idx: number): string => toHex((RawTx.decode(raw).witnesses?.[idx]?.[1] as Uint8Array));
    // The completed buyer signature of pledge 2 is the same in both claims: it committed to its input only.
    expect(sigOf(a.raw, 2)).toBe(sigOf(b.raw, 0));
    expect(schnorr.verify(fromHex(sigOf(b.raw, 0)).subarray(0, 64), claimInputSighash(s.terms, s.pledges[2]!), s.pledges[2]!.buyerKey)).toBe(true);
  });

  it('verify refuses another pledge, another T, another buyer and tampering', () => {
    const s = sale(2);
    const p0 = s.pledges[0]!;
    const p1 = s.pledges[1]!;
    expect(verifyPledgePresig(s.terms, p0, p0.presig)).toBe(true);
    expect(verifyPledgePresig(s.terms, p1, p0.presig)).toBe(false);
    expect(verifyPledgePresig(s.terms, { ...p0, value: p0.value + 1n }, p0.presig)).toBe(false);
    expect(verifyPledgePresig({ ...s.terms, salePoint: salePoint(newSaleSecret()) }, p0, p0.presig)).toBe(false);
    expect(verifyPledgePresig({ ...s.terms, deadlineHeight: 501 }, p0, p0.presig)).toBe(false);
    const bad = p0.presig.slice();
    bad[64] = (bad[64] as number) ^ 1;
    expect(verifyPledgePresig(s.terms, p0, bad)).toBe(false);
    expect(verifyPledgePresig(s.terms, p0, p0.presig.subarray(0, 64))).toBe(false);
    expect(() => presignPledgeClaim(s.terms, p0, keypair().sk)).toThrow(TypeError);
  });

  it('the seller refuses to build a claim with a bad pre-signature, a wrong key, or nothing to claim', () => {
    const s = sale(2);
    const pledges = [s.pledges[0]!, { ...s.pledges[1]!, presig: s.pledges[0]!.presig }];
    const o = { terms: s.terms, saleSecret: s.t, sellerSecretKey: s.sellerSk, payoutScript: someP2trScript(), feeRate: 1 };
    expect(() => buildAdaptorClaimTx({ ...o, pledges })).toThrow(/does not verify/);
    expect(() => buildAdaptorClaimTx({ ...o, pledges: s.pledges, sellerSecretKey: keypair().sk })).toThrow(TypeError);
    expect(() => buildAdaptorClaimTx({ ...o, pledges: [] })).toThrow(RangeError);
  });
});

describe('extraction', () => {
  it('anyone with any one pre-signature gets t; without one, or with another T, nothing', () => {
    const s = sale(3);
    const claim = buildAdaptorClaimTx({ terms: s.terms, saleSecret: s.t, sellerSecretKey: s.sellerSk, pledges: s.pledges, payoutScript: someP2trScript(), feeRate: 1 });
    for (const p of s.pledges) expect(toHex(extractSaleSecret(claim.raw, s.terms, [p.presig]) ?? new Uint8Array())).toBe(toHex(s.t));
    expect(extractSaleSecret(claim.raw, s.terms, [])).toBeNull();
    expect(extractSaleSecret(claim.raw, { ...s.terms, salePoint: salePoint(newSaleSecret()) }, s.pledges.map((p) => p.presig))).toBeNull();
    expect(extractSaleSecret(claim.raw, { ...s.terms, sellerKey: keypair().pk }, s.pledges.map((p) => p.presig))).toBeNull();
    expect(extractSaleSecret(sale(1).pledges[0]!.presig, s.terms, [])).toBeNull();
    expect(extractSaleSecret(new Uint8Array([1, 2, 3]), s.terms, [s.pledges[0]!.presig])).toBeNull();
  });

  it('drops an annex and still finds the spend', () => {
    const s = sale(1);
    const claim = buildAdaptorClaimTx({ terms: s.terms, saleSecret: s.t, sellerSecretKey: s.sellerSk, pledges: s.pledges, payoutScript: someP2trScript(), feeRate: 1 });
    const d = RawTx.decode(claim.raw);
    const withAnnex = RawTx.encode({ ...d, witnesses: [[...(d.witnesses?.[0] ?? []), Uint8Array.of(0x50, 1, 2)]] });
    expect(findAdaptorClaimSpends(withAnnex)).toHaveLength(1);
    expect(toHex(extractSaleSecret(withAnnex, s.terms, [s.pledges[0]!.presig]) ?? new Uint8Array())).toBe(toHex(s.t));
  });
});

describe('size', () => {
  it('each pledge adds 107.75 vB (431 weight units), whatever the chunk count', () => {
    const s = sale(10);
    const build = (n: number): { weight: number; vsize: number } =>
      buildAdaptorClaimTx({ terms: s.terms, saleSecret: s.t, sellerSecretKey: s.sellerSk, pledges: s.pledges.slice(0, n), payoutScript: someP2trScript(), feeRate: 1 });
    expect(build(2).weight - build(1).weight).toBe(431);
    expect(build(10).weight - build(9).weight).toBe(431);
    expect(adaptorClaimInputVbytes()).toBe(107.75);
    expect(build(10).vsize / 10).toBeLessThan(150);
  });

  it('the pledge output depends on terms and buyer only', () => {
    const s = sale(1);
    const p = s.pledges[0]!;
    expect(toHex(adaptorPledgeOutput(s.terms, p.buyerKey).script)).toBe(toHex(adaptorPledgeOutput({ ...s.terms }, p.buyerKey).script));
    expect(toHex(adaptorPledgeOutput({ ...s.terms, deadlineHeight: 501 }, p.buyerKey).script)).not.toBe(toHex(adaptorPledgeOutput(s.terms, p.buyerKey).script));
  });
});

describe('fraud proof', () => {
  const t = newSaleSecret();
  const contentId = new Uint8Array(32).fill(9);
  const plaintext = new Uint8Array(400).map((_, i) => i);
  const good = encryptContentWithKeys(plaintext, deriveChunkKeys(t, contentId, 8), contentId);
  const terms = { contentId, fileLength: 400, chunkCount: 8, ciphertextHashes: good.ciphertextHashes, salePoint: salePoint(t) };

  it('an honest seller cannot be framed', () => {
    for (let i = 0; i < 8; i++) expect(verifyAdaptorFraudProof(terms, t, i, good.ciphertexts[i]!)).toBe(false);
  });

  it('a committed chunk that the released t does not open is proven bad', () => {
    const bad = encryptContentWithKeys(plaintext, deriveChunkKeys(newSaleSecret(), contentId, 8), contentId);
    const cheat = { ...terms, ciphertextHashes: terms.ciphertextHashes.map((h, i) => (i === 5 ? bad.ciphertextHashes[5]! : h)) };
    expect(verifyAdaptorFraudProof(cheat, t, 5, bad.ciphertexts[5]!)).toBe(true);
    // Not with a wrong t, a chunk that is not the committed one, or an index out of range.
    expect(verifyAdaptorFraudProof(cheat, newSaleSecret(), 5, bad.ciphertexts[5]!)).toBe(false);
    expect(verifyAdaptorFraudProof(cheat, t, 4, bad.ciphertexts[5]!)).toBe(false);
    expect(verifyAdaptorFraudProof(cheat, t, 8, bad.ciphertexts[5]!)).toBe(false);
  });
});
