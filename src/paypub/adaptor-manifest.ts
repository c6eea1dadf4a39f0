/**
 * Version 2 of the PayPub manifest and sample reveal, for adaptor claims (docs/protocol/paypub.md
 * §12). Same canonical binary rules as version 1 (manifest.ts, sample.ts), with two changes:
 *
 * - the manifest carries T = t·G (33 bytes) instead of the N key commitments: every chunk key
 *   follows from t (chunk-keys.ts), so T commits to all of them;
 * - the reveal carries, per sampled index, K_i (33 bytes) and its DLEQ proof (64 bytes) instead
 *   of the 32-byte key: a buyer checks the proof against T, then derives k_i from K_i.
 *
 * Separate decoders on purpose: the version 1 services must never take a version 2 manifest for
 * one of theirs (they would build hash-lock pledges it cannot be claimed through).
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import type { AdaptorSaleTerms } from './adaptor-claim.js';
import { blockHashToBytes, Reader, taggedHash, Writer } from './bytes.js';
import { chunkKeyFromPoint, chunkKeyPoint, proveSampledKeys, salePoint as salePointOf, verifySampledKeys, type SampledKeyProof } from './chunk-keys.js';
import { checkCiphertext, decryptRaw, type EncryptedContent } from './content.js';
import { amountProblem, chunkingProblem, type ManifestHeader, readManifestHeader, timingProblem, validXOnly, writeManifestHeader } from './manifest.js';
import { NETWORK_IDS } from './params.js';
import { sampleIndices } from './sample.js';
import { equalBytes, toHex } from '../util/bytes.js';

export const ADAPTOR_MANIFEST_VERSION = 2;
export const ADAPTOR_TAG = {
  manifest: 'deaddrop/paypub/manifest/v2',
  reveal: 'deaddrop/paypub/reveal/v2',
} as const;

/** The signed fields of a version 2 manifest, in wire order: the shared header (mode 'public' only; private mode keeps its own offer, section 6), then T and the ciphertext hashes. */
export interface AdaptorManifestFields extends ManifestHeader {
  /** T = t·G, 33-byte compressed. */
  readonly salePoint: Uint8Array;
  readonly ciphertextHashes: readonly Uint8Array[];
}

export interface AdaptorManifest extends AdaptorManifestFields {
  /** taggedHash("deaddrop/paypub/manifest/v2", body): signed, anchored, seeds the sample. */
  readonly hash: Uint8Array;
  readonly signature: Uint8Array;
}

/** The fields adaptor-claim.ts needs. */
export function adaptorTerms(m: AdaptorManifestFields): AdaptorSaleTerms {
  return { network: m.network, sellerKey: m.sellerKey, deadlineHeight: m.deadlineHeight, salePoint: m.salePoint };
}

export function encodeAdaptorManifestBody(f: AdaptorManifestFields): Uint8Array {
  const w = writeManifestHeader(new Writer(), f).bytes(f.salePoint, 33);
  for (const h of f.ciphertextHashes) w.bytes(h, 32);
  return w.finish();
}

export function adaptorManifestHash(f: AdaptorManifestFields): Uint8Array {
  return taggedHash(ADAPTOR_TAG.manifest, encodeAdaptorManifestBody(f));
}

export function encodeAdaptorManifest(m: AdaptorManifest): Uint8Array {
  return new Writer().bytes(encodeAdaptorManifestBody(m)).bytes(m.signature, 64).finish();
}

/** The rule broken by `f`, or null (the version 1 rules, plus a valid T and public mode only). */
export function adaptorManifestProblem(f: AdaptorManifestFields): string | null {
  if (f.version !== ADAPTOR_MANIFEST_VERSION) return `unsupported version ${f.version}`;
  if (!NETWORK_IDS.includes(f.network)) return 'unknown network';
  if (f.mode !== 'public') return 'version 2 is for public mode only';
  const chunking = chunkingProblem(f);
  if (chunking) return chunking;
  if (f.ciphertextHashes.length !== f.chunkCount) return 'ciphertext hash count does not match chunk count';
  if (f.contentId.length !== 32 || f.ciphertextHashes.some((h) => h.length !== 32)) return 'bad hash length';
  if (!validXOnly(f.sellerKey)) return 'seller key is not a valid x-only public key';
  if (!validPoint(f.salePoint)) return 'sale point is not a valid compressed point';
  return amountProblem(f) ?? timingProblem(f);
}

function validPoint(p: Uint8Array): boolean {
  try {
    return p.length === 33 && !schnorr.Point.fromHex(toHex(p)).equals(schnorr.Point.ZERO);
  } catch {
    return false;
  }
}

export interface CreateAdaptorManifestOptions {
  /** Encrypted under deriveChunkKeys(saleSecret, contentId, N). */
  readonly content: EncryptedContent;
  readonly saleSecret: Uint8Array;
  readonly network: Network;
  readonly price: bigint;
  readonly threshold?: bigint;
  readonly minPledge?: bigint;
  readonly sampleSize: number;
  readonly beaconHeight: number;
  readonly deadlineHeight: number;
  readonly sellerSecretKey: Uint8Array;
}

/** Builds, validates and signs a version 2 manifest. Throws BAD_INPUT naming the broken rule, TypeError when the content is not keyed by t. */
export function createAdaptorManifest(o: CreateAdaptorManifestOptions): AdaptorManifest {
  const threshold = o.threshold ?? o.price;
  const fields: AdaptorManifestFields = {
    version: ADAPTOR_MANIFEST_VERSION, network: o.network, mode: 'public', contentId: o.content.contentId, fileLength: o.content.fileLength,
    chunkSize: o.content.chunkSize, chunkCount: o.content.chunkCount, sampleSize: o.sampleSize, price: o.price, threshold,
    minPledge: o.minPledge ?? (threshold < o.price ? threshold : o.price), beaconHeight: o.beaconHeight, deadlineHeight: o.deadlineHeight,
    sellerKey: schnorr.getPublicKey(o.sellerSecretKey), salePoint: salePointOf(o.saleSecret), ciphertextHashes: o.content.ciphertextHashes,
  };
  // Spot-check that the content really is keyed by t: a manifest whose T opens nothing would be a fraud.
  const k0 = chunkKeyFromPoint(chunkKeyPoint(o.saleSecret, o.content.contentId, 0));
  if (!equalBytes(k0, o.content.keys[0] as Uint8Array)) throw new TypeError('content is not encrypted under the keys of this sale secret');
  const problem = adaptorManifestProblem(fields);
  if (problem) throw DeaddropError.badInput(`manifest: ${problem}`);
  const hash = adaptorManifestHash(fields);
  return { ...fields, hash, signature: schnorr.sign(hash, o.sellerSecretKey) };
}


export function verifyAdaptorManifest(m: AdaptorManifest): boolean {
  try {
    return equalBytes(adaptorManifestHash(m), m.hash) && schnorr.verify(m.signature, m.hash, m.sellerKey);
  } catch {
    return false;
  }
}

/** Decodes and fully checks a version 2 manifest from untrusted bytes. Throws PROTOCOL. */
export function decodeAdaptorManifest(bytes: Uint8Array, expectedNetwork?: Network): AdaptorManifest {
  const r = new Reader(bytes, 'manifest');
  const header = readManifestHeader(r, ADAPTOR_MANIFEST_VERSION, expectedNetwork);
  const salePoint = r.bytes(33);
  const ciphertextHashes = Array.from({ length: header.chunkCount }, () => r.bytes(32));
  const signature = r.bytes(64);
  r.end();
  const fields: AdaptorManifestFields = { ...header, salePoint, ciphertextHashes };
  const problem = adaptorManifestProblem(fields);
  if (problem) throw DeaddropError.protocol(`manifest: ${problem}`);
  const m: AdaptorManifest = { ...fields, hash: adaptorManifestHash(fields), signature };
  if (!verifyAdaptorManifest(m)) throw DeaddropError.protocol('manifest: bad seller signature');
  return m;
}

/** A version 2 sample reveal: the sampled K_i with their proofs, signed by the seller. */
export interface AdaptorReveal {
  readonly manifestHash: Uint8Array;
  /** Display hex. */
  readonly beaconHash: string;
  /** Ascending, the drawn indices. */
  readonly proofs: readonly SampledKeyProof[];
  readonly signature: Uint8Array;
}

function adaptorRevealBody(r: Omit<AdaptorReveal, 'signature'>): Uint8Array {
  const w = new Writer().u8(ADAPTOR_MANIFEST_VERSION).bytes(r.manifestHash, 32).bytes(blockHashToBytes(r.beaconHash)).u16(r.proofs.length);
  for (const p of r.proofs) w.u16(p.index).bytes(p.keyPoint, 33).bytes(p.proof, 64);
  return w.finish();
}

/** Seller: proves the sampled keys of the drawn sample and signs the reveal. */
export function createAdaptorReveal(m: AdaptorManifest, beaconHash: string, saleSecret: Uint8Array, sellerSecretKey: Uint8Array): AdaptorReveal {
  if (!equalBytes(salePointOf(saleSecret), m.salePoint)) throw new TypeError('sale secret does not match the manifest');
  const body = { manifestHash: m.hash, beaconHash: beaconHash.toLowerCase(), proofs: proveSampledKeys(saleSecret, m.contentId, sampleIndices(m, beaconHash)) };
  return { ...body, signature: schnorr.sign(taggedHash(ADAPTOR_TAG.reveal, adaptorRevealBody(body)), sellerSecretKey) };
}

/** version 2 ‖ manifest hash ‖ beacon (internal order) ‖ u16 count ‖ (u16 index ‖ K_i (33) ‖ proof (64))* ‖ sig. */
export function encodeAdaptorReveal(r: AdaptorReveal): Uint8Array {
  return new Writer().bytes(adaptorRevealBody(r)).bytes(r.signature, 64).finish();
}

/** Layout only (`verifyAdaptorReveal` checks the rest). Throws PROTOCOL. */
export function decodeAdaptorReveal(bytes: Uint8Array): AdaptorReveal {
  const r = new Reader(bytes, 'sample reveal');
  if (r.u8() !== ADAPTOR_MANIFEST_VERSION) throw DeaddropError.protocol('sample reveal: unsupported version');
  const manifestHash = r.bytes(32);
  const beaconHash = toHex(r.bytes(32).reverse());
  const count = r.u16();
  const proofs: SampledKeyProof[] = [];
  for (let i = 0; i < count; i++) proofs.push({ index: r.u16(), keyPoint: r.bytes(33), proof: r.bytes(64) });
  const signature = r.bytes(64);
  r.end();
  return { manifestHash, beaconHash, proofs, signature };
}

export type AdaptorRevealCheck =
  | { readonly ok: true; readonly keys: ReadonlyMap<number, Uint8Array>; readonly plaintexts: ReadonlyMap<number, Uint8Array> }
  | { readonly ok: false; readonly reason: 'wrong-manifest' | 'wrong-beacon' | 'bad-proof' | 'bad-signature' | 'missing-chunk' | 'chunk-failed'; readonly index?: number };

/**
 * Buyer: the reveal is for this manifest and beacon, every proof ties its K_i to T at exactly
 * the drawn indices, the seller signed it, and every sampled chunk decrypts. Never throws.
 */
export function verifyAdaptorReveal(m: AdaptorManifest, beaconHash: string, r: AdaptorReveal, ciphertexts: (index: number) => Uint8Array | undefined): AdaptorRevealCheck {
  if (!equalBytes(r.manifestHash, m.hash)) return { ok: false, reason: 'wrong-manifest' };
  if (r.beaconHash.toLowerCase() !== beaconHash.toLowerCase()) return { ok: false, reason: 'wrong-beacon' };
  const keys = verifySampledKeys(m.salePoint, m.contentId, sampleIndices(m, beaconHash), r.proofs);
  if (!keys) return { ok: false, reason: 'bad-proof' };
  let sigOk = false;
  try {
    sigOk = schnorr.verify(r.signature, taggedHash(ADAPTOR_TAG.reveal, adaptorRevealBody(r)), m.sellerKey);
  } catch {
    sigOk = false;
  }
  if (!sigOk) return { ok: false, reason: 'bad-signature' };
  const plaintexts = new Map<number, Uint8Array>();
  // No SHA256(k) commitments in version 2: the proof already tied k_i to T.
  for (const [idx, k] of keys) {
    const ct = ciphertexts(idx);
    if (!ct) return { ok: false, reason: 'missing-chunk', index: idx };
    const res = checkCiphertext(m, idx, ct) ? decryptRaw(m, idx, ct, k) : null;
    if (!res?.ok) return { ok: false, reason: 'chunk-failed', index: idx };
    plaintexts.set(idx, res.plaintext);
  }
  return { ok: true, keys, plaintexts };
}

