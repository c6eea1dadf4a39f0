/**
 * PayPub version 2 (adaptor claims) through the daemons on regtest btcd: the seller publishes with
 * `claim: 'adaptor'`, its daemon reveals the DLEQ-proven sample at the beacon; two buyers verify
 * the reveal, pledge and announce their pre-signatures to the seller's public route (a stranger's
 * malformed announcements are refused with a 4xx and change nothing); the seller's daemon counts
 * the pledges with verified pre-signatures and claims them in one transaction; each buyer's
 * daemon extracts t from that claim and writes the file.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTransaction } from '../../src/chain/block.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { fundParty, outboxPath, removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';
import { fromHex } from '../../src/util/bytes.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

describe('PayPub version 2 (adaptor claims) through the daemons on btcd', () => {
  useNodeKind('btcd');
  let node: RegtestNode;
  let seller: Party;
  let buyers: Party[] = [];

  beforeAll(async () => {
    node = await startRegtestNode({ kind: 'btcd' });
    // A fixed public listener: the offer's URL must survive the seller's restart below.
    seller = await startParty('seller2', node, undefined, { publicListen: `127.0.0.1:${await freePort()}` });
    buyers = [await startParty('buyer2a', node), await startParty('buyer2b', node)];
    for (const p of [seller, ...buyers]) await fundParty(node, p, 1_000_000n);
  });

  afterAll(async () => {
    for (const p of [seller, ...buyers]) await p?.stop().catch(() => undefined);
    await node?.stop();
    for (const p of [seller, ...buyers]) removeParty(p);
  });

  it('publish, reveal, pledge with pre-signatures, one-tx claim, buyers unlock from t', async () => {
    const file = new Uint8Array(randomBytes(64 * 1024));
    const path = outboxPath(seller, 'v2.bin');
    writeFileSync(path, file);
    const pub = await seller.ok<{ id: string; claim: string; beaconHeight: number; deadlineHeight: number; chunkCount: number }>('POST', '/paypub/publish', {
      path, price: '50000', threshold: '100000', chunks: 16, sample: 4, beaconIn: 3, deadlineIn: 16, feeRate: 2, claim: 'adaptor',
    });
    expect(pub.claim).toBe('adaptor');
    expect(pub.chunkCount).toBe(16);
    const id = pub.id;
    // Version 1 routes do not take a version 2 sale for one of theirs.
    expect((await seller.api('GET', `/paypub/sales/${id}`)).status).toBe(404);
    await node.mine(1);
    await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
    await mineTo(node, pub.beaconHeight + 1);
    await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
    const { offer } = await seller.ok<{ offer: string }>('GET', `/paypub/v2/sales/${id}/offer`);
    expect(offer.startsWith(`paypub2:${id}@http`)).toBe(true);

    // A stranger's bad announcements: 4xx, nothing stored, the daemon keeps serving.
    const url = offer.slice(offer.indexOf('@') + 1);
    const post = async (body: unknown): Promise<number> => (await fetch(`${url}/paypub/v2/presig`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status;
    expect(await post({ announcement: 'zz' })).toBe(400);
    expect(await post({ announcement: '09'.repeat(166) })).toBe(400);
    const forged = '02' + id + 'ab'.repeat(32) + '00000000' + '11'.repeat(32) + '22'.repeat(65);
    expect([400, 404]).toContain(await post({ announcement: forged }));

    const pledges = [];
    for (const [i, b] of buyers.entries()) {
      const r = await b.ok<{ txid: string; announced: boolean; announceError?: string }>('POST', '/paypub/v2/pledge', { offer, sats: '50000', feeRate: 2, out: `v2-${i}.bin` });
      expect(r.announceError).toBeUndefined();
      expect(r.announced).toBe(true);
      pledges.push(r.txid);
    }
    for (const txid of pledges) await seller.waitFor('paypub.pledge.announced', (e) => e.data.txid === txid);
    // The garbage did not count: exactly the two pledges.
    expect((await seller.ok<{ pledges: unknown[] }>('GET', `/paypub/v2/sales/${id}`)).pledges).toHaveLength(2);

    await node.mine(1);
    const claimEv = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id, 60_000);
    expect(claimEv.data.pledges).toBe(2);
    const claimTxid = claimEv.data.txid as string;
    const claimTx = parseTransaction(fromHex(await node.rpc<string>('getrawtransaction', [claimTxid])));
    expect(claimTx.inputs.map((i) => i.prevTxidHex).sort()).toEqual([...pledges].sort());
    expect(claimTx.outputs).toHaveLength(1);

    // A fee bump (RBF): same pledges, same completed buyer signatures, a higher rate.
    const bump = await seller.ok<{ action: string; txid: string; replaces: string; feeRate: number }>('POST', `/paypub/v2/sales/${id}/claim`, { feeRate: 10 });
    expect(bump).toMatchObject({ action: 'bumped', replaces: claimTxid });
    const pool = await node.rpc<string[]>('getrawmempool');
    expect(pool).toContain(bump.txid);
    expect(pool).not.toContain(claimTxid);
    await node.mine(1);
    await seller.waitFor('paypub.claim.confirmed', (e) => e.data.txid === bump.txid);
    for (const [i, b] of buyers.entries()) {
      const ev = await b.waitFor('paypub.unlocked', (e) => e.data.id === id, 60_000);
      expect(ev.data.bytes).toBe(file.length);
      expect(new Uint8Array(readFileSync(ev.data.path as string))).toEqual(file);
      expect(String(ev.data.path).endsWith(`v2-${i}.bin`)).toBe(true);
    }
    expect((await seller.ok<{ claimTxid: string | null }>('GET', `/paypub/v2/sales/${id}`)).claimTxid).toBe(bump.txid);
    expect((await seller.ok<{ action: string }>('POST', `/paypub/v2/sales/${id}/claim`, {})).action).toBe('none');
    type Listed = { sales: { id: string; claim?: string; phase: string }[] };
    expect((await seller.ok<Listed>('GET', '/paypub/sales')).sales.find((x) => x.id === id)).toMatchObject({ claim: 'adaptor', phase: 'claim-seen' });
    expect((await (buyers[0] as Party).ok<Listed>('GET', '/paypub/sales')).sales.find((x) => x.id === id)).toMatchObject({ claim: 'adaptor', phase: 'unlocked' });
  });

  it('a pledge made while the seller is offline is announced again by the buyer\'s daemon; an unmet threshold ends in refunds', async () => {
    // Through the upload route this time (what a client that is not the user's shell sends).
    const token = readFileSync(join(seller.datadir, 'api.token'), 'utf8').trim();
    const res = await fetch(`${seller.daemon.apiUrl}/paypub/publish/upload?name=v2-refund.bin&price=50000&threshold=150000&chunks=8&sample=2&beaconIn=3&deadlineIn=12&feeRate=2&claim=adaptor`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: randomBytes(4096),
    });
    expect(res.status).toBe(200);
    const pub = (await res.json()) as { id: string; claim: string; beaconHeight: number; deadlineHeight: number };
    expect(pub.claim).toBe('adaptor');
    const id = pub.id;
    await node.mine(1);
    await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
    await mineTo(node, pub.beaconHeight + 1);
    await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
    const { offer } = await seller.ok<{ offer: string }>('GET', `/paypub/v2/sales/${id}/offer`);
    const buyer = buyers[0] as Party;
    const first = await buyer.ok<{ txid: string; announced: boolean }>('POST', '/paypub/v2/pledge', { offer, sats: '50000', feeRate: 2 });
    expect(first.announced).toBe(true);

    await seller.stop();
    const second = await buyer.ok<{ txid: string; announced: boolean; announceError?: string }>('POST', '/paypub/v2/pledge', { offer, sats: '50000', feeRate: 2 });
    expect(second.announced).toBe(false);
    expect(second.announceError).toBeDefined();
    // Mined while the seller is away: its scan will not see the block with an announcement, so the
    // buyer names the block when it announces again.
    await node.mine(1);
    const minedAt = await node.rpc<number>('getblockcount');
    seller = await seller.restart();
    const ev = await seller.waitFor('paypub.pledge.announced', (e) => e.data.txid === second.txid, 30_000);
    expect(ev.data.height).toBe(minedAt);
    const st = await seller.ok<{ pledges: { txid: string; height: number | null }[]; claimTxid: string | null }>('GET', `/paypub/v2/sales/${id}`);
    expect(st.pledges.map((p) => p.txid).sort()).toEqual([first.txid, second.txid].sort());
    expect(st.pledges.every((p) => p.height === minedAt)).toBe(true);

    // 100 000 of 150 000: never claimed; both pledges come back after the deadline.
    await mineTo(node, pub.deadlineHeight);
    const refunds = [];
    for (const txid of [first.txid, second.txid]) {
      refunds.push((await buyer.waitFor('paypub.refund.broadcast', (e) => e.data.id === id && String(e.data.pledge).startsWith(txid), 30_000)).data.txid as string);
    }
    await node.mine(1);
    for (const txid of refunds) {
      await waitUntil(async () => ((await node.rpc<{ confirmations?: number }>('getrawtransaction', [txid, 1])).confirmations ?? 0) >= 1, 'refund confirmed', 15_000);
    }
    expect((await seller.ok<{ claimTxid: string | null }>('GET', `/paypub/v2/sales/${id}`)).claimTxid).toBeNull();
  });
});
