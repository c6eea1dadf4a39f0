/**
 * The PayPub chain watch's transaction handling (applyTransaction) over a real store, fed with
 * transactions built by the protocol code: claims (plain, RBF-replaced, with an annex), refunds,
 * reorgs, a bad private-mode wrap, garbage, and the same block twice.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawTx } from '@scure/btc-signer/script.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseTransaction } from '../../src/chain/block.js';
import { sha256 } from '../../src/paypub/bytes.js';
import { saleId } from '../../src/paypub/link.js';
import { buildHtlcClaimTx, checkFraudProof, decodeFraudProof, htlcOutput, sealWrap, signOffer } from '../../src/paypub/private.js';
import { createReveal } from '../../src/paypub/sample.js';
import { buildClaimTx, buildRefundTx, pledgeOutput, type PledgeUtxo } from '../../src/paypub/scripts.js';
import { PaypubStore, Sealer } from '../../src/paypub/store.js';
import { applyTransaction, buildWatchSet, type SeenAt } from '../../src/paypub/watch.js';
import { keypair, makeSale, someP2trScript, type Sale } from '../support/paypub-fixtures.js';

let dir: string;
let store: PaypubStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dd-paypub-watch-'));
  store = new PaypubStore(join(dir, 'paypub.db'), new Sealer(new Uint8Array(randomBytes(32))));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const apply = (raw: Uint8Array, at: SeenAt = null): Set<string> => store.transaction(() => applyTransaction(store, buildWatchSet(store), parseTransaction(raw), at));
const txid = (): string => Buffer.from(randomBytes(32)).toString('hex');

/** A sale this store follows as a buyer, with the sample verified. */
function follow(sale: Sale): string {
  const id = saleId(sale.manifest);
  store.insertSale({ id, role: 'buyer', manifest: sale.manifest, url: 'http://127.0.0.1:1' });
  const reveal = createReveal(sale.manifest, sale.beaconHash, sale.content.keys, sale.sellerSk);
  store.setReveal(id, sale.beaconHash, reveal);
  store.addKeys(id, new Map(reveal.indices.map((i, j) => [i, reveal.keys[j] as Uint8Array])), 'reveal');
  return id;
}

function claimOf(sale: Sale, pledges: PledgeUtxo[], feeRate = 2): { raw: Uint8Array; txid: string } {
  return buildClaimTx({ manifest: sale.manifest, sampled: sale.sampled, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, pledges, payoutScript: someP2trScript(), feeRate });
}

describe('claims', () => {
  it('an observer learns every key from a mempool claim; the block confirms it; a reorg keeps the keys', () => {
    const sale = makeSale({ chunks: 16, sample: 4 });
    const id = follow(sale);
    const pledges = [keypair(), keypair()].map((k, i) => ({ txid: txid(), vout: i, value: 60_000n, buyerKey: k.pk }));
    const claim = claimOf(sale, pledges);
    expect(apply(claim.raw)).toEqual(new Set([id]));
    expect(store.keyCount(id)).toBe(16);
    expect(store.claim(claim.txid)?.status).toBe('mempool');
    const keys = store.keys(id);
    sale.content.keys.forEach((k, i) => expect(keys.get(i)).toEqual(k));
    apply(claim.raw, { height: 200, block: 'aa'.repeat(32) });
    expect(store.claim(claim.txid)).toMatchObject({ status: 'confirmed', height: 200 });
    const undone = store.disconnectBlock('aa'.repeat(32));
    expect(undone.claims.map((c) => c.txid)).toEqual([claim.txid]);
    expect(store.claim(claim.txid)).toMatchObject({ status: 'mempool', height: null });
    expect(store.keyCount(id)).toBe(16);
    const types = store.eventsAfter(0).map((e) => e.type);
    expect(types).toEqual(['paypub.claim.seen', 'paypub.keys.complete', 'paypub.claim.confirmed']);
  });

  it('keys seen in a claim that is then replaced stay known; the replacement confirming marks the first replaced', () => {
    const sale = makeSale({ chunks: 8, sample: 2 });
    const id = follow(sale);
    const pledges = [{ txid: txid(), vout: 0, value: 60_000n, buyerKey: keypair().pk }];
    const first = claimOf(sale, pledges, 2);
    const second = claimOf(sale, pledges, 6);
    apply(first.raw);
    apply(second.raw, { height: 300, block: 'bb'.repeat(32) });
    expect(store.claim(first.txid)).toMatchObject({ status: 'replaced', replacedBy: second.txid });
    expect(store.claim(second.txid)?.status).toBe('confirmed');
    expect(store.keyCount(id)).toBe(8);
  });

  it('a witness with an annex still gives the keys', () => {
    const sale = makeSale({ chunks: 8, sample: 2 });
    const id = follow(sale);
    const claim = claimOf(sale, [{ txid: txid(), vout: 0, value: 60_000n, buyerKey: keypair().pk }]);
    const tx = RawTx.decode(claim.raw);
    const witnesses = (tx.witnesses ?? []).map((w) => [...w, Uint8Array.of(0x50, 1, 2, 3)]);
    apply(RawTx.encode({ ...tx, witnesses }));
    expect(store.keyCount(id)).toBe(8);
  });

  it('the same block twice changes nothing the second time', () => {
    const sale = makeSale({ chunks: 8, sample: 2 });
    const id = follow(sale);
    const claim = claimOf(sale, [{ txid: txid(), vout: 0, value: 60_000n, buyerKey: keypair().pk }]);
    const at = { height: 10, block: 'cc'.repeat(32) };
    apply(claim.raw, at);
    const events = store.lastEventSeq();
    apply(claim.raw, at);
    expect(store.lastEventSeq()).toBe(events);
    expect(store.claims(id)).toHaveLength(1);
  });

  it('unrelated or malformed transactions give nothing and never throw', () => {
    const sale = makeSale({ chunks: 8, sample: 2 });
    follow(sale);
    const other = makeSale({ chunks: 8, sample: 2 });
    const claim = claimOf(other, [{ txid: txid(), vout: 0, value: 60_000n, buyerKey: keypair().pk }]);
    expect(apply(claim.raw).size).toBe(0);
    expect(store.eventsAfter(0)).toHaveLength(0);
    // a claim-shaped witness whose keys do not hash to the commitments
    const tx = RawTx.decode(claimOf(sale, [{ txid: txid(), vout: 0, value: 60_000n, buyerKey: keypair().pk }]).raw);
    const witnesses = (tx.witnesses ?? []).map((w) => w.map((item, i) => (i > 0 && item.length === 32 ? new Uint8Array(randomBytes(32)) : item)));
    expect(apply(RawTx.encode({ ...tx, witnesses })).size).toBe(0);
  });
});

describe('own pledges', () => {
  it('a refund is recorded; a claim replacing it (after the deadline) still publishes the keys', () => {
    const sale = makeSale({ chunks: 8, sample: 2 });
    const id = follow(sale);
    const buyer = keypair();
    const p = { txid: txid(), vout: 1, value: 70_000n, buyerKey: buyer.pk };
    const script = pledgeOutput(sale.manifest, sale.sampled, p).script;
    store.insertPledge({ ...p, saleId: id, kind: 'pledge', own: true, keyIndex: 0, script, height: 150, blockHash: 'dd'.repeat(32) });
    const refund = buildRefundTx({ manifest: sale.manifest, sampled: sale.sampled, pledge: p, buyerSecretKey: buyer.sk, destScript: someP2trScript(), feeRate: 2 });
    apply(refund.raw);
    expect(store.pledge(p.txid, 1)).toMatchObject({ spentBy: refund.txid, spentKind: 'refund' });
    expect(store.refund(refund.txid)).toMatchObject({ status: 'mempool', own: true });
    const claim = claimOf(sale, [p], 10);
    apply(claim.raw, { height: 160, block: 'ee'.repeat(32) });
    expect(store.refund(refund.txid)?.status).toBe('replaced');
    expect(store.pledge(p.txid, 1)).toMatchObject({ spentBy: claim.txid, spentKind: 'claim', spentHeight: 160 });
    expect(store.keyCount(id)).toBe(8);
  });
});

describe('private mode', () => {
  it('a claim that opens a bad wrap becomes a fraud proof that checks out', () => {
    const sale = makeSale({ mode: 'private', chunks: 8, sample: 2 });
    const id = saleId(sale.manifest);
    store.insertSale({ id, role: 'buyer', manifest: sale.manifest, url: 'http://127.0.0.1:1' });
    const buyer = keypair();
    const secret = new Uint8Array(randomBytes(32));
    const paymentHash = sha256(secret);
    const wrap = sealWrap(secret, Array.from({ length: 8 }, () => new Uint8Array(randomBytes(32))), sale.manifest.hash, paymentHash);
    const offer = signOffer({ manifestHash: sale.manifest.hash, buyerKey: buyer.pk, paymentHash, amount: sale.manifest.price, csvDelay: 10, wrapHash: sha256(wrap) }, sale.sellerSk);
    store.insertPrivateOffer({ saleId: id, role: 'buyer', buyerKey: buyer.pk, keyIndex: 0, offer, wrap, script: htlcOutput(sale.manifest, offer).script });
    const claim = buildHtlcClaimTx({
      manifest: sale.manifest, offer, secret, sellerSecretKey: sale.sellerSk, utxo: { txid: txid(), vout: 0, value: 50_000n }, payoutScript: someP2trScript(), feeRate: 2,
    });
    apply(claim.raw);
    expect(store.keyCount(id)).toBe(0);
    const [fraud] = store.frauds(id);
    expect(fraud?.claimTxid).toBe(claim.txid);
    expect(checkFraudProof(decodeFraudProof(fraud!.proof))).toMatchObject({ fraud: true, claimTxid: claim.txid, reason: 'key-mismatch' });
    expect(store.eventsAfter(0).map((e) => e.type)).toContain('paypub.fraud');
  });
});
