/**
 * PaypubWatch: what PayPub sees on chain, for sellers, buyers and observers alike.
 *
 * DEV DOCS
 * - Blocks come from the one ChainFollower (src/chain/follow/follower.ts, cursor 'paypub' in
 *   paypub.db): `onConnect` applies a block's effects in the follower's transaction and
 *   `onDisconnect` undoes them (the store knows which rows a block hash confirmed). The
 *   mempool is fed by 'mempool-tx' events (the raw tx is fetched when the event has none) and by
 *   `mempoolPass()` (one-shot CLI commands, safety net); each mempool tx commits on its own.
 * - What is looked for (the WatchSet, rebuilt when the store changed, here or in another process):
 *   anchor txids not yet confirmed; known pledge txs not yet confirmed; HTLC output scripts of
 *   private offers; pledge outpoints (to see them spent); and the claim leaf script of every sale
 *   whose sample is known, plus the HTLC leaf of every private offer. A claim is recognised by its
 *   leaf script in the witness, so an observer who never paid sees it as well as a buyer does.
 * - Keys are self-authenticating (each hashes to its commitment): keys from a claim that is later
 *   replaced or reorged out stay in the store. Only the claim's status moves
 *   (mempool -> confirmed -> mempool on a reorg -> confirmed when mined again; or replaced).
 * - Chain data never throws out of here: a malformed tx or witness is "nothing found".
 * - Side effects that are not database rows (writing the decrypted file, claiming, refunding)
 *   are left to the caller, told which sales were touched through `onTouched` after commit.
 * - Spends of pledge outpoints are tracked here, in the same pass (and the same sqlite
 *   transaction) that finds claims, because whether a spend is a claim or a refund depends on
 *   the claim found in that very transaction, and a block's effects must commit with the
 *   follower cursor. (A separate spend notifier would follow the chain a second time and
 *   commit apart from the claims.)
 * - Lifecycle (util/lifecycle.ts): `open` checks for a close after each await, so a close
 *   during open leaves no subscription and no follower running.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { parseBlock, parseTransaction, type Tx } from '../chain/block.js';
import type { ChainSource } from '../chain/types.js';
import { isDeaddropError } from '../util/errors.js';
import { type CatchUpResult, ChainFollower } from '../chain/follow/follower.js';
import { Lifecycle } from '../util/lifecycle.js';
import { encodeManifest } from './manifest.js';
import { encodeFraudProof, extractHtlcSecret, openWrap } from './private.js';
import { findHintedPledges } from './hint.js';
import { claimLeafScript, extractClaimKeys, htlcLeafScript, splitAnnex } from './scripts.js';
import type { PaypubStore, PledgeRow, PrivateOfferRow, SaleRow } from './store.js';

/** Cursor name of the PayPub chain follower in paypub.db. */
export const FOLLOWER_NAME = 'paypub';
/** Most mempool transactions fetched in one pass. */
const MEMPOOL_PASS_LIMIT = 5_000;
/** Blocks after a sale's deadline in which hinted pledges are still looked for (the seller's daemon stops at the same distance). */
const HINT_AFTER_DEADLINE = 144;
/** Bound on remembered mempool txids. */
const MAX_SEEN = 200_000;

type Leaf = { readonly sale: SaleRow; readonly kind: 'claim' } | { readonly sale: SaleRow; readonly kind: 'htlc'; readonly offer: PrivateOfferRow };

/** What the watch looks for, derived from the store. */
export interface WatchSet {
  readonly anchors: ReadonlyMap<string, readonly SaleRow[]>;
  readonly pledgeTxs: ReadonlyMap<string, readonly PledgeRow[]>;
  readonly htlcScripts: ReadonlyMap<string, PrivateOfferRow>;
  readonly outpoints: ReadonlyMap<string, PledgeRow>;
  readonly leaves: ReadonlyMap<string, Leaf>;
  readonly leafLengths: ReadonlySet<number>;
  /** This datadir's public sales with a sample: pledges to them are found by their hint (hint.ts). */
  readonly hintSales: readonly SaleRow[];
  readonly empty: boolean;
}

/** Builds the watch set from the store's rows. */
export function buildWatchSet(store: PaypubStore): WatchSet {
  const sales = store.sales();
  const byId = new Map(sales.map((s) => [s.id, s]));
  const anchors = new Map<string, SaleRow[]>();
  for (const s of sales) if (s.anchorTxid && s.anchorHeight === null) anchors.set(s.anchorTxid, [...(anchors.get(s.anchorTxid) ?? []), s]);
  const pledgeTxs = new Map<string, PledgeRow[]>();
  const outpoints = new Map<string, PledgeRow>();
  for (const p of store.pledges()) {
    if (p.height === null) pledgeTxs.set(p.txid, [...(pledgeTxs.get(p.txid) ?? []), p]);
    if (p.spentHeight === null) outpoints.set(`${p.txid}:${p.vout}`, p);
  }
  const leaves = new Map<string, Leaf>();
  for (const s of sales) {
    if (s.manifest.mode === 'public' && s.reveal) leaves.set(bytesToHex(claimLeafScript(s.manifest, s.reveal.indices)), { sale: s, kind: 'claim' });
  }
  const htlcScripts = new Map<string, PrivateOfferRow>();
  for (const o of store.privateOffers()) {
    const sale = byId.get(o.saleId);
    if (!sale) continue;
    htlcScripts.set(bytesToHex(o.script), o);
    leaves.set(bytesToHex(htlcLeafScript(o.offer.paymentHash, sale.manifest.sellerKey)), { sale, kind: 'htlc', offer: o });
  }
  const leafLengths = new Set([...leaves.keys()].map((h) => h.length / 2));
  const hintSales = sales.filter((s) => s.role === 'seller' && s.manifest.mode === 'public' && s.reveal !== null);
  const empty = anchors.size + pledgeTxs.size + htlcScripts.size + outpoints.size + leaves.size + hintSales.length === 0;
  return { anchors, pledgeTxs, htlcScripts, outpoints, leaves, leafLengths, hintSales, empty };
}

/** Where a transaction was seen: a block, or the mempool (null). */
export type SeenAt = { readonly height: number; readonly block: string } | null;

export interface PaypubWatchOptions {
  readonly store: PaypubStore;
  readonly source: ChainSource;
  /** Follow tip events and the mempool (daemon). Default false: drive it with catchUp()/mempoolPass(). */
  readonly follow?: boolean;
  readonly pollIntervalMs?: number;
  /** Sales whose rows changed, after the change committed. */
  readonly onTouched?: (saleIds: ReadonlySet<string>, at: SeenAt) => void;
  /** After every follower run that reached the tip (daemon: time-based work such as refunds). */
  readonly onCaughtUp?: (height: number | null) => void;
  readonly onError?: (err: unknown) => void;
}

/**
 * Applies one transaction's PayPub effects to the store. Synchronous; the caller provides the
 * transaction. Returns the ids of the sales it touched. Never throws on bad chain data.
 */
export function applyTransaction(store: PaypubStore, ws: WatchSet, tx: Tx, at: SeenAt): Set<string> {
  const touched = new Set<string>();
  if (ws.empty) return touched;
  const txid = tx.txid;
  if (at) {
    for (const s of ws.anchors.get(txid) ?? []) {
      store.setAnchorBlock(s.id, at.height, at.block);
      store.event('paypub.anchor.confirmed', `paypub.anchor.confirmed:${s.id}:${at.block}`, { id: s.id, txid, height: at.height });
      touched.add(s.id);
    }
    for (const p of ws.pledgeTxs.get(txid) ?? []) {
      store.setPledgeBlock(p.txid, p.vout, at.height, at.block);
      store.event('paypub.pledge.confirmed', `paypub.pledge.confirmed:${p.txid}:${p.vout}:${at.block}`, { id: p.saleId, txid, vout: p.vout, height: at.height, own: p.own });
      touched.add(p.saleId);
    }
  }
  if (ws.htlcScripts.size > 0) findHtlcOutputs(store, ws, tx, at, touched);
  if (ws.hintSales.length > 0) findHinted(store, ws, tx, at, touched);
  const claimed = findClaims(store, ws, tx, at, touched);
  findSpends(store, ws, tx, at, claimed, touched);
  return touched;
}

function findHtlcOutputs(store: PaypubStore, ws: WatchSet, tx: Tx, at: SeenAt, touched: Set<string>): void {
  tx.outputs.forEach((out, vout) => {
    const script = out.script;
    if (script.length !== 34 || script[0] !== 0x51) return;
    const offer = ws.htlcScripts.get(bytesToHex(script));
    if (!offer || (ws.pledgeTxs.get(tx.txid) ?? []).some((p) => p.vout === vout)) return;
    const inserted = store.insertPledge({
      txid: tx.txid, vout, saleId: offer.saleId, kind: 'htlc', own: offer.role === 'buyer', buyerKey: offer.buyerKey, keyIndex: offer.keyIndex,
      paymentHash: offer.paymentHash, script: script.slice(), value: out.value, height: at?.height ?? null, blockHash: at?.block ?? null,
    });
    if (inserted) {
      store.event('paypub.htlc.funded', `paypub.htlc.funded:${tx.txid}:${vout}`, { id: offer.saleId, txid: tx.txid, vout, value: out.value.toString(), height: at?.height ?? null });
      touched.add(offer.saleId);
    }
  });
}

/** Seller: pledges to own sales that carry a hint (hint.ts), announced or not. */
function findHinted(store: PaypubStore, ws: WatchSet, tx: Tx, at: SeenAt, touched: Set<string>): void {
  if (!tx.outputs.some((o) => o.script.length === 34 && o.script[0] === 0x6a && o.script[1] === 0x20)) return;
  for (const sale of ws.hintSales) {
    // Long past the deadline the seller's daemon claims nothing more (service.ts): skip the curve work.
    if (at && at.height > sale.manifest.deadlineHeight + HINT_AFTER_DEADLINE) continue;
    for (const h of findHintedPledges(sale.manifest, (sale.reveal as NonNullable<SaleRow['reveal']>).indices, tx)) {
      if ((ws.pledgeTxs.get(tx.txid) ?? []).some((p) => p.vout === h.vout)) continue;
      const inserted = store.insertPledge({
        txid: tx.txid, vout: h.vout, saleId: sale.id, kind: 'pledge', own: false, buyerKey: h.buyerKey, script: h.script, value: h.value,
        height: at?.height ?? null, blockHash: at?.block ?? null,
      });
      if (inserted) {
        store.event('paypub.pledge.found', `paypub.pledge.found:${tx.txid}:${h.vout}`, { id: sale.id, txid: tx.txid, vout: h.vout, value: h.value.toString(), height: at?.height ?? null });
        touched.add(sale.id);
      }
    }
  }
}

/** The leaf script (annex dropped) of each input's script-path witness that the watch set knows. */
function claimLeaves(ws: WatchSet, tx: Tx): Map<string, Leaf> {
  const found = new Map<string, Leaf>();
  if (ws.leaves.size === 0 || !tx.segwit) return found;
  for (const input of tx.inputs) {
    let items: readonly Uint8Array[];
    try {
      items = splitAnnex(input.witness).items;
    } catch {
      continue;
    }
    const leaf = items.length >= 3 ? items[items.length - 2] : undefined;
    if (!leaf || !ws.leafLengths.has(leaf.length)) continue;
    const hex = bytesToHex(leaf);
    const l = ws.leaves.get(hex);
    if (l) found.set(hex, l);
  }
  return found;
}

/** Records claims of watched sales (and their keys). Returns the ids of the sales this tx claims. */
function findClaims(store: PaypubStore, ws: WatchSet, tx: Tx, at: SeenAt, touched: Set<string>): Set<string> {
  const claimed = new Set<string>();
  const leaves = claimLeaves(ws, tx);
  if (leaves.size === 0) return claimed;
  const raw = tx.bytes.slice();
  const inputs = tx.inputs.map((i) => `${i.prevTxidHex}:${i.vout}`);
  for (const leaf of leaves.values()) {
    const m = leaf.sale.manifest;
    let keys: Map<number, Uint8Array> | null = null;
    if (leaf.kind === 'claim') {
      keys = extractClaimKeys(raw, m);
      if (keys.size === 0) continue;
    } else {
      const secret = extractHtlcSecret(raw, leaf.offer.offer, m.sellerKey);
      if (!secret) continue;
      if (leaf.offer.role === 'buyer') keys = unwrapOrConvict(store, leaf.sale, leaf.offer, raw, tx.txid, secret);
    }
    claimed.add(leaf.sale.id);
    touched.add(leaf.sale.id);
    recordClaim(store, leaf.sale, tx.txid, raw, inputs, at, keys, leaf.kind === 'claim' ? 'claim' : 'wrap');
  }
  return claimed;
}

function unwrapOrConvict(store: PaypubStore, sale: SaleRow, offer: PrivateOfferRow, raw: Uint8Array, txid: string, secret: Uint8Array): Map<number, Uint8Array> | null {
  const res = openWrap(sale.manifest, offer.offer, offer.wrap, secret);
  if (res.ok) return new Map(res.keys.map((k, i) => [i, k]));
  const proof = encodeFraudProof({ manifest: encodeManifest(sale.manifest), offer: offer.offerBytes, wrap: offer.wrap, claimTx: raw });
  if (store.insertFraud({ claimTxid: txid, saleId: sale.id, proof, reason: res.reason })) {
    store.event('paypub.fraud', `paypub.fraud:${txid}`, { id: sale.id, claimTxid: txid, reason: res.reason });
  }
  return null;
}

function recordClaim(
  store: PaypubStore, sale: SaleRow, txid: string, raw: Uint8Array, inputs: string[], at: SeenAt, keys: Map<number, Uint8Array> | null, source: string,
): void {
  const id = sale.id;
  const existing = store.claim(txid);
  if (!existing) {
    store.insertClaim({ txid, saleId: id, raw, own: false, inputs, status: at ? 'confirmed' : 'mempool', height: at?.height ?? null, blockHash: at?.block ?? null, seenAt: Date.now() });
    store.event('paypub.claim.seen', `paypub.claim.seen:${txid}`, { id, txid, height: at?.height ?? null });
  }
  if (at && existing?.status !== 'confirmed') {
    store.setClaimStatus(txid, { status: 'confirmed', height: at.height, blockHash: at.block });
    store.event('paypub.claim.confirmed', `paypub.claim.confirmed:${txid}:${at.block}`, { id, txid, height: at.height });
    // Other claims of these inputs still "in the mempool" were replaced (an observer sees no outpoints).
    for (const other of store.claims(id)) {
      if (other.txid !== txid && other.status === 'mempool' && other.inputs.some((i) => inputs.includes(i))) markReplaced(store, other.txid, txid, id);
    }
  }
  if (keys && keys.size > 0) {
    const before = store.keyCount(id);
    const added = store.addKeys(id, keys, `${source}:${txid}`);
    if (added > 0 && before + added >= sale.manifest.chunkCount) {
      store.event('paypub.keys.complete', `paypub.keys.complete:${id}`, { id, claimTxid: txid });
    }
  }
}

/** Marks watched outpoints spent by `tx`; a different earlier spender still unconfirmed was replaced. */
function findSpends(store: PaypubStore, ws: WatchSet, tx: Tx, at: SeenAt, claimed: ReadonlySet<string>, touched: Set<string>): void {
  if (ws.outpoints.size === 0) return;
  const txid = tx.txid;
  for (const input of tx.inputs) {
    const p = ws.outpoints.get(`${input.prevTxidHex}:${input.vout}`);
    if (!p) continue;
    touched.add(p.saleId);
    const kind = claimed.has(p.saleId) ? 'claim' : 'refund';
    if (p.spentBy && p.spentBy !== txid) markReplaced(store, p.spentBy, txid, p.saleId);
    store.setSpent(p.txid, p.vout, { by: txid, kind, height: at?.height ?? null, block: at?.block ?? null });
    if (kind === 'refund') {
      const inserted = store.insertRefund({
        txid, saleId: p.saleId, pledge: `${p.txid}:${p.vout}`, raw: tx.bytes.slice(), own: p.own, status: at ? 'confirmed' : 'mempool',
        height: at?.height ?? null, blockHash: at?.block ?? null, seenAt: Date.now(),
      });
      if (!inserted && at) store.setRefundStatus(txid, 'confirmed', at.height, at.block);
      if (inserted || at) {
        const type = at ? 'paypub.refund.confirmed' : 'paypub.refund.seen';
        store.event(type, `${type}:${txid}:${at?.block ?? ''}`, { id: p.saleId, txid, pledge: `${p.txid}:${p.vout}`, height: at?.height ?? null, own: p.own });
      }
    }
  }
}

function markReplaced(store: PaypubStore, oldTxid: string, newTxid: string, saleId: string): void {
  const c = store.claim(oldTxid);
  if (c && c.status === 'mempool') {
    store.setClaimStatus(oldTxid, { status: 'replaced', replacedBy: newTxid });
    store.event('paypub.claim.replaced', `paypub.claim.replaced:${oldTxid}:${newTxid}`, { id: saleId, txid: oldTxid, by: newTxid });
  }
  const r = store.refund(oldTxid);
  if (r && r.status === 'mempool') store.setRefundStatus(oldTxid, 'replaced', null, null);
}

/** Follows blocks and the mempool for PayPub (see the module header). */
export class PaypubWatch {
  readonly #o: PaypubWatchOptions;
  readonly #store: PaypubStore;
  #follower: ChainFollower | null = null;
  #ws: WatchSet | null = null;
  #wsKey = '';
  #seen = new Set<string>();
  #unsubscribe: (() => void) | null = null;
  readonly #life = new Lifecycle('paypub watch', { open: (signal) => this.#open(signal), close: () => this.#close() });
  #mempoolQueue: Promise<unknown> = Promise.resolve();

  constructor(o: PaypubWatchOptions) {
    this.#o = o;
    this.#store = o.store;
  }

  /** Opens the follower (and with `follow`, the mempool subscription). Memoized. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  async #open(signal: AbortSignal): Promise<void> {
    await this.#o.source.ready();
    if (signal.aborted) return;
    let birthday = Number(this.#store.meta('birthday') ?? NaN);
    if (!Number.isSafeInteger(birthday)) {
      birthday = (await this.#o.source.getTip()).height;
      if (signal.aborted) return;
      this.#store.setMeta('birthday', String(birthday));
    }
    this.#follower = new ChainFollower({
      source: this.#o.source, db: this.#store.db, name: FOLLOWER_NAME, startHeight: birthday, follow: this.#o.follow ?? false,
      pollIntervalMs: this.#o.pollIntervalMs ?? 2000,
      consumer: {
        onConnect: (height, hash, raw) => this.#onBlock(height, hash, raw),
        onDisconnect: (block) => this.#onDisconnect(block.hash),
      },
      onError: this.#o.onError,
      onCaughtUp: (cursor) => this.#o.onCaughtUp?.(cursor?.height ?? null),
    });
    await this.#follower.ready();
    // Closed during the awaits above: subscribe to nothing (#close, which runs once this open
    // settles, stops the follower).
    if (signal.aborted) return;
    if (this.#o.follow) {
      this.#unsubscribe = this.#o.source.subscribe((ev) => {
        if (ev.type === 'mempool-tx') void this.processMempoolTx(ev.txid, ev.raw).catch((err: unknown) => this.#o.onError?.(err));
      });
    }
  }

  /** Stops the subscription and the follower, and waits for mempool work in flight. Idempotent. */
  close(): Promise<void> {
    return this.#life.close();
  }

  /** Runs once any opening has settled: releases whatever the (possibly partial) open started. */
  async #close(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.#follower?.close();
    await this.#mempoolQueue.catch(() => undefined);
  }

  /** The follower's cursor height (the last block applied), or null. */
  get height(): number | null {
    return this.#follower?.cursor()?.height ?? null;
  }

  /** The current watch set (rebuilt when this or another process changed the store). */
  watchSet(): WatchSet {
    const key = `${this.#store.generation}:${this.#store.dataVersion()}`;
    if (!this.#ws || key !== this.#wsKey) {
      this.#ws = buildWatchSet(this.#store);
      this.#wsKey = key;
      this.#seen.clear(); // a mempool tx looked at before may matter now
    }
    return this.#ws;
  }

  #onBlock(height: number, hash: string, raw: Uint8Array): void {
    const ws = this.watchSet();
    if (ws.empty) return;
    let txs: readonly Tx[];
    try {
      txs = parseBlock(raw).txs;
    } catch {
      return; // the follower checked the hash; a block we cannot parse holds nothing we can use
    }
    const touched = new Set<string>();
    for (const tx of txs) {
      for (const id of applyTransaction(this.#store, this.watchSet(), tx, { height, block: hash })) touched.add(id);
    }
    if (touched.size > 0) queueMicrotask(() => this.#o.onTouched?.(touched, { height, block: hash }));
  }

  #onDisconnect(hash: string): void {
    const { claims, refunds } = this.#store.disconnectBlock(hash);
    for (const c of claims) this.#store.event('paypub.claim.reorged', `paypub.claim.reorged:${c.txid}:${hash}`, { id: c.saleId, txid: c.txid });
    for (const r of refunds) this.#store.event('paypub.refund.reorged', `paypub.refund.reorged:${r.txid}:${hash}`, { id: r.saleId, txid: r.txid });
    const touched = new Set([...claims.map((c) => c.saleId), ...refunds.map((r) => r.saleId)]);
    if (touched.size > 0) queueMicrotask(() => this.#o.onTouched?.(touched, null));
  }

  /** Brings the follower to the tip. */
  async catchUp(): Promise<CatchUpResult> {
    await this.ready();
    return (this.#follower as ChainFollower).catchUp();
  }

  /** Looks at one mempool transaction (fetching it when `raw` is not given). */
  processMempoolTx(txid: string, raw?: Uint8Array): Promise<void> {
    const run = this.#mempoolQueue.then(() => this.#processMempool(txid, raw));
    this.#mempoolQueue = run.catch(() => undefined);
    return run;
  }

  async #processMempool(txid: string, given?: Uint8Array): Promise<void> {
    if (this.#life.closing || this.#seen.has(txid)) return;
    if (this.watchSet().empty) return;
    let raw = given;
    if (!raw) {
      try {
        raw = await this.#o.source.getRawTransaction(txid);
      } catch (err) {
        if (isDeaddropError(err, 'NOT_FOUND') || isDeaddropError(err, 'CLOSED')) return; // left the mempool meanwhile
        throw err;
      }
    }
    this.#remember(txid);
    let tx: Tx;
    try {
      tx = parseTransaction(raw);
    } catch {
      return;
    }
    const touched = this.#store.transaction(() => applyTransaction(this.#store, this.watchSet(), tx, null));
    if (touched.size > 0) this.#o.onTouched?.(touched, null);
  }

  #remember(txid: string): void {
    if (this.#seen.size >= MAX_SEEN) this.#seen.clear();
    this.#seen.add(txid);
  }

  /** Looks at every mempool transaction not seen yet (one-shot commands; safety net). Returns how many. */
  async mempoolPass(): Promise<number> {
    await this.ready();
    if (!this.#o.source.capabilities.mempool || this.watchSet().empty) return 0;
    const txids = await this.#o.source.getMempoolTxids();
    let n = 0;
    for (const txid of txids) {
      if (n >= MEMPOOL_PASS_LIMIT) break;
      if (this.#seen.has(txid)) continue;
      n++;
      await this.processMempoolTx(txid);
    }
    return n;
  }

  /**
   * Looks through blocks [from, to] already behind the cursor for one sale's claim (an observer
   * who verifies after the claim was mined). Claims found there stay within the follower's
   * reorg window, so a later disconnect still reaches them.
   */
  async rescan(from: number, to: number): Promise<void> {
    for (let h = Math.max(0, from); h <= to; h++) {
      const hash = await this.#o.source.getBlockHash(h);
      const raw = await this.#o.source.getRawBlock(hash);
      let txs: readonly Tx[];
      try {
        txs = parseBlock(raw).txs;
      } catch {
        continue;
      }
      const touched = this.#store.transaction(() => {
        const t = new Set<string>();
        for (const tx of txs) for (const id of applyTransaction(this.#store, this.watchSet(), tx, { height: h, block: hash })) t.add(id);
        return t;
      });
      if (touched.size > 0) this.#o.onTouched?.(touched, { height: h, block: hash });
    }
  }
}
