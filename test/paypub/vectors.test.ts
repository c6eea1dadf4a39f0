/**
 * The committed PayPub byte-format vectors (test/vectors/paypub/, built by
 * test/support/paypub-vectors.ts). Each format is checked three ways: the generator, run now,
 * rebuilds the committed file byte for byte; the committed bytes decode to the committed inputs
 * and re-encode to themselves (encoded again from the JSON inputs, not from the generator); and
 * every negative vector is refused.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { RawTx } from '@scure/btc-signer/script.js';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { taggedHash } from '../../src/paypub/bytes.js';
import { decodeManifest, encodeManifest, verifyManifest, type Manifest, type ManifestFields } from '../../src/paypub/manifest.js';
import { PAYPUB_VERSION, TAG } from '../../src/paypub/params.js';
import { decodeOffer, encodeOffer, verifyOffer, type OfferFields } from '../../src/paypub/private.js';
import { decodeReveal, encodeReveal, sampleIndices, verifyReveal } from '../../src/paypub/sample.js';
import { extractClaimKeys, findHashLockSpends, pledgeOutput } from '../../src/paypub/scripts.js';
import { PAYPUB_VECTOR_DIR, claimSighash, paypubVectorFiles } from '../support/paypub-vectors.js';
import { expectRefused, type NegativeVector } from '../support/negative-vectors.js';

const ZERO_AUX = new Uint8Array(32);

function committed<T>(name: string): T {
  return JSON.parse(readFileSync(resolve(PAYPUB_VECTOR_DIR, name), 'utf8')) as T;
}

interface ManifestVector {
  inputs: {
    sellerSecretKey: string; network: 'regtest'; mode: 'public'; contentId: string; fileLength: number; chunkSize: number;
    chunkCount: number; sampleSize: number; price: string; threshold: string; minPledge: string; beaconHeight: number;
    deadlineHeight: number; keyCommitments: string[]; ciphertextHashes: string[];
  };
  expected: { sellerKey: string; hash: string; signature: string; encoded: string };
  negative: NegativeVector[];
}

interface OfferVector {
  inputs: { sellerSecretKey: string; manifestHash: string; buyerKey: string; paymentHash: string; amount: string; csvDelay: number; wrapHash: string };
  expected: { message: string; signature: string; encoded: string };
  negative: NegativeVector[];
}

interface RevealVector {
  inputs: { sellerSecretKey: string; manifestHash: string; beaconHash: string; chunkKeys: string[] };
  expected: { indices: number[]; message: string; signature: string; encoded: string };
  negative: NegativeVector[];
}

interface ClaimVector {
  inputs: {
    sellerSecretKey: string; manifestHash: string; beaconHash: string; chunkKeys: string[];
    pledge: { buyerKey: string; txid: string; vout: number; value: string };
    payoutScript: string; feeRate: number; lockTime: number;
  };
  expected: {
    sampled: number[]; pledgeScript: string; claimLeafScript: string; controlBlock: string; sighash: string; signature: string;
    witness: string[]; tx: string;
  };
  negative: NegativeVector[];
}

const manifestVector = committed<ManifestVector>('manifest.json');

/** The manifest rebuilt from manifest.json's inputs and committed signature (no generator code). */
function manifestFromInputs(): Manifest {
  const i = manifestVector.inputs;
  const fields: ManifestFields = {
    version: PAYPUB_VERSION, network: i.network, mode: i.mode, contentId: fromHex(i.contentId), fileLength: i.fileLength,
    chunkSize: i.chunkSize, chunkCount: i.chunkCount, sampleSize: i.sampleSize, price: BigInt(i.price), threshold: BigInt(i.threshold),
    minPledge: BigInt(i.minPledge), beaconHeight: i.beaconHeight, deadlineHeight: i.deadlineHeight,
    sellerKey: schnorr.getPublicKey(fromHex(i.sellerSecretKey)), keyCommitments: i.keyCommitments.map(fromHex),
    ciphertextHashes: i.ciphertextHashes.map(fromHex),
  };
  return { ...fields, hash: fromHex(manifestVector.expected.hash), signature: fromHex(manifestVector.expected.signature) };
}

describe('PayPub vectors (test/vectors/paypub/)', () => {
  it('the generator rebuilds every committed file byte for byte', () => {
    const files = paypubVectorFiles();
    expect(Object.keys(files).sort()).toEqual(['claim-witness.json', 'manifest.json', 'offer.json', 'reveal.json']);
    for (const [name, text] of Object.entries(files)) expect(text, name).toBe(readFileSync(resolve(PAYPUB_VECTOR_DIR, name), 'utf8'));
  });

  it('manifest: decodes, verifies and re-encodes from its inputs; noble agrees on hash and signature', () => {
    const v = manifestVector;
    const m = manifestFromInputs();
    const encoded = encodeManifest(m);
    expect(toHex(encoded)).toBe(v.expected.encoded);
    expect(toHex(m.sellerKey)).toBe(v.expected.sellerKey);
    expect(toHex(taggedHash(TAG.manifest, encoded.subarray(0, encoded.length - 64)))).toBe(v.expected.hash);
    expect(toHex(schnorr.sign(m.hash, fromHex(v.inputs.sellerSecretKey), ZERO_AUX))).toBe(v.expected.signature);
    const d = decodeManifest(fromHex(v.expected.encoded), 'regtest');
    expect(verifyManifest(d)).toBe(true);
    expect(d).toEqual(m);
    expectRefused(v.negative, (b) => decodeManifest(b), () => true);
  });

  it('offer: decodes, verifies and re-encodes from its inputs', () => {
    const v = committed<OfferVector>('offer.json');
    const i = v.inputs;
    const fields: OfferFields = {
      manifestHash: fromHex(i.manifestHash), buyerKey: fromHex(i.buyerKey), paymentHash: fromHex(i.paymentHash), amount: BigInt(i.amount),
      csvDelay: i.csvDelay, wrapHash: fromHex(i.wrapHash),
    };
    const encoded = encodeOffer({ ...fields, signature: fromHex(v.expected.signature) });
    expect(toHex(encoded)).toBe(v.expected.encoded);
    expect(toHex(taggedHash(TAG.offer, encoded.subarray(0, encoded.length - 64)))).toBe(v.expected.message);
    expect(toHex(schnorr.sign(fromHex(v.expected.message), fromHex(i.sellerSecretKey), ZERO_AUX))).toBe(v.expected.signature);
    const sellerKey = schnorr.getPublicKey(fromHex(i.sellerSecretKey));
    const d = decodeOffer(encoded);
    expect(d).toEqual({ ...fields, signature: fromHex(v.expected.signature) });
    expect(verifyOffer(d, sellerKey)).toBe(true);
    expect(i.manifestHash).toBe(manifestVector.expected.hash);
    expectRefused(v.negative, (b) => decodeOffer(b), (o) => verifyOffer(o as ReturnType<typeof decodeOffer>, sellerKey));
  });

  it('reveal: decodes, passes every check up to the chunks, and re-encodes from its inputs', () => {
    const v = committed<RevealVector>('reveal.json');
    const m = manifestFromInputs();
    expect(v.inputs.manifestHash).toBe(toHex(m.hash));
    expect(sampleIndices(m, v.inputs.beaconHash)).toEqual(v.expected.indices);
    const keys = v.expected.indices.map((idx) => fromHex(v.inputs.chunkKeys[idx] as string));
    const reveal = { manifestHash: m.hash, beaconHash: v.inputs.beaconHash, indices: v.expected.indices, keys, signature: fromHex(v.expected.signature) };
    const encoded = encodeReveal(reveal);
    expect(toHex(encoded)).toBe(v.expected.encoded);
    expect(toHex(taggedHash(TAG.reveal, encoded.subarray(0, encoded.length - 64)))).toBe(v.expected.message);
    expect(toHex(schnorr.sign(fromHex(v.expected.message), fromHex(v.inputs.sellerSecretKey), ZERO_AUX))).toBe(v.expected.signature);
    const d = decodeReveal(encoded);
    expect(d).toEqual(reveal);
    // No ciphertexts are given, so the furthest a valid reveal gets is asking for the first chunk.
    const check = (r: unknown): boolean => {
      const c = verifyReveal(m, v.inputs.beaconHash, r as ReturnType<typeof decodeReveal>, () => undefined);
      return c.ok || c.reason === 'missing-chunk';
    };
    expect(verifyReveal(m, v.inputs.beaconHash, d, () => undefined)).toEqual({ ok: false, reason: 'missing-chunk', index: v.expected.indices[0] });
    expectRefused(v.negative, (b) => decodeReveal(b), check);
  });

  it('claim witness: the pledge, the leaf and the witness re-derive; keys are extracted and the signature verifies', () => {
    const v = committed<ClaimVector>('claim-witness.json');
    const m = manifestFromInputs();
    expect(v.inputs.manifestHash).toBe(toHex(m.hash));
    const sampled = sampleIndices(m, v.inputs.beaconHash);
    expect(sampled).toEqual(v.expected.sampled);
    const p = v.inputs.pledge;
    const out = pledgeOutput(m, sampled, { buyerKey: fromHex(p.buyerKey) });
    expect(toHex(out.script)).toBe(v.expected.pledgeScript);
    expect(toHex(out.claim.script)).toBe(v.expected.claimLeafScript);
    expect(toHex(out.claim.controlBlock)).toBe(v.expected.controlBlock);
    // The witness layout: [signature, unsampled keys from the highest index down, leaf, control block].
    const unsampled = m.keyCommitments.map((_, i) => i).filter((i) => !sampled.includes(i));
    const witness = [v.expected.signature, ...unsampled.reverse().map((i) => v.inputs.chunkKeys[i] as string), v.expected.claimLeafScript, v.expected.controlBlock];
    expect(witness).toEqual(v.expected.witness);
    const tx = fromHex(v.expected.tx);
    expect((RawTx.decode(tx).witnesses?.[0] ?? []).map(toHex)).toEqual(v.expected.witness);
    const sighash = claimSighash(tx, out.script, BigInt(p.value), out.claim.script);
    expect(toHex(sighash)).toBe(v.expected.sighash);
    expect(schnorr.verify(fromHex(v.expected.signature), sighash, m.sellerKey)).toBe(true);
    expect(toHex(schnorr.sign(sighash, fromHex(v.inputs.sellerSecretKey), ZERO_AUX))).toBe(v.expected.signature);
    const spends = findHashLockSpends(tx);
    expect(spends.map((s) => toHex(s.signer))).toEqual([toHex(m.sellerKey)]);
    const keys = extractClaimKeys(tx, m);
    expect([...keys.keys()].sort()).toEqual(unsampled.sort());
    for (const [i, k] of keys) expect(toHex(k)).toBe(v.inputs.chunkKeys[i]);
    // A refused witness teaches nothing: no hash-lock spend, no key.
    expect(v.negative.length).toBeGreaterThanOrEqual(3);
    for (const n of v.negative) {
      expect(n.refusedBy).toBe('witness');
      expect(findHashLockSpends(fromHex(n.hex)), n.description).toEqual([]);
      expect(extractClaimKeys(fromHex(n.hex), m).size, n.description).toBe(0);
    }
  });
});
