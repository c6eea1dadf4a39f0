/**
 * Feed replication and a whereabouts update between two PeerNodes that are contacts but never
 * connect directly (their dialers may not dial anyone), through the loopback mixnet of
 * test/support/mix-world.ts: two providers and one mix per layer, real sockets, Sphinx packets.
 *
 * Alice and Bob meet directly once (as after a drop with an endpoint), then restart unable to
 * dial: Alice's new port reaches Bob as a whereabouts update through the providers, her first
 * 100 entries replicate while both are online, and the next 100 are appended while Bob is
 * offline; Alice then goes offline too, and Bob, back online, finds them in his mailbox.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { ZERO_HASH, createEntry } from '../../../src/node/log/codec.js';
import { encodeEntriesMessage, encodeHave, encodePart, splitMessage } from '../../../src/node/mixnet/feed-relay-codec.js';
import { sealBody } from '../../../src/node/mixnet/message.js';
import { mixnetRoutes } from '../../../src/node/mixnet/routes.js';
import type { MixnetService } from '../../../src/node/mixnet/service.js';
import { equalBytes, toHex } from '../../../src/util/bytes.js';
import { MixWorld, type RelayedPeer, stopRelayedPeer } from '../../support/mix-world.js';
import { waitUntil } from '../../support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'dd-node-feedrelay-'));

const world = new MixWorld();
type Running = RelayedPeer;

const start = (name: string, home: MixnetService, dial: boolean, db = name): Promise<Running> =>
  world.startRelayedPeer({ seed: sha256(utf8(`feedrelay node ${name}`)), dbPath: join(root, `${db}.sqlite`), home, dial });
const stop = stopRelayedPeer;

const body = (i: number): { header: { type: string }; body: Uint8Array } => ({ header: { type: 'test/post' }, body: utf8(`post number ${i} `.repeat(4)) });

describe('feeds and whereabouts over the mixnet, with no direct connection', () => {
  const running = new Set<Running>();
  afterAll(async () => {
    await Promise.all([...running].map(stop));
    await world.close();
    rmSync(root, { recursive: true, force: true });
  });
  const up = async (name: string, home: MixnetService, dial: boolean, db = name): Promise<Running> => {
    const r = await start(name, home, dial, db);
    running.add(r);
    return r;
  };
  const down = async (r: Running): Promise<void> => {
    running.delete(r);
    await stop(r);
  };

  it('replicates 200 entries and a whereabouts update through the providers, also to a recipient offline at append time', async () => {
    const pa = await world.start({ provider: true, meanDelayMs: 2 });
    const pb = await world.start({ provider: true, meanDelayMs: 2 });
    for (const layer of [1, 2, 3]) await world.start({ layer, meanDelayMs: 2 });

    // They meet directly once, long enough to learn each other's provider from the replicated logs.
    let alice = await up('alice', pa, true);
    let bob = await up('bob', pb, true);
    await bob.node.bootstrapFromIntroduction(alice.node.createIntroductionToken());
    await waitUntil(() => alice.mix.directory.providerOf(bob.node.id) && bob.mix.directory.providerOf(alice.node.id), 'each knows the other\'s provider');
    const oldAlice = bob.node.contacts()[0]!;
    const aliceId = alice.node.id.slice();
    const bobId = bob.node.id.slice();
    await down(alice);
    await down(bob);

    // Both back, unable to dial: no session can exist between them.
    alice = await up('alice', pa, false);
    bob = await up('bob', pb, false);
    const newEndpoint = alice.node.endpoints[0]!;
    expect(oldAlice.endpoints).not.toContain(newEndpoint);
    const updated = await waitUntil(
      () => bob.node.contacts().find((c) => equalBytes(c.node, aliceId) && c.endpoints.includes(newEndpoint)),
      'Bob learns Alice\'s new endpoint through the mixnet', 30_000,
    );
    expect(updated.whereaboutsSeq).toBeGreaterThan(oldAlice.whereaboutsSeq);
    expect(bob.relay.stats.whereaboutsStored).toBeGreaterThanOrEqual(1);

    // 100 entries while both are online, and one of 50 KB that takes 28 packets, reassembled.
    alice.node.appendBatch(Array.from({ length: 100 }, (_, i) => body(i)));
    const big = alice.node.append({ header: { type: 'test/big' }, body: new Uint8Array(randomBytes(50_000)) });
    const aliceLen = (): number => alice.node.store.feed(aliceId)!.length;
    const mid = aliceLen();
    await waitUntil(() => bob.node.store.feed(aliceId)?.length === mid, () => `Bob has Alice's first ${mid} entries (has ${bob.node.store.feed(aliceId)?.length})`, 60_000);

    expect(toHex(bob.node.store.get(aliceId, big.seq)!.hash)).toBe(toHex(big.hash));

    // Bob goes offline; Alice appends 100 more; they wait in Bob's mailbox at his provider.
    await down(bob);
    alice.node.appendBatch(Array.from({ length: 100 }, (_, i) => body(100 + i)));
    const total = aliceLen();
    const head = toHex(alice.node.store.feed(aliceId)!.head!);
    await waitUntil(() => pb.mixNode!.mailboxSize(bobId) >= 5, 'Alice\'s entries wait in Bob\'s mailbox');
    expect(alice.direct).toEqual([]);
    // Alice goes offline too: only the mailbox can deliver now.
    await down(alice);

    bob = await up('bob', pb, false);
    await waitUntil(() => bob.node.store.feed(aliceId)?.length === total, () => `Bob has all ${total} entries (has ${bob.node.store.feed(aliceId)?.length})`, 60_000);
    expect(toHex(bob.node.store.feed(aliceId)!.head!)).toBe(head);
    expect(total).toBeGreaterThanOrEqual(200);
    expect(bob.node.store.range(aliceId, 1, total).filter((e) => e.header.type === 'test/post')).toHaveLength(200);

    // Never a direct session or dial; nothing dropped as malformed or from strangers.
    expect(bob.direct).toEqual([]);
    expect(bob.node.connectedPeers()).toEqual([]);
    expect(bob.relay.stats.dropped.malformed + bob.relay.stats.dropped.unknownSender + bob.relay.stats.dropped.rejected).toBe(0);
  });

  it('drops and counts data from strangers, malformed data, unverifiable and unfollowed entries', async () => {
    const [pa, pb] = [...world.services];
    const bob = [...running].find((r) => r.mix.home && equalBytes(r.mix.home, pb!.identityKey))!;
    const alice = await up('alice', pa!, false);
    const eve = await up('eve', pb!, false); // nobody's contact
    const d = bob.relay.stats.dropped;
    const base = { ...d };
    const toBob = (from: Running, plain: Uint8Array): void => from.mix.sendTo(pb!.identityKey, bob.node.id, sealBody(from.node.identity, bob.node.id, plain));
    const msgId = (): Uint8Array => new Uint8Array(randomBytes(8));
    const eveEntry = createEntry(eve.node.identity, { seq: 1, prev: ZERO_HASH, timestamp: Date.now(), header: { type: 'test/post' }, body: utf8('eve') });
    // Eve's entry with Alice named as its author: her signature does not verify for Alice.
    const forged = eveEntry.raw.slice();
    forged.set(alice.node.id, 1);

    toBob(eve, encodeHave(0, [])); // a stranger
    toBob(alice, Uint8Array.from([0x10, 9, 0, 0])); // unknown version
    toBob(alice, encodePart(msgId(), 0, 2, new Uint8Array(10))); // a short PART that is not the last
    toBob(alice, splitMessage(msgId(), encodeEntriesMessage([forged], false))[0]!);
    toBob(alice, splitMessage(msgId(), encodeEntriesMessage([eveEntry.raw], false))[0]!); // a feed Bob does not follow
    await waitUntil(
      () => d.unknownSender > base.unknownSender && d.malformed >= base.malformed + 2 && d.rejected > base.rejected && d.unfollowed > base.unfollowed,
      () => `every bad input counted (${JSON.stringify({ base, now: d })})`, 30_000,
    );
    // The status route reports the counters (through its response schema).
    const app = Fastify();
    try {
      await app.register(mixnetRoutes, { service: () => bob.mix, isContact: () => true, relay: () => bob.relay.stats });
      const res = await app.inject({ method: 'GET', url: '/mixnet' });
      expect(res.statusCode).toBe(200);
      expect((res.json() as { relay: unknown }).relay).toMatchObject({ entriesStored: bob.relay.stats.entriesStored, dropped: { unknownSender: d.unknownSender } });
    } finally {
      await app.close();
    }
    // Nothing of it was stored, and Bob still replicates Alice's feed.
    expect(bob.node.store.feed(eve.node.id)).toBeNull();
    alice.node.append(body(9999));
    const aliceHead = toHex(alice.node.store.feed(alice.node.id)!.head!);
    await waitUntil(() => toHex(bob.node.store.feed(alice.node.id)?.head ?? new Uint8Array(0)) === aliceHead, 'Bob still follows Alice', 30_000);
    await down(eve);

    // Alice moves (a new port) while Bob is offline, and is gone again when he comes back: her
    // new whereabouts wait in his mailbox all the same.
    const [aliceId, bobId] = [alice.node.id.slice(), bob.node.id.slice()];
    await down(alice);
    await down(bob);
    const moved = await up('alice', pa!, false);
    const newest = moved.node.endpoints[0]!;
    // (a HAVE and the one-PART WHEREABOUTS message)
    await waitUntil(() => moved.relay.stats.whereaboutsSent > 0 && pb!.mixNode!.mailboxSize(bobId) >= 2, 'Alice\'s new whereabouts wait in Bob\'s mailbox');
    await down(moved);
    const back = await up('bob', pb!, false);
    await waitUntil(() => back.node.contacts().find((c) => equalBytes(c.node, aliceId))?.endpoints.includes(newest), 'Bob learns where Alice moved while he was offline', 30_000);
  });

  it('detects a fork of a contact\'s feed from what arrives over the mixnet', async () => {
    const [pa, pb] = [...world.services];
    // Bob (from the previous test, unable to dial) and Mallory meet directly once.
    const bob = [...running].find((r) => r.mix.home && equalBytes(r.mix.home, pb!.identityKey))!;
    let mallory = await up('mallory', pa!, true);
    await mallory.node.bootstrapFromIntroduction(bob.node.createIntroductionToken());
    const malloryId = mallory.node.id.slice();
    await waitUntil(() => bob.mix.directory.providerOf(malloryId) && mallory.mix.directory.providerOf(bob.node.id), 'each knows the other\'s provider');
    await down(mallory);
    // A copy of Mallory's database: the same key and contacts, her feed as it is now.
    for (const ext of ['', '-wal']) if (existsSync(join(root, `mallory.sqlite${ext}`))) copyFileSync(join(root, `mallory.sqlite${ext}`), join(root, `mallory-copy.sqlite${ext}`));

    mallory = await up('mallory', pa!, false);
    mallory.node.appendBatch(Array.from({ length: 20 }, (_, i) => body(i)));
    const n = mallory.node.store.feed(malloryId)!.length;
    await waitUntil(() => bob.node.store.feed(malloryId)?.length === n, 'Bob has Mallory\'s feed over the mixnet', 30_000);
    await down(mallory);

    // The copy signs another entry at the next seq (its new mailbox announcement). Its HAVE names
    // that head; Bob answers with his own entry at that seq, and the copy finds the fork; its
    // proof's entries then reach Bob in answer to his HAVE, and he finds it too.
    const forks: Uint8Array[] = [];
    bob.node.on('fork.detected', (p) => forks.push(p.a.author));
    const copy = await up('mallory', pa!, false, 'mallory-copy');
    // (The copy may find it while it is still starting, before a listener could hear it.)
    await waitUntil(() => copy.node.store.feed(malloryId)!.forked, 'the copy detects the fork from Bob\'s entry', 30_000);
    await waitUntil(() => forks.length > 0, 'Bob detects the fork from the copy\'s entries', 30_000);
    expect(toHex(forks[0]!)).toBe(toHex(malloryId));
    expect(bob.node.store.feed(malloryId)!.forked).toBe(true);
    expect(bob.node.store.feed(malloryId)!.length).toBe(n); // nothing of the fork was stored
    expect(bob.node.connectedPeers()).toEqual([]);
  });
});
