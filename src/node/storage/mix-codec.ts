/**
 * Wire format of storage reads through the mixnet (docs/protocol/storage.md §10). A request is the
 * plaintext of one sealed body (../mixnet/message.ts `sealBody`, from a fresh key per read, to the
 * server's identity key, delivered to the server's mailbox at the provider it announced); the
 * answer comes back in the reader's single-use reply blocks (SURBs), one packet per SURB:
 *
 *   REQUEST = 0x20 | version=1 | reqId(8) | op:u8 (1 list, 2 get, 3 renew, 4 put) | siLen:u8 | si (base32, lower case)
 *             | num:u8 | offset:u48 | length:u32 | surbs:u8 (1..MAX_REQUEST_SURBS) | renew, put: leaseSecret(32)
 *             | put: total:u48 | durationMs:u48 | data(length) | surbs × SURB
 *   (a renew carries num 0, its lease duration in ms in `offset`, length 0, and the lease secret;
 *   a put carries bytes offset…offset+length of share `num`, at most MAX_PUT_CHUNK, of a share of
 *   `total` bytes: one part of an upload in parts, sealed by the owner's node key)
 *   REPLY   = 0x21 | version=1 | reqId(8) | index:u8 | total:u8 | len:u16 | data(len) | zero padding
 *
 * The REPLY parts of one request, concatenated in index order, are one response:
 *
 *   RESPONSE = status:u8 | list: count:u8, count × num:u8 | get: size:u48 (the whole share), data | renew, put: nothing
 *
 * A request never needs more than one packet and the server keeps no state between packets: a
 * read larger than one request's answer is many requests (the client's side, ./mix-client.ts).
 * Pure functions; decoders return null on anything malformed and never throw (network input).
 */
import { concatBytes } from '../../util/bytes.js';
import { RELAY_PLAIN_BYTES } from '../mixnet/feed-relay-codec.js';
import { BODY_BYTES } from '../mixnet/params.js';
import { SURB_BYTES } from '../mixnet/sphinx.js';

export const STORE_REQUEST = 0x20;
export const STORE_REPLY = 0x21;
export const STORE_VERSION = 1;
export const OP_LIST = 1;
export const OP_GET = 2;
export const OP_RENEW = 3;
export const OP_PUT = 4;

/** Response status. */
export const STATUS_OK = 0;
export const STATUS_NOT_FOUND = 1;
export const STATUS_BAD_REQUEST = 2;
export const STATUS_INTERNAL = 3;
export const STATUS_NOT_ALLOWED = 4;
export const STATUS_NO_LEASE = 5;
export const STATUS_QUOTA_EXCEEDED = 6;
export const STATUS_TOO_LARGE = 7;
export const STATUS_SHARE_EXISTS = 8;
const REFUSALS = ['not-found', 'bad-request', 'internal', 'not-allowed', 'no-lease', 'quota-exceeded', 'too-large', 'share-exists'] as const;
const REFUSAL_STATUS = [STATUS_NOT_FOUND, STATUS_BAD_REQUEST, STATUS_INTERNAL, STATUS_NOT_ALLOWED, STATUS_NO_LEASE, STATUS_QUOTA_EXCEEDED, STATUS_TOO_LARGE, STATUS_SHARE_EXISTS];
export type StoreRefusal = (typeof REFUSALS)[number];

const MAX_SI_CHARS = 64;
const REQUEST_HEAD = 2 + 8 + 1 + 1 + 1 + 6 + 4 + 1;
/** SURBs one request carries: as many as fit one sealed body beside the longest header. */
export const MAX_REQUEST_SURBS = Math.floor((RELAY_PLAIN_BYTES - REQUEST_HEAD - MAX_SI_CHARS) / SURB_BYTES);
const REPLY_HEAD = 2 + 8 + 1 + 1 + 2;
/** Response bytes one reply packet carries. */
export const REPLY_DATA = BODY_BYTES - REPLY_HEAD;
/** Response header of a get: status and the share's size. */
export const GET_HEAD = 1 + 6;
/** Most share bytes one get request can ask for (its answer fills every SURB it carries). */
export const MAX_GET_LENGTH = MAX_REQUEST_SURBS * REPLY_DATA - GET_HEAD;
/** Largest share offset or size on the wire (u48). */
const MAX_U48 = 2 ** 48 - 1;
/** Put fields after the head: lease secret, total, duration. */
const PUT_FIELDS = 32 + 6 + 6;
/**
 * Share bytes one put request carries: what one sealed body leaves beside the longest header and
 * one SURB (the acknowledgement). About 1.1 KB: a share part of the upload is many requests.
 */
export const MAX_PUT_CHUNK = RELAY_PLAIN_BYTES - REQUEST_HEAD - MAX_SI_CHARS - PUT_FIELDS - SURB_BYTES;

export interface StoreRequest {
  readonly reqId: Uint8Array;
  readonly op: StoreOp;
  readonly si: string;
  readonly num: number;
  readonly offset: number;
  readonly length: number;
  readonly surbs: Uint8Array[];
  /** Renew and put: the lease secret (32 bytes); for a renew `offset` is the lease duration in ms. */
  readonly leaseSecret?: Uint8Array;
  /** Put: the share's whole length, the lease duration in ms, and bytes `offset…offset+length`. */
  readonly total?: number;
  readonly durationMs?: number;
  readonly data?: Uint8Array;
}

export type StoreOp = 'list' | 'get' | 'renew' | 'put';

export interface StoreReply {
  readonly reqId: Uint8Array;
  readonly index: number;
  readonly total: number;
  readonly data: Uint8Array;
}

export type StoreResponse =
  | { readonly status: 'ok'; readonly nums: number[] }
  | { readonly status: 'ok'; readonly size: number; readonly data: Uint8Array }
  | { readonly status: 'ok' }
  | { readonly status: StoreRefusal };

function setU48(v: DataView, o: number, n: number): void {
  v.setUint16(o, Math.floor(n / 2 ** 32));
  v.setUint32(o + 2, n >>> 0);
}

function getU48(v: DataView, o: number): number {
  return v.getUint16(o) * 2 ** 32 + v.getUint32(o + 2);
}

const SI = /^[a-z2-7]{1,64}$/;
/** Ops by their wire number less one. */
const OPS: readonly StoreOp[] = ['list', 'get', 'renew', 'put'];

/** Encodes a request; RangeError on values the format cannot carry. */
export function encodeRequest(r: StoreRequest): Uint8Array {
  if (r.reqId.length !== 8) throw new RangeError('request id: 8 bytes');
  if (!SI.test(r.si)) throw new RangeError('storage index: 1..64 lower-case base32 characters');
  if (!Number.isInteger(r.num) || r.num < 0 || r.num > 255) throw new RangeError('share number: 0..255');
  if (!Number.isSafeInteger(r.offset) || r.offset < 0 || r.offset > MAX_U48) throw new RangeError('offset: 0..2^48-1');
  const maxLength = r.op === 'put' ? MAX_PUT_CHUNK : MAX_GET_LENGTH;
  if (!Number.isInteger(r.length) || r.length < 0 || r.length > maxLength) throw new RangeError(`length: 0..${maxLength}`);
  if (r.surbs.length < 1 || r.surbs.length > MAX_REQUEST_SURBS || r.surbs.some((s) => s.length !== SURB_BYTES)) throw new RangeError(`1..${MAX_REQUEST_SURBS} SURBs of ${SURB_BYTES} bytes`);
  const keyed = r.op === 'renew' || r.op === 'put';
  if (keyed !== (r.leaseSecret !== undefined) || (r.leaseSecret && r.leaseSecret.length !== 32)) throw new RangeError('a renew or put, and only those, carries a 32-byte lease secret');
  if ((r.op === 'list' || r.op === 'renew') && (r.length !== 0 || r.num !== 0 || (r.op === 'list' && r.offset !== 0))) throw new RangeError('list and renew carry num 0 and length 0 (and a list offset 0)');
  let put = new Uint8Array(0);
  if (r.op === 'put') {
    const { total, durationMs, data } = r;
    if (!data || data.length !== r.length) throw new RangeError('a put carries `length` bytes of data');
    if (total === undefined || !Number.isSafeInteger(total) || total < 1 || total > MAX_U48 || r.offset + r.length > total || (r.length === 0 && r.offset < total)) throw new RangeError('a put needs 0 <= offset < offset + length <= total <= 2^48-1');
    if (durationMs === undefined || !Number.isSafeInteger(durationMs) || durationMs < 1 || durationMs > MAX_U48) throw new RangeError('a put needs a lease duration of 1..2^48-1 ms');
    put = new Uint8Array(12 + data.length);
    const pv = new DataView(put.buffer);
    setU48(pv, 0, total);
    setU48(pv, 6, durationMs);
    put.set(data, 12);
  } else if (r.data !== undefined || r.total !== undefined || r.durationMs !== undefined) {
    throw new RangeError('only a put carries data, total and duration');
  }
  const si = new TextEncoder().encode(r.si);
  const head = new Uint8Array(REQUEST_HEAD + si.length);
  const v = new DataView(head.buffer);
  head[0] = STORE_REQUEST;
  head[1] = STORE_VERSION;
  head.set(r.reqId, 2);
  head[10] = OPS.indexOf(r.op) + 1;
  head[11] = si.length;
  head.set(si, 12);
  let o = 12 + si.length;
  head[o++] = r.num;
  setU48(v, o, r.offset);
  v.setUint32(o + 6, r.length);
  head[o + 10] = r.surbs.length;
  const out = concatBytes(head, r.leaseSecret ?? new Uint8Array(0), put, ...r.surbs);
  if (out.length > RELAY_PLAIN_BYTES) throw new RangeError('request longer than one sealed body');
  return out;
}

/** Decodes a request; null when malformed (wrong kind or version, bad bounds, trailing bytes). */
export function decodeRequest(p: Uint8Array): StoreRequest | null {
  try {
    if (p.length < REQUEST_HEAD + 1 || p.length > RELAY_PLAIN_BYTES || p[0] !== STORE_REQUEST || p[1] !== STORE_VERSION) return null;
    const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const op = OPS[p[10]! - 1];
    const siLen = p[11]!;
    if (!op || siLen < 1 || siLen > MAX_SI_CHARS || p.length < REQUEST_HEAD + siLen) return null;
    const si = String.fromCharCode(...p.subarray(12, 12 + siLen));
    if (!SI.test(si)) return null;
    const o = 12 + siLen;
    const num = p[o]!;
    const offset = getU48(v, o + 1);
    const length = v.getUint32(o + 7);
    const count = p[o + 11]!;
    if (length > (op === 'put' ? MAX_PUT_CHUNK : MAX_GET_LENGTH) || count < 1 || count > MAX_REQUEST_SURBS) return null;
    if (op === 'list' && (num !== 0 || offset !== 0 || length !== 0)) return null;
    if (op === 'renew' && (num !== 0 || length !== 0)) return null;
    const keyEnd = o + 12 + (op === 'renew' || op === 'put' ? 32 : 0);
    const at = keyEnd + (op === 'put' ? 12 + length : 0);
    if (p.length !== at + count * SURB_BYTES) return null;
    const surbs: Uint8Array[] = [];
    for (let i = 0; i < count; i++) surbs.push(p.slice(at + i * SURB_BYTES, at + (i + 1) * SURB_BYTES));
    const req = { reqId: p.slice(2, 10), op, si, num, offset, length, surbs };
    if (op === 'renew') return { ...req, leaseSecret: p.slice(o + 12, keyEnd) };
    if (op !== 'put') return req;
    const total = getU48(v, keyEnd);
    const durationMs = getU48(v, keyEnd + 6);
    if (total < 1 || offset + length > total || (length === 0 && offset < total) || durationMs < 1) return null;
    return { ...req, leaseSecret: p.slice(o + 12, keyEnd), total, durationMs, data: p.slice(keyEnd + 12, at) };
  } catch {
    return null;
  }
}

/** Encodes a response. */
export function encodeResponse(r: StoreResponse): Uint8Array {
  if (r.status !== 'ok') return Uint8Array.of(REFUSAL_STATUS[REFUSALS.indexOf(r.status)]!);
  if (!('nums' in r) && !('size' in r)) return Uint8Array.of(STATUS_OK);
  if ('nums' in r) {
    if (r.nums.length > 255 || r.nums.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new RangeError('share numbers: at most 255, each 0..255');
    return Uint8Array.of(STATUS_OK, r.nums.length, ...r.nums);
  }
  if (!Number.isSafeInteger(r.size) || r.size < 0 || r.size > MAX_U48) throw new RangeError('size: 0..2^48-1');
  const head = new Uint8Array(GET_HEAD);
  setU48(new DataView(head.buffer), 1, r.size);
  return concatBytes(head, r.data);
}

/** Decodes a response to a request of kind `op`; null when malformed. */
export function decodeResponse(op: StoreOp, m: Uint8Array): StoreResponse | null {
  if (m.length < 1) return null;
  const s = m[0]!;
  if (s !== STATUS_OK) {
    const i = REFUSAL_STATUS.indexOf(s);
    return m.length === 1 && i >= 0 ? { status: REFUSALS[i]! } : null;
  }
  if (op === 'renew' || op === 'put') return m.length === 1 ? { status: 'ok' } : null;
  if (op === 'list') {
    if (m.length < 2 || m.length !== 2 + m[1]!) return null;
    return { status: 'ok', nums: [...m.subarray(2)] };
  }
  if (m.length < GET_HEAD) return null;
  return { status: 'ok', size: getU48(new DataView(m.buffer, m.byteOffset, m.byteLength), 1), data: m.slice(GET_HEAD) };
}

/** Splits a response into REPLY plaintexts (at most `surbs` of them); RangeError when it needs more. */
export function splitReply(reqId: Uint8Array, response: Uint8Array, surbs: number): Uint8Array[] {
  const total = Math.max(1, Math.ceil(response.length / REPLY_DATA));
  if (total > surbs || total > 255) throw new RangeError('response longer than the reply blocks given');
  const out: Uint8Array[] = [];
  for (let i = 0; i < total; i++) {
    const data = response.subarray(i * REPLY_DATA, (i + 1) * REPLY_DATA);
    const head = new Uint8Array(REPLY_HEAD);
    head[0] = STORE_REPLY;
    head[1] = STORE_VERSION;
    head.set(reqId, 2);
    head[10] = i;
    head[11] = total;
    new DataView(head.buffer).setUint16(12, data.length);
    out.push(concatBytes(head, data));
  }
  return out;
}

/** Decodes one REPLY body (zero padding after the data is allowed, nothing else); null when malformed. */
export function decodeReply(b: Uint8Array): StoreReply | null {
  if (b.length < REPLY_HEAD || b.length > BODY_BYTES || b[0] !== STORE_REPLY || b[1] !== STORE_VERSION) return null;
  const index = b[10]!;
  const total = b[11]!;
  const len = (b[12]! << 8) | b[13]!;
  if (total < 1 || total > MAX_REQUEST_SURBS || index >= total || len > REPLY_DATA || REPLY_HEAD + len > b.length) return null;
  // Every part but the last is full: that fixes the response length and rules out overlaps.
  if (index < total - 1 && len !== REPLY_DATA) return null;
  for (let i = REPLY_HEAD + len; i < b.length; i++) if (b[i] !== 0) return null;
  return { reqId: b.slice(2, 10), index, total, data: b.slice(REPLY_HEAD, REPLY_HEAD + len) };
}
