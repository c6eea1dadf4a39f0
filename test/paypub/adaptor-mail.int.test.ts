/**
 * PayPub version 2 with the seller offline for the whole sale, on regtest btcd and a loopback
 * mixnet (two providers, three mixes, in process): the seller's daemon publishes, reveals, and
 * its offer names its mixnet mailbox; then it stops. The buyer's daemon (homed at the other
 * provider) pledges and mails its pre-signature announcement to that mailbox (the offer's URL is
 * a static mirror of the public bundle, which takes no announcement: nothing reaches the seller
 * but the mail), and mails it again naming the block once the pledge is mined. A stranger mails
 * garbage too. The seller's provider keeps all of it; the seller's daemon restarts, fetches its
 * mailbox, drops the garbage and the announcement it can no longer place, takes the one naming
 * the block, claims; the buyer's daemon extracts t from the claim and writes the file.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { createPaypubFeature } from '../../src/paypub/feature.js';
import { createNodeFeature } from '../../src/node/feature.js';
import { MailHub } from '../../src/feature/mail.js';
import type { DaemonFeature } from '../../src/feature/contract.js';
import type { MixnetService } from '../../src/node/mixnet/service.js';
import { sealBody } from '../../src/node/mixnet/message.js';
import { NodeIdentity } from '../../src/node/identity.js';
import { KIND_PAYPUB_PRESIG, splitOfferMailbox } from '../../src/paypub/presig-mail.js';
import { PASS, fundParty, outboxPath, removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { backendArgs, runCliJson } from '../support/cli.js';
import { MixWorld } from '../support/mix-world.js';
import { useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';
import { toHex } from '../../src/util/bytes.js';

/** PayPub and the peer node homed at `provider`, sharing one mail hub, as `deaddrop start` wires them (fresh for every start). */
function mailFeatures(provider: MixnetService): DaemonFeature[] {
  const mail = new MailHub();
  const mixnet = { home: provider.identityKey, homeEndpoint: provider.url!, fetchIntervalMs: 200, meanDelayMs: 2 };
  return [createPaypubFeature({ pollIntervalMs: 500, mail }), createNodeFeature({ host: '127.0.0.1', mixnet, mail })];
}

/** A static copy of a sale's public bundle (what storage would serve): GETs only, no announcement route. */
async function mirror(bundle: unknown, id: string, chunks: Uint8Array[]): Promise<Server> {
  const srv = createServer((req, res) => {
    const m = /^\/paypub\/content\/([0-9a-f]{64})\/chunks\/([0-9]+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && req.url === `/paypub/v2/content/${id}`) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(bundle));
    } else if (req.method === 'GET' && m && m[1] === id && chunks[Number(m[2])]) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(chunks[Number(m[2])]);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"NOT_FOUND","message":"mirror"}');
    }
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return srv;
}

describe('PayPub version 2 announcements through the seller\'s mixnet mailbox', () => {
  useNodeKind('btcd');
  const world = new MixWorld();
  let providerA: MixnetService;
  let providerB: MixnetService;
  let node: RegtestNode;
  let seller: Party;
  let buyer: Party;
  let server: Server | undefined;

  beforeAll(async () => {
    providerA = await world.start({ provider: true, meanDelayMs: 2 });
    providerB = await world.start({ provider: true, meanDelayMs: 2 });
    for (const layer of [1, 2, 3]) await world.start({ layer, meanDelayMs: 2 });
    node = await startRegtestNode({ kind: 'btcd' });
    seller = await startParty('mailseller', node, undefined, { features: mailFeatures(providerA) });
    buyer = await startParty('mailbuyer', node, undefined, { features: mailFeatures(providerB) });
    for (const p of [seller, buyer]) await fundParty(node, p, 1_000_000n);
  });

  afterAll(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    for (const p of [seller, buyer]) await p?.stop().catch(() => undefined);
    await node?.stop();
    await world.close();
    for (const p of [seller, buyer]) removeParty(p);
  });

  it('the seller, offline from before the pledge until after it, takes the pre-signature from its mailbox, claims, the buyer unlocks', async () => {
    const file = new Uint8Array(randomBytes(16 * 1024));
    const path = outboxPath(seller, 'mail.bin');
    writeFileSync(path, file);
    const pub = await seller.ok<{ id: string; beaconHeight: number; deadlineHeight: number; chunkCount: number }>('POST', '/paypub/publish', {
      path, price: '50000', threshold: '50000', chunks: 8, sample: 2, beaconIn: 3, deadlineIn: 16, feeRate: 2, claim: 'adaptor',
    });
    const id = pub.id;
    await node.mine(1);
    await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
    await mineTo(node, pub.beaconHeight + 1);
    await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
    // The offer names the mailbox once the seller's node is linked to its provider.
    const offer = await waitUntil(async () => {
      const o = (await seller.ok<{ offer: string }>('GET', `/paypub/v2/sales/${id}/offer`)).offer;
      return o.includes('~mix:') ? o : undefined;
    }, 'the offer names the seller\'s mailbox', 30_000);
    // A one-shot CLI command beside the daemon names the mailbox too (the daemon records it).
    const cli = await runCliJson<{ offer: string }>(['--datadir', seller.datadir, ...backendArgs(node.backendUrl, seller.datadir), 'paypub', 'offer', id], { DEADDROP_PASSPHRASE: PASS });
    expect(cli.offer).toBe(offer);
    const { rest, mix } = splitOfferMailbox(offer);
    expect(toHex(mix!.provider)).toBe(toHex(providerA.identityKey));
    const sellerUrl = rest.slice(rest.indexOf('@') + 1);

    // The public bundle copied to a mirror while the seller is up; the offer then names the mirror.
    const bundle = await (await fetch(`${sellerUrl}/paypub/v2/content/${id}`)).json();
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < pub.chunkCount; i++) chunks.push(new Uint8Array(await (await fetch(`${sellerUrl}/paypub/content/${id}/chunks/${i}`)).arrayBuffer()));
    server = await mirror(bundle, id, chunks);
    const mirrored = `paypub2:${id}@http://127.0.0.1:${(server.address() as AddressInfo).port}${offer.slice(offer.indexOf('~mix:'))}`;

    await seller.stop();
    const box = (): number => providerA.mixNode!.mailboxSize(mix!.mailbox);
    expect(box()).toBe(0);

    // A stranger mails garbage to the seller's mailbox: a PayPub kind with bad bytes, and a forged announcement.
    const strangerId = NodeIdentity.fromSeed(randomBytes(32));
    const stranger = await world.start({ identity: strangerId, home: providerB.identityKey });
    await waitUntil(() => (stranger.connected ? true : undefined), 'the stranger linked');
    stranger.sendTo(providerA.identityKey, mix!.mailbox, sealBody(strangerId, mix!.mailbox, new Uint8Array([KIND_PAYPUB_PRESIG, 0, 1, 2, 3])));
    const forged = new Uint8Array(2 + 166);
    forged.set([KIND_PAYPUB_PRESIG, 0, 2], 0);
    forged.set(Buffer.from(id, 'hex'), 3);
    stranger.sendTo(providerA.identityKey, mix!.mailbox, sealBody(strangerId, mix!.mailbox, forged));
    await waitUntil(() => (box() >= 2 ? true : undefined), 'the garbage waits at the provider', 30_000);

    await waitUntil(async () => ((await buyer.ok<{ connected: boolean }>('GET', '/node/mixnet')).connected ? true : undefined), 'the buyer\'s node linked', 30_000);
    const pledge = await buyer.ok<{ txid: string; announced: boolean; announceError?: string }>('POST', '/paypub/v2/pledge', { offer: mirrored, sats: '50000', feeRate: 2, out: 'mail.bin' });
    // Nothing took it over HTTP: the mirror has no announcement route, and the seller is down.
    expect(pledge.announced).toBe(false);
    await waitUntil(() => (box() >= 3 ? true : undefined), 'the announcement waits in the seller\'s mailbox', 30_000);
    // Mined while the seller is away: the buyer's daemon mails it again naming the block.
    await node.mine(1);
    await waitUntil(() => (box() >= 4 ? true : undefined), 'the announcement naming the block waits in the mailbox', 30_000);

    seller = await seller.restart();
    const ev = await seller.waitFor('paypub.pledge.announced', (e) => e.data.txid === pledge.txid, 60_000);
    expect(ev.data.height).toBe(await node.rpc<number>('getblockcount'));
    await waitUntil(() => (box() === 0 ? true : undefined), 'the seller emptied its mailbox');
    const claim = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id, 60_000);
    expect(claim.data.pledges).toBe(1);
    // The garbage counted nothing, and the daemon still answers: the two from the stranger and the
    // announcement without a block (its pledge left the mempool) were dropped and counted.
    expect((await seller.ok<{ pledges: unknown[] }>('GET', `/paypub/v2/sales/${id}`)).pledges).toHaveLength(1);
    expect(await seller.ok('GET', '/paypub/v2/mail')).toEqual({ accepted: 1, dropped: 3 });

    const unlocked = await buyer.waitFor('paypub.unlocked', (e) => e.data.id === id, 60_000);
    expect(new Uint8Array(readFileSync(unlocked.data.path as string))).toEqual(file);
  });
});
