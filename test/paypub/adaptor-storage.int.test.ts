/**
 * PayPub version 2 (adaptor claims) through storage with the seller offline, end to end with real
 * parts: btcd regtest, four storage servers on real PeerNodes over loopback sockets, a loopback
 * mixnet (two providers, three mixes, in process), and real daemons for the seller and the buyer.
 *
 * The seller's daemon publishes, reveals at the beacon and then puts the sale's version 2 bundle
 * (manifest, anchor, reveal, chunks) into storage; its offer names the capability, the servers
 * holding the shares and its mixnet mailbox, and no URL (its API is on loopback). Then the
 * seller's daemon, API and storage node STOP. A damaged offer and a stranger's file posing as the
 * bundle get clear errors. The buyer, whose storage node knows none of the servers, reads and
 * verifies everything from storage (an earlier buyer, while the seller was up, read it from the
 * seller's URL after a failed storage read), pledges, and mails its pre-signature
 * announcement to the seller's mailbox (again naming the block once mined). The seller returns,
 * takes the announcement from its mailbox and claims; the buyer extracts t from the claim and
 * unlocks byte-identical content.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContentStore } from '../../src/feature/content-store.js';
import type { DaemonFeature } from '../../src/feature/contract.js';
import { MailHub } from '../../src/feature/mail.js';
import { createNodeFeature } from '../../src/node/feature.js';
import type { MixnetService } from '../../src/node/mixnet/service.js';
import { nodeContentStore } from '../../src/node/storage/content-store.js';
import { formatOfferStorage } from '../../src/paypub/adaptor-bundle.js';
import { parseAdaptorOffer } from '../../src/paypub/adaptor-sale.js';
import { createPaypubFeature } from '../../src/paypub/feature.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { toHex } from '../../src/util/bytes.js';
import { MixWorld } from '../support/mix-world.js';
import { useNodeKind } from '../support/nodes.js';
import { fundParty, outboxPath, removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { StorageNodes, startSaleCircle } from '../support/sale-storage.js';
import { waitUntil } from '../support/wait.js';

describe('PayPub version 2 through storage and the mixnet, the seller offline', () => {
  useNodeKind('btcd');
  const world = new MixWorld();
  const nodes = new StorageNodes('paypub-v2store');
  let providerA: MixnetService;
  let providerB: MixnetService;
  let chain: RegtestNode;
  let seller: Party | undefined;
  let buyer: Party | undefined;
  let early: Party | undefined;
  let sellerStore: ContentStore | null = null;
  let buyerStore: ContentStore | null = null;

  /** PayPub reading the test's storage node, and the peer node homed at `provider` for mail, as `deaddrop start` wires them. */
  function features(provider: MixnetService, store: () => ContentStore | null): DaemonFeature[] {
    const mail = new MailHub();
    const mixnet = { home: provider.identityKey, homeEndpoint: provider.url!, fetchIntervalMs: 200, meanDelayMs: 2 };
    return [createPaypubFeature({ pollIntervalMs: 500, mail, contentStore: store }), createNodeFeature({ host: '127.0.0.1', mixnet, mail })];
  }

  beforeAll(async () => {
    providerA = await world.start({ provider: true, meanDelayMs: 2 });
    providerB = await world.start({ provider: true, meanDelayMs: 2 });
    for (const layer of [1, 2, 3]) await world.start({ layer, meanDelayMs: 2 });
    chain = await startRegtestNode({ kind: 'btcd' });
    // The seller's node is a contact of the servers; the buyer's knows none (it reads through the servers the offer names).
    const { seller: sellerNode, buyer: buyerNode } = await startSaleCircle(nodes);
    sellerStore = nodeContentStore(sellerNode.storage);
    buyerStore = nodeContentStore(buyerNode.storage);
    seller = await startParty('v2store-seller', chain, undefined, { features: features(providerA, () => sellerStore) });
    buyer = await startParty('v2store-buyer', chain, undefined, { features: features(providerB, () => buyerStore) });
    early = await startParty('v2store-early', chain, undefined, { features: features(providerB, () => buyerStore) });
    for (const p of [seller, buyer, early]) await fundParty(chain, p, 1_000_000n);
  }, 180_000);

  afterAll(async () => {
    for (const p of [seller, buyer, early]) await p?.stop().catch(() => undefined);
    await nodes.close();
    await chain?.stop();
    await world.close();
    for (const p of [seller, buyer, early]) removeParty(p);
  });

  it('the buyer reads and verifies the sale from storage, pledges by mail; the seller returns, claims; the buyer unlocks', { timeout: 240_000 }, async () => {
    const file = new Uint8Array(randomBytes(200_000));
    const path = outboxPath(seller!, 'v2.bin');
    writeFileSync(path, file);
    const pub = await seller!.ok<{ id: string; beaconHeight: number; chunkCount: number }>('POST', '/paypub/publish', {
      path, price: '50000', threshold: '100000', chunks: 8, sample: 2, beaconIn: 4, deadlineIn: 24, feeRate: 2, claim: 'adaptor',
    });
    const id = pub.id;
    await chain.mine(1);
    await seller!.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
    // Nothing goes into storage before the reveal (the bundle carries it).
    expect(seller!.events.some((e) => e.type === 'paypub.stored')).toBe(false);
    await mineTo(chain, pub.beaconHeight + 1);
    await seller!.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
    const stored = await seller!.waitFor('paypub.stored', (e) => e.data.id === id, 60_000);
    expect(stored.data).toMatchObject({ id, backend: 'peers', claim: 'adaptor' });
    expect(nodes.servers().filter((s) => (s.storage.status().shares ?? 0) > 0)).toHaveLength(4);

    const offer = await waitUntil(async () => {
      const o = (await seller!.ok<{ offer: string; storage: boolean }>('GET', `/paypub/v2/sales/${id}/offer`));
      return o.offer.includes('~mix:') && o.storage ? o.offer : undefined;
    }, 'the offer names the storage bundle and the seller\'s mailbox', 30_000);
    const parsed = parseAdaptorOffer(offer)!;
    // The seller's API is on loopback: the offer names no URL (to a buyer elsewhere it would be its own machine).
    expect(parsed.url).toBeNull();
    expect(toHex(parsed.mix!.provider)).toBe(toHex(providerA.identityKey));
    expect(parsed.storage!.cap).toMatch(/^dd-chk:r:/);
    expect(parsed.storage!.servers.map((h) => h.url).sort()).toEqual(nodes.servers().map((s) => s.storage.status().url).sort());
    // The capability is in the offer only, never in an event.
    expect(JSON.stringify(seller!.events)).not.toContain(parsed.storage!.cap);
    expect(nodes.byName('buyer').storage.directory.servers()).toEqual([]);

    // A stranger's file in storage posing as this sale's bundle (a version 2 header, then garbage).
    const junk = await sellerStore!.put(new Uint8Array([2, ...randomBytes(3000)]), { name: 'junk' });
    const junkOffer = `paypub2:${id}${formatOfferStorage({ cap: junk.readCap, servers: junk.servers })}`;

    // An early buyer, while the seller is up, is handed an offer whose storage part names that
    // file and whose URL is the seller's: the storage read fails, the seller's route serves the
    // sale, the same checks pass, and the announcement goes to the route.
    const sellerApi = seller!.daemon.apiUrl;
    const first = await early!.ok<{ txid: string; announced: boolean; chunksFrom: string }>('POST', '/paypub/v2/pledge', {
      offer: `paypub2:${id}@${sellerApi}${formatOfferStorage({ cap: junk.readCap, servers: junk.servers })}`, sats: '50000', feeRate: 2, out: 'v2.bin',
    });
    expect(first).toMatchObject({ chunksFrom: 'seller', announced: true });
    await seller!.waitFor('paypub.pledge.announced', (e) => e.data.txid === first.txid);

    // The seller goes offline: daemon, API and its storage node.
    await seller!.stop();
    sellerStore = null;
    await nodes.stop(nodes.byName('seller'));
    await expect(fetch(`${sellerApi}/paypub/v2/content/${id}`)).rejects.toThrow();
    const box = (): number => providerA.mixNode!.mailboxSize(parsed.mix!.mailbox);

    // A damaged offer gets a clear error and the buyer's daemon goes on.
    const bad = await buyer!.api<{ error: string; message: string }>('POST', '/paypub/v2/pledge', { offer: `paypub2:${id}~store:AAA`, sats: '50000' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/~store:/);

    // A malformed bundle from storage: a clear PROTOCOL error naming it, nothing kept, and the daemon goes on.
    const junkRead = await buyer!.api<{ error: string; message: string }>('POST', '/paypub/v2/pledge', { offer: junkOffer, sats: '50000' });
    expect(junkRead.status).toBe(502);
    expect(junkRead.body).toMatchObject({ error: 'PROTOCOL', message: expect.stringMatching(/^storage bundle: /) });
    await expect(buyer!.api('GET', `/paypub/v2/sales/${id}`)).resolves.toMatchObject({ status: 404 });

    await waitUntil(async () => ((await buyer!.ok<{ connected: boolean }>('GET', '/node/mixnet')).connected ? true : undefined), 'the buyer\'s node linked', 30_000);
    const pledge = await buyer!.ok<{ txid: string; announced: boolean; chunksFrom: string }>('POST', '/paypub/v2/pledge', { offer, sats: '50000', feeRate: 2, out: 'v2.bin' });
    expect(pledge).toMatchObject({ chunksFrom: 'storage', announced: false });
    await waitUntil(() => (box() >= 1 ? true : undefined), 'the announcement waits in the seller\'s mailbox', 30_000);
    await chain.mine(1);
    await waitUntil(() => (box() >= 2 ? true : undefined), 'the announcement naming the block waits in the mailbox', 30_000);

    // The seller returns (its storage node stays down: the claim needs none).
    seller = await seller!.restart();
    await seller.waitFor('paypub.pledge.announced', (e) => e.data.txid === pledge.txid, 60_000);
    const claim = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id, 60_000);
    expect(claim.data.pledges).toBe(2);

    for (const b of [buyer!, early!]) {
      const unlocked = await b.waitFor('paypub.unlocked', (e) => e.data.id === id, 60_000);
      expect(Buffer.compare(readFileSync(unlocked.data.path as string), Buffer.from(file))).toBe(0);
    }
  });
});
