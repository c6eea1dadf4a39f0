/**
 * Chunk keys derived from one per-sale secret t (the adaptor-claim variant, docs/protocol/paypub.md §12).
 *
 *   T   = t·G                                   committed by the seller's signed terms
 *   H_i = hash_to_curve(contentId ‖ u32 i)      RFC 9380 secp256k1_XMD:SHA-256_SSWU_RO_, our DST
 *   K_i = t·H_i
 *   k_i = taggedHash("deaddrop/paypub/chunk-key/v2", K_i compressed)
 *
 * Why points and not k_i = hash(t, i): the sample must show, BEFORE anyone pays, that the
 * sampled keys come from the same t whose release the claim forces. With a hash nobody but the
 * seller can check that, and a seller could sample real keys while t unlocks nothing. With
 * K_i = t·H_i the seller attaches a Chaum–Pedersen proof that log_G(T) = log_{H_i}(K_i) to each
 * sampled key. Computing K_j for an unsampled j from T and the revealed K_i is the computational
 * Diffie–Hellman problem (the H_i come from a hash to the curve, so nobody knows their logs).
 *
 * DLEQ proof (64 bytes, c ‖ z): nonce r, A = r·G, B = r·H, c = taggedHash(dleq tag,
 * T ‖ H ‖ K ‖ A ‖ B ‖ context) mod n, z = r + c·t. The verifier recomputes A = z·G − c·T,
 * B = z·H − c·K and checks c. The context binds a proof to one sale and index.
 */
import { secp256k1, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE, numberToBytesBE } from '@noble/curves/utils.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { taggedHash, u32be } from './bytes.js';
import { checkCiphertext, decryptRaw, type ContentDescriptor } from './content.js';
import { concatBytes, equalBytes } from '../util/bytes.js';

const Point = secp256k1.Point;
type PointT = InstanceType<typeof Point>;
const ORDER = Point.Fn.ORDER;

export const CHUNK_KEY_TAG = {
  /** Domain separation tag of the hash to the curve. */
  point: 'deaddrop/paypub/chunk-point/v2',
  key: 'deaddrop/paypub/chunk-key/v2',
  dleq: 'deaddrop/paypub/dleq/v2',
  dleqNonce: 'deaddrop/paypub/dleq-nonce/v2',
} as const;

const mod = (a: bigint): bigint => Point.Fn.create(a);
const num = bytesToNumberBE;
const be32 = (n: bigint): Uint8Array => numberToBytesBE(n, 32);

/** Parses a 32-byte scalar in 1..n−1 (TypeError on a wrong length, RangeError out of range). */
export function secretScalar(t: Uint8Array): bigint {
  if (!(t instanceof Uint8Array) || t.length !== 32) throw new TypeError('secret must be 32 bytes');
  const v = num(t);
  if (v <= 0n || v >= ORDER) throw new RangeError('secret out of range');
  return v;
}

/** A fresh per-sale secret t (32 bytes, 1..n−1). */
export function newSaleSecret(): Uint8Array {
  for (;;) {
    const t = randomBytes(32);
    const v = num(t);
    if (v > 0n && v < ORDER) return t;
  }
}

/** T = t·G, 33-byte compressed. */
export function salePoint(t: Uint8Array): Uint8Array {
  return Point.BASE.multiply(secretScalar(t)).toBytes(true);
}

/** H_i = hash_to_curve(contentId ‖ u32 i), 33-byte compressed. */
export function chunkPoint(contentId: Uint8Array, index: number): Uint8Array {
  if (!(contentId instanceof Uint8Array) || contentId.length !== 32) throw new TypeError('content id must be 32 bytes');
  if (!Number.isSafeInteger(index) || index < 0 || index > 0xffffffff) throw new RangeError(`chunk index out of range: ${index}`);
  const msg = concatBytes(contentId, u32be(index));
  return secp256k1_hasher.hashToCurve(msg, { DST: CHUNK_KEY_TAG.point }).toBytes(true);
}

/** K_i = t·H_i (33-byte compressed), the seller's side. */
export function chunkKeyPoint(t: Uint8Array, contentId: Uint8Array, index: number): Uint8Array {
  return Point.fromBytes(chunkPoint(contentId, index)).multiply(secretScalar(t)).toBytes(true);
}

/** k_i = taggedHash(chunk-key tag, K_i compressed): the 32-byte XChaCha20-Poly1305 key. */
export function chunkKeyFromPoint(K: Uint8Array): Uint8Array {
  if (!(K instanceof Uint8Array) || K.length !== 33) throw new TypeError('key point must be 33 bytes');
  return taggedHash(CHUNK_KEY_TAG.key, K);
}

/** All N chunk keys of a sale from t (what the seller encrypts with and what anyone derives once t is public). */
export function deriveChunkKeys(t: Uint8Array, contentId: Uint8Array, chunkCount: number): Uint8Array[] {
  const x = secretScalar(t);
  return Array.from({ length: chunkCount }, (_, i) => chunkKeyFromPoint(Point.fromBytes(chunkPoint(contentId, i)).multiply(x).toBytes(true)));
}

/** The context a sampled key's proof is bound to: the content id and the index. */
export function dleqContext(contentId: Uint8Array, index: number): Uint8Array {
  return concatBytes(contentId, u32be(index));
}

function challenge(T: Uint8Array, H: Uint8Array, K: Uint8Array, A: PointT, B: PointT, context: Uint8Array): bigint {
  return mod(num(taggedHash(CHUNK_KEY_TAG.dleq, T, H, K, A.toBytes(true), B.toBytes(true), context)));
}

/**
 * Proof (64 bytes: c ‖ z) that K = t·H for the t of T = t·G. `aux` feeds the nonce
 * (random by default; the nonce also hashes t, so a bad RNG does not leak t).
 */
export function dleqProve(t: Uint8Array, H: Uint8Array, context: Uint8Array, aux: Uint8Array = randomBytes(32)): Uint8Array {
  const x = secretScalar(t);
  const Hp = Point.fromBytes(H);
  const T = Point.BASE.multiply(x).toBytes(true);
  const K = Hp.multiply(x).toBytes(true);
  const r = mod(num(taggedHash(CHUNK_KEY_TAG.dleqNonce, be32(x), H, context, aux)));
  if (r === 0n) throw new Error('DLEQ nonce is zero: retry with other aux');
  const c = challenge(T, H, K, Point.BASE.multiply(r), Hp.multiply(r), context);
  return concatBytes(be32(c), be32(mod(r + c * x)));
}

/** True when `proof` shows log_G(T) = log_H(K). Never throws: malformed input gives false. */
export function dleqVerify(T: Uint8Array, H: Uint8Array, K: Uint8Array, proof: Uint8Array, context: Uint8Array): boolean {
  try {
    if (proof.length !== 64 || T.length !== 33 || H.length !== 33 || K.length !== 33) return false;
    const c = num(proof.subarray(0, 32));
    const z = num(proof.subarray(32));
    if (c >= ORDER || z >= ORDER) return false;
    const Tp = Point.fromBytes(T);
    const Hp = Point.fromBytes(H);
    const Kp = Point.fromBytes(K);
    const zG = z === 0n ? Point.ZERO : Point.BASE.multiply(z);
    const zH = z === 0n ? Point.ZERO : Hp.multiply(z);
    const cT = c === 0n ? Point.ZERO : Tp.multiply(c);
    const cK = c === 0n ? Point.ZERO : Kp.multiply(c);
    const A = zG.subtract(cT);
    const B = zH.subtract(cK);
    if (A.equals(Point.ZERO) || B.equals(Point.ZERO)) return false;
    return challenge(T, H, K, A, B, context) === c;
  } catch {
    return false;
  }
}

/** One sampled key as the seller reveals it: K_i and the proof that it comes from T. */
export interface SampledKeyProof {
  readonly index: number;
  /** K_i, 33-byte compressed. */
  readonly keyPoint: Uint8Array;
  /** 64-byte DLEQ proof. */
  readonly proof: Uint8Array;
}

/** The seller's sampled keys with proofs. */
export function proveSampledKeys(t: Uint8Array, contentId: Uint8Array, sampled: readonly number[], aux?: (index: number) => Uint8Array): SampledKeyProof[] {
  return sampled.map((index) => {
    const H = chunkPoint(contentId, index);
    return { index, keyPoint: chunkKeyPoint(t, contentId, index), proof: dleqProve(t, H, dleqContext(contentId, index), aux?.(index)) };
  });
}

/**
 * Checks sampled keys against T: each proof must verify and the indices must be exactly
 * `sampled`. Returns the chunk keys by index, or null on any failure.
 */
export function verifySampledKeys(T: Uint8Array, contentId: Uint8Array, sampled: readonly number[], proofs: readonly SampledKeyProof[]): Map<number, Uint8Array> | null {
  if (proofs.length !== sampled.length) return null;
  const keys = new Map<number, Uint8Array>();
  for (const [j, p] of proofs.entries()) {
    if (p.index !== sampled[j]) return null;
    let H: Uint8Array;
    try {
      H = chunkPoint(contentId, p.index);
    } catch {
      return null;
    }
    if (!dleqVerify(T, H, p.keyPoint, p.proof, dleqContext(contentId, p.index))) return null;
    keys.set(p.index, chunkKeyFromPoint(p.keyPoint));
  }
  return keys;
}

/** True when t is the secret of T. */
export function isSaleSecret(T: Uint8Array, t: Uint8Array): boolean {
  try {
    return equalBytes(salePoint(t), T);
  } catch {
    return false;
  }
}

/** What a fraud proof is checked against: the seller-signed terms' content fields and T. */
export type AdaptorContentTerms = Pick<ContentDescriptor, 'contentId' | 'fileLength' | 'chunkCount' | 'ciphertextHashes'> & { readonly salePoint: Uint8Array };

/**
 * Fraud proof of the adaptor variant: (signed terms, t, index, ciphertext). True when t is the
 * secret of the committed T (so it was released by a claim: nothing else publishes it), the
 * ciphertext is the committed one (hash and length), and the key derived from t fails to open
 * it. The caller checks the seller's signature on the terms and sees the claim on its own chain.
 * An honest seller cannot be framed: with the right t every committed chunk opens.
 */
export function verifyAdaptorFraudProof(terms: AdaptorContentTerms, t: Uint8Array, index: number, ciphertext: Uint8Array): boolean {
  if (!isSaleSecret(terms.salePoint, t)) return false;
  if (!Number.isSafeInteger(index) || index < 0 || index >= terms.chunkCount) return false;
  const desc = { ...terms, keyCommitments: [] as Uint8Array[] };
  if (!checkCiphertext(desc, index, ciphertext)) return false;
  const key = chunkKeyFromPoint(chunkKeyPoint(t, terms.contentId, index));
  return !decryptRaw(terms, index, ciphertext, key).ok;
}
