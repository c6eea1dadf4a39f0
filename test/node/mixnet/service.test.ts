/**
 * The mixnet as nodes use it: signed descriptors in each node's log form the directory, clients
 * route only over verified descriptors, and a message to an offline contact waits at its provider
 * and is answered through a SURB. Real sockets, Noise links and signed log entries; 7 nodes.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { createEntry, ZERO_HASH } from '../../../src/node/log/codec.js';
import { MixDirectory, TooFewMixes, descriptorDraft, readDescriptor } from '../../../src/node/mixnet/directory.js';
import { openMessage, sealMessage } from '../../../src/node/mixnet/message.js';
import { MixnetService, type MixMessage } from '../../../src/node/mixnet/service.js';
import { BODY_BYTES } from '../../../src/node/mixnet/params.js';
import { MixWorld } from '../../support/mix-world.js';
import { waitUntil } from '../../support/wait.js';
import { activeTimers } from '../../support/resources.js';
import { expectCode } from '../../support/errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function signed(identity: NodeIdentity, layer: number, provider: boolean, until = Date.now() + 60_000) {
  const d = descriptorDraft({ layer, provider, epoch: 1, mixKey: randomBytes(32), endpoint: 'ws://127.0.0.1:9', until });
  return createEntry(identity, { seq: 1, prev: ZERO_HASH, timestamp: Date.now(), header: d.header, body: d.body ?? new Uint8Array(0) });
}

describe('mixnet directory', () => {
  it('uses only verified, unexpired descriptors and refuses to build a route with a layer missing', () => {
    const dir = new MixDirectory();
    const ids = Array.from({ length: 5 }, () => NodeIdentity.fromSeed(randomBytes(32)));
    const [pa, pb, m1, m2, m3] = ids as [NodeIdentity, NodeIdentity, NodeIdentity, NodeIdentity, NodeIdentity];
    for (const [id, layer, prov] of [[pa, 0, true], [pb, 0, true], [m1, 1, false], [m3, 3, false]] as const) expect(dir.add(signed(id, layer, prov))).toBe(true);
    expect(() => dir.route(pa.publicKey, pb.publicKey, [0, 0, 0, 0, 0])).toThrow(TooFewMixes);

    // A layer-2 descriptor with a flipped signature bit is refused.
    const forged = signed(m2, 2, false);
    forged.signature[3]! ^= 1;
    expect(dir.add(forged)).toBe(false);
    expect(dir.refused).toBe(1);
    expect(() => dir.route(pa.publicKey, pb.publicKey, [0, 0, 0, 0, 0])).toThrow(/layer 2/);

    // An expired one is not used either; a valid one completes the route.
    expect(dir.add(signed(m2, 2, false, Date.now() - 1))).toBe(true);
    expect(() => dir.route(pa.publicKey, pb.publicKey, [0, 0, 0, 0, 0])).toThrow(/layer 2/);
    const m2b = NodeIdentity.fromSeed(randomBytes(32));
    dir.add(signed(m2b, 2, false));
    const route = dir.route(pa.publicKey, pb.publicKey, [0, 1, 2, 3, 0]);
    expect(route.map((h) => hex(h.address))).toEqual([pa, m1, m2b, m3, pb].map((i) => hex(i.publicKey)));
    expect(route.map((h) => h.delayMs)).toEqual([0, 1, 2, 3, 0]);
    expect(readDescriptor(signed(m1, 1, false))?.layer).toBe(1);
  });

  it('seals a message body to the recipient only, authenticating the sender', () => {
    const alice = NodeIdentity.fromSeed(randomBytes(32));
    const bob = NodeIdentity.fromSeed(randomBytes(32));
    const carol = NodeIdentity.fromSeed(randomBytes(32));
    const body = sealMessage(alice, bob.publicKey, 'hi bob', null);
    expect(body.length).toBe(BODY_BYTES);
    const opened = openMessage(bob, body);
    expect(opened?.text).toBe('hi bob');
    expect(hex(opened!.from)).toBe(hex(alice.publicKey));
    expect(openMessage(carol, body)).toBeNull();
    const flipped = Uint8Array.from(body);
    flipped[60]! ^= 1;
    expect(openMessage(bob, flipped)).toBeNull();
    expect(Buffer.from(body).includes(Buffer.from('hi bob'))).toBe(false);
  });
});

describe('mixnet service: 3 mixes, 2 providers, 2 clients', () => {
  const world = new MixWorld();
  const alice = NodeIdentity.fromSeed(randomBytes(32));
  const bob = NodeIdentity.fromSeed(randomBytes(32));
  let providerA: MixnetService, providerB: MixnetService, aliceSvc: MixnetService;

  beforeAll(async () => {
    providerA = await world.start({ provider: true });
    providerB = await world.start({ provider: true });
    for (const layer of [1, 2, 3]) await world.start({ layer });
  });
  afterAll(() => world.close());

  it('delivers to an offline contact once it fetches, and the reply comes back through the SURB', async () => {
    // Bob announces Bob's provider, then goes offline.
    const bobOnce = await world.start({ identity: bob, home: providerB.mixNode!.address });
    await waitUntil(() => (world.directoryHasMailbox(bob.publicKey) ? true : undefined), 'Bob\'s mailbox announcement');
    await world.stop(bobOnce);

    aliceSvc = await world.start({ identity: alice, home: providerA.mixNode!.address });
    await waitUntil(() => (aliceSvc.connected ? true : undefined), 'Alice linked to her provider');
    const sent = aliceSvc.send(bob.publicKey, 'hello bob, through the mixnet');
    await waitUntil(() => (providerB.mixNode!.mailboxSize(bob.publicKey) === 1 ? true : undefined), 'the message waiting at Bob\'s provider');

    const bobSvc = await world.start({ identity: bob, home: providerB.mixNode!.address });
    const got = await waitUntil(() => bobSvc.messages().find((m) => m.direction === 'in'), 'Bob receives');
    expect(got.text).toBe('hello bob, through the mixnet');
    expect(got.contact).toBe(hex(alice.publicKey));
    expect(got.canReply).toBe(true);

    bobSvc.reply(got.id, 'hello alice');
    expect(() => bobSvc.reply(got.id, 'twice')).toThrow(/no reply block/);
    // …and the answered message no longer says it can be answered (the dashboard offers no reply).
    expect(bobSvc.messages().find((m) => m.id === got.id)?.canReply).toBe(false);
    const answer = await waitUntil<MixMessage>(() => aliceSvc.messages().find((m) => m.direction === 'in'), 'the reply reaches Alice');
    expect(answer.text).toBe('hello alice');
    expect(answer.inReplyTo).toBe(sent.id);
    expect(answer.contact).toBe(hex(bob.publicKey));
  });

  it('ignores messages from non-contacts', async () => {
    const stranger = await world.start({ home: providerA.mixNode!.address });
    await waitUntil(() => (stranger.connected ? true : undefined), 'stranger linked');
    const picky = await world.start({ home: providerB.mixNode!.address, isContact: () => false });
    await waitUntil(() => (picky.connected && world.directoryHasMailbox(picky.identityKey) ? true : undefined), 'picky announced');
    const before = providerB.mixNode!.processed;
    stranger.send(picky.identityKey, 'spam');
    await waitUntil(() => (providerB.mixNode!.processed > before ? true : undefined), 'the packet stored at the provider');
    await waitUntil(() => (providerB.mixNode!.mailboxSize(picky.identityKey) === 0 ? true : undefined), 'the mailbox fetched');
    await new Promise((r) => setTimeout(r, 200));
    expect(picky.messages()).toEqual([]);
  });
});

describe('MixnetService lifecycle', () => {
  it('close during start: close resolves, start rejects CLOSED, no listener, link or timer is left', async () => {
    const before = activeTimers();
    const published: unknown[] = [];
    const s = new MixnetService({
      identity: NodeIdentity.fromSeed(randomBytes(32)), layer: 1, isContact: () => true, fetchIntervalMs: 50, publish: (d) => published.push(d),
    });
    const starting = s.start();
    const closing = s.close();
    await expectCode(starting, 'CLOSED');
    await closing;
    expect(published).toEqual([]);
    expect(s.connected).toBe(false);
    // Its mix node was closed too (a closed node does not listen again).
    expect(s.mixNode).toBeDefined();
    await expectCode(s.mixNode!.listen(), 'CLOSED');
    expect(activeTimers()).toBeLessThanOrEqual(before);
    await expectCode(s.start(), 'CLOSED');
  });
});
