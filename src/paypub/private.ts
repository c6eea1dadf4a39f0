/**
 * PayPub private mode: one buyer, one HTLC.
 *
 * The seller picks a secret s_B, hands the buyer a signed offer and, privately, a "wrap":
 * all chunk keys encrypted under a key derived from s_B. The buyer pays into
 *   taproot(NUMS; [OP_SHA256 <SHA256(s_B)> OP_EQUALVERIFY <seller> OP_CHECKSIG,
 *                  <csv> OP_CHECKSEQUENCEVERIFY OP_DROP <buyer> OP_CHECKSIG]).
 * Claiming publishes s_B, which opens the wrap for the buyer only (nobody else has it).
 * SHA256(s_B) can double as a Lightning payment hash.
 *
 * If the wrap does not open to keys matching the manifest's commitments, then (manifest,
 * signed offer, wrap, claim transaction) is a fraud proof anyone can check: the seller
 * signed the wrap's hash, and the claim's witness holds s_B.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { DeaddropError } from '../util/errors.js';
import { Reader, sha256, taggedHash, Writer } from './bytes.js';
import { checkKey } from './content.js';
import { decodeManifest, MAX_MONEY, type Manifest } from './manifest.js';
import { KEY_BYTES, NONCE_BYTES, PAYPUB_VERSION, TAG, TIMING } from './params.js';
import {
  csvRefundLeafScript, findHashLockSpends, htlcLeafScript, pledgeInternalKey, spendScriptPath, twoLeafOutput, txidOf,
  type BuiltTx, type TwoLeafOutput,
} from './scripts.js';
import { equalBytes } from '../util/bytes.js';

/** The seller's signed terms for one buyer. */
export interface OfferFields {
  readonly manifestHash: Uint8Array;
  readonly buyerKey: Uint8Array;
  /** SHA256(s_B). */
  readonly paymentHash: Uint8Array;
  readonly amount: bigint;
  /** Relative timelock of the refund leaf, in blocks. */
  readonly csvDelay: number;
  /** SHA256 of the wrap the seller handed over. */
  readonly wrapHash: Uint8Array;
}

export interface Offer extends OfferFields {
  readonly signature: Uint8Array;
}

function offerBody(o: OfferFields): Uint8Array {
  return new Writer()
    .u8(PAYPUB_VERSION).bytes(o.manifestHash, 32).bytes(o.buyerKey, 32).bytes(o.paymentHash, 32)
    .u64(o.amount).u16(o.csvDelay).bytes(o.wrapHash, 32).finish();
}

/** Signs offer fields with the manifest's seller key. */
export function signOffer(fields: OfferFields, sellerSecretKey: Uint8Array): Offer {
  return { ...fields, signature: schnorr.sign(taggedHash(TAG.offer, offerBody(fields)), sellerSecretKey) };
}

/** True when `sellerKey` signed the offer. Never throws. */
export function verifyOffer(o: Offer, sellerKey: Uint8Array): boolean {
  try {
    return schnorr.verify(o.signature, taggedHash(TAG.offer, offerBody(o)), sellerKey);
  } catch {
    return false;
  }
}

/** body || 64-byte signature. */
export function encodeOffer(o: Offer): Uint8Array {
  return new Writer().bytes(offerBody(o)).bytes(o.signature, 64).finish();
}

/** Layout-only decoding of untrusted bytes (check with `verifyOffer`). Throws PROTOCOL. */
export function decodeOffer(bytes: Uint8Array): Offer {
  const r = new Reader(bytes, 'offer');
  if (r.u8() !== PAYPUB_VERSION) throw DeaddropError.protocol('offer: unsupported version');
  const o: Offer = {
    manifestHash: r.bytes(32), buyerKey: r.bytes(32), paymentHash: r.bytes(32), amount: r.u64(),
    csvDelay: r.u16(), wrapHash: r.bytes(32), signature: r.bytes(64),
  };
  r.end();
  if (o.amount < 1n || o.amount > MAX_MONEY || o.csvDelay < 1) throw DeaddropError.protocol('offer: bad amount or CSV delay');
  return o;
}

function wrapCipher(secret: Uint8Array, nonce: Uint8Array, manifestHash: Uint8Array, paymentHash: Uint8Array) {
  return xchacha20poly1305(taggedHash(TAG.wrap, secret), nonce, new Writer().bytes(manifestHash, 32).bytes(paymentHash, 32).finish());
}

/**
 * The wrap: version || 24-byte nonce || XChaCha20-Poly1305(key = taggedHash(wrap tag, s_B),
 * AD = manifest hash || payment hash) over all N chunk keys in index order. All keys rather
 * than the unsampled ones, so checking it needs no beacon.
 */
export function sealWrap(secret: Uint8Array, keys: readonly Uint8Array[], manifestHash: Uint8Array, paymentHash: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const plain = new Writer();
  for (const k of keys) plain.bytes(k, KEY_BYTES);
  return new Writer().u8(PAYPUB_VERSION).bytes(nonce).bytes(wrapCipher(secret, nonce, manifestHash, paymentHash).encrypt(plain.finish())).finish();
}

export type UnwrapResult =
  | { readonly ok: true; readonly keys: Uint8Array[] }
  | { readonly ok: false; readonly reason: 'bad-secret' | 'wrap-hash-mismatch' | 'bad-format' | 'aead-failed' | 'key-mismatch'; readonly index?: number };

/** Opens a wrap with s_B and checks every key against the manifest. Never throws. */
export function openWrap(m: Manifest, offer: OfferFields, wrap: Uint8Array, secret: Uint8Array): UnwrapResult {
  if (!equalBytes(sha256(secret), offer.paymentHash)) return { ok: false, reason: 'bad-secret' };
  if (!equalBytes(sha256(wrap), offer.wrapHash)) return { ok: false, reason: 'wrap-hash-mismatch' };
  if (wrap.length < 1 + NONCE_BYTES || wrap[0] !== PAYPUB_VERSION) return { ok: false, reason: 'bad-format' };
  let plain: Uint8Array;
  try {
    plain = wrapCipher(secret, wrap.subarray(1, 1 + NONCE_BYTES), m.hash, offer.paymentHash).decrypt(wrap.subarray(1 + NONCE_BYTES));
  } catch {
    return { ok: false, reason: 'aead-failed' };
  }
  if (plain.length !== m.chunkCount * KEY_BYTES) return { ok: false, reason: 'bad-format' };
  const keys = Array.from({ length: m.chunkCount }, (_, i) => plain.slice(i * KEY_BYTES, (i + 1) * KEY_BYTES));
  const bad = keys.findIndex((k, i) => !checkKey(m, i, k));
  if (bad >= 0) return { ok: false, reason: 'key-mismatch', index: bad };
  return { ok: true, keys };
}

export interface PrivateSale {
  readonly offer: Offer;
  readonly wrap: Uint8Array;
  /** s_B: the seller keeps it until claiming. */
  readonly secret: Uint8Array;
}

/** Seller: a fresh secret, its wrap of `keys` and the signed offer for `buyerKey`. */
export function createPrivateSale(o: {
  manifest: Manifest; keys: readonly Uint8Array[]; sellerSecretKey: Uint8Array; buyerKey: Uint8Array; amount?: bigint; csvDelay?: number;
}): PrivateSale {
  const m = o.manifest;
  if (m.mode !== 'private') throw DeaddropError.badInput('manifest is not a private-mode sale');
  o.keys.forEach((k, i) => {
    if (!checkKey(m, i, k)) throw new TypeError(`key ${i} does not match its commitment`);
  });
  const secret = randomBytes(32);
  const paymentHash = sha256(secret);
  const wrap = sealWrap(secret, o.keys, m.hash, paymentHash);
  const offer = signOffer({
    manifestHash: m.hash, buyerKey: o.buyerKey, paymentHash, amount: o.amount ?? m.price,
    csvDelay: o.csvDelay ?? TIMING[m.network].csvDelay, wrapHash: sha256(wrap),
  }, o.sellerSecretKey);
  return { offer, wrap, secret };
}

/** The HTLC output the buyer funds, derived from the manifest and the offer. */
export function htlcOutput(m: Manifest, offer: OfferFields): TwoLeafOutput {
  return twoLeafOutput(pledgeInternalKey(), htlcLeafScript(offer.paymentHash, m.sellerKey), csvRefundLeafScript(offer.csvDelay, offer.buyerKey), m.network);
}

export interface HtlcUtxo {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
}

/** Seller: claims the HTLC with s_B (witness [sig, s_B, leaf, control]), RBF-signalling. */
export function buildHtlcClaimTx(o: {
  manifest: Manifest; offer: OfferFields; secret: Uint8Array; sellerSecretKey: Uint8Array; utxo: HtlcUtxo; payoutScript: Uint8Array; feeRate: number;
}): BuiltTx {
  const out = htlcOutput(o.manifest, o.offer);
  return spendScriptPath({
    inputs: [{ ...o.utxo, prevScript: out.script, leaf: out.claim, secretKey: o.sellerSecretKey, stack: (sig) => [sig, o.secret] }],
    destScript: o.payoutScript,
    feeRate: o.feeRate,
  });
}

/** Buyer: refunds once the HTLC output has `csvDelay` confirmations (nSequence = csvDelay, version 2). */
export function buildCsvRefundTx(o: {
  manifest: Manifest; offer: OfferFields; buyerSecretKey: Uint8Array; utxo: HtlcUtxo; destScript: Uint8Array; feeRate: number; sequence?: number;
}): BuiltTx {
  const out = htlcOutput(o.manifest, o.offer);
  return spendScriptPath({
    inputs: [{ ...o.utxo, prevScript: out.script, leaf: out.refund, secretKey: o.buyerSecretKey, stack: (sig) => [sig], sequence: o.sequence ?? o.offer.csvDelay }],
    destScript: o.destScript,
    feeRate: o.feeRate,
  });
}

/** s_B from a transaction that claims this offer's HTLC (mempool or block), or null. Never throws. */
export function extractHtlcSecret(rawTx: Uint8Array, offer: Pick<OfferFields, 'paymentHash'>, sellerKey: Uint8Array): Uint8Array | null {
  for (const s of findHashLockSpends(rawTx)) {
    const lock = s.locks[0];
    if (s.locks.length === 1 && lock && equalBytes(lock.hash, offer.paymentHash) && equalBytes(s.signer, sellerKey)) return lock.preimage;
  }
  return null;
}

/** Everything a third party needs to convict a seller of a bad wrap. */
export interface FraudProof {
  /** The signed manifest (encodeManifest). */
  readonly manifest: Uint8Array;
  /** The signed offer (encodeOffer). */
  readonly offer: Uint8Array;
  readonly wrap: Uint8Array;
  /** The seller's claim transaction, whose witness reveals s_B. */
  readonly claimTx: Uint8Array;
}

export type FraudCheck =
  | { readonly fraud: true; readonly claimTxid: string; readonly reason: string }
  | { readonly fraud: false; readonly reason: string };

/**
 * Checks a fraud proof. `fraud: true` means: the manifest and offer are signed by the same
 * seller, the offer commits to this wrap, the claim transaction reveals the offer's s_B
 * under the seller's key, and the wrap does not open to keys matching the commitments.
 * The verifier should also see `claimTxid` confirmed on its own chain view (the seller was paid).
 */
export function checkFraudProof(p: FraudProof): FraudCheck {
  let m: Manifest;
  let offer: Offer;
  try {
    m = decodeManifest(p.manifest);
    offer = decodeOffer(p.offer);
  } catch {
    return { fraud: false, reason: 'undecodable manifest or offer' };
  }
  if (!verifyOffer(offer, m.sellerKey)) return { fraud: false, reason: 'offer not signed by the manifest seller' };
  if (!equalBytes(offer.manifestHash, m.hash)) return { fraud: false, reason: 'offer is for another manifest' };
  if (!equalBytes(sha256(p.wrap), offer.wrapHash)) return { fraud: false, reason: 'wrap is not the one the offer commits to' };
  const secret = extractHtlcSecret(p.claimTx, offer, m.sellerKey);
  if (!secret) return { fraud: false, reason: 'claim transaction does not reveal the offer secret' };
  const res = openWrap(m, offer, p.wrap, secret);
  if (res.ok) return { fraud: false, reason: 'wrap opens to the committed keys' };
  return { fraud: true, claimTxid: txidOf(p.claimTx), reason: res.reason };
}

/** True when the proof convicts the seller (see `checkFraudProof`). */
export function verifyFraudProof(p: FraudProof): boolean {
  return checkFraudProof(p).fraud;
}

/** u32 length-prefixed concatenation of the four parts, for transport. */
export function encodeFraudProof(p: FraudProof): Uint8Array {
  const w = new Writer().u8(PAYPUB_VERSION);
  for (const part of [p.manifest, p.offer, p.wrap, p.claimTx]) w.u32(part.length).bytes(part);
  return w.finish();
}

/** Inverse of `encodeFraudProof`. Throws PROTOCOL on bad layout. */
export function decodeFraudProof(bytes: Uint8Array): FraudProof {
  const r = new Reader(bytes, 'fraud proof');
  if (r.u8() !== PAYPUB_VERSION) throw DeaddropError.protocol('fraud proof: unsupported version');
  const [manifest, offer, wrap, claimTx] = [0, 1, 2, 3].map(() => r.bytes(r.u32())) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  r.end();
  return { manifest, offer, wrap, claimTx };
}
