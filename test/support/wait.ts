/**
 * The one polling helper of the tests. Every "wait until something holds" goes through it so
 * that timeouts, intervals and failure messages read the same everywhere.
 */

/** How long and how often `waitUntil` polls. */
export interface WaitOptions {
  /** Give up after this long (default 20 s). */
  readonly timeoutMs?: number;
  /** Pause between two polls (default 100 ms). */
  readonly intervalMs?: number;
  /**
   * Treat a throw from `fn` as "not yet" and poll again; on timeout the last error is rethrown,
   * so an `expect` inside `fn` fails with its own message. Without it a throw fails at once.
   */
  readonly retryOnError?: boolean;
}

/** A poll result that means "not yet". */
type NotYet = undefined | null | false;

/**
 * Polls `fn` until it returns something other than undefined, null or false, and resolves with
 * that value; fails naming `what` after the timeout. `fn` may return a boolean (a condition) or
 * the value being waited for. `what` may be a function, called only on timeout, so the message
 * can describe what was seen by then.
 */
export async function waitUntil<T>(
  fn: () => Promise<T | NotYet> | T | NotYet,
  what: string | (() => string),
  timeoutOrOptions: number | WaitOptions = {},
  intervalMs?: number,
): Promise<Exclude<T, NotYet>> {
  const o: WaitOptions = typeof timeoutOrOptions === 'number' ? { timeoutMs: timeoutOrOptions, intervalMs } : timeoutOrOptions;
  const until = Date.now() + (o.timeoutMs ?? 20_000);
  for (;;) {
    let v: T | NotYet;
    try {
      v = await fn();
    } catch (err) {
      if (!o.retryOnError || Date.now() > until) throw err;
      v = undefined;
    }
    if (v !== undefined && v !== null && v !== false) return v as Exclude<T, NotYet>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 100));
  }
}
