/**
 * Bitcoin Core's ZMQ notifications (`-zmqpubsequence`, optionally `-zmqpubrawtx`) as a push feed
 * for {@link BitcoindSource}.
 *
 * Wire format (Core doc/zmq.md and src/zmq/zmqpublishnotifier.cpp): every message has three
 * frames, `[topic, body, 4-byte LE counter]`; the counter counts messages per topic and
 * publisher, so a skipped value means lost messages. A `sequence` body is a 32-byte hash in RPC
 * display order, a label, and for A (mempool add) and R (mempool removal) an 8-byte LE mempool
 * sequence; C and D are block connected and disconnected. A `rawtx` body is a serialized
 * transaction: one per mempool entry, and again for every transaction of a connected block.
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
import { readU32LE } from '../bytes.js';
import { sleep } from '../../util/time.js';
import type { ChainEvent, ChainTip } from '../types.js';
import { Listeners, Poller } from './poll.js';
import { toHex } from '../../util/bytes.js';

/** The topics this feed subscribes to. */
export type ZmqTopic = 'sequence' | 'rawtx';
const TOPICS: readonly ZmqTopic[] = ['sequence', 'rawtx'];

/** One message, as published by Core. */
export interface ZmqMessage {
  readonly topic: ZmqTopic;
  readonly body: Uint8Array;
  /** Per-topic message counter (wraps at 2^32). */
  readonly counter: number;
}

/** A `sequence` topic body. Hashes are lower-case hex in RPC display order. */
export type SequenceEvent =
  | { readonly label: 'C' | 'D'; readonly hash: string }
  | { readonly label: 'A' | 'R'; readonly hash: string; readonly mempoolSeq: bigint };

/** Where Core publishes. When `rawTx` is omitted, rawtx is read from the `sequence` endpoint, if Core sends it there. */
export interface ZmqEndpoints {
  readonly sequence: string;
  readonly rawTx?: string;
}

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

// ---------------------------------------------------------------------------------------------
// Codec

function asciiEquals(bytes: Uint8Array, text: string): boolean {
  if (bytes.length !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Reads `[topic, body, counter]`; undefined for anything else (wrong frame count, unknown topic, bad counter). */
export function parseZmqMessage(frames: readonly Uint8Array[]): ZmqMessage | undefined {
  if (!Array.isArray(frames) || frames.length !== 3) return undefined;
  const [t, body, c] = frames;
  if (!(t instanceof Uint8Array) || !(body instanceof Uint8Array) || !(c instanceof Uint8Array) || c.length !== 4) return undefined;
  const topic = TOPICS.find((name) => asciiEquals(t, name));
  return topic === undefined ? undefined : { topic, body, counter: readU32LE(c, 0) };
}

/** Reads a `sequence` body; undefined when its length or label is wrong. */
export function parseSequenceBody(body: Uint8Array): SequenceEvent | undefined {
  if (!(body instanceof Uint8Array) || (body.length !== 33 && body.length !== 41)) return undefined;
  const label = String.fromCharCode(body[32]!);
  const hash = toHex(body.subarray(0, 32));
  if ((label === 'C' || label === 'D') && body.length === 33) return { label, hash };
  if ((label === 'A' || label === 'R') && body.length === 41) {
    return { label, hash, mempoolSeq: new DataView(body.buffer, body.byteOffset + 33, 8).getBigUint64(0, true) };
  }
  return undefined;
}

/** True when `got` is the counter value expected after `last` (or there is no `last` yet). */
export function counterFollows(last: number | undefined, got: number): boolean {
  return last === undefined || got === ((last + 1) >>> 0);
}

/**
 * True when mempool sequence `got` can follow `last` without a lost A/R message: the next
 * number, or any later one after a block (block-inclusion removals are counted silently).
 */
export function mempoolSeqFollows(last: bigint | undefined, got: bigint, blockSince: boolean): boolean {
  if (last === undefined || got === last + 1n) return true;
  return got > last && blockSince;
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '*', '[::]', '::']);

/** `tcp://host:port` or `ipc://path`, normalised; undefined when it is neither. */
export function parseZmqEndpoint(value: string): string | undefined {
  if (typeof value !== 'string' || value.length > 1_000) return undefined;
  if (/^ipc:\/\/\S+$/.test(value)) return value;
  const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^\s/:[\]]+):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65_535 ? `tcp://${m[1]}:${port}` : undefined;
}

/** An endpoint Core reports, with a wildcard bind host (`0.0.0.0`, `*`, `[::]`) replaced by the RPC host. */
function reachable(address: string, rpcHost: string): string | undefined {
  const ep = parseZmqEndpoint(address);
  if (ep === undefined || !ep.startsWith('tcp://')) return ep;
  const colon = ep.lastIndexOf(':');
  const host = ep.slice('tcp://'.length, colon);
  if (!WILDCARD_HOSTS.has(host)) return ep;
  const bare = rpcHost.replace(/^\[(.*)\]$/, '$1');
  return `tcp://${bare.includes(':') ? `[${bare}]` : bare}${ep.slice(colon)}`;
}

/**
 * The endpoints to use from a `getzmqnotifications` answer (`[{ type, address, hwm }]`): the
 * first `pubsequence` and `pubrawtx`. Undefined when there is no usable `pubsequence`.
 */
export function endpointsFromNotifications(result: unknown, rpcHost: string): ZmqEndpoints | undefined {
  if (!Array.isArray(result)) return undefined;
  let sequence: string | undefined;
  let rawTx: string | undefined;
  for (const n of result) {
    if (typeof n !== 'object' || n === null) continue;
    const { type, address } = n as Record<string, unknown>;
    if (typeof address !== 'string') continue;
    if (type === 'pubsequence') sequence ??= reachable(address, rpcHost);
    if (type === 'pubrawtx') rawTx ??= reachable(address, rpcHost);
  }
  if (sequence === undefined) return undefined;
  return rawTx === undefined ? { sequence } : { sequence, rawTx };
}

// ---------------------------------------------------------------------------------------------
// Feed

/** Raw transactions kept until their A message arrives: a few blocks' worth, at most 16 MiB. */
const RAW_CACHE_ENTRIES = 5_000;
const RAW_CACHE_BYTES = 16 * 1024 * 1024;
/** Mempool snapshots also prune `known` once it grows past twice its pruned size (and this floor). */
const PRUNE_FLOOR = 10_000;

type TaskKey = 'live' | 'fallback' | 'tip' | 'resync' | 'prune';

/** Listener set that hands the poller's events to the feed instead of the subscribers. */
class Tap extends Listeners {
  constructor(private readonly onEvent: (event: ChainEvent) => void) {
    super();
  }

  override emit(event: ChainEvent): void {
    this.onEvent(event);
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
  readonly #abort = new AbortController();
  readonly #counters = new Map<ZmqTopic, number>();
  readonly #raw = new Map<string, Uint8Array>();
  readonly #queued = new Set<TaskKey>();
  readonly #loops = new Set<Promise<void>>();
  #rawBytes = 0;
  #live = false;
  #started = false;
  #stopping: Promise<void> | undefined;
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

  /** Starts from the tip and mempool seen when the backend opened: polls at once, goes live after the handshake. */
  start(tip: ChainTip, mempool: readonly string[]): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    this.#tip = tip;
    this.#known = new Set(mempool);
    this.#startPoller();
    void this.#openSockets();
  }

  /** Closes the sockets, stops polling and timers, and waits for work in flight. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#abort.abort();
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
    })();
    return this.#stopping;
  }

  // -- sockets -----------------------------------------------------------------------------------

  async #openSockets(): Promise<void> {
    let zmq: typeof import('zeromq');
    try {
      zmq = await import('zeromq');
    } catch {
      return; // no native binding: polling only
    }
    if (this.#stopping) return;
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
    if (this.#stopping || generation !== this.#generation) return;
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
      if (msg === undefined || this.#stopping) return;
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
    if (this.#stopping || this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue = this.#queue.then(async () => {
      this.#queued.delete(key);
      if (this.#stopping) return;
      try {
        await task();
      } catch {
        // The node did not answer: poll, and let the poller report the outage.
        if (!this.#stopping) this.#goPolling();
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
    await sleep(this.#opts.settleMs ?? 100, this.#abort.signal);
    // The poller may have reported an outage and not yet the recovery: see #outageReported.
    await this.#resync(this.#outageReported);
    if (this.#stopping) return;
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
    if (this.#stopping || this.#poller || this.#tip === undefined) return;
    const { pollIntervalMs, maxBackoffMs, getTip, getMempool, describe } = this.#opts;
    this.#poller = new Poller({
      intervalMs: pollIntervalMs, maxBackoffMs, getTip, getMempool, describe, listeners: new Tap((e) => this.#fromPoller(e)),
      extra: async () => this.#afterPoll(),
    });
    this.#poller.start(this.#tip, [...this.#known]);
  }

  #fromPoller(event: ChainEvent): void {
    if (this.#stopping) return;
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
    if (this.#stopping || this.#outageReported) return;
    this.#outageReported = true;
    this.#opts.listeners.emit({ type: 'disconnected', reason });
  }

  /** After a successful poll: the RPC answers again after an outage only ZMQ saw. */
  #afterPoll(): void {
    if (this.#stopping || !this.#outageReported) return;
    this.#outageReported = false;
    this.#opts.listeners.emit({ type: 'reconnected' });
    if (this.#tip) this.#opts.listeners.emit({ type: 'tip', tip: this.#tip });
  }

  async #checkTip(): Promise<void> {
    const tip = await this.#opts.getTip();
    if (this.#stopping) return;
    if (tip.hash !== this.#tip?.hash) {
      this.#tip = tip;
      this.#opts.listeners.emit({ type: 'tip', tip });
    }
    this.#maybePrune();
  }

  /** 'reconnected' (when `announce`), the current tip, and every mempool tx not reported yet. */
  async #resync(announce: boolean): Promise<void> {
    const tip = await this.#opts.getTip();
    if (this.#stopping) return;
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
    if (this.#stopping) return;
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
    if (this.#stopping || !this.#live) return;
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
      await sleep(graceMs, this.#abort.signal); // a C message may be on its way
    } catch {
      if (!this.#stopping) this.#enqueue('fallback', async () => this.#goPolling());
      return;
    }
    if (this.#seqMessages === seen && this.#tip?.hash !== tip.hash && this.#live) {
      this.#connected = false; // only a new handshake or message proves it again
      this.#enqueue('fallback', async () => this.#goPolling());
    }
  }
}
