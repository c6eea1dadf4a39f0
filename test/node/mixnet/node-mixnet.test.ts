/**
 * The mixnet side of real PeerNodes (src/node/mixnet/node-hook.ts): seven nodes, meshed as contacts
 * through invites, publish descriptors in their own signed logs; the descriptors reach the others by
 * the nodes' ordinary replication; a message to an offline contact is fetched when it comes back,
 * reaches it as a received message, and the reply returns through the SURB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { PeerNode } from '../../../src/node/node.js';
import { startNodeMixnet } from '../../../src/node/mixnet/node-hook.js';
import type { MixnetOptions } from '../../../src/node/mixnet/options.js';
import type { MixMessage, MixnetService } from '../../../src/node/mixnet/service.js';
import { waitUntil } from '../../support/wait.js';
import { toHex } from '../../../src/util/bytes.js';

const root = mkdtempSync(join(tmpdir(), 'dd-node-mix-'));

interface Running {
  node: PeerNode;
  mix: MixnetService;
  received: MixMessage[];
}

async function start(name: string, opts: MixnetOptions): Promise<Running> {
  const node = new PeerNode({ seed: sha256(utf8(`mix node ${name}`)), dbPath: join(root, `${name}.sqlite`), reconnectMinMs: 100, reconnectMaxMs: 400 });
  await node.ready();
  const received: MixMessage[] = [];
  const mix = await startNodeMixnet(node, { fetchIntervalMs: 100, meanDelayMs: 5, ...opts }, (m) => received.push(m));
  return { node, mix, received };
}

async function stop(r: Running): Promise<void> {
  await r.mix.close();
  await r.node.close();
}

describe('mixnet on peer nodes: descriptors through replication, messages between contacts', () => {
  const all: Running[] = [];
  afterAll(async () => {
    await Promise.all(all.map(stop));
    rmSync(root, { recursive: true, force: true });
  });

  it('delivers to an offline contact and brings the reply back through the SURB', async () => {
    const pa = await start('pa', { provider: true });
    const pb = await start('pb', { provider: true });
    const mixes = [await start('m1', { layer: 1 }), await start('m2', { layer: 2 }), await start('m3', { layer: 3 })];
    const alice = await start('alice', { home: pa.node.id });
    let bob = await start('bob', { home: pb.node.id });
    all.push(pa, pb, ...mixes, alice);
    const nodes = [pa, pb, ...mixes, alice, bob];
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) await nodes[j]!.node.bootstrapFromIntroduction(nodes[i]!.node.createIntroductionToken());
    }
    // Every node verified the five descriptors it received by replication; Bob announced his provider.
    for (const r of nodes) await waitUntil(() => (r.mix.directory.descriptors().length === 5 ? true : undefined), 'descriptors replicated');
    await waitUntil(() => (alice.mix.directory.providerOf(bob.node.id) ? true : undefined), 'Bob\'s provider known to Alice');
    expect(toHex(alice.mix.directory.providerOf(bob.node.id)!)).toBe(toHex(pb.node.id));
    await waitUntil(() => (alice.mix.connected ? true : undefined), 'Alice linked to her provider');

    // Bob goes offline; Alice writes; the message waits at Bob's provider.
    await stop(bob);
    const sent = alice.mix.send(bob.node.id, 'hi bob, you were offline');
    await waitUntil(() => (pb.mix.mixNode!.mailboxSize(bob.node.id) === 1 ? true : undefined), 'the message at Bob\'s provider');

    bob = await start('bob', { home: pb.node.id });
    all.push(bob);
    const got = await waitUntil(() => bob.received[0], 'Bob receives the message');
    expect(got).toMatchObject({ direction: 'in', contact: toHex(alice.node.id), text: 'hi bob, you were offline', canReply: true });
    bob.mix.reply(got.id, 'back online, hi alice');
    const answer = await waitUntil(() => alice.received[0], 'the reply reaches Alice');
    expect(answer).toMatchObject({ contact: toHex(bob.node.id), text: 'back online, hi alice', inReplyTo: sent.id });
  });
});
