/**
 * Electrum backend (ElectrumX, Fulcrum, electrs speak the same protocol 1.4–1.6).
 *
 * NOTE: an Electrum server never hands out whole blocks, so this backend only watches known
 * scripts: `fullBlocks` and `mempool` are false, and deaddrop's OP_RETURN scanning needs another
 * backend. It follows the tip by `blockchain.headers.subscribe`, proves inclusion with merkle
 * branches against the headers it fetches, and checks that every raw transaction it is served
 * hashes to the txid it asked for.
 *
 * The socket is re-dialled with exponential backoff when it drops; headers and watched scripts
 * are re-subscribed, then `reconnected` and the current `tip` are emitted. Reads retry once across
 * a reconnect; broadcasts never do.
 */
import { DeaddropError, isDeaddropError } from '../../util/errors.js';
import { networkFromGenesis, type Network } from '../../util/network.js';
import type {
  BackendOptions, BlockHeader, BroadcastResult, ChainCapabilities, ChainEvent, ChainListener, ChainSource, ChainTip,
  FeeEstimate, ScriptHistoryItem, ScriptUnspent,
} from '../types.js';
import { ElectrumConnection, ElectrumServerError } from './electrum-client.js';
import {
  btcPerKvBToSatPerVb, isHash, parseHeader, scriptHash, txidFromRaw, validateHeaderNotification, validateHistory,
  validateMerkleProof, validateUnspent, verifyMerkleBranch, type MerkleProof,
} from './electrum-codec.js';
import { fromHex, toHex } from '../../util/bytes.js';
import { Backoff } from '../../util/time.js';
import { Lifecycle } from '../../util/lifecycle.js';

/** Options of the Electrum backend on top of the common ones. */
export interface ElectrumOptions extends BackendOptions {
  /** Verify the server's TLS certificate (default true; many public servers are self-signed). */
  readonly tlsRejectUnauthorized?: boolean;
  /** First reconnect delay in ms (default 250); doubles up to `reconnectMaxMs` (default 10 s). */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
}

const CLIENT_NAME = 'deaddrop/0.1';
const PROTOCOL_RANGE = ['1.4', '1.6'];
const PING_MS = 60_000;
/** Hash → height entries kept to answer getBlockHeader(hash) without a search. */
const HEADER_CACHE_SIZE = 20_000;
/** How far below the tip getBlockHeader(hash) searches for an unknown hash. */
const HEADER_SEARCH_DEPTH = 4 * 2016;
const HEADERS_PER_CHUNK = 2016;

export class ElectrumSource implements ChainSource {
  readonly kind = 'electrum' as const;
  readonly capabilities: ChainCapabilities = Object.freeze({
    fullBlocks: false, anyTransaction: true, mempool: false, scriptHistory: true, push: true, rawBlockRoute: 'none',
  } as const);

  readonly #host: string;
  readonly #port: number;
  readonly #tls: boolean;
  readonly #opts: ElectrumOptions;
  readonly #timeoutMs: number;
  readonly #listeners = new Set<ChainListener>();
  /** Watched scripts: script hash → script hex. */
  readonly #scripts = new Map<string, string>();
  /** Hash → height hints (kept across tips, checked on use). */
  readonly #heights = new Map<string, number>();
  /** The server's current chain by height; cleared whenever the tip changes, since a reorg may replace any of it. */
  readonly #byHeight = new Map<number, BlockHeader>();
  #tipHeader: BlockHeader | undefined;
  /** Bumped on every tip change, so an answer that raced a reorg is not cached. */
  #tipEpoch = 0;
  #conn: ElectrumConnection | undefined;
  #dialing: ElectrumConnection | undefined;
  #connWaiters: Array<{ resolve: (c: ElectrumConnection) => void; reject: (e: Error) => void }> = [];
  #net: Network | undefined;
  readonly #backoff: Backoff;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  readonly #life = new Lifecycle('electrum backend', { open: () => this.#open(), close: async () => undefined });

  constructor(host: string, port: number, tls: boolean, opts: ElectrumOptions) {
    if (!host) throw new TypeError('host must be a non-empty string');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port must be 1..65535, got ${port}`);
    this.#host = host;
    this.#port = port;
    this.#tls = tls;
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs ?? 20_000;
    const initialMs = opts.reconnectMinMs ?? 250;
    this.#backoff = new Backoff({ initialMs, maxMs: Math.max(initialMs, opts.reconnectMaxMs ?? 10_000) });
    // Everything stops the moment close() is called: a dial in flight fails at once instead of
    // running into its timeout, and the lifecycle then waits for the open to settle.
    this.#life.signal.addEventListener('abort', () => this.#halt(), { once: true });
    opts.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** Connects, negotiates the protocol and checks the network. Memoized. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  /** Closes the socket and timers. Idempotent. */
  close(): Promise<void> {
    return this.#life.close();
  }

  async network(): Promise<Network> {
    await this.ready();
    return this.#net as Network;
  }

  /**
   * The server's tip. NOTE: answered from the header subscription (the server pushes every new
   * tip), so it costs no round trip; ElectrumX >= 1.18 holds small responses up to 1 s to pad them.
   */
  async getTip(): Promise<ChainTip> {
    this.#assertOpen();
    await this.ready();
    await this.#live();
    const t = this.#tipHeader as BlockHeader;
    return { height: t.height, hash: t.hash };
  }

  async getBlockHash(height: number): Promise<string> {
    return (await this.#headerAt(height)).hash;
  }

  async getBlockHeader(hash: string): Promise<BlockHeader> {
    if (!isHash(hash)) throw new TypeError(`block hash must be 64 hex chars, got ${JSON.stringify(hash)}`);
    const known = this.#heights.get(hash);
    if (known !== undefined) {
      const h = await this.#headerAt(known).catch(() => undefined);
      if (h?.hash === hash) return h;
    }
    return this.#searchHeader(hash);
  }

  async getRawBlock(_hash: string): Promise<Uint8Array> {
    throw DeaddropError.unsupported('an Electrum server does not serve whole blocks');
  }

  async getMempoolTxids(): Promise<string[]> {
    throw DeaddropError.unsupported('an Electrum server does not list the mempool');
  }

  async getRawTransaction(txid: string): Promise<Uint8Array> {
    if (!isHash(txid)) throw new TypeError(`txid must be 64 hex chars, got ${JSON.stringify(txid)}`);
    const hex = await this.#read('blockchain.transaction.get', [txid, false]).catch((e: unknown) => {
      throw isServerError(e) && /no information|not found|no such/i.test(e.serverMessage) ? DeaddropError.notFound(`transaction ${txid} not found`) : e;
    });
    if (typeof hex !== 'string' || !/^([0-9a-f]{2})+$/i.test(hex)) throw DeaddropError.protocol('transaction.get: not hex');
    const raw = fromHex(hex);
    if (txidFromRaw(raw) !== txid) throw DeaddropError.protocol(`server sent a transaction that is not ${txid}`);
    return raw;
  }

  async broadcast(rawTx: Uint8Array): Promise<BroadcastResult> {
    this.#assertOpen();
    await this.ready();
    const conn = await this.#live();
    let result: unknown;
    try {
      result = await conn.request('blockchain.transaction.broadcast', [toHex(rawTx)]);
    } catch (e) {
      if (isServerError(e)) return { accepted: false, reason: e.serverMessage, code: e.rpcCode };
      throw e;
    }
    if (!isHash(result)) return { accepted: false, reason: `unexpected broadcast answer: ${String(result).slice(0, 200)}` };
    return { accepted: true, txid: result };
  }

  async estimateFee(targetBlocks: number, fallbackSatPerVb: number): Promise<FeeEstimate> {
    if (!Number.isInteger(targetBlocks) || targetBlocks < 1) throw new RangeError(`targetBlocks must be >= 1, got ${targetBlocks}`);
    let btcPerKvB: unknown;
    try {
      btcPerKvB = await this.#read('blockchain.estimatefee', [targetBlocks]);
    } catch (e) {
      if (!isServerError(e)) throw e;
    }
    if (typeof btcPerKvB === 'number' && btcPerKvB > 0) return { satPerVb: btcPerKvBToSatPerVb(btcPerKvB), source: 'node' };
    return { satPerVb: fallbackSatPerVb, source: 'fallback' };
  }

  async getScriptHistory(script: Uint8Array): Promise<ScriptHistoryItem[]> {
    return validateHistory(await this.#read('blockchain.scripthash.get_history', [scriptHash(script)]));
  }

  async getScriptUnspent(script: Uint8Array): Promise<ScriptUnspent[]> {
    return validateUnspent(await this.#read('blockchain.scripthash.listunspent', [scriptHash(script)]));
  }

  /** Subscribes to `script` events for this output script; kept across reconnects. */
  async watchScript(script: Uint8Array): Promise<void> {
    const sh = scriptHash(script);
    this.#scripts.set(sh, toHex(script));
    await this.#read('blockchain.scripthash.subscribe', [sh]);
  }

  /** The server's merkle proof for `txid` in the block at `height` (unverified: see verifyTxInBlock). */
  async getMerkleProof(txid: string, height: number): Promise<MerkleProof> {
    if (!isHash(txid)) throw new TypeError(`txid must be 64 hex chars, got ${JSON.stringify(txid)}`);
    return validateMerkleProof(await this.#read('blockchain.transaction.get_merkle', [txid, height]));
  }

  /** True when the server proves `txid` is in the block at `height`, checked against that block's header. */
  async verifyTxInBlock(txid: string, height: number): Promise<boolean> {
    // Both asked at once: ElectrumX may hold each answer up to 1 s (response padding).
    const [proof, header] = await Promise.all([
      this.getMerkleProof(txid, height).catch((e: unknown) => {
        if (isServerError(e) || isDeaddropError(e, 'PROTOCOL')) return undefined;
        throw e;
      }),
      this.#headerAt(height).catch((e: unknown) => {
        if (isDeaddropError(e, 'NOT_FOUND')) return undefined;
        throw e;
      }),
    ]);
    if (proof === undefined || header === undefined || proof.blockHeight !== height) return false;
    return verifyMerkleBranch(txid, proof.branch, proof.pos, header.merkleRoot);
  }

  subscribe(listener: ChainListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  // --- internals ---

  async #open(): Promise<void> {
    const conn = await this.#dial();
    if (this.#life.closing) {
      conn.close();
      throw DeaddropError.closed('electrum backend');
    }
    this.#conn = conn;
    this.#pingTimer = setInterval(() => void this.#conn?.request('server.ping').catch(() => undefined), PING_MS);
    this.#pingTimer.unref();
  }

  #halt(): void {
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#pingTimer);
    this.#conn?.close();
    this.#dialing?.close();
    this.#conn = undefined;
    for (const w of this.#connWaiters) w.reject(DeaddropError.closed('electrum backend'));
    this.#connWaiters = [];
    this.#listeners.clear();
  }

  /** Opens a socket, negotiates, checks the network and (re)subscribes headers and scripts. */
  async #dial(): Promise<ElectrumConnection> {
    const conn: ElectrumConnection = new ElectrumConnection({
      host: this.#host, port: this.#port, tls: this.#tls, timeoutMs: this.#timeoutMs,
      tlsRejectUnauthorized: this.#opts.tlsRejectUnauthorized,
      onNotification: (method, params) => this.#onNotification(method, params),
      onClose: (reason) => this.#onDisconnect(conn, reason),
    });
    this.#dialing = conn;
    try {
      await conn.connect();
      await conn.request('server.version', [CLIENT_NAME, PROTOCOL_RANGE]);
      const genesis = parseHeader(String(await conn.request('blockchain.block.header', [0])), 0);
      const got = networkFromGenesis(genesis.hash);
      if (got !== this.#opts.expectedNetwork) throw DeaddropError.wrongNetwork(this.#opts.expectedNetwork, got ?? `unknown chain ${genesis.hash}`);
      this.#net = got;
      this.#setTip(validateHeaderNotification(await conn.request('blockchain.headers.subscribe', [])));
      for (const sh of this.#scripts.keys()) await conn.request('blockchain.scripthash.subscribe', [sh]);
      return conn;
    } catch (e) {
      conn.close();
      throw e;
    } finally {
      if (this.#dialing === conn) this.#dialing = undefined;
    }
  }

  #onDisconnect(conn: ElectrumConnection, reason: string): void {
    if (this.#life.closing || conn !== this.#conn) return;
    this.#conn = undefined;
    this.#emit({ type: 'disconnected', reason });
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#life.closing) return;
    this.#reconnectTimer = setTimeout(() => void this.#reconnect(), this.#backoff.next());
  }

  async #reconnect(): Promise<void> {
    let conn: ElectrumConnection;
    try {
      conn = await this.#dial();
    } catch {
      return this.#scheduleReconnect();
    }
    if (this.#life.closing) return conn.close();
    this.#conn = conn;
    this.#backoff.reset();
    for (const w of this.#connWaiters) w.resolve(conn);
    this.#connWaiters = [];
    this.#emit({ type: 'reconnected' });
    const t = this.#tipHeader as BlockHeader;
    this.#emit({ type: 'tip', tip: { height: t.height, hash: t.hash } });
  }

  /** The live connection, waiting up to the request timeout for a reconnect. */
  #live(): Promise<ElectrumConnection> {
    if (this.#life.closing) return Promise.reject(DeaddropError.closed('electrum backend'));
    if (this.#conn) return Promise.resolve(this.#conn);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (c: ElectrumConnection) => (clearTimeout(timer), resolve(c)),
        reject: (e: Error) => (clearTimeout(timer), reject(e)),
      };
      const timer = setTimeout(() => {
        this.#connWaiters = this.#connWaiters.filter((w) => w !== waiter);
        reject(DeaddropError.unreachable(`electrum server ${this.#host}:${this.#port}`, 'reconnecting'));
      }, this.#timeoutMs);
      this.#connWaiters.push(waiter);
    });
  }

  /** An idempotent request: retried once if the connection dropped under it. */
  async #read(method: string, params: unknown[]): Promise<unknown> {
    this.#assertOpen();
    await this.ready();
    try {
      return await (await this.#live()).request(method, params);
    } catch (e) {
      if (!isDeaddropError(e, 'BACKEND_UNREACHABLE') || this.#life.closing) throw e;
      return (await this.#live()).request(method, params);
    }
  }

  async #headerAt(height: number): Promise<BlockHeader> {
    if (!Number.isSafeInteger(height) || height < 0) throw new RangeError(`height must be a non-negative integer, got ${height}`);
    const cached = this.#byHeight.get(height);
    if (cached) return cached;
    const epoch = this.#tipEpoch;
    const hex = await this.#read('blockchain.block.header', [height]).catch((e: unknown) => {
      throw isServerError(e) && /out of range/i.test(e.serverMessage) ? DeaddropError.notFound(`no block at height ${height}`) : e;
    });
    if (typeof hex !== 'string') throw DeaddropError.protocol('block.header: not a string');
    const header = parseHeader(hex, height);
    if (epoch === this.#tipEpoch) this.#remember(header);
    return header;
  }

  /** Walks back from the tip in chunks of headers looking for `hash`. */
  async #searchHeader(hash: string): Promise<BlockHeader> {
    const tip = await this.getTip();
    const epoch = this.#tipEpoch;
    const floor = Math.max(0, tip.height - HEADER_SEARCH_DEPTH);
    for (let end = tip.height + 1; end > floor; end -= HEADERS_PER_CHUNK) {
      const start = Math.max(floor, end - HEADERS_PER_CHUNK);
      const headers = headersOf(await this.#read('blockchain.block.headers', [start, end - start]));
      for (let i = 0; i < headers.length; i++) {
        const h = parseHeader(headers[i] as string, start + i);
        if (epoch === this.#tipEpoch) this.#remember(h);
        if (h.hash === hash) return h;
      }
    }
    throw DeaddropError.notFound(`block ${hash} not found within ${HEADER_SEARCH_DEPTH} blocks of the tip`);
  }

  #onNotification(method: string, params: unknown[]): void {
    try {
      if (method === 'blockchain.headers.subscribe') {
        const h = validateHeaderNotification(params[0]);
        this.#setTip(h);
        this.#emit({ type: 'tip', tip: { height: h.height, hash: h.hash } });
      } else if (method === 'blockchain.scripthash.subscribe') {
        const scriptHex = typeof params[0] === 'string' ? this.#scripts.get(params[0]) : undefined;
        if (scriptHex !== undefined) this.#emit({ type: 'script', scriptHex });
      }
    } catch {
      // A malformed notification from the server is ignored.
    }
  }

  #setTip(h: BlockHeader): void {
    if (this.#tipHeader?.hash !== h.hash) {
      this.#tipEpoch++;
      this.#byHeight.clear();
    }
    this.#tipHeader = h;
    this.#remember(h);
  }

  #remember(h: BlockHeader): void {
    this.#heights.delete(h.hash);
    this.#heights.set(h.hash, h.height);
    if (this.#heights.size > HEADER_CACHE_SIZE) this.#heights.delete(this.#heights.keys().next().value as string);
    if (this.#byHeight.size >= HEADER_CACHE_SIZE) this.#byHeight.clear();
    this.#byHeight.set(h.height, h);
  }

  #emit(event: ChainEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  #assertOpen(): void {
    if (this.#life.closing) throw DeaddropError.closed('electrum backend');
  }
}

/** `blockchain.block.headers` answers `{hex}` (concatenated) up to protocol 1.5 and `{headers: [hex]}` from 1.6. */
function headersOf(answer: unknown): string[] {
  const a = (typeof answer === 'object' && answer !== null ? answer : {}) as { hex?: unknown; headers?: unknown };
  if (Array.isArray(a.headers) && a.headers.every((h) => typeof h === 'string')) return a.headers as string[];
  if (typeof a.hex === 'string' && a.hex.length % 160 === 0) return a.hex.match(/.{160}/g) ?? [];
  throw DeaddropError.protocol('block.headers: expected {hex} or {headers}');
}

function isServerError(e: unknown): e is ElectrumServerError {
  return e instanceof ElectrumServerError;
}
