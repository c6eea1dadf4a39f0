/**
 * Zero-copy parser for raw Bitcoin blocks and transactions. The OP_RETURN candidate scan that
 * walks a block without parsing it lives in `op-return-scan.ts`, and shares this file's
 * CompactSize readers and error builders (exported below, marked internal).
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
 */
import { hashToHex, readI32LE, readU32LE, readU64LE, sha256d, sha256dParts } from './bytes.js';

/** Size of a serialized block header. */
export const HEADER_SIZE = 80;
/** Smallest serialization Core can read: version, empty vin, empty vout, locktime. */
const MIN_TX_SIZE = 10;
/** prevout (36) + empty scriptSig length (1) + sequence (4). (@internal: shared with op-return-scan.ts) */
export const MIN_INPUT_SIZE = 41;
/** value (8) + empty script length (1). (@internal: shared with op-return-scan.ts) */
export const MIN_OUTPUT_SIZE = 9;

// ---------------------------------------------------------------------------------------------
// Errors and CompactSize

/** @internal shared with op-return-scan.ts */
export function truncated(what: string, need: number, pos: number, end: number): RangeError {
  return new RangeError(`${what}: need ${need} bytes at offset ${pos}, only ${Math.max(0, end - pos)} left`);
}

/** @internal shared with op-return-scan.ts */
export function tooMany(what: string, count: number, minEach: number, pos: number, end: number): RangeError {
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

/** Reads the CompactSize at `pos`. Advance by `csLen(value)`: canonical encoding fixes the size. (@internal: shared with op-return-scan.ts) */
export function readCS(src: Uint8Array, pos: number, end: number, what: string): number {
  if (pos >= end) throw truncated(what, 1, pos, end);
  const n = src[pos]!;
  return n < 0xfd ? n : readLongCompactSize(src, pos, end, what);
}

/** @internal shared with op-return-scan.ts */
export function csLen(n: number): number {
  return n < 0xfd ? 1 : n <= 0xffff ? 3 : 5;
}

/**
 * A view of `src[start, end)`. Same as `subarray`, about twice as fast in V8, and always a plain
 * Uint8Array (a Buffer's `subarray` would return a Buffer).
 * @internal shared with op-return-scan.ts
 */
export function view(src: Uint8Array, start: number, end: number): Uint8Array {
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
  #txid: Uint8Array | undefined;
  #wtxid: Uint8Array | undefined;

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
    if (this.#txid === undefined) {
      const s = this.source;
      this.#txid = this.segwit
        ? sha256dParts([
            view(s, this.start, this.start + 4),
            view(s, this.inputsOffset, this.witnessOffset),
            view(s, this.locktimeOffset, this.end),
          ])
        : sha256d(view(s, this.start, this.end));
    }
    return this.#txid;
  }
  /** wtxid in internal byte order (equals the txid for a tx without witness). */
  wtxidBytes(): Uint8Array {
    if (this.#wtxid === undefined) this.#wtxid = this.segwit ? sha256d(this.bytes) : this.txidBytes();
    return this.#wtxid;
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

/** Skips `count` witness stacks; like Core, rejects a witness flag with no witness data at all. (@internal: shared with op-return-scan.ts) */
export function skipWitnesses(src: Uint8Array, pos: number, end: number, count: number, txStart: number): number {
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
 * @internal shared with op-return-scan.ts
 */
export function readPrefix(src: Uint8Array, start: number, end: number): number {
  if (end - start < MIN_TX_SIZE) throw truncated('transaction', MIN_TX_SIZE, start, end);
  const pos = start + 4;
  if (src[pos] !== 0) return pos;
  const flag = src[pos + 1]!;
  if (flag === 1) return ~(pos + 2);
  // Core reads an empty vin, then a flag byte: 0 means "no inputs, no outputs", anything but 1 is an error.
  if (flag !== 0) throw new RangeError(`transaction at offset ${start}: unknown optional data flag 0x${flag.toString(16)}`);
  return pos;
}

/** Parses the transaction starting at `start`; it must end at or before `end`. (@internal: shared with op-return-scan.ts) */
export function parseTxAt(src: Uint8Array, start: number, end: number): Tx {
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

/** Reads the tx count after the header; returns [count, offset of the first tx]. (@internal: shared with op-return-scan.ts) */
export function readTxCount(raw: Uint8Array): [number, number] {
  checkBytes(raw, 'block');
  const end = raw.length;
  if (end < HEADER_SIZE) throw truncated('block header', HEADER_SIZE, 0, end);
  const n = readCS(raw, HEADER_SIZE, end, 'tx count');
  const pos = HEADER_SIZE + csLen(n);
  if (n > (end - pos) / MIN_TX_SIZE) throw tooMany('tx count', n, MIN_TX_SIZE, pos, end);
  return [n, pos];
}

/** @internal shared with op-return-scan.ts */
export function trailing(raw: Uint8Array, pos: number): RangeError {
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
