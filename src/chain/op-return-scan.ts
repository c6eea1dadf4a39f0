/**
 * The OP_RETURN candidate scan: which outputs could hold a dead drop, and which transactions of
 * a raw block have one, without parsing the whole block.
 *
 * Design: `scanBlockForCandidates` skips scripts and witness items by length and only looks at
 * the first two bytes of output scripts whose length could hold a data push in range; the few
 * transactions that pass are then fully parsed (`block.ts`) and checked exactly. Malformed input
 * throws RangeError, exactly as the parser does, since both share its CompactSize readers.
 */
import { readU32LE } from './bytes.js';
import {
  csLen,
  MIN_INPUT_SIZE,
  MIN_OUTPUT_SIZE,
  parseTxAt,
  readCS,
  readPrefix,
  readTxCount,
  skipWitnesses,
  tooMany,
  trailing,
  truncated,
  view,
  type Tx,
  type TxIn,
} from './block.js';

const OP_RETURN = 0x6a;
const OP_PUSHDATA1 = 0x4c;
const OP_PUSHDATA2 = 0x4d;
const OP_PUSHDATA4 = 0x4e;
/** Runestones are `OP_RETURN OP_13 <data pushes>` (ord's runes specification). */
const OP_13 = 0x5d;

/**
 * Data of an OP_RETURN script that is exactly `OP_RETURN <one data push>` (direct push or
 * OP_PUSHDATA1/2/4, minimal or not), as a view; undefined for anything else (other scripts,
 * bare OP_RETURN, several pushes, Runestones' `OP_RETURN OP_13 ...`).
 */
export function opReturnData(script: Uint8Array): Uint8Array | undefined {
  const range = pushRange(script, 0, script.length);
  return range < 0 ? undefined : view(script, range, script.length);
}

/** Offset where the single push's data starts, or -1 (see {@link opReturnData}). */
function pushRange(src: Uint8Array, off: number, len: number): number {
  if (len < 2 || src[off] !== OP_RETURN) return -1;
  const op = src[off + 1]!;
  let dataStart = off + 2;
  let dataLen = op;
  if (op === 0 || op > OP_PUSHDATA4) return -1;
  if (op === OP_PUSHDATA1) {
    dataStart = off + 3;
    dataLen = len >= 3 ? src[off + 2]! : -1;
  } else if (op === OP_PUSHDATA2) {
    dataStart = off + 4;
    dataLen = len >= 4 ? src[off + 2]! | (src[off + 3]! << 8) : -1;
  } else if (op === OP_PUSHDATA4) {
    dataStart = off + 6;
    dataLen = len >= 6 ? readU32LE(src, off + 2) : -1;
  }
  return dataLen >= 0 && dataStart + dataLen === off + len ? dataStart : -1;
}

/** True for a Runestone script, `OP_RETURN OP_13 ...` (ord's runes specification). */
export function isRunestone(script: Uint8Array): boolean {
  return script.length >= 2 && script[0] === OP_RETURN && script[1] === OP_13;
}

/** A protocol whose OP_RETURN outputs the scan skips, and how it is recognised. */
export interface KnownDataProtocol {
  readonly name: string;
  /** First bytes of the pushed data. */
  readonly prefix: Uint8Array;
  readonly reference: string;
}

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * Data prefixes of other protocols' OP_RETURN outputs that the candidate scan skips. Only
 * 4-byte magics are listed: a random-looking payload starts with one of them with probability
 * 4 * 2^-32, and a dead-drop encoder must still refuse (re-randomize) payloads that do.
 * Runestones need no prefix: `OP_RETURN OP_13` is not a single push and never matches.
 */
export const KNOWN_DATA_PROTOCOLS: readonly KnownDataProtocol[] = Object.freeze([
  { name: 'omni', prefix: ascii('omni'), reference: 'Omni Layer class C: data starts with "omni" (6f6d6e69), OmniLayer/spec' },
  { name: 'babylon', prefix: ascii('bbn1'), reference: 'Babylon staking v0 OP_RETURN: 71 bytes starting with tag "bbn1" (62626e31), babylonlabs-io/networks bbn-1 global params' },
  { name: 'coredao', prefix: ascii('SAT+'), reference: 'CoreDAO self-custodial BTC staking: "SAT+" (5341542b) identifier, docs.coredao.org btc-staking design' },
  { name: 'witness-commitment', prefix: Uint8Array.of(0xaa, 0x21, 0xa9, 0xed), reference: 'BIP141 coinbase witness commitment header aa21a9ed' },
]);

/** The known protocol whose prefix `data` starts with, if any. */
export function knownDataProtocol(data: Uint8Array, protocols: readonly KnownDataProtocol[] = KNOWN_DATA_PROTOCOLS): KnownDataProtocol | undefined {
  for (const p of protocols) if (startsWith(data, p.prefix)) return p;
  return undefined;
}

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
}

/** Extra filter on a data output that passed the length and protocol checks. */
export type CandidatePredicate = (data: Uint8Array, tx: Tx, vout: number) => boolean;

export interface ScanOptions {
  /** Smallest pushed data length that counts (bytes, >= 1). Default 1. */
  readonly minDataLength?: number;
  /** Largest pushed data length that counts. Default 80 (the limit every relay policy accepts). */
  readonly maxDataLength?: number;
  /** Protocols to skip. Default {@link KNOWN_DATA_PROTOCOLS}; pass [] to keep everything. */
  readonly skipProtocols?: readonly KnownDataProtocol[];
  readonly predicate?: CandidatePredicate;
}

/** One OP_RETURN output of a candidate: its index and pushed data (a view). */
export interface CandidateOutput {
  readonly vout: number;
  readonly data: Uint8Array;
}

/** A transaction that may carry a dead drop. */
export interface Candidate {
  /** Position in the block. */
  readonly index: number;
  readonly tx: Tx;
  /** Matching data outputs, in output order (at least one). */
  readonly outputs: readonly CandidateOutput[];
  /** The tx's inputs, for prevout lookup (same as `tx.inputs`). */
  readonly inputs: readonly TxIn[];
}

interface ScanConfig {
  readonly min: number;
  readonly max: number;
  readonly skip: readonly KnownDataProtocol[];
  readonly predicate: CandidatePredicate | undefined;
}

function scanConfig(options: ScanOptions | CandidatePredicate | undefined): ScanConfig {
  const o: ScanOptions = typeof options === 'function' ? { predicate: options } : (options ?? {});
  const min = o.minDataLength ?? 1;
  const max = o.maxDataLength ?? 80;
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 1 || max < min) {
    throw new RangeError(`scan: need integers 1 <= minDataLength <= maxDataLength, got ${min} and ${max}`);
  }
  return { min, max, skip: o.skipProtocols ?? KNOWN_DATA_PROTOCOLS, predicate: o.predicate };
}

/**
 * The OP_RETURN outputs of `tx` that a dead drop could be in: a single data push whose length
 * is in range, not another known protocol, accepted by the predicate. Coinbases have none.
 */
export function candidateOutputs(tx: Tx, options?: ScanOptions | CandidatePredicate): CandidateOutput[] {
  return matchOutputs(tx, scanConfig(options));
}

function matchOutputs(tx: Tx, cfg: ScanConfig): CandidateOutput[] {
  const found: CandidateOutput[] = [];
  if (tx.isCoinbase) return found;
  const src = tx.source;
  for (let vout = 0; vout < tx.outputs.length; vout++) {
    const out = tx.outputs[vout]!;
    const start = pushRange(src, out.scriptOffset, out.scriptLength);
    if (start < 0) continue;
    const data = view(src, start, out.scriptOffset + out.scriptLength);
    if (data.length < cfg.min || data.length > cfg.max) continue;
    if (knownDataProtocol(data, cfg.skip) !== undefined) continue;
    if (cfg.predicate !== undefined && !cfg.predicate(data, tx, vout)) continue;
    found.push({ vout, data });
  }
  return found;
}

/**
 * Walks one tx touching only lengths, and the first two bytes of output scripts whose length
 * fits a data push in [minScript, maxScript]. Returns the end offset; `flag.hit` tells whether
 * an output looked like `OP_RETURN <push>`.
 */
function walkTx(src: Uint8Array, start: number, end: number, minScript: number, maxScript: number, flag: { hit: boolean }): number {
  const prefix = readPrefix(src, start, end);
  let pos = prefix < 0 ? ~prefix : prefix;
  const nIn = readCS(src, pos, end, 'input count');
  pos += csLen(nIn);
  if (nIn > (end - pos) / MIN_INPUT_SIZE) throw tooMany('input count', nIn, MIN_INPUT_SIZE, pos, end);
  for (let i = 0; i < nIn; i++) {
    pos += 36;
    const len = readCS(src, pos, end, 'scriptSig length');
    pos += csLen(len);
    if (len + 4 > end - pos) throw truncated('scriptSig and sequence', len + 4, pos, end);
    pos += len + 4;
  }
  const nOut = readCS(src, pos, end, 'output count');
  pos += csLen(nOut);
  if (nOut > (end - pos) / MIN_OUTPUT_SIZE) throw tooMany('output count', nOut, MIN_OUTPUT_SIZE, pos, end);
  for (let i = 0; i < nOut; i++) {
    pos += 8;
    const len = readCS(src, pos, end, 'output script length');
    pos += csLen(len);
    if (len > end - pos) throw truncated('output script', len, pos, end);
    if (len >= minScript && len <= maxScript && src[pos] === OP_RETURN) {
      const op = src[pos + 1]!;
      if (op !== 0 && op <= OP_PUSHDATA4) flag.hit = true;
    }
    pos += len;
  }
  if (prefix < 0) pos = skipWitnesses(src, pos, end, nIn, start);
  if (end - pos < 4) throw truncated('locktime', 4, pos, end);
  return pos + 4;
}

/**
 * Finds the transactions of a raw block that may carry a dead drop: those with an
 * `OP_RETURN <single push>` output whose data length is in range and whose data does not
 * start with a known protocol's magic (see {@link KNOWN_DATA_PROTOCOLS}; Runestones never
 * match), optionally filtered by a predicate. The coinbase is never a candidate (it has no
 * real inputs, so BIP352 cannot address it). Only candidates are fully parsed.
 *
 * The whole block is validated structurally first, so a malformed block throws RangeError
 * before anything is returned: callers scanning untrusted blocks catch and skip.
 * @example
 * for (const c of scanBlockForCandidates(raw, { minDataLength: 33, maxDataLength: 80 })) {
 *   lookUpPrevouts(c.inputs); tryDecrypt(c.outputs[0].data);
 * }
 */
export function scanBlockForCandidates(raw: Uint8Array, options?: ScanOptions | CandidatePredicate): Candidate[] {
  const cfg = scanConfig(options);
  const [n, first] = readTxCount(raw);
  const end = raw.length;
  // Script lengths that can hold one push of min..max bytes: 2 + min (direct) .. 6 + max (PUSHDATA4).
  const minScript = cfg.min + 2;
  const maxScript = cfg.max + 6;
  const flag = { hit: false };
  const hits: number[] = [];
  let pos = first;
  for (let i = 0; i < n; i++) {
    flag.hit = false;
    const next = walkTx(raw, pos, end, minScript, maxScript, flag);
    if (flag.hit) hits.push(i, pos);
    pos = next;
  }
  if (pos !== end) throw trailing(raw, pos);
  const found: Candidate[] = [];
  for (let h = 0; h < hits.length; h += 2) {
    const tx = parseTxAt(raw, hits[h + 1]!, end);
    const outputs = matchOutputs(tx, cfg);
    if (outputs.length > 0) found.push({ index: hits[h]!, tx, outputs, inputs: tx.inputs });
  }
  return found;
}
