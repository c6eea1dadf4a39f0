/**
 * The deaddrop wallet: a BIP86 taproot wallet over any ChainSource.
 *
 * Sync: the engines in sync.ts (blocks and mempool for full-block backends, script histories
 * for Electrum); this class decides when they run (`sync()`, and in the background with
 * `follow`), one wallet operation at a time. Settling broadcasts a crashed process left
 * behind runs after each pass.
 *
 * Spending: explicit fee rate with a hard cap, v2 transactions signalling RBF, exact vsize and
 * fee (see coinselect.ts), broadcast through the ChainSource, a rejection surfaces as REJECTED
 * with the node's reason. Wallet operations run one at a time (an async mutex), so two sends
 * never pick the same coins; coins of funded-but-not-broadcast transactions are reserved.
 */
import type Database from 'better-sqlite3';
import { parseTransaction } from '../chain/block.js';
import type { BroadcastResult, ChainEvent, ChainSource } from '../chain/types.js';
import { DeaddropError, isDeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { checkFeeRate, type OutputSpec } from './coinselect.js';
import { chainPolicyFor, explainShortfall, PendingGraph, type ChainPolicy, type HeldBack } from './chain-policy.js';
import { Lifecycle } from '../util/lifecycle.js';
import { planBump } from './bump.js';
import { applyTx, evictTx, type ScriptIndex } from './indexer.js';
import { CHANGE, RECEIVE, type KeyChain, type TaprootKeyInfo, type WalletKeys } from './keys.js';
import { psbtFinalize, psbtFromBase64, psbtSign, psbtToBase64 } from './psbt.js';
import { DEFAULT_RESERVATION_TTL_MS, ReservationStore, type Reservation, type ReservationKind } from './reservations.js';
import { openWalletDb, scriptKey, WalletStore, type TxRow, type UtxoRow } from './store.js';
import { BlockSync, MempoolSync, syncScriptHistory, type SyncProgressFn, type SyncTarget } from './sync.js';
import {
  addressToScript, buildSigned, buildUnsigned, planTx, validateOutputs, type BuiltTx, type SpendableCoin, type TxPlan,
} from './tx.js';

export { dataOutput } from './tx.js';
export type { OutputSpec } from './coinselect.js';
export type { Reservation } from './reservations.js';

/** Default gap limit on both chains (BIP44). */
export const DEFAULT_GAP_LIMIT = 20;
/** Default hard cap on fee rates, sat/vB. */
export const DEFAULT_MAX_FEE_RATE = 1000;
/** Coinbase outputs can be spent after this many confirmations. */
export const COINBASE_MATURITY = 100;

export interface WalletOptions {
  readonly keys: WalletKeys;
  readonly source: ChainSource;
  /** An open database, or a file path the wallet opens (and closes). */
  readonly db: Database.Database | string;
  /** First height to scan (the keystore's birthday). Default 0. */
  readonly birthdayHeight?: number;
  readonly gapLimit?: number;
  /** Fee rates above this (sat/vB) are refused with FEE_TOO_HIGH. Default 1000. */
  readonly maxFeeRate?: number;
  /** Follow the chain in the background after ready() (daemon). Default false: call sync(). */
  readonly follow?: boolean;
  /** Background poll period for tip and mempool. Default 2000 ms. */
  readonly pollIntervalMs?: number;
  /** Most mempool transactions fetched per mempool pass (keeps mainnet mempools affordable). Default 5000. */
  readonly mempoolFetchLimit?: number;
  /**
   * How long coins stay reserved for a PSBT or a funded transaction that is neither broadcast
   * nor abandoned (ms). Default one hour ({@link DEFAULT_RESERVATION_TTL_MS}).
   */
  readonly reservationTtlMs?: number;
  /** Unconfirmed-chain limits to respect. Default: the backend's (chain-policy.ts, `chainPolicyFor`). */
  readonly chainPolicy?: ChainPolicy;
  /** Errors of background work. */
  readonly onError?: (err: unknown) => void;
  /** Called after wallet state may have changed (new block, new tx, send). */
  readonly onChange?: () => void;
  /** Block sync progress (full-block backends): the last block applied and the tip it walks to, at most 4 times a second (onChange gives the height reached). */
  readonly onSyncProgress?: SyncProgressFn;
}

export interface Balance {
  /** Confirmed, spendable, not spent by a pending tx. */
  readonly confirmed: bigint;
  /** Unconfirmed outputs not spent yet (incoming, and change of pending sends). */
  readonly unconfirmed: bigint;
  /** Coinbase outputs younger than 100 blocks. */
  readonly immature: bigint;
}

export interface HistoryEntry {
  readonly txid: string;
  readonly height: number | null;
  readonly status: TxRow['status'];
  readonly received: bigint;
  readonly sent: bigint;
  /** received - sent: positive for incoming. */
  readonly net: bigint;
  readonly fee: bigint | null;
  readonly replacedBy: string | null;
  readonly firstSeen: number;
}

export interface FundOptions {
  readonly outputs: readonly OutputSpec[];
  readonly feeRate: number;
  /** Change to this address instead of the wallet's next change address. */
  readonly changeAddress?: string;
  /** Allow OP_RETURN outputs beyond the one-push, 80-byte standard. */
  readonly allowNonStandardData?: boolean;
  readonly changePosition?: 'random' | 'last';
}

/** A signed transaction funded by the wallet, not yet broadcast (its coins are reserved). */
export interface FundedTransaction extends BuiltTx {
  readonly feeRate: number;
}

export interface SendResult {
  readonly txid: string;
  readonly fee: bigint;
  readonly vsize: number;
  readonly raw: Uint8Array;
  readonly changeIndex: number;
}

export interface SyncResult {
  readonly height: number | null;
  readonly connected: number;
  readonly disconnected: number;
  readonly mempoolTxs: number;
}

type Mode = 'blocks' | 'scripts';

/**
 * @example
 * const wallet = new Wallet({ keys, source, db: join(datadir, 'wallet.db'), birthdayHeight });
 * await wallet.ready();
 * await wallet.sync();
 * const { txid } = await wallet.send(address, 50_000n, { feeRate: 2 });
 */
export class Wallet {
  readonly network: Network;
  readonly keys: WalletKeys;
  readonly source: ChainSource;
  readonly gapLimit: number;
  readonly maxFeeRate: number;
  readonly #life = new Lifecycle('wallet', { open: (signal) => this.#open(signal), close: () => this.#close() });
  #store: WalletStore | null = null;
  #ownDb: boolean;
  #dbArg: WalletOptions['db'];
  #opts: WalletOptions;
  #scripts = new Map<string, { chain: KeyChain; index: number }>();
  /** What the sync engines see: the store and script index, which throw once closed. */
  readonly #target: SyncTarget;
  #blocks: BlockSync | null = null;
  readonly #mempool: MempoolSync;
  #mode: Mode | null = null;
  #tipHeight: number | null = null;
  #reservations: ReservationStore | null = null;
  /** Broadcast records found at start-up, settled with the node's answer (see #settleBroadcasts). */
  #unsettled = new Set<string>();
  readonly reservationTtlMs: number;
  /** The unconfirmed-chain limits coin selection respects. */
  readonly chainPolicy: ChainPolicy;
  #lock: Promise<unknown> = Promise.resolve();
  /** Set by #close once operations in flight are done (a wallet never opened is closed by the Lifecycle alone). */
  #closed = false;
  #timer: ReturnType<typeof setInterval> | null = null;
  #unsubscribe: (() => void) | null = null;
  #bgQueued = false;

  constructor(opts: WalletOptions) {
    this.keys = opts.keys;
    this.network = opts.keys.network;
    this.source = opts.source;
    this.gapLimit = opts.gapLimit ?? DEFAULT_GAP_LIMIT;
    this.maxFeeRate = opts.maxFeeRate ?? DEFAULT_MAX_FEE_RATE;
    if (!Number.isSafeInteger(this.gapLimit) || this.gapLimit < 1 || this.gapLimit > 10_000) throw new RangeError(`gapLimit out of range: ${this.gapLimit}`);
    if (!(this.maxFeeRate >= 1)) throw new RangeError(`maxFeeRate must be >= 1 sat/vB; got ${this.maxFeeRate}`);
    this.reservationTtlMs = opts.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.chainPolicy = opts.chainPolicy ?? chainPolicyFor(opts.source.kind, opts.keys.network);
    if (!Number.isSafeInteger(this.reservationTtlMs) || this.reservationTtlMs < 1) throw new RangeError(`reservationTtlMs must be a positive integer; got ${this.reservationTtlMs}`);
    this.#opts = opts;
    this.#dbArg = opts.db;
    this.#ownDb = typeof opts.db === 'string';
    this.#target = { source: opts.source, store: () => this.#db, scriptIndex: () => this.#scriptIndex() };
    this.#mempool = new MempoolSync(this.#target, opts.mempoolFetchLimit ?? 5000);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  /** Opens the database, derives the gap window and (when following) starts background sync. Memoized. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  async #open(signal: AbortSignal): Promise<void> {
    const caps = this.source.capabilities;
    this.#mode = caps.fullBlocks ? 'blocks' : caps.scriptHistory ? 'scripts' : null;
    if (!this.#mode) throw DeaddropError.unsupported(`the ${this.source.kind} backend offers neither full blocks nor script history`);
    await this.source.ready();
    // Closed while the backend was opening: open no database, start nothing.
    if (signal.aborted) return;
    const db = typeof this.#dbArg === 'string' ? openWalletDb(this.#dbArg) : this.#dbArg;
    const store = new WalletStore(db, this.network);
    this.#store = store;
    const reservations = new ReservationStore(db);
    this.#reservations = reservations;
    // A funded transaction lived in its caller's memory: after a restart nobody holds it.
    for (const r of reservations.list('funded')) reservations.remove(r.id);
    // A broadcast that was written but whose answer was never recorded is settled with the node.
    for (const r of reservations.list('broadcast')) this.#unsettled.add(r.id);
    for (const a of store.addresses()) this.#scripts.set(scriptKey(a.script), { chain: a.chain, index: a.index });
    store.transaction(() => {
      this.#ensureGap(RECEIVE);
      this.#ensureGap(CHANGE);
    });
    if (this.#mode === 'blocks') this.#blocks = new BlockSync(this.#target, db, this.#opts.birthdayHeight ?? 0, this.#opts.onSyncProgress);
    this.#tipHeight = this.#blocks?.height ?? null;
    if (this.#opts.follow) this.#startBackground();
  }

  /** Stops background work, waits for running operations, closes the database if the wallet opened it. */
  close(): Promise<void> {
    return this.#life.close();
  }

  /** Runs once any opening has settled: releases whatever the (possibly partial) open started. */
  async #close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.#blocks?.close();
    await this.#lock.catch(() => undefined);
    this.#closed = true;
    if (this.#ownDb) this.#store?.db.close();
  }

  get #res(): ReservationStore {
    if (this.#closed || this.#life.closed) throw DeaddropError.closed('wallet');
    if (!this.#reservations) throw new DeaddropError('NOT_INITIALIZED', 'wallet.ready() has not completed');
    return this.#reservations;
  }

  get #db(): WalletStore {
    if (this.#closed || this.#life.closed) throw DeaddropError.closed('wallet');
    if (!this.#store) throw new DeaddropError('NOT_INITIALIZED', 'wallet.ready() has not completed');
    return this.#store;
  }

  /** Runs `fn` after every other wallet operation (one at a time). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(async () => {
      await this.ready();
      this.#life.throwIfClosing();
      return fn();
    });
    this.#lock = run.catch(() => undefined);
    return run;
  }

  // ---------------------------------------------------------------------------------------------
  // Addresses

  #scriptIndex(): ScriptIndex {
    return {
      lookup: (hexScript) => this.#scripts.get(hexScript),
      markUsed: (chain, index) => {
        this.#db.markUsed(chain, index);
        this.#ensureGap(chain);
      },
    };
  }

  /** Derives addresses so that `gapLimit` unused ones follow the highest used or issued one. */
  #ensureGap(chain: KeyChain): void {
    const store = this.#db;
    const target = store.highWater(chain) + this.gapLimit;
    for (let i = store.maxDerived(chain) + 1; i <= target; i++) {
      const k = this.keys.taprootKey(chain, i);
      store.insertAddress(chain, i, k.script, k.address);
      this.#scripts.set(scriptKey(k.script), { chain, index: i });
    }
  }

  /** A receive address never handed out or used before. */
  async newReceiveAddress(): Promise<string> {
    await this.ready();
    const store = this.#db;
    return store.transaction(() => {
      const row = store.nextFreeAddress(RECEIVE);
      if (!row) throw new Error('gap window has no free receive address');
      store.markIssued(RECEIVE, row.index);
      this.#ensureGap(RECEIVE);
      if (this.#mode === 'scripts') void this.source.watchScript?.(row.script).catch(() => undefined);
      return row.address;
    });
  }

  #nextChangeKey(issue: boolean): TaprootKeyInfo {
    const store = this.#db;
    return store.transaction(() => {
      const row = store.nextFreeAddress(CHANGE);
      if (!row) throw new Error('gap window has no free change address');
      if (issue) {
        store.markIssued(CHANGE, row.index);
        this.#ensureGap(CHANGE);
      }
      return this.keys.taprootKey(CHANGE, row.index);
    });
  }

  /** All derived addresses (both chains) with their used/issued flags. */
  async addresses(): Promise<ReturnType<WalletStore['addresses']>> {
    await this.ready();
    return this.#db.addresses();
  }

  // ---------------------------------------------------------------------------------------------
  // Sync

  /** One full pass: blocks to the tip, then the mempool (or every script's history). */
  sync(): Promise<SyncResult> {
    return this.#exclusive(() => this.#syncNow());
  }

  async #syncNow(): Promise<SyncResult> {
    const blocks = this.#blocks;
    if (blocks === null) {
      const n = await this.#syncScripts();
      if (await this.#settleBroadcasts()) this.#opts.onChange?.();
      return { height: this.#tipHeight, connected: 0, disconnected: 0, mempoolTxs: n };
    }
    const r = await blocks.catchUp();
    this.#tipHeight = blocks.height;
    const n = this.source.capabilities.mempool ? await this.#mempool.sync(() => blocks.tipHash) : 0;
    const settled = await this.#settleBroadcasts();
    if (r.connected + r.disconnected + n + settled > 0) this.#opts.onChange?.();
    return { height: this.#tipHeight, connected: r.connected, disconnected: r.disconnected, mempoolTxs: n };
  }

  /**
   * Settles the broadcast records a previous process left behind (it was killed between writing
   * the signed transaction and recording the node's answer). Runs after a sync pass, so the
   * wallet has already applied every block and mempool transaction it can see:
   * - a transaction the wallet now knows (pending or confirmed), or the node knows, is recorded
   *   as the wallet's own and its record removed;
   * - otherwise it is broadcast again (it was signed and committed to; sending the same bytes
   *   twice is harmless): accepted, it is recorded; refused, its coins are released;
   * - a backend error leaves the record for the next pass (nothing is released on a guess).
   * Returns how many records were settled.
   */
  async #settleBroadcasts(): Promise<number> {
    if (this.#unsettled.size === 0) return 0;
    let settled = 0;
    for (const id of [...this.#unsettled]) {
      const r = this.#res.get(id);
      if (!r || r.kind !== 'broadcast' || !r.raw) {
        this.#unsettled.delete(id);
        continue;
      }
      const known = this.#db.tx(id);
      if (known && (known.status === 'pending' || known.status === 'confirmed')) {
        this.#recordOwn(r.raw, known.height, known.blockHash);
      } else if (await this.#nodeKnows(id)) {
        this.#recordOwn(r.raw, null, null);
      } else {
        const res = await this.source.broadcast(r.raw);
        if (res.accepted || (await this.#nodeKnows(id))) this.#recordOwn(r.raw, null, null);
        else this.#res.remove(id);
      }
      this.#unsettled.delete(id);
      settled++;
    }
    return settled;
  }

  async #nodeKnows(txid: string): Promise<boolean> {
    try {
      await this.source.getRawTransaction(txid);
      return true;
    } catch (err) {
      if (isDeaddropError(err, 'NOT_FOUND')) return false;
      throw err;
    }
  }

  /** Records a signed transaction of this wallet (change spendable) and removes its reservation. */
  #recordOwn(raw: Uint8Array, height: number | null, blockHash: string | null): void {
    const tx = parseTransaction(raw);
    const store = this.#db;
    const inSum = tx.inputs.reduce((s, i) => s + (store.utxo(i.prevTxidHex, i.vout)?.value ?? 0n), 0n);
    const outSum = tx.outputs.reduce((s, o) => s + o.value, 0n);
    const changeVout = tx.outputs.findIndex((o) => this.#scripts.get(scriptKey(o.script))?.chain === CHANGE);
    store.transaction(() => {
      applyTx(tx, {
        store, scripts: this.#scriptIndex(), height, blockHash, now: Date.now(),
        own: { fee: inSum >= outSum ? inSum - outSum : 0n, changeVout: changeVout >= 0 ? changeVout : null },
      });
      this.#res.remove(tx.txid);
    });
    this.#mempool.markSeen(tx.txid);
  }

  /** Script-history sync (Electrum): see syncScriptHistory. */
  async #syncScripts(): Promise<number> {
    const { changed, height } = await syncScriptHistory(this.#target);
    this.#tipHeight = height;
    if (changed > 0) this.#opts.onChange?.();
    return changed;
  }

  #startBackground(): void {
    this.#unsubscribe = this.source.subscribe((ev: ChainEvent) => {
      if (ev.type === 'mempool-tx' && ev.raw && this.#mode === 'blocks') {
        const raw = ev.raw;
        void this.#exclusive(async () => {
          if (this.#mempool.apply(raw)) this.#opts.onChange?.();
        }).catch((err: unknown) => this.#opts.onError?.(err));
        return;
      }
      if (ev.type === 'tip' || ev.type === 'reconnected' || ev.type === 'script') this.#scheduleSync();
    });
    const poll = this.#opts.pollIntervalMs ?? 2000;
    if (poll > 0) this.#timer = setInterval(() => this.#scheduleSync(), poll);
    if (this.#mode === 'scripts' && this.source.watchScript) {
      for (const a of this.#db.addresses()) void this.source.watchScript(a.script).catch(() => undefined);
    }
    this.#scheduleSync();
  }

  #scheduleSync(): void {
    if (this.#life.closing || this.#bgQueued) return;
    this.#bgQueued = true;
    this.#exclusive(() => {
      this.#bgQueued = false;
      return this.#syncNow();
    }).catch((err: unknown) => {
      this.#bgQueued = false;
      if (!isDeaddropError(err, 'CLOSED')) this.#opts.onError?.(err);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  /** Height of the last block the wallet has applied (or the backend tip for script-history backends). */
  get height(): number | null {
    return this.#tipHeight;
  }

  #isMature(u: UtxoRow): boolean {
    if (!u.coinbase) return true;
    return u.height !== null && this.#tipHeight !== null && this.#tipHeight - u.height + 1 >= COINBASE_MATURITY;
  }

  async balance(): Promise<Balance> {
    await this.ready();
    let confirmed = 0n;
    let unconfirmed = 0n;
    let immature = 0n;
    for (const u of this.#db.unspent()) {
      if (u.height === null) unconfirmed += u.value;
      else if (!this.#isMature(u)) immature += u.value;
      else confirmed += u.value;
    }
    return { confirmed, unconfirmed, immature };
  }

  /** Unspent outputs (confirmed and unconfirmed). */
  async utxos(): Promise<UtxoRow[]> {
    await this.ready();
    return this.#db.unspent();
  }

  /** Wallet transactions, newest first. */
  async history(limit = 1000): Promise<HistoryEntry[]> {
    await this.ready();
    return this.#db.history(limit).map((t) => ({
      txid: t.txid, height: t.height, status: t.status, received: t.received, sent: t.sent, net: t.received - t.sent,
      fee: t.fee, replacedBy: t.replacedBy, firstSeen: t.firstSeen,
    }));
  }

  /** A wallet transaction's stored row, if known. */
  async transaction(txid: string): Promise<TxRow | undefined> {
    await this.ready();
    return this.#db.tx(txid);
  }

  /**
   * Coins that may be spent: confirmed (mature) ones, plus unconfirmed change of the wallet's
   * own pending transactions; never reserved ones.
   */
  #spendable(): SpendableCoin[] {
    return this.#coins().coins;
  }

  /**
   * Spendable coins (as #spendable) minus those whose spending would break the node's
   * unconfirmed-chain limits, and what was held back for that reason.
   */
  #coins(): { coins: SpendableCoin[]; held: HeldBack | null } {
    const store = this.#db;
    this.#res.expire(Date.now());
    const reserved = this.#res.reservedOutpoints();
    const all = store.unspent().filter((u) => {
      if (reserved.has(`${u.txid}:${u.vout}`)) return false;
      if (u.height !== null) return this.#isMature(u);
      const t = store.tx(u.txid);
      return t !== undefined && t.own && t.status === 'pending';
    });
    if (all.every((u) => u.height !== null)) return { coins: all, held: null };
    const graph = this.#pendingGraph();
    const coins: SpendableCoin[] = [];
    let value = 0n;
    let reason = '';
    for (const u of all) {
      const why = u.height === null ? graph.violation(this.chainPolicy, [u.txid], 0) : null;
      if (why === null) coins.push(u);
      else {
        value += u.value;
        reason ||= why;
      }
    }
    return { coins, held: value > 0n ? { value, reason, policy: this.chainPolicy.name } : null };
  }

  /** Says, in an INSUFFICIENT_FUNDS, how much more the wallet holds in reservations (the "have 0 sat" puzzle of issue 9). */
  #withReserved(err: unknown): unknown {
    if (!isDeaddropError(err, 'INSUFFICIENT_FUNDS')) return err;
    const reserved = new Set([...this.#res.reservedOutpoints()]);
    const value = this.#db.unspent().filter((u) => reserved.has(`${u.txid}:${u.vout}`)).reduce((s, u) => s + u.value, 0n);
    if (value === 0n) return err;
    return new DeaddropError('INSUFFICIENT_FUNDS', `${err.message}; ${value} sat more are reserved for PSBTs or sends in progress (see \`deaddrop wallet reservations\`)`, {
      ...err.details, reserved: value.toString(),
    });
  }

  /** The wallet's unconfirmed transactions and how they chain. */
  #pendingGraph(): PendingGraph {
    const pending = this.#db.pendingTxs();
    const ids = new Set(pending.map((t) => t.txid));
    return new PendingGraph(pending.map((t) => {
      const tx = parseTransaction(t.raw);
      return { txid: t.txid, vsize: tx.vsize, parents: tx.inputs.map((i) => i.prevTxidHex).filter((id) => ids.has(id)) };
    }));
  }

  // ---------------------------------------------------------------------------------------------
  // Spending

  #lockTime(): number {
    // Anti fee-sniping (as Bitcoin Core): valid from the next block on.
    return this.#tipHeight !== null && this.#tipHeight > 0 && this.#tipHeight < 500_000_000 ? this.#tipHeight : 0;
  }

  #changeKey(changeAddress: string | undefined): TaprootKeyInfo {
    if (changeAddress === undefined) return this.#nextChangeKey(false);
    const script = addressToScript(changeAddress, this.network);
    // Only the script matters for building; derivation info is attached only for wallet keys.
    const own = this.#scripts.get(scriptKey(script));
    if (own) return this.keys.taprootKey(own.chain, own.index);
    return { chain: CHANGE, index: -1, path: '', pathIndexes: [], internalKey: new Uint8Array(0), script, address: changeAddress };
  }

  #plan(
    opts: FundOptions, change: TaprootKeyInfo,
    extra: { required?: SpendableCoin[]; minFee?: (v: number) => bigint; candidates?: SpendableCoin[] } = {},
  ): TxPlan {
    checkFeeRate(opts.feeRate, this.maxFeeRate);
    validateOutputs(opts.outputs, { allowNonStandardData: opts.allowNonStandardData ?? false });
    const { coins, held } = extra.candidates ? { coins: extra.candidates, held: null } : this.#coins();
    try {
      return planTx({
        candidates: coins, outputs: opts.outputs, feeRate: opts.feeRate, maxFeeRate: this.maxFeeRate, change,
        lockTime: this.#lockTime(), changePosition: opts.changePosition ?? 'random',
        ...(extra.required ? { required: extra.required } : {}),
        ...(extra.minFee ? { minFee: extra.minFee } : {}),
      });
    } catch (err) {
      throw this.#withReserved(explainShortfall(err, held));
    }
  }

  /** Reserves exactly the inputs of `plan` (persisted) for transaction `txid`. */
  #reserve(txid: string, plan: TxPlan, kind: ReservationKind, ttlMs = this.reservationTtlMs): void {
    const now = Date.now();
    this.#res.add(txid, kind, plan.inputs, { now, expiresAt: kind === 'broadcast' ? null : now + ttlMs });
  }

  /** Frees the coins reserved by a funded transaction or PSBT that will not be broadcast. */
  release(txid: string): void {
    this.#res.remove(txid);
  }

  /** Current reservations (expired ones are dropped first), oldest first. */
  async reservations(): Promise<Reservation[]> {
    return this.#exclusive(async () => {
      this.#res.expire(Date.now());
      return this.#res.list();
    });
  }

  /**
   * Gives up a PSBT (or funded transaction) and frees its coins at once. `idOrPsbt` is the txid
   * `psbt create` printed, or the PSBT itself. NOT_FOUND when nothing is reserved for it;
   * CONFLICT for a broadcast whose outcome is still being settled with the node.
   */
  abandon(idOrPsbt: string): Promise<Reservation> {
    return this.#exclusive(async () => {
      const id = /^[0-9a-f]{64}$/i.test(idOrPsbt) ? idOrPsbt.toLowerCase() : psbtFromBase64(idOrPsbt).id;
      this.#res.expire(Date.now());
      const r = this.#res.get(id);
      if (!r) throw DeaddropError.notFound(`no reservation for transaction ${id}`);
      if (r.kind === 'broadcast') throw new DeaddropError('CONFLICT', `transaction ${id} was broadcast; its coins are released once the node's answer is known`);
      this.#res.remove(id);
      this.#opts.onChange?.();
      return r;
    });
  }

  /**
   * Selects coins, adds change and signs a transaction paying `outputs` (OP_RETURN included),
   * without broadcasting it. Its coins stay reserved until `broadcast()` or `release()`.
   * The primitive under dead drops and PayPub pledges.
   */
  fundTransaction(opts: FundOptions): Promise<FundedTransaction> {
    return this.#exclusive(async () => {
      const plan = this.#plan(opts, this.#changeKey(opts.changeAddress));
      const built = buildSigned(withoutForeignChange(plan), this.keys);
      this.#reserve(built.txid, built.plan, 'funded');
      return { ...built, feeRate: opts.feeRate };
    });
  }

  /**
   * Broadcasts a funded transaction and records it. REJECTED (with the node's reason) when the
   * node refuses it; the coins are released either way.
   */
  broadcast(funded: BuiltTx): Promise<SendResult> {
    return this.#exclusive(() => this.#broadcastNow(funded));
  }

  /**
   * Broadcasts a signed transaction of this wallet. The signed bytes are written (as a
   * `broadcast` reservation of its inputs) before they leave, so a crash at any point leaves a
   * record start-up can settle; the node's answer then records the tx or releases its coins in
   * one sqlite transaction. A backend error (the answer is unknown) keeps the record, and the
   * next sync settles it with the node.
   */
  async #broadcastNow(built: BuiltTx, replaces?: string, changeVoutArg?: number | null): Promise<SendResult> {
    const parsed = parseTransaction(built.raw);
    if (!replaces) {
      // The exact check, with the real size: never send what the node's chain limits refuse.
      const why = this.#pendingGraph().violation(this.chainPolicy, parsed.inputs.map((i) => i.prevTxidHex), parsed.vsize);
      if (why !== null) {
        throw new DeaddropError('INSUFFICIENT_FUNDS', `${this.chainPolicy.name} would refuse this transaction for its unconfirmed inputs (${why}): spend confirmed coins or wait for the next block`, {
          reason: 'unconfirmed-chain-limit',
        });
      }
    }
    const res = this.#res;
    if (res.get(built.txid)) res.markBroadcasting(built.txid, built.raw);
    else res.add(built.txid, 'broadcast', parsed.inputs.map((i) => ({ txid: i.prevTxidHex, vout: i.vout })), { raw: built.raw, now: Date.now(), expiresAt: null });
    let answer: BroadcastResult;
    try {
      answer = await this.source.broadcast(built.raw);
    } catch (err) {
      this.#unsettled.add(built.txid);
      throw err;
    }
    if (!answer.accepted) {
      res.remove(built.txid);
      throw new DeaddropError('REJECTED', `the node rejected the transaction: ${answer.reason}`, { reason: answer.reason, code: answer.code, txid: built.txid });
    }
    const store = this.#db;
    const changeVout = changeVoutArg !== undefined ? changeVoutArg : built.plan.change && built.changeIndex >= 0 ? built.changeIndex : null;
    store.transaction(() => {
      if (replaces) evictTx(store, replaces, 'replaced', built.txid);
      applyTx(parsed, { store, scripts: this.#scriptIndex(), height: null, blockHash: null, now: Date.now(), own: { fee: built.fee, changeVout } });
      res.remove(built.txid);
    });
    this.#mempool.markSeen(built.txid);
    this.#opts.onChange?.();
    return { txid: built.txid, fee: built.fee, vsize: built.vsize, raw: built.raw, changeIndex: built.changeIndex };
  }

  /** Pays `amount` sat to `address` at `feeRate` sat/vB and broadcasts. */
  async send(address: string, amount: bigint, opts: { feeRate: number; changeAddress?: string }): Promise<SendResult> {
    if (typeof amount !== 'bigint') throw new TypeError(`amount must be a bigint of sat; got ${typeof amount}`);
    const script = addressToScript(address, this.network);
    return this.sendOutputs({ outputs: [{ script, amount }], feeRate: opts.feeRate, ...(opts.changeAddress ? { changeAddress: opts.changeAddress } : {}) });
  }

  /** fundTransaction + broadcast as one operation. */
  sendOutputs(opts: FundOptions): Promise<SendResult> {
    return this.#exclusive(async () => {
      const plan = this.#plan(opts, this.#changeKey(opts.changeAddress));
      const built = buildSigned(withoutForeignChange(plan), this.keys);
      return this.#broadcastNow(built);
    });
  }

  /**
   * Replaces a pending wallet transaction with one paying `feeRate` (BIP125): same recipients,
   * less change, extra inputs when the change cannot cover the new fee.
   */
  bump(txid: string, opts: { feeRate: number }): Promise<SendResult> {
    return this.#exclusive(async () => {
      const store = this.#db;
      let plan: TxPlan;
      try {
        plan = planBump({
          txid, row: store.tx(txid), feeRate: opts.feeRate, maxFeeRate: this.maxFeeRate, lockTime: this.#lockTime(),
          utxo: (id, vout) => store.utxo(id, vout),
          outputsOf: store.outputsOf(txid),
          // BIP125 rule 2: a replacement adds no unconfirmed inputs.
          candidates: this.#spendable().filter((c) => store.utxo(c.txid, c.vout)?.height !== null),
          ownKey: (script) => {
            const own = this.#scripts.get(scriptKey(script));
            return own ? this.keys.taprootKey(own.chain, own.index) : undefined;
          },
          freshChange: this.#nextChangeKey(false),
        });
      } catch (err) {
        throw this.#withReserved(err);
      }
      return this.#broadcastNow(buildSigned(plan, this.keys), txid);
    });
  }

  /**
   * Raw material for callers that must see the plan before signing (dead drops derive their
   * envelope from the input keys): spendable coins, the next change key and the keys.
   * Nothing is reserved; pair it with `broadcastOwn`. Two concurrent callers may pick the same
   * coins, in which case the node rejects the second transaction.
   */
  async fundingForDrop(): Promise<{ network: Network; keys: WalletKeys; coins: SpendableCoin[]; change: TaprootKeyInfo; maxFeeRate: number; heldBack: HeldBack | null }> {
    return this.#exclusive(async () => {
      const { coins, held } = this.#coins();
      return { network: this.network, keys: this.keys, coins, change: this.#nextChangeKey(false), maxFeeRate: this.maxFeeRate, heldBack: held };
    });
  }

  /**
   * Broadcasts a transaction built elsewhere from this wallet's coins and records it when
   * accepted. A rejection is returned, not thrown. The wallet's fee-rate cap still applies.
   */
  broadcastOwn(built: BuiltTx): Promise<BroadcastResult> {
    return this.#exclusive(async () => {
      if (Number(built.fee) > this.maxFeeRate * built.vsize) throw DeaddropError.feeTooHigh(Math.round((Number(built.fee) / built.vsize) * 100) / 100, this.maxFeeRate);
      try {
        const r = await this.#broadcastNow(built);
        return { accepted: true, txid: r.txid };
      } catch (err) {
        if (!isDeaddropError(err, 'REJECTED')) throw err;
        const d = err.details ?? {};
        return { accepted: false, reason: String(d.reason), ...(typeof d.code === 'number' ? { code: d.code } : {}) };
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // PSBT

  /**
   * An unsigned PSBT paying `outputs`, with BIP371 tap_bip32 records so an external signer
   * holding the same seed can sign. Its coins stay reserved (use `release(txid)` to give up).
   */
  psbtCreate(
    outputs: readonly OutputSpec[], feeRate: number, opts: { changeAddress?: string; ttlMs?: number } = {},
  ): Promise<{ psbt: string; txid: string; fee: bigint; vsize: number; expiresAt: number }> {
    return this.#exclusive(async () => {
      const ttl = opts.ttlMs ?? this.reservationTtlMs;
      if (!Number.isSafeInteger(ttl) || ttl < 1) throw DeaddropError.badInput('a reservation lifetime must be a positive whole number of milliseconds');
      checkFeeRate(feeRate, this.maxFeeRate); // before a change address is handed out
      const change = opts.changeAddress === undefined ? this.#nextChangeKey(true) : this.#changeKey(opts.changeAddress);
      const plan = withoutForeignChange(this.#plan({ outputs, feeRate }, change));
      const tx = buildUnsigned(plan, this.keys);
      this.#reserve(tx.id, plan, 'psbt', ttl);
      return { psbt: psbtToBase64(tx), txid: tx.id, fee: plan.fee, vsize: plan.vsize, expiresAt: this.#res.get(tx.id)!.expiresAt! };
    });
  }

  /** Signs the inputs of a PSBT that belong to this wallet's seed. */
  async psbtSign(psbt: string): Promise<{ psbt: string; signed: number }> {
    return psbtSign(psbt, this.keys);
  }

  /**
   * Finalizes a fully signed PSBT and broadcasts it (default) or only returns the raw tx.
   * The fee-rate cap applies to whatever the PSBT pays.
   */
  psbtFinalize(psbt: string, opts: { broadcast?: boolean } = {}): Promise<{ txid: string; raw: Uint8Array; fee: bigint; vsize: number; broadcast: boolean }> {
    return this.#exclusive(async () => {
      const fin = psbtFinalize(psbt, { maxFeeRate: this.maxFeeRate });
      if (opts.broadcast === false) {
        // The caller now holds the final transaction: the wallet stops holding its coins.
        if (this.#res.get(fin.txid)?.kind === 'psbt') this.#res.remove(fin.txid);
        return { txid: fin.txid, raw: fin.raw, fee: fin.fee, vsize: fin.vsize, broadcast: false };
      }
      const changeVout = fin.tx.outputsLength > 0
        ? [...Array(fin.tx.outputsLength).keys()].find((i) => this.#scripts.get(scriptKey(fin.tx.getOutput(i).script!))?.chain === CHANGE) ?? -1
        : -1;
      const plan: TxPlan = { inputs: [], outputs: [], changeIndex: changeVout, change: null, fee: fin.fee, vsize: fin.vsize, lockTime: fin.tx.lockTime };
      const built = { txid: fin.txid, raw: fin.raw, vsize: fin.vsize, weight: fin.tx.weight, fee: fin.fee, changeIndex: changeVout, plan };
      const r = await this.#broadcastNow(built, undefined, changeVout >= 0 ? changeVout : null);
      return { txid: r.txid, raw: r.raw, fee: r.fee, vsize: r.vsize, broadcast: true };
    });
  }
}

/** A plan whose change goes to a foreign address carries no wallet derivation for it. */
function withoutForeignChange(plan: TxPlan): TxPlan {
  return plan.change && plan.change.index < 0 ? { ...plan, change: null } : plan;
}
