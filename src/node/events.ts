import { EventEmitter } from 'node:events';

/** Listener signatures keyed by event name. */
export type EventMap = { [event: string]: (...args: never[]) => void };

/**
 * A typed wrapper over node:events. Listener exceptions are caught and reported through
 * `onListenerError` so a buggy subscriber cannot break the emitter's state machine.
 */
export class TypedEmitter<E extends EventMap> {
  readonly #em = new EventEmitter();

  constructor() {
    this.#em.setMaxListeners(100);
  }

  on<K extends keyof E & string>(event: K, listener: E[K]): this {
    this.#em.on(event, listener as unknown as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof E & string>(event: K, listener: E[K]): this {
    this.#em.once(event, listener as unknown as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: E[K]): this {
    this.#em.off(event, listener as unknown as (...args: unknown[]) => void);
    return this;
  }

  listenerCount<K extends keyof E & string>(event: K): number {
    return this.#em.listenerCount(event);
  }

  protected emit<K extends keyof E & string>(event: K, ...args: Parameters<E[K]>): void {
    for (const l of this.#em.listeners(event)) {
      try {
        (l as (...a: unknown[]) => void)(...args);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
  }

  /** Called when a listener throws. Default: print once to stderr without the payload. */
  protected onListenerError(event: string, err: unknown): void {
    console.error(`deaddrop: listener for ${event} threw: ${err instanceof Error ? err.message : String(err)}`);
  }

  protected removeAllListeners(): void {
    this.#em.removeAllListeners();
  }
}
