/**
 * PayPub over storage, end to end with real parts: btcd regtest, four storage servers on real
 * PeerNodes over loopback sockets, and real daemons for the seller and the buyer, each with its
 * own PeerNode as storage client.
 *
 * The seller publishes into storage; its daemon reveals the sample at the beacon and hands out
 * an offer carrying the read capability, the servers holding the shares, the anchor block and the
 * reveal; then the seller's daemon, API and node are STOPPED. The buyer, whose node knows none of
 * the servers, verifies and fetches every chunk from them and pledges; nobody can tell the seller, so the pledge carries its hint on chain. The
 * seller restarts, finds the pledge on chain and claims; the buyer unlocks byte-identical content.
 * A second restart claims nothing twice.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installErrorHandler } from '../../src/api/errors.js';
import { storageRoutes } from '../../src/node/storage/routes.js';
import type { ContentStore } from '../../src/feature/content-store.js';
import { nodeContentStore } from '../../src/node/storage/content-store.js';
import { createPaypubFeature } from '../../src/paypub/feature.js';
import { decodeOfferLink } from '../../src/paypub/link.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { fundParty, nodeStorageFeatures, outboxPath, removeParty, startParty, unlockedPath, type Party } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { StorageNodes, startSaleCircle } from '../support/sale-storage.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('PayPub over storage on %s', (kind) => {
  useNodeKind(kind);
  const nodes = new StorageNodes('paypub-storage');
  let chain: RegtestNode;
  let seller: Party | undefined;
  let buyer: Party | undefined;
  // What the daemons' PayPub features see (the CLI wires the daemon node's storage the same way).
  let sellerStore: ContentStore | null = null;
  let buyerStore: ContentStore | null = null;

  beforeAll(async () => {
    chain = await startRegtestNode({ kind });
    // The seller's node is a contact of the servers; the buyer's knows none of them (a stranger
    // elsewhere): it reads through the servers the offer names.
    const { seller: sellerNode, buyer: buyerNode } = await startSaleCircle(nodes);
    sellerStore = nodeContentStore(sellerNode.storage);
    buyerStore = nodeContentStore(buyerNode.storage);
    seller = await startParty('seller', chain, undefined, { features: [createPaypubFeature({ pollIntervalMs: 500, contentStore: () => sellerStore })] });
    buyer = await startParty('buyer', chain, undefined, { features: [createPaypubFeature({ pollIntervalMs: 500, contentStore: () => buyerStore })] });
    for (const p of [seller, buyer]) await fundParty(chain, p, 2_000_000n);
  }, 180_000);

  afterAll(async () => {
    for (const p of [seller, buyer]) await p?.stop().catch(() => undefined);
    await nodes.close();
    await chain?.stop();
    for (const p of [seller, buyer]) removeParty(p);
  });

  it('the /storage routes answer the holders of a put and read with server hints on a node that knows no server', { timeout: 60_000 }, async () => {
    const apps = await Promise.all(['seller', 'buyer'].map(async (name) => {
      const app = Fastify();
      installErrorHandler(app);
      await app.register(storageRoutes, { prefix: '/storage', service: () => nodes.byName(name).storage });
      return app;
    }));
    try {
      const [sellerApi, buyerApi] = apps as [FastifyInstance, FastifyInstance];
      const data = randomBytes(50_000);
      const put = await sellerApi.inject({ method: 'POST', url: '/storage/put?keep=0', headers: { 'content-type': 'application/octet-stream' }, payload: data });
      expect(put.statusCode, put.body).toBe(200);
      const { readCap, holders } = put.json<{ readCap: string; holders: { id: string; url: string }[] }>();
      expect(holders).toHaveLength(4);
      const blind = await buyerApi.inject({ method: 'POST', url: '/storage/get', payload: { cap: readCap } });
      expect(blind.statusCode).toBe(404);
      const got = await buyerApi.inject({ method: 'POST', url: '/storage/get', payload: { cap: readCap, servers: holders } });
      expect(got.statusCode, got.body).toBe(200);
      expect(Buffer.compare(got.rawPayload, data)).toBe(0);
      const bad = await buyerApi.inject({ method: 'POST', url: '/storage/get', payload: { cap: readCap, servers: [{ id: 'zz', url: 'http://x' }] } });
      expect(bad.statusCode).toBe(400);
    } finally {
      await Promise.all(apps.map((a) => a.close()));
    }
  });

  it('in a daemon wired as `deaddrop start` wires it, a sale goes into the node feature\'s storage and is kept', { timeout: 120_000 }, async () => {
    // The node feature hands its storage over (onContentStore); here the node serves shares itself (1-of-1).
    const wired = nodeStorageFeatures({ server: { quotaBytes: 8 << 20, host: '127.0.0.1' }, shares: { k: 1, happy: 1, n: 1 } });
    const solo = await startParty('solo', chain, undefined, { features: wired.features });
    try {
      expect(wired.contentStore()).not.toBeNull();
      await fundParty(chain, solo, 500_000n);
      await waitUntil(async () => (await solo.ok<{ knownServers: unknown[] }>('GET', '/storage/server')).knownServers.length === 1, 'the node knows its own server', 30_000);
      const path = outboxPath(solo, 'notes.bin');
      writeFileSync(path, randomBytes(5_000));
      const pub = await solo.ok<{ id: string; storage: { stored: boolean; backend?: string } }>('POST', '/paypub/publish', { path, price: '50000', chunks: 8, sample: 2, feeRate: 2 });
      expect(pub.storage).toEqual({ stored: true, backend: 'peers' });
      const files = await solo.ok<{ files: { name: string | null }[] }>('GET', '/storage/files');
      expect(files.files.map((f) => f.name)).toEqual([`paypub-${pub.id.slice(0, 16)}.bundle`]);
      expect(decodeOfferLink((await solo.ok<{ offer: string }>('GET', `/paypub/sales/${pub.id}/offer`)).offer).storageCap).toMatch(/^dd-chk:r:/);
    } finally {
      await solo.stop();
      removeParty(solo);
    }
    expect(wired.contentStore()).toBeNull();
  });

  it('sells with the seller offline between publishing and the claim', { timeout: 240_000 }, async () => {
    const file = new Uint8Array(randomBytes(300_000));
    const path = outboxPath(seller!, 'report.bin');
    writeFileSync(path, file);
    const pub = await seller!.ok<{ id: string; beaconHeight: number; deadlineHeight: number; storage: { stored: boolean; backend?: string } }>('POST', '/paypub/publish', {
      path, price: '100000', threshold: '100000', chunks: 16, sample: 4, beaconIn: 4, deadlineIn: 24, feeRate: 2,
    });
    const id = pub.id;
    expect(pub.storage).toEqual({ stored: true, backend: 'peers' });
    await seller!.waitFor('paypub.stored', (e) => e.data.id === id);
    // Every server holds a share of the bundle.
    const held = nodes.servers().filter((s) => (s.storage.status().shares ?? 0) > 0);
    expect(held).toHaveLength(4);

    await chain.mine(1);
    await seller!.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
    await mineTo(chain, pub.beaconHeight + 1);
    await seller!.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
    const { offer, storage, reveal } = await seller!.ok<{ offer: string; storage: boolean; reveal: boolean }>('GET', `/paypub/sales/${id}/offer`);
    expect({ storage, reveal }).toEqual({ storage: true, reveal: true });
    const link = decodeOfferLink(offer, 'regtest');
    expect(link.storageCap).toMatch(/^dd-chk:r:/);
    expect(link.anchorBlock).toMatch(/^[0-9a-f]{64}$/);
    expect(link.storageServers?.map((h) => h.url).sort()).toEqual(nodes.servers().map((s) => s.storage.status().url).sort());
    expect(nodes.byName('buyer').storage.directory.servers()).toEqual([]);

    // The seller goes offline: daemon, API and its storage node.
    const sellerApi = seller!.daemon.apiUrl;
    await seller!.stop();
    sellerStore = null;
    const sellerNode = nodes.byName('seller');
    await nodes.stop(sellerNode);
    await expect(fetch(`${sellerApi}/paypub/content/${id}/manifest`)).rejects.toThrow();

    // The buyer verifies from the offer and the storage servers alone, and pledges.
    const v = await buyer!.ok<{ ok: boolean; problems: string[]; chunksFrom: string; sample: { verified: boolean } }>('POST', '/paypub/verify', { offer, out: 'bought.bin' });
    expect(v.problems).toEqual([]);
    expect(v).toMatchObject({ ok: true, chunksFrom: 'storage', sample: { verified: true } });
    const p = await buyer!.ok<{ txid: string; announced: boolean; announceError?: string }>('POST', '/paypub/pledge', { offer, sats: '100000', feeRate: 2 });
    expect(p.announced).toBe(false);
    await chain.mine(1);
    await buyer!.waitFor('paypub.pledge.confirmed', (e) => e.data.txid === p.txid);
    await chain.mine(1); // the seller also misses a block with nothing in it

    // The seller returns: its daemon finds the pledge on chain by its hint and claims on its own.
    sellerStore = null; // its storage node stays down: the claim needs none
    seller = await seller!.restart();
    const found = await seller.waitFor('paypub.pledge.found', (e) => e.data.txid === p.txid, 60_000);
    expect(found.data).toMatchObject({ id, vout: expect.any(Number), value: '100000' });
    const claim = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id, 60_000);
    expect(claim.data.pledges).toBe(1);

    const unlocked = await buyer!.waitFor('paypub.unlocked', (e) => e.data.id === id, 60_000);
    expect(unlocked.data.bytes).toBe(file.length);
    expect(Buffer.compare(readFileSync(unlockedPath(buyer!, 'bought.bin')), Buffer.from(file))).toBe(0);

    // Crash-safe and idempotent: another restart after the claim confirmed finds nothing new and claims nothing twice.
    await chain.mine(1);
    await waitUntil(async () => (await seller!.ok<{ claims: { status: string }[] }>('GET', `/paypub/sales/${id}`)).claims.some((c) => c.status === 'confirmed'), 'the seller sees its claim confirmed', 30_000);
    seller = await seller.restart();
    await chain.mine(1);
    await waitUntil(async () => (await seller!.ok<{ watchHeight: number | null }>('GET', `/paypub/sales/${id}`)).watchHeight === (await chain.rpc<number>('getblockcount')), 'the seller caught up', 30_000);
    const st = await seller.ok<{ claims: { txid: string }[]; pledges: unknown[] }>('GET', `/paypub/sales/${id}`);
    expect(st.claims.map((c) => c.txid)).toEqual([claim.data.txid]);
    expect(st.pledges).toHaveLength(1);
    expect(seller.events.filter((e) => e.type === 'paypub.claim.broadcast')).toHaveLength(0);
  });
});
