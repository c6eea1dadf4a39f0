/**
 * Cover traffic (Loopix; docs/protocol/mixnet.md, "Cover traffic and loop loss"). Three Poisson
 * streams, each at its own configurable rate (packets per second, 0 = off):
 *
 * - **client loops**: a 5-hop packet from the node's home provider through one mix per layer back
 *   to the home provider, delivered into the node's own mailbox; the node fetches it like any
 *   message and the {@link LoopMonitor} counts it back.
 * - **client drops**: a 5-hop packet from the home provider to a random provider, delivered to the
 *   drop mailbox (all zeros), which every provider discards.
 * - **mix loops** (mixes and providers): from the node itself through the other layers and a
 *   provider back to itself (layers L+1..3, a provider, layers 1..L-1, the node; a provider-only
 *   node goes through layers 1..3); the node's own mix listener recognises it at the last hop.
 *
 * Every cover packet is a forward Sphinx packet of the one size, built by the same code as a real
 * message, and its body is a real sealed message (message.ts) to the node itself, with a random
 * reply block where a real message carries a SURB and a random-length text: the mixes see only
 * random-looking bytes, and the exit provider sees the same body layout as a real message's.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { NodeIdentity } from '../identity.js';
import { equalBytes, toHex } from '../../util/bytes.js';
import { exponentialDelayMs } from './delays.js';
import { MIX_LAYERS, TooFewMixes } from './directory.js';
import type { MixDescriptor, MixDirectory } from './directory.js';
import { LoopMonitor } from './loop-monitor.js';
import type { LoopReport } from './loop-monitor.js';
import { openMessage, sealMessage } from './message.js';
import type { OpenedMessage } from './message.js';
import { ADDRESS_BYTES } from './params.js';
import { SURB_BYTES, createPacket } from './sphinx.js';
import type { OutgoingPacket, RouteHop } from './sphinx.js';

/** The mailbox of drop cover: every provider discards what is delivered there. */
export const DROP_MAILBOX: Buffer = Buffer.alloc(ADDRESS_BYTES);

/** True for the drop mailbox. */
export function isDropMailbox(mailbox: Uint8Array): boolean {
  return equalBytes(mailbox, DROP_MAILBOX);
}

const LOOP_TEXT = /^loop ([0-9a-f]{32})(?: |$)/;

/** A cover body: a sealed message to the node itself, shaped like a real message (text and SURB). */
function coverBody(identity: NodeIdentity, text: string): Uint8Array {
  const tail = randomInt(0, 200);
  return sealMessage(identity, identity.publicKey, tail === 0 ? text : `${text} ${'x'.repeat(tail)}`, randomBytes(SURB_BYTES));
}

/** The loop id of an opened message, when it is one of this node's loops. */
export function loopIdOf(me: Uint8Array, opened: OpenedMessage): Buffer | null {
  if (!equalBytes(opened.from, me)) return null;
  const m = LOOP_TEXT.exec(opened.text);
  return m ? Buffer.from(m[1]!, 'hex') : null;
}

/** Cover traffic settings: packets per second of each stream (0: off, the default), and when an unreturned loop counts as lost. */
export interface CoverSettings {
  readonly loopRate?: number;
  readonly dropRate?: number;
  readonly mixLoopRate?: number;
  /** Default: max(5 s, 30 × mean delay + 5 × fetch interval). */
  readonly loopTimeoutMs?: number;
}

/** What the service reports (GET /node/mixnet, `cover`). */
export interface CoverStatus {
  readonly rates: { loop: number; drop: number; mixLoop: number };
  readonly sent: CoverCounters;
  readonly loops: LoopReport;
}

export interface CoverOptions {
  readonly identity: NodeIdentity;
  readonly directory: MixDirectory;
  readonly monitor: LoopMonitor;
  /** Client loops per second (0: none). */
  readonly loopRate: number;
  /** Client drops per second (0: none). */
  readonly dropRate: number;
  /** Mix loops per second (0: none; only for a node with a mix or provider role). */
  readonly mixLoopRate: number;
  /** Mean Poisson delay per mix hop (as for real packets). */
  readonly meanDelayMs: number;
  /** The node's mix layer (0: none) and provider role. */
  readonly layer: number;
  readonly provider: boolean;
  /** The home provider, once linked. */
  readonly home: () => Uint8Array | null;
  /** Sends through the link to the home provider; false (or a throw) when there is no link. */
  readonly sendClient: (out: OutgoingPacket) => boolean;
  /** Sends from the node's own mix listener to the first hop (mix loops). */
  readonly sendMix: (out: OutgoingPacket) => void;
}

/** Cover packets sent, and rounds skipped because no route or link was available. */
export interface CoverCounters {
  loop: number;
  drop: number;
  mixLoop: number;
  skipped: number;
}

/** At most this many packets of one stream at once after the process was stalled. */
const MAX_CATCH_UP = 10;

/**
 * Calls `fn` at the instants of a Poisson process of `rate` per second. Scheduling is by absolute
 * time: a late timer sends what fell due meanwhile (at most MAX_CATCH_UP), so the long-run rate
 * holds on a busy machine.
 */
class PoissonTicker {
  readonly #meanMs: number;
  readonly #fn: () => void;
  #next = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(rate: number, fn: () => void) {
    this.#meanMs = 1000 / rate;
    this.#fn = fn;
  }

  start(): void {
    this.#next = Date.now() + exponentialDelayMs(this.#meanMs);
    this.#arm();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, this.#next - Date.now()));
    this.#timer.unref();
  }

  #fire(): void {
    const now = Date.now();
    let n = 0;
    while (this.#next <= now && n < MAX_CATCH_UP) {
      n++;
      this.#next += exponentialDelayMs(this.#meanMs);
      try {
        this.#fn();
      } catch {
        // A cover packet that cannot be built is skipped; the stream goes on.
      }
    }
    if (this.#next <= now) this.#next = now + exponentialDelayMs(this.#meanMs);
    this.#arm();
  }
}

const pick = <T>(xs: readonly T[]): T | undefined => (xs.length === 0 ? undefined : xs[randomInt(xs.length)]);

export class CoverTraffic {
  readonly #o: CoverOptions;
  readonly #tickers: PoissonTicker[] = [];
  #sweep: NodeJS.Timeout | null = null;
  readonly counters: CoverCounters = { loop: 0, drop: 0, mixLoop: 0, skipped: 0 };

  constructor(options: CoverOptions) {
    for (const r of [options.loopRate, options.dropRate, options.mixLoopRate]) {
      if (!Number.isFinite(r) || r < 0) throw new RangeError('cover rates are finite numbers ≥ 0 (packets per second)');
    }
    this.#o = options;
  }

  /** The loop-loss monitor. */
  get monitor(): LoopMonitor {
    return this.#o.monitor;
  }

  get rates(): { loop: number; drop: number; mixLoop: number } {
    const mixRole = this.#o.layer !== 0 || this.#o.provider;
    return { loop: this.#o.loopRate, drop: this.#o.dropRate, mixLoop: mixRole ? this.#o.mixLoopRate : 0 };
  }

  /** Cover for a MixnetService: the monitor's timeout from the settings or the service's timings. */
  static forService(settings: CoverSettings, o: Omit<CoverOptions, 'monitor' | 'loopRate' | 'dropRate' | 'mixLoopRate'> & { fetchIntervalMs: number; now?: () => number }): CoverTraffic {
    const timeout = settings.loopTimeoutMs ?? Math.max(5000, 30 * o.meanDelayMs + 5 * o.fetchIntervalMs);
    return new CoverTraffic({
      ...o, monitor: new LoopMonitor(timeout, o.now), loopRate: settings.loopRate ?? 0, dropRate: settings.dropRate ?? 0, mixLoopRate: settings.mixLoopRate ?? 0,
    });
  }

  status(): CoverStatus {
    return { rates: this.rates, sent: { ...this.counters }, loops: this.#o.monitor.report() };
  }

  start(): void {
    if (this.#tickers.length > 0) return;
    const r = this.rates;
    if (r.loop > 0) this.#tickers.push(new PoissonTicker(r.loop, () => this.sendLoop()));
    if (r.drop > 0) this.#tickers.push(new PoissonTicker(r.drop, () => this.sendDrop()));
    if (r.mixLoop > 0) this.#tickers.push(new PoissonTicker(r.mixLoop, () => this.sendMixLoop()));
    for (const t of this.#tickers) t.start();
    this.#sweep = setInterval(() => this.#o.monitor.sweep(), Math.min(1000, Math.max(50, this.#o.monitor.timeoutMs / 4)));
    this.#sweep.unref();
  }

  /** Stops sending; the monitor keeps counting loops in flight (back, or lost at the timeout). */
  stop(): void {
    for (const t of this.#tickers) t.stop();
    this.#tickers.length = 0;
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  #delay(d: MixDescriptor, last: boolean): number {
    return !last && d.layer > 0 ? exponentialDelayMs(this.#o.meanDelayMs) : 0;
  }

  #hops(ds: readonly MixDescriptor[]): RouteHop[] {
    return ds.map((d, i) => ({ address: d.address, publicKey: d.mixKey, delayMs: this.#delay(d, i === ds.length - 1) }));
  }

  /** The descriptors of a client route from `from` to `to` through one mix per layer, or null. */
  #clientRoute(from: Uint8Array, to: Uint8Array): RouteHop[] | null {
    try {
      const route = this.#o.directory.route(from, to, [0, 0, 0, 0, 0]);
      const ds = route.map((h) => this.#o.directory.get(h.address)!);
      return this.#hops(ds);
    } catch (err) {
      if (err instanceof TooFewMixes) return null;
      throw err;
    }
  }

  /** One client loop now; false when skipped (no link or no route). */
  sendLoop(): boolean {
    const home = this.#o.home();
    const route = home ? this.#clientRoute(home, home) : null;
    if (!route) return this.#skip();
    const id = randomBytes(16);
    const out = createPacket(route, this.#o.identity.publicKey, coverBody(this.#o.identity, `loop ${toHex(id)}`));
    if (!this.#clientSend(out)) return this.#skip();
    this.#o.monitor.sent(id, route.map((h) => h.address));
    this.counters.loop++;
    return true;
  }

  /** One client drop now; false when skipped. */
  sendDrop(): boolean {
    const home = this.#o.home();
    const exit = pick(this.#o.directory.providers());
    const route = home && exit ? this.#clientRoute(home, exit.address) : null;
    if (!route) return this.#skip();
    const out = createPacket(route, DROP_MAILBOX, coverBody(this.#o.identity, `drop ${toHex(randomBytes(16))}`));
    if (!this.#clientSend(out)) return this.#skip();
    this.counters.drop++;
    return true;
  }

  /** One mix loop now; false when skipped (own descriptor, a layer or a provider unknown). */
  sendMixLoop(): boolean {
    const d = this.#o.directory;
    const self = d.get(this.#o.identity.publicKey);
    if (!self) return this.#skip();
    const layers: number[] = [];
    for (let l = self.layer + 1; l <= MIX_LAYERS; l++) layers.push(l);
    const before: number[] = [];
    for (let l = 1; l < self.layer; l++) before.push(l);
    const ds: MixDescriptor[] = [];
    for (const l of layers) {
      const m = pick(d.layer(l));
      if (!m) return this.#skip();
      ds.push(m);
    }
    if (self.layer > 0) {
      const p = pick(d.providers().filter((x) => !equalBytes(x.address, self.address)));
      if (!p) return this.#skip();
      ds.push(p);
    }
    for (const l of before) {
      const m = pick(d.layer(l));
      if (!m) return this.#skip();
      ds.push(m);
    }
    ds.push(self);
    const route = this.#hops(ds);
    const id = randomBytes(16);
    const out = createPacket(route, self.address, coverBody(this.#o.identity, `loop ${toHex(id)}`));
    this.#o.monitor.sent(id, route.slice(0, -1).map((h) => h.address));
    this.#o.sendMix(out);
    this.counters.mixLoop++;
    return true;
  }

  /**
   * A packet delivered at this node's own mix listener to its own address: true (consumed) when it
   * is one of this node's loops, false otherwise (e.g. a real message for a provider's own client).
   */
  takeOwnDelivery(mailbox: Uint8Array, body: Uint8Array): boolean {
    if (!equalBytes(mailbox, this.#o.identity.publicKey)) return false;
    const opened = openMessage(this.#o.identity, body);
    const id = opened ? loopIdOf(this.#o.identity.publicKey, opened) : null;
    if (!id) return false;
    this.#o.monitor.returned(id);
    return true;
  }

  /** A message opened from the node's mailbox: true (consumed) when it is one of its loops. */
  takeOpened(opened: OpenedMessage): boolean {
    const id = loopIdOf(this.#o.identity.publicKey, opened);
    if (!id) return false;
    this.#o.monitor.returned(id);
    return true;
  }

  #clientSend(out: OutgoingPacket): boolean {
    try {
      return this.#o.sendClient(out);
    } catch {
      return false; // the link closed under us
    }
  }

  #skip(): false {
    this.counters.skipped++;
    return false;
  }
}
