/**
 * Endpoint hints: where the introducer's node can be reached, as a canonical URL string for
 * people and a compact binary form for the 80-byte envelope.
 *
 * String forms (parseEndpoint accepts them, formatEndpoint prints the canonical one):
 *   ws://1.2.3.4:8080   ws://[2001:db8::1]:8080   ws://node.example.org:8080
 *   wss://relay.example.org   ws://<56 base32 chars>.onion      wss://relay.example.org/some/path
 *   host:port (no scheme) means ws://host:port. Default ports (80 ws, 443 wss) are not printed.
 *
 * Binary forms (type byte, then the fields; ports are uint16 big-endian, 1..65535):
 *   0x01 ws, IPv4        ip[4] port[2]                    7 bytes
 *   0x02 ws, IPv6        ip[16] port[2]                  19 bytes
 *   0x03 ws, DNS name    len[1] name[len] port[2]         4 + len
 *   0x04 wss, DNS name   len[1] name[len] port[2]         4 + len
 *   0x05 ws, onion v3 whose key is the payload's node key: port[2]     3 bytes
 *   0x06 ws, onion v3    key[32] port[2]                 35 bytes
 *   0x07 any other ws/wss URL: len[1] url[len] (ASCII)     2 + len
 *   0x08 "answer me over the mixnet": provider id[8]          9 bytes
 *        string form `mixnet:<16 hex>`; the provider id is the first 8 bytes of
 *        SHA-256("deaddrop/mix-provider-id/v1\0" || provider's Ed25519 identity), and the
 *        introducer's mailbox there is the payload's node key (docs/protocol/mixnet.md,
 *        "Introductions over the mixnet"). It names no host: the recipient never dials it.
 * Decoding is total (null on anything malformed) and canonical: a hint decodes only if
 * encoding the result gives back the same bytes, so every endpoint has exactly one encoding.
 */
import { base32nopad } from '@scure/base';
import { sha3_256 } from '@noble/hashes/sha3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { isIPv4 } from 'node:net';
import { DeaddropError } from '../util/errors.js';
import { equalBytes } from '../util/bytes.js';

export const HINT_WS_IPV4 = 0x01;
export const HINT_WS_IPV6 = 0x02;
export const HINT_WS_DNS = 0x03;
export const HINT_WSS_DNS = 0x04;
export const HINT_ONION_SELF = 0x05;
export const HINT_ONION = 0x06;
export const HINT_URL = 0x07;
export const HINT_MIXNET = 0x08;

/** Bytes of a provider id in a mixnet hint. */
export const MIX_PROVIDER_ID_BYTES = 8;
const MIXNET_FORM = /^mixnet:([0-9a-f]{16})$/;
const MIX_PROVIDER_ID_CONTEXT = new TextEncoder().encode('deaddrop/mix-provider-id/v1\0');

/**
 * The 8-byte provider id a mixnet hint carries for a provider's Ed25519 identity key.
 * @example mixnetEndpoint(mixProviderId(providerKey)) // 'mixnet:0123456789abcdef'
 */
export function mixProviderId(provider: Uint8Array): Uint8Array {
  if (provider.length !== 32) throw new TypeError('provider key must be 32 bytes');
  return sha256(Uint8Array.from([...MIX_PROVIDER_ID_CONTEXT, ...provider])).subarray(0, MIX_PROVIDER_ID_BYTES);
}

/** The canonical string form of a mixnet hint (`mixnet:<16 hex>`). */
export function mixnetEndpoint(providerId: Uint8Array): string {
  if (providerId.length !== MIX_PROVIDER_ID_BYTES) throw new TypeError('provider id must be 8 bytes');
  return `mixnet:${Buffer.from(providerId).toString('hex')}`;
}

/** The provider id of a mixnet hint string, or null when the string is not one (never throws). */
export function mixnetProviderId(endpoint: unknown): Uint8Array | null {
  if (typeof endpoint !== 'string') return null;
  const m = MIXNET_FORM.exec(endpoint);
  return m ? Uint8Array.from(Buffer.from(m[1]!, 'hex')) : null;
}

/** Longest DNS name or URL a hint can carry (its length is one byte). */
export const MAX_HINT_STRING = 255;

const ONION_LABEL = /^[a-z2-7]{56}$/;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A parsed endpoint. */
type Parsed =
  | { kind: 'ipv4' | 'ipv6' | 'dns'; tls: boolean; host: string; port: number }
  | { kind: 'onion'; key: Uint8Array; port: number }
  | { kind: 'url'; url: string }
  | { kind: 'mixnet'; id: Uint8Array };

function bad(message: string): DeaddropError {
  return DeaddropError.badInput(`endpoint: ${message}`);
}

/** The v3 onion hostname (without ".onion") of an Ed25519 public key. */
export function onionAddress(key: Uint8Array): string {
  if (key.length !== 32) throw new TypeError('onion key must be 32 bytes');
  const version = Uint8Array.of(3);
  const checksum = sha3_256(Uint8Array.from([...Buffer.from('.onion checksum'), ...key, 3])).subarray(0, 2);
  return base32nopad.encode(Uint8Array.from([...key, ...checksum, ...version])).toLowerCase();
}

function onionKey(label: string): Uint8Array | null {
  if (!ONION_LABEL.test(label)) return null;
  const raw = base32nopad.decode(label.toUpperCase());
  const key = raw.slice(0, 32);
  return raw[34] === 3 && onionAddress(key) === label ? key : null;
}

function parse(input: string): Parsed {
  if (typeof input !== 'string') throw new TypeError(`endpoint must be a string, got ${typeof input}`);
  if (/^mixnet:/i.test(input)) {
    const id = mixnetProviderId(input.toLowerCase());
    if (id === null) throw bad('a mixnet endpoint is mixnet:<provider id, 16 hex characters>');
    return { kind: 'mixnet', id };
  }
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `ws://${input}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(`not a URL: ${JSON.stringify(input.slice(0, 80))}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw bad(`scheme must be ws or wss, got ${url.protocol}`);
  if (url.username !== '' || url.password !== '') throw bad('credentials are not allowed in an endpoint');
  if (url.hash !== '') throw bad('fragments are not allowed in an endpoint');
  const tls = url.protocol === 'wss:';
  const port = url.port === '' ? (tls ? 443 : 80) : Number(url.port);
  const host = url.hostname;
  const plain = (url.pathname === '/' || url.pathname === '') && url.search === '';
  if (host.endsWith('.onion')) {
    const key = onionKey(host.slice(0, -'.onion'.length));
    if (key === null) throw bad('only v3 onion addresses (56 characters, valid checksum) are supported');
    if (!tls && plain) return { kind: 'onion', key, port };
  }
  if (!plain || (tls && (host.startsWith('[') || isIPv4(host)))) {
    const canonical = url.href.replace(/^(wss?:\/\/[^/]*)\/$/, '$1');
    if (canonical.length > MAX_HINT_STRING) throw bad(`URL longer than ${MAX_HINT_STRING} characters`);
    return { kind: 'url', url: canonical };
  }
  if (host.startsWith('[')) return { kind: 'ipv6', tls, host, port };
  if (isIPv4(host)) return { kind: 'ipv4', tls, host, port };
  if (!DNS_NAME.test(host)) throw bad(`not a valid host name: ${JSON.stringify(host)}`);
  return { kind: 'dns', tls, host, port };
}

function format(p: Parsed): string {
  if (p.kind === 'url') return p.url;
  if (p.kind === 'mixnet') return mixnetEndpoint(p.id);
  const tls = p.kind !== 'onion' && p.tls;
  const host = p.kind === 'onion' ? `${onionAddress(p.key)}.onion` : p.host;
  const port = p.port === (tls ? 443 : 80) ? '' : `:${p.port}`;
  return `${tls ? 'wss' : 'ws'}://${host}${port}`;
}

/**
 * The canonical form of an endpoint string. Throws DeaddropError BAD_INPUT if it is not one.
 * @example normalizeEndpoint('1.2.3.4:8080') // 'ws://1.2.3.4:8080'
 */
export function normalizeEndpoint(input: string): string {
  return format(parse(input));
}

/**
 * The canonical endpoint of the v3 onion service whose key is `key`, on `port`: the one form
 * every caller (introductions, whereabouts, status) prints, e.g. `ws://<56>.onion` for port 80.
 */
export function onionEndpoint(key: Uint8Array, port: number): string {
  if (!Number.isSafeInteger(port) || port < 1 || port > 65_535) throw bad('onion port must be 1..65535');
  return format({ kind: 'onion', key, port });
}

/** True when an endpoint (any accepted string form) is reached through an onion service. Throws BAD_INPUT if invalid. */
export function isOnionEndpointString(input: string): boolean {
  const p = parse(input);
  if (p.kind === 'mixnet') return false;
  return p.kind === 'onion' || new URL(p.kind === 'url' ? p.url : format(p)).hostname.endsWith('.onion');
}

function u16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

function ipv6Bytes(bracketed: string): number[] {
  const text = bracketed.slice(1, -1);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.flatMap((g) => u16(parseInt(g, 16)));
}

/**
 * The binary hint for an endpoint. `nodeKey` lets an onion service whose key is the node key
 * shrink to 3 bytes. Throws BAD_INPUT for an invalid endpoint.
 */
export function encodeEndpoint(input: string, nodeKey?: Uint8Array): Uint8Array {
  const p = parse(input);
  switch (p.kind) {
    case 'ipv4':
      return Uint8Array.from([HINT_WS_IPV4, ...p.host.split('.').map(Number), ...u16(p.port)]);
    case 'ipv6':
      return Uint8Array.from([HINT_WS_IPV6, ...ipv6Bytes(p.host), ...u16(p.port)]);
    case 'dns':
      return Uint8Array.from([p.tls ? HINT_WSS_DNS : HINT_WS_DNS, p.host.length, ...Buffer.from(p.host, 'ascii'), ...u16(p.port)]);
    case 'onion':
      if (nodeKey !== undefined && equalBytes(nodeKey, p.key)) return Uint8Array.from([HINT_ONION_SELF, ...u16(p.port)]);
      return Uint8Array.from([HINT_ONION, ...p.key, ...u16(p.port)]);
    case 'url':
      return Uint8Array.from([HINT_URL, p.url.length, ...Buffer.from(p.url, 'ascii')]);
    case 'mixnet':
      return Uint8Array.from([HINT_MIXNET, ...p.id]);
  }
}

/** Reads one hint at `offset`: the endpoint string and the offset after it, or null. */
export function decodeEndpoint(bytes: Uint8Array, offset: number, nodeKey: Uint8Array): { endpoint: string; end: number } | null {
  const raw = readHint(bytes, offset, nodeKey);
  if (raw === null) return null;
  try {
    const endpoint = normalizeEndpoint(raw.text);
    const again = encodeEndpoint(endpoint, nodeKey);
    return equalBytes(again, bytes.subarray(offset, raw.end)) ? { endpoint, end: raw.end } : null;
  } catch {
    return null;
  }
}

function readHint(b: Uint8Array, o: number, nodeKey: Uint8Array): { text: string; end: number } | null {
  const port = (at: number): number | null => (at + 2 <= b.length ? ((b[at] as number) << 8) | (b[at + 1] as number) : null);
  const str = (at: number, len: number): string | null => {
    if (at + len > b.length) return null;
    const s = b.subarray(at, at + len);
    return s.every((c) => c >= 0x21 && c <= 0x7e) ? Buffer.from(s).toString('ascii') : null;
  };
  const withPort = (scheme: string, host: string | null, at: number): { text: string; end: number } | null => {
    const p = port(at);
    return host === null || p === null || p === 0 ? null : { text: `${scheme}://${host}:${p}`, end: at + 2 };
  };
  switch (b[o]) {
    case HINT_WS_IPV4:
      return o + 5 <= b.length ? withPort('ws', Array.from(b.subarray(o + 1, o + 5)).join('.'), o + 5) : null;
    case HINT_WS_IPV6: {
      if (o + 17 > b.length) return null;
      const groups = Array.from({ length: 8 }, (_, i) => (((b[o + 1 + 2 * i] as number) << 8) | (b[o + 2 + 2 * i] as number)).toString(16));
      return withPort('ws', `[${groups.join(':')}]`, o + 17);
    }
    case HINT_WS_DNS:
    case HINT_WSS_DNS: {
      const len = b[o + 1];
      if (len === undefined || len === 0) return null;
      return withPort(b[o] === HINT_WSS_DNS ? 'wss' : 'ws', str(o + 2, len), o + 2 + len);
    }
    case HINT_ONION_SELF:
      return withPort('ws', `${onionAddress(nodeKey)}.onion`, o + 1);
    case HINT_ONION:
      return o + 33 <= b.length ? withPort('ws', `${onionAddress(b.subarray(o + 1, o + 33))}.onion`, o + 33) : null;
    case HINT_URL: {
      const len = b[o + 1];
      if (len === undefined || len === 0) return null;
      const url = str(o + 2, len);
      return url === null ? null : { text: url, end: o + 2 + len };
    }
    case HINT_MIXNET:
      return o + 1 + MIX_PROVIDER_ID_BYTES <= b.length ? { text: mixnetEndpoint(b.subarray(o + 1, o + 1 + MIX_PROVIDER_ID_BYTES)), end: o + 1 + MIX_PROVIDER_ID_BYTES } : null;
    default:
      return null;
  }
}
