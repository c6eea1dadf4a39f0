/**
 * Time helpers shared by every layer: an abortable sleep and one exponential backoff.
 */

/**
 * Resolves after `ms`, or rejects with the signal's reason when `signal` aborts. The timer is
 * ref'd on purpose: someone awaits it, and an unref'd timer would let the process exit in the
 * middle of the await.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface BackoffOptions {
  /** First delay in milliseconds. */
  readonly initialMs: number;
  /** Ceiling in milliseconds. */
  readonly maxMs: number;
  /** Growth per failure (default 2). */
  readonly factor?: number;
}

/**
 * Exponential backoff: `next()` returns the delay to wait before the next attempt and grows it
 * up to `maxMs`; `reset()` after a success starts again from `initialMs`.
 * @example const b = new Backoff({ initialMs: 1000, maxMs: 30_000 }); await sleep(b.next());
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  #current: number;

  constructor(opts: BackoffOptions) {
    if (!(opts.initialMs > 0) || !(opts.maxMs >= opts.initialMs)) {
      throw new RangeError(`backoff: need 0 < initialMs <= maxMs, got ${opts.initialMs}, ${opts.maxMs}`);
    }
    this.#initialMs = opts.initialMs;
    this.#maxMs = opts.maxMs;
    this.#factor = opts.factor ?? 2;
    this.#current = opts.initialMs;
  }

  /** The delay before the next attempt; each call grows the following one. */
  next(): number {
    const delay = this.#current;
    this.#current = Math.min(this.#current * this.#factor, this.#maxMs);
    return delay;
  }

  /** The delay `next()` would return, without growing it. */
  peek(): number {
    return this.#current;
  }

  reset(): void {
    this.#current = this.#initialMs;
  }
}

/** How often progress is reported by default: four times a second is smooth in a bar and cheap in the event history. */
export const PROGRESS_INTERVAL_MS = 250;

/**
 * At most one progress report every `intervalMs` (the watcher's scan, the wallet's sync and
 * storage transfers each report through one): a bar needs a few updates a second, not one per
 * block or segment, and each report is an event every listener and the replay history carry.
 */
export class ReportThrottle {
  readonly intervalMs: number;
  #last = Number.NEGATIVE_INFINITY;

  constructor(intervalMs = PROGRESS_INTERVAL_MS) {
    this.intervalMs = intervalMs;
  }

  /** True when a report may go now, and counts it as sent; `force` lets it through anyway (the first or last of a phase). */
  take(force = false, now = Date.now()): boolean {
    if (!force && now - this.#last < this.intervalMs) return false;
    this.#last = now;
    return true;
  }
}
