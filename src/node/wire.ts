/**
 * Messages of the node protocol, one per frame (frame type = message type). Pure codecs: decoders
 * throw DeaddropError PROTOCOL on anything malformed, and unknown types are refused by the caller.
 *
 * | type | name            | payload                                                         |
 * | ---- | --------------- | --------------------------------------------------------------- |
 * | 0x01 | INVITE          | tokenId(16) mac(32) endpoints                                   |
 * | 0x02 | INVITE_OK       | pairwiseKey(32) signature(64)                                   |
 * | 0x03 | REFUSED         | code:u8                                                         |
 * | 0x10 | CLOCK           | count:u32, count × (feed(32) seq:u64 head(32))                  |
 * | 0x11 | ENTRIES         | count:u16, count × (len:u32 entry)                              |
 * | 0x12 | FORK_PROOF      | fork proof encoding (log/fork.ts)                               |
 * | 0x20 | WHEREABOUTS     | whereabouts bundle encoding (whereabouts.ts)                    |
 * | 0x21 | WHEREABOUTS_REQ | node(32)                                                        |
 *
 * endpoints = count:u8 (≤ 8), count × (len:u8 UTF-8 URL).
 */
import { DeaddropError } from '../util/errors.js';

export const MSG = {
  INVITE: 0x01,
  INVITE_OK: 0x02,
  REFUSED: 0x03,
  CLOCK: 0x10,
  ENTRIES: 0x11,
  FORK_PROOF: 0x12,
  WHEREABOUTS: 0x20,
  WHEREABOUTS_REQ: 0x21,
} as const;

export const MAX_ENDPOINTS = 8;
export const MAX_CLOCK_FEEDS = 10_000;
export const TOKEN_ID_BYTES = 16;

/** Why a peer refused us. */
export const REFUSAL = { INVITE_INVALID: 1, NOT_A_CONTACT: 2, SHUTTING_DOWN: 3 } as const;

const dec = new TextDecoder('utf-8', { fatal: true });
const enc = new TextEncoder();

function bad(what: string): DeaddropError {
  return DeaddropError.protocol(`malformed ${what}`);
}

/** Sequential reader over a payload; every read is bounds-checked. */
export class Reader {
  #off = 0;
  readonly #view: DataView;
  readonly #buf: Uint8Array;
  readonly #what: string;

  constructor(
    input: Uint8Array,
    what: string,
  ) {
    this.#what = what;
    // a plain Uint8Array view, so that slice() copies even when the input is a Buffer
    this.#buf = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.#view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  }
  bytes(n: number): Uint8Array {
    if (this.#off + n > this.#buf.length) throw bad(this.#what);
    const out = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }
  u8(): number {
    return this.bytes(1)[0]!;
  }
  u16(): number {
    const v = this.#view.getUint16(this.#need(2));
    return v;
  }
  u32(): number {
    return this.#view.getUint32(this.#need(4));
  }
  u64(): number {
    const at = this.#need(8);
    const hi = this.#view.getUint32(at);
    if (hi > 0x1f_ffff) throw bad(this.#what);
    return hi * 2 ** 32 + this.#view.getUint32(at + 4);
  }
  end(): void {
    if (this.#off !== this.#buf.length) throw bad(this.#what);
  }
  #need(n: number): number {
    if (this.#off + n > this.#buf.length) throw bad(this.#what);
    const at = this.#off;
    this.#off += n;
    return at;
  }
}

function u64(view: DataView, off: number, n: number): void {
  view.setUint32(off, Math.floor(n / 2 ** 32));
  view.setUint32(off + 4, n >>> 0);
}

// --- endpoints --------------------------------------------------------------------------------

export function encodeEndpoints(endpoints: readonly string[]): Uint8Array {
  if (endpoints.length > MAX_ENDPOINTS) throw new RangeError(`at most ${MAX_ENDPOINTS} endpoints`);
  const parts: Uint8Array[] = [Uint8Array.of(endpoints.length)];
  for (const e of endpoints) {
    const b = enc.encode(e);
    if (b.length === 0 || b.length > 255) throw new RangeError('endpoint: 1..255 bytes');
    parts.push(Uint8Array.of(b.length), b);
  }
  return Buffer.concat(parts);
}

export function readEndpoints(r: Reader): string[] {
  const n = r.u8();
  if (n > MAX_ENDPOINTS) throw bad('endpoints');
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.u8();
    if (len === 0) throw bad('endpoints');
    try {
      out.push(dec.decode(r.bytes(len)));
    } catch (err) {
      if (err instanceof DeaddropError) throw err;
      throw bad('endpoints');
    }
  }
  return out;
}

// --- invites ----------------------------------------------------------------------------------

export interface InviteMsg {
  tokenId: Uint8Array;
  mac: Uint8Array;
  endpoints: string[];
}

export function encodeInvite(m: InviteMsg): Uint8Array {
  return Buffer.concat([m.tokenId, m.mac, encodeEndpoints(m.endpoints)]);
}

export function decodeInvite(p: Uint8Array): InviteMsg {
  const r = new Reader(p, 'INVITE');
  const m = { tokenId: r.bytes(TOKEN_ID_BYTES).slice(), mac: r.bytes(32).slice(), endpoints: readEndpoints(r) };
  r.end();
  return m;
}

export interface InviteOkMsg {
  pairwiseKey: Uint8Array;
  signature: Uint8Array;
}

export function encodeInviteOk(m: InviteOkMsg): Uint8Array {
  return Buffer.concat([m.pairwiseKey, m.signature]);
}

export function decodeInviteOk(p: Uint8Array): InviteOkMsg {
  const r = new Reader(p, 'INVITE_OK');
  const m = { pairwiseKey: r.bytes(32).slice(), signature: r.bytes(64).slice() };
  r.end();
  return m;
}

// --- replication ------------------------------------------------------------------------------

/** One feed in a vector clock: how far the sender has it, and the hash of that entry. */
export interface ClockEntry {
  feed: Uint8Array;
  seq: number;
  /** Hash of entry `seq`; zero when seq = 0. */
  head: Uint8Array;
}

export function encodeClock(entries: readonly ClockEntry[]): Uint8Array {
  if (entries.length > MAX_CLOCK_FEEDS) throw new RangeError('clock too large');
  const out = new Uint8Array(4 + entries.length * 72);
  const v = new DataView(out.buffer);
  v.setUint32(0, entries.length);
  entries.forEach((e, i) => {
    const o = 4 + i * 72;
    out.set(e.feed, o);
    u64(v, o + 32, e.seq);
    out.set(e.head, o + 40);
  });
  return out;
}

export function decodeClock(p: Uint8Array): ClockEntry[] {
  const r = new Reader(p, 'CLOCK');
  const n = r.u32();
  if (n > MAX_CLOCK_FEEDS || p.length !== 4 + n * 72) throw bad('CLOCK');
  const out: ClockEntry[] = [];
  for (let i = 0; i < n; i++) out.push({ feed: r.bytes(32).slice(), seq: r.u64(), head: r.bytes(32).slice() });
  return out;
}

export function encodeEntries(raws: readonly Uint8Array[]): Uint8Array {
  if (raws.length > 0xffff) throw new RangeError('too many entries in one frame');
  let size = 2;
  for (const r of raws) size += 4 + r.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint16(0, raws.length);
  let o = 2;
  for (const r of raws) {
    v.setUint32(o, r.length);
    out.set(r, o + 4);
    o += 4 + r.length;
  }
  return out;
}

export function decodeEntries(p: Uint8Array): Uint8Array[] {
  const r = new Reader(p, 'ENTRIES');
  const n = r.u16();
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(r.bytes(r.u32()));
  r.end();
  return out;
}

export function decodeNodeId(p: Uint8Array): Uint8Array {
  if (p.length !== 32) throw bad('node id');
  return p.slice();
}
