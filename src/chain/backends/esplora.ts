/**
 * Esplora REST backend (mempool.space / blockstream.info style API), with an injected fetch.
 *
 * Routes: `/blocks/tip/hash`, `/block-height/:h`, `/block/:hash`, `/block/:hash/raw`,
 * `/tx/:txid/raw`, `/tx/:txid/merkle-proof`, `POST /tx`, `/mempool/txids`, `/fee-estimates`,
 * `/scripthash/:h`, `/scripthash/:h/txs[/chain/:last]`, `/scripthash/:h/utxo`.
 *
 * - Only GETs are retried (with backoff). `POST /tx` is never retried: whether a lost answer
 *   means "not sent" is unknowable here, and the caller decides about resending.
 * - Served blocks and transactions are checked against the requested hash.
 * - There is no push channel: tip, mempool and watched scripts are polled. The mempool list
 *   is only polled while someone listens (it is large on mainnet); the first round after a
 *   listener appears records a baseline, so txs seen then are not reported as new.
 */
import type {
  BackendOptions, BlockHeader, BroadcastResult, ChainCapabilities, ChainListener, ChainSource, ChainTip, FeeEstimate,
  ScriptHistoryItem, ScriptUnspent,
} from '../types.js';
import { checkBlock, checkTx, txidOfHex } from '../verify.js';
import { hashToHex, sha256, sha256d } from '../bytes.js';
import { parseReject } from '../dialect.js';
import { RpcError } from '../rpc.js';
import { Backoff, sleep } from '../../util/time.js';
import { Lifecycle } from '../../util/lifecycle.js';
import { DeaddropError } from '../../util/errors.js';
import { networkFromGenesis, type Network } from '../../util/network.js';
import { Listeners, Poller } from './poll.js';
import { defaultPollInterval } from './rpc-source.js';
import { fromHex, toHex } from '../../util/bytes.js';

export interface EsploraConfig {
  /** API root, e.g. `https://mempool.space/api` or `http://127.0.0.1:3002`. */
  readonly baseUrl: string;
  readonly fetch?: typeof fetch;
  /** Extra attempts for GETs after a connection failure, 429 or 5xx; default 2. */
  readonly retries?: number;
}

const HASH_RE = /^[0-9a-f]{64}$/;
/** Confirmed-history pages fetched at most (25 txs each). */
const MAX_HISTORY_PAGES = 400;

function assertHash(v: string, name: string): void {
  if (typeof v !== 'string' || !HASH_RE.test(v)) throw new TypeError(`${name} must be 64 lower-case hex characters`);
}

function validateHash(v: unknown, name: string): string {
  const s = typeof v === 'string' ? v.trim() : v;
  if (typeof s !== 'string' || !HASH_RE.test(s)) throw DeaddropError.protocol(`esplora ${name}: expected a 64-hex hash`);
  return s;
}

function validateInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw DeaddropError.protocol(`esplora ${name}: expected a non-negative integer`);
  return v;
}

function validateObject(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw DeaddropError.protocol(`esplora ${name}: expected an object`);
  return v as Record<string, unknown>;
}

/** Electrum/Esplora script hash: SHA-256 of the output script, byte-reversed hex. */
export function scriptHash(script: Uint8Array): string {
  return hashToHex(sha256(script));
}

class HttpStatusError extends Error {
  constructor(readonly status: number, readonly body: string) {
    super(`HTTP ${status}`);
  }
}

/** An Esplora server as a ChainSource. */
export class EsploraSource implements ChainSource {
  readonly kind = 'esplora' as const;
  readonly capabilities: ChainCapabilities = Object.freeze({
    fullBlocks: true, anyTransaction: true, mempool: true, scriptHistory: true, push: false, rawBlockRoute: 'esplora',
  } as const);

  readonly #base: string;
  readonly #fetchFn: typeof fetch;
  readonly #retries: number;
  readonly #options: BackendOptions;
  readonly #listeners = new Listeners();
  readonly #poller: Poller;
  readonly #life = new Lifecycle('esplora backend', { open: (signal) => this.#open(signal), close: () => this.#poller.stop() });
  readonly #signal: AbortSignal;
  readonly #watched = new Map<string, { scriptHex: string; state: string | undefined }>();

  constructor(cfg: EsploraConfig, options: BackendOptions) {
    let u: URL;
    try {
      u = new URL(cfg.baseUrl);
    } catch {
      throw DeaddropError.badInput('esplora base URL is not a valid URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw DeaddropError.badInput('esplora base URL must be http(s)');
    if (u.username || u.password) throw DeaddropError.badInput('esplora base URL must not carry credentials');
    this.#base = u.toString().replace(/\/+$/, '');
    this.#fetchFn = cfg.fetch ?? globalThis.fetch;
    this.#retries = cfg.retries ?? 2;
    this.#options = options;
    // Registered before the request signal depends on it: the poller is marked stopped before the
    // requests in flight fail, so a close is never reported as a disconnect.
    this.#life.signal.addEventListener('abort', () => void this.#poller.stop(), { once: true });
    this.#signal = options.signal ? AbortSignal.any([this.#life.signal, options.signal]) : this.#life.signal;
    this.#poller = new Poller({
      intervalMs: options.pollIntervalMs ?? defaultPollInterval(options.expectedNetwork),
      getTip: () => this.#fetchTip(),
      getMempool: () => this.#fetchMempool(),
      wantMempool: () => this.#listeners.size > 0,
      extra: () => this.#pollScripts(),
      listeners: this.#listeners,
    });
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** `host[:port]` of the server; safe to show. */
  get endpoint(): string {
    return new URL(this.#base).host;
  }

  /** Checks the network and starts polling. Memoized; a failed open is final. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  /** Stops polling, aborts requests in flight and drops the listeners. Idempotent. */
  async close(): Promise<void> {
    await this.#life.close();
    this.#listeners.clear();
  }

  async #open(signal: AbortSignal): Promise<void> {
    const got = await this.network();
    if (got !== this.#options.expectedNetwork) throw DeaddropError.wrongNetwork(this.#options.expectedNetwork, got);
    const tip = await this.#fetchTip();
    if (!signal.aborted) this.#poller.start(tip);
  }

  #guard(): void {
    if (this.#life.closing) throw DeaddropError.closed('esplora backend');
  }

  // -- HTTP ---------------------------------------------------------------------------------

  async #request(path: string, init: { method?: string; body?: string } = {}): Promise<Response> {
    this.#guard();
    const signal = AbortSignal.any([this.#signal, AbortSignal.timeout(this.#options.timeoutMs ?? 15_000)]);
    let res: Response;
    try {
      res = await this.#fetchFn(`${this.#base}${path}`, { method: init.method ?? 'GET', body: init.body, signal });
    } catch (err) {
      if (this.#signal.aborted) throw this.#signal.reason;
      const name = err instanceof Error ? err.name : '';
      throw DeaddropError.unreachable(`esplora at ${this.endpoint}`, name === 'TimeoutError' ? 'timed out' : 'connection failed');
    }
    if (!res.ok) throw new HttpStatusError(res.status, (await res.text().catch(() => '')).slice(0, 500));
    return res;
  }

  /** GET with retries on connection failures, 429 and 5xx. 404 becomes NOT_FOUND(`what`). */
  async #get(path: string, what: string): Promise<Response> {
    const backoff = new Backoff({ initialMs: 200, maxMs: 200 * 2 ** this.#retries });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#request(path);
      } catch (err) {
        const transient = (err instanceof DeaddropError && err.code === 'BACKEND_UNREACHABLE') ||
          (err instanceof HttpStatusError && (err.status === 429 || err.status >= 500));
        if (!transient || attempt >= this.#retries || this.#signal.aborted) throw this.#mapError(err, what);
        await sleep(backoff.next(), this.#signal);
      }
    }
  }

  #mapError(err: unknown, what: string): unknown {
    if (!(err instanceof HttpStatusError)) return err;
    if (err.status === 404) return DeaddropError.notFound(`${what} not found`);
    if (err.status >= 500 || err.status === 429) return DeaddropError.unreachable(`esplora at ${this.endpoint}`, `HTTP ${err.status}`);
    return new DeaddropError('BACKEND_ERROR', `esplora answered HTTP ${err.status} for ${what}`);
  }

  async #getText(path: string, what: string): Promise<string> {
    return (await (await this.#get(path, what)).text()).trim();
  }

  async #getJson(path: string, what: string): Promise<unknown> {
    const text = await (await this.#get(path, what)).text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw DeaddropError.protocol(`esplora ${what}: answer is not JSON`);
    }
  }

  async #getBytes(path: string, what: string): Promise<Uint8Array> {
    return new Uint8Array(await (await this.#get(path, what)).arrayBuffer());
  }

  // -- ChainSource --------------------------------------------------------------------------

  async network(): Promise<Network> {
    const genesis = await this.getBlockHash(0);
    const net = networkFromGenesis(genesis);
    if (net === undefined) throw DeaddropError.wrongNetwork(this.#options.expectedNetwork, `an unknown chain (genesis ${genesis})`);
    return net;
  }

  async #fetchTip(): Promise<ChainTip> {
    const hash = validateHash(await this.#getText('/blocks/tip/hash', 'tip'), 'tip hash');
    return { hash, height: (await this.getBlockHeader(hash)).height };
  }

  getTip(): Promise<ChainTip> {
    return this.#fetchTip();
  }

  async getBlockHash(height: number): Promise<string> {
    if (!Number.isSafeInteger(height) || height < 0) throw new RangeError(`height must be a non-negative integer, got ${height}`);
    return validateHash(await this.#getText(`/block-height/${height}`, `block at height ${height}`), 'block-height');
  }

  async getBlockHeader(hash: string): Promise<BlockHeader> {
    assertHash(hash, 'hash');
    const o = validateObject(await this.#getJson(`/block/${hash}`, `block ${hash}`), 'block');
    if (validateHash(o.id, 'block.id') !== hash) throw DeaddropError.protocol('esplora answered for another block');
    return {
      hash,
      height: validateInt(o.height, 'block.height'),
      prevHash: o.previousblockhash == null ? '0'.repeat(64) : validateHash(o.previousblockhash, 'block.previousblockhash'),
      merkleRoot: validateHash(o.merkle_root, 'block.merkle_root'),
      time: validateInt(o.timestamp, 'block.timestamp'),
    };
  }

  async getRawBlock(hash: string): Promise<Uint8Array> {
    assertHash(hash, 'hash');
    return checkBlock(await this.#getBytes(`/block/${hash}/raw`, `block ${hash}`), hash, 'esplora');
  }

  async getRawTransaction(txid: string): Promise<Uint8Array> {
    assertHash(txid, 'txid');
    return checkTx(await this.#getBytes(`/tx/${txid}/raw`, `transaction ${txid}`), txid, 'esplora');
  }

  async broadcast(rawTx: Uint8Array): Promise<BroadcastResult> {
    if (!(rawTx instanceof Uint8Array) || rawTx.length === 0) throw new TypeError('rawTx must be a non-empty Uint8Array');
    try {
      const txid = validateHash((await (await this.#request('/tx', { method: 'POST', body: toHex(rawTx) })).text()).trim(), 'broadcast');
      return { accepted: true, txid };
    } catch (err) {
      if (err instanceof HttpStatusError && err.status === 400) return parseEsploraReject(err.body, txidOfHex(toHex(rawTx)));
      throw this.#mapError(err, 'broadcast');
    }
  }

  async estimateFee(targetBlocks: number, fallbackSatPerVb: number): Promise<FeeEstimate> {
    if (!Number.isSafeInteger(targetBlocks) || targetBlocks < 1) throw new RangeError(`targetBlocks must be a positive integer, got ${targetBlocks}`);
    if (!(fallbackSatPerVb > 0) || !Number.isFinite(fallbackSatPerVb)) throw new RangeError(`fallbackSatPerVb must be a positive number, got ${fallbackSatPerVb}`);
    const o = validateObject(await this.#getJson('/fee-estimates', 'fee estimates'), 'fee-estimates');
    // The estimate for the largest listed target that is not above the one asked for.
    let best: number | undefined;
    let bestTarget = 0;
    for (const [k, v] of Object.entries(o)) {
      const t = Number(k);
      if (Number.isSafeInteger(t) && t <= targetBlocks && t > bestTarget && typeof v === 'number' && v > 0 && Number.isFinite(v)) {
        best = v;
        bestTarget = t;
      }
    }
    return best === undefined ? { satPerVb: fallbackSatPerVb, source: 'fallback' } : { satPerVb: best, source: 'node' };
  }

  async #fetchMempool(): Promise<string[]> {
    const v = await this.#getJson('/mempool/txids', 'mempool');
    if (!Array.isArray(v)) throw DeaddropError.protocol('esplora mempool/txids: expected an array');
    return v.map((t, i) => validateHash(t, `mempool[${i}]`));
  }

  getMempoolTxids(): Promise<string[]> {
    return this.#fetchMempool();
  }

  async getScriptHistory(script: Uint8Array): Promise<ScriptHistoryItem[]> {
    const sh = scriptHash(checkScript(script));
    const first = await this.#getJson(`/scripthash/${sh}/txs`, 'script history');
    const out = parseHistory(first);
    // The first page has the mempool txs and up to 25 confirmed ones; page on through the rest.
    let confirmed = out.filter((i) => i.height > 0);
    for (let page = 0; confirmed.length === 25 && page < MAX_HISTORY_PAGES; page++) {
      const last = confirmed[confirmed.length - 1] as ScriptHistoryItem;
      confirmed = parseHistory(await this.#getJson(`/scripthash/${sh}/txs/chain/${last.txid}`, 'script history'));
      out.push(...confirmed);
    }
    return out;
  }

  async getScriptUnspent(script: Uint8Array): Promise<ScriptUnspent[]> {
    const sh = scriptHash(checkScript(script));
    const v = await this.#getJson(`/scripthash/${sh}/utxo`, 'script utxos');
    if (!Array.isArray(v)) throw DeaddropError.protocol('esplora utxo: expected an array');
    return v.map((u, i) => {
      const o = validateObject(u, `utxo[${i}]`);
      const value = validateInt(o.value, 'utxo.value');
      return { txid: validateHash(o.txid, 'utxo.txid'), vout: validateInt(o.vout, 'utxo.vout'), value: BigInt(value), height: statusHeight(o.status) };
    });
  }

  /** Checks Esplora's merkle proof for `txid` against the header at `height`. */
  async verifyTxInBlock(txid: string, height: number): Promise<boolean> {
    assertHash(txid, 'txid');
    let proof: Record<string, unknown>;
    try {
      proof = validateObject(await this.#getJson(`/tx/${txid}/merkle-proof`, `proof for ${txid}`), 'merkle-proof');
    } catch (err) {
      if (err instanceof DeaddropError && (err.code === 'NOT_FOUND' || err.code === 'BACKEND_ERROR')) return false;
      throw err;
    }
    if (proof.block_height !== height || !Array.isArray(proof.merkle)) return false;
    const header = await this.getBlockHeader(await this.getBlockHash(height));
    let h = fromHex(txid).reverse();
    let pos = validateInt(proof.pos, 'merkle-proof.pos');
    for (const sibling of proof.merkle) {
      const s = fromHex(validateHash(sibling, 'merkle-proof.merkle')).reverse();
      const both = new Uint8Array(64);
      both.set(pos & 1 ? s : h, 0);
      both.set(pos & 1 ? h : s, 32);
      h = sha256d(both);
      pos >>>= 1;
    }
    return hashToHex(h) === header.merkleRoot;
  }

  /** Polls the script every round and emits a `script` event when its history changes. */
  async watchScript(script: Uint8Array): Promise<void> {
    this.#guard();
    const sh = scriptHash(checkScript(script));
    if (this.#watched.has(sh)) return;
    this.#watched.set(sh, { scriptHex: toHex(script), state: await this.#scriptState(sh) });
  }

  async #scriptState(sh: string): Promise<string> {
    const o = validateObject(await this.#getJson(`/scripthash/${sh}`, 'script stats'), 'scripthash');
    return JSON.stringify([o.chain_stats, o.mempool_stats]);
  }

  async #pollScripts(): Promise<void> {
    for (const [sh, w] of this.#watched) {
      const state = await this.#scriptState(sh);
      if (state !== w.state) {
        w.state = state;
        this.#listeners.emit({ type: 'script', scriptHex: w.scriptHex });
      }
    }
  }

  subscribe(listener: ChainListener): () => void {
    this.#guard();
    return this.#listeners.add(listener);
  }
}

function checkScript(script: Uint8Array): Uint8Array {
  if (!(script instanceof Uint8Array)) throw new TypeError('script must be a Uint8Array');
  return script;
}

function statusHeight(status: unknown): number {
  const s = validateObject(status, 'status');
  return s.confirmed === true ? validateInt(s.block_height, 'status.block_height') : 0;
}

function parseHistory(v: unknown): ScriptHistoryItem[] {
  if (!Array.isArray(v)) throw DeaddropError.protocol('esplora txs: expected an array');
  return v.map((t, i) => {
    const o = validateObject(t, `txs[${i}]`);
    return { txid: validateHash(o.txid, 'txs.txid'), height: statusHeight(o.status) };
  });
}

/**
 * Reads Esplora's 400 answer to `POST /tx`, e.g.
 * `sendrawtransaction RPC error: {"code":-26,"message":"min relay fee not met"}`. An
 * "already known" answer counts as accepted, as with the RPC backends.
 */
export function parseEsploraReject(body: string, txid: string): BroadcastResult {
  const json = body.indexOf('{');
  if (json >= 0) {
    try {
      const o = JSON.parse(body.slice(json)) as { code?: unknown; message?: unknown };
      if (typeof o.message === 'string') return parseReject(new RpcError(typeof o.code === 'number' ? o.code : -26, o.message, 'sendrawtransaction'), txid);
    } catch {
      // not JSON after all: use the text
    }
  }
  return { accepted: false, reason: body.trim().slice(0, 300) || 'rejected' };
}
