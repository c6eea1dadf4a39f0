/**
 * Where the CPU half of a block scan runs (./block-scan.ts): on the watcher's own thread
 * ({@link InlineScanner}, one thread: the path every watcher took before), or spread over
 * worker threads ({@link ScanPool}, one per core by default).
 *
 * DEV DOCS
 * - A job is one block (`scan`: candidate extraction) or one block's candidates with their
 *   prevouts (`finish`: tweak data and trial decryption, after the watcher looked the prevouts
 *   up). Jobs go to the least busy worker; the raw block's buffer
 *   is transferred, not copied, when the watcher owns all of it.
 * - Order and crash safety are not the pool's business: results come back in any order and
 *   the chain follower commits blocks strictly in height order (src/chain/follow/follower.ts).
 * - A job that throws in a worker rejects its promise. A worker that dies (uncaught error,
 *   exit) rejects every job it held with a BACKEND_ERROR and is replaced at the next job, so a
 *   failure surfaces as an error of the block being scanned, never as a hang.
 * - Workers are ref'd only while they hold jobs: an idle pool does not keep a process alive.
 *   `close()` terminates every worker and rejects what was in flight (CLOSED).
 * - The scan keys go to the workers through workerData: they stay in this process's memory,
 *   as they already were (never in argv, environment or logs).
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Prevout } from '../../chain/types.js';
import { DeaddropError } from '../../util/errors.js';
import { finishCandidates, scanBlock, type BlockScan, type FinishedScan, type PendingCandidate } from './block-scan.js';
import type { WatchIdentity } from './candidates.js';

/** What a worker receives at start. */
export interface ScanWorkerData {
  readonly identities: readonly WatchIdentity[];
}

/** A job posted to a worker. */
export type ScanJob =
  | { readonly type: 'scan'; readonly id: number; readonly raw: Uint8Array }
  | { readonly type: 'finish'; readonly id: number; readonly candidates: readonly PendingCandidate[]; readonly prevouts: ReadonlyMap<string, Prevout> };

/** A worker's answer to one job; id 0 with no value announces that the worker has loaded. */
export type ScanReply = { readonly id: number; readonly ok: true; readonly value?: BlockScan | FinishedScan } | { readonly id: number; readonly ok: false; readonly error: string };

/** Runs the two scan steps somewhere. */
export interface BlockScanner {
  /** Threads that scan (1 for the inline scanner). */
  readonly threads: number;
  /** Step 1. Takes ownership of `raw` (its buffer may be transferred away). */
  scan(raw: Uint8Array): Promise<BlockScan>;
  /** Step 2. */
  finish(candidates: readonly PendingCandidate[], prevouts: ReadonlyMap<string, Prevout>): Promise<FinishedScan>;
  /** Stops every worker. Idempotent. */
  close(): Promise<void>;
}

/** The scan on the calling thread. */
export class InlineScanner implements BlockScanner {
  readonly threads = 1;
  readonly #identities: readonly WatchIdentity[];

  constructor(identities: readonly WatchIdentity[]) {
    this.#identities = identities;
  }
  async scan(raw: Uint8Array): Promise<BlockScan> {
    return scanBlock(raw);
  }
  async finish(candidates: readonly PendingCandidate[], prevouts: ReadonlyMap<string, Prevout>): Promise<FinishedScan> {
    return finishCandidates(candidates, prevouts, this.#identities);
  }
  async close(): Promise<void> {}
}

/** The number of scan threads by default: every core the process may use. */
export function defaultScanThreads(): number {
  return availableParallelism();
}

export interface ScanPoolOptions {
  /** Worker threads (>= 1). */
  readonly size: number;
  readonly identities: readonly WatchIdentity[];
  /** Module the workers run (tests inject a failing one). Default ./scan-worker. */
  readonly workerUrl?: URL;
}

interface Pending {
  readonly resolve: (value: BlockScan | FinishedScan) => void;
  readonly reject: (err: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly jobs: Map<number, Pending>;
  dead: boolean;
  /** Its modules are loaded (it said so): jobs run at once instead of waiting for the start-up. */
  loaded: boolean;
}

/** The worker module next to this one (.ts when run through tsx/vitest, .js when built). */
function defaultWorkerUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './scan-worker.ts' : './scan-worker.js', import.meta.url);
}

/**
 * Worker code that loads `url`: through tsx when it is TypeScript (there is no build step;
 * hooks registered on the main thread do not reach worker threads in Node 20).
 */
function bootCode(url: URL): string {
  if (!url.pathname.endsWith('.ts')) return `import(${JSON.stringify(url.href)});`;
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  return `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); });`;
}

/** True when `b` is the only view of its whole buffer, so transferring it takes nothing from others. */
function ownsBuffer(b: Uint8Array): boolean {
  return b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
}

/**
 * Block scans over worker threads.
 * @example
 * const pool = new ScanPool({ size: defaultScanThreads(), identities });
 * const scan = await pool.scan(rawBlock, spentOutputs);
 * await pool.close();
 */
export class ScanPool implements BlockScanner {
  readonly threads: number;
  readonly #identities: readonly WatchIdentity[];
  readonly #boot: string;
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #closed = false;
  #warmWaiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(opts: ScanPoolOptions) {
    if (!Number.isSafeInteger(opts.size) || opts.size < 1) throw new RangeError(`scan pool size must be a positive integer, got ${opts.size}`);
    this.threads = opts.size;
    this.#identities = opts.identities.map((i) => ({ label: i.label, scanPrivateKey: i.scanPrivateKey.slice(), spendPublicKey: i.spendPublicKey.slice() }));
    this.#boot = bootCode(opts.workerUrl ?? defaultWorkerUrl());
  }

  /** Live worker threads (tests: close() leaves none). */
  get liveWorkers(): number {
    return this.#slots.filter((s) => !s.dead).length;
  }

  /** True once a worker has loaded: until then a caller may rather scan on its own thread. */
  get warm(): boolean {
    return this.#slots.some((s) => s.loaded && !s.dead);
  }

  /**
   * Starts the workers now (in the background) instead of at the first job. Starting one takes
   * a while (hundreds of ms: a thread, then its modules), which a caller can spend scanning on
   * its own thread; see {@link warm}.
   */
  startWorkers(): void {
    if (this.#closed) return;
    this.#prune();
    while (this.#slots.length < this.threads) this.#spawn();
  }

  scan(raw: Uint8Array): Promise<BlockScan> {
    const r = ownsBuffer(raw) ? raw : raw.slice();
    return this.#post((id) => ({ type: 'scan', id, raw: r }), [r.buffer as ArrayBuffer]) as Promise<BlockScan>;
  }

  finish(candidates: readonly PendingCandidate[], prevouts: ReadonlyMap<string, Prevout>): Promise<FinishedScan> {
    return this.#post((id) => ({ type: 'finish', id, candidates, prevouts }), []) as Promise<FinishedScan>;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const slots = this.#slots.splice(0);
    for (const s of slots) this.#fail(s, DeaddropError.closed('scan pool'));
    this.#settleWaiters(DeaddropError.closed('scan pool'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #post(make: (id: number) => ScanJob, transfer: ArrayBuffer[]): Promise<BlockScan | FinishedScan> {
    if (this.#closed) return Promise.reject(DeaddropError.closed('scan pool'));
    const slot = this.#pick();
    const id = this.#nextId++;
    return new Promise<BlockScan | FinishedScan>((resolve, reject) => {
      slot.jobs.set(id, { resolve, reject });
      if (slot.jobs.size === 1) slot.worker.ref();
      slot.worker.postMessage(make(id), transfer);
    });
  }

  /** Starts the workers and resolves once one has loaded; rejects when they all die first or the pool closes. */
  whenWarm(): Promise<void> {
    if (this.#closed) return Promise.reject(DeaddropError.closed('scan pool'));
    this.startWorkers();
    if (this.warm) return Promise.resolve();
    return new Promise((resolve, reject) => this.#warmWaiters.push({ resolve, reject }));
  }

  #settleWaiters(err?: unknown): void {
    const waiters = this.#warmWaiters.splice(0);
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  #prune(): void {
    for (let i = this.#slots.length - 1; i >= 0; i--) if (this.#slots[i]!.dead) this.#slots.splice(i, 1);
  }

  /** The least busy live worker (loaded ones first), starting one while there are fewer than `threads`. */
  #pick(): Slot {
    this.#prune();
    const idle = this.#slots.find((s) => s.jobs.size === 0 && s.loaded);
    if (idle) return idle;
    if (this.#slots.length < this.threads) return this.#spawn();
    const loaded = this.#slots.filter((s) => s.loaded);
    return (loaded.length > 0 ? loaded : this.#slots).reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  #spawn(): Slot {
    const worker = new Worker(this.#boot, { eval: true, workerData: { identities: this.#identities } satisfies ScanWorkerData });
    const slot: Slot = { worker, jobs: new Map(), dead: false, loaded: false };
    worker.unref();
    worker.on('message', (reply: ScanReply) => this.#onReply(slot, reply));
    worker.on('error', (err: Error) => this.#die(slot, new DeaddropError('BACKEND_ERROR', `scan worker failed: ${err.message}`)));
    worker.on('exit', (code) => this.#die(slot, new DeaddropError('BACKEND_ERROR', `scan worker exited (code ${code})`)));
    this.#slots.push(slot);
    return slot;
  }

  #onReply(slot: Slot, reply: ScanReply): void {
    if (reply.id === 0) {
      slot.loaded = true;
      this.#settleWaiters();
      return;
    }
    const job = slot.jobs.get(reply.id);
    if (job === undefined) return;
    slot.jobs.delete(reply.id);
    if (slot.jobs.size === 0) slot.worker.unref();
    if (reply.ok && reply.value !== undefined) job.resolve(reply.value);
    else if (reply.ok) job.reject(DeaddropError.protocol('scan worker answered a job with nothing'));
    else job.reject(new DeaddropError('BACKEND_ERROR', `scan worker: ${reply.error}`));
  }

  #die(slot: Slot, err: DeaddropError): void {
    if (slot.dead) return;
    slot.dead = true;
    this.#fail(slot, err);
    void slot.worker.terminate();
    if (this.#slots.every((s) => s.dead)) this.#settleWaiters(err);
  }

  #fail(slot: Slot, err: DeaddropError): void {
    slot.dead = true;
    const jobs = [...slot.jobs.values()];
    slot.jobs.clear();
    slot.worker.unref();
    for (const j of jobs) j.reject(err);
  }
}
