/**
 * Bitcoin Core backend: JSON-RPC with user/password or cookie auth, raw blocks over REST
 * (`/rest/block/<hash>.bin`, about 13x faster than RPC hex) when the node runs with `-rest=1`.
 *
 * - The cookie file is re-read when it changes: Core writes a new one on every start.
 * - REST is probed once at `ready()` (or on the first block fetch); when it is off the backend
 *   falls back to `getblock <hash> 0` and says so in `capabilities.rawBlockRoute`.
 * - ZMQ (`-zmqpubsequence`, optionally `-zmqpubrawtx`) pushes tip and mempool events when
 *   configured, or when the node reports its endpoints through `getzmqnotifications`; see
 *   ./zmq.ts. `capabilities.push` is true while ZMQ is live; otherwise the poller feeds events.
 * - `getBlockPrevouts` reads every prevout of a block from `getblock <hash> 3` (Core 23+), for
 *   the watcher's prevout fetcher (src/chain/follow/prevouts.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import { RPC_CODES, RpcClient, RpcError, type RpcAuth } from '../rpc.js';
import { assertHash, coreDialect } from '../dialect.js';
import type { BackendOptions, BlockPrevoutSource, ChainSource, Prevout } from '../types.js';
import { checkBlock } from '../verify.js';
import { DeaddropError } from '../../util/errors.js';
import { defaultPollInterval, RpcChainSource } from './rpc-source.js';
import { ZmqFeed, type ZmqTuning } from './zmq.js';
import { fromHex } from '../../util/bytes.js';
import { endpointsFromNotifications, type ZmqEndpoints } from './zmq-wire.js';

export interface BitcoindConfig {
  /** `http://host:port/` of the RPC server (no credentials in it). */
  readonly url: string;
  /** user/password, or the path of Core's `.cookie` file. */
  readonly auth: RpcAuth | { readonly cookieFile: string };
  /** Try REST for raw blocks (the node needs `-rest=1`). Default true. */
  readonly rest?: boolean;
  /** Injected transport (tests). */
  readonly fetch?: typeof fetch;
  /**
   * ZMQ endpoints for push events; `false` turns ZMQ off. Left out, the node is asked
   * (`getzmqnotifications`) and its `pubsequence`/`pubrawtx` endpoints are used, if any.
   */
  readonly zmq?: ZmqEndpoints | false;
  /** Timings of the ZMQ feed (tests). */
  readonly zmqTuning?: ZmqTuning;
}

/** Core answers `getblock` with verbosity 3 (prevouts) from v23.0 on. */
const VERBOSITY3_SINCE = 230_000;
/** JSON-RPC "wrong type" (Core before 0.15 takes a boolean `verbose`). */
const RPC_TYPE_ERROR = -3;
/** Sats per BTC. */
const COIN = 100_000_000n;

/**
 * A BTC amount as Core prints it (a JSON number with at most 8 decimals) → sats, exactly.
 * `toFixed(8)` gives the decimal digits of the double without float arithmetic, and the round
 * trip rejects values that are not whole sats. Undefined for anything that is not an amount.
 */
export function btcToSats(value: unknown): bigint | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 21_000_000) return undefined;
  const fixed = value.toFixed(8);
  if (Number(fixed) !== value) return undefined;
  const [whole, frac] = fixed.split('.');
  return BigInt(whole ?? '0') * COIN + BigInt(frac ?? '0');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One non-coinbase `vin` entry of verbosity 3 → its outpoint key and prevout; undefined when unusable. */
function readPrevout(input: Record<string, unknown>): [string, Prevout] | undefined {
  const { txid, vout, prevout } = input;
  if (typeof txid !== 'string' || !/^[0-9a-f]{64}$/.test(txid)) return undefined;
  if (typeof vout !== 'number' || !Number.isSafeInteger(vout) || vout < 0 || vout > 0xffffffff) return undefined;
  if (!isRecord(prevout) || !isRecord(prevout.scriptPubKey)) return undefined;
  const value = btcToSats(prevout.value);
  const hex = prevout.scriptPubKey.hex;
  if (value === undefined || typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  // Same key as outpointKey() in src/chain/follow/prevouts.ts.
  return [`${txid}:${vout}`, { script: fromHex(hex.toLowerCase()), value }];
}

/**
 * Reads `getblock <hash> 3` into outpoint → prevout. `complete` is false when some input had
 * no usable `prevout` (older Core, or a block without undo data); those are left out.
 * @throws PROTOCOL when the answer is not a block object for `hash`.
 */
export function prevoutsFromVerboseBlock(result: unknown, hash: string): { prevouts: Map<string, Prevout>; complete: boolean } {
  if (!isRecord(result) || !Array.isArray(result.tx)) throw DeaddropError.protocol('getblock 3: expected a block object with tx[]');
  if (result.hash !== hash) throw DeaddropError.protocol('getblock 3: node answered for another block');
  const prevouts = new Map<string, Prevout>();
  let complete = true;
  for (const tx of result.tx) {
    if (!isRecord(tx) || !Array.isArray(tx.vin)) {
      complete = false;
      continue;
    }
    for (const input of tx.vin) {
      if (isRecord(input) && 'coinbase' in input) continue;
      const entry = isRecord(input) ? readPrevout(input) : undefined;
      if (entry === undefined) complete = false;
      else prevouts.set(entry[0], entry[1]);
    }
  }
  return { prevouts, complete };
}

/** Reads `__cookie__:<hex>` from Core's cookie file, re-reading only when its mtime changes. */
export function cookieAuth(file: string): () => Promise<RpcAuth> {
  let cached: { mtimeMs: number; auth: RpcAuth } | undefined;
  return async () => {
    try {
      const st = await stat(file);
      if (cached?.mtimeMs === st.mtimeMs) return cached.auth;
      const text = (await readFile(file, 'utf8')).trim();
      const colon = text.indexOf(':');
      if (colon <= 0) throw DeaddropError.badInput('bitcoind cookie file is malformed');
      cached = { mtimeMs: st.mtimeMs, auth: { user: text.slice(0, colon), pass: text.slice(colon + 1) } };
      return cached.auth;
    } catch (err) {
      if (err instanceof DeaddropError) throw err;
      // No cookie usually means the node is not running (it deletes the file on shutdown).
      throw DeaddropError.unreachable('bitcoind', `cookie file not readable (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
}

/** A Bitcoin Core node as a ChainSource. */
export class BitcoindSource extends RpcChainSource implements ChainSource, BlockPrevoutSource {
  readonly #restBase: string;
  readonly #rpcHost: string;
  readonly #fetchFn: typeof fetch;
  readonly #authFn: () => Promise<RpcAuth>;
  readonly #zmqWanted: ZmqEndpoints | false | undefined;
  readonly #zmqTuning: ZmqTuning;
  #restWanted: boolean;
  #restProbe: Promise<boolean> | undefined;
  /** False once the node answered that it has no spenttxouts endpoint. */
  #spentRest = true;
  #feed: ZmqFeed | undefined;
  /** The ZMQ feed's stop, begun when `close()` is called. */
  #feedStopped: Promise<void> | undefined;
  /** False once the node is known to be too old for `getblock <hash> 3`. */
  #verbosity3 = true;
  #coreVersion: Promise<number | undefined> | undefined;

  constructor(cfg: BitcoindConfig, options: BackendOptions) {
    const auth = 'cookieFile' in cfg.auth ? cookieAuth(cfg.auth.cookieFile) : constantAuth(cfg.auth);
    super({
      kind: 'bitcoind',
      dialect: coreDialect,
      makeClient: (signal) => new RpcClient({ url: cfg.url, auth, timeoutMs: options.timeoutMs, fetch: cfg.fetch, signal }),
      options,
      capabilities: { fullBlocks: true, anyTransaction: false, mempool: true, scriptHistory: false, push: false, rawBlockRoute: 'rpc' },
    });
    this.#authFn = auth;
    this.#fetchFn = cfg.fetch ?? globalThis.fetch;
    this.#restWanted = cfg.rest ?? true;
    this.#zmqWanted = cfg.zmq;
    this.#zmqTuning = cfg.zmqTuning ?? {};
    const u = new URL(cfg.url);
    this.#restBase = `${u.protocol}//${u.host}`;
    this.#rpcHost = u.hostname;
  }

  /** Like the shared open, but feeds events from ZMQ when the node publishes them. */
  protected override async open(signal: AbortSignal): Promise<void> {
    if (this.#zmqWanted === false) return super.open(signal);
    const got = await this.network();
    if (got !== this.options.expectedNetwork) throw DeaddropError.wrongNetwork(this.options.expectedNetwork, got);
    await this.probe();
    const endpoints = this.#zmqWanted ?? (await this.#discoverZmq());
    const tip = await this.dialect.getTip(this.client);
    const mempool = await this.dialect.getMempoolTxids(this.client);
    if (signal.aborted) return;
    if (endpoints === undefined) return this.poller.start(tip, mempool);
    this.#feed = new ZmqFeed({
      ...this.#zmqTuning,
      endpoints,
      listeners: this.listeners,
      getTip: () => this.dialect.getTip(this.client),
      getMempool: () => this.dialect.getMempoolTxids(this.client),
      pollIntervalMs: this.options.pollIntervalMs ?? defaultPollInterval(this.options.expectedNetwork),
      onLiveChange: (live) => {
        this.caps = { ...this.caps, push: live };
      },
    });
    this.#feed.start(tip, mempool);
  }

  /** The node's `pubsequence`/`pubrawtx` endpoints, or undefined when it has none (or no ZMQ at all). */
  async #discoverZmq(): Promise<ZmqEndpoints | undefined> {
    try {
      return endpointsFromNotifications(await this.client.call('getzmqnotifications'), this.#rpcHost);
    } catch (err) {
      if (err instanceof RpcError) return undefined; // built without ZMQ: method not found
      throw err;
    }
  }

  protected override stopFeed(): void {
    super.stopFeed();
    this.#feedStopped = this.#feed?.stop();
  }

  protected override async shutdown(): Promise<void> {
    await super.shutdown();
    await this.#feedStopped;
  }

  protected override async probe(): Promise<void> {
    const rest = await this.#probeRest();
    const txindex = await this.#probeCoreTxIndex();
    this.caps = { ...this.caps, anyTransaction: txindex, rawBlockRoute: rest ? 'rest' : 'rpc' };
  }

  /** `getindexinfo` says whether -txindex is on (Core 0.21+); older nodes get the generic probe. */
  async #probeCoreTxIndex(): Promise<boolean> {
    try {
      const info = await this.client.call<Record<string, unknown>>('getindexinfo', ['txindex']);
      return typeof info === 'object' && info !== null && 'txindex' in info;
    } catch {
      return this.probeTxIndex();
    }
  }

  /** True once REST answered; probed once, a failed probe means RPC from then on. */
  #probeRest(): Promise<boolean> {
    if (!this.#restWanted) return Promise.resolve(false);
    this.#restProbe ??= this.#restGet('/rest/chaininfo.json')
      .then((res) => res.ok)
      .catch(() => false)
      .then((ok) => {
        this.#restWanted = ok;
        return ok;
      });
    return this.#restProbe;
  }

  async #restGet(path: string): Promise<Response> {
    const a = await this.#authFn();
    // Core's REST needs no auth; the header is harmless and lets an authenticating proxy through.
    const authorization = `Basic ${Buffer.from(`${a.user}:${a.pass}`, 'utf8').toString('base64')}`;
    const signal = AbortSignal.timeout(this.options.timeoutMs ?? 10_000);
    try {
      return await this.#fetchFn(`${this.#restBase}${path}`, { headers: { authorization }, signal });
    } catch {
      throw DeaddropError.unreachable(`bitcoind REST at ${this.endpoint}`);
    }
  }

  override getRawBlock(hash: string): Promise<Uint8Array> {
    return this.run(async () => {
      if (!(await this.#probeRest())) return super.getRawBlock(hash);
      if (!/^[0-9a-f]{64}$/.test(hash)) throw new TypeError('hash must be 64 lower-case hex characters');
      const res = await this.#restGet(`/rest/block/${hash}.bin`);
      if (res.status === 404) throw DeaddropError.notFound(`block ${hash} not found`);
      if (!res.ok) throw new DeaddropError('BACKEND_ERROR', `bitcoind REST answered HTTP ${res.status} for a block`);
      return checkBlock(new Uint8Array(await res.arrayBuffer()), hash, 'bitcoind REST');
    });
  }

  /**
   * The raw `/rest/spenttxouts/<hash>.bin` answer (Core 30+): every output the block's txs
   * spend, in block order (src/chain/spent-outputs.ts decodes it). null when REST is off or the
   * node does not know the endpoint (older Core); asked once, then remembered. NOT_FOUND for an
   * unknown block.
   */
  getBlockSpentOutputs(hash: string): Promise<Uint8Array | null> {
    assertHash(hash, 'hash');
    return this.run(async () => {
      if (!this.#spentRest || !(await this.#probeRest())) return null;
      const res = await this.#restGet(`/rest/spenttxouts/${hash}.bin`);
      const body = new Uint8Array(await res.arrayBuffer());
      if (res.ok) return body;
      const text = new TextDecoder().decode(body.subarray(0, 200));
      // Core names the block it does not know; an unknown path answers without it.
      if (res.status === 404 && text.includes(hash)) throw DeaddropError.notFound(`block ${hash} not found`);
      // Older Core: no such REST path (or undo data pruned): the caller falls back to per-tx lookups.
      if (res.status === 400 || res.status === 404) this.#spentRest = false;
      return null;
    });
  }

  /**
   * Every prevout spent in block `hash`, keyed `txid:vout`, from one `getblock <hash> 3`.
   * An empty map (so PrevoutFetcher falls back to getrawtransaction) when the node is older than
   * Core 23 or cannot serve this block's undo data; outpoints with an unusable prevout are left
   * out the same way. NOT_FOUND for an unknown block. The values are the node's word: unlike
   * getrawtransaction answers they cannot be checked against a txid.
   */
  getBlockPrevouts(hash: string): Promise<Map<string, Prevout>> {
    assertHash(hash, 'hash');
    return this.run(async () => {
      if (!this.#verbosity3) return new Map<string, Prevout>();
      let result: unknown;
      try {
        // A verbose block is several times the size of the raw one: allow it time.
        result = await this.client.call('getblock', [hash, 3], { timeoutMs: Math.max(this.options.timeoutMs ?? 10_000, 60_000) });
      } catch (err) {
        if (err instanceof RpcError && err.code === RPC_CODES.INVALID_ADDRESS_OR_KEY) throw DeaddropError.notFound(`block ${hash} not found`);
        if (err instanceof RpcError && isVerbosityRejected(err)) {
          this.#verbosity3 = false;
          return new Map<string, Prevout>();
        }
        throw err;
      }
      const { prevouts, complete } = prevoutsFromVerboseBlock(result, hash);
      // Core before 23 treats 3 like 2 (no prevouts at all); newer ones only lack undo data for some blocks.
      if (!complete && ((await this.#nodeVersion()) ?? VERBOSITY3_SINCE) < VERBOSITY3_SINCE) this.#verbosity3 = false;
      return prevouts;
    });
  }

  /** `getnetworkinfo.version` (e.g. 280100), asked once; undefined when the node does not say. */
  #nodeVersion(): Promise<number | undefined> {
    this.#coreVersion ??= this.client.call<unknown>('getnetworkinfo').then(
      (info) => (isRecord(info) && typeof info.version === 'number' ? info.version : undefined),
      () => {
        this.#coreVersion = undefined; // ask again next time
        return undefined;
      },
    );
    return this.#coreVersion;
  }
}

/** Core before 0.15 takes only a boolean: a type error (-3), or -1 "JSON value is not a boolean". */
function isVerbosityRejected(err: RpcError): boolean {
  return err.code === RPC_TYPE_ERROR || err.code === RPC_CODES.INVALID_PARAMS || (err.code === RPC_CODES.MISC && /bool/i.test(err.message));
}

function constantAuth(auth: RpcAuth): () => Promise<RpcAuth> {
  return () => Promise.resolve(auth);
}
