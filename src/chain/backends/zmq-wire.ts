/**
 * Bitcoin Core's ZMQ wire format as pure functions: message frames, `sequence` bodies, counter
 * and mempool-sequence gaps, and endpoints (from config or `getzmqnotifications`). The feed that
 * uses them is `zmq.ts`.
 *
 * Wire format (Core doc/zmq.md and src/zmq/zmqpublishnotifier.cpp): every message has three
 * frames, `[topic, body, 4-byte LE counter]`; the counter counts messages per topic and
 * publisher, so a skipped value means lost messages. A `sequence` body is a 32-byte hash in RPC
 * display order, a label, and for A (mempool add) and R (mempool removal) an 8-byte LE mempool
 * sequence; C and D are block connected and disconnected. A `rawtx` body is a serialized
 * transaction: one per mempool entry, and again for every transaction of a connected block.
 */
import { readU32LE } from '../bytes.js';
import { toHex } from '../../util/bytes.js';

/** The topics this feed subscribes to. */
export type ZmqTopic = 'sequence' | 'rawtx';
export const ZMQ_TOPICS: readonly ZmqTopic[] = ['sequence', 'rawtx'];

/** One message, as published by Core. */
export interface ZmqMessage {
  readonly topic: ZmqTopic;
  readonly body: Uint8Array;
  /** Per-topic message counter (wraps at 2^32). */
  readonly counter: number;
}

/** A `sequence` topic body. Hashes are lower-case hex in RPC display order. */
export type SequenceEvent =
  | { readonly label: 'C' | 'D'; readonly hash: string }
  | { readonly label: 'A' | 'R'; readonly hash: string; readonly mempoolSeq: bigint };

/** Where Core publishes. When `rawTx` is omitted, rawtx is read from the `sequence` endpoint, if Core sends it there. */
export interface ZmqEndpoints {
  readonly sequence: string;
  readonly rawTx?: string;
}

/** Where Core publishes. When `rawTx` is omitted, rawtx is read from the `sequence` endpoint, if Core sends it there. */
export interface ZmqEndpoints {
  readonly sequence: string;
  readonly rawTx?: string;
}


function asciiEquals(bytes: Uint8Array, text: string): boolean {
  if (bytes.length !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Reads `[topic, body, counter]`; undefined for anything else (wrong frame count, unknown topic, bad counter). */
export function parseZmqMessage(frames: readonly Uint8Array[]): ZmqMessage | undefined {
  if (!Array.isArray(frames) || frames.length !== 3) return undefined;
  const [t, body, c] = frames;
  if (!(t instanceof Uint8Array) || !(body instanceof Uint8Array) || !(c instanceof Uint8Array) || c.length !== 4) return undefined;
  const topic = ZMQ_TOPICS.find((name) => asciiEquals(t, name));
  return topic === undefined ? undefined : { topic, body, counter: readU32LE(c, 0) };
}

/** Reads a `sequence` body; undefined when its length or label is wrong. */
export function parseSequenceBody(body: Uint8Array): SequenceEvent | undefined {
  if (!(body instanceof Uint8Array) || (body.length !== 33 && body.length !== 41)) return undefined;
  const label = String.fromCharCode(body[32]!);
  const hash = toHex(body.subarray(0, 32));
  if ((label === 'C' || label === 'D') && body.length === 33) return { label, hash };
  if ((label === 'A' || label === 'R') && body.length === 41) {
    return { label, hash, mempoolSeq: new DataView(body.buffer, body.byteOffset + 33, 8).getBigUint64(0, true) };
  }
  return undefined;
}

/** True when `got` is the counter value expected after `last` (or there is no `last` yet). */
export function counterFollows(last: number | undefined, got: number): boolean {
  return last === undefined || got === ((last + 1) >>> 0);
}

/**
 * True when mempool sequence `got` can follow `last` without a lost A/R message: the next
 * number, or any later one after a block (block-inclusion removals are counted silently).
 */
export function mempoolSeqFollows(last: bigint | undefined, got: bigint, blockSince: boolean): boolean {
  if (last === undefined || got === last + 1n) return true;
  return got > last && blockSince;
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '*', '[::]', '::']);

/** `tcp://host:port` or `ipc://path`, normalised; undefined when it is neither. */
export function parseZmqEndpoint(value: string): string | undefined {
  if (typeof value !== 'string' || value.length > 1_000) return undefined;
  if (/^ipc:\/\/\S+$/.test(value)) return value;
  const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^\s/:[\]]+):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65_535 ? `tcp://${m[1]}:${port}` : undefined;
}

/** An endpoint Core reports, with a wildcard bind host (`0.0.0.0`, `*`, `[::]`) replaced by the RPC host. */
function reachable(address: string, rpcHost: string): string | undefined {
  const ep = parseZmqEndpoint(address);
  if (ep === undefined || !ep.startsWith('tcp://')) return ep;
  const colon = ep.lastIndexOf(':');
  const host = ep.slice('tcp://'.length, colon);
  if (!WILDCARD_HOSTS.has(host)) return ep;
  const bare = rpcHost.replace(/^\[(.*)\]$/, '$1');
  return `tcp://${bare.includes(':') ? `[${bare}]` : bare}${ep.slice(colon)}`;
}

/**
 * The endpoints to use from a `getzmqnotifications` answer (`[{ type, address, hwm }]`): the
 * first `pubsequence` and `pubrawtx`. Undefined when there is no usable `pubsequence`.
 */
export function endpointsFromNotifications(result: unknown, rpcHost: string): ZmqEndpoints | undefined {
  if (!Array.isArray(result)) return undefined;
  let sequence: string | undefined;
  let rawTx: string | undefined;
  for (const n of result) {
    if (typeof n !== 'object' || n === null) continue;
    const { type, address } = n as Record<string, unknown>;
    if (typeof address !== 'string') continue;
    if (type === 'pubsequence') sequence ??= reachable(address, rpcHost);
    if (type === 'pubrawtx') rawTx ??= reachable(address, rpcHost);
  }
  if (sequence === undefined) return undefined;
  return rawTx === undefined ? { sequence } : { sequence, rawTx };
}
