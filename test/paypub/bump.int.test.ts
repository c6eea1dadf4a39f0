/**
 * The seller daemon's automatic claim fee bump, end to end on each regtest node: the claim is kept
 * unconfirmed by coinbase-only blocks (`mineEmpty`), the daemon replaces it (RBF, same pledges,
 * higher fee) once it is BUMP_AFTER_BLOCKS old, a normal block confirms the replacement, and
 * every buyer still decrypts the same bytes.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUMP_AFTER_BLOCKS } from '../../src/paypub/seller.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { fundParty, removeParty, startParty, type Party, outboxPath, unlockedPath } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('PayPub on %s', (kind) => {
  useNodeKind(kind);

  type Claim = { txid: string; own: boolean; status: string; fee: string | null; feeRate: number | null; replacedBy: string | null };
  type Status = { phase: string; watchHeight: number | null; keys: { known: number; total: number }; claims: Claim[] };
  type VerboseTx = { txid: string; confirmations?: number; vin: { txid: string; vout: number }[]; vout: { value: number }[] };

  let node: RegtestNode;
  let seller: Party;
  let buyers: Party[] = [];

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
    seller = await startParty('seller', node);
    buyers = [await startParty('buyer1', node), await startParty('buyer2', node)];
    for (const p of [seller, ...buyers]) await fundParty(node, p, 1_000_000n);
  });

  afterAll(async () => {
    for (const p of [seller, ...buyers]) await p?.stop().catch(() => undefined);
    await node?.stop();
    for (const p of [seller, ...buyers]) removeParty(p);
  });

  const mempool = (): Promise<string[]> => node.rpc<string[]>('getrawmempool');
  const verboseTx = (txid: string): Promise<VerboseTx> => node.rpc<VerboseTx>('getrawtransaction', [txid, 1]);
  const outpoints = (tx: VerboseTx): string[] => tx.vin.map((i) => `${i.txid}:${i.vout}`).sort();

  /** Fee of a mempool or confirmed tx, from the node's view of its inputs (sat). */
  async function feeOf(tx: VerboseTx): Promise<number> {
    let inSum = 0;
    for (const i of tx.vin) inSum += Math.round(((await verboseTx(i.txid)).vout[i.vout]?.value ?? Number.NaN) * 1e8);
    return inSum - tx.vout.reduce((s, o) => s + Math.round(o.value * 1e8), 0);
  }

  describe('automatic claim fee bump', () => {
    const file = new Uint8Array(randomBytes(64 * 1024));
    let id = '';
    let original = '';

    it('the seller publishes, buyers pledge, and the seller daemon claims on its own', async () => {
    const path = outboxPath(seller, 'leak.bin');
      writeFileSync(path, file);
      const pub = await seller.ok<{ id: string; beaconHeight: number }>('POST', '/paypub/publish', {
        path, price: '50000', threshold: '100000', chunks: 16, sample: 4, beaconIn: 3, deadlineIn: 14, feeRate: 2,
      });
      id = pub.id;
      await node.mine(1);
      await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
      await mineTo(node, pub.beaconHeight + 1);
      await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
      const { offer } = await seller.ok<{ offer: string }>('GET', `/paypub/sales/${id}/offer`);
      for (const b of buyers) {
      const v = await b.ok<{ ok: boolean }>('POST', '/paypub/verify', { offer, out: 'leak.bin' });
        expect(v.ok).toBe(true);
        await b.ok('POST', '/paypub/pledge', { offer, sats: '50000', feeRate: 2 });
      }
      await node.mine(1); // pledges confirm: threshold met
      const claim = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id);
      original = claim.data.txid as string;
      expect(claim.data.pledges).toBe(2);
      expect(claim.data.replaces).toBeUndefined();
      expect(await mempool()).toContain(original);
    });

    it(`keeps the claim while it is younger than ${BUMP_AFTER_BLOCKS} blocks, then replaces it with a higher fee`, async () => {
      const start = await node.rpc<number>('getblockcount');
      for (let k = 1; k < BUMP_AFTER_BLOCKS; k++) {
        await node.mineEmpty(1);
        const h = start + k;
        await waitUntil(async () => (await seller.ok<Status>('GET', `/paypub/sales/${id}`)).watchHeight === h, `seller at height ${h}`, 30_000);
        await new Promise((r) => setTimeout(r, 1000)); // room for the daemon's tick on this block
        expect(await mempool()).toContain(original);
        expect(seller.events.some((e) => e.type === 'paypub.claim.replaced')).toBe(false);
      }
      await node.mineEmpty(1);
      const replaced = await seller.waitFor('paypub.claim.replaced', (e) => e.data.id === id, 15_000);
      expect(replaced.data.txid).toBe(original);
      const bumpTxid = replaced.data.by as string;
      const bump = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.txid === bumpTxid);
      expect(bump.data.replaces).toBe(original);

      const pool = await mempool();
      expect(pool).toContain(bumpTxid);
      expect(pool).not.toContain(original);
      const first = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.txid === original);
      expect(bump.data.feeRate as number).toBeGreaterThan(first.data.feeRate as number);
      // the node's own view: same pledges spent, more fee paid
      const tx = await verboseTx(bumpTxid);
      const pledges = (await seller.ok<{ pledges: { txid: string; vout: number }[] }>('GET', `/paypub/sales/${id}`)).pledges;
      expect(outpoints(tx)).toEqual(pledges.map((p) => `${p.txid}:${p.vout}`).sort());
      const fee = await feeOf(tx);
      expect(fee).toBe(Number(bump.data.fee));
      expect(fee).toBeGreaterThan(Number(first.data.fee));
      expect(tx.confirmations ?? 0).toBe(0);
    });

    it('a normal block confirms the replacement; buyers decrypt byte-identical content', async () => {
      const bumpTxid = (await seller.waitFor('paypub.claim.replaced', (e) => e.data.id === id)).data.by as string;
      const [hash] = await node.mine(1);
      expect((await node.rpc<{ tx: string[] }>('getblock', [hash, 1])).tx).toContain(bumpTxid);
      expect((await verboseTx(bumpTxid)).confirmations).toBe(1);
      await waitUntil(async () => (await seller.ok<Status>('GET', `/paypub/sales/${id}`)).phase === 'claimed', 'seller sees the bump confirmed', 30_000);
      const claims = (await seller.ok<Status>('GET', `/paypub/sales/${id}`)).claims;
      expect(claims.find((c) => c.txid === original)).toMatchObject({ status: 'replaced', replacedBy: bumpTxid });
      expect(claims.find((c) => c.txid === bumpTxid)).toMatchObject({ status: 'confirmed' });
      for (const b of buyers) {
        await b.waitFor('paypub.unlocked', (e) => e.data.id === id, 10_000);
        await waitUntil(async () => (await b.ok<Status>('GET', `/paypub/sales/${id}`)).phase === 'claimed', `${b.name} sees the claim confirmed`, 30_000);
        expect((await b.ok<Status>('GET', `/paypub/sales/${id}`)).keys).toEqual({ known: 16, total: 16 });
      expect(Buffer.compare(readFileSync(unlockedPath(b, 'leak.bin')), Buffer.from(file))).toBe(0);
      }
    });
  });
});
