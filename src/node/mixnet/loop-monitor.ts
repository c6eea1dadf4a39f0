/**
 * Loop loss (Loopix): every loop cover packet a node sends comes back to the node itself through a
 * full route; a loop that has not come back after `timeoutMs` is counted lost. The monitor keeps,
 * per route (the hops other than the node itself, in order) and per hop, how many loops went out,
 * came back and were lost, so that a node notices mixes that drop traffic
 * (docs/protocol/mixnet.md, "Cover traffic and loop loss").
 *
 * Rates are over the last {@link WINDOW} finished loops of a route or hop (so a mix that stops
 * dropping is forgiven), totals over the monitor's life. Bounded: at most MAX_PENDING loops in
 * flight (older ones are counted lost when more are sent) and MAX_ROUTES routes (the least recently
 * used is forgotten).
 */
import { toHex } from '../../util/bytes.js';

/** Outcomes kept per route and per hop for the rate. */
export const WINDOW = 200;
const MAX_PENDING = 10_000;
const MAX_ROUTES = 1000;

/** Counts of one route, one hop, or all loops. */
export interface LoopCounts {
  /** Loops sent (finished or not). */
  readonly sent: number;
  readonly returned: number;
  readonly lost: number;
  /** lost / (returned + lost) over the last WINDOW finished loops; null before any finished. */
  readonly lossRate: number | null;
}

export interface RouteLoss extends LoopCounts {
  /** Addresses (hex) of the hops, the node itself left out. */
  readonly hops: readonly string[];
}

export interface HopLoss extends LoopCounts {
  readonly address: string;
}

/** Recent loop loss of one hop. */
export interface HopHealth {
  /** Finished loops in the window (at most WINDOW). */
  readonly loops: number;
  /** lost / loops. */
  readonly rate: number;
}

/** Loops a mix must have finished before its loss can count against it. */
export const SUSPECT_MIN_LOOPS = 10;
/** Loss rate from which a mix may be avoided. */
export const SUSPECT_LOSS = 0.5;

/**
 * The mixes of one layer worth routing through: those not suspected of dropping traffic. A mix is
 * suspected when, over at least {@link SUSPECT_MIN_LOOPS} recent loops, it lost at least
 * {@link SUSPECT_LOSS} of them and at least twice as much as the best measured mix of its layer.
 * The comparison is within the layer because a loop's loss counts against every hop of its route:
 * an honest mix that shares routes with a dropping one loses loops too, but no more than its
 * honest peers do. When every mix would be avoided, all are kept: a message has to go somewhere,
 * and cover loops go on measuring every mix, so one that stops dropping is used again.
 */
export function healthyMixes<T extends { readonly address: Uint8Array }>(layer: readonly T[], health: (address: string) => HopHealth | null): T[] {
  const measured = layer.map((m) => ({ m, h: health(toHex(m.address)) }));
  const rates = measured.filter((x) => x.h !== null && x.h.loops >= SUSPECT_MIN_LOOPS).map((x) => x.h!.rate);
  const best = rates.length === 0 ? 0 : Math.min(...rates);
  const kept = measured.filter(({ h }) => h === null || h.loops < SUSPECT_MIN_LOOPS || h.rate < SUSPECT_LOSS || h.rate < 2 * best).map((x) => x.m);
  return kept.length === 0 ? [...layer] : kept;
}

export interface LoopReport extends LoopCounts {
  /** Loops still in flight (neither back nor timed out). */
  readonly pending: number;
  /** Returned loops' round-trip times: median in ms (null before any came back). */
  readonly medianRttMs: number | null;
  /** Routes, highest loss first (at most 100). */
  readonly routes: readonly RouteLoss[];
  /** Hops, highest loss first. */
  readonly hops: readonly HopLoss[];
}

class Tally {
  sent = 0;
  returned = 0;
  lost = 0;
  readonly #recent: boolean[] = [];

  finish(ok: boolean): void {
    if (ok) this.returned++;
    else this.lost++;
    this.#recent.push(ok);
    if (this.#recent.length > WINDOW) this.#recent.shift();
  }

  /** Finished loops in the window, and how many of them were lost. */
  recent(): { readonly loops: number; readonly lost: number } {
    return { loops: this.#recent.length, lost: this.#recent.filter((ok) => !ok).length };
  }

  counts(): LoopCounts {
    const n = this.#recent.length;
    const lostRecent = this.#recent.filter((ok) => !ok).length;
    return { sent: this.sent, returned: this.returned, lost: this.lost, lossRate: n === 0 ? null : lostRecent / n };
  }
}

interface Pending {
  readonly at: number;
  readonly route: string;
  readonly hops: readonly string[];
}

export class LoopMonitor {
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #pending = new Map<string, Pending>();
  readonly #routes = new Map<string, { hops: readonly string[]; tally: Tally }>();
  readonly #hops = new Map<string, Tally>();
  readonly #all = new Tally();
  readonly #rtts: number[] = [];

  constructor(timeoutMs: number, now: () => number = Date.now) {
    if (!(timeoutMs > 0)) throw new RangeError('loop timeout must be > 0 ms');
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Records loop `id` sent over `hops` (the node itself left out). */
  sent(id: Uint8Array, hops: readonly Uint8Array[]): void {
    const names = hops.map((h) => toHex(h));
    const key = names.join('>');
    let r = this.#routes.get(key);
    if (r) this.#routes.delete(key); // re-insert: most recently used last
    else r = { hops: names, tally: new Tally() };
    this.#routes.set(key, r);
    if (this.#routes.size > MAX_ROUTES) this.#routes.delete(this.#routes.keys().next().value!);
    r.tally.sent++;
    this.#all.sent++;
    for (const h of new Set(names)) this.#hop(h).sent++;
    this.#pending.set(toHex(id), { at: this.#now(), route: key, hops: names });
    if (this.#pending.size > MAX_PENDING) this.#finish(this.#pending.keys().next().value!, false);
  }

  /** Records that loop `id` came back; false when it is unknown (never sent, already counted, or timed out). */
  returned(id: Uint8Array): boolean {
    const key = toHex(id);
    const p = this.#pending.get(key);
    if (!p) return false;
    this.#rtts.push(this.#now() - p.at);
    if (this.#rtts.length > WINDOW) this.#rtts.shift();
    this.#finish(key, true);
    return true;
  }

  /** True when loop `id` is in flight. */
  has(id: Uint8Array): boolean {
    return this.#pending.has(toHex(id));
  }

  /** Counts every loop older than the timeout as lost. */
  sweep(): void {
    const limit = this.#now() - this.#timeoutMs;
    for (const [key, p] of this.#pending) {
      if (p.at > limit) break; // insertion order is send order
      this.#finish(key, false);
    }
  }

  /** The loss of hop `address` (hex) over its recent finished loops; null before any finished. */
  hopLoss(address: string): HopHealth | null {
    const t = this.#hops.get(address);
    if (!t) return null;
    const { loops, lost } = t.recent();
    return loops === 0 ? null : { loops, rate: lost / loops };
  }

  #hop(h: string): Tally {
    let t = this.#hops.get(h);
    if (!t) {
      t = new Tally();
      this.#hops.set(h, t);
    }
    return t;
  }

  #finish(key: string, ok: boolean): void {
    const p = this.#pending.get(key);
    if (!p) return;
    this.#pending.delete(key);
    this.#all.finish(ok);
    this.#routes.get(p.route)?.tally.finish(ok);
    for (const h of new Set(p.hops)) this.#hop(h).finish(ok);
  }

  report(): LoopReport {
    this.sweep();
    const byLoss = (a: LoopCounts, b: LoopCounts): number => (b.lossRate ?? -1) - (a.lossRate ?? -1) || b.sent - a.sent;
    const sorted = [...this.#rtts].sort((a, b) => a - b);
    return {
      ...this.#all.counts(),
      pending: this.#pending.size,
      medianRttMs: sorted.length === 0 ? null : sorted[sorted.length >> 1]!,
      routes: [...this.#routes.values()].map((r) => ({ hops: r.hops, ...r.tally.counts() })).sort(byLoss).slice(0, 100),
      hops: [...this.#hops].map(([address, t]) => ({ address, ...t.counts() })).sort(byLoss),
    };
  }
}
