/**
 * PayPub over a Tahoe-LAFS grid, end to end with real parts: btcd regtest, a private Tahoe grid on
 * loopback (test/support/tahoe-grid.ts: introducer, four storage nodes, and one client node per
 * user), and real daemons wired as `deaddrop start --storage tahoe:<url>` wires them, each with
 * its own Tahoe client node on the same grid (a buyer must reach the grid: through a Tahoe node of
 * its own, as the seller does).
 *
 * The seller publishes: the bundle goes into the grid through the seller's Tahoe client, the
 * daemon reveals the sample after the beacon and hands out an offer carrying the `dd-tahoe:` read
 * capability. Then the seller's daemon AND its Tahoe client node are stopped. The buyer verifies
 * and fetches everything from the grid through its own client and pledges (the hint on chain is
 * how the seller learns of it). The seller's daemon returns (its Tahoe client stays down: a claim
 * needs none), finds the pledge and claims; the buyer unlocks byte-identical content. Then two of
 * the four storage nodes are stopped, and a late reader with a third client node still reads the
 * bundle from the grid, verifies it, and decrypts the same bytes with the keys the claim made public.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOfferLink } from '../../src/paypub/link.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { fundParty, nodeStorageFeatures, outboxPath, publishRevealed, removeParty, startParty, unlockedPath, type Party } from '../support/paypub-parties.js';
import { startTahoeGrid, tahoeVersion, type TahoeGrid } from '../support/tahoe-grid.js';

const version = await tahoeVersion();
const skipReason = version === 'tahoe-lafs/1.20.0' ? undefined : `tahoe-lafs 1.20.0 is not installed in .tools/electrumx (run bash regtest/install-tahoe.sh); found ${version ?? 'nothing'}`;
if (skipReason) console.warn(`skipping PayPub over Tahoe-LAFS: ${skipReason}`);

/** Awaits every start, then throws the first failure: what did start is assigned, so afterAll stops it. */
async function allStarted(starts: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(starts)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Tahoe client nodes of the grid, one per user. */
const SELLER = 0;
const BUYER = 1;
const LATE = 2;

describe.skipIf(skipReason !== undefined).each(chainNodes())('PayPub over a Tahoe-LAFS grid on %s', (kind) => {
  useNodeKind(kind);
  let grid: TahoeGrid | undefined;
  let chain: RegtestNode;
  let seller: Party | undefined;
  let buyer: Party | undefined;
  let late: Party | undefined;
  let stranger: Party | undefined;

  /** A daemon whose node keeps its files on the grid through Tahoe client `client`. */
  const tahoeParty = (name: string, client: number): Promise<Party> =>
    startParty(name, chain, undefined, { features: nodeStorageFeatures({ backend: { kind: 'tahoe', url: grid!.clientUrls[client] as string } }).features });

  beforeAll(async () => {
    await allStarted([startTahoeGrid({ clients: 3 }).then((g) => { grid = g; }), startRegtestNode({ kind }).then((c) => { chain = c; })]);
    await allStarted([
      tahoeParty('seller', SELLER).then((p) => { seller = p; }),
      tahoeParty('buyer', BUYER).then((p) => { buyer = p; }),
      tahoeParty('late', LATE).then((p) => { late = p; }),
      // A buyer whose daemon runs with the default peers storage and no Tahoe client.
      startParty('stranger', chain, undefined, { features: nodeStorageFeatures({}).features }).then((p) => { stranger = p; }),
    ]);
    // One after the other: the regtest funding wallet spends its own change.
    for (const p of [seller!, buyer!]) await fundParty(chain, p, 1_000_000n);
  }, 120_000);

  afterAll(async () => {
    for (const p of [seller, buyer, late, stranger]) await p?.stop().catch(() => undefined);
    await grid?.close();
    await chain?.stop();
    for (const p of [seller, buyer, late, stranger]) removeParty(p);
  });

  it('sells from the grid with the seller offline, and the bundle stays readable with two of four storage nodes stopped', { timeout: 90_000 }, async () => {
    const sale = await publishRevealed(seller!, chain, 'report.bin', 200_000);
    const file = readFileSync(outboxPath(seller!, 'report.bin'));
    const stored = await seller!.waitFor('paypub.stored', (e) => e.data.id === sale.id);
    expect(stored.data.backend).toBe('tahoe');
    const { storage, reveal } = await seller!.ok<{ storage: boolean; reveal: boolean }>('GET', `/paypub/sales/${sale.id}/offer`);
    expect({ storage, reveal }).toEqual({ storage: true, reveal: true });
    const link = decodeOfferLink(sale.offer, 'regtest');
    expect(link.storageCap).toMatch(/^dd-tahoe:URI:CHK:/);
    // Tahoe places shares itself: the offer names no servers, the buyer's own client finds them.
    expect(link.storageServers).toEqual([]);
    expect(link.reveal).not.toBeNull();
    // One share on each of the four storage nodes, as the buyer's own client sees it.
    const health = await buyer!.ok<{ healthy: boolean; sharesFound: number; sharesNeeded: number }>('POST', '/storage/check', { cap: link.storageCap });
    expect(health).toMatchObject({ healthy: true, sharesFound: 4, sharesNeeded: 2 });

    // The seller goes offline: its daemon and its Tahoe client node.
    const sellerApi = seller!.daemon.apiUrl;
    await seller!.stop();
    await grid!.stopClient(SELLER);
    await expect(fetch(`${sellerApi}/paypub/content/${sale.id}/manifest`)).rejects.toThrow();
    await expect(fetch(`${grid!.clientUrls[SELLER]}/?t=json`)).rejects.toThrow();

    // Without a Tahoe client the buyer is told what it needs; its daemon keeps running.
    const refused = await stranger!.api<{ error: string; message: string }>('POST', '/paypub/verify', { offer: sale.offer });
    expect(refused.status).toBe(501);
    expect(refused.body.error).toBe('UNSUPPORTED');
    expect(refused.body.message).toContain('--storage tahoe:');
    expect((await stranger!.api('GET', '/status')).status).toBe(200);

    // The buyer verifies from the offer and the grid alone, and pledges.
    const v = await buyer!.ok<{ ok: boolean; problems: string[]; chunksFrom: string; sample: { verified: boolean } }>('POST', '/paypub/verify', { offer: sale.offer, out: 'bought.bin' });
    expect(v.problems).toEqual([]);
    expect(v).toMatchObject({ ok: true, chunksFrom: 'storage', sample: { verified: true } });
    const p = await buyer!.ok<{ txid: string; announced: boolean }>('POST', '/paypub/pledge', { offer: sale.offer, sats: '100000', feeRate: 2 });
    expect(p.announced).toBe(false);
    await chain.mine(1);
    await buyer!.waitFor('paypub.pledge.confirmed', (e) => e.data.txid === p.txid);

    // The seller returns (its Tahoe client stays down), finds the pledge on chain and claims.
    seller = await seller!.restart();
    await seller.waitFor('paypub.pledge.found', (e) => e.data.txid === p.txid, 30_000);
    const claim = await seller.ok<{ txid: string; pledges: number }>('POST', `/paypub/sales/${sale.id}/claim`, { feeRate: 2 });
    expect(claim.pledges).toBe(1);
    const unlocked = await buyer!.waitFor('paypub.unlocked', (e) => e.data.id === sale.id, 30_000);
    expect(unlocked.data.bytes).toBe(file.length);
    expect(readFileSync(unlockedPath(buyer!, 'bought.bin')).equals(file)).toBe(true);

    // Two of the four storage nodes go down; a late reader's own client still reads the bundle.
    await Promise.all([grid!.stopStorage(0), grid!.stopStorage(1)]);
    await grid!.waitConnected(2, 30_000, LATE);
    expect(await late!.ok('POST', '/storage/check', { cap: link.storageCap })).toMatchObject({ healthy: false, sharesFound: 2 });
    const lv = await late!.ok<{ ok: boolean; problems: string[]; chunksFrom: string; keysPublic: boolean }>('POST', '/paypub/verify', { offer: sale.offer, out: 'late.bin' });
    expect(lv.problems).toEqual([]);
    expect(lv).toMatchObject({ ok: true, chunksFrom: 'storage', keysPublic: true });
    // The claim made every key public: the verify's look back finds it and unlocks.
    const lu = await late!.waitFor('paypub.unlocked', (e) => e.data.id === sale.id, 30_000);
    expect(lu.data.bytes).toBe(file.length);
    expect(readFileSync(unlockedPath(late!, 'late.bin')).equals(file)).toBe(true);
  });
});
