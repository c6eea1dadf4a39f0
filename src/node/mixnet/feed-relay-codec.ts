/**
 * Wire format of feed replication and whereabouts over the mixnet (docs/protocol/mixnet.md,
 * "Feeds and whereabouts over the mixnet"). Every message is the plaintext of one sealed body
 * (./message.ts `sealBody`), so it must fit {@link RELAY_PLAIN_BYTES}:
 *
 *   HAVE  = 0x10 | version=1 | wseq:u64 | CLOCK (../wire.ts: count:u32, count × (feed(32) seq:u64 head(32)))
 *   PART  = 0x11 | version=1 | msgId(8) | index:u16 | total:u16 | data (1 .. RELAY_PART_DATA bytes)
 *
 * PARTs carry one reassembled message, `type:u8 | flags:u8 | body`:
 *   type 1 ENTRIES     body = ENTRIES of ../wire.ts (count:u16, count × (len:u32 entry)); flag bit 0 = more
 *   type 2 WHEREABOUTS body = one signed whereabouts bundle (../whereabouts.ts)
 *
 * Pure functions. Decoders return null on anything malformed (unknown kind, version or type,
 * truncation, trailing bytes, bad bounds) and never throw: the input comes from the network.
 */
import { concatBytes } from '../../util/bytes.js';
import { decodeClock, decodeEntries, encodeClock, encodeEntries } from '../wire.js';
import type { ClockEntry } from '../wire.js';
import { BODY_BYTES } from './params.js';
import { MAX_ENTRY_BYTES } from '../log/codec.js';

export const RELAY_HAVE = 0x10;
export const RELAY_PART = 0x11;
export const RELAY_VERSION = 1;
/**
 * Bytes `sealBody` adds around its plaintext: e.pub(32) + u16 length + two XChaCha20-Poly1305
 * layers (24-byte nonce + 16-byte tag each) + the sender's key (32).
 */
export const SEAL_OVERHEAD = 32 + 2 + 40 + 32 + 40;
/** Largest plaintext of one packet body. */
export const RELAY_PLAIN_BYTES = BODY_BYTES - SEAL_OVERHEAD;
const HAVE_HEAD = 2 + 8;
const PART_HEAD = 2 + 8 + 2 + 2;
/** Feeds in one HAVE (one packet). */
export const MAX_HAVE_FEEDS = Math.floor((RELAY_PLAIN_BYTES - HAVE_HEAD - 4) / 72);
/** Message bytes carried by one PART. */
export const RELAY_PART_DATA = RELAY_PLAIN_BYTES - PART_HEAD;
/** Largest reassembled message: one entry of the largest size (header 4 KiB, body 1 MiB, v2 seal) with its framing. */
export const MAX_RELAY_MESSAGE = MAX_ENTRY_BYTES + 2 + 2 + 4;
/** Most PARTs of one message. */
export const MAX_PARTS = Math.ceil(MAX_RELAY_MESSAGE / RELAY_PART_DATA);

export const MSG_ENTRIES = 1;
export const MSG_WHEREABOUTS = 2;
const FLAG_MORE = 1;

export interface RelayHave {
  readonly kind: 'have';
  /** Highest whereabouts seq of the recipient that the sender holds (0 = none). */
  readonly wseq: number;
  readonly clock: ClockEntry[];
}

export interface RelayPart {
  readonly kind: 'part';
  readonly msgId: Uint8Array;
  readonly index: number;
  readonly total: number;
  readonly data: Uint8Array;
}

export type RelayMessage =
  | { readonly type: 'entries'; readonly raws: Uint8Array[]; readonly more: boolean }
  | { readonly type: 'whereabouts'; readonly bundle: Uint8Array };

function u64(v: DataView, o: number, n: number): void {
  v.setUint32(o, Math.floor(n / 2 ** 32));
  v.setUint32(o + 4, n >>> 0);
}

function readU64(v: DataView, o: number): number | null {
  const hi = v.getUint32(o);
  // above 2^53 - 1 is not a seq any of our structures can hold
  if (hi > 0x1fffff) return null;
  return hi * 2 ** 32 + v.getUint32(o + 4);
}

/** HAVE for up to {@link MAX_HAVE_FEEDS} feeds. */
export function encodeHave(wseq: number, clock: readonly ClockEntry[]): Uint8Array {
  if (clock.length > MAX_HAVE_FEEDS) throw new RangeError(`HAVE: at most ${MAX_HAVE_FEEDS} feeds`);
  if (!Number.isSafeInteger(wseq) || wseq < 0) throw new RangeError('HAVE: wseq must be a safe non-negative integer');
  const head = new Uint8Array(HAVE_HEAD);
  head[0] = RELAY_HAVE;
  head[1] = RELAY_VERSION;
  u64(new DataView(head.buffer), 2, wseq);
  return concatBytes(head, encodeClock(clock));
}

/** One PART of a message. */
export function encodePart(msgId: Uint8Array, index: number, total: number, data: Uint8Array): Uint8Array {
  if (msgId.length !== 8) throw new RangeError('PART: msgId must be 8 bytes');
  if (total < 1 || total > MAX_PARTS || index < 0 || index >= total) throw new RangeError('PART: bad index/total');
  if (data.length < 1 || data.length > RELAY_PART_DATA) throw new RangeError('PART: bad data length');
  const head = new Uint8Array(PART_HEAD);
  const v = new DataView(head.buffer);
  head[0] = RELAY_PART;
  head[1] = RELAY_VERSION;
  head.set(msgId, 2);
  v.setUint16(10, index);
  v.setUint16(12, total);
  return concatBytes(head, data);
}

/** Decodes a HAVE or a PART; null for anything else or anything malformed. Never throws. */
export function decodeRelay(plain: Uint8Array): RelayHave | RelayPart | null {
  try {
    if (plain.length < 2 || plain[1] !== RELAY_VERSION) return null;
    const v = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
    if (plain[0] === RELAY_HAVE) {
      if (plain.length < HAVE_HEAD + 4 || plain.length > RELAY_PLAIN_BYTES) return null;
      const wseq = readU64(v, 2);
      if (wseq === null) return null;
      const clock = decodeClock(plain.subarray(HAVE_HEAD));
      if (clock.length > MAX_HAVE_FEEDS || clock.some((c) => !Number.isSafeInteger(c.seq))) return null;
      return { kind: 'have', wseq, clock };
    }
    if (plain[0] === RELAY_PART) {
      if (plain.length <= PART_HEAD || plain.length > RELAY_PLAIN_BYTES) return null;
      const index = v.getUint16(10);
      const total = v.getUint16(12);
      if (total < 1 || total > MAX_PARTS || index >= total) return null;
      return { kind: 'part', msgId: plain.slice(2, 10), index, total, data: plain.slice(PART_HEAD) };
    }
    return null;
  } catch {
    return null;
  }
}

/** `type | flags | body` of an ENTRIES message. */
export function encodeEntriesMessage(raws: readonly Uint8Array[], more: boolean): Uint8Array {
  return concatBytes(Uint8Array.of(MSG_ENTRIES, more ? FLAG_MORE : 0), encodeEntries(raws));
}

/** `type | flags | bundle` of a WHEREABOUTS message. */
export function encodeWhereaboutsMessage(bundle: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(MSG_WHEREABOUTS, 0), bundle);
}

/** Decodes a reassembled message; null when malformed. Never throws. */
export function decodeRelayMessage(m: Uint8Array): RelayMessage | null {
  if (m.length < 3 || m.length > MAX_RELAY_MESSAGE) return null;
  const flags = m[1]!;
  try {
    if (m[0] === MSG_ENTRIES && (flags & ~FLAG_MORE) === 0) {
      const raws = decodeEntries(m.subarray(2));
      return raws.length === 0 ? null : { type: 'entries', raws: raws.map((r) => r.slice()), more: (flags & FLAG_MORE) !== 0 };
    }
    if (m[0] === MSG_WHEREABOUTS && flags === 0) return { type: 'whereabouts', bundle: m.slice(2) };
  } catch {
    return null;
  }
  return null;
}

/** Splits a message into PART plaintexts of at most {@link RELAY_PLAIN_BYTES}. */
export function splitMessage(msgId: Uint8Array, message: Uint8Array): Uint8Array[] {
  const total = Math.ceil(message.length / RELAY_PART_DATA);
  if (total < 1 || total > MAX_PARTS) throw new RangeError('relay message too large');
  const out: Uint8Array[] = [];
  for (let i = 0; i < total; i++) out.push(encodePart(msgId, i, total, message.subarray(i * RELAY_PART_DATA, (i + 1) * RELAY_PART_DATA)));
  return out;
}

/** Encoded size of an ENTRIES message holding `raws`. */
export function entriesMessageBytes(raws: readonly Uint8Array[]): number {
  let n = 2 + 2;
  for (const r of raws) n += 4 + r.length;
  return n;
}

/**
 * Groups entries into ENTRIES messages: small entries share a message that fits one PART (so one
 * lost packet loses only its own entries); an entry too large for one PART gets a message of its own.
 */
export function groupEntries(raws: readonly Uint8Array[]): Uint8Array[][] {
  const groups: Uint8Array[][] = [];
  let cur: Uint8Array[] = [];
  for (const r of raws) {
    if (cur.length > 0 && entriesMessageBytes([...cur, r]) > RELAY_PART_DATA) {
      groups.push(cur);
      cur = [];
    }
    cur.push(r);
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}
