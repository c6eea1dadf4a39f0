/**
 * The PayPub manifest: a canonical binary record of one sale, signed by the seller (BIP340),
 * whose hash is anchored in an OP_RETURN before the beacon block.
 *
 * Canonical binary rather than JSON: every field has a fixed width and position, amounts are
 * u64 (JSON numbers lose precision above 2^53 and JSON has many spellings of one value:
 * whitespace, escapes, key order, number forms), and the decoder rejects unknown versions,
 * modes and networks, trailing bytes and inconsistent fields. So one manifest has exactly
 * one encoding and one hash. Byte layout: docs/protocol/paypub.md, "Manifest".
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { RawTx } from '@scure/btc-signer/script.js';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { Reader, taggedHash, Writer } from './bytes.js';
import { maxChunkLength, type ContentDescriptor, type EncryptedContent } from './content.js';
import { MAX_CHUNKS, MODE_IDS, NETWORK_IDS, PAYPUB_VERSION, TAG, TIMING, type PaypubMode } from './params.js';
import { equalBytes, toHex } from '../util/bytes.js';

/** Largest amount any field may hold (21M BTC in sats). */
export const MAX_MONEY = 2_100_000_000_000_000n;
/** Heights at or above this are timestamps to CLTV: refused. */
const LOCKTIME_THRESHOLD = 500_000_000;

/** The signed fields of a manifest, in wire order. */
export interface ManifestFields extends ContentDescriptor {
  readonly version: number;
  readonly network: Network;
  readonly mode: PaypubMode;
  readonly contentId: Uint8Array;
  readonly fileLength: number;
  /** Longest chunk, ceil(fileLength / chunkCount); checked, never trusted. */
  readonly chunkSize: number;
  readonly chunkCount: number;
  /** How many chunks the beacon sample reveals. */
  readonly sampleSize: number;
  /** Public mode: suggested pledge. Private mode: the one buyer's price. */
  readonly price: bigint;
  /** Public mode: sum of counted pledges needed before the seller may claim. */
  readonly threshold: bigint;
  /** Public mode: pledges below this do not count (keep it above the per-input claim cost). */
  readonly minPledge: bigint;
  readonly beaconHeight: number;
  /** CLTV height of every pledge's refund leaf. */
  readonly deadlineHeight: number;
  /** Seller's x-only key: signs the manifest and the sample reveal, and the claim leaves. */
  readonly sellerKey: Uint8Array;
  readonly keyCommitments: readonly Uint8Array[];
  readonly ciphertextHashes: readonly Uint8Array[];
}

/** A decoded, signature-checked manifest. */
export interface Manifest extends ManifestFields {
  /** taggedHash("deaddrop/paypub/manifest/v1", body): what is signed, anchored and seeds the sample. */
  readonly hash: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * The fields every manifest version starts with, in wire order: the sale's terms up to the seller
 * key. What follows differs (version 1: the N key commitments; version 2, adaptor-manifest.ts:
 * the sale point T).
 */
export type ManifestHeader = Omit<ManifestFields, 'keyCommitments' | 'ciphertextHashes'>;

/** Writes the shared header fields. */
export function writeManifestHeader(w: Writer, f: ManifestHeader): Writer {
  return w
    .u8(f.version)
    .u8(NETWORK_IDS.indexOf(f.network))
    .u8(MODE_IDS.indexOf(f.mode))
    .bytes(f.contentId, 32)
    .u64(BigInt(f.fileLength))
    .u32(f.chunkSize)
    .u16(f.chunkCount)
    .u16(f.sampleSize)
    .u64(f.price)
    .u64(f.threshold)
    .u64(f.minPledge)
    .u32(f.beaconHeight)
    .u32(f.deadlineHeight)
    .bytes(f.sellerKey, 32);
}

/**
 * Reads the shared header fields from untrusted bytes, refusing any version but `version`, unknown
 * networks and modes, another network than `expectedNetwork`, and out-of-range counts. Throws PROTOCOL.
 */
export function readManifestHeader(r: Reader, version: number, expectedNetwork?: Network): ManifestHeader {
  const v = r.u8();
  if (v !== version) throw DeaddropError.protocol(`manifest: unsupported version ${v}`);
  const network = NETWORK_IDS[r.u8()];
  const mode = MODE_IDS[r.u8()];
  if (!network || !mode) throw DeaddropError.protocol('manifest: unknown network or mode id');
  if (expectedNetwork && network !== expectedNetwork) throw DeaddropError.protocol(`manifest is for ${network}, not ${expectedNetwork}`);
  const contentId = r.bytes(32);
  const fileLength = r.u64();
  if (fileLength > BigInt(Number.MAX_SAFE_INTEGER)) throw DeaddropError.protocol('manifest: file length too large');
  const chunkSize = r.u32();
  const chunkCount = r.u16();
  if (chunkCount < 1 || chunkCount > MAX_CHUNKS) throw DeaddropError.protocol('manifest: bad chunk count');
  return {
    version: v, network, mode, contentId, fileLength: Number(fileLength), chunkSize, chunkCount, sampleSize: r.u16(),
    price: r.u64(), threshold: r.u64(), minPledge: r.u64(), beaconHeight: r.u32(), deadlineHeight: r.u32(), sellerKey: r.bytes(32),
  };
}

/** The rule on chunk count, file length, chunk size and sample size broken by `f`, or null (both versions). */
export function chunkingProblem(f: Pick<ManifestHeader, 'chunkCount' | 'fileLength' | 'chunkSize' | 'sampleSize'>): string | null {
  if (!Number.isSafeInteger(f.chunkCount) || f.chunkCount < 1 || f.chunkCount > MAX_CHUNKS) return `chunk count must be 1..${MAX_CHUNKS}`;
  if (!Number.isSafeInteger(f.fileLength) || f.fileLength < f.chunkCount) return 'file length must be at least the chunk count';
  if (f.chunkSize !== maxChunkLength(f.fileLength, f.chunkCount)) return 'chunk size does not match file length and chunk count';
  if (!Number.isSafeInteger(f.sampleSize) || f.sampleSize < 0 || f.sampleSize >= f.chunkCount) return 'sample size must leave at least one chunk unsampled';
  return null;
}

/** Serializes the signed body (everything except the signature). */
export function encodeManifestBody(f: ManifestFields): Uint8Array {
  const w = writeManifestHeader(new Writer(), f);
  for (const h of f.keyCommitments) w.bytes(h, 32);
  for (const h of f.ciphertextHashes) w.bytes(h, 32);
  return w.finish();
}

/** The manifest hash of a set of fields. */
export function manifestHash(f: ManifestFields): Uint8Array {
  return taggedHash(TAG.manifest, encodeManifestBody(f));
}

/** body || 64-byte BIP340 signature over the manifest hash. */
export function encodeManifest(m: Manifest): Uint8Array {
  return new Writer().bytes(encodeManifestBody(m)).bytes(m.signature, 64).finish();
}

/**
 * Field rules every party checks. Returns the first violation as text, or null.
 * (Timing rules that need the chain, like the anchor height, are in `checkAnchorTiming`.)
 */
export function manifestProblem(f: ManifestFields): string | null {
  if (f.version !== PAYPUB_VERSION) return `unsupported version ${f.version}`;
  if (!NETWORK_IDS.includes(f.network)) return 'unknown network';
  if (!MODE_IDS.includes(f.mode)) return 'unknown mode';
  const chunking = chunkingProblem(f);
  if (chunking) return chunking;
  if (f.keyCommitments.length !== f.chunkCount || f.ciphertextHashes.length !== f.chunkCount) return 'commitment count does not match chunk count';
  if (f.contentId.length !== 32 || f.keyCommitments.some((h) => h.length !== 32) || f.ciphertextHashes.some((h) => h.length !== 32)) return 'bad hash length';
  if (!validXOnly(f.sellerKey)) return 'seller key is not a valid x-only public key';
  return amountProblem(f) ?? timingProblem(f);
}

export function amountProblem(f: Pick<ManifestFields, 'mode' | 'price' | 'threshold' | 'minPledge'>): string | null {
  for (const [name, v] of [['price', f.price], ['threshold', f.threshold], ['minimum pledge', f.minPledge]] as const) {
    if (typeof v !== 'bigint' || v < 1n || v > MAX_MONEY) return `${name} must be 1..${MAX_MONEY} sat`;
  }
  if (f.mode === 'private' && (f.threshold !== f.price || f.minPledge !== f.price)) return 'private mode: threshold and minimum pledge must equal the price';
  if (f.minPledge > f.threshold) return 'minimum pledge is above the threshold';
  return null;
}

export function timingProblem(f: Pick<ManifestFields, 'network' | 'beaconHeight' | 'deadlineHeight'>): string | null {
  const t = TIMING[f.network];
  if (!Number.isSafeInteger(f.beaconHeight) || f.beaconHeight <= t.anchorMargin) return 'beacon height too low';
  if (!Number.isSafeInteger(f.deadlineHeight) || f.deadlineHeight >= LOCKTIME_THRESHOLD) return 'deadline must be a block height below 500000000';
  // The sample must be final, pledges must confirm and the seller must claim, all before deadline - margin.
  const earliest = f.beaconHeight + t.beaconConfirmations + t.pledgeConfirmations + t.claimMargin;
  if (f.deadlineHeight <= earliest) return `deadline must be above beacon + ${earliest - f.beaconHeight}`;
  return null;
}

export function validXOnly(key: Uint8Array): boolean {
  if (key.length !== 32) return false;
  try {
    schnorr.utils.lift_x(BigInt('0x' + toHex(key)));
    return true;
  } catch {
    return false;
  }
}

/** Parameters of a new sale (content comes from `encryptContent`). */
export interface CreateManifestOptions {
  readonly content: EncryptedContent;
  readonly network: Network;
  readonly mode?: PaypubMode;
  readonly price: bigint;
  /** Default: the price. */
  readonly threshold?: bigint;
  /** Default: the price in private mode, else min(threshold, price). */
  readonly minPledge?: bigint;
  readonly sampleSize: number;
  readonly beaconHeight: number;
  readonly deadlineHeight: number;
  readonly sellerSecretKey: Uint8Array;
}

/** Builds, validates and signs a manifest. Throws BAD_INPUT naming the broken rule. */
export function createManifest(o: CreateManifestOptions): Manifest {
  const mode = o.mode ?? 'public';
  const threshold = o.threshold ?? o.price;
  const fields: ManifestFields = {
    version: PAYPUB_VERSION,
    network: o.network,
    mode,
    contentId: o.content.contentId,
    fileLength: o.content.fileLength,
    chunkSize: o.content.chunkSize,
    chunkCount: o.content.chunkCount,
    sampleSize: o.sampleSize,
    price: o.price,
    threshold,
    minPledge: o.minPledge ?? (mode === 'private' ? o.price : threshold < o.price ? threshold : o.price),
    beaconHeight: o.beaconHeight,
    deadlineHeight: o.deadlineHeight,
    sellerKey: schnorr.getPublicKey(o.sellerSecretKey),
    keyCommitments: o.content.keyCommitments,
    ciphertextHashes: o.content.ciphertextHashes,
  };
  const problem = manifestProblem(fields);
  if (problem) throw DeaddropError.badInput(`manifest: ${problem}`);
  return signManifest(fields, o.sellerSecretKey);
}

/** Signs already-valid fields. The secret key must match `sellerKey`. */
export function signManifest(fields: ManifestFields, sellerSecretKey: Uint8Array): Manifest {
  if (!equalBytes(schnorr.getPublicKey(sellerSecretKey), fields.sellerKey)) throw new TypeError('secret key does not match the manifest seller key');
  const hash = manifestHash(fields);
  return { ...fields, hash, signature: schnorr.sign(hash, sellerSecretKey) };
}

/** True when the manifest's hash and seller signature are right. */
export function verifyManifest(m: Manifest): boolean {
  try {
    return equalBytes(manifestHash(m), m.hash) && schnorr.verify(m.signature, m.hash, m.sellerKey);
  } catch {
    return false;
  }
}

/**
 * Decodes and fully checks a manifest from untrusted bytes: layout, field rules, hash and
 * signature, and (when given) the expected network. Throws PROTOCOL on any problem.
 */
export function decodeManifest(bytes: Uint8Array, expectedNetwork?: Network): Manifest {
  const r = new Reader(bytes, 'manifest');
  const header = readManifestHeader(r, PAYPUB_VERSION, expectedNetwork);
  const { chunkCount } = header;
  const keyCommitments = Array.from({ length: chunkCount }, () => r.bytes(32));
  const ciphertextHashes = Array.from({ length: chunkCount }, () => r.bytes(32));
  const signature = r.bytes(64);
  r.end();
  const fields: ManifestFields = { ...header, keyCommitments, ciphertextHashes };
  const problem = manifestProblem(fields);
  if (problem) throw DeaddropError.protocol(`manifest: ${problem}`);
  const m: Manifest = { ...fields, hash: manifestHash(fields), signature };
  if (!verifyManifest(m)) throw DeaddropError.protocol('manifest: bad seller signature');
  return m;
}

/**
 * The anchor's OP_RETURN data: exactly the 32-byte manifest hash, with no marker or version.
 * A marker would let any chain observer list PayPub sales; buyers need none, since the
 * seller names the anchor txid and the hash is unique. The bytes look like any other hash.
 */
export function anchorPayload(m: Pick<Manifest, 'hash'>): Uint8Array {
  return m.hash.slice();
}

/** OP_RETURN <32-byte manifest hash>: 34 bytes, relayed by every node policy. */
export function anchorScript(m: Pick<Manifest, 'hash'>): Uint8Array {
  return Uint8Array.of(0x6a, 0x20, ...m.hash);
}

/** Index of the output of `rawTx` that anchors `manifestHash`, or -1. Never throws on bad bytes. */
export function findAnchorOutput(rawTx: Uint8Array, hash: Uint8Array): number {
  try {
    const tx = RawTx.decode(rawTx);
    const want = anchorScript({ hash });
    return tx.outputs.findIndex((o) => equalBytes(o.script, want));
  } catch {
    return -1;
  }
}

export type AnchorCheck = { readonly ok: true } | { readonly ok: false; readonly reason: 'unconfirmed' | 'too-late' };

/**
 * The rule buyers apply: the anchor must be confirmed at a height <= beacon - anchorMargin.
 * An anchor in the beacon block or just before it could have been written after the seller
 * saw (or, as a miner, chose) the beacon, and could be swapped in a short reorg.
 * `anchorHeight` <= 0 means unconfirmed.
 */
export function checkAnchorTiming(m: Pick<ManifestFields, 'beaconHeight' | 'network'>, anchorHeight: number): AnchorCheck {
  if (!Number.isSafeInteger(anchorHeight) || anchorHeight <= 0) return { ok: false, reason: 'unconfirmed' };
  if (anchorHeight > m.beaconHeight - TIMING[m.network].anchorMargin) return { ok: false, reason: 'too-late' };
  return { ok: true };
}
