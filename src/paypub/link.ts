/**
 * The offer string a seller hands to buyers (`deaddrop paypub offer <id>`): the signed manifest,
 * the anchor transaction and where the encrypted chunks are: the seller's API, and/or the
 * storage layer (docs/protocol/paypub.md, section 11).
 *
 *   "paypub1" || base64url( body || checksum (4) )
 *   v1 body: u8 1 || u32 manifestLength || manifest || anchor txid (32, internal order) || u32 anchor vout
 *            || u16 urlLength || url (UTF-8)
 *   v2 body: u8 2 || u32 manifestLength || manifest || anchor txid || u32 anchor vout || u8 flags
 *            || [flags & 1: u16 urlLength || url]      the seller's API
 *            || [flags & 2: u16 capLength || cap]      read capability of the storage bundle (bundle.ts)
 *            || [flags & 4: anchor block hash (32, internal order)]
 *            || [flags & 8: u16 revealLength || signed sample reveal]
 *            || [flags & 16: u8 count (1..16) || (server key (32) || u16 urlLength || ws(s) URL) * count]
 *                                                       storage servers holding the bundle's shares
 *   checksum = SHA256(body)[0..4]   (catches copy-and-paste damage)
 *
 * v2 needs a URL or a capability (or both); unknown flag bits are refused. A seller emits v1 when
 * it has only a URL to say, so older buyers still read it.
 *
 * Only the manifest is trusted (its seller signature and hash are checked on decoding); the
 * anchor location and block, the URL, the capability and the reveal are hints that the buyer
 * checks against its own chain view, the manifest's hashes and the seller's signature.
 */
import { base64urlnopad } from '@scure/base';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { Reader, sha256, Writer } from './bytes.js';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.js';
import { decodeReveal, encodeReveal, type SampleReveal } from './sample.js';
import type { StorageServerHint } from '../feature/content-store.js';
import { equalBytes, fromHex, toHex } from '../util/bytes.js';

/** Text prefix of every offer string. */
export const OFFER_PREFIX = 'paypub1';
/** Longest URL an offer may carry. */
export const MAX_URL_LENGTH = 512;
/** Longest storage capability an offer may carry. */
export const MAX_CAP_LENGTH = 1024;
/** Longest offer string accepted (a 256-chunk manifest is ~16 KB, its reveal up to ~9 KB; base64 adds a third). */
export const MAX_OFFER_LENGTH = 49_152;
/** Offer layout versions: 1 (URL only), 2 (flags: URL, capability, anchor block, reveal). */
export const OFFER_V1 = 1;
export const OFFER_V2 = 2;
const FLAG_URL = 1;
const FLAG_CAP = 2;
const FLAG_ANCHOR_BLOCK = 4;
const FLAG_REVEAL = 8;
const FLAG_SERVERS = 16;
const FLAG_PROVIDERS = 32;
const KNOWN_FLAGS = FLAG_URL | FLAG_CAP | FLAG_ANCHOR_BLOCK | FLAG_REVEAL | FLAG_SERVERS | FLAG_PROVIDERS;
/** Most storage servers an offer names. */
export const MAX_OFFER_SERVERS = 16;
/** Longest storage server URL an offer may carry. */
export const MAX_SERVER_URL_LENGTH = 300;

/** A decoded offer string. */
export interface OfferLink {
  readonly manifest: Manifest;
  /** Display-order txid of the transaction whose OP_RETURN anchors the manifest hash. */
  readonly anchorTxid: string;
  readonly anchorVout: number;
  /** Base URL of the seller's API (chunks under `<url>/paypub/content/<id>/...`); null when the offer names only storage. */
  readonly url: string | null;
  /** Read capability of the sale's storage bundle (bundle.ts); null when chunks come from the seller's API only. */
  readonly storageCap?: string | null;
  /** Display-order hash of the block holding the anchor, when the seller knew it (a hint: checked on the buyer's chain). */
  readonly anchorBlock?: string | null;
  /** The seller's signed sample reveal, when made (layout only: the buyer verifies it). */
  readonly reveal?: SampleReveal | null;
  /** Storage servers holding the bundle (hints for a buyer whose node knows none; shares are verified anyway). */
  readonly storageServers?: readonly StorageServerHint[];
}

/** Checks a storage server hint: a 32-byte key and a plain ws(s) URL of at most 300 characters. */
export function checkServerHint(h: StorageServerHint): StorageServerHint {
  if (!(h.id instanceof Uint8Array) || h.id.length !== 32) throw DeaddropError.badInput('a storage server key is 32 bytes');
  if (h.provider !== undefined && (!(h.provider instanceof Uint8Array) || h.provider.length !== 32 || h.provider.every((b) => b === 0))) {
    throw DeaddropError.badInput('a storage server\'s provider is a 32-byte key');
  }
  let u: URL;
  try {
    u = new URL(h.url);
  } catch {
    throw DeaddropError.badInput('a storage server URL must be a URL');
  }
  if ((u.protocol !== 'ws:' && u.protocol !== 'wss:') || u.username || u.password || u.search || u.hash || h.url.length > MAX_SERVER_URL_LENGTH || !/^[\x21-\x7e]+$/.test(h.url)) {
    throw DeaddropError.badInput(`a storage server URL is a plain ws:// or wss:// URL of at most ${MAX_SERVER_URL_LENGTH} characters`);
  }
  return h;
}

/** Checks a storage capability's form: 1..1024 visible ASCII characters. The storage layer parses it. */
export function checkStorageCap(cap: string): string {
  if (typeof cap !== 'string' || cap.length === 0 || cap.length > MAX_CAP_LENGTH || !/^[\x21-\x7e]+$/.test(cap)) {
    throw DeaddropError.badInput(`a storage capability is 1..${MAX_CAP_LENGTH} visible ASCII characters`);
  }
  return cap;
}

function blockBytes(hash: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new TypeError('anchor block must be 64 lower-case hex characters');
  return fromHex(hash).reverse();
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

/** Whether `url` names this machine only (127.0.0.0/8, ::1, localhost): nobody elsewhere reaches it. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The seller URL an offer names when the seller gives none: the daemon's own address, except a
 * loopback one for a sale in storage. Such an offer is for buyers on other machines, who read the
 * chunks from storage servers; to them a loopback URL names their own machine, where the buyer's
 * node would fetch from, and announce its pledge (transaction and refund key) to, whatever happens
 * to listen on that port. Without storage the offer keeps it (a seller's API on loopback sells to
 * its own machine, or behind a proxy the seller names with --url).
 */
export function defaultOfferUrl(publicUrl: string | undefined, stored: boolean): string | null {
  if (!publicUrl) return null;
  return stored && isLoopbackUrl(publicUrl) ? null : publicUrl;
}

/** Encodes an offer string (v1 when it says nothing but a URL, else v2). */
export function encodeOfferLink(link: OfferLink): string {
  const url = link.url === null ? null : new TextEncoder().encode(normalizeSellerUrl(link.url));
  const cap = (link.storageCap ?? null) === null ? null : new TextEncoder().encode(checkStorageCap(link.storageCap as string));
  const anchorBlock = link.anchorBlock ?? null;
  if (!url && !cap) throw DeaddropError.badInput('an offer needs a seller URL or a storage capability');
  const manifest = encodeManifest(link.manifest);
  const w = new Writer();
  const servers = (link.storageServers ?? []).slice(0, MAX_OFFER_SERVERS).map(checkServerHint);
  if (servers.length > 0 && !cap) throw DeaddropError.badInput('storage servers without a storage capability');
  if (url && !cap && anchorBlock === null && !link.reveal) {
    w.u8(OFFER_V1).u32(manifest.length).bytes(manifest).bytes(txidBytes(link.anchorTxid), 32).u32(link.anchorVout).u16(url.length).bytes(url);
  } else {
    const reveal = link.reveal ? encodeReveal(link.reveal) : null;
    const providers = servers.some((h) => h.provider !== undefined);
    const flags = (url ? FLAG_URL : 0) | (cap ? FLAG_CAP : 0) | (anchorBlock !== null ? FLAG_ANCHOR_BLOCK : 0) | (reveal ? FLAG_REVEAL : 0) | (servers.length > 0 ? FLAG_SERVERS : 0) | (providers ? FLAG_PROVIDERS : 0);
    w.u8(OFFER_V2).u32(manifest.length).bytes(manifest).bytes(txidBytes(link.anchorTxid), 32).u32(link.anchorVout).u8(flags);
    if (url) w.u16(url.length).bytes(url);
    if (cap) w.u16(cap.length).bytes(cap);
    if (anchorBlock !== null) w.bytes(blockBytes(anchorBlock), 32);
    if (reveal) w.u16(reveal.length).bytes(reveal);
    if (servers.length > 0) {
      w.u8(servers.length);
      for (const h of servers) {
        const u = new TextEncoder().encode(h.url);
        w.bytes(h.id, 32).u16(u.length).bytes(u);
      }
      // Each server's mixnet provider, in the same order (zeros: none), so buyers can read through the mixnet.
      if (providers) for (const h of servers) w.bytes(h.provider ?? new Uint8Array(32), 32);
    }
  }
  const body = w.finish();
  return OFFER_PREFIX + base64urlnopad.encode(new Writer().bytes(body).bytes(sha256(body).slice(0, 4)).finish());
}

function utf8(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw DeaddropError.protocol(`offer string: ${what} is not UTF-8`);
  }
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
  const version = r.u8();
  if (version !== OFFER_V1 && version !== OFFER_V2) throw DeaddropError.protocol(`offer string: unsupported version ${version} (this build reads ${OFFER_V1} and ${OFFER_V2})`);
  const manifest = decodeManifest(r.bytes(r.u32()), expectedNetwork);
  const anchorTxid = toHex(r.bytes(32).reverse());
  const anchorVout = r.u32();
  if (version === OFFER_V1) {
    const url = utf8(r.bytes(r.u16()), 'URL');
    r.end();
    return { manifest, anchorTxid, anchorVout, url: normalizeSellerUrl(url), storageCap: null, anchorBlock: null, reveal: null, storageServers: [] };
  }
  const flags = r.u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) throw DeaddropError.protocol('offer string: unknown flags');
  if ((flags & (FLAG_URL | FLAG_CAP)) === 0) throw DeaddropError.protocol('offer string: names neither a seller URL nor a storage capability');
  const url = flags & FLAG_URL ? normalizeSellerUrl(utf8(r.bytes(r.u16()), 'URL')) : null;
  let storageCap: string | null = null;
  if (flags & FLAG_CAP) {
    try {
      storageCap = checkStorageCap(utf8(r.bytes(r.u16()), 'capability'));
    } catch (err) {
      throw DeaddropError.protocol(`offer string: ${(err as Error).message}`);
    }
  }
  const anchorBlock = flags & FLAG_ANCHOR_BLOCK ? toHex(r.bytes(32).reverse()) : null;
  let reveal: SampleReveal | null = null;
  if (flags & FLAG_REVEAL) {
    reveal = decodeReveal(r.bytes(r.u16()));
    if (!equalBytes(reveal.manifestHash, manifest.hash)) throw DeaddropError.protocol('offer string: the sample reveal is for another manifest');
  }
  const storageServers: StorageServerHint[] = [];
  if (flags & FLAG_SERVERS) {
    if (!storageCap) throw DeaddropError.protocol('offer string: storage servers without a storage capability');
    const count = r.u8();
    if (count < 1 || count > MAX_OFFER_SERVERS) throw DeaddropError.protocol(`offer string: 1..${MAX_OFFER_SERVERS} storage servers, not ${count}`);
    for (let i = 0; i < count; i++) {
      const id = r.bytes(32);
      const serverUrl = utf8(r.bytes(r.u16()), 'storage server URL');
      try {
        storageServers.push(checkServerHint({ id, url: serverUrl }));
      } catch (err) {
        throw DeaddropError.protocol(`offer string: ${(err as Error).message}`);
      }
    }
  }
  if (flags & FLAG_PROVIDERS) {
    if (storageServers.length === 0) throw DeaddropError.protocol('offer string: providers without storage servers');
    const withProviders = storageServers.map((h) => {
      const p = r.bytes(32);
      return p.every((b) => b === 0) ? h : { ...h, provider: Uint8Array.from(p) };
    });
    if (withProviders.every((h) => h.provider === undefined)) throw DeaddropError.protocol('offer string: a providers list that names none');
    storageServers.splice(0, storageServers.length, ...withProviders);
  }
  r.end();
  return { manifest, anchorTxid, anchorVout, url, storageCap, anchorBlock, reveal, storageServers };
}

/** The sale id used everywhere (store, API, CLI): the manifest hash in hex. */
export function saleId(m: Pick<Manifest, 'hash'>): string {
  return toHex(m.hash);
}
