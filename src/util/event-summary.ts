/**
 * Aggregates events that strangers can cause (issue 17): anyone who reaches the peer-node port
 * can make the node reject a connection, thousands of times a second. Publishing one event per
 * rejection let them flood every `/events` subscriber. Instead, occurrences are counted by
 * reason and at most one summary event is published per interval.
 */
import type { EventBus } from './event-bus.js';

/** Reasons kept apart in one summary; the rest are counted under "other". */
const MAX_REASONS = 16;

export interface EventSummaryOptions {
  /** Event type of the summary, e.g. `node.peer.rejected`. */
  readonly type: string;
  /** At most one summary per this many ms (default 10 s). */
  readonly intervalMs?: number;
}

/**
 * Counts occurrences and publishes `{ count, reasons: {reason: n}, since, until }` at most once
 * per interval: the first occurrence after a quiet interval is published at once (so a single
 * rejection is seen promptly), later ones are summed into the next summary.
 */
export class EventSummary {
  readonly #bus: EventBus;
  readonly #type: string;
  readonly #intervalMs: number;
  #reasons = new Map<string, number>();
  #count = 0;
  #since = 0;
  #lastPublished = -Infinity;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  #closed = false;

  constructor(bus: EventBus, opts: EventSummaryOptions) {
    this.#bus = bus;
    this.#type = opts.type;
    this.#intervalMs = opts.intervalMs ?? 10_000;
  }

  /** Counts one occurrence. */
  add(reason: string): void {
    if (this.#closed) return;
    if (this.#count === 0) this.#since = Date.now();
    this.#count++;
    const key = this.#reasons.has(reason) || this.#reasons.size < MAX_REASONS ? reason : 'other';
    this.#reasons.set(key, (this.#reasons.get(key) ?? 0) + 1);
    if (this.#timer) return;
    const wait = this.#lastPublished + this.#intervalMs - Date.now();
    if (wait <= 0) return this.flush();
    this.#timer = setTimeout(() => this.flush(), wait);
    this.#timer.unref();
  }

  /** Publishes what was counted, if anything. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#count === 0) return;
    const now = Date.now();
    const data = { count: this.#count, reasons: Object.fromEntries(this.#reasons), since: this.#since, until: now };
    this.#count = 0;
    this.#reasons = new Map();
    this.#lastPublished = now;
    this.#bus.publish(this.#type, `${this.#type}:${now}:${++this.#seq}`, data);
  }

  /** Publishes the remainder and stops. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}
