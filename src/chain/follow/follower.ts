/**
 * ChainFollower: the one place that handles reorgs (after LND's chainntnfs `HandleMissedBlocks`
 * / `RewindChain`). It walks a full-block ChainSource from a cursor kept in sqlite and turns
 * whatever the node did (new blocks, reorgs, a restart of either side) into an ordered stream of
 * `onDisconnect` (stale blocks, newest first) and `onConnect` (new blocks, oldest first) calls.
 *
 * Crash safety: each call runs inside one sqlite transaction together with the cursor update,
 * so after a kill -9 the consumer's state and the cursor agree and no block is lost or applied
 * twice. The consumer's handlers are synchronous (better-sqlite3 transactions are); async work
 * for a block (fetching prevouts, say) goes in `prepare`, which runs before the transaction.
 *
 * Triggers: the source's 'tip' and 'reconnected' events, a periodic poll, and `catchUp()`.
 * Runs are serialized; triggers arriving during a run coalesce into one more run.
 *
 * DEV NOTES
 * - The cursor is the highest row of follower_blocks; the last `reorgSafetyDepth` hashes are kept.
 * - Common ancestor: walk the stored hashes down from min(cursor, tip) and compare each with the
 *   node's hash at that height. A reorg deeper than the window is a CONFLICT error (as in LND).
 * - Every block served is checked: it must hash to the requested hash and link to the cursor.
 *   A block that does not link means the chain moved during the walk: start over.
 * - With `startHeight` > 0 the block below it is stored as a base (never passed to the consumer).
 * - `prefetch` > 1: blocks are fetched and prepared up to that many ahead (a bounded window),
 *   then committed one by one in height order. A block that fails or does not link ends the pass
 *   after the blocks before it were committed; the window is drained (never left running) and the
 *   rest is fetched again by the next pass. The crash-safety argument above is unchanged.
 */
import type Database from 'better-sqlite3';
import { blockHash, HEADER_SIZE } from '../block.js';
import { hashToHex } from '../bytes.js';
import type { ChainEvent, ChainSource } from '../types.js';
import { DeaddropError } from '../../util/errors.js';
import { Lifecycle } from '../../util/lifecycle.js';
import { FollowerStore, type FollowedBlock } from './follower-store.js';

export type { FollowedBlock } from './follower-store.js';

/** How many recent block hashes are kept to find the common ancestor after a reorg. */
export const REORG_SAFETY_DEPTH = 100;

/**
 * What a follower drives. `onConnect`/`onDisconnect` run inside the sqlite transaction that moves
 * the cursor: they must be synchronous and use `db` (the follower's database) for their writes.
 * Throwing rolls back both and the block is retried on the next trigger.
 */
export interface FollowerConsumer<P = unknown> {
  /**
   * Async work before the block's transaction (must not write to the db). Its result is passed to
   * onConnect. With `prefetch` > 1, several run at once, in any order. It may take ownership of
   * `rawBlock` (transfer it to a worker thread): onConnect then gets the emptied buffer.
   */
  prepare?(height: number, hash: string, rawBlock: Uint8Array): Promise<P>;
  onConnect(height: number, hash: string, rawBlock: Uint8Array, db: Database.Database, prepared: P | undefined): void;
  /** `block` is no longer on the best chain; undo what onConnect did for it. */
  onDisconnect(block: FollowedBlock, db: Database.Database): void;
}

export interface ChainFollowerOptions<P = unknown> {
  readonly source: ChainSource;
  readonly db: Database.Database;
  /** Cursor name; several followers can share one database under different names. */
  readonly name: string;
  readonly consumer: FollowerConsumer<P>;
  /** First height passed to the consumer (a wallet's birthday). Default 0. */
  readonly startHeight?: number;
  /** Default REORG_SAFETY_DEPTH. */
  readonly reorgSafetyDepth?: number;
  /** Background poll period when following. Default 2000 ms; 0 disables polling. */
  readonly pollIntervalMs?: number;
  /** Subscribe to events and poll after ready() (default true). False for one-shot `catchUp()` use. */
  readonly follow?: boolean;
  /** Errors from background runs (the next trigger retries). */
  readonly onError?: (err: unknown) => void;
  /**
   * Blocks fetched and prepared ahead of the one being committed (>= 1; default 1: one at a
   * time). Commits stay in height order, one transaction per block; only `prepare` overlaps.
   * Memory: up to this many raw blocks and their prepared results at once.
   */
  readonly prefetch?: number;
  /** Called after every run that reached the tip. */
  readonly onCaughtUp?: (cursor: FollowedBlock | null, result: CatchUpResult) => void;
}

export interface CatchUpResult {
  readonly connected: number;
  readonly disconnected: number;
  readonly cursor: FollowedBlock | null;
}

/** Display-order previous-block hash from a raw block's header. */
function headerPrevHash(raw: Uint8Array): string {
  return hashToHex(raw.subarray(4, 36));
}

type Step = 'done' | 'restart';

/** A block fetched, checked and prepared, waiting for its turn to be committed. */
interface Fetched<P> {
  readonly height: number;
  readonly hash: string;
  readonly prevHash: string;
  readonly raw: Uint8Array;
  readonly prepared: P | undefined;
}

/**
 * Heights `from..to` fetched and prepared up to `window` ahead of the one being committed.
 * `next()` hands them out strictly in height order; `drain()` waits for whatever is still in
 * flight (and swallows its errors: those blocks are fetched again by the next pass).
 */
class Prefetch<P> {
  readonly #load: (height: number) => Promise<Fetched<P>>;
  readonly #to: number;
  readonly #window: number;
  readonly #queue: Promise<Fetched<P>>[] = [];
  #next: number;

  constructor(load: (height: number) => Promise<Fetched<P>>, from: number, to: number, window: number) {
    this.#load = load;
    this.#next = from;
    this.#to = to;
    this.#window = window;
  }

  next(): Promise<Fetched<P>> | null {
    while (this.#queue.length < this.#window && this.#next <= this.#to) {
      const p = this.#load(this.#next++);
      p.catch(() => undefined); // observed when its turn comes, or in drain()
      this.#queue.push(p);
    }
    return this.#queue.shift() ?? null;
  }

  async drain(): Promise<void> {
    this.#next = this.#to + 1;
    await Promise.allSettled(this.#queue.splice(0));
  }
}

/**
 * Follows the best chain of a full-block ChainSource for one consumer.
 * @example
 * const f = new ChainFollower({ source, db, name: 'wallet', consumer, startHeight: birthday });
 * await f.ready();        // subscribes and polls in the background
 * await f.catchUp();      // or drive it by hand
 * await f.close();
 */
export class ChainFollower<P = unknown> {
  readonly store: FollowerStore;
  readonly #opts: ChainFollowerOptions<P>;
  readonly #source: ChainSource;
  readonly #db: Database.Database;
  readonly #depth: number;
  readonly #start: number;
  readonly #prefetch: number;
  #queue: Promise<unknown> = Promise.resolve();
  #queued = false;
  readonly #life = new Lifecycle('chain follower', { open: (signal) => this.#open(signal), close: () => this.#close() });
  #unsubscribe: (() => void) | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #lastError: unknown = null;

  constructor(opts: ChainFollowerOptions<P>) {
    const depth = opts.reorgSafetyDepth ?? REORG_SAFETY_DEPTH;
    const start = opts.startHeight ?? 0;
    if (!Number.isSafeInteger(depth) || depth < 2) throw new RangeError(`reorgSafetyDepth must be an integer >= 2; got ${depth}`);
    if (!Number.isSafeInteger(start) || start < 0) throw new RangeError(`startHeight must be a non-negative integer; got ${start}`);
    const prefetch = opts.prefetch ?? 1;
    if (!Number.isSafeInteger(prefetch) || prefetch < 1) throw new RangeError(`prefetch must be a positive integer; got ${prefetch}`);
    this.#prefetch = prefetch;
    this.#opts = opts;
    this.#source = opts.source;
    this.#db = opts.db;
    this.#depth = depth;
    this.#start = start;
    this.store = new FollowerStore(opts.db, opts.name);
  }

  /** The last connected block (or the base), or null before the first. */
  cursor(): FollowedBlock | null {
    return this.store.cursor();
  }

  /** The last error of a background run, if the latest run failed. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** Opens the source and, when following, subscribes, starts polling and schedules a catch-up. Memoized. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  async #open(signal: AbortSignal): Promise<void> {
    if (!this.#source.capabilities.fullBlocks) {
      throw DeaddropError.unsupported(`the ${this.#source.kind} backend serves no full blocks; a chain follower needs them`);
    }
    await this.#source.ready();
    if (signal.aborted || this.#opts.follow === false) return;
    this.#unsubscribe = this.#source.subscribe((ev: ChainEvent) => {
      if (ev.type === 'tip' || ev.type === 'reconnected') this.#schedule();
    });
    const poll = this.#opts.pollIntervalMs ?? 2000;
    if (poll > 0) this.#timer = setInterval(() => this.#schedule(), poll);
    this.#schedule();
  }

  /** Stops events and polling and waits for a run in progress. Idempotent. */
  close(): Promise<void> {
    return this.#life.close();
  }

  async #close(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#queue.catch(() => undefined);
  }

  /** Brings the cursor to the node's tip now (after any run in progress). */
  catchUp(): Promise<CatchUpResult> {
    if (this.#life.closing) return Promise.reject(DeaddropError.closed('chain follower'));
    return this.#enqueue(() => this.#run());
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #schedule(): void {
    if (this.#life.closing || this.#queued) return;
    this.#queued = true;
    this.#enqueue(() => {
      this.#queued = false;
      return this.#life.closing ? Promise.resolve(null) : this.#run();
    }).then(
      () => {
        this.#lastError = null;
      },
      (err: unknown) => {
        this.#lastError = err;
        this.#opts.onError?.(err);
      },
    );
  }

  async #run(): Promise<CatchUpResult> {
    await this.ready();
    const counts = { connected: 0, disconnected: 0 };
    for (;;) {
      if (this.#life.closing) break;
      const step = await this.#step(counts);
      if (step === 'done') break;
    }
    const result: CatchUpResult = { ...counts, cursor: this.store.cursor() };
    if (!this.#life.closing) this.#opts.onCaughtUp?.(result.cursor, result);
    return result;
  }

  /** One pass: reconcile with the tip, then connect towards it. 'restart' when the chain moved. */
  async #step(counts: { connected: number; disconnected: number }): Promise<Step> {
    const tip = await this.#source.getTip();
    let cursor = this.store.cursor();
    if (!cursor && this.#start > 0) {
      if (tip.height < this.#start - 1) return 'done';
      const base = { height: this.#start - 1, hash: await this.#source.getBlockHash(this.#start - 1) };
      this.#tx(() => this.store.connect(base, this.#depth));
      cursor = base;
    }
    if (cursor) {
      const ancestor = await this.#findAncestor(cursor, tip.height, tip.hash, counts);
      if (ancestor === null) return 'restart';
      counts.disconnected += this.#rewindTo(ancestor.height);
      cursor = ancestor;
      if (cursor.hash === tip.hash) return 'done';
      if (cursor.height >= tip.height) return 'restart';
    }
    const ahead = new Prefetch<P>((h) => this.#fetchPrepared(h, h === tip.height ? tip.hash : undefined), cursor ? cursor.height + 1 : 0, tip.height, this.#prefetch);
    try {
      for (let f = ahead.next(); f !== null; f = ahead.next()) {
        if (this.#life.closing) return 'done';
        const next = this.#commit(await f, cursor);
        if (!next) return 'restart';
        cursor = next;
        counts.connected++;
      }
    } finally {
      await ahead.drain();
    }
    return 'restart'; // re-read the tip: more blocks may have come in meanwhile
  }

  /**
   * The newest stored block still on the node's chain. When none is, but the window reaches down
   * to the base (nothing the consumer holds is below it), everything is rewound and null returned
   * so the next pass starts afresh; otherwise the reorg is deeper than the window: CONFLICT.
   */
  async #findAncestor(cursor: FollowedBlock, tipHeight: number, tipHash: string, counts: { disconnected: number }): Promise<FollowedBlock | null> {
    const top = Math.min(cursor.height, tipHeight);
    for (const b of this.store.recentAtOrBelow(top)) {
      const nodeHash = b.height === tipHeight ? tipHash : await this.#source.getBlockHash(b.height);
      if (nodeHash === b.hash) return b;
    }
    const all = this.store.recentAtOrBelow(Number.MAX_SAFE_INTEGER);
    const lowest = all[all.length - 1];
    if (lowest !== undefined && lowest.height <= Math.max(0, this.#start - 1)) {
      counts.disconnected += this.#rewindTo(-1);
      this.#tx(() => this.store.clear());
      return null;
    }
    throw new DeaddropError('CONFLICT', `reorg deeper than ${this.#depth} blocks below height ${cursor.height}: no common ancestor in the stored window`, {
      follower: this.store.name,
      cursorHeight: cursor.height,
    });
  }

  /** Disconnects every stored block above `height`, newest first. Returns how many the consumer saw. */
  #rewindTo(height: number): number {
    const stale = this.store.recentAtOrBelow(Number.MAX_SAFE_INTEGER).filter((b) => b.height > height);
    for (const b of stale) {
      this.#tx(() => {
        if (b.height >= this.#start) this.#opts.consumer.onDisconnect(b, this.#db);
        this.store.disconnect(b.height);
      });
    }
    return stale.filter((b) => b.height >= this.#start).length;
  }

  /** Fetches and checks one block and runs the consumer's `prepare` on it (no db writes). */
  async #fetchPrepared(height: number, knownHash: string | undefined): Promise<Fetched<P>> {
    const hash = knownHash ?? (await this.#source.getBlockHash(height));
    const raw = await this.#source.getRawBlock(hash);
    if (!(raw instanceof Uint8Array) || raw.length <= HEADER_SIZE || blockHash(raw) !== hash) {
      throw DeaddropError.protocol(`backend served a block that does not hash to ${hash} (height ${height})`);
    }
    // Read before prepare: a consumer may hand the buffer to a worker thread (transfer).
    const prevHash = headerPrevHash(raw);
    const prepared = this.#opts.consumer.prepare ? await this.#opts.consumer.prepare(height, hash, raw) : undefined;
    return { height, hash, prevHash, raw, prepared };
  }

  /** Applies one fetched block. Null when it does not link to `cursor` (chain moved). */
  #commit(f: Fetched<P>, cursor: FollowedBlock | null): FollowedBlock | null {
    if (cursor && f.prevHash !== cursor.hash) return null;
    if (this.#life.closing) return null;
    // Runs are serialized, but another follower on the same database and name could have moved it.
    if (this.store.cursor()?.hash !== cursor?.hash) return null;
    const block = { height: f.height, hash: f.hash };
    this.#tx(() => {
      this.#opts.consumer.onConnect(f.height, f.hash, f.raw, this.#db, f.prepared);
      this.store.connect(block, this.#depth);
    });
    return block;
  }

  #tx(fn: () => void): void {
    this.#db.transaction(fn).immediate();
  }
}
