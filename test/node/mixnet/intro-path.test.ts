/**
 * The mixnet path that introductions without an IP address ride on (docs/protocol/mixnet.md,
 * "Introductions over the mixnet"), on real MixnetServices over loopback sockets:
 * - a node that knows no directory links to a provider by its endpoint and identity alone, asks it
 *   for the descriptors it knows, and keeps only those whose signatures it verified itself;
 * - an introducer registers its pairwise key as a mailbox alias at its provider (signed by that
 *   key); the reader of a drop finds the provider by the hint's 8-byte id and writes to the alias;
 * - the introducer receives the sealed body; the providers never see a link from the other side.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { mixProviderId } from '../../../src/deaddrop/endpoint.js';
import { NodeIdentity } from '../../../src/node/identity.js';
import { ZERO_HASH, createEntry } from '../../../src/node/log/codec.js';
import { descriptorDraft } from '../../../src/node/mixnet/directory.js';
import { encodeAlias, decodeAlias, AliasTable, MAX_ALIASES_PER_CLIENT, MAX_ALIAS_TTL_MS } from '../../../src/node/mixnet/alias.js';
import { openMessage, sealMessage } from '../../../src/node/mixnet/message.js';
import type { PacketEvent } from '../../../src/node/mixnet/mix-node.js';
import { MixnetService } from '../../../src/node/mixnet/service.js';
import { MixWorld } from '../../support/mix-world.js';
import { mixnetOptions } from '../../../src/node/mixnet/options.js';
import { expectCode } from '../../support/errors.js';
import { waitUntil } from '../../support/wait.js';
import { toHex } from '../../../src/util/bytes.js';

describe('DEADDROP_MIX_PROVIDER', () => {
  it('takes a node id, optionally with the endpoint a new node bootstraps from', () => {
    const id = 'ab'.repeat(32);
    expect(mixnetOptions({}, { DEADDROP_MIX_PROVIDER: id }).homeEndpoint).toBeUndefined();
    const o = mixnetOptions({}, { DEADDROP_MIX_PROVIDER: `${id}@ws://198.18.0.5:9000` });
    expect([toHex(o.home!), o.homeEndpoint]).toEqual([id, 'ws://198.18.0.5:9000']);
    for (const bad of [`${id}@http://a:1`, `${id}@ws://a`, `${id}@`, 'ab']) expectCode(() => mixnetOptions({}, { DEADDROP_MIX_PROVIDER: bad }), 'BAD_INPUT');
  });
});

describe('mailbox aliases (pure)', () => {
  const provider = randomBytes(32);
  const client = randomBytes(32);
  const pairwise = NodeIdentity.fromSeed(randomBytes(32));
  const now = Date.now();

  it('verify only for the provider and client they were signed for, and only while live', () => {
    const p = encodeAlias(pairwise, provider, client, now + 60_000);
    expect(decodeAlias(p, provider, client, now)).toMatchObject({ alias: pairwise.publicKey, expiresAt: now + 60_000 });
    expect(decodeAlias(p, randomBytes(32), client, now)).toBeNull(); // replayed to another provider
    expect(decodeAlias(p, provider, randomBytes(32), now)).toBeNull(); // claimed by another client
    expect(decodeAlias(p, provider, client, now + 60_000)).toBeNull(); // expired
    expect(decodeAlias(encodeAlias(pairwise, provider, client, now + MAX_ALIAS_TTL_MS + 1000), provider, client, now)).toBeNull(); // too long
    for (let i = 0; i < p.length; i += 13) {
      const flipped = p.slice();
      flipped[i]! ^= 1;
      expect(decodeAlias(flipped, provider, client, now), `bit flipped at ${i}`).toBeNull();
    }
    expect(decodeAlias(p.subarray(1), provider, client, now)).toBeNull();
  });

  it('are bounded per client and expire', () => {
    const t = new AliasTable();
    for (let i = 0; i < MAX_ALIASES_PER_CLIENT; i++) expect(t.register('c', `a${i}`, now + 1000, now)).toBe(true);
    expect(t.register('c', 'one more', now + 1000, now)).toBe(false);
    expect(t.register('c', 'a0', now + 2000, now)).toBe(true); // renewal of a held alias
    expect(t.aliasesOf('c', now + 1500)).toEqual(['a0']);
    expect(t.register('c', 'one more', now + 3000, now + 1500)).toBe(true);
  });
});

describe('introduction path over the mixnet, with a joiner that knows no directory', () => {
  const world = new MixWorld();
  const outside: MixnetService[] = [];
  afterAll(async () => {
    await Promise.all(outside.map((s) => s.close()));
    await world.close();
  });

  it('bootstraps the directory from a provider, finds the introducer\'s provider by id, and reaches its pairwise alias', async () => {
    const seen = new Map<string, PacketEvent[]>();
    const instrumented = (name: string) => ({ onPacket: (e: PacketEvent) => seen.set(name, [...(seen.get(name) ?? []), e]) });
    const pa = await world.start({ provider: true, ...instrumented('pa') });
    const pb = await world.start({ provider: true, ...instrumented('pb') });
    for (const layer of [1, 2, 3]) await world.start({ layer });
    const alice = await world.start({ home: pa.identityKey });
    await waitUntil(() => (alice.connected ? true : undefined), 'Alice linked to her provider');

    // Bob replicates nobody's feed: he knows his provider's identity and endpoint, nothing else.
    const bobId = NodeIdentity.fromSeed(randomBytes(32));
    const bob = new MixnetService({ identity: bobId, publish: () => undefined, isContact: () => false, home: pb.identityKey, homeEndpoint: pb.url!, fetchIntervalMs: 100, meanDelayMs: 5 });
    outside.push(bob);
    expect(bob.directory.descriptors()).toEqual([]);
    await bob.start();
    // Once linked, he asks his provider for the descriptors it knows (every one verified here).
    await waitUntil(() => (bob.directory.descriptors().length === 5 ? true : undefined), 'Bob\'s directory from his provider');
    expect(await bob.refreshDirectory()).toBe(0); // asking again brings nothing new
    expect(bob.directory.refused).toBe(0);

    // A descriptor entry whose signature does not verify is refused by the client, whoever served it.
    const forger = NodeIdentity.fromSeed(randomBytes(32));
    const good = createEntry(forger, { seq: 1, prev: ZERO_HASH, timestamp: Date.now(), ...descriptorDraft({ layer: 1, provider: false, epoch: 1, mixKey: randomBytes(32), endpoint: 'ws://127.0.0.1:9', until: Date.now() + 60_000 }), body: new Uint8Array(0) });
    const bad = { ...good, signature: new Uint8Array(64) };
    expect(bob.directory.add(bad)).toBe(false);
    expect(bob.directory.refused).toBe(1);

    // Alice's drop says: mixnet hint = 8-byte id of her provider, mailbox = the pairwise key.
    const pairwise = NodeIdentity.fromSeed(randomBytes(32));
    alice.registerAlias(pairwise, Date.now() + 3600_000);
    const got: Buffer[] = [];
    alice.on('alias', (alias, body) => {
      if (alias.equals(pairwise.publicKey)) got.push(body);
    });
    const [exit] = bob.directory.providersById(mixProviderId(pa.identityKey));
    expect(exit && toHex(exit.address)).toBe(toHex(pa.identityKey));
    bob.sendTo(exit!.address, pairwise.publicKey, sealMessage(bobId, pairwise.publicKey, 'INVITE, over the mixnet', null));
    const body = await waitUntil(() => got[0], 'the sealed body reaches Alice through her alias');
    expect(openMessage(pairwise, body)).toMatchObject({ from: bobId.publicKey, text: 'INVITE, over the mixnet' });
    // Nobody but the owner of the alias key can open it, not Alice's identity key.
    expect(openMessage(NodeIdentity.fromSeed(randomBytes(32)), body)).toBeNull();

    // Bob's only link is to his own provider; Alice's provider saw Bob's packet come from a mix.
    const fromBob = (name: string): boolean => (seen.get(name) ?? []).some((e) => e.from.equals(bobId.publicKey));
    expect(fromBob('pb')).toBe(true);
    expect(fromBob('pa')).toBe(false);
    const aliceDelivery = (seen.get('pa') ?? []).find((e) => e.to.equals(pairwise.publicKey));
    expect(aliceDelivery?.kind).toBe('deliver');
    expect(aliceDelivery?.from.equals(pb.identityKey)).toBe(false);
  });

  it('drops an alias registration whose signature does not verify (a key the client does not own)', async () => {
    const pa = [...world.services].find((s) => s.provider)!;
    const before = pa.mixNode!.drops.alias;
    const mallory = await world.start({ home: pa.identityKey });
    await waitUntil(() => (mallory.connected ? true : undefined), 'Mallory linked');
    const someoneElses = NodeIdentity.fromSeed(randomBytes(32));
    mallory.registerAlias({ publicKey: someoneElses.publicKey, sign: () => new Uint8Array(64) }, Date.now() + 60_000);
    await waitUntil(() => (pa.mixNode!.drops.alias > before ? true : undefined), 'the forged registration is dropped');
  });
});
