/**
 * The offer string a seller hands to buyers (`deaddrop paypub offer <id>`): the signed manifest,
 * the anchor transaction and where the encrypted chunks are served.
 *
 *   "paypub1" || base64url( version u8 || u32 manifestLength || manifest || anchor txid (32, internal order)
 *                           || u32 anchor vout || u16 urlLength || url (UTF-8) || checksum (4) )
 *   checksum = SHA256(everything before it)[0..4]   (catches copy-and-paste damage)
 *
 * Only the manifest is trusted (its seller signature and hash are checked on decoding); the
 * anchor location and the URL are hints that the buyer checks against its own chain view and
 * against the manifest's hashes.
 */
import { base64urlnopad } from '@scure/base';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { Reader, sha256, Writer } from './bytes.js';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.js';
import { PAYPUB_VERSION } from './params.js';
import { equalBytes, fromHex, toHex } from '../util/bytes.js';

/** Text prefix of every offer string. */
export const OFFER_PREFIX = 'paypub1';
/** Longest URL an offer may carry. */
export const MAX_URL_LENGTH = 512;
/** Longest offer string accepted (a 256-chunk manifest is ~16 KB). */
export const MAX_OFFER_LENGTH = 32_768;

/** A decoded offer string. */
export interface OfferLink {
  readonly manifest: Manifest;
  /** Display-order txid of the transaction whose OP_RETURN anchors the manifest hash. */
  readonly anchorTxid: string;
  readonly anchorVout: number;
  /** Base URL of the seller's API (chunks under `<url>/paypub/content/<id>/...`). */
  readonly url: string;
}

function txidBytes(txid: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(txid)) throw new TypeError('anchor txid must be 64 lower-case hex characters');
  return fromHex(txid).reverse();
}

/** Checks that `url` is an http(s) URL without credentials, query or fragment. Returns it without a trailing slash. */
export function normalizeSellerUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw DeaddropError.badInput(`seller URL ${JSON.stringify(url.slice(0, 80))} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw DeaddropError.badInput('seller URL must be http or https');
  if (u.username || u.password || u.search || u.hash) throw DeaddropError.badInput('seller URL must not carry credentials, a query or a fragment');
  const out = u.toString().replace(/\/+$/, '');
  if (out.length > MAX_URL_LENGTH) throw DeaddropError.badInput(`seller URL longer than ${MAX_URL_LENGTH} characters`);
  return out;
}

/** Encodes an offer string. */
export function encodeOfferLink(link: OfferLink): string {
  const url = new TextEncoder().encode(normalizeSellerUrl(link.url));
  const manifest = encodeManifest(link.manifest);
  const body = new Writer()
    .u8(PAYPUB_VERSION).u32(manifest.length).bytes(manifest)
    .bytes(txidBytes(link.anchorTxid), 32).u32(link.anchorVout)
    .u16(url.length).bytes(url)
    .finish();
  return OFFER_PREFIX + base64urlnopad.encode(new Writer().bytes(body).bytes(sha256(body).slice(0, 4)).finish());
}

/**
 * Decodes and checks an offer string from a stranger: prefix, checksum, layout, the manifest's
 * signature and field rules, the network (when given) and the URL form. Throws BAD_INPUT or PROTOCOL.
 */
export function decodeOfferLink(text: string, expectedNetwork?: Network): OfferLink {
  if (typeof text !== 'string' || !text.startsWith(OFFER_PREFIX)) throw DeaddropError.badInput(`an offer starts with "${OFFER_PREFIX}"`);
  if (text.length > MAX_OFFER_LENGTH) throw DeaddropError.badInput('offer string too long');
  let raw: Uint8Array;
  try {
    raw = base64urlnopad.decode(text.slice(OFFER_PREFIX.length).trim());
  } catch {
    throw DeaddropError.badInput('offer string is not valid base64url');
  }
  if (raw.length < 5) throw DeaddropError.badInput('offer string too short');
  const body = raw.subarray(0, raw.length - 4);
  if (!equalBytes(sha256(body).slice(0, 4), raw.subarray(raw.length - 4))) throw DeaddropError.badInput('offer string is damaged (checksum mismatch)');
  const r = new Reader(body, 'offer string');
  if (r.u8() !== PAYPUB_VERSION) throw DeaddropError.protocol('offer string: unsupported version');
  const manifest = decodeManifest(r.bytes(r.u32()), expectedNetwork);
  const anchorTxid = toHex(r.bytes(32).reverse());
  const anchorVout = r.u32();
  let url: string;
  try {
    url = new TextDecoder('utf-8', { fatal: true }).decode(r.bytes(r.u16()));
  } catch (err) {
    if (err instanceof DeaddropError) throw err;
    throw DeaddropError.protocol('offer string: URL is not UTF-8');
  }
  r.end();
  return { manifest, anchorTxid, anchorVout, url: normalizeSellerUrl(url) };
}

/** The sale id used everywhere (store, API, CLI): the manifest hash in hex. */
export function saleId(m: Pick<Manifest, 'hash'>): string {
  return toHex(m.hash);
}
