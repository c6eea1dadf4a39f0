/**
 * Polling feed shared by backends without a push channel: it turns "what is the tip now" and
 * "what is in the mempool now" into tip, mempool-tx, disconnected and reconnected events.
 *
 * NOTE: nothing is lost across an outage or a node restart. The tip poller compares with the
 * last tip it saw, the mempool poller diffs txid sets against the last set it saw (kept across
 * the outage), and on reconnection it emits 'reconnected' and then the current tip, so a
 * follower catches up from its own cursor. While the node is down it keeps polling with
 * exponential backoff. Timers are unref'd and `stop()` waits for an in-flight round.
 */
import type { ChainEvent, ChainListener, ChainTip } from '../types.js';
import { Backoff } from '../../util/time.js';

/** Listener set whose failures never reach the emitter. */
export class Listeners {
  readonly #set = new Set<ChainListener>();

  get size(): number {
    return this.#set.size;
  }

  add(listener: ChainListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    this.#set.add(listener);
    return () => {
      this.#set.delete(listener);
    };
  }

  emit(event: ChainEvent): void {
    for (const l of [...this.#set]) {
      try {
        l(event);
      } catch {
        // A listener's bug must not stop the feed for the others.
      }
    }
  }

  clear(): void {
    this.#set.clear();
  }
}

export interface PollerOptions {
  readonly intervalMs: number;
  /** Longest wait between attempts while disconnected. Default 5 s. */
  readonly maxBackoffMs?: number;
  readonly getTip: () => Promise<ChainTip>;
  /** Current mempool txids; omit when the backend cannot list the mempool. */
  readonly getMempool?: () => Promise<string[]>;
  /** Whether the mempool should be polled now (e.g. only while someone listens). Default always. */
  readonly wantMempool?: () => boolean;
  /** Extra per-round work (script watching); failures count as a disconnect. */
  readonly extra?: () => Promise<void>;
  readonly listeners: Listeners;
  /** A secret-free description of a failure. */
  readonly describe?: (err: unknown) => string;
}

/** Tip and mempool poller with disconnect/reconnect events. */
export class Poller {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastTip: ChainTip | undefined;
  #mempool: Set<string> | undefined;
  readonly #backoff: Backoff;
  #down = false;

  readonly #opts: PollerOptions;

  constructor(opts: PollerOptions) {
    this.#opts = opts;
    // The first retry waits two intervals; the delay doubles up to 1024 intervals or maxBackoffMs.
    const maxMs = Math.max(1, Math.min(opts.intervalMs * 1024, opts.maxBackoffMs ?? 5_000));
    this.#backoff = new Backoff({ initialMs: Math.max(1, Math.min(opts.intervalMs * 2, maxMs)), maxMs });
  }

  /**
   * Starts polling from `tip` (the tip seen when the backend opened) and, when given, the
   * mempool seen then: txs that arrive after opening are reported even before the first round.
   */
  start(tip: ChainTip, mempool?: readonly string[]): void {
    if (this.#stopped || this.#timer || this.#running) return;
    this.#lastTip = tip;
    if (mempool) this.#mempool = new Set(mempool);
    this.#schedule(0);
  }

  /** The last tip the poller saw. */
  get tip(): ChainTip | undefined {
    return this.#lastTip;
  }

  /** True while the node is unreachable. */
  get disconnected(): boolean {
    return this.#down;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#round().finally(() => {
        this.#running = undefined;
      });
    }, ms);
    this.#timer.unref();
  }

  async #round(): Promise<void> {
    try {
      const tip = await this.#opts.getTip();
      if (this.#stopped) return;
      const wasDown = this.#down;
      this.#down = false;
      this.#backoff.reset();
      if (wasDown) this.#opts.listeners.emit({ type: 'reconnected' });
      if (wasDown || tip.hash !== this.#lastTip?.hash) {
        this.#lastTip = tip;
        this.#opts.listeners.emit({ type: 'tip', tip });
      }
      await this.#pollMempool();
      await this.#opts.extra?.();
      this.#schedule(this.#opts.intervalMs);
    } catch (err) {
      if (this.#stopped) return;
      if (!this.#down) {
        this.#down = true;
        this.#opts.listeners.emit({ type: 'disconnected', reason: this.#opts.describe?.(err) ?? describeError(err) });
      }
      this.#schedule(this.#backoff.next());
    }
  }

  async #pollMempool(): Promise<void> {
    const { getMempool, wantMempool } = this.#opts;
    if (!getMempool) return;
    if (wantMempool && !wantMempool()) {
      this.#mempool = undefined; // re-baseline when someone listens again
      return;
    }
    const now = new Set(await getMempool());
    if (this.#stopped) return;
    const before = this.#mempool;
    this.#mempool = now;
    // The first round only records a baseline: those txs were there before anyone listened.
    if (before === undefined) return;
    for (const txid of now) if (!before.has(txid)) this.#opts.listeners.emit({ type: 'mempool-tx', txid });
  }
}

/** Error message without anything but the message (our errors never carry secrets). */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
