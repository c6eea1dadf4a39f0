/**
 * Bitcoin Core's ZMQ notifications (`-zmqpubsequence`, optionally `-zmqpubrawtx`) as a push feed
 * for {@link BitcoindSource}.
 *
 * The wire format and its pure codec are in `zmq-wire.ts`.
 *
 * NOTE: how no event is lost.
 * - Until the subscription is up the feed polls (a {@link Poller}). After the handshake it
 *   stops polling, reports every mempool tx it has not reported yet, and goes live.
 * - A gap in the `sequence` counter, or in the mempool sequence, triggers a resync:
 *   'reconnected', the current tip, then every unreported mempool tx. Core also counts removals
 *   by block inclusion without sending anything (txmempool.cpp, removeUnchecked), so a jump in
 *   the mempool sequence right after a C is expected, not a loss.
 * - A dropped connection, a socket error, or silence (the RPC tip moved and no message came
 *   within a grace period) puts the feed back on polling. libzmq reconnects with backoff, and
 *   the handshake (or the next message) makes the feed live again. A dropped connection is also
 *   reported as 'disconnected' (Core closes ZMQ only after its RPC on shutdown), and
 *   'reconnected' follows once the RPC answers a poll or ZMQ is live again.
 * - Every mempool-tx passes through one `known` set (reported, and believed still in the
 *   mempool), so the poller, ZMQ and resyncs never report a tx twice.
 * - A `rawtx` gap only loses the optional bytes of a mempool-tx event, so it does not resync.
 * Malformed messages are ignored. `zeromq` is loaded on first use; when it cannot load, the feed
 * just keeps polling.
 */
import type { Subscriber } from 'zeromq';
import { parseTransaction } from '../block.js';
import { sleep } from '../../util/time.js';
import type { ChainEvent, ChainTip } from '../types.js';
import { Lifecycle } from '../../util/lifecycle.js';
import { Listeners, Poller } from './poll.js';
import {
  counterFollows,
  mempoolSeqFollows,
  parseSequenceBody,
  parseZmqEndpoint,
  parseZmqMessage,
  type SequenceEvent,
  type ZmqEndpoints,
  type ZmqTopic,
} from './zmq-wire.js';

/** Timings of the feed. Defaults suit a real node; tests shorten them. */
export interface ZmqTuning {
  /** How often the RPC tip is compared with what ZMQ reported, to notice a silent feed. Default 30 s. */
  readonly watchdogMs?: number;
  /** ZMTP heartbeat interval; a peer silent for three intervals counts as disconnected. Default 10 s. */
  readonly heartbeatMs?: number;
  /** Longest wait between reconnection attempts. Default 5 s. */
  readonly maxBackoffMs?: number;
  /** Pause after the handshake before going live, so the subscription reaches the publisher. Default 100 ms. */
  readonly settleMs?: number;
}

export interface ZmqFeedOptions extends ZmqTuning {
  readonly endpoints: ZmqEndpoints;
  /** Where events go (the backend's listener set). */
  readonly listeners: Listeners;
  readonly getTip: () => Promise<ChainTip>;
  readonly getMempool: () => Promise<string[]>;
  /** Poll interval while falling back to polling. */
  readonly pollIntervalMs: number;
  /** Told when push delivery starts (true) or stops (false). */
  readonly onLiveChange?: (live: boolean) => void;
  /** A secret-free description of a failure. */
  readonly describe?: (err: unknown) => string;
}

/** Raw transactions kept until their A message arrives: a few blocks' worth, at most 16 MiB. */
const RAW_CACHE_ENTRIES = 5_000;
const RAW_CACHE_BYTES = 16 * 1024 * 1024;
/** Mempool snapshots also prune `known` once it grows past twice its pruned size (and this floor). */
const PRUNE_FLOOR = 10_000;

type TaskKey = 'live' | 'fallback' | 'tip' | 'resync' | 'prune';

/** Listener set that hands the poller's events to the feed instead of the subscribers. */
class Tap extends Listeners {
  readonly #onEvent: (event: ChainEvent) => void;

  constructor(onEvent: (event: ChainEvent) => void) {
    super();
    this.#onEvent = onEvent;
  }

  override emit(event: ChainEvent): void {
    this.#onEvent(event);
  }
}

/**
 * Tip and mempool events from Core's ZMQ, with polling whenever ZMQ is not live (see the
 * module comment for how nothing is lost).
 * @example
 * const feed = new ZmqFeed({ endpoints: { sequence: 'tcp://127.0.0.1:28332' }, listeners, getTip, getMempool, pollIntervalMs: 2_000 });
 * feed.start(tip, mempoolTxids);
 * await feed.stop();
 */
export class ZmqFeed {
  readonly #opts: ZmqFeedOptions;
  readonly #life = new Lifecycle('ZMQ feed', { open: () => this.#open(), close: () => this.#close() });
  readonly #counters = new Map<ZmqTopic, number>();
  readonly #raw = new Map<string, Uint8Array>();
  readonly #queued = new Set<TaskKey>();
  readonly #loops = new Set<Promise<void>>();
  #rawBytes = 0;
  #live = false;
  #connected = false;
  /**
   * True from a 'disconnected' (the ZMQ connection closed, or the poller found the RPC down)
   * until 'reconnected' went out: from the poller when its RPC works again, or on going live,
   * since ZMQ can be back (a message, or the new publisher's handshake after a node restart)
   * before the backed-off poller tries again. Subscribers get 'reconnected' before the next tip.
   */
  #outageReported = false;
  #tip: ChainTip | undefined;
  #known = new Set<string>();
  /** Adds (true) and removals (false) seen while a mempool snapshot is in flight. */
  #pending: Map<string, boolean> | undefined;
  #mempoolSeq: bigint | undefined;
  #blockSinceSeq = false;
  #seqMessages = 0;
  #pruneAbove = PRUNE_FLOOR;
  #sockets: Subscriber[] = [];
  #socketFailures = 0;
  /** Bumped whenever the sockets are replaced, so loops of closed sockets stay quiet. */
  #generation = 0;
  #poller: Poller | undefined;
  #queue: Promise<void> = Promise.resolve();
  #watchdog: NodeJS.Timeout | undefined;
  #watching: Promise<void> | undefined;
  #reopenTimer: NodeJS.Timeout | undefined;

  constructor(opts: ZmqFeedOptions) {
    if (parseZmqEndpoint(opts.endpoints.sequence) === undefined) throw new TypeError('endpoints.sequence must be tcp://host:port or ipc://path');
    if (opts.endpoints.rawTx !== undefined && parseZmqEndpoint(opts.endpoints.rawTx) === undefined) {
      throw new TypeError('endpoints.rawTx must be tcp://host:port or ipc://path');
    }
    this.#opts = opts;
  }

  /** True while events come from ZMQ (false while polling). */
  get live(): boolean {
    return this.#live;
  }

  /**
   * Starts from the tip and mempool seen when the backend opened: polls at once, goes live after
   * the handshake. Only the first call counts; a call after `stop()` does nothing.
   */
  start(tip: ChainTip, mempool: readonly string[]): void {
    if (this.#tip !== undefined || this.#life.closing) return;
    this.#tip = tip;
    this.#known = new Set(mempool);
    // Failures are the feed's own business (it keeps polling); a close during open rejects here.
    this.ready().catch(() => undefined);
  }

  /** Resolves once polling runs and the sockets are subscribed (or zeromq could not load). Needs `start()` first. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  /** Closes the sockets, stops polling and timers, and waits for work in flight. Idempotent. */
  close(): Promise<void> {
    return this.#life.close();
  }

  /** Same as {@link close}: the name the backend uses. */
  stop(): Promise<void> {
    return this.close();
  }

  async #open(): Promise<void> {
    if (this.#tip === undefined) throw new TypeError('ZmqFeed: call start(tip, mempool) to open it');
    this.#startPoller();
    // #openSockets checks for a close after its one await (the zeromq import), so a close
    // during open leaves no socket behind; the poller started above is stopped by #close.
    await this.#openSockets();
  }

  async #close(): Promise<void> {
    clearTimeout(this.#watchdog);
    clearTimeout(this.#reopenTimer);
    for (const s of this.#sockets) s.close();
    this.#sockets = [];
    const poller = this.#poller;
    this.#poller = undefined;
    await Promise.allSettled([poller?.stop(), this.#queue, this.#watching, ...this.#loops]);
    this.#setLive(false);
    this.#raw.clear();
    this.#known.clear();
  }

  // -- sockets -----------------------------------------------------------------------------------

  async #openSockets(): Promise<void> {
    let zmq: typeof import('zeromq');
    try {
      zmq = await import('zeromq');
    } catch {
      return; // no native binding: polling only
    }
    if (this.#life.closing) return;
    const generation = ++this.#generation;
    const { sequence, rawTx } = this.#opts.endpoints;
    const shared = rawTx === undefined || rawTx === sequence;
    this.#subscribe(zmq, generation, sequence, shared ? ['sequence', 'rawtx'] : ['sequence'], true);
    if (!shared) this.#subscribe(zmq, generation, rawTx, ['rawtx'], false);
  }

  #subscribe(zmq: typeof import('zeromq'), generation: number, endpoint: string, topics: readonly ZmqTopic[], primary: boolean): void {
    const heartbeat = this.#opts.heartbeatMs ?? 10_000;
    let sock: Subscriber;
    try {
      sock = new zmq.Subscriber({
        linger: 0,
        ipv6: endpoint.includes('['),
        reconnectInterval: 100,
        reconnectMaxInterval: this.#opts.maxBackoffMs ?? 5_000,
        heartbeatInterval: heartbeat,
        heartbeatTimeout: heartbeat * 3,
        receiveHighWaterMark: 100_000,
      });
      if (primary) {
        // The ZMTP handshake, not the TCP connect, shows a ZMQ publisher is there.
        sock.events.on('handshake', () => {
          this.#connected = true;
          this.#socketFailures = 0;
          this.#enqueue('live', () => this.#goLive());
        });
        sock.events.on('disconnect', () => {
          this.#connected = false;
          // Core closes ZMQ after its RPC server on shutdown: the node is going away. Report it
          // now; the RPC client's retries can bridge a quick restart, so polling may never see it.
          this.#reportOutage('the node closed its ZMQ connection');
          this.#enqueue('fallback', async () => this.#goPolling());
        });
      }
      sock.connect(endpoint);
      sock.subscribe(...topics);
    } catch {
      return; // an endpoint libzmq refuses: polling only
    }
    this.#sockets.push(sock);
    const loop = this.#receive(sock, generation);
    this.#loops.add(loop);
    void loop.finally(() => this.#loops.delete(loop));
  }

  async #receive(sock: Subscriber, generation: number): Promise<void> {
    try {
      for await (const frames of sock) this.#onFrames(frames);
    } catch {
      // handled below: a loop that ends while the feed runs is a socket failure
    }
    if (this.#life.closing || generation !== this.#generation) return;
    // Start over with fresh sockets (all of them, so the sequence socket is never left out).
    this.#generation++;
    for (const s of this.#sockets) s.close();
    this.#sockets = [];
    this.#connected = false;
    this.#enqueue('fallback', async () => this.#goPolling());
    const delay = Math.min(100 * 2 ** Math.min(this.#socketFailures++, 10), this.#opts.maxBackoffMs ?? 5_000);
    this.#reopenTimer = setTimeout(() => void this.#openSockets(), delay);
    this.#reopenTimer.unref();
  }

  // -- messages ----------------------------------------------------------------------------------

  #onFrames(frames: readonly Uint8Array[]): void {
    try {
      const msg = parseZmqMessage(frames);
      if (msg === undefined || this.#life.closing) return;
      const gap = !counterFollows(this.#counters.get(msg.topic), msg.counter);
      this.#counters.set(msg.topic, msg.counter);
      if (msg.topic === 'rawtx') return this.#onRawTx(msg.body);
      this.#seqMessages++;
      this.#connected = true;
      const ev = parseSequenceBody(msg.body);
      const seqGap = ev !== undefined && this.#onSequence(ev);
      if (!this.#live) this.#enqueue('live', () => this.#goLive());
      else if (gap || seqGap) this.#enqueue('resync', () => this.#resync(true));
    } catch {
      // Never let one message stop the loop.
    }
  }

  /** Applies one sequence event; true when the mempool sequence shows a lost message. */
  #onSequence(ev: SequenceEvent): boolean {
    if (!('mempoolSeq' in ev)) {
      this.#blockSinceSeq = true; // C or D
      if (this.#live) this.#enqueue('tip', () => this.#checkTip());
      return false;
    }
    const follows = mempoolSeqFollows(this.#mempoolSeq, ev.mempoolSeq, this.#blockSinceSeq);
    this.#mempoolSeq = ev.mempoolSeq;
    this.#blockSinceSeq = false;
    if (ev.label === 'A') this.#announce(ev.hash);
    else this.#forget(ev.hash);
    return !follows;
  }

  #onRawTx(body: Uint8Array): void {
    let txid: string;
    try {
      txid = parseTransaction(body).txid;
    } catch {
      return;
    }
    if (this.#raw.has(txid)) return;
    this.#raw.set(txid, new Uint8Array(body));
    this.#rawBytes += body.length;
    for (const [id, bytes] of this.#raw) {
      if (this.#raw.size <= RAW_CACHE_ENTRIES && this.#rawBytes <= RAW_CACHE_BYTES) break;
      this.#dropRaw(id, bytes);
    }
  }

  #dropRaw(txid: string, bytes: Uint8Array): void {
    this.#raw.delete(txid);
    this.#rawBytes -= bytes.length;
  }

  #takeRaw(txid: string): Uint8Array | undefined {
    const raw = this.#raw.get(txid);
    if (raw !== undefined) this.#dropRaw(txid, raw);
    return raw;
  }

  /** Reports `txid` unless it already was. */
  #announce(txid: string): void {
    this.#pending?.set(txid, true);
    const raw = this.#takeRaw(txid);
    if (this.#known.has(txid)) return;
    this.#known.add(txid);
    this.#opts.listeners.emit(raw === undefined ? { type: 'mempool-tx', txid } : { type: 'mempool-tx', txid, raw });
  }

  /** `txid` left the mempool: report it again if it comes back. */
  #forget(txid: string): void {
    this.#pending?.set(txid, false);
    this.#known.delete(txid);
    const raw = this.#raw.get(txid);
    if (raw !== undefined) this.#dropRaw(txid, raw);
  }

  // -- work queue: tip fetches, resyncs and mode changes run one at a time -----------------------

  #enqueue(key: TaskKey, task: () => Promise<void>): void {
    if (this.#life.closing || this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue = this.#queue.then(async () => {
      this.#queued.delete(key);
      if (this.#life.closing) return;
      try {
        await task();
      } catch {
        // The node did not answer: poll, and let the poller report the outage.
        if (!this.#life.closing) this.#goPolling();
      }
    });
  }

  #setLive(live: boolean): void {
    if (this.#live === live) return;
    this.#live = live;
    this.#opts.onLiveChange?.(live);
  }

  async #goLive(): Promise<void> {
    if (this.#live || !this.#connected) return;
    const poller = this.#poller;
    this.#poller = undefined;
    await poller?.stop();
    await sleep(this.#opts.settleMs ?? 100, this.#life.signal);
    // The poller may have reported an outage and not yet the recovery: see #outageReported.
    await this.#resync(this.#outageReported);
    if (this.#life.closing) return;
    if (!this.#connected) return this.#startPoller(); // lost it again while syncing
    this.#setLive(true);
    this.#armWatchdog();
  }

  #goPolling(): void {
    this.#setLive(false);
    clearTimeout(this.#watchdog);
    this.#startPoller();
  }

  #startPoller(): void {
    if (this.#life.closing || this.#poller || this.#tip === undefined) return;
    const { pollIntervalMs, maxBackoffMs, getTip, getMempool, describe } = this.#opts;
    this.#poller = new Poller({
      intervalMs: pollIntervalMs, maxBackoffMs, getTip, getMempool, describe, listeners: new Tap((e) => this.#fromPoller(e)),
      extra: async () => this.#afterPoll(),
    });
    this.#poller.start(this.#tip, [...this.#known]);
  }

  #fromPoller(event: ChainEvent): void {
    if (this.#life.closing) return;
    if (event.type === 'mempool-tx') return this.#announce(event.txid);
    if (event.type === 'disconnected') {
      if (this.#outageReported) return; // already reported when the ZMQ connection closed
      this.#outageReported = true;
    }
    if (event.type === 'reconnected') this.#outageReported = false;
    if (event.type === 'tip') {
      this.#tip = event.tip;
      this.#maybePrune();
    }
    this.#opts.listeners.emit(event);
    // The node is back and the socket is up: no need to keep polling.
    if (event.type === 'reconnected' && this.#connected) this.#enqueue('live', () => this.#goLive());
  }

  /** Reports an outage once (until 'reconnected'). */
  #reportOutage(reason: string): void {
    if (this.#life.closing || this.#outageReported) return;
    this.#outageReported = true;
    this.#opts.listeners.emit({ type: 'disconnected', reason });
  }

  /** After a successful poll: the RPC answers again after an outage only ZMQ saw. */
  #afterPoll(): void {
    if (this.#life.closing || !this.#outageReported) return;
    this.#outageReported = false;
    this.#opts.listeners.emit({ type: 'reconnected' });
    if (this.#tip) this.#opts.listeners.emit({ type: 'tip', tip: this.#tip });
  }

  async #checkTip(): Promise<void> {
    const tip = await this.#opts.getTip();
    if (this.#life.closing) return;
    if (tip.hash !== this.#tip?.hash) {
      this.#tip = tip;
      this.#opts.listeners.emit({ type: 'tip', tip });
    }
    this.#maybePrune();
  }

  /** 'reconnected' (when `announce`), the current tip, and every mempool tx not reported yet. */
  async #resync(announce: boolean): Promise<void> {
    const tip = await this.#opts.getTip();
    if (this.#life.closing) return;
    if (announce) {
      this.#outageReported = false;
      this.#opts.listeners.emit({ type: 'reconnected' });
    }
    if (announce || tip.hash !== this.#tip?.hash) {
      this.#tip = tip;
      this.#opts.listeners.emit({ type: 'tip', tip });
    }
    await this.#syncMempool();
  }

  /** Reports mempool txs not reported yet, and forgets reported ones that left (mined). */
  async #syncMempool(): Promise<void> {
    this.#pending = new Map();
    let now: string[];
    try {
      now = await this.#opts.getMempool();
    } catch (err) {
      this.#pending = undefined;
      throw err;
    }
    const pending = this.#pending;
    this.#pending = undefined;
    if (this.#life.closing) return;
    for (const txid of now) this.#announce(txid);
    const next = new Set(now);
    for (const [txid, present] of pending) {
      if (present) next.add(txid);
      else next.delete(txid);
    }
    this.#known = next;
    this.#pruneAbove = Math.max(PRUNE_FLOOR, 2 * next.size);
  }

  #maybePrune(): void {
    if (this.#known.size > this.#pruneAbove) this.#enqueue('prune', () => this.#syncMempool());
  }

  // -- watchdog: a live feed whose node moved on without telling us is silent ----------------------

  #armWatchdog(): void {
    clearTimeout(this.#watchdog);
    if (this.#life.closing || !this.#live) return;
    const every = this.#opts.watchdogMs ?? 30_000;
    this.#watchdog = setTimeout(() => {
      this.#watching = this.#watch(Math.min(every, 2_000)).finally(() => {
        this.#watching = undefined;
        this.#armWatchdog();
      });
    }, every);
    this.#watchdog.unref();
  }

  async #watch(graceMs: number): Promise<void> {
    const seen = this.#seqMessages;
    let tip: ChainTip;
    try {
      tip = await this.#opts.getTip();
      if (tip.hash === this.#tip?.hash) return;
      await sleep(graceMs, this.#life.signal); // a C message may be on its way
    } catch {
      if (!this.#life.closing) this.#enqueue('fallback', async () => this.#goPolling());
      return;
    }
    if (this.#seqMessages === seen && this.#tip?.hash !== tip.hash && this.#live) {
      this.#connected = false; // only a new handshake or message proves it again
      this.#enqueue('fallback', async () => this.#goPolling());
    }
  }
}
