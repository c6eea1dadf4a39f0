/**
 * ChainNotifier: "tell me when this outpoint is spent, when this transaction (or a payment to
 * this script) reaches N confirmations, and when a block I was told about is reorged away"
 * (after LND's chainntnfs). It works over any full-block ChainSource: blocks come through the
 * one reorg-aware ChainFollower, mempool spends through the source's 'mempool-tx' events.
 *
 * Registrations take a height hint; the notifier rescans from there on registration, so a
 * spend or confirmation that happened before the call is still reported.
 *
 * NOTE: callbacks may fire more than once for one registration: a spend seen in the mempool
 * and again in a block, a confirmation retracted by a reorg and confirmed again. Every event
 * carries what it is about (height, block hash), so consumers can make handling idempotent.
 */
import Database from 'better-sqlite3';
import { parseBlock, parseTransaction, type Tx } from '../block.js';
import type { ChainEvent, ChainSource } from '../types.js';
import { DeaddropError } from '../../util/errors.js';
import { equalBytes as bytesEqual, toHex } from '../../util/bytes.js';
import { ChainFollower, type FollowedBlock } from './follower.js';

export interface Outpoint {
  readonly txid: string;
  readonly vout: number;
}

export interface SpendEvent {
  readonly outpoint: Outpoint;
  readonly spendingTxid: string;
  readonly spendingTx: Uint8Array;
  readonly inputIndex: number;
  /** null while the spend is only in the mempool. */
  readonly height: number | null;
  readonly blockHash: string | null;
}

export interface ConfirmationEvent {
  readonly txid: string;
  readonly height: number;
  readonly blockHash: string;
  readonly confirmations: number;
}

export interface ReorgEvent {
  /** The txid whose confirmation, or the outpoint whose spend, was undone. */
  readonly txid: string;
  readonly height: number;
  readonly blockHash: string;
}

export interface Subscription {
  cancel(): void;
}

export interface NotifierOptions {
  readonly source: ChainSource;
  /** Where the follower keeps its cursor; default an in-memory database. */
  readonly db?: Database.Database;
  /** Lowest height ever rescanned (registrations with an older hint start here). Default: the tip at ready(). */
  readonly startHeight?: number;
  readonly pollIntervalMs?: number;
  readonly onError?: (err: unknown) => void;
}

interface SpendReg {
  readonly outpoint: Outpoint;
  readonly onSpend: (e: SpendEvent) => void;
  readonly onReorg?: (e: ReorgEvent) => void;
  /** The confirmed spend, once seen. */
  spentAt?: { height: number; blockHash: string };
}

interface ConfReg {
  readonly txid?: string;
  readonly script?: Uint8Array;
  readonly numConfs: number;
  readonly onConfirmed: (e: ConfirmationEvent) => void;
  readonly onReorg?: (e: ReorgEvent) => void;
  /** Where the tx (or the first payment to the script) confirmed. */
  confirmedAt?: { txid: string; height: number; blockHash: string };
  /** Whether onConfirmed has fired for the current confirmedAt. */
  notified: boolean;
}

/** Blocks scanned in rescans are fetched again from the source rather than cached. */
export class ChainNotifier {
  readonly #source: ChainSource;
  readonly #db: Database.Database;
  readonly #ownDb: boolean;
  readonly #opts: NotifierOptions;
  #followerInstance: ChainFollower | null = null;
  readonly #spends = new Set<SpendReg>();
  readonly #confs = new Set<ConfReg>();
  readonly #onError: (err: unknown) => void;
  #tipHeight = -1;
  #unsubscribe: (() => void) | null = null;
  #opening: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  constructor(opts: NotifierOptions) {
    if (!opts.source.capabilities.fullBlocks) {
      throw DeaddropError.unsupported(`the ${opts.source.kind} backend serves no full blocks: watch scripts with getScriptHistory instead`);
    }
    this.#source = opts.source;
    this.#ownDb = opts.db === undefined;
    this.#db = opts.db ?? new Database(':memory:');
    this.#onError = opts.onError ?? (() => undefined);
    this.#opts = opts;
  }

  get #follower(): ChainFollower {
    if (!this.#followerInstance) throw DeaddropError.closed('chain notifier (not ready)');
    return this.#followerInstance;
  }

  ready(): Promise<void> {
    if (this.#closing) return Promise.reject(DeaddropError.closed('chain notifier'));
    this.#opening ??= this.#open();
    return this.#opening;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #open(): Promise<void> {
    await this.#source.ready();
    this.#tipHeight = (await this.#source.getTip()).height;
    this.#followerInstance = new ChainFollower({
      source: this.#source,
      db: this.#db,
      name: 'notifier',
      startHeight: this.#opts.startHeight ?? this.#tipHeight,
      ...(this.#opts.pollIntervalMs !== undefined ? { pollIntervalMs: this.#opts.pollIntervalMs } : {}),
      onError: this.#onError,
      consumer: {
        onConnect: (height, hash, raw) => this.#connect(height, hash, raw),
        onDisconnect: (block) => this.#disconnect(block),
      },
    });
    this.#unsubscribe = this.#source.subscribe((ev: ChainEvent) => this.#onChainEvent(ev));
    await this.#follower.ready();
    await this.#follower.catchUp();
  }

  async #close(): Promise<void> {
    await this.#opening?.catch(() => undefined);
    this.#unsubscribe?.();
    await this.#followerInstance?.close();
    this.#spends.clear();
    this.#confs.clear();
    if (this.#ownDb) this.#db.close();
  }

  /** Brings the notifier to the source's tip now (normally driven by tip events and polling). */
  async catchUp(): Promise<void> {
    await this.ready();
    await this.#follower.catchUp();
  }

  /** Reports the spend of `outpoint` (mempool and confirmed), searching from `heightHint`. */
  async registerSpend(outpoint: Outpoint, heightHint: number, onSpend: (e: SpendEvent) => void, onReorg?: (e: ReorgEvent) => void): Promise<Subscription> {
    checkTxid(outpoint.txid);
    if (!Number.isSafeInteger(outpoint.vout) || outpoint.vout < 0) throw new RangeError(`vout must be a non-negative integer; got ${outpoint.vout}`);
    await this.ready();
    const reg: SpendReg = { outpoint, onSpend, ...(onReorg ? { onReorg } : {}) };
    this.#spends.add(reg);
    await this.#rescan(heightHint, (height, hash, tx) => this.#matchSpend(reg, tx, height, hash));
    await this.#checkMempool([reg]);
    return { cancel: () => this.#spends.delete(reg) };
  }

  /**
   * Reports when `txid` (or, with `script`, the first transaction paying that script) has
   * `numConfs` confirmations, searching from `heightHint`.
   */
  async registerConfirmations(
    target: { readonly txid?: string; readonly script?: Uint8Array },
    numConfs: number,
    heightHint: number,
    onConfirmed: (e: ConfirmationEvent) => void,
    onReorg?: (e: ReorgEvent) => void,
  ): Promise<Subscription> {
    if (target.txid === undefined && target.script === undefined) throw new TypeError('registerConfirmations needs a txid or a script');
    if (target.txid !== undefined) checkTxid(target.txid);
    if (!Number.isSafeInteger(numConfs) || numConfs < 1 || numConfs > 1000) throw new RangeError(`numConfs must be 1..1000; got ${numConfs}`);
    await this.ready();
    const reg: ConfReg = { ...target, numConfs, onConfirmed, notified: false, ...(onReorg ? { onReorg } : {}) };
    this.#confs.add(reg);
    await this.#rescan(heightHint, (height, hash, tx) => this.#matchConf(reg, tx, height, hash));
    this.#fireConfirmations([reg]);
    return { cancel: () => this.#confs.delete(reg) };
  }

  async #rescan(heightHint: number, visit: (height: number, hash: string, tx: Tx) => void): Promise<void> {
    const cursor = this.#follower.cursor();
    if (!cursor) return;
    const from = Math.max(0, heightHint);
    for (let h = from; h <= cursor.height; h++) {
      const hash = await this.#source.getBlockHash(h);
      const block = parseBlock(await this.#source.getRawBlock(hash));
      for (const tx of block.txs) visit(h, hash, tx);
    }
  }

  #connect(height: number, hash: string, raw: Uint8Array): void {
    this.#tipHeight = Math.max(this.#tipHeight, height);
    let block;
    try {
      block = parseBlock(raw);
    } catch (err) {
      this.#onError(err);
      return;
    }
    for (const tx of block.txs) {
      for (const reg of this.#spends) this.#matchSpend(reg, tx, height, hash);
      for (const reg of this.#confs) this.#matchConf(reg, tx, height, hash);
    }
    this.#fireConfirmations([...this.#confs]);
  }

  #disconnect(block: FollowedBlock): void {
    this.#tipHeight = block.height - 1;
    for (const reg of this.#spends) {
      if (reg.spentAt?.blockHash !== block.hash) continue;
      delete reg.spentAt;
      this.#safe(() => reg.onReorg?.({ txid: reg.outpoint.txid, height: block.height, blockHash: block.hash }));
    }
    for (const reg of this.#confs) {
      if (reg.confirmedAt?.blockHash !== block.hash) continue;
      const { txid } = reg.confirmedAt;
      delete reg.confirmedAt;
      if (reg.notified) this.#safe(() => reg.onReorg?.({ txid, height: block.height, blockHash: block.hash }));
      reg.notified = false;
    }
  }

  #matchSpend(reg: SpendReg, tx: Tx, height: number | null, blockHash: string | null): void {
    const i = spendingInput(tx, reg.outpoint);
    if (i < 0) return;
    if (height !== null && blockHash !== null) {
      if (reg.spentAt?.blockHash === blockHash) return;
      reg.spentAt = { height, blockHash };
    }
    const event: SpendEvent = { outpoint: reg.outpoint, spendingTxid: tx.txid, spendingTx: tx.bytes.slice(), inputIndex: i, height, blockHash };
    this.#safe(() => reg.onSpend(event));
  }

  #matchConf(reg: ConfReg, tx: Tx, height: number, blockHash: string): void {
    if (reg.confirmedAt) return;
    const hit = reg.txid !== undefined ? tx.txid === reg.txid : tx.outputs.some((o) => bytesEqual(o.script, reg.script as Uint8Array));
    if (hit) reg.confirmedAt = { txid: tx.txid, height, blockHash };
  }

  #fireConfirmations(regs: readonly ConfReg[]): void {
    for (const reg of regs) {
      if (!reg.confirmedAt || reg.notified) continue;
      const confirmations = this.#tipHeight - reg.confirmedAt.height + 1;
      if (confirmations < reg.numConfs) continue;
      reg.notified = true;
      const event: ConfirmationEvent = { ...reg.confirmedAt, confirmations };
      this.#safe(() => reg.onConfirmed(event));
    }
  }

  #onChainEvent(ev: ChainEvent): void {
    if (ev.type !== 'mempool-tx' || this.#spends.size === 0) return;
    void this.#mempoolTx(ev.txid, ev.raw).catch(this.#onError);
  }

  async #mempoolTx(txid: string, raw: Uint8Array | undefined): Promise<void> {
    const tx = parseTransaction(raw ?? (await this.#source.getRawTransaction(txid)));
    for (const reg of this.#spends) if (!reg.spentAt) this.#matchSpend(reg, tx, null, null);
  }

  async #checkMempool(regs: readonly SpendReg[]): Promise<void> {
    if (!this.#source.capabilities.mempool || regs.every((r) => r.spentAt)) return;
    for (const txid of await this.#source.getMempoolTxids()) {
      let tx: Tx;
      try {
        tx = parseTransaction(await this.#source.getRawTransaction(txid));
      } catch {
        continue; // evicted meanwhile, or unparseable: not ours to report
      }
      for (const reg of regs) if (!reg.spentAt) this.#matchSpend(reg, tx, null, null);
    }
  }

  #safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#onError(err);
    }
  }
}

function spendingInput(tx: Tx, outpoint: Outpoint): number {
  if (tx.isCoinbase) return -1;
  return tx.inputs.findIndex((input) => input.vout === outpoint.vout && input.prevTxidHex === outpoint.txid);
}

function checkTxid(txid: string): void {
  if (!/^[0-9a-f]{64}$/.test(txid)) throw new TypeError(`txid must be 64 lowercase hex characters; got ${JSON.stringify(txid)}`);
}

/** Hex of a script, for logs and maps. */
export function scriptHex(script: Uint8Array): string {
  return toHex(script);
}
