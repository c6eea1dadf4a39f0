/**
 * The storage server's side of reads through the mixnet (docs/protocol/storage.md §10): requests
 * arrive in the server's mailbox at its provider, sealed by a key that is fresh per read (so the
 * server learns neither the reader's IP address nor its node key), and each is answered through
 * the reply blocks it carries (../mix-codec.ts).
 *
 * DEV NOTES
 * - Stateless per packet: a request is one packet and its answer fits the SURBs it brought, so
 *   nothing a stranger sends is held beyond the queue below.
 * - Lease renewals and puts come the same way, sealed by the owner's node key (the sealed body
 *   authenticates it): `mayStore` decides as on the Noise server. Reads need no key. A put is one
 *   chunk of a share upload in parts (at most MAX_PUT_CHUNK bytes, one packet), written by
 *   `ShareStore.putPart` with the same quota, size and order checks as the Noise server's parts;
 *   a chunk sent again (its acknowledgement lost) is acknowledged if identical. The owner keeps a
 *   few chunks of a share in flight and the mixnet reorders them: a chunk that comes before the
 *   bytes ahead of it is held (unanswered, at most `maxHeldPerShare` per share and `maxHeld` in
 *   all, for `holdMs`) and written, then answered, when they are; dropped (and counted) beyond
 *   those bounds, the owner sends it again.
 * - Bounds: one token bucket of reply packets for all readers (they are anonymous: there is no
 *   "per reader"), below the provider's per-link limit so the provider never drops our answers;
 *   at most `maxQueued` requests wait for tokens, later ones are dropped and counted. Malformed
 *   requests are dropped and counted, never answered (an answer would cost a packet per junk one).
 * - Latency: the mailbox is fetched on the service's timer (1 s by default); while requests keep
 *   coming it is fetched every `busyFetchMs` as well, for `busyForMs` after the last one.
 */
import { TokenBucket } from '../../../util/token-bucket.js';
import type { MixnetService } from '../../mixnet/service.js';
import { decodeRequest, encodeResponse, GET_HEAD, REPLY_DATA, splitReply, STORE_REQUEST, type StoreRequest, type StoreResponse } from '../mix-codec.js';
import { type ShareStore, StorageRefusal } from './share-store.js';

export interface MixStorageServerOptions {
  /** Reply packets per second, all readers together (default 1,000) and burst (default 150). */
  readonly packetsPerSecond?: number;
  readonly packetBurst?: number;
  /** Requests waiting for reply tokens (default 512). */
  readonly maxQueued?: number;
  /** Mailbox fetch interval while busy (default 20 ms) and how long "busy" lasts (default 2 s). */
  readonly busyFetchMs?: number;
  readonly busyForMs?: number;
  /** Put chunks held for the bytes before them: in all (default 256), per share (default 16), how long (default 30 s). */
  readonly maxHeld?: number;
  readonly maxHeldPerShare?: number;
  readonly holdMs?: number;
}

export interface MixStorageServerStats {
  requests: number;
  answered: number;
  replyPackets: number;
  /** Share bytes written from puts through the mixnet. */
  putBytes: number;
  /** Put chunks that came early and were held for the bytes before them; dropped beyond the hold bounds or time. */
  held: number;
  heldDropped: number;
  dropped: { malformed: number; queueFull: number; sendFailed: number };
}

const DEFAULTS = { packetsPerSecond: 1000, packetBurst: 150, maxQueued: 512, busyFetchMs: 20, busyForMs: 2000, maxHeld: 256, maxHeldPerShare: 16, holdMs: 30_000 };

type Queued = { req: StoreRequest; from: Uint8Array };

export class MixStorageServer {
  readonly stats: MixStorageServerStats = { requests: 0, answered: 0, replyPackets: 0, putBytes: 0, held: 0, heldDropped: 0, dropped: { malformed: 0, queueFull: 0, sendFailed: 0 } };
  readonly #mix: MixnetService;
  readonly #store: ShareStore;
  readonly #o: typeof DEFAULTS;
  readonly #bucket: TokenBucket;
  readonly #queue: Queued[] = [];
  /** Early put chunks by share (`si/num`), then offset, with when they came. */
  readonly #held = new Map<string, Map<number, Queued & { at: number }>>();
  #heldCount = 0;
  /** Who may put and renew leases (default everyone), as the Noise server's `mayStore`: the sealed body authenticates the sender. */
  mayStore: (sender: Uint8Array) => boolean = () => true;
  #pumpTimer: NodeJS.Timeout | null = null;
  #busyTimer: NodeJS.Timeout | null = null;
  #lastRequest = 0;
  #closed = false;
  readonly #onData = (from: Uint8Array, plain: Uint8Array): void => {
    // Other kinds (feed relay, introductions) are someone else's.
    if (plain[0] !== STORE_REQUEST || this.#closed) return;
    this.#receive(from, plain);
  };

  constructor(mix: MixnetService, store: ShareStore, opts: MixStorageServerOptions = {}) {
    this.#mix = mix;
    this.#store = store;
    this.#o = { ...DEFAULTS, ...opts };
    this.#bucket = new TokenBucket(this.#o.packetsPerSecond, this.#o.packetBurst);
  }

  start(): void {
    this.#mix.on('data', this.#onData);
  }

  close(): void {
    this.#closed = true;
    this.#mix.off('data', this.#onData);
    for (const t of [this.#pumpTimer, this.#busyTimer]) if (t) clearTimeout(t);
    this.#pumpTimer = this.#busyTimer = null;
    this.#queue.length = 0;
    this.#held.clear();
    this.#heldCount = 0;
  }

  /** Requests waiting for reply tokens. */
  get queued(): number {
    return this.#queue.length;
  }

  #receive(from: Uint8Array, plain: Uint8Array): void {
    const req = decodeRequest(plain);
    if (!req) {
      this.stats.dropped.malformed++;
      return;
    }
    this.stats.requests++;
    if (this.#queue.length >= this.#o.maxQueued) {
      this.stats.dropped.queueFull++;
      return;
    }
    this.#queue.push({ req, from });
    this.#lastRequest = Date.now();
    this.#pollWhileBusy();
    this.#pump();
  }

  /** Answers queued requests while reply tokens last; waits for more tokens otherwise. */
  #pump(): void {
    if (this.#pumpTimer || this.#closed) return;
    while (this.#queue.length > 0) {
      const { req, from } = this.#queue[0]!;
      // Tokens for as many packets as the request brought SURBs (its answer uses at most that many).
      if (this.#bucket.available() < req.surbs.length) {
        this.#pumpTimer = setTimeout(() => {
          this.#pumpTimer = null;
          this.#pump();
        }, Math.max(1, Math.ceil((req.surbs.length * 1000) / this.#o.packetsPerSecond)));
        return;
      }
      this.#queue.shift();
      if (req.op === 'put' && this.#hold(req, from)) continue;
      const parts = splitReply(req.reqId, encodeResponse(this.#answer(req, from)), req.surbs.length);
      try {
        for (let i = 0; i < parts.length; i++) {
          this.#mix.answerThrough(req.surbs[i]!, parts[i]!);
          this.#bucket.spend();
          this.stats.replyPackets++;
        }
        this.stats.answered++;
      } catch {
        // no provider link right now, or a SURB that does not parse: the reader retries
        this.stats.dropped.sendFailed++;
      }
      if (req.op === 'put') this.#release(req);
    }
  }

  /** The response to one request: reads, and puts and lease renewals by those who may store here. */
  #answer(req: StoreRequest, from: Uint8Array): StoreResponse {
    try {
      if (req.op === 'put') {
        if (!this.mayStore(from)) return { status: 'not-allowed' };
        this.#store.putPart(req.si, req.num, req.offset, req.total!, req.data!, req.leaseSecret!, req.durationMs!);
        this.stats.putBytes += req.length;
        return { status: 'ok' };
      }
      if (req.op === 'renew') {
        if (!this.mayStore(from)) return { status: 'not-allowed' };
        this.#store.renewLease(req.si, req.leaseSecret!, req.offset);
        return { status: 'ok' };
      }
      if (req.op === 'list') {
        const nums = this.#store.list(req.si).filter((n) => n <= 255).slice(0, 255);
        return { status: 'ok', nums };
      }
      // The answer must fit the SURBs given: never more than they can carry.
      const room = Math.max(0, req.surbs.length * REPLY_DATA - GET_HEAD);
      const size = this.#store.size(req.si, req.num);
      if (size === undefined) return { status: 'not-found' };
      const length = Math.min(req.length, room, Math.max(0, size - req.offset));
      const data = this.#store.read(req.si, req.num, req.offset, length);
      return data ? { status: 'ok', size, data } : { status: 'not-found' };
    } catch (e) {
      if (!(e instanceof StorageRefusal)) return { status: 'internal' };
      return { status: e.code === 'no-lease' || e.code === 'quota-exceeded' || e.code === 'too-large' || e.code === 'share-exists' || e.code === 'not-allowed' ? e.code : 'bad-request' };
    }
  }

  /** Holds a put chunk that came before the bytes ahead of it (true), within the bounds; see the module comment. */
  #hold(req: StoreRequest, from: Uint8Array): boolean {
    let have: number | undefined;
    try {
      have = this.#store.partBytes(req.si, req.num);
    } catch {
      return false; // answered (refused) as usual
    }
    if (have === undefined || req.offset <= have || !this.mayStore(from)) return false;
    const now = Date.now();
    for (const [key, m] of this.#held) {
      for (const [o, h] of m) {
        if (now - h.at <= this.#o.holdMs) continue;
        m.delete(o);
        this.#heldCount--;
        this.stats.heldDropped++;
      }
      if (m.size === 0) this.#held.delete(key);
    }
    const key = `${req.si}/${req.num}`;
    const m = this.#held.get(key) ?? new Map<number, Queued & { at: number }>();
    const again = m.has(req.offset);
    if (!again && (this.#heldCount >= this.#o.maxHeld || m.size >= this.#o.maxHeldPerShare)) {
      // Unanswered: the owner sends it again once the bytes before it are acknowledged.
      this.stats.heldDropped++;
      return true;
    }
    m.set(req.offset, { req, from, at: now });
    this.#held.set(key, m);
    if (!again) this.#heldCount++;
    this.stats.held++;
    return true;
  }

  /** After a put chunk was answered: the held chunk that starts where the share's bytes now end goes next. */
  #release(req: StoreRequest): void {
    const key = `${req.si}/${req.num}`;
    const m = this.#held.get(key);
    if (!m) return;
    let have: number | undefined;
    try {
      have = this.#store.partBytes(req.si, req.num);
    } catch {
      return;
    }
    // Complete (undefined): every held chunk is checked against the share now.
    const next = have === undefined ? [...m.keys()] : m.has(have) ? [have] : [];
    for (const o of next) {
      this.#queue.unshift(m.get(o)!);
      m.delete(o);
      this.#heldCount--;
    }
    if (m.size === 0) this.#held.delete(key);
  }

  #pollWhileBusy(): void {
    if (this.#busyTimer || this.#closed) return;
    this.#busyTimer = setTimeout(() => {
      this.#busyTimer = null;
      if (this.#closed) return;
      void this.#mix.fetchNow();
      if (Date.now() - this.#lastRequest < this.#o.busyForMs) this.#pollWhileBusy();
    }, this.#o.busyFetchMs);
  }
}
