/**
 * Storage as a part of a running PeerNode (the daemon's node feature starts it, as it starts the
 * mixnet):
 *
 * - **Server role** (opt-in): a {@link StorageServer} over the node's Noise transport, on its own
 *   listener like the mixnet's (so the node's port keeps accepting contacts only), with a quota;
 *   announced in the node's signed log (./announce.ts), re-announced at half-life with the free
 *   space of the moment, withdrawn (quota 0) when the node stops serving; expired leases are
 *   collected on a timer.
 * - **Directory**: every announcement the node holds or receives (its own and its contacts'
 *   replicated feeds) is verified; placement uses only those.
 * - **Backend**: peers (./peer-backend.ts) or a Tahoe-LAFS grid (./tahoe-backend.ts) for what
 *   this node puts, checks and keeps. Reads go to the backend the capability names
 *   (./cap-route.ts): a Tahoe node reads peers files too (a PayPub offer, an attachment), and a
 *   peers node asked for a Tahoe file says it needs `--storage tahoe:<url>`.
 * - **Through the mixnet** (docs/protocol/storage.md §10): a serving node with a provider link names
 *   its provider in its announcement (re-announced when it changes) and answers reads arriving in
 *   its mailbox (./server/mix-server.ts); reads go through the mixnet per `reads` (./options.ts).
 * - **Kept files** (./kept-files.ts): what the user put or pinned; every `checkIntervalMs` the
 *   daemon renews their leases and checks and repairs them.
 * - **Events** on the daemon's bus: `storage.progress` (throttled), `storage.put`, `storage.get`,
 *   `storage.check` (scheduled ones carry `scheduled: true`), `storage.failed`. They carry storage
 *   indexes, never capabilities.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import type { PeerNode } from '../node.js';
import type { LogEntry } from '../log/codec.js';
import { DeaddropError } from '../../util/errors.js';
import { Lifecycle } from '../../util/lifecycle.js';
import { equalBytes, toHex } from '../../util/bytes.js';
import { ReportThrottle } from '../../util/time.js';
import { sha256, utf8 } from '../crypto.js';
import type { ServerHealth, StorageBackend, StorageCheckResult, StoreProgress } from './backend.js';
import { announcementDraft, STORAGE_SERVER_TYPE, StorageDirectory } from './announce.js';
import { KeptFiles, type KeptFile } from './kept-files.js';
import type { FileReader } from './client.js';
import { classifyCap, DEFAULT_LEASE_MS, MAX_FILE_BYTES, PeerStorageBackend, type ShareParams } from './peer-backend.js';
import { type FileSource, openFileSource } from './share-upload.js';
import type { StorageBackendChoice, StorageOptions, StorageReads } from './options.js';
import { ShareStore } from './server/share-store.js';
import { TahoeBackend } from './tahoe-backend.js';
import { checkOwnBackend, readBackendFor } from './cap-route.js';
import { StorageServer } from './server/storage-service.js';
import type { ServerInfo } from './client.js';
import type { MixnetService } from '../mixnet/service.js';
import { MixStorageReads } from './mix-client.js';
import { MixStorageServer } from './server/mix-server.js';
import type { StorageChannel } from './server/storage-service.js';

const DAY_MS = 86_400_000;
/** The Tahoe-LAFS backend seals a file whole in memory before its web API takes it. */
const TAHOE_MAX_PUT_BYTES = 64 * 1024 * 1024;

/** Options of a put: name and keeping, shares (peers backend), a client-chosen op id for events. */
export interface PutOptions {
  readonly name?: string;
  readonly keep?: boolean;
  readonly shares?: ShareParams;
  readonly op?: string;
}

/** What a finished put tells the caller. The read cap is for the caller only (never in events). */
export interface PutOutcome {
  readonly op: string;
  readonly readCap: string;
  readonly verifyCap: string | null;
  readonly storageIndex: string;
  readonly size: number;
  readonly backend: string;
  readonly kept: boolean;
  /** Peers backend: the servers that took a share (empty for Tahoe, which places shares itself). */
  readonly holders: readonly ServerInfo[];
}

/** The storage server's state as `store server status` shows it. */
export interface ServerStatus {
  readonly serving: boolean;
  readonly url: string | null;
  readonly quotaBytes: number | null;
  readonly usedBytes: number | null;
  readonly shares: number | null;
  readonly storageIndexes: number | null;
  readonly activeLeases: number | null;
  readonly nextLeaseExpiry: number | null;
  readonly announcedUntil: number | null;
  readonly backend: string;
  readonly knownServers: { readonly id: string; readonly endpoint: string; readonly quota: number; readonly free: number; readonly until: number; readonly self: boolean; readonly provider: string | null }[];
  readonly refusedAnnouncements: number;
  readonly keptFiles: number;
  /** How reads reach servers (./options.ts). */
  readonly reads: StorageReads;
  /** Reads through mixnet providers: counters as a reader and as a server. */
  readonly mixnet: ReturnType<NodeStorage['mixnetStats']>;
}

export interface NodeStorageOptions extends StorageOptions {
  /** The node's mixnet (reads through providers, and the server's mailbox). */
  readonly mixnet?: MixnetService;
  /** Folder of this node's storage (shares under `shares/`). */
  readonly dir: string;
  /** Publishes a daemon event. */
  readonly publish?: (type: string, id: string, data: Record<string, unknown>) => void;
  readonly log?: (line: string) => void;
}

/** See the module comment. */
export class NodeStorage {
  readonly directory = new StorageDirectory();
  readonly #node: PeerNode;
  readonly #opts: NodeStorageOptions;
  readonly #life = new Lifecycle('storage', { open: (signal) => this.#open(signal), close: () => this.#close() });
  readonly #kept: KeptFiles;
  readonly #peers: PeerStorageBackend;
  #backend: StorageBackend;
  #server: StorageServer | null = null;
  #mixServer: MixStorageServer | null = null;
  readonly #mixReads: MixStorageReads | null;
  readonly #onLinked = (): void => this.#announceIfDue(false);
  /** Share health per server of each kept file's last check (by storage index): the dashboard's per-server view. */
  readonly #lastServers = new Map<string, readonly ServerHealth[]>();
  readonly #timers: NodeJS.Timeout[] = [];
  #maintaining: Promise<void> = Promise.resolve();
  readonly #running = new Set<Promise<unknown>>();
  readonly #onEntry = (e: LogEntry): void => {
    this.directory.add(e);
  };

  constructor(node: PeerNode, opts: NodeStorageOptions) {
    this.#node = node;
    this.#opts = opts;
    this.#kept = new KeptFiles(node.store.db, node.identity);
    this.#mixReads = opts.mixnet ? new MixStorageReads(opts.mixnet) : null;
    this.#peers = new PeerStorageBackend({
      identity: node.identity, route: (url, server) => node.dialRoute(url, server), servers: () => this.directory.servers(),
      reads: (server, reader) => this.#readChannel(server, reader), surveysThroughReads: opts.reads === 'mixnet',
      ...(opts.shares ? { shares: opts.shares } : {}), leaseMs: this.#leaseMs,
    });
    this.#backend = this.#peers;
    this.#life.ready().catch(() => {
      // surfaced through ready()
    });
  }

  /** Starts storage on `node`: resolves once the server (if any) listens and is announced. */
  static async start(node: PeerNode, opts: NodeStorageOptions): Promise<NodeStorage> {
    const s = new NodeStorage(node, opts);
    try {
      await s.ready();
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  ready(): Promise<void> {
    return this.#life.ready();
  }

  close(): Promise<void> {
    return this.#life.close();
  }

  get #leaseMs(): number {
    return this.#opts.leaseMs ?? DEFAULT_LEASE_MS;
  }

  get backendKind(): string {
    return this.#backend.kind;
  }

  /** Shares needed / happy / total of new files on peers. */
  get shares(): ShareParams {
    return this.#peers.shares;
  }

  /** The storage server, when this node serves. */
  get server(): StorageServer | null {
    return this.#server;
  }

  async #open(signal: AbortSignal): Promise<void> {
    const node = this.#node;
    for (const f of node.store.feeds()) {
      for (let from = 1; from <= f.length; from += 256) {
        for (const e of node.store.range(f.author, from, Math.min(f.length, from + 255))) if (e.header.type === STORAGE_SERVER_TYPE) this.directory.add(e);
      }
    }
    node.on('entry.appended', this.#onEntry);
    node.on('entry.replicated', this.#onEntry);
    this.#backend = await this.#chooseBackend(this.#opts.backend ?? { kind: 'peers' });
    if (signal.aborted) return;
    const srv = this.#opts.server;
    if (srv) {
      const store = new ShareStore({ dir: join(this.#opts.dir, 'shares'), quotaBytes: srv.quotaBytes });
      this.#server = await StorageServer.start(node.identity, store, { host: srv.host ?? '127.0.0.1', ...(srv.port !== undefined ? { port: srv.port } : {}) });
      // Stores for this node and its contacts only: strangers could otherwise fill the quota.
      this.#server.mayStore = (remote) => equalBytes(remote, node.id) || node.contacts().some((c) => equalBytes(c.node, remote));
      if (signal.aborted) return;
      store.collectGarbage();
      if (this.#opts.mixnet) {
        this.#mixServer = new MixStorageServer(this.#opts.mixnet, store);
        this.#mixServer.mayStore = this.#server.mayStore;
        this.#mixServer.start();
        this.#opts.mixnet.on('linked', this.#onLinked);
      }
      this.#announceIfDue(true);
      const ttl = this.#opts.announceTtlMs ?? DAY_MS;
      this.#every(Math.max(1000, ttl / 4), () => this.#announceIfDue(false));
      this.#every(this.#opts.gcIntervalMs ?? 3600_000, () => {
        const freed = this.#server?.store.collectGarbage();
        if (freed && freed.storageIndexes > 0) this.#opts.log?.(`storage: collected ${freed.storageIndexes} files whose leases expired (${freed.bytes} bytes)`);
      });
    } else {
      this.#withdrawIfAnnounced();
    }
    this.#every(this.#opts.checkIntervalMs ?? DAY_MS, () => void this.maintain());
  }

  async #close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#node.off('entry.appended', this.#onEntry);
    this.#node.off('entry.replicated', this.#onEntry);
    this.#opts.mixnet?.off('linked', this.#onLinked);
    this.#mixServer?.close();
    this.#mixReads?.close();
    await Promise.allSettled([this.#maintaining, ...this.#running]);
    await this.#server?.close();
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.#timers.push(t);
  }

  #chooseBackend(choice: StorageBackendChoice): StorageBackend {
    return choice.kind === 'tahoe' ? new TahoeBackend({ url: choice.url }) : this.#peers;
  }

  // ------------------------------------------------------------------------------------------
  // Announcements

  #announceIfDue(starting: boolean): void {
    const server = this.#server;
    if (!server || this.#life.closing) return;
    const ttl = this.#opts.announceTtlMs ?? DAY_MS;
    const endpoint = this.#opts.server?.advertise ?? server.url;
    const own = this.directory.get(this.#node.id);
    const quota = server.store.quotaBytes;
    // The provider keeping our mailbox, when the mixnet link is up: readers reach us through it.
    const provider = this.#opts.mixnet?.connected ? (this.#opts.mixnet.home ?? undefined) : undefined;
    const sameProvider = provider === undefined || (own?.provider !== undefined && equalBytes(own.provider, provider));
    const fresh = own && own.endpoint === endpoint && own.quota === quota && sameProvider && own.until - Date.now() > ttl / 2;
    if (fresh) return;
    const free = Math.max(0, quota - server.store.usedBytes);
    this.#node.append(announcementDraft({ endpoint, quota, free, until: Date.now() + ttl, ...(provider ? { provider } : {}) }));
    if (starting) this.#opts.log?.(`storage: serving shares on ${endpoint} (quota ${quota} bytes), announced in the signed log`);
  }

  /** A node that served before and no longer does says so, so clients stop placing shares on it. */
  #withdrawIfAnnounced(): void {
    const own = this.directory.get(this.#node.id);
    if (!own || own.quota === 0 || own.until <= Date.now()) return;
    this.#node.append(announcementDraft({ endpoint: own.endpoint, quota: 0, free: 0, until: Date.now() + (this.#opts.announceTtlMs ?? DAY_MS) }));
  }

  /**
   * The way a read reaches `server` (./options.ts `reads`): a mixnet channel, null for the node's
   * route, or an error when the server must not be dialled (reads through the mixnet only).
   */
  #readChannel(server: ServerInfo, reader: Parameters<MixStorageReads['open']>[1]): StorageChannel | null {
    const mode = this.#opts.reads ?? 'auto';
    if (mode === 'direct') return null;
    const ch = this.#mixReads?.open(server, reader) ?? null;
    if (mode === 'mixnet') {
      if (!ch) throw new Error(this.#mixReads?.ready ? 'this server announced no mixnet provider (reads go through the mixnet only)' : 'no mixnet provider link yet (reads go through the mixnet only)');
      return ch;
    }
    // auto: Tor already hides the reader's address (and is faster); otherwise the mixnet when it can.
    if (!ch || this.#node.dialRoute(server.url, server.id)?.agent) {
      ch?.close();
      return null;
    }
    return ch;
  }

  /** Counters of reads through the mixnet (as reader and as server), for the API. */
  mixnetStats(): { reads: MixStorageReads['stats'] | null; served: MixStorageServer['stats'] | null } {
    return { reads: this.#mixReads?.stats ?? null, served: this.#mixServer?.stats ?? null };
  }

  // ------------------------------------------------------------------------------------------
  // Operations (API)

  #live(): void {
    if (this.#life.closing) throw DeaddropError.closed('storage');
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#running.add(p);
    void p.then(() => this.#running.delete(p), () => this.#running.delete(p));
    return p;
  }

  /** A progress callback publishing `storage.progress` for `op`, at most every 250 ms (and the first and last of each phase). */
  #progress(op: string): (p: StoreProgress) => void {
    const reports = new ReportThrottle();
    return (p) => {
      if (!reports.take(p.done >= p.total || p.done === 0)) return;
      this.#opts.publish?.('storage.progress', `storage.progress:${op}:${p.phase}:${p.done}`, { op, phase: p.phase, done: p.done, total: p.total });
    };
  }

  #failed(op: string, action: string, err: unknown): void {
    const message = err instanceof DeaddropError ? err.message : 'internal error';
    this.#opts.publish?.('storage.failed', `storage.failed:${op}`, { op, action, code: err instanceof DeaddropError ? err.code : 'INTERNAL', message });
  }

  /** Largest file `put` accepts on the current backend (the peers backend streams: no limit of its own). */
  maxPutBytes(): number {
    return this.#backend.kind === 'peers' ? MAX_FILE_BYTES : TAHOE_MAX_PUT_BYTES;
  }

  /** Stores `data`; kept alive by this daemon unless `keep` is false. */
  put(data: Uint8Array, opts: PutOptions = {}): Promise<PutOutcome> {
    return this.#put(data, opts);
  }

  /**
   * Stores a file arriving as a stream (the API's upload body): spooled to a 0600 file under the
   * storage directory as it comes (nothing buffered whole), then put from that file, which the
   * peers backend reads twice by ranges in bounded memory; the spool file is removed after.
   * Larger than {@link maxPutBytes}: BAD_INPUT.
   */
  async putStream(body: Readable, opts: PutOptions = {}): Promise<PutOutcome> {
    this.#live();
    const dir = join(this.#opts.dir, 'uploads');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${randomBytes(16).toString('hex')}.upload`);
    const max = this.maxPutBytes();
    let seen = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        seen += chunk.length;
        if (seen > max) done(DeaddropError.badInput(`the file is larger than this node's storage takes: at most ${max} bytes`));
        else done(null, chunk);
      },
    });
    try {
      await this.#track(pipeline(body, limit, createWriteStream(path, { mode: 0o600, flags: 'wx' })));
      const source = await openFileSource(path);
      try {
        return await this.#put(source, opts);
      } finally {
        await source.close();
      }
    } finally {
      await rm(path, { force: true });
    }
  }

  #put(data: Uint8Array | FileSource, opts: PutOptions): Promise<PutOutcome> {
    this.#live();
    const op = opts.op ?? newOp();
    return this.#track((async () => {
      try {
        const onProgress = this.#progress(op);
        const backend = this.#backend;
        const r = backend instanceof PeerStorageBackend
          ? await backend.put(data, { onProgress, ...(opts.shares ? { shares: opts.shares } : {}) })
          // The Tahoe backend seals the file whole (ChaCha20-Poly1305), within TAHOE_MAX_PUT_BYTES.
          : await backend.put(data instanceof Uint8Array ? data : await data.read(0, data.size), { onProgress });
        const verifyCap = 'verifyCap' in r ? (r.verifyCap as string) : null;
        const storageIndex = verifyCap ? classifyCap(verifyCap).storageIndex : capIndex(r.readCap);
        const keep = opts.keep !== false;
        if (keep) this.#kept.keep({ storageIndex, backend: backend.kind, name: opts.name ?? null, size: r.size, capKind: 'read', cap: r.readCap, verifyCap });
        this.#opts.publish?.('storage.put', `storage.put:${op}`, { op, storageIndex, size: r.size, backend: backend.kind, kept: keep });
        return { op, readCap: r.readCap, verifyCap, storageIndex, size: r.size, backend: backend.kind, kept: keep, holders: 'holders' in r ? (r.holders as ServerInfo[]) : [] };
      } catch (err) {
        this.#failed(op, 'put', err);
        throw err;
      }
    })());
  }

  /** The backend that reads `cap` (./cap-route.ts): a peers file on any node, a Tahoe file on a Tahoe node only. */
  #readerOf(cap: string): StorageBackend {
    if (readBackendFor(cap, this.#backend.kind) === 'tahoe') return this.#backend;
    classifyCap(cap);
    return this.#peers;
  }

  /**
   * Reads a file by its read capability (verified before it is returned), on the backend the
   * capability names. `servers`: peers files, servers to ask besides the verified ones (hints
   * handed over with the cap).
   */
  get(cap: string, opts: { op?: string; servers?: readonly ServerInfo[] } = {}): Promise<Uint8Array> {
    this.#live();
    const op = opts.op ?? newOp();
    const backend = this.#readerOf(cap);
    return this.#track((async () => {
      try {
        const onProgress = this.#progress(op);
        const data = backend instanceof PeerStorageBackend ? await backend.get(cap, { onProgress, ...(opts.servers ? { servers: opts.servers } : {}) }) : await backend.get(cap, { onProgress });
        this.#opts.publish?.('storage.get', `storage.get:${op}`, { op, size: data.length });
        return data;
      } catch (err) {
        this.#failed(op, 'get', err);
        throw err;
      }
    })());
  }

  /**
   * Opens a file for reading as a stream: errors that need no byte (bad cap, too few shares) are
   * thrown here; afterwards `stream` yields the plaintext in order. On the peers backend it is
   * fetched segment by segment in bounded memory; a Tahoe-LAFS file is read whole first. A
   * failure mid-stream destroys the stream (and publishes `storage.failed`).
   */
  async getStream(cap: string, opts: { op?: string; servers?: readonly ServerInfo[] } = {}): Promise<{ size: number; stream: Readable }> {
    this.#live();
    const op = opts.op ?? newOp();
    const backend = this.#readerOf(cap);
    if (!(backend instanceof PeerStorageBackend)) {
      const data = await this.get(cap, opts);
      return { size: data.length, stream: Readable.from([Buffer.from(data.buffer, data.byteOffset, data.length)]) };
    }
    let reader: FileReader;
    try {
      reader = await this.#track(backend.openRead(cap, opts.servers ? { servers: opts.servers } : {}));
    } catch (err) {
      this.#failed(op, 'get', err);
      throw err;
    }
    const onProgress = this.#progress(op);
    const stream = new PassThrough({ highWaterMark: 1 << 20 });
    // Its consumer sees a failure as the stream's error; with none attached yet, it must not crash the daemon.
    stream.on('error', () => undefined);
    const drained = (): Promise<void> => new Promise((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        stream.off('close', done);
        resolve();
      };
      stream.once('drain', done);
      stream.once('close', done);
    });
    void this.#track((async () => {
      try {
        await reader.pipe(async (chunk) => {
          if (stream.destroyed) throw new DeaddropError('TIMEOUT', 'the reader went away');
          if (!stream.write(chunk)) await drained();
        }, (phase, done, total) => onProgress({ phase, done, total }));
        stream.end();
        this.#opts.publish?.('storage.get', `storage.get:${op}`, { op, size: reader.size });
      } catch (err) {
        this.#failed(op, 'get', err);
        stream.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    })());
    return { size: reader.size, stream };
  }

  /** Checks (and with `repair`, repairs) a file by its read or verify capability. */
  check(cap: string, opts: { repair?: boolean; op?: string } = {}): Promise<StorageCheckResult & { storageIndex: string }> {
    this.#live();
    const op = opts.op ?? newOp();
    checkOwnBackend(cap, this.#backend.kind);
    const storageIndex = this.#backend.kind === 'peers' ? classifyCap(cap).storageIndex : capIndex(cap);
    return this.#track((async () => {
      try {
        const r = await this.#checkOne(cap, { repair: opts.repair === true, renew: false, op });
        const kept = this.#kept.get(storageIndex);
        if (kept) this.#recordCheck(storageIndex, r);
        this.#publishCheck(op, storageIndex, r, false);
        return { ...r, storageIndex };
      } catch (err) {
        this.#failed(op, opts.repair ? 'repair' : 'check', err);
        throw err;
      }
    })());
  }

  async #checkOne(cap: string, o: { repair: boolean; renew: boolean; op: string }): Promise<StorageCheckResult> {
    const onProgress = this.#progress(o.op);
    const backend = this.#backend;
    return backend instanceof PeerStorageBackend ? backend.check(cap, { repair: o.repair, renew: o.renew, onProgress }) : backend.check(cap, { repair: o.repair });
  }

  /** The kept file's last check: its summary in the database, its share health per server in memory (until restart). */
  #recordCheck(storageIndex: string, r: StorageCheckResult): void {
    this.#kept.recordCheck(storageIndex, { healthy: r.healthy, sharesFound: r.sharesFound, repaired: r.repaired, problem: r.problems[0] ?? null });
    if (r.servers) this.#lastServers.set(storageIndex, r.servers);
  }

  #publishCheck(op: string, storageIndex: string, r: StorageCheckResult, scheduled: boolean): void {
    this.#opts.publish?.('storage.check', `storage.check:${op}`, {
      op, storageIndex, healthy: r.healthy, sharesFound: r.sharesFound, sharesNeeded: r.sharesNeeded, sharesTotal: r.sharesTotal, repaired: r.repaired, scheduled,
      ...(r.servers ? { servers: r.servers } : {}),
    });
  }

  /** Keeps a file put elsewhere (pin): its leases are renewed and it is checked and repaired on schedule. */
  keep(cap: string, name?: string): KeptFile {
    this.#live();
    const backend = this.#backend.kind;
    checkOwnBackend(cap, backend);
    let storageIndex: string;
    let verifyCap: string | null = null;
    let capKind: 'read' | 'verify' = 'read';
    let size = 0;
    if (backend === 'peers') {
      const c = classifyCap(cap);
      storageIndex = c.storageIndex;
      verifyCap = c.verifyCap;
      capKind = c.kind;
      size = Number(/:(\d+)$/.exec(cap)?.[1] ?? 0);
    } else {
      storageIndex = capIndex(cap);
    }
    this.#kept.keep({ storageIndex, backend, name: name ?? null, size, capKind, cap, verifyCap });
    return this.#kept.get(storageIndex) as KeptFile;
  }

  /** Stops keeping a file (its shares stay until their leases expire). */
  forget(storageIndex: string): boolean {
    this.#live();
    this.#lastServers.delete(storageIndex);
    return this.#kept.forget(storageIndex);
  }

  /** Files kept by this node, with the share health per server of their last check since the daemon started (null before). */
  list(): (KeptFile & { servers: readonly ServerHealth[] | null })[] {
    this.#live();
    return this.#kept.list().map((f) => ({ ...f, servers: this.#lastServers.get(f.storageIndex) ?? null }));
  }

  /**
   * One maintenance round over the kept files: renew this node's leases on every server holding a
   * valid share, regenerate missing or corrupt shares onto fresh servers. Rounds never overlap.
   */
  maintain(): Promise<void> {
    if (this.#life.closing) return this.#maintaining;
    this.#maintaining = this.#maintaining.then(() => this.#maintainRound()).catch((err: unknown) => {
      this.#opts.log?.(`storage: maintenance failed: ${err instanceof Error ? err.message : String(err)}`);
    });
    return this.#maintaining;
  }

  async #maintainRound(): Promise<void> {
    for (const f of this.#kept.list()) {
      if (this.#life.closing) return;
      if (f.backend !== this.#backend.kind) continue;
      const cap = f.verifyCap ?? f.cap;
      if (cap === null) continue;
      const op = newOp();
      try {
        const r = await this.#checkOne(cap, { repair: true, renew: true, op });
        this.#recordCheck(f.storageIndex, r);
        this.#publishCheck(op, f.storageIndex, r, true);
        if (r.repaired > 0) this.#opts.log?.(`storage: repaired ${r.repaired} share${r.repaired > 1 ? 's' : ''} of a kept file`);
      } catch (err) {
        this.#kept.recordCheck(f.storageIndex, { healthy: false, sharesFound: 0, repaired: 0, problem: err instanceof Error ? err.message : String(err) });
        this.#failed(op, 'maintain', err);
      }
    }
  }

  /** The server role and the directory as `store server status` shows them. */
  status(): ServerStatus {
    this.#live();
    const s = this.#server;
    const store = s?.store;
    let shares = 0;
    let active = 0;
    let next: number | null = null;
    const now = Date.now();
    for (const si of store?.storageIndexes() ?? []) {
      shares += store!.list(si).length;
      const expiry = store!.leaseExpiry(si);
      if (expiry !== undefined && expiry > now) {
        active++;
        next = next === null ? expiry : Math.min(next, expiry);
      }
    }
    const self = toHex(this.#node.id);
    return {
      serving: s !== null, url: this.#opts.server?.advertise ?? s?.url ?? null, quotaBytes: store?.quotaBytes ?? null, usedBytes: store?.usedBytes ?? null,
      shares: store ? shares : null, storageIndexes: store ? store.storageIndexes().length : null, activeLeases: store ? active : null, nextLeaseExpiry: next,
      announcedUntil: s ? (this.directory.get(this.#node.id)?.until ?? null) : null, backend: this.#backend.kind,
      knownServers: this.directory.announcements().map((a) => ({
        id: toHex(a.id), endpoint: a.endpoint, quota: a.quota, free: a.free, until: a.until, self: toHex(a.id) === self, provider: a.provider ? toHex(a.provider) : null,
      })),
      refusedAnnouncements: this.directory.refused, keptFiles: this.#kept.list().length, reads: this.#opts.reads ?? 'auto', mixnet: this.mixnetStats(),
    };
  }
}

function newOp(): string {
  return randomBytes(16).toString('hex');
}

/** A storage index for a capability of another backend (Tahoe's): a hash, so the cap itself is never a key. */
function capIndex(cap: string): string {
  return toHex(sha256(utf8(`deaddrop:storage:foreign-cap:${cap}`))).slice(0, 32);
}
