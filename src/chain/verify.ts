/**
 * Checks that data served by a backend is what was asked for: a raw block must hash to the
 * requested block hash (and its transactions to its merkle root), a raw transaction to the
 * requested txid. Parsing is `./block.js`; this file turns its RangeErrors into PROTOCOL
 * errors, because a malformed answer is the backend's fault, not the caller's.
 */
import { blockHash, parseBlock, parseTransaction, type Block, type Tx } from './block.js';
import { hashToHex, sha256d } from './bytes.js';
import { DeaddropError } from '../util/errors.js';
import { fromHex } from '../util/bytes.js';


/** Hex from a backend → bytes; PROTOCOL error for malformed hex. */
export function hexToBytesStrict(hex: string, name: string): Uint8Array {
  try {
    return fromHex(hex);
  } catch {
    throw DeaddropError.protocol(`${name}: malformed hex`);
  }
}

function asProtocol<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) throw DeaddropError.protocol(`${what}: ${err.message}`);
    throw err;
  }
}

/** Parses one whole transaction served by a backend; PROTOCOL error when malformed. */
export function parseServedTx(raw: Uint8Array, source: string): Tx {
  return asProtocol(`${source} transaction`, () => parseTransaction(raw));
}

/** Parses a whole block served by a backend; PROTOCOL error when malformed. */
export function parseServedBlock(raw: Uint8Array, source: string): Block {
  return asProtocol(`${source} block`, () => parseBlock(raw));
}

/** txid of a caller-supplied raw transaction in hex; BAD_INPUT when it is not one transaction. */
export function txidOfHex(hex: string): string {
  try {
    return parseTransaction(fromHex(hex)).txid;
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) throw DeaddropError.badInput(`not a serialized transaction: ${err.message}`);
    throw err;
  }
}

/** Returns `raw` after checking it is one transaction hashing to `txid`; PROTOCOL error otherwise. */
export function checkTx(raw: Uint8Array, txid: string, source: string): Uint8Array {
  if (parseServedTx(raw, source).txid !== txid) throw DeaddropError.protocol(`${source} served a transaction that does not hash to ${txid}`);
  return raw;
}

/** Returns `raw` after checking its header hashes to `hash`; PROTOCOL error otherwise. */
export function checkBlock(raw: Uint8Array, hash: string, source: string): Uint8Array {
  if (asProtocol(`${source} block`, () => blockHash(raw)) !== hash) {
    throw DeaddropError.protocol(`${source} served a block that does not hash to ${hash}`);
  }
  return raw;
}

/** Merkle root (display hex) of txids given in display hex, as in a block header. */
export function merkleRoot(txids: readonly string[]): string {
  if (txids.length === 0) throw DeaddropError.protocol('block has no transactions');
  let level = txids.map((t) => fromHex(t).reverse());
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const a = level[i] as Uint8Array;
      const b = level[i + 1] ?? a;
      const both = new Uint8Array(64);
      both.set(a, 0);
      both.set(b, 32);
      next.push(sha256d(both));
    }
    level = next;
  }
  return hashToHex(level[0] as Uint8Array);
}

/** True when the block's transactions hash to the merkle root in its header. */
export function merkleRootMatches(block: Block): boolean {
  return merkleRoot(block.txs.map((t) => t.txid)) === hashToHex(block.header.merkleRoot);
}
