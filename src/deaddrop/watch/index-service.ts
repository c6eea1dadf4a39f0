/**
 * The public candidate index ("BitcoinDB"): for every dead-drop candidate the watcher indexed,
 * its height, block hash, txid, output index, tweak data (input_hash·A) and OP_RETURN payload.
 *
 * It serves only what is on chain: no drop the local identities found, no mempool data, no
 * timestamps of discovery. A light client downloads whole height ranges and trial-decrypts
 * locally, so the server learns nothing about which candidate (if any) is the client's.
 *
 * Ranges are bounded ({@link MAX_INDEX_RANGE} blocks, {@link MAX_INDEX_ROWS} rows). A response
 * always covers whole blocks: when the row limit cuts a range short, `to` is lowered to the last
 * complete block and the client continues from `to + 1`.
 */
import { DeaddropError } from '../../util/errors.js';
import type { DropStore, IndexedCandidate } from './drop-store.js';
import { toHex } from '../../util/bytes.js';

/** Most blocks one request may span. */
export const MAX_INDEX_RANGE = 1000;
/** Most rows one response carries (a block with more is still served whole). */
export const MAX_INDEX_ROWS = 20_000;

/** Meta keys the watcher maintains in the store for the index. */
export const INDEX_FROM_KEY = 'index_from';

/** One candidate as served (hex strings). */
export interface CandidateJson {
  readonly height: number;
  readonly blockHash: string;
  readonly txid: string;
  readonly vout: number;
  /** 33-byte compressed tweak data input_hash·A, hex. */
  readonly tweak: string;
  /** OP_RETURN pushed data, hex. */
  readonly data: string;
}

/**
 * Response of a range query. `from`..`to` is exactly the range covered, which may be smaller
 * than asked: clipped to the indexed heights and to the row limit (empty when to < from).
 */
export interface CandidateRange {
  readonly from: number;
  readonly to: number;
  /** Lowest height the index covers (the watcher's start height), or null if nothing is indexed. */
  readonly indexedFrom: number | null;
  /** Highest height the index covers (the watcher's cursor), or null. */
  readonly indexedTip: number | null;
  readonly candidates: readonly CandidateJson[];
}

/** Where the index currently stands. */
export interface IndexBounds {
  readonly indexedFrom: number | null;
  readonly indexedTip: number | null;
}

export function candidateToJson(c: IndexedCandidate): CandidateJson {
  return { height: c.height, blockHash: c.blockHash, txid: c.txid, vout: c.vout, tweak: toHex(c.tweak), data: toHex(c.data) };
}

/**
 * Range queries over a watcher's store. `bounds()` tells how far the index reaches (a watcher
 * passes its start height and cursor).
 */
export class IndexService {
  readonly #store: DropStore;
  readonly #bounds: () => IndexBounds;
  readonly #maxRows: number;

  constructor(store: DropStore, bounds: () => IndexBounds, opts: { maxRows?: number } = {}) {
    this.#store = store;
    this.#bounds = bounds;
    this.#maxRows = opts.maxRows ?? MAX_INDEX_ROWS;
  }

  bounds(): IndexBounds {
    return this.#bounds();
  }

  /**
   * Candidates with `from <= height <= to`, clipped to what is indexed. BAD_INPUT for a range
   * that is not two non-negative integers with from <= to spanning at most MAX_INDEX_RANGE blocks.
   */
  candidates(from: number, to: number): CandidateRange {
    checkRange(from, to);
    const { indexedFrom, indexedTip } = this.#bounds();
    if (indexedFrom === null || indexedTip === null) return { from, to: from - 1, indexedFrom, indexedTip, candidates: [] };
    const lo = Math.max(from, indexedFrom);
    const hi = Math.min(to, indexedTip);
    if (hi < lo) return { from, to: from - 1, indexedFrom, indexedTip, candidates: [] };
    const rows = this.#store.candidatesInRange(lo, hi, this.#maxRows + 1);
    let end = hi;
    if (rows.length > this.#maxRows) {
      const last = rows[rows.length - 1]!.height;
      const whole = rows.filter((r) => r.height < last);
      // A single block above the row limit is served whole rather than never.
      if (whole.length === 0) return this.#single(lo, indexedFrom, indexedTip);
      rows.length = 0;
      rows.push(...whole);
      end = last - 1;
    }
    return { from: lo, to: end, indexedFrom, indexedTip, candidates: rows.map(candidateToJson) };
  }

  #single(height: number, indexedFrom: number, indexedTip: number): CandidateRange {
    const rows = this.#store.candidatesInRange(height, height, Number.MAX_SAFE_INTEGER);
    return { from: height, to: height, indexedFrom, indexedTip, candidates: rows.map(candidateToJson) };
  }
}

/** Validates a requested range (BAD_INPUT otherwise). */
export function checkRange(from: number, to: number): void {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from) {
    throw DeaddropError.badInput(`range must be integers 0 <= from <= to; got from=${from} to=${to}`);
  }
  if (to - from + 1 > MAX_INDEX_RANGE) {
    throw DeaddropError.badInput(`range spans ${to - from + 1} blocks; at most ${MAX_INDEX_RANGE} per request`);
  }
}
