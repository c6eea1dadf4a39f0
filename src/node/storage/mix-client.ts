/**
 * The reader's side of storage reads through the mixnet (docs/protocol/storage.md §10): a
 * {@link StorageChannel} to one server whose `list` and ranged `get` requests travel as sealed
 * mixnet messages to the server's mailbox at the provider it announced, sealed by the read's own
 * fresh key, and whose answers come back in single-use reply blocks (SURBs) routed to this node's
 * own provider. A channel opened under the owner's key also carries `renew` and `put` (the server
 * checks that key, as on the Noise server; `--storage-reads mixnet` sends puts and repairs'
 * uploads this way). The server sees neither this node's IP address nor its node key; this node's
 * provider sees replies arrive, never from whom.
 *
 * DEV NOTES
 * - One request packet carries {@link MAX_REQUEST_SURBS} SURBs, so one request fetches at most
 *   {@link MAX_GET_LENGTH} bytes of a share; a larger range is many requests, at most `window` in
 *   flight over all channels (which also keeps our burst under the provider's per-link limit).
 * - A range past the end of a share would waste requests: the first range of a share goes alone
 *   and its answer (the share's size) clips the rest.
 * - Reads are idempotent, so a request lost on the way (mixes drop, providers restart) is sent
 *   again with fresh SURBs, `retries` times, after `requestTimeoutMs`.
 * - Replies are only accepted for SURBs this node made for that request (the mixnet service keeps
 *   their secrets), and each reply's request id, index and length are checked; anything else is
 *   dropped and counted. Memory per request is bounded by its SURBs (4 × 2 KB).
 * - A put (a share, or a part of one: ./share-upload.ts) goes as chunks of {@link MAX_PUT_CHUNK}
 *   bytes, one request each: the first chunk of a part alone (it decides quota and the server),
 *   then up to {@link PUT_WINDOW} in flight per share (the server writes a share's bytes in order
 *   and holds, within bounds, a chunk that overtook the ones before it). A chunk whose
 *   acknowledgement is lost is sent again, which the server acknowledges if identical
 *   (ShareStore.putPart).
 * - While requests are in flight the mailbox is fetched every `pollMs` instead of the service's
 *   slower timer, or every round trip would wait for it.
 */
import { randomBytes } from 'node:crypto';
import type { NodeIdentity } from '../identity.js';
import { sealBody } from '../mixnet/message.js';
import type { MixnetService } from '../mixnet/service.js';
import type { ServerInfo } from './client.js';
import { decodeReply, decodeResponse, encodeRequest, GET_HEAD, MAX_GET_LENGTH, MAX_PUT_CHUNK, REPLY_DATA, MAX_REQUEST_SURBS, type StoreRequest, type StoreResponse } from './mix-codec.js';
import type { StorageChannel, StorageRequest, StorageResponse } from './server/storage-service.js';
import { equalBytes, fromHex } from '../../util/bytes.js';

export interface MixReadsOptions {
  /** Requests in flight over all channels (default 48). */
  readonly window?: number;
  /** A request unanswered this long is sent again (default 10 s), at most `retries` times (default 2). */
  readonly requestTimeoutMs?: number;
  readonly retries?: number;
  /** Mailbox fetch interval while requests are in flight (default 20 ms). */
  readonly pollMs?: number;
}

export interface MixReadsStats {
  requests: number;
  replies: number;
  retries: number;
  failed: number;
  dropped: { malformed: number };
}

/** Put chunks in flight per share (the server holds up to 16 early ones per share). */
export const PUT_WINDOW = 8;

const DEFAULTS = { window: 48, requestTimeoutMs: 10_000, retries: 2, pollMs: 20 };

/** What one exchange asks (./mix-codec.ts StoreRequest without its id and SURBs). */
type ExchangeRequest = Omit<StoreRequest, 'reqId' | 'surbs'>;

/** A request waiting for a slot in the window. */
type Waiter = () => void;

/** Reads through the mixnet for one node: the shared window, the polling, the counters. */
export class MixStorageReads {
  readonly stats: MixReadsStats = { requests: 0, replies: 0, retries: 0, failed: 0, dropped: { malformed: 0 } };
  readonly #mix: MixnetService;
  readonly #o: typeof DEFAULTS;
  #inFlight = 0;
  readonly #waiting: Waiter[] = [];
  /** Cancels of the requests waiting for answers (close ends them at once, not at their timeout). */
  readonly #pending = new Set<() => void>();
  #poll: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(mix: MixnetService, opts: MixReadsOptions = {}) {
    this.#mix = mix;
    this.#o = { ...DEFAULTS, ...opts };
  }

  /** True when reads can go through the mixnet now: the node's provider link is up. */
  get ready(): boolean {
    return !this.#closed && this.#mix.connected;
  }

  /**
   * A channel to `server` that reads as `reader` (a fresh identity per read operation), or null
   * when the server announced no provider, this node knows no descriptor of that provider, or it
   * has no provider link.
   */
  open(server: ServerInfo, reader: NodeIdentity): StorageChannel | null {
    // The route to the server's provider needs its verified descriptor.
    if (!server.provider || !this.ready || !this.#mix.directory.get(server.provider)?.provider) return null;
    return new MixStorageChannel(this, server.id, server.provider, reader);
  }

  /** Stops polling; requests in flight fail. */
  close(): void {
    this.#closed = true;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
    for (const w of this.#waiting.splice(0)) w();
    for (const cancel of [...this.#pending]) cancel();
  }

  /**
   * One request and its answer (one packet out, up to {@link MAX_REQUEST_SURBS} back), retried
   * when lost; rejects after the last retry.
   */
  async exchange(server: Uint8Array, provider: Uint8Array, reader: NodeIdentity, req: ExchangeRequest, surbs: number): Promise<StoreResponse> {
    await this.#slot();
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.#closed) throw new Error('storage reads through the mixnet are closed');
        const r = await this.#once(server, provider, reader, req, surbs);
        if (r) return r;
        if (attempt >= this.#o.retries) {
          this.stats.failed++;
          throw new Error(`no answer through the mixnet after ${attempt + 1} tries`);
        }
        this.stats.retries++;
      }
    } finally {
      this.#release();
    }
  }

  #once(server: Uint8Array, provider: Uint8Array, reader: NodeIdentity, req: ExchangeRequest, surbs: number): Promise<StoreResponse | null> {
    const reqId = new Uint8Array(randomBytes(8));
    return new Promise((resolve, reject) => {
      const parts: (Uint8Array | undefined)[] = [];
      let total = 0;
      let got = 0;
      let done = false;
      const settle = (): boolean => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        this.#pending.delete(cancel);
        return true;
      };
      const finish = (r: StoreResponse | null): void => {
        if (settle()) resolve(r);
      };
      const cancel = (): void => {
        if (settle()) reject(new Error('storage reads through the mixnet are closed'));
      };
      const timer = setTimeout(() => finish(null), this.#o.requestTimeoutMs);
      this.#pending.add(cancel);
      const onReply = (body: Uint8Array): void => {
        if (done) return;
        const p = decodeReply(body);
        if (!p || !equalBytes(p.reqId, reqId) || p.total > surbs || (total !== 0 && p.total !== total)) {
          this.stats.dropped.malformed++;
          return;
        }
        total = p.total;
        if (parts[p.index]) return;
        parts[p.index] = p.data;
        got++;
        this.stats.replies++;
        if (got < total) return;
        const r = decodeResponse(req.op, Buffer.concat(parts as Uint8Array[]));
        if (!r) this.stats.dropped.malformed++;
        finish(r);
      };
      try {
        const blocks = Array.from({ length: surbs }, () => this.#mix.createReplyBlock(provider, onReply));
        const plain = encodeRequest({ reqId, ...req, surbs: blocks });
        this.#mix.sendTo(provider, server, sealBody(reader, server, plain));
        this.stats.requests++;
        this.#startPolling();
      } catch (e) {
        if (settle()) reject(e as Error);
      }
    });
  }

  async #slot(): Promise<void> {
    while (this.#inFlight >= this.#o.window && !this.#closed) await new Promise<void>((r) => this.#waiting.push(r));
    this.#inFlight++;
  }

  #release(): void {
    this.#inFlight--;
    this.#waiting.shift()?.();
    if (this.#inFlight === 0 && this.#poll) {
      clearInterval(this.#poll);
      this.#poll = null;
    }
  }

  #startPolling(): void {
    if (this.#poll || this.#closed) return;
    this.#poll = setInterval(() => void this.#mix.fetchNow(), this.#o.pollMs);
  }
}

/** One server, reached through the mixnet under one read's identity (see the module comment). */
class MixStorageChannel implements StorageChannel {
  readonly #reads: MixStorageReads;
  readonly #server: Uint8Array;
  readonly #provider: Uint8Array;
  readonly #reader: NodeIdentity;
  /** Share sizes learnt from answers (key `si/num`), to clip ranges. */
  readonly #sizes = new Map<string, number>();
  #closed = false;

  constructor(reads: MixStorageReads, server: Uint8Array, provider: Uint8Array, reader: NodeIdentity) {
    this.#reads = reads;
    this.#server = server;
    this.#provider = provider;
    this.#reader = reader;
  }

  async request(req: StorageRequest, body?: Uint8Array): Promise<{ header: StorageResponse; body: Uint8Array }> {
    if (this.#closed) throw new Error('storage channel is closed');
    if (req.op === 'put') return this.#put(req, body ?? new Uint8Array(0));
    if (req.op === 'list') {
      const r = await this.#exchange({ op: 'list', si: req.si, num: 0, offset: 0, length: 0 }, 1);
      return 'nums' in r ? { header: { ok: true, nums: r.nums }, body: new Uint8Array(0) } : refused(r);
    }
    if (req.op === 'renew') {
      // Sealed by this channel's identity: the owner's node key, which the server's `mayStore` checks.
      const r = await this.#exchange({ op: 'renew', si: req.si, num: 0, offset: req.durationMs, length: 0, leaseSecret: fromHex(req.leaseSecret) }, 1);
      return r.status === 'ok' ? { header: { ok: true }, body: new Uint8Array(0) } : refused(r);
    }
    if (req.op !== 'get' || req.offset === undefined || req.length === undefined) {
      return { header: { ok: false, code: 'not-supported', error: 'through the mixnet a storage server answers list, ranged get, renew and put only' }, body: new Uint8Array(0) };
    }
    return this.#get(req.si, req.num, req.offset, req.length);
  }

  close(): void {
    this.#closed = true;
  }

  async #get(si: string, num: number, offset: number, length: number): Promise<{ header: StorageResponse; body: Uint8Array }> {
    const key = `${si}/${num}`;
    const chunk = (at: number): Promise<StoreResponse> => {
      const n = Math.min(MAX_GET_LENGTH, offset + length - at);
      return this.#exchange({ op: 'get', si, num, offset: at, length: n }, Math.min(MAX_REQUEST_SURBS, Math.ceil((n + GET_HEAD) / REPLY_DATA)));
    };
    const out: Uint8Array[] = [];
    let at = offset;
    let size = this.#sizes.get(key);
    if (size === undefined) {
      // The first range goes alone: its answer says how long the share is.
      const first = await chunk(at);
      if (!('size' in first)) return refused(first);
      size = first.size;
      this.#sizes.set(key, size);
      out.push(first.data);
      at += first.data.length;
      if (first.data.length < Math.min(MAX_GET_LENGTH, length)) return ok(size, out);
    }
    const end = Math.min(offset + length, size);
    const starts: number[] = [];
    for (let s = at; s < end; s += MAX_GET_LENGTH) starts.push(s);
    const answers = await Promise.all(starts.map((s) => chunk(s)));
    for (const a of answers) {
      if (!('size' in a)) return refused(a);
      if (a.size !== size) return { header: { ok: false, code: 'inconsistent', error: 'the server announced two sizes for one share' }, body: new Uint8Array(0) };
      out.push(a.data);
      // A short answer ends the share: later ones would be past it.
      if (a.data.length < MAX_GET_LENGTH) break;
    }
    return ok(size, out);
  }

  /** A whole share (no offset) or one part of it, chunk by chunk; see the module comment. */
  async #put(req: Extract<StorageRequest, { op: 'put' }>, body: Uint8Array): Promise<{ header: StorageResponse; body: Uint8Array }> {
    const offset = req.offset ?? 0;
    const total = req.total ?? body.length;
    const leaseSecret = fromHex(req.leaseSecret);
    if (body.length === 0) return { header: { ok: false, code: 'bad-request', error: 'an empty share part' }, body: new Uint8Array(0) };
    const chunk = (at: number): Promise<StoreResponse> => {
      if (this.#closed) throw new Error('storage channel is closed');
      const data = body.subarray(at, at + MAX_PUT_CHUNK);
      return this.#exchange({ op: 'put', si: req.si, num: req.num, offset: offset + at, length: data.length, leaseSecret, total, durationMs: req.durationMs, data }, 1);
    };
    // The first chunk alone: a refusal (quota, not a contact) comes back before anything else is sent.
    const first = await chunk(0);
    if (first.status !== 'ok') return refused(first);
    const starts: number[] = [];
    for (let at = MAX_PUT_CHUNK; at < body.length; at += MAX_PUT_CHUNK) starts.push(at);
    let next = 0;
    let refusal: StoreResponse | undefined;
    let error: Error | undefined;
    const worker = async (): Promise<void> => {
      while (next < starts.length && !refusal && !error) {
        try {
          const r = await chunk(starts[next++]!);
          if (r.status !== 'ok') refusal ??= r;
        } catch (e) {
          error ??= e as Error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PUT_WINDOW, starts.length) }, worker));
    if (error) throw error;
    if (refusal) return refused(refusal);
    return { header: { ok: true }, body: new Uint8Array(0) };
  }

  #exchange(req: ExchangeRequest, surbs: number): Promise<StoreResponse> {
    return this.#reads.exchange(this.#server, this.#provider, this.#reader, req, surbs);
  }
}

function ok(size: number, parts: Uint8Array[]): { header: StorageResponse; body: Uint8Array } {
  return { header: { ok: true, size }, body: Buffer.concat(parts) };
}

function refused(r: StoreResponse): { header: StorageResponse; body: Uint8Array } {
  const code = r.status === 'ok' ? 'malformed' : r.status;
  if (code === 'quota-exceeded') return { header: { ok: false, code, error: 'the share does not fit this server\'s quota (quota-exceeded)' }, body: new Uint8Array(0) };
  if (code === 'too-large') return { header: { ok: false, code, error: 'the share is larger than this server takes (too-large)' }, body: new Uint8Array(0) };
  if (code === 'not-allowed') return { header: { ok: false, code, error: 'this server stores only for its operator\'s contacts' }, body: new Uint8Array(0) };
  return { header: { ok: false, code, error: code === 'not-found' ? 'no such share' : `refused (${code})` }, body: new Uint8Array(0) };
}
