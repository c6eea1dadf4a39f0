/**
 * Admission of incoming peer connections before their Noise handshake completes (issue 9.6).
 *
 * A connection holds a slot from its websocket upgrade; before, one local client could open all
 * 256 of them and keep each for the whole 10 s handshake timeout, locking real peers out. Here a
 * half-open handshake is admitted only while
 * - its source address has fewer than `perSource` handshakes in progress, and
 * - fewer than `total` handshakes are in progress in all; at that bound the oldest one is
 *   evicted if it has already had `shortTimeoutMs`, else the newcomer is refused;
 * and once half of the handshake slots (or three quarters of the connection slots) are taken,
 * new handshakes get `shortTimeoutMs` instead of the full deadline. An honest peer completes
 * its handshake in one round trip, far within either.
 */

export interface HandshakeLimits {
  /** Handshakes in progress from one source address (default 8). */
  readonly perSource: number;
  /** Handshakes in progress in all (default 64). */
  readonly total: number;
  /** Deadline of a handshake admitted while slots run short (default 2 s). */
  readonly shortTimeoutMs: number;
}

export const DEFAULT_HANDSHAKE_LIMITS: HandshakeLimits = { perSource: 8, total: 64, shortTimeoutMs: 2_000 };

/** One admitted handshake: `done()` when it opened or closed; `evict` is called to drop it. */
export interface HandshakeSlot {
  readonly timeoutMs: number;
  done(): void;
}

interface Pending {
  readonly source: string;
  readonly since: number;
  readonly evict: () => void;
}

/** Book-keeping of handshakes in progress. */
export class HandshakeSlots {
  readonly #limits: HandshakeLimits;
  readonly #pending = new Set<Pending>();
  readonly #bySource = new Map<string, number>();

  constructor(limits: Partial<HandshakeLimits> = {}) {
    this.#limits = { ...DEFAULT_HANDSHAKE_LIMITS, ...limits };
  }

  /** Handshakes in progress. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Admits a handshake from `source`, or returns null (refuse it). `fullTimeoutMs` is the normal
   * deadline; `connectionPressure` is the share of connection slots in use (0..1).
   */
  admit(source: string, fullTimeoutMs: number, connectionPressure: number, evict: () => void): HandshakeSlot | null {
    if ((this.#bySource.get(source) ?? 0) >= this.#limits.perSource) return null;
    if (this.#pending.size >= this.#limits.total && !this.#evictOldest()) return null;
    const short = this.#pending.size >= this.#limits.total / 2 || connectionPressure >= 0.75;
    const entry: Pending = { source, since: Date.now(), evict };
    this.#pending.add(entry);
    this.#bySource.set(source, (this.#bySource.get(source) ?? 0) + 1);
    let released = false;
    return {
      timeoutMs: short ? Math.min(fullTimeoutMs, this.#limits.shortTimeoutMs) : fullTimeoutMs,
      done: () => {
        if (released) return;
        released = true;
        this.#pending.delete(entry);
        const left = (this.#bySource.get(source) ?? 1) - 1;
        if (left <= 0) this.#bySource.delete(source);
        else this.#bySource.set(source, left);
      },
    };
  }

  /** Drops the oldest handshake if it has had its short deadline; true when a slot was freed. */
  #evictOldest(): boolean {
    const oldest = this.#pending.values().next().value as Pending | undefined; // insertion order
    if (!oldest || Date.now() - oldest.since < this.#limits.shortTimeoutMs) return false;
    oldest.evict();
    return this.#pending.size < this.#limits.total;
  }
}
