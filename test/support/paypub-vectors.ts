/**
 * Builds the committed PayPub byte-format vectors (test/vectors/paypub/*.json): the manifest,
 * the private-mode offer, the sample reveal and the claim witness, each from fixed inputs, with
 * negative vectors that must be refused. test/paypub/vectors.test.ts rebuilds them and compares
 * with the committed files, so any format change fails until the vectors are regenerated on
 * purpose: `npx tsx test/support/paypub-vectors.ts` (writes the files).
 *
 * Schnorr signatures use BIP340 with a fixed all-zero aux_rand, so they are reproducible (the
 * production signers draw aux_rand at random; any valid signature verifies the same way).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { RawTx } from '@scure/btc-signer/script.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { taggedHash } from '../../src/paypub/bytes.js';
import { encodeManifest, manifestHash, type Manifest, type ManifestFields } from '../../src/paypub/manifest.js';
import { PAYPUB_VERSION, TAG } from '../../src/paypub/params.js';
import { encodeOffer, type Offer, type OfferFields } from '../../src/paypub/private.js';
import { encodeReveal, sampleIndices, type SampleReveal } from '../../src/paypub/sample.js';
import { buildClaimTx, pledgeOutput } from '../../src/paypub/scripts.js';
import type { NegativeVector } from './negative-vectors.js';

/** 32 deterministic bytes named by `label`. */
export function fixed(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`deaddrop paypub vector: ${label}`).digest());
}

const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** BIP340 aux_rand for reproducible signatures. */
const ZERO_AUX = new Uint8Array(32);
/** Taproot leaf version of tapscript (BIP342). */
const LEAF_VERSION = 0xc0;

/** The fixed sale every PayPub vector builds on. */
export const SELLER_SECRET = fixed('seller secret key');
export const CHUNK_KEYS: readonly Uint8Array[] = Array.from({ length: 4 }, (_, i) => fixed(`chunk key ${i}`));
export const BEACON_HASH = hex(fixed('beacon block hash'));

export function vectorManifestFields(): ManifestFields {
  return {
    version: PAYPUB_VERSION,
    network: 'regtest',
    mode: 'public',
    contentId: fixed('content id'),
    fileLength: 1000,
    chunkSize: 250,
    chunkCount: 4,
    sampleSize: 1,
    price: 50_000n,
    threshold: 100_000n,
    minPledge: 10_000n,
    beaconHeight: 110,
    deadlineHeight: 150,
    sellerKey: schnorr.getPublicKey(SELLER_SECRET),
    keyCommitments: CHUNK_KEYS.map(sha256),
    ciphertextHashes: CHUNK_KEYS.map((_, i) => fixed(`ciphertext hash ${i}`)),
  };
}

export function vectorManifest(): Manifest {
  const fields = vectorManifestFields();
  const hash = manifestHash(fields);
  return { ...fields, hash, signature: schnorr.sign(hash, SELLER_SECRET, ZERO_AUX) };
}

/** Signs `body || 64-byte signature` layouts: the body is the encoding with the signature cut off. */
function signTrailing(encoded: Uint8Array, tag: string): { body: Uint8Array; message: Uint8Array; signature: Uint8Array } {
  const body = encoded.subarray(0, encoded.length - 64);
  const message = taggedHash(tag, body);
  return { body, message, signature: schnorr.sign(message, SELLER_SECRET, ZERO_AUX) };
}

/** A copy of `b` with one bit of byte `i` flipped. */
function flip(b: Uint8Array, i: number): Uint8Array {
  const out = b.slice();
  out[i] = (out[i] as number) ^ 0x01;
  return out;
}

/** The negative vectors every signed layout shares. */
function layoutNegatives(encoded: Uint8Array, what: string, badSignature: 'decode' | 'signature'): NegativeVector[] {
  return [
    { description: `${what} truncated by one byte`, hex: hex(encoded.subarray(0, encoded.length - 1)), refusedBy: 'decode', error: 'truncated' },
    { description: `${what} with one trailing byte`, hex: hex(Uint8Array.of(...encoded, 0)), refusedBy: 'decode', error: 'trailing' },
    { description: `${what} with an unknown version`, hex: hex(Uint8Array.of(PAYPUB_VERSION + 1, ...encoded.subarray(1))), refusedBy: 'decode', error: 'version' },
    {
      description: `${what} with one bit of the signature flipped`,
      hex: hex(flip(encoded, encoded.length - 1)),
      refusedBy: badSignature,
      ...(badSignature === 'decode' ? { error: 'signature' } : {}),
    },
  ];
}

export function manifestVectors(): object {
  const m = vectorManifest();
  const encoded = encodeManifest(m);
  return {
    description: 'PayPub manifest v1 (src/paypub/manifest.ts): body || BIP340 signature over hash = taggedHash("deaddrop/paypub/manifest/v1", body). aux_rand is 32 zero bytes.',
    inputs: {
      sellerSecretKey: hex(SELLER_SECRET),
      network: m.network, mode: m.mode, contentId: hex(m.contentId), fileLength: m.fileLength, chunkSize: m.chunkSize,
      chunkCount: m.chunkCount, sampleSize: m.sampleSize, price: m.price.toString(), threshold: m.threshold.toString(),
      minPledge: m.minPledge.toString(), beaconHeight: m.beaconHeight, deadlineHeight: m.deadlineHeight,
      keyCommitments: m.keyCommitments.map(hex), ciphertextHashes: m.ciphertextHashes.map(hex),
    },
    expected: { sellerKey: hex(m.sellerKey), hash: hex(m.hash), signature: hex(m.signature), encoded: hex(encoded) },
    negative: layoutNegatives(encoded, 'manifest', 'decode'),
  };
}

export function vectorOfferFields(): OfferFields {
  return {
    manifestHash: vectorManifest().hash,
    buyerKey: schnorr.getPublicKey(fixed('buyer secret key')),
    paymentHash: sha256(fixed('buyer secret s_B')),
    amount: 50_000n,
    csvDelay: 144,
    wrapHash: fixed('wrap hash'),
  };
}

export function offerVectors(): object {
  const fields = vectorOfferFields();
  const unsigned = encodeOffer({ ...fields, signature: new Uint8Array(64) });
  const { message, signature } = signTrailing(unsigned, TAG.offer);
  const offer: Offer = { ...fields, signature };
  const encoded = encodeOffer(offer);
  return {
    description: 'PayPub private-mode offer v1 (src/paypub/private.ts): version || manifest hash || buyer key || payment hash || u64 amount || u16 CSV delay || wrap hash || BIP340 signature by the seller over taggedHash("deaddrop/paypub/offer/v1", body). aux_rand is 32 zero bytes.',
    inputs: {
      sellerSecretKey: hex(SELLER_SECRET), manifestHash: hex(fields.manifestHash), buyerKey: hex(fields.buyerKey),
      paymentHash: hex(fields.paymentHash), amount: fields.amount.toString(), csvDelay: fields.csvDelay, wrapHash: hex(fields.wrapHash),
    },
    expected: { message: hex(message), signature: hex(signature), encoded: hex(encoded) },
    negative: layoutNegatives(encoded, 'offer', 'signature'),
  };
}

export function revealVectors(): object {
  const m = vectorManifest();
  const indices = sampleIndices(m, BEACON_HASH);
  const body = { manifestHash: m.hash, beaconHash: BEACON_HASH, indices, keys: indices.map((i) => CHUNK_KEYS[i] as Uint8Array) };
  const unsigned = encodeReveal({ ...body, signature: new Uint8Array(64) });
  const { message, signature } = signTrailing(unsigned, TAG.reveal);
  const reveal: SampleReveal = { ...body, signature };
  const encoded = encodeReveal(reveal);
  return {
    description: 'PayPub sample reveal v1 (src/paypub/sample.ts): version || manifest hash || beacon hash (internal order) || u16 count || (u16 index || key)* || BIP340 signature by the seller over taggedHash("deaddrop/paypub/reveal/v1", body). The manifest is manifest.json\'s; aux_rand is 32 zero bytes.',
    inputs: { sellerSecretKey: hex(SELLER_SECRET), manifestHash: hex(m.hash), beaconHash: BEACON_HASH, chunkKeys: CHUNK_KEYS.map(hex) },
    expected: { indices, message: hex(message), signature: hex(signature), encoded: hex(encoded) },
    negative: layoutNegatives(encoded, 'reveal', 'signature'),
  };
}

/** The pledge the claim vector spends. */
export const CLAIM_PLEDGE = {
  buyerKey: schnorr.getPublicKey(fixed('pledging buyer secret key')),
  txid: hex(fixed('pledge txid')),
  vout: 1,
  value: 100_000n,
} as const;
export const CLAIM_PAYOUT_SCRIPT = Uint8Array.of(0x51, 0x20, ...schnorr.getPublicKey(fixed('payout key')));

/** BIP341 script-path sighash (SIGHASH_DEFAULT) of input 0 of a one-input claim. */
export function claimSighash(raw: Uint8Array, prevScript: Uint8Array, value: bigint, leafScript: Uint8Array): Uint8Array {
  const tx = Transaction.fromRaw(raw, { allowUnknownOutputs: true, allowUnknownInputs: true });
  return tx.preimageWitnessV1(0, [prevScript], 0, [value], undefined, leafScript, LEAF_VERSION);
}

/** `raw` with input 0's witness replaced by `witness`. */
export function withWitness(raw: Uint8Array, witness: readonly Uint8Array[]): Uint8Array {
  const tx = RawTx.decode(raw);
  return RawTx.encode({ ...tx, witnesses: [witness.slice()] });
}

export function claimVectors(): object {
  const m = vectorManifest();
  const sampled = sampleIndices(m, BEACON_HASH);
  const out = pledgeOutput(m, sampled, { buyerKey: CLAIM_PLEDGE.buyerKey });
  const built = buildClaimTx({
    manifest: m, sampled, keys: CHUNK_KEYS, sellerSecretKey: SELLER_SECRET, feeRate: 2, lockTime: 200,
    pledges: [{ ...CLAIM_PLEDGE }], payoutScript: CLAIM_PAYOUT_SCRIPT,
  });
  // Same transaction, with the signature made reproducible.
  const sighash = claimSighash(built.raw, out.script, CLAIM_PLEDGE.value, out.claim.script);
  const signature = schnorr.sign(sighash, SELLER_SECRET, ZERO_AUX);
  const items = RawTx.decode(built.raw).witnesses?.[0] ?? [];
  const witness = [signature, ...items.slice(1)];
  const raw = withWitness(built.raw, witness);
  const keys = witness.slice(1, -2);
  return {
    description: 'PayPub claim witness (src/paypub/scripts.ts): the seller spends a pledge through the claim leaf (OP_SHA256 <commitment> OP_EQUALVERIFY)* <seller key> OP_CHECKSIG with witness [signature, k_um, ..., k_u1, leaf script, control block] (unsampled keys, highest index first). The manifest is manifest.json\'s, the sample is drawn from beaconHash; aux_rand is 32 zero bytes.',
    inputs: {
      sellerSecretKey: hex(SELLER_SECRET), manifestHash: hex(m.hash), beaconHash: BEACON_HASH, chunkKeys: CHUNK_KEYS.map(hex),
      pledge: { buyerKey: hex(CLAIM_PLEDGE.buyerKey), txid: CLAIM_PLEDGE.txid, vout: CLAIM_PLEDGE.vout, value: CLAIM_PLEDGE.value.toString() },
      payoutScript: hex(CLAIM_PAYOUT_SCRIPT), feeRate: 2, lockTime: 200,
    },
    expected: {
      sampled,
      pledgeScript: hex(out.script),
      claimLeafScript: hex(out.claim.script),
      controlBlock: hex(out.claim.controlBlock),
      sighash: hex(sighash),
      signature: hex(signature),
      witness: witness.map(hex),
      tx: hex(raw),
    },
    negative: [
      { description: 'a claim missing its last unsampled key', hex: hex(withWitness(raw, [signature, ...keys.slice(0, -1), ...witness.slice(-2)])), refusedBy: 'witness' },
      { description: 'a claim with one extra witness item', hex: hex(withWitness(raw, [signature, new Uint8Array(32), ...witness.slice(1)])), refusedBy: 'witness' },
      { description: 'a claim whose first key does not hash to its commitment', hex: hex(withWitness(raw, [signature, flip(keys[0] as Uint8Array, 0), ...witness.slice(2)])), refusedBy: 'witness' },
      { description: 'a claim with a truncated signature', hex: hex(withWitness(raw, [signature.subarray(0, 63), ...witness.slice(1)])), refusedBy: 'witness' },
    ] satisfies NegativeVector[],
  };
}

/** Every file of test/vectors/paypub/, by name, as it should be committed. */
export function paypubVectorFiles(): Record<string, string> {
  const json = (v: object): string => `${JSON.stringify(v, null, 2)}\n`;
  return {
    'manifest.json': json(manifestVectors()),
    'offer.json': json(offerVectors()),
    'reveal.json': json(revealVectors()),
    'claim-witness.json': json(claimVectors()),
  };
}

export const PAYPUB_VECTOR_DIR = resolve(import.meta.dirname, '../vectors/paypub');

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  for (const [name, text] of Object.entries(paypubVectorFiles())) writeFileSync(resolve(PAYPUB_VECTOR_DIR, name), text);
}
