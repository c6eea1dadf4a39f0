/**
 * Per-epoch mix keys and replay caches (spec, "Epochs, key rotation and replay").
 *
 * A mix holds the key of the current epoch and, for a grace period, the previous one; each key has
 * its own replay cache, and a cache is dropped together with its key, because a packet made for a
 * dropped key can no longer be processed (its MAC fails) and so cannot be replayed.
 */
import { processPacket } from './sphinx.js';
import type { ProcessResult, ReplayGuard } from './sphinx.js';

/** The set of replay tags seen under one key. */
export class ReplayCache implements ReplayGuard {
  readonly #seen = new Set<string>();

  /** Records `tag`; false when it was already there (a replay). */
  admit(tag: Uint8Array): boolean {
    const k = Buffer.from(tag.buffer, tag.byteOffset, tag.byteLength).toString('latin1');
    if (this.#seen.has(k)) return false;
    this.#seen.add(k);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}

/** One epoch's mix key. */
export interface EpochKey {
  readonly epoch: number;
  readonly privateKey: Uint8Array;
}

interface Slot {
  readonly key: EpochKey;
  readonly cache: ReplayCache;
}

/**
 * The keys a mix accepts: the current epoch's and the previous one's. Processing tries the newest
 * key first and falls back to the previous key only when the header MAC fails under the newest.
 */
export class MixKeyring {
  #current: Slot;
  #previous: Slot | undefined;

  constructor(key: EpochKey) {
    this.#current = { key, cache: new ReplayCache() };
  }

  /** Starts a new epoch: the current key becomes the previous one; the one before is dropped with its cache. */
  rotate(key: EpochKey): void {
    if (key.epoch <= this.#current.key.epoch) throw new RangeError('epochs only move forward');
    this.#previous = this.#current;
    this.#current = { key, cache: new ReplayCache() };
  }

  /** Ends the grace period: drops the previous key and its replay cache. */
  dropPrevious(): void {
    this.#previous = undefined;
  }

  get epochs(): number[] {
    return this.#previous ? [this.#current.key.epoch, this.#previous.key.epoch] : [this.#current.key.epoch];
  }

  /** Processes `packet` under the current key, else the previous one (see the class comment). */
  process(packet: Uint8Array): ProcessResult {
    const r = processPacket(packet, this.#current.key.privateKey, this.#current.cache);
    if (r.ok || r.reason !== 'mac' || this.#previous === undefined) return r;
    const old = processPacket(packet, this.#previous.key.privateKey, this.#previous.cache);
    return old.ok || old.reason !== 'point' ? old : r;
  }
}
