/**
 * Log entry codec: the signed, hash-linked entry of a deaddrop feed. Version 2 is written; version 1
 * (one signature per entry) is still read and verified, so logs written before v2 stay valid as they
 * are and a feed may hold v1 entries followed by v2 ones (see docs/protocol/node.md §2).
 *
 * Layout (all integers big-endian). The content, bytes [0, C), is the same in both versions:
 *
 * | offset  | size | field                                                 |
 * | ------- | ---- | ----------------------------------------------------- |
 * | 0       | 1    | version = 0x02 (0x01: legacy, see below)              |
 * | 1       | 32   | author: Ed25519 public key (the feed id)              |
 * | 33      | 8    | seq: uint64, 1 .. 2^53-1                              |
 * | 41      | 32   | prev: hash of the previous entry; zero iff seq = 1    |
 * | 73      | 8    | timestamp: uint64 milliseconds since the epoch        |
 * | 81      | 2    | H: header length, 1 .. 4096                           |
 * | 83      | H    | header: canonical key-value list (see below)          |
 * | 83+H    | 4    | B: body length, 0 .. 1 MiB                            |
 * | 87+H    | B    | body                                    (C = 87+H+B)  |
 * | C       | 2    | v2 seal: n, entries in the signed batch, 1 .. 1024    |
 * | C+2     | 2    | i, this entry's index in the batch, 0 .. n-1          |
 * | C+4     | 32·d | audit path of leaf i in the batch tree (RFC 9162)     |
 * | C+4+32d | 64   | Ed25519 signature of the batch                        |
 *
 * Header: `count:u8` (1..16) then `count` fields in strictly ascending byte order of key:
 * `keyLen:u8 key tag:u8 value` with tags 0x01 string (u16 length + UTF-8), 0x02 bytes
 * (u16 length + bytes), 0x03 uint (u64, at most 2^53-1), 0x04 hash list (u8 count + 32-byte hashes).
 * `type` (string) is required; `app` must be a string and `refs` a hash list when present.
 * Because keys are sorted and every length is fixed-width, one header has exactly one encoding.
 *
 * v2, batch-signed: the author signs one Merkle root per append batch, as hypercore does, instead of
 * one signature per entry (an Ed25519 signature cost more than everything else an append does).
 * Entry hash h = SHA-256(content); the batch tree is RFC 6962's shape and node hash
 * (SHA-256(0x01 || l || r)) over the entry hashes of firstSeq .. firstSeq+n-1 (firstSeq = seq - i)
 * taken as leaves as they are: a content starts with 0x02 and is longer than 65 bytes, so no entry
 * can pass for a node, which is what RFC 6962's 0x00 leaf prefix ensures, at one hash less per entry.
 * The signature is Ed25519 over
 * `"deaddrop/batch/v2\0" || firstSeq:u64 || n:u16 || root`. Each entry carries the signature and its
 * own audit path, so it still verifies on its own (one Ed25519 verify + d ≤ 10 hashes) wherever it
 * travels (relay, directory, fork proofs); a receiver holding a run of one batch checks the whole run
 * against the tree rebuilt from its leaves and verifies the signature once (`verifyEntries`).
 * The seal is outside the hash: the hash is what links, what the feed tree commits to, and what fork
 * detection compares, so re-sealing cannot change an entry's identity or frame its author.
 *
 * v1, legacy: no seal, a 64-byte signature over `"deaddrop/entry/v1\0" || SHA-256(content)` ends the
 * entry, and the entry hash is SHA-256 of the whole encoding, signature included.
 *
 * SHA-256 is native and SHA-NI accelerated in node:crypto (about 1.7 GB/s here, several times
 * BLAKE2b's speed via OpenSSL), it is what RFC 6962 Merkle trees use, and a feed root anchored in a
 * Bitcoin OP_RETURN can be checked with the tools Bitcoin people already have.
 *
 * Domain separation: every structure deaddrop signs with Ed25519 begins with its own ASCII context
 * string ("deaddrop/batch/v2", "deaddrop/tree-head/v1", ...), so no signature can be replayed across
 * structures.
 */
import { isUtf8 } from 'node:buffer';
import { DeaddropError } from '../../util/errors.js';
import { HASH_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, ed25519Verify, sha256, sha256Resumable, sha256Split, utf8 } from '../crypto.js';
import type { Signer } from '../crypto.js';
import { concatBytes, equalBytes } from '../../util/bytes.js';
import { leafHash, pathLength, rootFromPath, treeLevels, writeAuditPaths } from './merkle.js';

/** The version written. */
export const ENTRY_VERSION = 2;
/** The legacy, individually signed version, still read and verified. */
export const LEGACY_ENTRY_VERSION = 1;
export const MAX_HEADER_BYTES = 4096;
export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_HEADER_FIELDS = 16;
export const MAX_REFS = 64;
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** Most entries under one batch signature: paths stay ≤ 10 hashes (320 bytes). */
export const MAX_BATCH_ENTRIES = 1024;
const MAX_PATH_HASHES = 10;
/** Fixed part before the header. */
export const ENTRY_PREFIX_BYTES = 83;
/** Largest possible encoded entry. */
export const MAX_ENTRY_BYTES = ENTRY_PREFIX_BYTES + MAX_HEADER_BYTES + 4 + MAX_BODY_BYTES + 4 + MAX_PATH_HASHES * HASH_BYTES + SIGNATURE_BYTES;
export const ZERO_HASH: Uint8Array = new Uint8Array(HASH_BYTES);
/** Context prefix of the message a v1 entry signature covers. */
export const ENTRY_SIGNING_CONTEXT: Uint8Array = utf8('deaddrop/entry/v1\0');
/** Context prefix of the message a v2 batch signature covers. */
export const BATCH_SIGNING_CONTEXT: Uint8Array = utf8('deaddrop/batch/v2\0');

const TAG_STRING = 0x01;
const TAG_BYTES = 0x02;
const TAG_UINT = 0x03;
const TAG_HASHES = 0x04;
const KEY_RE = /^[a-z0-9_.-]{1,32}$/;
// key ([a-z0-9_.-]{1,32}) and name ([A-Za-z0-9._:/-]{1,64}) characters as tables: tested on every
// header of every append, where a table lookup per character costs less than a regex
const LOWER_KEY = new Uint8Array(256);
for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789_.-') LOWER_KEY[c.charCodeAt(0)] = 1;
const NAME_CHAR = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-') NAME_CHAR[c.charCodeAt(0)] = 1;

/** `s` has 1..max characters, all of them in `table`. */
function allIn(s: string, table: Uint8Array, max: number): boolean {
  if (s.length < 1 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) if (table[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/** A header value: string, opaque bytes, unsigned integer, or list of 32-byte hashes. */
export type HeaderValue = string | Uint8Array | number | readonly Uint8Array[];

/** The typed key-value header. `type` is required; `app` and `refs` are the well-known optional keys. */
export interface EntryHeader {
  readonly type: string;
  readonly app?: string;
  readonly refs?: readonly Uint8Array[];
  readonly [key: string]: HeaderValue | undefined;
}

/** What the author chooses for a new entry; seq/prev come from the feed. */
export interface EntryDraft {
  readonly header: EntryHeader;
  readonly body?: Uint8Array;
  readonly timestamp?: number;
}

/** A decoded entry. Byte fields are views into `raw`. */
export interface LogEntry {
  readonly version: number;
  readonly author: Uint8Array;
  readonly seq: number;
  readonly prev: Uint8Array;
  readonly timestamp: number;
  readonly header: EntryHeader;
  readonly body: Uint8Array;
  readonly signature: Uint8Array;
  /** The full encoding. */
  readonly raw: Uint8Array;
  /** The entry's identity, what `prev` links and the feed tree commit to: v2 SHA-256(content), v1 SHA-256(raw). */
  readonly hash: Uint8Array;
  /** SHA-256(content): what fork detection compares (v2: equal to `hash`). */
  readonly signedDigest: Uint8Array;
  /** v2: where the entry sits in its signed batch; null for v1. */
  readonly batch: BatchSeal | null;
}

/** The v2 seal of an entry: its batch, position and audit path (the signature is `LogEntry.signature`). */
export interface BatchSeal {
  readonly firstSeq: number;
  readonly size: number;
  readonly index: number;
  /** The audit path's hashes concatenated, bottom-up. */
  readonly path: Uint8Array;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

function bad(reason: string): DeaddropError {
  return DeaddropError.protocol(`invalid log entry: ${reason}`);
}

function writeU64(view: DataView, off: number, n: number): void {
  view.setUint32(off, Math.floor(n / 0x1_0000_0000));
  view.setUint32(off + 4, n >>> 0);
}

function readU64(view: DataView, off: number, what: string): number {
  const hi = view.getUint32(off);
  if (hi > 0x1f_ffff) throw bad(`${what} above 2^53-1`);
  return hi * 0x1_0000_0000 + view.getUint32(off + 4);
}

function isUint53(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Strings up to this length are tried as ASCII first (header values are mostly short names). */
const SHORT_STRING = 64;

/** True when every UTF-16 unit of `s` is ASCII (then its UTF-8 is one byte per unit). */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Encoded size of one value (tag included); throws TypeError/RangeError on misuse. */
function valueSize(key: string, value: HeaderValue): number {
  if (typeof value === 'string') {
    // a native byteLength call costs more than scanning a short name
    const n = value.length <= SHORT_STRING && isAscii(value) ? value.length : Buffer.byteLength(value, 'utf8');
    if (n > 0xffff) throw new RangeError(`header.${key}: string too long`);
    return 3 + n;
  }
  if (value instanceof Uint8Array) {
    if (value.length > 0xffff) throw new RangeError(`header.${key}: bytes too long`);
    return 3 + value.length;
  }
  if (typeof value === 'number') {
    if (!isUint53(value)) throw new RangeError(`header.${key}: expected an unsigned safe integer`);
    return 9;
  }
  if (Array.isArray(value)) {
    if (value.length > MAX_REFS) throw new RangeError(`header.${key}: more than ${MAX_REFS} hashes`);
    value.forEach((h: unknown, i) => {
      if (!(h instanceof Uint8Array) || h.length !== HASH_BYTES) throw new TypeError(`header.${key}[${i}]: expected 32 bytes`);
    });
    return 2 + value.length * HASH_BYTES;
  }
  throw new TypeError(`header.${key}: unsupported value type ${typeof value}`);
}

/** Writes one value checked by valueSize at `off`; returns the offset after it. */
function writeValue(out: Uint8Array, view: DataView, off: number, value: HeaderValue): number {
  if (typeof value === 'string') {
    out[off] = TAG_STRING;
    let written = value.length;
    if (written <= SHORT_STRING && isAscii(value)) for (let i = 0; i < written; i++) out[off + 3 + i] = value.charCodeAt(i);
    else written = utf8Encoder.encodeInto(value, out.subarray(off + 3)).written;
    view.setUint16(off + 1, written);
    return off + 3 + written;
  }
  if (value instanceof Uint8Array) {
    out[off] = TAG_BYTES;
    view.setUint16(off + 1, value.length);
    out.set(value, off + 3);
    return off + 3 + value.length;
  }
  if (typeof value === 'number') {
    out[off] = TAG_UINT;
    writeU64(view, off + 1, value);
    return off + 9;
  }
  const list = value as readonly Uint8Array[];
  out[off] = TAG_HASHES;
  out[off + 1] = list.length;
  list.forEach((h, i) => out.set(h, off + 2 + i * HASH_BYTES));
  return off + 2 + list.length * HASH_BYTES;
}

function checkWellKnown(header: EntryHeader, fail: (m: string) => Error): void {
  if (typeof header.type !== 'string' || !allIn(header.type, NAME_CHAR, 64)) throw fail('type must match [A-Za-z0-9._:/-]{1,64}');
  if (header.app !== undefined && (typeof header.app !== 'string' || !allIn(header.app, NAME_CHAR, 64))) {
    throw fail('app must match [A-Za-z0-9._:/-]{1,64}');
  }
  if (header.refs !== undefined && !Array.isArray(header.refs)) throw fail('refs must be a list of 32-byte hashes');
}

/** A header checked and measured, ready to be written in place (into the entry buffer, with no copy). */
interface HeaderLayout {
  readonly header: EntryHeader;
  readonly keys: string[];
  readonly size: number;
}

function headerLayout(header: EntryHeader): HeaderLayout {
  if (header === null || typeof header !== 'object') throw new TypeError('header: expected an object');
  checkWellKnown(header, (m) => new TypeError(`header: ${m}`));
  const keys: string[] = [];
  for (const k of Object.keys(header)) if (header[k] !== undefined) keys.push(k);
  if (keys.length > MAX_HEADER_FIELDS) throw new RangeError(`header: more than ${MAX_HEADER_FIELDS} fields`);
  let size = 1;
  for (const key of keys) {
    if (!allIn(key, LOWER_KEY, 32)) throw new TypeError(`header: key ${JSON.stringify(key)} must match [a-z0-9_.-]{1,32}`);
    size += 1 + key.length + valueSize(key, header[key]!);
  }
  if (size > MAX_HEADER_BYTES) throw new RangeError(`header: ${size} bytes, max ${MAX_HEADER_BYTES}`);
  // keys are ASCII, so UTF-16 order is byte order; insertion sort, as there are at most 16
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > k; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = k;
  }
  return { header, keys, size };
}

function writeHeader(layout: HeaderLayout, out: Uint8Array, view: DataView, start: number): void {
  out[start] = layout.keys.length;
  let off = start + 1;
  for (const key of layout.keys) {
    out[off++] = key.length;
    for (let i = 0; i < key.length; i++) out[off++] = key.charCodeAt(i);
    off = writeValue(out, view, off, layout.header[key]!);
  }
}

/** Canonical encoding of a header. Throws TypeError/RangeError on misuse. */
export function encodeHeader(header: EntryHeader): Uint8Array {
  const layout = headerLayout(header);
  const out = new Uint8Array(layout.size);
  writeHeader(layout, out, new DataView(out.buffer), 0);
  return out;
}

// defineProperty so that a key such as "__proto__" stays a plain own field; plain assignment
// otherwise (keys are [a-z0-9_.-], so "__proto__" is the only key that assignment would not store).
function setField(obj: Record<string, HeaderValue>, key: string, value: HeaderValue): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** ASCII bytes as a string without TextDecoder (header keys and most values are short ASCII). */
function asciiString(b: Uint8Array): string | null {
  let out = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c >= 0x80) return null;
    out += String.fromCharCode(c);
  }
  return out;
}

/** Decodes a header, rejecting any non-canonical or unknown encoding. */
export function decodeHeader(bytes: Uint8Array): EntryHeader {
  if (bytes.length < 1 || bytes.length > MAX_HEADER_BYTES) throw bad('header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes[0]!;
  if (count < 1 || count > MAX_HEADER_FIELDS) throw bad('header field count');
  const out: Record<string, HeaderValue> = {};
  let off = 1;
  let prevKey: Uint8Array | null = null;
  const need = (n: number): void => {
    if (off + n > bytes.length) throw bad('header truncated');
  };
  for (let f = 0; f < count; f++) {
    need(1);
    const keyLen = bytes[off++]!;
    need(keyLen + 1);
    const keyBytes = bytes.subarray(off, off + keyLen);
    off += keyLen;
    if (prevKey !== null && Buffer.compare(prevKey, keyBytes) >= 0) throw bad('header keys not strictly sorted');
    prevKey = keyBytes;
    const key = asciiString(keyBytes);
    if (key === null || !KEY_RE.test(key)) throw bad('header key charset');
    const tag = bytes[off++]!;
    if (tag === TAG_STRING || tag === TAG_BYTES) {
      need(2);
      const len = view.getUint16(off);
      off += 2;
      need(len);
      const v = bytes.subarray(off, off + len);
      off += len;
      if (tag === TAG_BYTES) setField(out, key, v);
      else {
        let text = v.length <= 64 ? asciiString(v) : null;
        if (text === null) {
          try {
            text = utf8Decoder.decode(v);
          } catch {
            throw bad('header string is not UTF-8');
          }
        }
        setField(out, key, text);
      }
    } else if (tag === TAG_UINT) {
      need(8);
      setField(out, key, readU64(view, off, 'header uint'));
      off += 8;
    } else if (tag === TAG_HASHES) {
      need(1);
      const n = bytes[off++]!;
      if (n > MAX_REFS) throw bad('too many hashes');
      need(n * HASH_BYTES);
      const list: Uint8Array[] = [];
      for (let i = 0; i < n; i++) list.push(bytes.subarray(off + i * HASH_BYTES, off + (i + 1) * HASH_BYTES));
      off += n * HASH_BYTES;
      setField(out, key, list);
    } else throw bad(`unknown header value tag ${tag}`);
  }
  if (off !== bytes.length) throw bad('trailing header bytes');
  const header = out as EntryHeader;
  checkWellKnown(header, (m) => bad(m));
  return header;
}


function isKey(b: Uint8Array, off: number, len: number, name: string): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if (b[off + i] !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * True when `decodeHeader` would accept `bytes[start, end)`, checked without building strings or objects:
 * receiving entries must refuse a malformed header, but replication never reads one, so the
 * header object is only built when something asks for it.
 */
function isValidHeader(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  if (end - start < 1 || end - start > MAX_HEADER_BYTES) return false;
  const count = bytes[start]!;
  if (count < 1 || count > MAX_HEADER_FIELDS) return false;
  let off = start + 1;
  let prevKey = -1;
  let prevLen = 0;
  let sawType = false;
  for (let f = 0; f < count; f++) {
    if (off + 1 > end) return false;
    const keyLen = bytes[off++]!;
    if (keyLen < 1 || keyLen > 32 || off + keyLen + 1 > end) return false;
    const key = off;
    for (let i = 0; i < keyLen; i++) if (LOWER_KEY[bytes[key + i]!] !== 1) return false;
    if (prevKey >= 0 && Buffer.compare(bytes.subarray(prevKey, prevKey + prevLen), bytes.subarray(key, key + keyLen)) >= 0) return false;
    prevKey = key;
    prevLen = keyLen;
    off += keyLen;
    const tag = bytes[off++]!;
    const named = isKey(bytes, key, keyLen, 'type') || isKey(bytes, key, keyLen, 'app');
    if (named && tag !== TAG_STRING) return false;
    if (isKey(bytes, key, keyLen, 'refs') && tag !== TAG_HASHES) return false;
    if (tag === TAG_STRING || tag === TAG_BYTES) {
      if (off + 2 > end) return false;
      const n = (bytes[off]! << 8) | bytes[off + 1]!;
      off += 2;
      if (off + n > end) return false;
      if (named) {
        if (n < 1 || n > 64) return false;
        for (let i = 0; i < n; i++) if (NAME_CHAR[bytes[off + i]!] !== 1) return false;
        if (keyLen === 4) sawType = true;
      } else if (tag === TAG_STRING && !isUtf8(bytes.subarray(off, off + n))) return false;
      off += n;
    } else if (tag === TAG_UINT) {
      if (off + 8 > end || bytes[off] !== 0 || bytes[off + 1]! > 0x1f) return false;
      off += 8;
    } else if (tag === TAG_HASHES) {
      if (off + 1 > end) return false;
      const n = bytes[off++]!;
      if (n > MAX_REFS || off + n * HASH_BYTES > end) return false;
      off += n * HASH_BYTES;
    } else return false;
  }
  return off === end && sawType;
}

/** The error decodeHeader gives for bytes isValidHeader refused. */
function decodeHeaderError(bytes: Uint8Array): DeaddropError {
  try {
    decodeHeader(bytes);
  } catch (err) {
    if (err instanceof DeaddropError) return err;
  }
  return bad('header');
}

/** Fields of an entry before signing. */
export interface UnsignedEntry {
  readonly author: Uint8Array;
  readonly seq: number;
  readonly prev: Uint8Array;
  readonly timestamp: number;
  readonly header: EntryHeader;
  readonly body: Uint8Array;
}

/** What the author writes in one entry of a batch; seq and prev follow from the batch. */
export interface BatchItem {
  readonly timestamp: number;
  readonly header: EntryHeader;
  readonly body: Uint8Array;
}

function checkFields(e: Omit<UnsignedEntry, 'header'>): void {
  if (!(e.author instanceof Uint8Array) || e.author.length !== PUBLIC_KEY_BYTES) throw new TypeError('author: expected 32 bytes');
  if (!isUint53(e.seq) || e.seq < 1) throw new RangeError('seq: expected an integer in 1 .. 2^53-1');
  if (!(e.prev instanceof Uint8Array) || e.prev.length !== HASH_BYTES) throw new TypeError('prev: expected 32 bytes');
  if ((e.seq === 1) !== isZero(e.prev)) throw new RangeError('prev: must be zero exactly when seq = 1');
  checkItem(e);
}

/** The checks of checkFields that differ between the entries of one batch. */
function checkItem(e: Pick<BatchItem, 'timestamp' | 'body'>): void {
  if (!isUint53(e.timestamp)) throw new RangeError('timestamp: expected an unsigned safe integer');
  if (!(e.body instanceof Uint8Array)) throw new TypeError('body: expected Uint8Array');
  if (e.body.length > MAX_BODY_BYTES) throw new RangeError(`body: ${e.body.length} bytes, max ${MAX_BODY_BYTES}`);
}

/** Writes the content (bytes [0, C)) of an entry into `buf` from `at`; `view` is over `buf` (same offsets). */
function writeContent(buf: Uint8Array, view: DataView, at: number, version: number, e: UnsignedEntry, header: HeaderLayout): void {
  buf[at] = version;
  buf.set(e.author, at + 1);
  writeU64(view, at + 33, e.seq);
  buf.set(e.prev, at + 41);
  writeU64(view, at + 73, e.timestamp);
  view.setUint16(at + 81, header.size);
  writeHeader(header, buf, view, at + 83);
  view.setUint32(at + 83 + header.size, e.body.length);
  buf.set(e.body, at + 87 + header.size);
}

/** Encodes the content (bytes [0, C)) into a buffer with `trailer` more bytes for the seal or signature. */
function encodeContent(e: UnsignedEntry, version: number, trailer: number): { buf: Uint8Array; contentLength: number; headerLength: number } {
  checkFields(e);
  const header = headerLayout(e.header);
  const contentLength = ENTRY_PREFIX_BYTES + header.size + 4 + e.body.length;
  const buf = new Uint8Array(contentLength + trailer);
  writeContent(buf, new DataView(buf.buffer), 0, version, e, header);
  return { buf, contentLength, headerLength: header.size };
}

/** The exact message a v2 batch signature covers. */
export function batchSigningMessage(firstSeq: number, size: number, root: Uint8Array): Uint8Array {
  const out = new Uint8Array(BATCH_SIGNING_CONTEXT.length + 8 + 2 + HASH_BYTES);
  out.set(BATCH_SIGNING_CONTEXT, 0);
  const view = new DataView(out.buffer);
  writeU64(view, BATCH_SIGNING_CONTEXT.length, firstSeq);
  view.setUint16(BATCH_SIGNING_CONTEXT.length + 8, size);
  out.set(root, BATCH_SIGNING_CONTEXT.length + 10);
  return out;
}

/** What a batch is made of: its first seq, the hash it links from, and its entries. */
export interface BatchDraft {
  readonly firstSeq: number;
  readonly prev: Uint8Array;
  readonly items: readonly BatchItem[];
}

/** Builds, hashes and signs a batch of entries `firstSeq ..` linked from `prev`, with one signature. */
export function createBatch(signer: Signer, batch: BatchDraft): LogEntry[] {
  return signBatch(signer, batch).entries;
}

/**
 * `createBatch`, also giving the batch tree's levels (merkle.ts `treeLevels`, leaves = entry hashes):
 * the feed store takes the feed tree's nodes that lie inside the batch from them instead of hashing
 * them again.
 */
export function signBatch(signer: Signer, batch: BatchDraft): { entries: LogEntry[]; levels: Uint8Array[][] } {
  const { firstSeq, items } = batch;
  const n = items.length;
  if (n < 1 || n > MAX_BATCH_ENTRIES) throw new RangeError(`batch: 1 .. ${MAX_BATCH_ENTRIES} entries`);
  if (!isUint53(firstSeq) || firstSeq < 1 || firstSeq + n - 1 > MAX_SEQ) throw new RangeError('firstSeq: out of range');
  // every entry of the batch lives in one allocation: a thousand small ArrayBuffers cost more in
  // allocation and garbage collection than hashing them does
  const layouts = items.map((item) => headerLayout(item.header));
  const contentLengths = items.map((item, i) => ENTRY_PREFIX_BYTES + layouts[i]!.size + 4 + (item.body?.length ?? 0));
  const pathBytes = items.map((_, i) => pathLength(i, n) * HASH_BYTES);
  let total = 0;
  for (let i = 0; i < n; i++) total += contentLengths[i]! + 4 + pathBytes[i]! + SIGNATURE_BYTES;
  const arena = new Uint8Array(total);
  const arenaView = new DataView(arena.buffer);
  const raws: Uint8Array[] = [];
  const hashes: Uint8Array[] = [];
  let prev = batch.prev;
  let off = 0;
  for (let i = 0; i < n; i++) {
    const item = items[i]!;
    const fields = { author: signer.publicKey, seq: firstSeq + i, prev, timestamp: item.timestamp, header: item.header, body: item.body };
    // after the first entry, author, seq and prev hold by construction (prev is the hash just made)
    if (i === 0) checkFields(fields);
    else checkItem(item);
    const raw = arena.subarray(off, off + contentLengths[i]! + 4 + pathBytes[i]! + SIGNATURE_BYTES);
    off += raw.length;
    writeContent(arena, arenaView, raw.byteOffset, ENTRY_VERSION, fields, layouts[i]!);
    const hash = sha256(raw.subarray(0, contentLengths[i]!));
    raws.push(raw);
    hashes.push(hash);
    prev = hash;
  }
  const levels = treeLevels(hashes);
  const root = writeAuditPaths(levels, raws, contentLengths.map((c) => c + 4));
  const signature = signer.sign(batchSigningMessage(firstSeq, n, root));
  const entries = raws.map((raw, i): LogEntry => {
    const c = contentLengths[i]!;
    raw[c] = n >>> 8;
    raw[c + 1] = n & 0xff;
    raw[c + 2] = i >>> 8;
    raw[c + 3] = i & 0xff;
    raw.set(signature, c + 4 + pathBytes[i]!);
    return {
      version: ENTRY_VERSION,
      author: raw.subarray(1, 33),
      seq: firstSeq + i,
      prev: raw.subarray(41, 73),
      timestamp: items[i]!.timestamp,
      header: items[i]!.header,
      body: raw.subarray(ENTRY_PREFIX_BYTES + layouts[i]!.size + 4, c),
      signature: raw.subarray(raw.length - SIGNATURE_BYTES),
      raw,
      hash: hashes[i]!,
      signedDigest: hashes[i]!,
      batch: { firstSeq, size: n, index: i, path: raw.subarray(c + 4, c + 4 + pathBytes[i]!) },
    };
  });
  return { entries, levels };
}

/**
 * Builds, signs and hashes one entry (a batch of one). The signer's public key is the author.
 * @example
 * const e = createEntry(identity, { seq: 1, prev: ZERO_HASH, timestamp: Date.now(), header: { type: 'post' }, body })
 */
export function createEntry(signer: Signer, fields: Omit<UnsignedEntry, 'author'>): LogEntry {
  return createBatch(signer, { firstSeq: fields.seq, prev: fields.prev, items: [fields] })[0]!;
}

/** A legacy v1 entry, signed on its own: only for tests and vectors that show old logs still read. */
export function createLegacyEntry(signer: Signer, fields: Omit<UnsignedEntry, 'author'>): LogEntry {
  const { buf, contentLength, headerLength } = encodeContent({ ...fields, author: signer.publicKey }, LEGACY_ENTRY_VERSION, SIGNATURE_BYTES);
  const { prefix: signedDigest, finish } = sha256Resumable(buf, contentLength);
  const signature = signer.sign(signingMessage(signedDigest));
  buf.set(signature, contentLength);
  return {
    version: LEGACY_ENTRY_VERSION,
    author: buf.subarray(1, 33),
    seq: fields.seq,
    prev: buf.subarray(41, 73),
    timestamp: fields.timestamp,
    header: fields.header,
    body: buf.subarray(ENTRY_PREFIX_BYTES + headerLength + 4, contentLength),
    signature: buf.subarray(contentLength),
    raw: buf,
    hash: finish(signature),
    signedDigest,
    batch: null,
  };
}

/** The exact message a v1 entry signature covers, given the SHA-256 of its content. */
export function signingMessage(signedDigest: Uint8Array): Uint8Array {
  return concatBytes(ENTRY_SIGNING_CONTEXT, signedDigest);
}

function isZero(b: Uint8Array, from = 0, to = b.length): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Decodes an entry (v2 or legacy v1) and checks its structure (not its signature: see `verifyEntry`).
 * Throws DeaddropError PROTOCOL on any malformed, non-canonical or unknown-version input.
 */
export function decodeEntry(raw: Uint8Array): LogEntry {
  if (!(raw instanceof Uint8Array)) throw new TypeError('raw: expected Uint8Array');
  if (raw.length < ENTRY_PREFIX_BYTES + 1 + 4 + SIGNATURE_BYTES) throw bad('too short');
  if (raw.length > MAX_ENTRY_BYTES) throw bad('too long');
  const version = raw[0]!;
  if (version !== ENTRY_VERSION && version !== LEGACY_ENTRY_VERSION) throw bad(`unknown version ${version}`);
  const seq = readU64At(raw, 33, 'seq');
  if (seq < 1) throw bad('seq 0');
  if ((seq === 1) !== isZero(raw, 41, 73)) throw bad('prev must be zero exactly when seq = 1');
  const timestamp = readU64At(raw, 73, 'timestamp');
  const headerLength = u16At(raw, 81);
  if (headerLength < 1 || headerLength > MAX_HEADER_BYTES) throw bad('header length');
  const bodyLenOff = ENTRY_PREFIX_BYTES + headerLength;
  if (bodyLenOff + 4 + SIGNATURE_BYTES > raw.length) throw bad('truncated');
  const bodyLength = u16At(raw, bodyLenOff) * 0x1_0000 + u16At(raw, bodyLenOff + 2);
  if (bodyLength > MAX_BODY_BYTES) throw bad('body too long');
  const contentLength = bodyLenOff + 4 + bodyLength;
  // the exact error comes from decodeHeader; the object is built on first use (replication and
  // verification never read it)
  if (!isValidHeader(raw, ENTRY_PREFIX_BYTES, bodyLenOff)) throw decodeHeaderError(raw.subarray(ENTRY_PREFIX_BYTES, bodyLenOff));
  const signature = raw.subarray(raw.length - SIGNATURE_BYTES);
  if (version === LEGACY_ENTRY_VERSION) {
    if (contentLength + SIGNATURE_BYTES !== raw.length) throw bad('length mismatch');
    const digests = sha256Split(raw, contentLength);
    return new DecodedEntry(version, seq, timestamp, bodyLenOff, contentLength, signature, raw, digests.whole, digests.prefix, null);
  }
  if (contentLength + 4 + SIGNATURE_BYTES > raw.length) throw bad('truncated seal');
  const size = u16At(raw, contentLength);
  const index = u16At(raw, contentLength + 2);
  if (size < 1 || size > MAX_BATCH_ENTRIES || index >= size) throw bad('batch size or index');
  const pathBytes = pathLength(index, size) * HASH_BYTES;
  if (contentLength + 4 + pathBytes + SIGNATURE_BYTES !== raw.length) throw bad('length mismatch');
  const firstSeq = seq - index;
  if (firstSeq < 1 || firstSeq + size - 1 > MAX_SEQ) throw bad('batch outside 1 .. 2^53-1');
  const hash = sha256(raw.subarray(0, contentLength));
  const path = raw.subarray(contentLength + 4, contentLength + 4 + pathBytes);
  return new DecodedEntry(version, seq, timestamp, bodyLenOff, contentLength, signature, raw, hash, hash, { firstSeq, size, index, path });
}

/**
 * A decoded entry. What verification does not read (header object, body, prev) is made on first use:
 * replication and verification never read the header, and a typed-array view costs about as much as
 * the rest of an entry's structure checks. A class, not an object literal with getters: V8 defines a
 * literal's accessors through a runtime call, about 400 ns per entry.
 */
class DecodedEntry implements LogEntry {
  readonly author: Uint8Array;
  #header: EntryHeader | null = null;
  #body: Uint8Array | null = null;
  #prev: Uint8Array | null = null;
  readonly #headerEnd: number;
  readonly #contentLength: number;

  constructor(
    readonly version: number,
    readonly seq: number,
    readonly timestamp: number,
    headerEnd: number,
    contentLength: number,
    readonly signature: Uint8Array,
    readonly raw: Uint8Array,
    readonly hash: Uint8Array,
    readonly signedDigest: Uint8Array,
    readonly batch: BatchSeal | null,
  ) {
    this.author = raw.subarray(1, 33);
    this.#headerEnd = headerEnd;
    this.#contentLength = contentLength;
  }

  get header(): EntryHeader {
    return (this.#header ??= decodeHeader(this.raw.subarray(ENTRY_PREFIX_BYTES, this.#headerEnd)));
  }

  get body(): Uint8Array {
    return (this.#body ??= this.raw.subarray(this.#headerEnd + 4, this.#contentLength));
  }

  get prev(): Uint8Array {
    return (this.#prev ??= this.raw.subarray(41, 73));
  }
}

function u16At(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

/** A u64 no larger than 2^53-1, without a DataView (one fewer allocation per decoded entry). */
function readU64At(b: Uint8Array, off: number, what: string): number {
  const hi = ((b[off]! << 24) >>> 0) + (b[off + 1]! << 16) + (b[off + 2]! << 8) + b[off + 3]!;
  if (hi > 0x1f_ffff) throw bad(`${what} above 2^53-1`);
  return hi * 0x1_0000_0000 + ((b[off + 4]! << 24) >>> 0) + (b[off + 5]! << 16) + (b[off + 6]! << 8) + b[off + 7]!;
}

/**
 * The entry's leaf in its feed's Merkle tree (docs/protocol/node.md §4): a v2 entry's hash as it is
 * (its content starts with 0x02 and is longer than 65 bytes, so it cannot pass for a node: one hash
 * less per entry), a legacy v1 entry's SHA-256(0x00 || hash) as stored trees always had it.
 */
export function feedLeaf(entry: LogEntry): Uint8Array {
  return entry.batch ? entry.hash : leafHash(entry.hash);
}

/** The content of an encoded entry (everything before the seal or signature). */
export function signedPart(entry: LogEntry): Uint8Array {
  const trailer = entry.batch ? 4 + entry.batch.path.length + SIGNATURE_BYTES : SIGNATURE_BYTES;
  return entry.raw.subarray(0, entry.raw.length - trailer);
}

/** The root of the batch tree an entry's audit path leads to (v2), or null. */
export function batchRootOf(entry: LogEntry): Uint8Array | null {
  const b = entry.batch;
  return b ? rootFromPath(entry.hash, b.index, b.size, b.path) : null;
}

/**
 * Checks one entry on its own: v2, its audit path up to the batch root and the batch signature;
 * v1, its own signature. Returns false, never throws. For many entries use `verifyEntries`.
 */
export function verifyEntry(entry: LogEntry): boolean {
  const b = entry.batch;
  if (!b) return ed25519Verify(entry.signature, signingMessage(entry.signedDigest), entry.author);
  const root = batchRootOf(entry);
  return root !== null && ed25519Verify(entry.signature, batchSigningMessage(b.firstSeq, b.size, root), entry.author);
}

/** Decodes and verifies in one step; throws DeaddropError PROTOCOL when either fails. */
export function openEntry(raw: Uint8Array): LogEntry {
  const e = decodeEntry(raw);
  if (!verifyEntry(e)) throw bad('bad signature');
  return e;
}

/** True when both entries carry the same signed content (signatures and seals ignored). */
export function sameSignedContent(a: LogEntry, b: LogEntry): boolean {
  return a.version === b.version && equalBytes(a.signedDigest, b.signedDigest);
}
