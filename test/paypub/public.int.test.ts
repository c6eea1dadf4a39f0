/**
 * PayPub public (crowd) mode end to end on each regtest node, with real daemons talking over HTTP:
 * a seller publishes a 1 MB file, three buyers verify and pledge, the seller's daemon claims on
 * its own, and every buyer's daemon (and an observer's who never paid) decrypts from the
 * mempool claim within a second. Then: further pledges are refused, a reorg of the claim keeps
 * the keys, a restart rebuilds the state; and a sale the seller never claims is refunded.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { fundParty, publishRevealed, removeParty, startParty, type Party, outboxPath, unlockedPath } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('PayPub on %s', (kind) => {
  useNodeKind(kind);

  let node: RegtestNode;
  let seller: Party;
  let buyers: Party[] = [];
  let observer: Party;



  type Status = { phase: string; watchHeight: number | null; keys: { known: number; total: number }; claims: { txid: string; status: string }[]; refunds: { txid: string; status: string; own: boolean }[]; unlocked: { path: string } | null };

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
    seller = await startParty('seller', node);
    buyers = [await startParty('buyer1', node), await startParty('buyer2', node), await startParty('buyer3', node)];
    observer = await startParty('observer', node);
    for (const p of [seller, ...buyers]) await fundParty(node, p, 2_000_000n);
  });

  afterAll(async () => {
    for (const p of [seller, ...buyers, observer]) await p?.stop().catch(() => undefined);
    await node?.stop();
    for (const p of [seller, ...buyers, observer]) removeParty(p);
  });

  describe('public mode, end to end', () => {
    const file = new Uint8Array(randomBytes(1024 * 1024));
    let id = '';
    let offer = '';

    it('the seller publishes a 1 MB file and anchors its manifest; the sample is revealed at the beacon', async () => {
    const path = outboxPath(seller, 'leak.bin');
      writeFileSync(path, file);
      const pub = await seller.ok<{ id: string; anchorTxid: string; beaconHeight: number; deadlineHeight: number; chunkCount: number; sampleSize: number }>('POST', '/paypub/publish', {
        path, price: '100000', threshold: '300000', chunks: 32, sample: 8, beaconIn: 4, deadlineIn: 24, feeRate: 2,
      });
      id = pub.id;
      expect(pub.chunkCount).toBe(32);
      expect(pub.sampleSize).toBe(8);
      const mempool = await node.rpc<string[]>('getrawmempool');
      expect(mempool).toContain(pub.anchorTxid);
      await node.mine(1);
      await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
      offer = (await seller.ok<{ offer: string; url: string }>('GET', `/paypub/sales/${id}/offer`)).offer;
      expect(offer).toMatch(/^paypub1/);
      // before the beacon is final a buyer is told why it cannot pay yet
      const early = await buyers[0]!.ok<{ ok: boolean; problems: string[] }>('POST', '/paypub/verify', { offer });
      expect(early.ok).toBe(false);
      expect(early.problems.join(' ')).toMatch(/beacon block is not final/);
      await mineTo(node, pub.beaconHeight + 1);
      const revealed = await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
      expect(revealed.data.indices).toHaveLength(8);
    });

    it('three buyers and an observer verify; the buyers pledge and the threshold is met', async () => {
      for (const b of [...buyers, observer]) {
        const v = await b.ok<{ ok: boolean; anchor: { ok: boolean }; sample: { verified: boolean }; proves: string; odds: { bad: number; escape: number }[] }>('POST', '/paypub/verify', {
        offer, out: 'leak.bin',
        });
        expect(v.ok).toBe(true);
        expect(v.proves).toMatch(/does not prove/);
        expect(v.odds[0]).toEqual({ bad: 1, escape: 0.75 });
      }
      for (const b of buyers) {
        const p = await b.ok<{ txid: string; announced: boolean }>('POST', '/paypub/pledge', { offer, sats: '100000', feeRate: 2 });
        expect(p.announced).toBe(true);
      }
      const book = (await (await fetch(`${seller.daemon.apiUrl}/paypub/content/${id}/pledges`)).json()) as { pledges: unknown[]; thresholdMet: boolean };
      expect(book.pledges).toHaveLength(3);
      expect(book.thresholdMet).toBe(false); // not confirmed yet
    });

    it('the seller\'s daemon claims; every watcher decrypts from the mempool within 1 s of the broadcast', async () => {
      await node.mine(1);
      const claim = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id);
      expect(claim.data.pledges).toBe(3);
      const broadcastAt = claim.data.broadcastAt as number;
      const inMempool = await node.rpc<string[]>('getrawmempool');
      expect(inMempool).toContain(claim.data.txid);
      for (const p of [...buyers, observer]) {
        const unlocked = await p.waitFor('paypub.unlocked', (e) => e.data.id === id, 10_000);
        const ms = (unlocked.data.at as number) - broadcastAt;
        expect(ms, `${p.name}: ${ms} ms from claim broadcast to decrypted file`).toBeLessThan(1000);
      expect(Buffer.compare(readFileSync(unlockedPath(p, 'leak.bin')), Buffer.from(file))).toBe(0);
      }
      // the claim was still unconfirmed: the keys came from the mempool
      expect(await node.rpc<string[]>('getrawmempool')).toContain(claim.data.txid);
      const st = await observer.ok<Status>('GET', `/paypub/sales/${id}`);
      expect(st.phase).toBe('claim-seen');
      expect(st.keys).toEqual({ known: 32, total: 32 });
    });

    it('the client then refuses further pledges', async () => {
      const r = await observer.api<{ error: string; message: string }>('POST', '/paypub/pledge', { offer, sats: '100000' });
      expect(r.status).toBe(409);
      expect(r.body.message).toMatch(/keys are already public/);
    });

    it('a reorg of the claim keeps the keys and moves back to claim-seen; re-mining restores it', async () => {
      const [hash] = await node.mine(1);
      for (const p of [seller, ...buyers]) {
        await waitUntil(async () => (await p.ok<Status>('GET', `/paypub/sales/${id}`)).phase === 'claimed', `${p.name} sees the claim confirmed`, 30_000);
      }
      await node.invalidateBlock(hash as string);
      const b = buyers[0]!;
      await waitUntil(async () => (await b.ok<Status>('GET', `/paypub/sales/${id}`)).phase === 'claim-seen', 'buyer1 sees the claim reorged out', 30_000);
      const during = await b.ok<Status>('GET', `/paypub/sales/${id}`);
      expect(during.keys.known).toBe(32);
      await b.waitFor('paypub.claim.reorged', (e) => e.data.id === id);
      await node.mine(1);
      await waitUntil(async () => (await b.ok<Status>('GET', `/paypub/sales/${id}`)).phase === 'claimed', 'buyer1 sees the claim mined again', 30_000);
    });

    it('a watcher restart rebuilds its state from the database and catches up', async () => {
      const b = buyers[1]!;
      await waitUntil(async () => (await b.ok<Status>('GET', `/paypub/sales/${id}`)).phase === 'claimed', 'buyer2 sees the claim mined again', 30_000);
      const before = await b.ok<Status>('GET', `/paypub/sales/${id}`);
      await b.stop();
      await node.mine(2); // blocks the watcher misses while it is down
      buyers[1] = await b.restart();
      const height = await node.rpc<number>('getblockcount');
      await waitUntil(async () => (await buyers[1]!.ok<Status>('GET', `/paypub/sales/${id}`)).watchHeight === height, 'buyer2 caught up after the restart', 30_000);
      const after = await buyers[1].ok<Status>('GET', `/paypub/sales/${id}`);
      expect(after.phase).toBe('claimed');
      expect(after.keys).toEqual({ known: 32, total: 32 });
      expect(after.unlocked?.path).toBe(before.unlocked?.path);
      expect(after.claims.filter((c) => c.status === 'confirmed')).toHaveLength(1);
    });
  });

  describe('the seller never claims', () => {
    it('each buyer refunds after the deadline, gets the pledge back minus the fee, and learns no keys', async () => {
      const pub = await publishRevealed(seller, node, 'unsold.bin', 4096);
      const { offer } = pub;
      const pledged: { party: Party; txid: string; vout: number }[] = [];
      for (const b of buyers.slice(0, 2)) {
        const p = await b.ok<{ txid: string; vout: number }>('POST', '/paypub/pledge', { offer, sats: '50000', feeRate: 2 });
        pledged.push({ party: b, ...p });
      }
      await node.mine(1); // threshold met, but this seller does not claim
      // one block before the deadline a refund is not valid yet; the daemons wait
      await mineTo(node, pub.deadlineHeight - 1);
      const early = await buyers[0]!.api<{ message: string }>('POST', `/paypub/sales/${pub.id}/refund`, {});
      expect(early.status).toBe(409);
      expect(early.body.message).toMatch(/deadline/);
      await mineTo(node, pub.deadlineHeight);
      for (const { party, txid, vout } of pledged) {
        const ev = await party.waitFor('paypub.refund.broadcast', (e) => e.data.id === pub.id);
        expect(ev.data.pledge).toBe(`${txid}:${vout}`);
        const refundTx = await node.rpc<{ vout: { value: number }[] }>('getrawtransaction', [ev.data.txid, 1]);
        expect(Math.round((refundTx.vout[0]?.value ?? 0) * 1e8)).toBe(50_000 - Number(ev.data.fee));
      }
      await node.mine(1);
      for (const { party } of pledged) {
        await waitUntil(async () => (await party.ok<Status>('GET', `/paypub/sales/${pub.id}`)).phase === 'refunded', `${party.name} refunded`, 30_000);
        const st = await party.ok<Status>('GET', `/paypub/sales/${pub.id}`);
        expect(st.keys.known).toBe(4); // only the sampled ones
        expect(st.claims).toHaveLength(0);
        expect(st.unlocked).toBeNull();
      }
    });
  });
});
