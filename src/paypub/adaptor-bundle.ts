/**
 * The storage bundle of a version 2 (adaptor-claim) sale (docs/protocol/paypub.md §12, "Storage"):
 * everything a buyer needs to verify and pledge while the seller is offline, in one file.
 *
 *   bundle = u8 version (2) || u32 manifestLength || signed v2 manifest
 *            || anchor txid (32, internal order) || u32 anchor vout || anchor block hash (32, internal order)
 *            || u16 revealLength || signed v2 reveal (K_i with DLEQ proofs)
 *            || c_0 || c_1 || ... || c_{N-1}
 *
 * The version byte differs from version 1's bundle (bundle.ts), so neither decoder takes the
 * other's bytes. The reveal exists only after the beacon, so the seller stores the bundle once it
 * has revealed. Every ciphertext's exact length follows from the manifest, hence no lengths.
 *
 * Decoding trusts nothing but the sale id: the manifest must hash to it (and carry the seller's
 * signature), the reveal must name it, every chunk must hash to its manifest entry. The anchor and
 * the reveal's proofs are checked by the buyer against its own chain (adaptor-sale.ts), exactly
 * as when the seller serves them.
 */
import { base64urlnopad } from '@scure/base';
import type { StorageServerHint } from '../feature/content-store.js';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { equalBytes, fromHex, toHex } from '../util/bytes.js';
import { decodeAdaptorManifest, decodeAdaptorReveal, encodeAdaptorManifest, type AdaptorManifest } from './adaptor-manifest.js';
import { blockHashToBytes, Reader, Writer } from './bytes.js';
import { checkCiphertext, chunkBounds } from './content.js';
import { MAX_OFFER_SERVERS, checkServerHint, checkStorageCap } from './link.js';
import { TAG_BYTES } from './params.js';

/** Version byte of the version 2 bundle layout (version 1's is 1). */
export const ADAPTOR_BUNDLE_VERSION = 2;

/** What a version 2 bundle holds, decoded and checked against the sale id. */
export interface AdaptorBundle {
  readonly manifest: AdaptorManifest;
  /** Display-order txid and vout of the anchor, and the block that holds it (hints: the buyer checks them on its chain). */
  readonly anchorTxid: string;
  readonly anchorVout: number;
  readonly anchorBlock: string;
  /** encodeAdaptorReveal bytes (layout checked, naming this sale; proofs checked by the buyer). */
  readonly reveal: Uint8Array;
  readonly ciphertexts: Uint8Array[];
}

function txidHex(display: string, what: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(display)) throw new TypeError(`${what} must be 64 lower-case hex characters`);
  return fromHex(display).reverse();
}

/** Seller: the bundle of a revealed, anchored sale. Throws RangeError/TypeError on inconsistent input (own data). */
export function encodeAdaptorBundle(b: AdaptorBundle): Uint8Array {
  const m = b.manifest;
  if (b.ciphertexts.length !== m.chunkCount) throw new RangeError(`expected ${m.chunkCount} ciphertexts, got ${b.ciphertexts.length}`);
  if (!equalBytes(decodeAdaptorReveal(b.reveal).manifestHash, m.hash)) throw new RangeError('the reveal is for another manifest');
  if (!Number.isSafeInteger(b.anchorVout) || b.anchorVout < 0 || b.anchorVout > 0xffffffff) throw new RangeError('anchor vout out of range');
  const manifest = encodeAdaptorManifest(m);
  const w = new Writer().u8(ADAPTOR_BUNDLE_VERSION).u32(manifest.length).bytes(manifest)
    .bytes(txidHex(b.anchorTxid, 'anchor txid'), 32).u32(b.anchorVout).bytes(blockHashToBytes(b.anchorBlock), 32)
    .u16(b.reveal.length).bytes(b.reveal);
  b.ciphertexts.forEach((c, i) => {
    if (!checkCiphertext(m, i, c)) throw new RangeError(`ciphertext ${i} does not match the manifest`);
    w.bytes(c);
  });
  return w.finish();
}

/**
 * Splits a version 2 bundle fetched from storage and checks it against the sale id (the manifest
 * hash the offer names): version, the manifest (signature, rules, network when given, hash = id),
 * the reveal's layout and manifest hash, every chunk's length and hash, no trailing bytes.
 * Throws PROTOCOL naming the first problem (an index, never content).
 */
export function decodeAdaptorBundle(saleId: string, bundle: Uint8Array, expectedNetwork?: Network): AdaptorBundle {
  if (!(bundle instanceof Uint8Array)) throw new TypeError('bundle must be a Uint8Array');
  if (bundle.length < 1 || bundle[0] !== ADAPTOR_BUNDLE_VERSION) throw DeaddropError.protocol('storage bundle: unsupported version (not a version 2 sale bundle)');
  const r = new Reader(bundle, 'storage bundle');
  r.u8();
  let manifest: AdaptorManifest;
  try {
    manifest = decodeAdaptorManifest(r.bytes(r.u32()), expectedNetwork);
  } catch (err) {
    throw DeaddropError.protocol(`storage bundle: ${(err as Error).message}`);
  }
  if (toHex(manifest.hash) !== saleId) throw DeaddropError.protocol('storage bundle: it holds another manifest than the sale the offer names');
  const anchorTxid = toHex(r.bytes(32).reverse());
  const anchorVout = r.u32();
  const anchorBlock = toHex(r.bytes(32).reverse());
  const reveal = r.bytes(r.u16());
  let revealManifest: Uint8Array;
  try {
    revealManifest = decodeAdaptorReveal(reveal).manifestHash;
  } catch (err) {
    throw DeaddropError.protocol(`storage bundle: ${(err as Error).message}`);
  }
  if (!equalBytes(revealManifest, manifest.hash)) throw DeaddropError.protocol('storage bundle: the sample reveal is for another manifest');
  const ciphertexts: Uint8Array[] = [];
  for (let i = 0; i < manifest.chunkCount; i++) {
    const { start, end } = chunkBounds(manifest.fileLength, manifest.chunkCount, i);
    const len = end - start + TAG_BYTES;
    if (r.remaining < len) throw DeaddropError.protocol(`storage bundle: truncated at chunk ${i}`);
    const c = r.bytes(len);
    if (!checkCiphertext(manifest, i, c)) throw DeaddropError.protocol(`storage bundle: chunk ${i} does not match the manifest`);
    ciphertexts.push(c);
  }
  if (r.remaining !== 0) throw DeaddropError.protocol(`storage bundle: ${r.remaining} trailing bytes`);
  return { manifest, anchorTxid, anchorVout, anchorBlock, reveal, ciphertexts };
}

/** Where a version 2 offer says the bundle is: its read capability, and the servers holding its shares. */
export interface OfferStorage {
  readonly cap: string;
  readonly servers: readonly StorageServerHint[];
}

/**
 * The offer suffix naming the bundle in storage (docs/protocol/paypub.md §12):
 *
 *   "~store:" || base64url( u16 capLength || cap || u8 count (0..16)
 *                           || (server key (32) || u16 urlLength || ws(s) URL || provider key (32, zeros: none)) * count )
 */
export function formatOfferStorage(s: OfferStorage): string {
  const cap = new TextEncoder().encode(checkStorageCap(s.cap));
  const servers = s.servers.slice(0, MAX_OFFER_SERVERS).map(checkServerHint);
  const w = new Writer().u16(cap.length).bytes(cap).u8(servers.length);
  for (const h of servers) {
    const u = new TextEncoder().encode(h.url);
    w.bytes(h.id, 32).u16(u.length).bytes(u).bytes(h.provider ?? new Uint8Array(32), 32);
  }
  return `${STORE_SUFFIX}${base64urlnopad.encode(w.finish())}`;
}

const STORE_SUFFIX = '~store:';
const STORE_PART = /~store:([A-Za-z0-9_-]{1,12000})$/;

/**
 * Splits an offer (its mailbox suffix already taken off) into the text before the storage suffix
 * and what the suffix names; `storage` is null when there is no suffix. Throws BAD_INPUT when
 * there is one but it is malformed (a stranger's offer: a clear error, never a crash).
 */
export function splitOfferStorage(text: string): { rest: string; storage: OfferStorage | null } {
  const at = text.lastIndexOf(STORE_SUFFIX);
  if (at < 0) return { rest: text, storage: null };
  const m = STORE_PART.exec(text.slice(at));
  if (!m) throw DeaddropError.badInput('offer string: the ~store: part is not base64url');
  try {
    const r = new Reader(base64urlnopad.decode(m[1] as string), 'offer storage');
    const cap = checkStorageCap(new TextDecoder('utf-8', { fatal: true }).decode(r.bytes(r.u16())));
    const count = r.u8();
    if (count > MAX_OFFER_SERVERS) throw DeaddropError.badInput(`at most ${MAX_OFFER_SERVERS} storage servers`);
    const servers: StorageServerHint[] = [];
    for (let i = 0; i < count; i++) {
      const id = r.bytes(32);
      const url = new TextDecoder('utf-8', { fatal: true }).decode(r.bytes(r.u16()));
      const provider = r.bytes(32);
      servers.push(checkServerHint({ id, url, ...(provider.every((b) => b === 0) ? {} : { provider }) }));
    }
    r.end();
    return { rest: text.slice(0, at), storage: { cap, servers } };
  } catch (err) {
    throw DeaddropError.badInput(`offer string: bad ~store: part (${err instanceof Error ? err.message : 'malformed'})`);
  }
}
