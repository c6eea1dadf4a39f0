/**
 * One lifecycle for every long-lived component, after hypercore's ready-resource:
 * - `ready()` opens once; every call returns the same promise.
 * - `close()` closes once; every call returns the same promise. It aborts `signal` first, so an
 *   `open` that is still running can stop at its next await, then waits for that opening to
 *   settle, then runs the component's `close` hook, which must release whatever a partial open
 *   left behind. A component that was never opened is closed without running either hook.
 * - `ready()` after `close()` rejects: a closed component does not come back.
 *
 * `open` hooks check `signal.aborted` (or call `throwIfClosing()`) after each await before they
 * start anything that must later be stopped: that is what makes close-during-open leave nothing
 * running.
 */
import { DeaddropError } from './errors.js';

export interface LifecycleHooks {
  readonly open: (signal: AbortSignal) => Promise<void>;
  readonly close: () => Promise<void>;
}

export class Lifecycle {
  readonly #name: string;
  readonly #hooks: LifecycleHooks;
  readonly #abort = new AbortController();
  #opening: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #opened = false;
  #closed = false;

  /** `name` appears in the error a closed component's callers get ("<name> is closed"). */
  constructor(name: string, hooks: LifecycleHooks) {
    this.#name = name;
    this.#hooks = hooks;
  }

  /** Aborted as soon as `close()` is called. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** True once `ready()` has resolved and until `close()` is called. */
  get opened(): boolean {
    return this.#opened && !this.closing;
  }

  /** True from the moment `close()` is called. */
  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** True once `close()` has resolved. */
  get closed(): boolean {
    return this.#closed;
  }

  ready(): Promise<void> {
    // Checked before the memoized opening: a component that opened and then closed must not
    // report itself ready.
    if (this.closing) return Promise.reject(DeaddropError.closed(this.#name));
    this.#opening ??= this.#open();
    return this.#opening;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** For open hooks: throws the "closed" error if `close()` was called meanwhile. */
  throwIfClosing(): void {
    if (this.closing) throw DeaddropError.closed(this.#name);
  }

  async #open(): Promise<void> {
    await this.#hooks.open(this.#abort.signal);
    // A close that arrived during the last await of `open` still wins: report it.
    this.throwIfClosing();
    this.#opened = true;
  }

  async #close(): Promise<void> {
    this.#abort.abort(DeaddropError.closed(this.#name));
    if (this.#opening !== undefined) {
      await this.#opening.catch(() => undefined);
      await this.#hooks.close();
    }
    this.#closed = true;
  }
}
