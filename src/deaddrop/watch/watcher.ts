/**
 * DropWatcher: the long-running dead-drop scanner over a full-block ChainSource.
 *
 * DEV DOCS
 * - Blocks come from the one ChainFollower (src/chain/follow/follower.ts), which owns reorg
 *   handling and the cursor. For each block, `prepare` (async, no db writes) runs the zero-copy
 *   candidate scan, gets prevouts for candidates only (Core: the block's spent outputs over REST
 *   in one request; otherwise the PrevoutFetcher), computes the tweak data input_hash·A of every
 *   candidate and trial-decrypts it with each local scan key (one ECDH per candidate and
 *   identity). `onConnect` then writes the index rows, the drops and their events in the
 *   follower's transaction; `onDisconnect` rolls a block's rows back and marks its drops reorged.
 * - Parallel scanning: during a catch-up or rescan the CPU steps of `prepare` (./block-scan.ts)
 *   run on a pool of worker threads (./scan-pool.ts, `scanThreads`, default every core) and the
 *   follower prepares up to `prefetch` blocks ahead. Only `prepare` overlaps: commits stay one
 *   transaction per block, strictly in height order, so what a crash can leave behind (a prefix
 *   of the blocks, each whole) and the reorg handling are the same as with one thread. Near the
 *   tip, and until scanning here has cost about what starting the workers does, blocks are
 *   scanned on this thread. The workers stop in close().
 * - The mempool is scanned for zero-confirmation discovery: 'mempool-tx' events from the backend,
 *   a full pass at start and a periodic getMempoolTxids diff as a safety net. Mempool finds are
 *   written in their own transaction. The public index holds on-chain candidates only.
 * - Events are never published directly from a scan: they are outbox rows (./drop-store.ts)
 *   delivered after commit to the EventBus / `onEvent`, with the delivery cursor persisted, so a
 *   kill -9 at any point loses none and a replay carries the same stable ids.
 * - Events: `drop.pending` (mempool), `drop.confirmed` once per confirmation (the block that
 *   mines it; `confirmations` = tip - height + 1 when that block was processed, so more than 1
 *   during a rescan; not re-sent as more blocks arrive), `drop.reorged` when that block is
 *   disconnected (a later re-mine sends `drop.confirmed` again, with a new id), `drop.evicted`
 *   when a pending drop's tx left the mempool unmined (RBF replacement, expiry, eviction; a later
 *   return to the mempool or a block sends `drop.pending` / `drop.confirmed` again). `watch.progress`
 *   {height, tip} is sent during catch-up, throttled; it is ephemeral (not in the outbox).
 * - Eviction is decided by the mempool diff only, in this order: list the mempool, then catch
 *   the follower up to the node's tip (so a tx mined before the listing is confirmed first), then
 *   retract the drops still pending whose txid was neither listed nor announced by a 'mempool-tx'
 *   event since the listing began. A tx that merely got mined is therefore never reported evicted.
 * - Chain data never throws out of here: a malformed block, an unknown prevout, an invalid
 *   point or an undecodable payload means "no candidate" / "no drop" (reported to onWarning).
 */
import type Database from 'better-sqlite3';
import { parseTransaction, type Tx } from '../../chain/block.js';
import type { ChainEvent, ChainSource } from '../../chain/types.js';
import type { EventBus } from '../../util/event-bus.js';
import { DeaddropError } from '../../util/errors.js';
import { type CatchUpResult, ChainFollower, type FollowedBlock } from '../../chain/follow/follower.js';
import { Lifecycle } from '../../util/lifecycle.js';
import { ReportThrottle } from '../../util/time.js';
import { DropStore, type DropRecord, type FoundDrop, type IndexedCandidate, type OutboxEvent } from './drop-store.js';
import { PrevoutFetcher, type FreshPrevout } from '../../chain/follow/prevouts.js';
import type { Prevout } from '../../chain/types.js';
import { candidateTweak, checkIdentities, dropOutputs, spentOutpoints, trialDecrypt, type WatchIdentity } from './candidates.js';
import { prevoutsFromSpent, type BlockScan } from './block-scan.js';
import { defaultScanThreads, InlineScanner, ScanPool, type BlockScanner } from './scan-pool.js';
import { IndexService, INDEX_FROM_KEY, type IndexBounds } from './index-service.js';

export type { WatchIdentity } from './candidates.js';

/** An event the watcher delivers: outbox events (with `seq`) and progress events. */
export interface WatcherEvent {
  readonly id: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
  /** Outbox sequence number (drop events only). */
  readonly seq?: number;
}

export interface DropWatcherOptions {
  readonly source: ChainSource;
  /** A store, or a path to open one at (closed by close()). */
  readonly store: DropStore | string;
  /** Local identities to decrypt for; none still builds the public index. */
  readonly identities?: readonly WatchIdentity[];
  /** First height scanned when there is no cursor yet (the invite's birthday). Default 0. */
  readonly birthday?: number;
  /** Forget the cursor and rescan from `birthday` (`deaddrop watch --from`). */
  readonly rescan?: boolean;
  /** Follower cursor name and outbox consumer name. Default 'drops'. */
  readonly name?: string;
  /** Publish events here. */
  readonly events?: EventBus;
  readonly onEvent?: (event: WatcherEvent) => void;
  /** Follow tip events and poll (default true); false for one-shot `catchUp()` use. */
  readonly follow?: boolean;
  /**
   * Threads that scan blocks (candidate extraction, tweak data, trial decryption): worker
   * threads when more than 1, this thread when 1 (the path before parallel scanning). Default:
   * every core (os.availableParallelism()).
   */
  readonly scanThreads?: number;
  /**
   * Scan time on this thread (ms) after which a catch-up starts the worker threads: they cost
   * about 0.6 s of CPU to start, so small blocks never start them. Default 300; 0 starts them
   * with the first block of a catch-up.
   */
  readonly scanPoolAfterMs?: number;
  /**
   * Blocks fetched and scanned ahead of the one being committed (commits stay in order, one
   * transaction per block). Bounds memory: about this many raw blocks at once. Default 4 per
   * scan thread, 1 with one thread.
   */
  readonly prefetch?: number;
  /** Follower poll period. Default 2000 ms. */
  readonly pollIntervalMs?: number;
  /** Scan the mempool (default: when the backend can list it). */
  readonly mempool?: boolean;
  /** Safety-net mempool diff period; 'mempool-tx' events are handled at once. Default 5000 ms; 0 disables. */
  readonly mempoolPollMs?: number;
  /** Minimum time between two progress events. Default 250 ms (PROGRESS_INTERVAL_MS). */
  readonly progressIntervalMs?: number;
  readonly onError?: (err: unknown) => void;
  /** Chain data that could not be scanned (malformed block, unknown prevout). Never secret. */
  readonly onWarning?: (message: string) => void;
}

/** Counters since the watcher was opened (status output, tests, benchmarks). */
export interface WatcherStats {
  /** Blocks scanned (prepared), including ones whose transaction was retried. */
  blocks: number;
  /** Blocks that failed to parse and were skipped. */
  malformedBlocks: number;
  /** Block candidates with tweak data (indexed). */
  candidates: number;
  /** Candidates skipped: a prevout unknown to the backend or no eligible input. */
  unscannable: number;
  /** Mempool transactions looked at. */
  mempoolTxs: number;
  /** Mempool transactions that were candidates with tweak data (trial-decrypted). */
  mempoolCandidates: number;
  /** Pending drops retracted because their tx left the mempool unmined. */
  evicted: number;
  /** Drops opened (blocks and mempool; the same drop may count twice). */
  opened: number;
  /** Blocks scanned on the worker pool (the rest on the watcher's thread). */
  pooledBlocks: number;
}

/** What `prepare` hands to `onConnect`. */
interface PreparedBlock {
  readonly rows: IndexedCandidate[];
  readonly found: FoundDrop[];
  readonly fresh: FreshPrevout[];
  readonly tip: number;
}

const PREVOUT_CACHE_ROWS = 200_000;
/** Scan time on this thread after which a catch-up starts the worker pool (see #scannerFor). */
const POOL_AFTER_MS = 300;
/** Bound on remembered mempool txids when no diff runs to trim them. */
const MAX_MEMPOOL_SEEN = 500_000;

/**
 * Scans the chain and the mempool for dead drops addressed to the local identities and keeps
 * the public candidate index.
 * @example
 * const w = new DropWatcher({ source, store: 'watcher.sqlite', identities: [me], birthday, events: bus });
 * await w.ready();
 * // ... bus receives drop.pending / drop.confirmed / drop.reorged / watch.progress
 * await w.close();
 */
export class DropWatcher {
  readonly #opts: DropWatcherOptions;
  readonly #source: ChainSource;
  readonly #identities: readonly WatchIdentity[];
  readonly #name: string;
  #store: DropStore | null = null;
  #follower: ChainFollower<PreparedBlock> | null = null;
  #fetcher: PrevoutFetcher | null = null;
  /** The scan pool (more than one scan thread), used while catching up; see #scannerFor. */
  #pool: ScanPool | null = null;
  #inline: BlockScanner = new InlineScanner([]);
  /** Time spent scanning on this thread since open (decides when the pool is worth starting). */
  #inlineScanMs = 0;
  #index: IndexService | null = null;
  readonly #life = new Lifecycle('drop watcher', { open: (signal) => this.#open(signal), close: () => this.#close() });
  #unsubscribe: (() => void) | null = null;
  #mempoolTimer: ReturnType<typeof setInterval> | null = null;
  #mempoolSeen = new Set<string>();
  #mempoolQueue: Promise<void> = Promise.resolve();
  #mempoolInflight = new Set<string>();
  /** Txids announced by 'mempool-tx' events since the current mempool listing began. */
  #mempoolHeard = new Set<string>();
  /** Diffs run one at a time (each one's eviction check relies on its own listing). */
  #diffQueue: Promise<void> = Promise.resolve();
  #tip = -1;
  #tipFetchedAt = 0;
  readonly #progressReports: ReportThrottle;
  /** Height of the last progress event published (each height is announced once). */
  #lastProgressHeight = -1;
  #connects = 0;
  readonly #stats: WatcherStats = { blocks: 0, malformedBlocks: 0, candidates: 0, unscannable: 0, mempoolTxs: 0, mempoolCandidates: 0, evicted: 0, opened: 0, pooledBlocks: 0 };

  constructor(opts: DropWatcherOptions) {
    const birthday = opts.birthday ?? 0;
    if (!Number.isSafeInteger(birthday) || birthday < 0) throw new RangeError(`birthday must be a non-negative integer, got ${birthday}`);
    const threads = opts.scanThreads;
    if (threads !== undefined && (!Number.isSafeInteger(threads) || threads < 1)) throw new RangeError(`scanThreads must be a positive integer, got ${threads}`);
    checkIdentities(opts.identities ?? []);
    this.#opts = opts;
    this.#progressReports = new ReportThrottle(opts.progressIntervalMs);
    this.#source = opts.source;
    this.#identities = [...(opts.identities ?? [])];
    this.#name = opts.name ?? 'drops';
  }

  /** Opens the store and the source, redelivers undelivered events, starts following. Memoized. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  async #open(signal: AbortSignal): Promise<void> {
    const store = typeof this.#opts.store === 'string' ? DropStore.open(this.#opts.store) : this.#opts.store;
    this.#store = store;
    const birthday = this.#opts.birthday ?? 0;
    this.#fetcher = new PrevoutFetcher(this.#source, store);
    const threads = this.#opts.scanThreads ?? defaultScanThreads();
    this.#inline = new InlineScanner(this.#identities);
    if (threads > 1) this.#pool = new ScanPool({ size: threads, identities: this.#identities });
    this.#follower = new ChainFollower<PreparedBlock>({
      source: this.#source, db: store.db, name: this.#name, startHeight: birthday,
      consumer: {
        prepare: (h, hash, raw) => this.#prepare(h, hash, raw),
        onConnect: (h, hash, _raw, _db, prepared) => this.#onConnect({ height: h, hash }, prepared),
        onDisconnect: (block, db) => this.#onDisconnect(block, db),
      },
      follow: this.#opts.follow ?? true,
      prefetch: this.#opts.prefetch ?? (threads > 1 ? threads * 4 : 1),
      pollIntervalMs: this.#opts.pollIntervalMs ?? 2000,
      onError: (err) => this.#opts.onError?.(err),
      onCaughtUp: (cursor, result) => {
        if (result.connected > 0) this.#progress(cursor?.height ?? -1, true);
      },
    });
    this.#initIndexStart(store, birthday);
    this.#index = new IndexService(store, () => this.indexBounds());
    this.#flush();
    await this.#source.ready();
    if (signal.aborted) return;
    await this.#follower.ready();
    if (signal.aborted || this.#opts.follow === false) return;
    this.#startMempool();
  }

  /**
   * Records where the index starts. A rescan clears the cursor and the rows at or above the new
   * start (they are rewritten); rows below it stay and remain contiguous with the rescan.
   */
  #initIndexStart(store: DropStore, birthday: number): void {
    const follower = this.#follower!;
    store.transaction(() => {
      const from = store.getMeta(INDEX_FROM_KEY);
      if (this.#opts.rescan) {
        follower.store.clear();
        store.deleteCandidatesFrom(birthday);
        store.setMeta(INDEX_FROM_KEY, String(Math.min(from === undefined ? birthday : Number(from), birthday)));
      } else if (from === undefined || follower.cursor() === null) {
        store.setMeta(INDEX_FROM_KEY, String(birthday));
      }
    });
  }

  /** Stops following and the mempool scan, waits for work in flight, closes an owned store. Idempotent. */
  close(): Promise<void> {
    return this.#life.close();
  }

  async #close(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#mempoolTimer) clearInterval(this.#mempoolTimer);
    this.#mempoolTimer = null;
    await this.#follower?.close();
    await this.#mempoolQueue.catch(() => undefined);
    await this.#diffQueue;
    // After the follower: its run in progress waits for its scans before it settles.
    await this.#pool?.close();
    if (typeof this.#opts.store === 'string') this.#store?.close();
  }

  #live(): { store: DropStore; follower: ChainFollower<PreparedBlock> } {
    if (this.#life.closing) throw DeaddropError.closed('drop watcher');
    if (!this.#store || !this.#follower) throw new DeaddropError('NOT_INITIALIZED', 'drop watcher: call ready() first');
    return { store: this.#store, follower: this.#follower };
  }

  /** Brings the watcher to the node's tip now (the mempool is not scanned). */
  async catchUp(): Promise<CatchUpResult> {
    await this.ready();
    const result = await this.#live().follower.catchUp();
    this.#flush();
    return result;
  }

  /**
   * Scans the whole mempool once now (new txids only) and waits for it; then catches up with the
   * blocks and retracts pending drops whose tx left the mempool unmined (`drop.evicted`).
   */
  async scanMempool(): Promise<void> {
    await this.ready();
    await this.#diffMempool();
  }

  /**
   * Starts the scan workers now and resolves once one has loaded (nothing to do with one scan
   * thread). A catch-up starts them by itself when they pay off; benchmarks and tests call this
   * to leave the start-up out or to be sure the pool is used.
   */
  async startScanWorkers(): Promise<void> {
    await this.ready();
    this.#live();
    await this.#pool?.whenWarm();
  }

  /** Counters since open (a copy). */
  stats(): WatcherStats {
    return { ...this.#stats };
  }

  /** The last block scanned, or null. */
  cursor(): FollowedBlock | null {
    return this.#live().follower.cursor();
  }

  /** Drops found so far. */
  drops(): DropRecord[] {
    return this.#live().store.listDrops();
  }

  /** The store (for the outbox and the CLI's `drops list`). */
  get store(): DropStore {
    return this.#live().store;
  }

  /** The public index over this watcher's store. */
  get index(): IndexService {
    this.#live();
    return this.#index!;
  }

  /** Heights the public index covers. */
  indexBounds(): IndexBounds {
    const { store, follower } = this.#live();
    const from = store.getMeta(INDEX_FROM_KEY);
    const cursor = follower.cursor();
    if (from === undefined || cursor === null || cursor.height < Number(from)) return { indexedFrom: null, indexedTip: null };
    return { indexedFrom: Number(from), indexedTip: cursor.height };
  }

  // -- Blocks -------------------------------------------------------------------------------

  async #prepare(height: number, hash: string, raw: Uint8Array): Promise<PreparedBlock> {
    await this.#refreshTip(height);
    this.#stats.blocks++;
    const scanner = this.#scannerFor(height);
    const inline = scanner === this.#inline;
    if (!inline) this.#stats.pooledBlocks++;
    const t0 = performance.now();
    const scan = await scanner.scan(raw);
    if (inline) this.#inlineScanMs += performance.now() - t0;
    if (scan.malformed !== undefined) {
      this.#stats.malformedBlocks++;
      this.#warn(`block ${hash} at height ${height} is malformed and was skipped: ${scan.malformed}`);
    }
    if (scan.candidates.length === 0) return { rows: [], found: [], fresh: [], tip: Math.max(this.#tip, height) };
    const { found: prevouts, fresh } = await this.#blockPrevouts(hash, scan);
    const t1 = performance.now();
    const done = await scanner.finish(scan.candidates, prevouts);
    if (inline) this.#inlineScanMs += performance.now() - t1;
    this.#stats.candidates += done.candidates;
    this.#stats.unscannable += done.unscannable;
    this.#stats.opened += done.found.length;
    const rows: IndexedCandidate[] = done.rows.map((r) => ({ height, blockHash: hash, ...r }));
    return { rows, found: done.found, fresh, tip: Math.max(this.#tip, height) };
  }

  /**
   * The pool while catching up (at least two blocks per scan thread still to go), this thread
   * otherwise: following the tip means one block now and then, for which starting worker
   * threads (and keeping them) buys nothing. Both give the same results.
   */
  #scannerFor(height: number): BlockScanner {
    const pool = this.#pool;
    if (pool === null || this.#tip - height < 2 * pool.threads) return this.#inline;
    // Workers cost about 0.6 s of CPU to start (a thread, then its modules): worth it only once
    // scanning here has cost that much; small blocks (regtest, tests) never start them. Blocks
    // are scanned here until they have loaded.
    if (this.#inlineScanMs < (this.#opts.scanPoolAfterMs ?? POOL_AFTER_MS) && !pool.warm) return this.#inline;
    pool.startWorkers();
    return pool.warm ? pool : this.#inline;
  }

  /**
   * The candidates' prevouts: from the node's spent outputs of the block when it serves them
   * (Core REST spenttxouts, one request), else through the fetcher (cache, getblock 3, getrawtransaction).
   */
  async #blockPrevouts(hash: string, scan: BlockScan): Promise<{ found: ReadonlyMap<string, Prevout>; fresh: FreshPrevout[] }> {
    if (this.#source.getBlockSpentOutputs !== undefined) {
      const spent = await this.#source.getBlockSpentOutputs(hash);
      const found = spent === null ? null : prevoutsFromSpent(spent, scan);
      if (found !== null) return { found, fresh: [] };
    }
    return this.#fetcher!.fetch(scan.candidates.flatMap((c) => c.outpoints), { blockHash: hash });
  }

  #onConnect(block: FollowedBlock, prepared: PreparedBlock | undefined): void {
    const store = this.#store!;
    const p = prepared ?? { rows: [], found: [], fresh: [], tip: block.height };
    store.putPrevouts(p.fresh);
    store.connectBlock(block, p.rows, p.found, p.tip);
    if (++this.#connects % 1000 === 0) store.prunePrevouts(PREVOUT_CACHE_ROWS);
    // Runs after the follower's transaction commits (it is synchronous).
    queueMicrotask(() => {
      this.#flush();
      this.#progress(block.height, false);
    });
  }

  #onDisconnect(block: FollowedBlock, _db: Database.Database): void {
    this.#store!.disconnectBlock(block);
    queueMicrotask(() => this.#flush());
  }

  async #refreshTip(height: number): Promise<void> {
    const now = Date.now();
    if (height <= this.#tip && now - this.#tipFetchedAt < 1000) return;
    this.#tipFetchedAt = now;
    try {
      this.#tip = Math.max(height, (await this.#source.getTip()).height);
    } catch {
      this.#tip = Math.max(this.#tip, height);
    }
  }

  // -- Mempool ------------------------------------------------------------------------------

  #startMempool(): void {
    const want = this.#opts.mempool ?? this.#source.capabilities.mempool;
    if (!want || !this.#source.capabilities.mempool || this.#identities.length === 0) return;
    this.#unsubscribe = this.#source.subscribe((ev: ChainEvent) => {
      if (ev.type === 'mempool-tx') {
        if (this.#mempoolHeard.size < MAX_MEMPOOL_SEEN) this.#mempoolHeard.add(ev.txid);
        this.#enqueueMempool([ev.txid], ev.raw);
      }
      else if (ev.type === 'tip') this.#tip = Math.max(this.#tip, ev.tip.height);
    });
    void this.#diffMempool().catch((err: unknown) => this.#opts.onError?.(err));
    const every = this.#opts.mempoolPollMs ?? 5000;
    if (every > 0) {
      this.#mempoolTimer = setInterval(() => void this.#diffMempool().catch((err: unknown) => this.#opts.onError?.(err)), every);
      this.#mempoolTimer.unref();
    }
  }

  /** Checks every mempool txid not seen in the previous diff; forgets txids that left; retracts evicted drops. */
  #diffMempool(): Promise<void> {
    const next = this.#diffQueue.then(() => this.#diffOnce());
    this.#diffQueue = next.catch(() => undefined);
    return next;
  }

  async #diffOnce(): Promise<void> {
    if (this.#life.closing || this.#identities.length === 0) return;
    this.#mempoolHeard.clear();
    const now = await this.#source.getMempoolTxids();
    const listed = new Set(now);
    const fresh = now.filter((t) => !this.#mempoolSeen.has(t));
    this.#mempoolSeen = new Set(now); // forget txids that left: memory stays bounded by the mempool
    await this.#enqueueMempool(fresh);
    await this.#evictGone(listed);
  }

  /**
   * Retracts pending drops whose tx is not in `listed` (the mempool as listed just before). The
   * follower first catches up with the node's tip, which is at least as new as the listing, so a
   * tx that left the mempool because it was mined is confirmed by then and no longer pending.
   */
  async #evictGone(listed: ReadonlySet<string>): Promise<void> {
    const gone = (): DropRecord[] => this.#store!.pendingDrops().filter((d) => !listed.has(d.txid) && !this.#mempoolHeard.has(d.txid));
    if (this.#life.closing || gone().length === 0) return;
    try {
      await this.#follower!.catchUp();
    } catch (err) {
      if (this.#life.closing) return;
      throw err;
    }
    await this.#mempoolQueue; // mempool finds announced meanwhile are recorded first
    if (this.#life.closing) return;
    const store = this.#store!;
    const events = store.transaction(() => gone().flatMap((d) => store.recordEvicted(d.id) ?? []));
    for (const e of events) this.#mempoolSeen.delete(e.data['txid'] as string); // look again if it comes back
    this.#stats.evicted += events.length;
    if (events.length > 0) this.#flush();
  }

  #enqueueMempool(txids: readonly string[], raw?: Uint8Array): Promise<void> {
    const todo = txids.filter((t) => !this.#mempoolInflight.has(t));
    if (this.#mempoolSeen.size > MAX_MEMPOOL_SEEN) this.#mempoolSeen.clear();
    for (const t of todo) {
      this.#mempoolInflight.add(t);
      this.#mempoolSeen.add(t);
    }
    const run = async (): Promise<void> => {
      for (let i = 0; i < todo.length && !this.#life.closing; i += 16) {
        await Promise.all(todo.slice(i, i + 16).map((t) => this.#checkMempoolTx(t, todo.length === 1 ? raw : undefined)));
      }
    };
    const next = this.#mempoolQueue.then(run, run).finally(() => {
      for (const t of todo) this.#mempoolInflight.delete(t);
    });
    this.#mempoolQueue = next.catch((err: unknown) => this.#opts.onError?.(err));
    return next;
  }

  async #checkMempoolTx(txid: string, raw?: Uint8Array): Promise<void> {
    try {
      await this.#tryMempoolTx(txid, raw);
    } catch (err) {
      this.#mempoolSeen.delete(txid); // a backend failure: look again at the next diff
      this.#opts.onError?.(err);
    }
  }

  async #tryMempoolTx(txid: string, raw?: Uint8Array): Promise<void> {
    let tx: Tx;
    try {
      tx = parseTransaction(raw ?? (await this.#source.getRawTransaction(txid)));
    } catch {
      return; // gone from the mempool meanwhile, or not parseable: nothing to find
    }
    if (tx.txid !== txid || this.#life.closing) return;
    this.#stats.mempoolTxs++;
    const outputs = dropOutputs(tx).map((o) => ({ vout: o.vout, data: o.data.slice() }));
    if (outputs.length === 0) return;
    const { found: prevouts, fresh } = await this.#fetcher!.fetch(spentOutpoints(tx));
    if (this.#life.closing) return;
    const store = this.#store!;
    const tweak = candidateTweak(tx, prevouts);
    if (tweak !== null) this.#stats.mempoolCandidates++;
    const drops = tweak === null ? [] : trialDecrypt(txid, tweak, outputs, this.#identities);
    this.#stats.opened += drops.length;
    store.transaction(() => {
      store.putPrevouts(fresh);
      for (const d of drops) store.recordPending(d);
    });
    if (drops.length > 0) this.#flush();
  }

  // -- Events -------------------------------------------------------------------------------

  /** Delivers outbox rows after the persisted cursor, then persists it. Synchronous. */
  #flush(): void {
    const store = this.#store;
    if (!store || !store.db.open) return;
    store.deliver(`bus:${this.#name}`, (row) => this.#deliver(row));
  }

  #deliver(row: OutboxEvent | WatcherEvent): void {
    const event: WatcherEvent = { id: row.id, type: row.type, data: row.data, ...('seq' in row ? { seq: row.seq } : {}) };
    this.#opts.events?.publish(event.type, event.id, event.data);
    try {
      this.#opts.onEvent?.(event);
    } catch {
      // A failing consumer must not stop the watcher.
    }
  }

  #progress(height: number, final: boolean): void {
    // The last block's own progress (queued after its commit) and the final one at catch-up
    // name the same height: publishing both sent one event twice with the same id.
    if (height < 0 || height === this.#lastProgressHeight) return;
    if (!this.#progressReports.take(final)) return;
    this.#lastProgressHeight = height;
    const tip = Math.max(this.#tip, height);
    this.#deliver({ id: `watch.progress:${this.#name}:${height}`, type: 'watch.progress', data: { height, tip } });
  }

  #warn(message: string): void {
    this.#opts.onWarning?.(message);
  }
}
