/**
 * An introduction answered over the mixnet, on real PeerNodes and MixnetServices over loopback
 * sockets: Alice issues an invite (what a drop with a mixnet hint carries: pairwise key, token and
 * her provider's 8-byte id); Bob, who knows nothing but his own provider's endpoint, answers it.
 * Both end with the other as a contact with no endpoint, messages flow both ways, and there is no
 * connection between their nodes, nor any of their ports in what the other holds.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mixProviderId } from '../../../src/deaddrop/endpoint.js';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { expandDropToken } from '../../../src/node/introduction-token.js';
import { HOME_META_KEY, MixIntroductions, type MixIntroductionsOptions } from '../../../src/node/mixnet/introductions.js';
import { ContactStore } from '../../../src/node/contacts.js';
import { startNodeMixnet } from '../../../src/node/mixnet/node-hook.js';
import type { MixnetOptions } from '../../../src/node/mixnet/options.js';
import type { MixMessage, MixnetService } from '../../../src/node/mixnet/service.js';
import { PeerNode } from '../../../src/node/node.js';
import { waitUntil } from '../../support/wait.js';
import { expectCode } from '../../support/errors.js';
import { toHex } from '../../../src/util/bytes.js';

const root = mkdtempSync(join(tmpdir(), 'dd-node-mixintro-'));

interface Running {
  node: PeerNode;
  mix: MixnetService;
  intros: MixIntroductions;
  received: MixMessage[];
  events: string[];
}

async function start(name: string, opts: MixnetOptions, introOpts: MixIntroductionsOptions = { renewMs: 100, answerTimeoutMs: 10_000 }): Promise<Running> {
  const node = new PeerNode({ seed: sha256(utf8(`mixintro node ${name}`)), dbPath: join(root, `${name}.sqlite`), reconnectMinMs: 100, reconnectMaxMs: 400, inviteWaitMs: 500 });
  await node.ready();
  const events: string[] = [];
  for (const ev of ['peer.connected', 'peer.dialed', 'peer.rejected'] as const) node.on(ev, () => events.push(ev));
  const received: MixMessage[] = [];
  const mix = await startNodeMixnet(node, { fetchIntervalMs: 100, meanDelayMs: 5, ...opts }, (m) => received.push(m));
  const intros = new MixIntroductions(node, mix, introOpts);
  intros.start();
  return { node, mix, intros, received, events };
}

async function stop(r: Running): Promise<void> {
  r.intros.close();
  await r.mix.close();
  await r.node.close();
}

/** Established TCP connections with `port` at either end (loopback), as the kernel reports them. */
function connectionsOf(port: number): string[] {
  const out = execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '');
}

describe('an introduction answered over the mixnet', () => {
  const all: Running[] = [];
  afterAll(async () => {
    await Promise.all(all.map(stop));
    rmSync(root, { recursive: true, force: true });
  });

  it('makes two contacts reachable over the mixnet only, with no connection between them', async () => {
    const pa = await start('pa', { provider: true });
    const pb = await start('pb', { provider: true });
    const mixes = [await start('m1', { layer: 1 }), await start('m2', { layer: 2 }), await start('m3', { layer: 3 })];
    all.push(pa, pb, ...mixes);
    // The mix operators know each other (their descriptors spread by replication); Alice and Bob know no one.
    const infra = [pa, pb, ...mixes];
    for (let i = 0; i < infra.length; i++) {
      for (let j = i + 1; j < infra.length; j++) await infra[j]!.node.bootstrapFromIntroduction(infra[i]!.node.createIntroductionToken());
    }
    for (const r of infra) await waitUntil(() => (r.mix.directory.descriptors().length === 5 ? true : undefined), 'descriptors replicated');

    const alice = await start('alice', { home: pa.node.id, homeEndpoint: pa.mix.url! });
    const bob = await start('bob', { home: pb.node.id, homeEndpoint: pb.mix.url! });
    all.push(alice, bob);
    for (const r of [alice, bob]) await waitUntil(() => (r.mix.ownEntries() && r.mix.directory.descriptors().length === 5 ? true : undefined), 'linked, directory from the provider');

    // Alice's drop: pairwise key, token, and mixnet:<id of her provider>; no endpoint.
    const invite = alice.node.createIntroductionToken();
    const drop = { pairwiseKey: invite.pairwiseKey, token: expandDropToken(invite.dropToken, invite.pairwiseKey), providerId: mixProviderId(pa.node.id) };
    alice.intros.renew();
    expect(alice.intros.isOwn(invite.pairwiseKey)).toBe(true);

    const aliceSeen = await bob.intros.join(drop);
    expect(toHex(aliceSeen.node)).toBe(toHex(alice.node.id));
    expect(aliceSeen.endpoints).toEqual([]);
    const bobSeen = await waitUntil(() => alice.node.contacts().find((c) => toHex(c.node) === toHex(bob.node.id)), 'Alice has Bob as a contact');
    expect(bobSeen.endpoints).toEqual([]);
    expect(toHex(bobSeen.pairwiseKey!)).toBe(toHex(invite.pairwiseKey));

    // Messages both ways, through the providers each learned from the exchange.
    bob.mix.send(alice.node.id, 'hello Alice, over the mixnet');
    const m1 = await waitUntil(() => alice.received[0], 'Alice receives Bob\'s message');
    expect(m1).toMatchObject({ contact: toHex(bob.node.id), text: 'hello Alice, over the mixnet' });
    alice.mix.send(bob.node.id, 'hello Bob');
    const m2 = await waitUntil(() => bob.received[0], 'Bob receives Alice\'s message');
    expect(m2).toMatchObject({ contact: toHex(alice.node.id), text: 'hello Bob' });

    // Bob asking again (as after a lost answer, with a fresh nonce and SURB) gets the same contact.
    expect(toHex((await bob.intros.join(drop)).node)).toBe(toHex(alice.node.id));
    expect(alice.node.contacts().filter((c) => toHex(c.node) === toHex(bob.node.id)).length).toBe(1);

    // A second use of the same invite by someone else is refused (the token is spent).
    const carol = await start('carol', { home: pb.node.id, homeEndpoint: pb.mix.url! });
    all.push(carol);
    await waitUntil(() => (carol.mix.ownEntries() ? true : undefined), 'Carol linked');
    await expectCode(carol.intros.join(drop), 'REJECTED');

    // No session, dial or even a rejected attempt between the two nodes, and no TCP connection.
    for (const r of [alice, bob]) {
      expect(r.node.connectedPeers()).toEqual([]);
      expect(r.events).toEqual([]);
    }
    const alicePort = alice.node.listeningPort!;
    const bobPort = bob.node.listeningPort!;
    // The probe sees real connections: Alice's link to her provider's mix listener is one.
    expect(connectionsOf(Number(new URL(pa.mix.url!).port)).length).toBeGreaterThan(0);
    expect(connectionsOf(alicePort)).toEqual([]);
    expect(connectionsOf(bobPort)).toEqual([]);
    // Neither node's port appears in what the other holds about it.
    const bobHolds = JSON.stringify([bob.node.contacts(), bob.received]);
    const aliceHolds = JSON.stringify([alice.node.contacts(), alice.received]);
    expect(bobHolds).not.toContain(`:${alicePort}`);
    expect(aliceHolds).not.toContain(`:${bobPort}`);
  });

  it('records the home provider once linked and registers an invite issued later at once, not at the next renew round', async () => {
    const [pa, pb] = all;
    // Renew rounds an hour apart: only the link event and the check for new invites can register.
    const dave = await start('dave', { home: pa!.node.id, homeEndpoint: pa!.mix.url! }, { renewMs: 3_600_000, checkMs: 100, answerTimeoutMs: 10_000 });
    const erin = await start('erin', { home: pb!.node.id, homeEndpoint: pb!.mix.url! });
    all.push(dave, erin);
    // What `drop send` (CLI or API) takes the mixnet hint from, right after the link comes up.
    const home = await waitUntil(() => new ContactStore(dave.node.store.db).getMeta(HOME_META_KEY), 'Dave\'s home recorded', 10_000, 50);
    expect(toHex(home)).toBe(toHex(pa!.node.id));
    await waitUntil(() => (erin.mix.ownEntries() && erin.mix.directory.descriptors().length === 5 ? true : undefined), 'Erin linked, directory from the provider');

    // The invite is issued after start (as by `drop send` in another process); nobody calls renew().
    const invite = dave.node.createIntroductionToken();
    const drop = { pairwiseKey: invite.pairwiseKey, token: expandDropToken(invite.dropToken, invite.pairwiseKey), providerId: mixProviderId(pa!.node.id) };
    const daveSeen = await erin.intros.join(drop);
    expect(toHex(daveSeen.node)).toBe(toHex(dave.node.id));
  });
});
