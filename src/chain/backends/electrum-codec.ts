/**
 * Pure pieces of the Electrum backend: script hashes, 80-byte header parsing, merkle branch
 * checks, txids of raw transactions and validators for the server's JSON answers.
 * Everything a server sends is checked here before the backend uses it; a malformed answer
 * is a PROTOCOL error, never a crash.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { hashToHex, hexToHash, sha256d } from '../bytes.js';
import { DeaddropError } from '../../util/errors.js';
import type { BlockHeader, ScriptHistoryItem, ScriptUnspent } from '../types.js';
import { concatBytes, fromHex } from '../../util/bytes.js';

const HEX64 = /^[0-9a-f]{64}$/;

export { sha256d };

/** Hex of the bytes in reverse order (internal byte order ↔ display order). */
export const reverseHex = hashToHex;

/** Display-order hex → internal-order bytes. */
export const displayHexToBytes = hexToHash;

/** True for a 64-char lower-case hex string (txid or block hash). */
export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value);
}

/**
 * Electrum script hash: SHA-256 of the output script, byte-reversed, as hex.
 * @example scriptHash(p2trScript) // '…64 hex chars'
 */
export function scriptHash(script: Uint8Array): string {
  return reverseHex(sha256(script));
}

/** Parses an 80-byte block header (hex or bytes) found at `height`. PROTOCOL on anything else. */
export function parseHeader(header: string | Uint8Array, height: number): BlockHeader {
  let bytes: Uint8Array;
  try {
    bytes = typeof header === 'string' ? fromHex(header) : header;
  } catch {
    throw DeaddropError.protocol('block header is not hex');
  }
  if (bytes.length !== 80) throw DeaddropError.protocol(`block header must be 80 bytes, got ${bytes.length}`);
  const time = new DataView(bytes.buffer, bytes.byteOffset, 80).getUint32(68, true);
  return {
    height,
    hash: reverseHex(sha256d(bytes)),
    prevHash: reverseHex(bytes.subarray(4, 36)),
    merkleRoot: reverseHex(bytes.subarray(36, 68)),
    time,
  };
}

/**
 * Merkle root (display hex) implied by `txid` at position `pos` with the sibling hashes `branch`
 * (display hex, leaf level first), as `blockchain.transaction.get_merkle` returns them.
 */
export function merkleRootFromBranch(txid: string, branch: readonly string[], pos: number): string {
  if (!isHash(txid)) throw new TypeError(`txid must be 64 hex chars, got ${JSON.stringify(txid)}`);
  if (!Number.isSafeInteger(pos) || pos < 0) throw new RangeError(`pos must be a non-negative integer, got ${pos}`);
  if (branch.length > 32) throw new RangeError(`merkle branch too long: ${branch.length}`);
  let h = displayHexToBytes(txid);
  let index = pos;
  for (const sibling of branch) {
    if (!isHash(sibling)) throw new TypeError('merkle branch entries must be 64 hex chars');
    const s = displayHexToBytes(sibling);
    h = sha256d(index & 1 ? concatBytes(s, h) : concatBytes(h, s));
    index = Math.floor(index / 2);
  }
  // A position beyond the branch's width cannot belong to this tree.
  if (index !== 0) throw new RangeError(`pos ${pos} does not fit a branch of ${branch.length}`);
  return reverseHex(h);
}

/** True when the branch proves `txid` under `merkleRoot`; false for any mismatch or malformed input. */
export function verifyMerkleBranch(txid: string, branch: readonly string[], pos: number, merkleRoot: string): boolean {
  try {
    return merkleRootFromBranch(txid, branch, pos) === merkleRoot;
  } catch {
    return false;
  }
}

/** Merkle root of a full list of txids (display hex), Bitcoin style (odd levels repeat the last). */
export function merkleRoot(txids: readonly string[]): string {
  if (txids.length === 0) throw new RangeError('merkle root of no transactions');
  let level = txids.map(displayHexToBytes);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const a = level[i] as Uint8Array;
      next.push(sha256d(concatBytes(a, level[i + 1] ?? a)));
    }
    level = next;
  }
  return reverseHex(level[0] as Uint8Array);
}

/** Reads a Bitcoin CompactSize; returns [value, nextOffset]. */
function readVarInt(b: Uint8Array, o: number): [number, number] {
  const first = b[o];
  if (first === undefined) throw new RangeError('truncated');
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  if (first < 0xfd) return [first, o + 1];
  if (first === 0xfd) return [dv.getUint16(o + 1, true), o + 3];
  if (first === 0xfe) return [dv.getUint32(o + 1, true), o + 5];
  const v = dv.getBigUint64(o + 1, true);
  if (v > BigInt(b.length)) throw new RangeError('varint too large');
  return [Number(v), o + 9];
}

/** Txid (display hex) of a raw transaction, with or without witness. PROTOCOL when malformed. */
export function txidFromRaw(raw: Uint8Array): string {
  try {
    const segwit = raw[4] === 0 && raw[5] === 1;
    if (!segwit) return reverseHex(sha256d(raw));
    let o = 6;
    const bodyStart = o;
    let n: number;
    [n, o] = readVarInt(raw, o);
    for (let i = 0; i < n; i++) {
      let len: number;
      [len, o] = readVarInt(raw, o + 36);
      o += len + 4;
    }
    const inputCount = n;
    [n, o] = readVarInt(raw, o);
    for (let i = 0; i < n; i++) {
      let len: number;
      [len, o] = readVarInt(raw, o + 8);
      o += len;
    }
    const bodyEnd = o;
    for (let i = 0; i < inputCount; i++) {
      let items: number;
      [items, o] = readVarInt(raw, o);
      for (let j = 0; j < items; j++) {
        let len: number;
        [len, o] = readVarInt(raw, o);
        o += len;
      }
    }
    if (o + 4 !== raw.length) throw new RangeError('trailing or missing bytes');
    const stripped = concatBytes(raw.subarray(0, 4), raw.subarray(bodyStart, bodyEnd), raw.subarray(o, o + 4));
    return reverseHex(sha256d(stripped));
  } catch {
    throw DeaddropError.protocol('malformed raw transaction');
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isHeight = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= -1;

/** Validates a `blockchain.scripthash.get_history` answer. */
export function validateHistory(value: unknown): ScriptHistoryItem[] {
  if (!Array.isArray(value)) throw DeaddropError.protocol('script history must be an array');
  return value.map((item) => {
    if (!isRecord(item) || !isHash(item.tx_hash) || !isHeight(item.height)) {
      throw DeaddropError.protocol('script history item must be {tx_hash, height}');
    }
    return { txid: item.tx_hash, height: item.height };
  });
}

/** Validates a `blockchain.scripthash.listunspent` answer. */
export function validateUnspent(value: unknown): ScriptUnspent[] {
  if (!Array.isArray(value)) throw DeaddropError.protocol('unspent list must be an array');
  return value.map((item) => {
    if (
      !isRecord(item) || !isHash(item.tx_hash) || !isHeight(item.height) ||
      !Number.isSafeInteger(item.tx_pos) || (item.tx_pos as number) < 0 ||
      !Number.isSafeInteger(item.value) || (item.value as number) < 0
    ) {
      throw DeaddropError.protocol('unspent item must be {tx_hash, tx_pos, value, height}');
    }
    return { txid: item.tx_hash, vout: item.tx_pos as number, value: BigInt(item.value as number), height: item.height };
  });
}

/** Validates a `blockchain.headers.subscribe` answer or notification payload: `{hex, height}`. */
export function validateHeaderNotification(value: unknown): BlockHeader {
  if (!isRecord(value) || typeof value.hex !== 'string' || !Number.isSafeInteger(value.height) || (value.height as number) < 0) {
    throw DeaddropError.protocol('header notification must be {hex, height}');
  }
  return parseHeader(value.hex, value.height as number);
}

/** A merkle proof as `blockchain.transaction.get_merkle` returns it. */
export interface MerkleProof {
  readonly blockHeight: number;
  readonly branch: readonly string[];
  readonly pos: number;
}

/** Validates a `blockchain.transaction.get_merkle` answer. */
export function validateMerkleProof(value: unknown): MerkleProof {
  if (
    !isRecord(value) || !Number.isSafeInteger(value.block_height) || !Number.isSafeInteger(value.pos) ||
    (value.pos as number) < 0 || !Array.isArray(value.merkle) || !value.merkle.every(isHash)
  ) {
    throw DeaddropError.protocol('merkle proof must be {block_height, merkle, pos}');
  }
  return { blockHeight: value.block_height as number, branch: value.merkle as string[], pos: value.pos as number };
}

/** Electrum fee answers are BTC per kvB; deaddrop works in sat/vB. */
export function btcPerKvBToSatPerVb(btcPerKvB: number): number {
  // Rounded to 1/1000 sat/vB so float noise (2.0000000000000004) does not leak out.
  return Math.round(btcPerKvB * 1e8) / 1000;
}
