/**
 * The one interface every chain backend implements (modelled on LND's chainntnfs):
 * backends turn node data into plain values and tip/mempool events. Reorg handling and
 * cursors live above them, in src/chain/follow/.
 * Node quirks (btcd's integer verbosity, Core's REST, Electrum's lack of blocks) stay
 * inside the backend that has them.
 */
import type { Network } from '../util/network.js';

export type BackendKind = 'bitcoind' | 'btcd' | 'electrum' | 'esplora';

export interface ChainCapabilities {
  /** Whole raw blocks can be fetched (false for Electrum, which only watches scripts). */
  readonly fullBlocks: boolean;
  /** Any transaction can be fetched by txid, confirmed ones included (txindex or equivalent). */
  readonly anyTransaction: boolean;
  /** The mempool can be listed (and so a mempool feed offered). */
  readonly mempool: boolean;
  /** Per-script history and unspent outputs can be asked for (Electrum, Esplora). */
  readonly scriptHistory: boolean;
  /** Tip/mempool events are pushed by the node (ZMQ, websocket, subscription) rather than polled. */
  readonly push: boolean;
  /** How raw blocks are fetched: Core REST `.bin`, RPC hex, Esplora raw, or not at all. */
  readonly rawBlockRoute: 'rest' | 'rpc' | 'esplora' | 'none';
}

export interface ChainTip {
  readonly height: number;
  readonly hash: string;
}

export interface BlockHeader {
  readonly height: number;
  readonly hash: string;
  readonly prevHash: string;
  readonly merkleRoot: string;
  readonly time: number;
}

export type BroadcastResult =
  | { readonly accepted: true; readonly txid: string }
  | { readonly accepted: false; readonly reason: string; readonly code?: number };

export interface FeeEstimate {
  readonly satPerVb: number;
  /** 'node' when the backend estimated it, 'fallback' when it could not and the fallback was used. */
  readonly source: 'node' | 'fallback';
}

/** A transaction touching a watched script, as reported by a script-history backend. */
export interface ScriptHistoryItem {
  readonly txid: string;
  /** 0 or less means unconfirmed (mempool). */
  readonly height: number;
}

export interface ScriptUnspent {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  /** 0 or less means unconfirmed. */
  readonly height: number;
}

export type ChainEvent =
  /** The backend saw a new tip (it may be a reorg: the follower works out which). */
  | { readonly type: 'tip'; readonly tip: ChainTip }
  /** A transaction entered the mempool. `raw` is given when the backend already has the bytes. */
  | { readonly type: 'mempool-tx'; readonly txid: string; readonly raw?: Uint8Array }
  /** A watched script's status changed (script-history backends). */
  | { readonly type: 'script'; readonly scriptHex: string }
  /** The connection to the node dropped; the backend is retrying with backoff. */
  | { readonly type: 'disconnected'; readonly reason: string }
  /** The connection came back; followers should catch up from their cursor. */
  | { readonly type: 'reconnected' };

export type ChainListener = (event: ChainEvent) => void;

export interface ChainSource {
  readonly kind: BackendKind;
  readonly capabilities: ChainCapabilities;

  /** Connects and checks the backend is on `expectedNetwork` (WRONG_NETWORK otherwise). Memoized. */
  ready(): Promise<void>;
  /** Stops timers, sockets and subscriptions. Idempotent. Calls after close reject with CLOSED. */
  close(): Promise<void>;

  /** The network the backend is on, from its genesis block hash. */
  network(): Promise<Network>;
  getTip(): Promise<ChainTip>;
  getBlockHash(height: number): Promise<string>;
  getBlockHeader(hash: string): Promise<BlockHeader>;
  /** Raw serialized block (with witnesses). UNSUPPORTED when `capabilities.fullBlocks` is false. */
  getRawBlock(hash: string): Promise<Uint8Array>;
  /** Raw serialized transaction (with witness). NOT_FOUND if unknown. */
  getRawTransaction(txid: string): Promise<Uint8Array>;
  /** Sends a raw transaction. A policy or consensus rejection is a result, not an exception. */
  broadcast(rawTx: Uint8Array): Promise<BroadcastResult>;
  /** Fee rate for confirmation within `targetBlocks`, or `fallbackSatPerVb` when the node has no estimate. */
  estimateFee(targetBlocks: number, fallbackSatPerVb: number): Promise<FeeEstimate>;
  /** Txids currently in the mempool. UNSUPPORTED when `capabilities.mempool` is false. */
  getMempoolTxids(): Promise<string[]>;

  /** History of a script (by output script bytes). UNSUPPORTED unless `capabilities.scriptHistory`. */
  getScriptHistory(script: Uint8Array): Promise<ScriptHistoryItem[]>;
  /** Unspent outputs paying a script. UNSUPPORTED unless `capabilities.scriptHistory`. */
  getScriptUnspent(script: Uint8Array): Promise<ScriptUnspent[]>;
  /** Merkle proof check: true when `txid` is proven to be in the block at `height`. */
  verifyTxInBlock?(txid: string, height: number): Promise<boolean>;
  /** Asks for `script` events for this script (Electrum subscription; polling elsewhere). */
  watchScript?(script: Uint8Array): Promise<void>;

  /** Subscribes to tip, mempool and connection events. Returns the unsubscribe function. */
  subscribe(listener: ChainListener): () => void;

  /** Optional fast path, see {@link BlockPrevoutSource} (Core: `getblock <hash> 3`). */
  getBlockPrevouts?(blockHash: string): Promise<Map<string, Prevout>>;
  /**
   * Optional fast path (Core 30+ REST `/rest/spenttxouts/<hash>.bin`): the outputs every tx of
   * the block spends, in block order, raw (decoded by src/chain/spent-outputs.ts); null when the
   * node cannot serve it (REST off, older Core, no undo data).
   */
  getBlockSpentOutputs?(blockHash: string): Promise<Uint8Array | null>;
}

/** An output being spent: its scriptPubKey and value (what BIP352 needs of each input). */
export interface Prevout {
  readonly script: Uint8Array;
  readonly value: bigint;
}

/**
 * Optional fast path a backend may offer (Core: `getblock <hash> 3`): every prevout spent in a
 * block, keyed by `txid:vout` (display hex), in one call. Used when present, before getrawtransaction.
 */
export interface BlockPrevoutSource {
  getBlockPrevouts(blockHash: string): Promise<Map<string, Prevout>>;
}

export interface BackendOptions {
  readonly expectedNetwork: Network;
  /** Poll interval for tip and mempool when the backend has no push channel. Default 250 ms on regtest, 2 s otherwise. */
  readonly pollIntervalMs?: number;
  /** Per-request timeout. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}
