/**
 * The ChainSource shared by the JSON-RPC backends (bitcoind, btcd). Everything node-specific
 * goes through a {@link NodeDialect}; the bitcoind and btcd files only add auth, REST and
 * capability probing.
 */
import type { NodeDialect } from '../dialect.js';
import { RpcError, type RpcClient } from '../rpc.js';
import type {
  BackendKind, BackendOptions, BlockHeader, BroadcastResult, ChainCapabilities, ChainListener, ChainSource, ChainTip,
  FeeEstimate, ScriptHistoryItem, ScriptUnspent,
} from '../types.js';
import { checkBlock, checkTx, hexToBytesStrict, merkleRootMatches, parseServedBlock } from '../verify.js';
import { DeaddropError } from '../../util/errors.js';
import { networkFromGenesis, type Network } from '../../util/network.js';
import { Listeners, Poller } from './poll.js';
import { Lifecycle } from '../../util/lifecycle.js';
import { toHex } from '../../util/bytes.js';

/** Default poll interval: quick on regtest, gentle elsewhere (see BackendOptions). */
export function defaultPollInterval(network: Network): number {
  return network === 'regtest' ? 250 : 2_000;
}

export interface RpcSourceConfig {
  readonly kind: Extract<BackendKind, 'bitcoind' | 'btcd'>;
  readonly dialect: NodeDialect;
  /** Builds the RPC client; `signal` aborts its requests when the source closes. */
  readonly makeClient: (signal: AbortSignal) => RpcClient;
  readonly options: BackendOptions;
  readonly capabilities: ChainCapabilities;
}

/** A ChainSource over a node's JSON-RPC. Polls for tips and mempool; no push channel. */
export class RpcChainSource implements ChainSource {
  readonly kind: Extract<BackendKind, 'bitcoind' | 'btcd'>;
  protected readonly dialect: NodeDialect;
  protected readonly client: RpcClient;
  protected readonly options: BackendOptions;
  protected caps: ChainCapabilities;
  protected readonly listeners = new Listeners();
  protected readonly poller: Poller;
  readonly #life: Lifecycle;

  constructor(cfg: RpcSourceConfig) {
    this.kind = cfg.kind;
    this.dialect = cfg.dialect;
    this.#life = new Lifecycle(`${cfg.kind} backend`, { open: (signal) => this.open(signal), close: () => this.shutdown() });
    // Registered before the client's signal depends on it: the feed is marked stopped before the
    // RPCs in flight fail, so a close is never reported as a disconnect.
    this.#life.signal.addEventListener('abort', () => this.stopFeed(), { once: true });
    const signals = [this.#life.signal];
    if (cfg.options.signal) signals.push(cfg.options.signal);
    this.client = cfg.makeClient(AbortSignal.any(signals));
    this.options = cfg.options;
    this.caps = cfg.capabilities;
    this.poller = new Poller({
      intervalMs: cfg.options.pollIntervalMs ?? defaultPollInterval(cfg.options.expectedNetwork),
      getTip: () => this.dialect.getTip(this.client),
      getMempool: () => this.dialect.getMempoolTxids(this.client),
      listeners: this.listeners,
    });
    cfg.options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** What this backend can do. Probed values (txindex, REST) are final after `ready()`. */
  get capabilities(): ChainCapabilities {
    return this.caps;
  }

  /** The node's endpoint (`host:port`); safe to show. */
  get endpoint(): string {
    return this.client.endpoint;
  }

  /** Checks the network, probes capabilities, starts the feed. Memoized; a failed open is final. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  /** Stops the feed, aborts RPCs in flight and drops the listeners. Idempotent. */
  async close(): Promise<void> {
    await this.#life.close();
    this.listeners.clear();
  }

  /** True from the moment `close()` is called. */
  protected get closing(): boolean {
    return this.#life.closing;
  }

  /** The open hook: checks the network, probes capabilities, then starts the feed. */
  protected async open(signal: AbortSignal): Promise<void> {
    const got = await this.network();
    if (got !== this.options.expectedNetwork) throw DeaddropError.wrongNetwork(this.options.expectedNetwork, got);
    await this.probe();
    const tip = await this.dialect.getTip(this.client);
    const mempool = await this.dialect.getMempoolTxids(this.client);
    if (signal.aborted) return;
    this.poller.start(tip, mempool);
  }

  /** Marks the feed stopped (synchronously, when `close()` is called). */
  protected stopFeed(): void {
    void this.poller.stop();
  }

  /** The close hook: waits for the feed's work in flight. */
  protected async shutdown(): Promise<void> {
    await this.poller.stop();
  }

  /** Backend-specific capability probes (txindex, REST). */
  protected async probe(): Promise<void> {
    const txindex = await this.probeTxIndex();
    this.caps = { ...this.caps, anyTransaction: txindex };
  }

  /** True when a confirmed, non-wallet transaction can be fetched: block 1's coinbase. */
  protected async probeTxIndex(): Promise<boolean> {
    const tip = await this.dialect.getTip(this.client);
    if (tip.height < 1) return this.caps.anyTransaction; // nothing confirmed to try yet
    const block = parseServedBlock(await this.getRawBlock(await this.dialect.getBlockHash(this.client, 1)), this.kind);
    const coinbase = block.txs[0];
    if (coinbase === undefined) return false;
    try {
      await this.dialect.getRawTransactionHex(this.client, coinbase.txid);
      return true;
    } catch (err) {
      if (err instanceof DeaddropError && err.code === 'NOT_FOUND') return false;
      throw err;
    }
  }

  protected guard(): void {
    if (this.closing) throw DeaddropError.closed(`${this.kind} backend`);
  }

  /** Runs `fn` unless closed; RPC errors the caller cannot act on become BACKEND_ERROR. */
  protected async run<T>(fn: () => Promise<T>): Promise<T> {
    this.guard();
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RpcError) {
        throw new DeaddropError('BACKEND_ERROR', `${this.kind} ${err.method}: ${err.message}`, { rpcCode: err.code });
      }
      throw err;
    }
  }

  network(): Promise<Network> {
    return this.run(async () => {
      const genesis = await this.dialect.getBlockHash(this.client, 0);
      const net = networkFromGenesis(genesis);
      if (net === undefined) throw DeaddropError.wrongNetwork(this.options.expectedNetwork, `an unknown chain (genesis ${genesis})`);
      return net;
    });
  }

  getTip(): Promise<ChainTip> {
    return this.run(() => this.dialect.getTip(this.client));
  }

  getBlockHash(height: number): Promise<string> {
    return this.run(() => this.dialect.getBlockHash(this.client, height));
  }

  getBlockHeader(hash: string): Promise<BlockHeader> {
    return this.run(() => this.dialect.getBlockHeader(this.client, hash));
  }

  getRawBlock(hash: string): Promise<Uint8Array> {
    return this.run(async () => {
      const raw = hexToBytesStrict(await this.dialect.getBlockHex(this.client, hash), 'getblock');
      return checkBlock(raw, hash, this.kind);
    });
  }

  getRawTransaction(txid: string): Promise<Uint8Array> {
    return this.run(async () => {
      const raw = hexToBytesStrict(await this.dialect.getRawTransactionHex(this.client, txid), 'getrawtransaction');
      return checkTx(raw, txid, this.kind);
    });
  }

  broadcast(rawTx: Uint8Array): Promise<BroadcastResult> {
    if (!(rawTx instanceof Uint8Array) || rawTx.length === 0) throw new TypeError('rawTx must be a non-empty Uint8Array');
    return this.run(() => this.dialect.sendRawTransaction(this.client, toHex(rawTx)));
  }

  estimateFee(targetBlocks: number, fallbackSatPerVb: number): Promise<FeeEstimate> {
    if (!(fallbackSatPerVb > 0) || !Number.isFinite(fallbackSatPerVb)) throw new RangeError(`fallbackSatPerVb must be a positive number, got ${fallbackSatPerVb}`);
    return this.run(async () => {
      const rate = await this.dialect.estimateFee(this.client, targetBlocks);
      return rate === undefined ? { satPerVb: fallbackSatPerVb, source: 'fallback' } : { satPerVb: rate, source: 'node' };
    });
  }

  getMempoolTxids(): Promise<string[]> {
    return this.run(() => this.dialect.getMempoolTxids(this.client));
  }

  getScriptHistory(_script: Uint8Array): Promise<ScriptHistoryItem[]> {
    return this.run(() => Promise.reject(DeaddropError.unsupported(`${this.kind} backend has no per-script index`)));
  }

  getScriptUnspent(_script: Uint8Array): Promise<ScriptUnspent[]> {
    return this.run(() => Promise.reject(DeaddropError.unsupported(`${this.kind} backend has no per-script index`)));
  }

  /** Fetches the block at `height`, checks its merkle root and whether `txid` is in it. */
  verifyTxInBlock(txid: string, height: number): Promise<boolean> {
    return this.run(async () => {
      const hash = await this.dialect.getBlockHash(this.client, height);
      const block = parseServedBlock(await this.getRawBlock(hash), this.kind);
      return merkleRootMatches(block) && block.txs.some((t) => t.txid === txid);
    });
  }

  subscribe(listener: ChainListener): () => void {
    this.guard();
    return this.listeners.add(listener);
  }
}
