/**
 * The seller's chain watch finds hinted pledges (hint.ts) over a real store: once per outpoint,
 * through a reorg and the same block twice, only for its own public sales with a sample, and
 * never a pledge whose hint or script is wrong.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawTx } from '@scure/btc-signer/script.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseTransaction } from '../../src/chain/block.js';
import { pledgeHint } from '../../src/paypub/hint.js';
import { saleId } from '../../src/paypub/link.js';
import { createReveal } from '../../src/paypub/sample.js';
import { buildClaimTx, pledgeOutput } from '../../src/paypub/scripts.js';
import { PaypubStore, Sealer, type SaleRole } from '../../src/paypub/store.js';
import { applyTransaction, buildWatchSet, type SeenAt } from '../../src/paypub/watch.js';
import { keypair, makeSale, someP2trScript, type Sale } from '../support/paypub-fixtures.js';

let dir: string;
let store: PaypubStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dd-paypub-hint-'));
  store = new PaypubStore(join(dir, 'paypub.db'), new Sealer(new Uint8Array(randomBytes(32))));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const apply = (raw: Uint8Array, at: SeenAt = null): Set<string> => store.transaction(() => applyTransaction(store, buildWatchSet(store), parseTransaction(raw), at));

function addSale(sale: Sale, role: SaleRole, reveal = true): string {
  const id = saleId(sale.manifest);
  store.insertSale({ id, role, manifest: sale.manifest, ...(role === 'seller' ? { sellerIndex: 0 } : { url: 'http://127.0.0.1:1' }) });
  if (reveal) store.setReveal(id, sale.beaconHash, createReveal(sale.manifest, sale.beaconHash, sale.content.keys, sale.sellerSk));
  return id;
}

/** A valid transaction re-dressed to pay `outputs` (its input spends a pledge of a sale nobody here follows). */
function txPaying(outputs: { script: Uint8Array; amount: bigint }[]): { raw: Uint8Array; txid: string } {
  const sale = makeSale({ chunks: 4, sample: 1 });
  const base = RawTx.decode(buildClaimTx({
    manifest: sale.manifest, sampled: sale.sampled, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, payoutScript: someP2trScript(), feeRate: 2,
    pledges: [{ txid: Buffer.from(randomBytes(32)).toString('hex'), vout: 0, value: 500_000n, buyerKey: keypair().pk }],
  }).raw);
  const raw = RawTx.encode({ ...base, outputs });
  return { raw, txid: parseTransaction(raw).txid };
}

const hintOut = (sale: Sale, key: Uint8Array) => ({ script: Uint8Array.of(0x6a, 0x20, ...pledgeHint(sale.manifest, key)), amount: 0n });

describe('hinted pledges in the seller\'s watch', () => {
  it('records a hinted pledge once, confirms it, survives a reorg and the same block twice', () => {
    const sale = makeSale({ chunks: 8, sample: 2 });
    const id = addSale(sale, 'seller');
    const buyer = keypair().pk;
    const script = pledgeOutput(sale.manifest, sale.sampled, { buyerKey: buyer }).script;
    const tx = txPaying([{ script: someP2trScript(), amount: 70_000n }, { script, amount: 60_000n }, hintOut(sale, buyer)]);
    expect(apply(tx.raw)).toEqual(new Set([id]));
    expect(store.pledge(tx.txid, 1)).toMatchObject({ saleId: id, own: false, value: 60_000n, height: null, buyerKey: buyer });
    const at = { height: 150, block: 'ee'.repeat(32) };
    apply(tx.raw, at);
    apply(tx.raw, at);
    expect(store.pledges(id)).toHaveLength(1);
    expect(store.pledge(tx.txid, 1)).toMatchObject({ height: 150, blockHash: at.block });
    store.disconnectBlock(at.block);
    expect(store.pledge(tx.txid, 1)?.height).toBeNull();
    apply(tx.raw, { height: 151, block: 'ef'.repeat(32) });
    expect(store.pledge(tx.txid, 1)?.height).toBe(151);
    expect(store.eventsAfter(0).map((e) => e.type)).toEqual(['paypub.pledge.found', 'paypub.pledge.confirmed', 'paypub.pledge.confirmed']);
  });

  it('finds a pledge first seen in a block directly confirmed', () => {
    const sale = makeSale({ chunks: 8, sample: 2 });
    const id = addSale(sale, 'seller');
    const buyer = keypair().pk;
    const tx = txPaying([hintOut(sale, buyer), { script: pledgeOutput(sale.manifest, sale.sampled, { buyerKey: buyer }).script, amount: 60_000n }]);
    apply(tx.raw, { height: 120, block: 'dd'.repeat(32) });
    expect(store.pledge(tx.txid, 1)).toMatchObject({ saleId: id, height: 120 });
  });

  it('ignores buyers\' sales, sales without a sample, wrong hints and pledges below the minimum', () => {
    const buyer = keypair().pk;
    const bought = makeSale({ chunks: 8, sample: 2 });
    addSale(bought, 'buyer');
    const early = makeSale({ chunks: 8, sample: 2 });
    addSale(early, 'seller', false);
    const mine = makeSale({ chunks: 8, sample: 2 });
    addSale(mine, 'seller');
    for (const s of [bought, early]) {
      const tx = txPaying([{ script: pledgeOutput(s.manifest, s.sampled, { buyerKey: buyer }).script, amount: 60_000n }, hintOut(s, buyer)]);
      expect(apply(tx.raw).size).toBe(0);
    }
    const script = pledgeOutput(mine.manifest, mine.sampled, { buyerKey: buyer }).script;
    expect(apply(txPaying([{ script, amount: 60_000n }, hintOut(mine, keypair().pk)]).raw).size).toBe(0);
    expect(apply(txPaying([{ script, amount: 60_000n }, hintOut(bought, buyer)]).raw).size).toBe(0);
    expect(apply(txPaying([{ script, amount: mine.manifest.minPledge - 1n }, hintOut(mine, buyer)]).raw).size).toBe(0);
    expect(store.pledges()).toHaveLength(0);
  });
});
