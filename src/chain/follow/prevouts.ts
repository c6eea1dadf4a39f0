/**
 * Prevout lookup for candidate transactions only. BIP352 needs the scriptPubKey of every input
 * a candidate spends (taproot keys are only known from it), and raw blocks do not carry them.
 *
 * - btcd: `getrawtransaction` of each previous transaction (confirmed ones need `--txindex`).
 * - Core: the same through the backend's `getRawTransaction` (it needs `-txindex` for
 *   confirmed transactions too); a backend that can serve a block's prevouts in one call
 *   (`getblock <hash> 3`) may expose it as {@link BlockPrevoutSource.getBlockPrevouts}.
 * - Every served transaction must hash to the txid asked for; a lie is a PROTOCOL error.
 * - Results are cached in the watcher's sqlite store (outpoint -> scriptPubKey, value). The
 *   fetcher does not write: it hands new rows back so the caller stores them in its own
 *   transaction (the follower forbids writes outside onConnect).
 */
import { parseTransaction } from '../block.js';
import type { BlockPrevoutSource, ChainSource, Prevout } from '../types.js';
import { DeaddropError, isDeaddropError } from '../../util/errors.js';

/** An outpoint in display hex. */
export interface OutpointRef {
  readonly txid: string;
  readonly vout: number;
}

/** The cache the fetcher reads (the drop watcher's store); it never writes to it. */
export interface PrevoutCache {
  getPrevout(txid: string, vout: number): Prevout | undefined;
}

function blockPrevoutSource(source: ChainSource): BlockPrevoutSource | null {
  const f = (source as Partial<BlockPrevoutSource>).getBlockPrevouts;
  return typeof f === 'function' ? { getBlockPrevouts: (hash) => f.call(source, hash) } : null;
}

/** A prevout fetched from the backend, to be cached by the caller. */
export interface FreshPrevout extends OutpointRef {
  readonly prevout: Prevout;
}

/** Result of {@link PrevoutFetcher.fetch}. */
export interface PrevoutLookup {
  /** `txid:vout` -> prevout; missing keys are outpoints the backend does not know. */
  readonly found: Map<string, Prevout>;
  /** Rows that came from the backend (not the cache): store them in the cache's own transaction. */
  readonly fresh: FreshPrevout[];
}

export interface PrevoutFetcherOptions {
  /** Parallel getrawtransaction calls. Default 8. */
  readonly concurrency?: number;
}

/** Cache key of an outpoint. */
export function outpointKey(txid: string, vout: number): string {
  return `${txid}:${vout}`;
}

/** Outpoints not in `found`, grouped by txid. */
function missingByTxid(outpoints: readonly OutpointRef[], found: ReadonlyMap<string, Prevout>): Map<string, Set<number>> {
  const missing = new Map<string, Set<number>>();
  for (const o of outpoints) {
    if (found.has(outpointKey(o.txid, o.vout))) continue;
    const set = missing.get(o.txid) ?? new Set<number>();
    set.add(o.vout);
    missing.set(o.txid, set);
  }
  return missing;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Fetches prevouts through a ChainSource with the store as cache.
 * @example
 * const { found, fresh } = await fetcher.fetch(candidate.inputs.map((i) => ({ txid: i.prevTxidHex, vout: i.vout })));
 */
export class PrevoutFetcher {
  readonly #source: ChainSource;
  readonly #store: PrevoutCache | null;
  readonly #concurrency: number;

  constructor(source: ChainSource, store: PrevoutCache | null, opts: PrevoutFetcherOptions = {}) {
    const c = opts.concurrency ?? 8;
    if (!Number.isSafeInteger(c) || c < 1) throw new RangeError(`concurrency must be a positive integer, got ${c}`);
    this.#source = source;
    this.#store = store;
    this.#concurrency = c;
  }

  /**
   * Looks up `outpoints`: cache first, then one getRawTransaction per distinct missing txid.
   * Unknown transactions or output indexes are left out of `found` (not an error: the caller
   * skips that candidate). Backend failures other than NOT_FOUND are thrown so the caller retries.
   */
  async fetch(outpoints: readonly OutpointRef[], opts: { blockHash?: string } = {}): Promise<PrevoutLookup> {
    const found = new Map<string, Prevout>();
    const fresh: FreshPrevout[] = [];
    const add = (txid: string, vout: number, prevout: Prevout): void => {
      found.set(outpointKey(txid, vout), prevout);
      fresh.push({ txid, vout, prevout });
    };
    for (const o of outpoints) {
      const cached = this.#store?.getPrevout(o.txid, o.vout);
      if (cached !== undefined) found.set(outpointKey(o.txid, o.vout), cached);
    }
    const bulk = opts.blockHash !== undefined ? blockPrevoutSource(this.#source) : null;
    if (bulk && missingByTxid(outpoints, found).size > 0) {
      const all = await bulk.getBlockPrevouts(opts.blockHash!);
      for (const o of outpoints) {
        const p = all.get(outpointKey(o.txid, o.vout));
        if (p !== undefined && !found.has(outpointKey(o.txid, o.vout))) add(o.txid, o.vout, p);
      }
    }
    await pool([...missingByTxid(outpoints, found).entries()], this.#concurrency, async ([txid, vouts]) => {
      const outputs = await this.#fetchOutputs(txid);
      for (const vout of vouts) {
        const prevout = outputs?.[vout];
        if (prevout !== undefined) add(txid, vout, prevout);
      }
    });
    return { found, fresh };
  }

  /** All outputs of `txid` (copied out of the raw tx), or null when the backend does not know it. */
  async #fetchOutputs(txid: string): Promise<Prevout[] | null> {
    let raw: Uint8Array;
    try {
      raw = await this.#source.getRawTransaction(txid);
    } catch (err) {
      if (isDeaddropError(err, 'NOT_FOUND')) return null;
      throw err;
    }
    let tx;
    try {
      tx = parseTransaction(raw);
    } catch {
      throw DeaddropError.protocol(`backend served an unparseable transaction for ${txid}`);
    }
    if (tx.txid !== txid) throw DeaddropError.protocol(`backend served a transaction that does not hash to ${txid}`);
    return tx.outputs.map((o) => ({ script: o.script.slice(), value: o.value }));
  }
}
