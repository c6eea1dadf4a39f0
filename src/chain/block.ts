/**
 * Zero-copy parser for raw Bitcoin blocks and transactions, and the dead-drop candidate scan.
 *
 * Design:
 * - Parsing walks the serialization once with plain index arithmetic over the caller's
 *   Uint8Array and records offsets. `TxIn`/`TxOut` hold offsets only; scripts, prevout txids
 *   and witness items are handed out as views on access, so nothing is copied and nothing is
 *   allocated for fields nobody reads. Views share memory with the input: copy them
 *   (`slice()`) to keep them past the life of the block buffer, and do not reuse that buffer
 *   while parsed objects (or their cached txids-to-be) are still in use.
 * - txid/wtxid are computed lazily and cached: the txid hashes the three non-witness ranges
 *   (version, inputs+outputs, locktime) of a segwit tx in place, without reserializing.
 * - Deserialization follows Bitcoin Core (`UnserializeTransaction`, `ReadCompactSize`):
 *   non-canonical CompactSize, an unknown flag byte, a witness flag with no witness data
 *   and trailing bytes are rejected. Every malformed input throws RangeError; counts are
 *   checked against the bytes left (an input needs at least 41 bytes, an output 9, a tx 10)
 *   before any loop runs, so a hostile count can neither hang the parser nor make it allocate.
 * - `scanBlockForCandidates` skips scripts and witness items by length and only looks at the
 *   first two bytes of output scripts whose length could hold a data push in range; the few
 *   transactions that pass are then fully parsed and checked exactly.
 */
import { hashToHex, readI32LE, readU32LE, readU64LE, sha256d, sha256dParts } from './bytes.js';

/** Size of a serialized block header. */
export const HEADER_SIZE = 80;
/** Smallest serialization Core can read: version, empty vin, empty vout, locktime. */
const MIN_TX_SIZE = 10;
/** prevout (36) + empty scriptSig length (1) + sequence (4). */
const MIN_INPUT_SIZE = 41;
/** value (8) + empty script length (1). */
const MIN_OUTPUT_SIZE = 9;

const OP_RETURN = 0x6a;
const OP_PUSHDATA1 = 0x4c;
const OP_PUSHDATA2 = 0x4d;
const OP_PUSHDATA4 = 0x4e;
/** Runestones are `OP_RETURN OP_13 <data pushes>` (ord's runes specification). */
const OP_13 = 0x5d;

// ---------------------------------------------------------------------------------------------
// Errors and CompactSize

function truncated(what: string, need: number, pos: number, end: number): RangeError {
  return new RangeError(`${what}: need ${need} bytes at offset ${pos}, only ${Math.max(0, end - pos)} left`);
}

function tooMany(what: string, count: number, minEach: number, pos: number, end: number): RangeError {
  return new RangeError(
    `${what}: count ${count} at offset ${pos} cannot fit in the ${Math.max(0, end - pos)} bytes left (${minEach} bytes each at least)`,
  );
}

/** Reads a CompactSize whose first byte is 0xfd..0xff. Rejects non-canonical and absurd values. */
function readLongCompactSize(src: Uint8Array, pos: number, end: number, what: string): number {
  const tag = src[pos]!;
  const size = tag === 0xfd ? 3 : tag === 0xfe ? 5 : 9;
  if (end - pos < size) throw truncated(`${what} (CompactSize)`, size, pos, end);
  if (tag === 0xff) {
    // Any 9-byte value either needs more than 32 bits (more than any block holds) or is non-canonical.
    throw new RangeError(`${what}: CompactSize 0xff at offset ${pos} is larger than any block (or non-canonical)`);
  }
  const n = tag === 0xfd ? src[pos + 1]! | (src[pos + 2]! << 8) : readU32LE(src, pos + 1);
  if (n < (tag === 0xfd ? 0xfd : 0x10000)) throw new RangeError(`${what}: non-canonical CompactSize at offset ${pos}`);
  return n;
}

/** Reads the CompactSize at `pos`. Advance by `csLen(value)`: canonical encoding fixes the size. */
function readCS(src: Uint8Array, pos: number, end: number, what: string): number {
  if (pos >= end) throw truncated(what, 1, pos, end);
  const n = src[pos]!;
  return n < 0xfd ? n : readLongCompactSize(src, pos, end, what);
}

function csLen(n: number): number {
  return n < 0xfd ? 1 : n <= 0xffff ? 3 : 5;
}

/**
 * A view of `src[start, end)`. Same as `subarray`, about twice as fast in V8, and always a plain
 * Uint8Array (a Buffer's `subarray` would return a Buffer).
 */
function view(src: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(src.buffer, src.byteOffset + start, end - start);
}

function checkBytes(raw: unknown, name: string): asserts raw is Uint8Array {
  if (!(raw instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array, got ${raw === null ? 'null' : typeof raw}`);
}

// ---------------------------------------------------------------------------------------------
// Transaction views

/** One input, as offsets into the source buffer. Field getters return views, not copies. */
export class TxIn {
  /** Offset of the witness stack (its item count), or -1 for a tx serialized without witness. */
  witnessOffset = -1;

  constructor(
    /** The buffer the transaction was parsed from. */
    readonly source: Uint8Array,
    /** Offset of the prevout (txid, then vout). */
    readonly offset: number,
    readonly scriptOffset: number,
    readonly scriptLength: number,
  ) {}

  /** Prevout txid, 32 bytes in internal byte order (reverse for display, see `prevTxidHex`). */
  get prevTxid(): Uint8Array {
    return view(this.source, this.offset, this.offset + 32);
  }
  /** Prevout txid as shown by explorers and RPCs. */
  get prevTxidHex(): string {
    return hashToHex(this.prevTxid);
  }
  get vout(): number {
    return readU32LE(this.source, this.offset + 32);
  }
  get scriptSig(): Uint8Array {
    return view(this.source, this.scriptOffset, this.scriptOffset + this.scriptLength);
  }
  get sequence(): number {
    return readU32LE(this.source, this.scriptOffset + this.scriptLength);
  }
  /** Witness stack items (views). Empty for inputs without witness. */
  get witness(): Uint8Array[] {
    const items: Uint8Array[] = [];
    if (this.witnessOffset < 0) return items;
    const src = this.source;
    let pos = this.witnessOffset;
    const count = readCS(src, pos, src.length, 'witness item count');
    pos += csLen(count);
    for (let i = 0; i < count; i++) {
      const len = readCS(src, pos, src.length, 'witness item length');
      pos += csLen(len);
      items.push(view(src, pos, pos + len));
      pos += len;
    }
    return items;
  }
}

/** One output, as offsets into the source buffer. */
export class TxOut {
  constructor(
    readonly source: Uint8Array,
    /** Offset of the 8-byte value. */
    readonly offset: number,
    readonly scriptOffset: number,
    readonly scriptLength: number,
  ) {}

  /** Value in satoshis (exact: the field is a uint64). */
  get value(): bigint {
    return readU64LE(this.source, this.offset);
  }
  /** Value in satoshis as a number; exact for every value up to 2^53 (all real amounts). */
  get valueNumber(): number {
    return readU32LE(this.source, this.offset) + readU32LE(this.source, this.offset + 4) * 0x1_0000_0000;
  }
  get script(): Uint8Array {
    return view(this.source, this.scriptOffset, this.scriptOffset + this.scriptLength);
  }
}

/**
 * A parsed transaction: offsets of its parts in `source` plus lazy, cached txid/wtxid.
 * Offsets are absolute indices into `source`: version at `start`, the input count at
 * `inputsOffset`, the output count at `outputsOffset`, the first witness stack at
 * `witnessOffset` (equal to `locktimeOffset` when the tx has no witness), locktime at
 * `locktimeOffset`, and the tx ends before `end`.
 */
export class Tx {
  private _txid: Uint8Array | undefined;
  private _wtxid: Uint8Array | undefined;

  constructor(
    readonly source: Uint8Array,
    readonly start: number,
    readonly end: number,
    /** Unsigned, as in Bitcoin Core since v28 (BIP68 only applies from version 2). */
    readonly version: number,
    /** Serialized with the BIP144 marker and flag (and so with witness data). */
    readonly segwit: boolean,
    readonly inputsOffset: number,
    readonly outputsOffset: number,
    readonly witnessOffset: number,
    readonly locktimeOffset: number,
    readonly inputs: readonly TxIn[],
    readonly outputs: readonly TxOut[],
  ) {}

  /** The whole serialization (view). */
  get bytes(): Uint8Array {
    return view(this.source, this.start, this.end);
  }
  get locktime(): number {
    return readU32LE(this.source, this.locktimeOffset);
  }
  /** Serialized size with witness. */
  get size(): number {
    return this.end - this.start;
  }
  /** Size without marker, flag and witness (BIP141 base size). */
  get baseSize(): number {
    return this.segwit ? this.size - 2 - (this.locktimeOffset - this.witnessOffset) : this.size;
  }
  get weight(): number {
    return this.baseSize * 3 + this.size;
  }
  get vsize(): number {
    return Math.ceil(this.weight / 4);
  }
  /** One input spending the null prevout (all-zero txid, index 0xffffffff). */
  get isCoinbase(): boolean {
    if (this.inputs.length !== 1) return false;
    const input = this.inputs[0]!;
    if (input.vout !== 0xffffffff) return false;
    const s = this.source;
    for (let i = input.offset; i < input.offset + 32; i++) if (s[i] !== 0) return false;
    return true;
  }

  /** txid in internal byte order: double SHA-256 of the serialization without witness. */
  txidBytes(): Uint8Array {
    if (this._txid === undefined) {
      const s = this.source;
      this._txid = this.segwit
        ? sha256dParts([
            view(s, this.start, this.start + 4),
            view(s, this.inputsOffset, this.witnessOffset),
            view(s, this.locktimeOffset, this.end),
          ])
        : sha256d(view(s, this.start, this.end));
    }
    return this._txid;
  }
  /** wtxid in internal byte order (equals the txid for a tx without witness). */
  wtxidBytes(): Uint8Array {
    if (this._wtxid === undefined) this._wtxid = this.segwit ? sha256d(this.bytes) : this.txidBytes();
    return this._wtxid;
  }
  /** txid as shown by explorers and RPCs (byte-reversed hex). */
  get txid(): string {
    return hashToHex(this.txidBytes());
  }
  get wtxid(): string {
    return hashToHex(this.wtxidBytes());
  }
}

/** Parses the inputs at `pos` (the input count). Returns the offset after them. */
function parseInputs(src: Uint8Array, pos: number, end: number, into: TxIn[]): number {
  const n = readCS(src, pos, end, 'input count');
  pos += csLen(n);
  if (n > (end - pos) / MIN_INPUT_SIZE) throw tooMany('input count', n, MIN_INPUT_SIZE, pos, end);
  for (let i = 0; i < n; i++) {
    const offset = pos;
    pos += 36;
    const len = readCS(src, pos, end, 'scriptSig length');
    pos += csLen(len);
    if (len + 4 > end - pos) throw truncated('scriptSig and sequence', len + 4, pos, end);
    into.push(new TxIn(src, offset, pos, len));
    pos += len + 4;
  }
  return pos;
}

/** Parses the outputs at `pos` (the output count). Returns the offset after them. */
function parseOutputs(src: Uint8Array, pos: number, end: number, into: TxOut[]): number {
  const n = readCS(src, pos, end, 'output count');
  pos += csLen(n);
  if (n > (end - pos) / MIN_OUTPUT_SIZE) throw tooMany('output count', n, MIN_OUTPUT_SIZE, pos, end);
  for (let i = 0; i < n; i++) {
    const offset = pos;
    pos += 8;
    const len = readCS(src, pos, end, 'output script length');
    pos += csLen(len);
    if (len > end - pos) throw truncated('output script', len, pos, end);
    into.push(new TxOut(src, offset, pos, len));
    pos += len;
  }
  return pos;
}

/** Skips one witness stack at `pos`; returns the offset after it, or ~offset if it was empty. */
function skipWitness(src: Uint8Array, pos: number, end: number): number {
  const count = readCS(src, pos, end, 'witness item count');
  pos += csLen(count);
  if (count > end - pos) throw tooMany('witness item count', count, 1, pos, end);
  for (let j = 0; j < count; j++) {
    const len = readCS(src, pos, end, 'witness item length');
    pos += csLen(len);
    if (len > end - pos) throw truncated('witness item', len, pos, end);
    pos += len;
  }
  return count === 0 ? ~pos : pos;
}

/** Skips `count` witness stacks; like Core, rejects a witness flag with no witness data at all. */
function skipWitnesses(src: Uint8Array, pos: number, end: number, count: number, txStart: number): number {
  let any = false;
  for (let i = 0; i < count; i++) {
    pos = skipWitness(src, pos, end);
    if (pos >= 0) any = true;
    else pos = ~pos;
  }
  if (!any) throw superfluousWitness(txStart);
  return pos;
}

function superfluousWitness(txStart: number): RangeError {
  return new RangeError(`transaction at offset ${txStart}: witness flag set but no witness data (superfluous witness record)`);
}

/**
 * Reads the version and the BIP144 marker/flag at `start`. Returns the offset of the input
 * count, negated minus one when the tx is segwit-serialized (so one number carries both).
 */
function readPrefix(src: Uint8Array, start: number, end: number): number {
  if (end - start < MIN_TX_SIZE) throw truncated('transaction', MIN_TX_SIZE, start, end);
  const pos = start + 4;
  if (src[pos] !== 0) return pos;
  const flag = src[pos + 1]!;
  if (flag === 1) return ~(pos + 2);
  // Core reads an empty vin, then a flag byte: 0 means "no inputs, no outputs", anything but 1 is an error.
  if (flag !== 0) throw new RangeError(`transaction at offset ${start}: unknown optional data flag 0x${flag.toString(16)}`);
  return pos;
}

/** Parses the transaction starting at `start`; it must end at or before `end`. */
function parseTxAt(src: Uint8Array, start: number, end: number): Tx {
  const prefix = readPrefix(src, start, end);
  const segwit = prefix < 0;
  const inputsOffset = segwit ? ~prefix : prefix;
  const inputs: TxIn[] = [];
  const outputs: TxOut[] = [];
  const outputsOffset = parseInputs(src, inputsOffset, end, inputs);
  const witnessOffset = parseOutputs(src, outputsOffset, end, outputs);
  let pos = witnessOffset;
  if (segwit) {
    let any = false;
    for (const input of inputs) {
      input.witnessOffset = pos;
      pos = skipWitness(src, pos, end);
      if (pos >= 0) any = true;
      else pos = ~pos;
    }
    if (!any) throw superfluousWitness(start);
  }
  if (end - pos < 4) throw truncated('locktime', 4, pos, end);
  return new Tx(src, start, pos + 4, readU32LE(src, start), segwit, inputsOffset, outputsOffset, witnessOffset, pos, inputs, outputs);
}

/**
 * Parses one raw transaction (with or without witness). The bytes must hold exactly one tx.
 * @throws RangeError on any malformed or truncated input, or trailing bytes.
 * @example parseTransaction(raw).txid
 */
export function parseTransaction(raw: Uint8Array): Tx {
  checkBytes(raw, 'transaction');
  const tx = parseTxAt(raw, 0, raw.length);
  if (tx.end !== raw.length) throw new RangeError(`transaction: ${raw.length - tx.end} trailing bytes after offset ${tx.end}`);
  return tx;
}

// ---------------------------------------------------------------------------------------------
// Blocks

/** The six header fields; hashes are views in internal byte order. */
export interface RawBlockHeader {
  readonly version: number;
  readonly prevBlock: Uint8Array;
  readonly merkleRoot: Uint8Array;
  readonly time: number;
  readonly bits: number;
  readonly nonce: number;
  /** Block hash as shown by explorers and RPCs. */
  readonly hash: string;
}

/**
 * Hash of the 80-byte header at the start of `raw` (a header or a whole block), display hex.
 * @example blockHash(genesis) // '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f'
 */
export function blockHash(raw: Uint8Array): string {
  checkBytes(raw, 'block header');
  if (raw.length < HEADER_SIZE) throw truncated('block header', HEADER_SIZE, 0, raw.length);
  return hashToHex(sha256d(view(raw, 0, HEADER_SIZE)));
}

/** Reads the header at the start of `raw` (a header or a whole block). */
export function parseBlockHeader(raw: Uint8Array): RawBlockHeader {
  const hash = blockHash(raw);
  return {
    version: readI32LE(raw, 0),
    prevBlock: view(raw, 4, 36),
    merkleRoot: view(raw, 36, 68),
    time: readU32LE(raw, 68),
    bits: readU32LE(raw, 72),
    nonce: readU32LE(raw, 76),
    hash,
  };
}

/** A parsed block: its header and transactions, all views on `source`. */
export interface Block {
  readonly source: Uint8Array;
  readonly header: RawBlockHeader;
  readonly txs: readonly Tx[];
}

/** Reads the tx count after the header; returns [count, offset of the first tx]. */
function readTxCount(raw: Uint8Array): [number, number] {
  checkBytes(raw, 'block');
  const end = raw.length;
  if (end < HEADER_SIZE) throw truncated('block header', HEADER_SIZE, 0, end);
  const n = readCS(raw, HEADER_SIZE, end, 'tx count');
  const pos = HEADER_SIZE + csLen(n);
  if (n > (end - pos) / MIN_TX_SIZE) throw tooMany('tx count', n, MIN_TX_SIZE, pos, end);
  return [n, pos];
}

function trailing(raw: Uint8Array, pos: number): RangeError {
  return new RangeError(`block: ${raw.length - pos} trailing bytes after the last transaction at offset ${pos}`);
}

/**
 * Parses a raw block (header, then every transaction as offset views).
 * @throws RangeError on any malformed or truncated input, or trailing bytes.
 * @example const { header, txs } = parseBlock(raw); txs[0].txid
 */
export function parseBlock(raw: Uint8Array): Block {
  const [n, first] = readTxCount(raw);
  const txs: Tx[] = [];
  let pos = first;
  for (let i = 0; i < n; i++) {
    const tx = parseTxAt(raw, pos, raw.length);
    txs.push(tx);
    pos = tx.end;
  }
  if (pos !== raw.length) throw trailing(raw, pos);
  return { source: raw, header: parseBlockHeader(raw), txs };
}

// ---------------------------------------------------------------------------------------------
// OP_RETURN payloads and the candidate scan

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
