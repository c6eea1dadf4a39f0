/**
 * Applying transactions to the wallet tables: outputs paying wallet scripts become UTXOs,
 * spends of wallet outpoints mark them spent, conflicts evict the loser. The same code serves
 * block connection (height set), mempool transactions (height null) and script-history
 * backends. Synchronous: callers run it inside a store transaction (the follower's, for blocks).
 *
 * Eviction (replaced, conflicted or dropped unconfirmed txs) deletes the tx's outputs, frees the
 * outpoints it spent, and cascades to unconfirmed children that spent its outputs.
 */
import type { Tx } from '../chain/block.js';
import type { KeyChain } from './keys.js';
import type { TxStatus, WalletStore } from './store.js';
import { toHex } from '../util/bytes.js';

/** The wallet's derived scripts, by hex; `markUsed` extends the gap window. */
export interface ScriptIndex {
  lookup(scriptHex: string): { readonly chain: KeyChain; readonly index: number } | undefined;
  markUsed(chain: KeyChain, index: number): void;
}

export interface ApplyContext {
  readonly store: WalletStore;
  readonly scripts: ScriptIndex;
  /** Block height, or null for an unconfirmed tx. */
  readonly height: number | null;
  readonly blockHash: string | null;
  readonly now: number;
  /** Set when the wallet built and broadcast this tx. */
  readonly own?: { readonly fee: bigint; readonly changeVout: number | null };
}


/**
 * Applies `tx`. Returns false (changing nothing) when it does not touch the wallet, when it is
 * unconfirmed and conflicts with a confirmed spend, or when it is unconfirmed and already confirmed.
 */
export function applyTx(tx: Tx, ctx: ApplyContext): boolean {
  const { store, height } = ctx;
  // A mempool sighting of a tx already confirmed is stale (Core's ZMQ notice can be handled
  // after the block that holds the tx): it must not turn it back into a pending tx, which the
  // next mempool pass would then drop as gone from the mempool.
  if (height === null && store.tx(tx.txid)?.status === 'confirmed') return false;
  let sent = 0n;
  const spends: { txid: string; vout: number }[] = [];
  const txid = tx.txid;
  const coinbase = tx.isCoinbase;
  for (const input of coinbase ? [] : tx.inputs) {
    const prev = { txid: input.prevTxidHex, vout: input.vout };
    const u = store.utxo(prev.txid, prev.vout);
    if (!u) continue;
    if (u.spentBy !== null && u.spentBy !== txid) {
      const other = store.tx(u.spentBy);
      const otherConfirmed = other !== undefined && other.height !== null;
      if (otherConfirmed && height === null) return false; // a stale double spend
      if (!otherConfirmed) evictTx(store, u.spentBy, height === null ? 'replaced' : 'conflicted', txid);
    }
    sent += u.value;
    spends.push(prev);
  }
  let received = 0n;
  const outs: { vout: number; value: bigint; script: Uint8Array; chain: KeyChain; index: number }[] = [];
  tx.outputs.forEach((o, vout) => {
    const script = o.script;
    const hit = ctx.scripts.lookup(toHex(script));
    if (!hit) return;
    const value = o.value;
    received += value;
    outs.push({ vout, value, script: script.slice(), ...hit });
  });
  if (spends.length === 0 && outs.length === 0) return false;

  const known = store.tx(txid);
  store.upsertTx({
    txid, raw: tx.bytes.slice(), height, blockHash: ctx.blockHash, status: height === null ? 'pending' : 'confirmed',
    received, sent, fee: ctx.own?.fee ?? null, own: ctx.own !== undefined, changeVout: ctx.own?.changeVout ?? null,
    coinbase, firstSeen: known?.firstSeen ?? ctx.now,
  });
  for (const s of spends) store.setSpent(s.txid, s.vout, txid);
  for (const o of outs) {
    store.insertUtxo({ txid, vout: o.vout, value: o.value, script: o.script, chain: o.chain, index: o.index, height, coinbase });
    ctx.scripts.markUsed(o.chain, o.index);
  }
  return true;
}

/**
 * Removes an unconfirmed tx's effects: its outputs (and, recursively, unconfirmed children that
 * spent them) and its spends. The row stays, with `status` and `replacedBy` for history.
 */
export function evictTx(store: WalletStore, txid: string, status: Exclude<TxStatus, 'pending' | 'confirmed'>, replacedBy: string | null = null): void {
  for (const out of store.outputsOf(txid)) {
    if (out.spentBy !== null && out.spentBy !== txid) {
      const child = store.tx(out.spentBy);
      if (child && child.height === null && child.status === 'pending') evictTx(store, out.spentBy, 'dropped');
    }
  }
  store.deleteOutputsOf(txid);
  store.unspendAllBy(txid);
  if (store.tx(txid)) store.setTxStatus(txid, status, replacedBy);
}

/**
 * Undoes a block: its transactions go back to unconfirmed (they may return to the mempool;
 * the next mempool pass drops those that do not), coinbases vanish with their block.
 */
export function disconnectBlock(store: WalletStore, height: number): void {
  const txs = store.txsAtHeight(height);
  for (const t of txs) {
    if (t.coinbase) {
      evictTx(store, t.txid, 'dropped');
      continue;
    }
    store.upsertTx({ ...t, height: null, blockHash: null, status: 'pending' });
    store.setOutputsHeight(t.txid, null);
  }
}
