/**
 * Feed replication through the mixnet (src/node/mixnet/feed-relay.ts) beside direct replication
 * of the same feed, in the same run and the same process:
 *
 * - node.replicate.mixnet  entries/s: Alice appends a batch of small entries (100-byte bodies);
 *                          Bob, a contact met over the mixnet with no session to her, has them
 *                          all verified and stored. The loopback network of the tests
 *                          (test/support/mix-world.ts: two providers, one mix per layer) runs with
 *                          zero delays, mailboxes fetched every 5 ms, and per-contact budgets
 *                          lifted (the daemon's default of 20 packets/s per contact would be the
 *                          bound otherwise). Every node runs in this process, so on one core.
 *                          Anchor: a fresh node replicating the same feed from Alice directly
 *                          (Noise over a loopback WebSocket), from bootstrap to the last entry stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mixProviderId } from '../src/deaddrop/endpoint.js';
import { randomBytes } from '../src/node/crypto.js';
import { expandDropToken } from '../src/node/introduction-token.js';
import { FeedRelay } from '../src/node/mixnet/feed-relay.js';
import { MixIntroductions } from '../src/node/mixnet/introductions.js';
import { startNodeMixnet } from '../src/node/mixnet/node-hook.js';
import type { MixnetService } from '../src/node/mixnet/service.js';
import { PeerNode } from '../src/node/node.js';
import { sleep } from '../src/util/time.js';
import { MixWorld } from '../test/support/mix-world.js';
import { round } from './measure.js';
import type { Emit } from './types.js';

const ENTRIES = 2000;

interface Client {
  readonly node: PeerNode;
  readonly mix: MixnetService;
  readonly intros: MixIntroductions;
  readonly relay: FeedRelay;
}

async function until(cond: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(2);
  }
}

async function client(dir: string, name: string, home: MixnetService): Promise<Client> {
  const node = new PeerNode({ seed: randomBytes(32), dbPath: join(dir, `${name}.sqlite`) });
  await node.ready();
  const mix = await startNodeMixnet(node, { home: home.identityKey, homeEndpoint: home.url!, fetchIntervalMs: 5, meanDelayMs: 0 }, () => undefined);
  const intros = new MixIntroductions(node, mix, { renewMs: 100 });
  intros.start();
  const relay = new FeedRelay(node, mix, { intervalMs: 1000, maxEntriesPerRound: 512, maxBytesPerRound: 1 << 20, packetsPerSecond: 1e6, packetBurst: 1e6, maxBuffered: 1e5 });
  relay.start();
  await until(() => mix.ownEntries() !== null && mix.directory.descriptors().length === 5, `${name} linked`, 30_000);
  return { node, mix, intros, relay };
}

async function stop(c: Client): Promise<void> {
  c.relay.close();
  c.intros.close();
  await c.mix.close();
  await c.node.close();
}

const drafts = (n: number) => Array.from({ length: n }, () => ({ header: { type: 'bench/post' }, body: randomBytes(100) }));

export async function run(emit: Emit): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dd-bench-feedrelay-'));
  const world = new MixWorld();
  const clients: Client[] = [];
  const nodes: PeerNode[] = [];
  try {
    const pa = await world.start({ provider: true, meanDelayMs: 0 });
    const pb = await world.start({ provider: true, meanDelayMs: 0 });
    for (const layer of [1, 2, 3]) await world.start({ layer, meanDelayMs: 0 });
    const alice = await client(dir, 'alice', pa);
    const bob = await client(dir, 'bob', pb);
    clients.push(alice, bob);
    // They meet over the mixnet (no endpoint on either side, so no session can ever exist).
    const invite = alice.node.createIntroductionToken();
    alice.intros.renew();
    await bob.intros.join({ pairwiseKey: invite.pairwiseKey, token: expandDropToken(invite.dropToken, invite.pairwiseKey), providerId: mixProviderId(pa.identityKey) });
    await until(() => alice.node.contacts().length === 1, 'Alice has Bob');
    // Warm-up: a few entries through, so links, routes and the JIT are ready and both know the other's position.
    alice.node.appendBatch(drafts(50));
    const aliceFeed = (): number => alice.node.store.feed(alice.node.id)!.length;
    const bobHas = (): number => bob.node.store.feed(alice.node.id)?.length ?? 0;
    await until(() => bobHas() === aliceFeed(), 'warm-up entries');
    if (bob.node.connectedPeers().length !== 0) throw new Error('bench: a direct session exists; this would not measure the mixnet');

    const t0 = performance.now();
    alice.node.appendBatch(drafts(ENTRIES));
    const target = aliceFeed();
    await until(() => bobHas() === target, 'entries over the mixnet');
    const mixRate = ENTRIES / ((performance.now() - t0) / 1000);

    // The anchor: the same whole feed to a fresh node over a direct session.
    const carol = new PeerNode({ seed: randomBytes(32), dbPath: join(dir, 'carol.sqlite') });
    nodes.push(carol);
    await carol.ready();
    const t1 = performance.now();
    await carol.bootstrapFromIntroduction(alice.node.createIntroductionToken());
    await until(() => (carol.store.feed(alice.node.id)?.length ?? 0) === target, 'direct replication');
    const directRate = target / ((performance.now() - t1) / 1000);
    emit({
      name: 'node.replicate.mixnet', unit: 'entries/s', value: round(mixRate),
      anchor: 'direct replication of the same feed (Noise over loopback WebSocket), same run', anchorValue: round(directRate), ratio: Math.round((mixRate / directRate) * 1000) / 1000,
    });
  } finally {
    await Promise.all(clients.map(stop));
    await Promise.all(nodes.map((n) => n.close()));
    await world.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
