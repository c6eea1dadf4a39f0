/**
 * The wallet's three sync engines, each bringing the wallet store up to date with the chain:
 * - {@link BlockSync} (full-block backends: btcd, bitcoind, Esplora): a ChainFollower named
 *   'wallet' walks blocks from the birthday height; each block's effects commit with the
 *   follower cursor, and a reorg undoes the disconnected blocks.
 * - {@link MempoolSync} (backends with a mempool): new mempool transactions come from
 *   `getMempoolTxids` + `getRawTransaction` (and 'mempool-tx' events); pending ones the node
 *   no longer has are dropped once every block before the snapshot is applied.
 * - {@link syncScriptHistory} (script-history backends: Electrum): every derived script within
 *   the gap window is asked for its history; the transactions found are applied in height order.
 *
 * They share no state with spending: they see the store and the script index through a
 * {@link SyncTarget}, so the wallet decides when they run (one operation at a time).
 */
import type Database from 'better-sqlite3';
import { parseBlock, parseTransaction, type Tx } from '../chain/block.js';
import type { ChainSource } from '../chain/types.js';
import { isDeaddropError } from '../util/errors.js';
import { PROGRESS_INTERVAL_MS, ReportThrottle } from '../util/time.js';
import { ChainFollower } from '../chain/follow/follower.js';
import { applyTx, disconnectBlock, evictTx, type ScriptIndex } from './indexer.js';
import { scriptKey, type WalletStore } from './store.js';

/** A pending tx missing from the script histories is kept this long after it was first seen (the server may not have indexed it yet). */
const SCRIPT_SYNC_GRACE_MS = 60_000;
/** Script-history requests in flight at once. */
const SCRIPT_QUERY_CONCURRENCY = 8;

/** What the engines work on. The getters throw CLOSED once the wallet is closed. */
export interface SyncTarget {
  readonly source: ChainSource;
  store(): WalletStore;
  scriptIndex(): ScriptIndex;
}

/** Effects of the wallet's own broadcast, recorded with the transaction. */
export interface OwnTx {
  readonly fee: bigint;
  readonly changeVout: number | null;
}

/**
 * Fewest milliseconds between two sync progress reports: at most 4 a second, however the blocks
 * come (one long catch-up or many short ones). The end of a catch-up needs no report of its own:
 * the wallet's change notice (`onChange`) follows it with the height reached.
 */
export const SYNC_PROGRESS_INTERVAL_MS = PROGRESS_INTERVAL_MS;

/** Where a block sync stands: the last block applied and the backend's tip when the run started (or that block, if higher). */
export type SyncProgressFn = (height: number, tip: number) => void;

/** Block sync: a ChainFollower over the wallet's database, applying each block's transactions. */
export class BlockSync {
  readonly #follower: ChainFollower;
  readonly #source: ChainSource;
  readonly #onProgress: SyncProgressFn | undefined;
  #height: number | null;
  /** The tip this run walks towards (read once per catch-up). */
  #tip = 0;
  readonly #reports = new ReportThrottle(SYNC_PROGRESS_INTERVAL_MS);

  constructor(target: SyncTarget, db: Database.Database, birthdayHeight: number, onProgress?: SyncProgressFn) {
    this.#source = target.source;
    this.#onProgress = onProgress;
    this.#follower = new ChainFollower({
      source: target.source, db, name: 'wallet', startHeight: birthdayHeight, follow: false,
      consumer: {
        onConnect: (height, hash, raw) => {
          const c = { store: target.store(), scripts: target.scriptIndex(), height, blockHash: hash, now: Date.now() };
          for (const tx of parseBlock(raw).txs) applyTx(tx, c);
          this.#height = height;
          this.#report(height);
        },
        onDisconnect: (block) => {
          disconnectBlock(target.store(), block.height);
          this.#height = block.height - 1;
        },
      },
    });
    this.#height = this.#follower.cursor()?.height ?? null;
  }

  /** Height of the last block applied. */
  get height(): number | null {
    return this.#height;
  }

  /** Hash of the last block applied. */
  get tipHash(): string | undefined {
    return this.#follower.cursor()?.hash;
  }

  /** Applies blocks up to the backend's tip (undoing reorged ones first). */
  async catchUp(): Promise<{ connected: number; disconnected: number }> {
    // Only a listener needs the tip: without one, no extra round trip to the backend.
    if (this.#onProgress) this.#tip = (await this.#source.getTip()).height;
    const r = await this.#follower.catchUp();
    this.#height = r.cursor?.height ?? null;
    return r;
  }

  close(): Promise<void> {
    return this.#follower.close();
  }

  /** Throttled: at most one report every SYNC_PROGRESS_INTERVAL_MS (see there). */
  #report(height: number): void {
    if (!this.#onProgress) return;
    const tip = Math.max(this.#tip, height);
    if (!this.#reports.take()) return;
    try {
      this.#onProgress(height, tip);
    } catch {
      // a listener's failure must not roll back the block
    }
  }
}

/** Mempool sync: applies new mempool transactions, drops pending ones the node no longer has. */
export class MempoolSync {
  readonly #target: SyncTarget;
  readonly #fetchLimit: number;
  /** Mempool txids already looked at (applied, irrelevant, or the wallet's own). */
  readonly #seen = new Set<string>();

  constructor(target: SyncTarget, fetchLimit = 5000) {
    this.#target = target;
    this.#fetchLimit = fetchLimit;
  }

  /** Marks a tx as known (the wallet recorded it itself), so it is not fetched again. */
  markSeen(txid: string): void {
    this.#seen.add(txid);
  }

  /**
   * One pass over the node's mempool. `appliedTip` is the hash of the last block applied:
   * pending txs are dropped only when it is the tip seen after the mempool snapshot.
   * Returns how many new transactions touched the wallet.
   */
  async sync(appliedTip: () => string | undefined): Promise<number> {
    const { source } = this.#target;
    const txids = await source.getMempoolTxids();
    const tip = await source.getTip();
    const inPool = new Set(txids);
    let applied = 0;
    let fetched = 0;
    for (const txid of txids) {
      if (this.#seen.has(txid) || fetched >= this.#fetchLimit) continue;
      const known = this.#target.store().tx(txid);
      if (known && known.status === 'pending') {
        this.#seen.add(txid);
        continue;
      }
      fetched++;
      const raw = await source.getRawTransaction(txid).catch((err: unknown) => {
        if (isDeaddropError(err, 'NOT_FOUND')) return null; // left the mempool meanwhile
        throw err;
      });
      this.#seen.add(txid);
      if (raw && this.apply(raw)) applied++;
    }
    for (const id of this.#seen) if (!inPool.has(id)) this.#seen.delete(id);
    // Only drop when every block up to after the mempool snapshot has been applied: a pending tx
    // missing from the snapshot might otherwise just have been mined.
    if (appliedTip() === tip.hash) {
      const store = this.#target.store();
      store.transaction(() => {
        for (const t of store.pendingTxs()) if (!inPool.has(t.txid) && store.tx(t.txid)?.status === 'pending') evictTx(store, t.txid, 'dropped');
      });
    }
    return applied;
  }

  /** Applies one unconfirmed tx from raw bytes; false when malformed or irrelevant. */
  apply(raw: Uint8Array, own?: OwnTx): boolean {
    let tx: Tx;
    try {
      tx = parseTransaction(raw);
    } catch {
      return false; // bad bytes from a backend are ignored
    }
    const store = this.#target.store();
    return store.transaction(() =>
      applyTx(tx, { store, scripts: this.#target.scriptIndex(), height: null, blockHash: null, now: Date.now(), ...(own ? { own } : {}) }),
    );
  }
}

/**
 * Script-history sync (Electrum): every script in the gap window, until the window stops
 * growing. Returns how many transactions changed the wallet and the backend's tip height.
 */
export async function syncScriptHistory(target: SyncTarget): Promise<{ changed: number; height: number }> {
  const { source } = target;
  const tip = await source.getTip();
  const seen = new Map<string, number>();
  const queried = new Set<string>();
  for (;;) {
    const pending = target.store().addresses().filter((a) => !queried.has(scriptKey(a.script)));
    if (pending.length === 0) break;
    for (const a of pending) queried.add(scriptKey(a.script));
    // Requests are pipelined on one connection: a small pool hides the server's latency.
    const histories = await mapPool(pending, SCRIPT_QUERY_CONCURRENCY, (a) => source.getScriptHistory(a.script));
    pending.forEach((a, i) => {
      const history = histories[i]!;
      if (history.length > 0 && !a.used) target.store().transaction(() => target.scriptIndex().markUsed(a.chain, a.index));
      for (const h of history) seen.set(h.txid, h.height > 0 ? h.height : 0);
    });
  }
  const ordered = [...seen].sort((a, b) => (a[1] || Infinity) - (b[1] || Infinity));
  const todo = ordered.filter(([txid, height]) => {
    const known = target.store().tx(txid);
    const h = height > 0 ? height : null;
    return !(known && known.height === h && (known.status === 'pending' || known.status === 'confirmed'));
  });
  const raws = await mapPool(todo, SCRIPT_QUERY_CONCURRENCY, ([txid]) => {
    const known = target.store().tx(txid);
    return known ? Promise.resolve(known.raw) : source.getRawTransaction(txid);
  });
  const parsed = todo.map(([, height], i): [Tx, number | null] | null => {
    try {
      return [parseTransaction(raws[i]!), height > 0 ? height : null];
    } catch {
      return null; // bad bytes from the server are ignored
    }
  });
  // Two passes: a child listed before its parent at the same height finds the parent's outputs on the second.
  let changed = 0;
  const store = target.store();
  for (const pass of [0, 1]) {
    store.transaction(() => {
      for (const p of parsed) {
        if (p && applyTx(p[0], { store, scripts: target.scriptIndex(), height: p[1], blockHash: null, now: Date.now() }) && pass === 0) changed++;
      }
    });
  }
  // A tx we just broadcast may not be indexed by the server yet: give it a grace period.
  const graceStart = Date.now() - SCRIPT_SYNC_GRACE_MS;
  store.transaction(() => {
    for (const t of store.history(1_000_000)) {
      if (seen.has(t.txid) || (t.status !== 'pending' && t.status !== 'confirmed')) continue;
      if (t.status === 'pending' && t.firstSeen > graceStart) continue;
      evictTx(store, t.txid, 'dropped');
    }
  });
  return { changed, height: tip.height };
}

/** Maps `items` through `fn` with at most `limit` calls in flight, keeping order. */
async function mapPool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
