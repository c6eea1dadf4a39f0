/**
 * Seven in-process nodes on loopback, real sockets and the node's Noise transport: three mixes (one
 * per layer), two providers and two clients. A message to an offline client waits in its provider's
 * mailbox, is fetched later and answered through a SURB; instrumented nodes show that no node sees
 * both ends; replays, flipped bits and floods are dropped.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { MixClient } from '../../../src/node/mixnet/client.js';
import { MixNode } from '../../../src/node/mixnet/mix-node.js';
import type { PacketEvent } from '../../../src/node/mixnet/mix-node.js';
import { PACKET_BYTES, SURB_ID_BYTES } from '../../../src/node/mixnet/params.js';
import { x25519Base } from '../../../src/node/mixnet/primitives.js';
import { MixKeyring } from '../../../src/node/mixnet/replay.js';
import { SURB_BYTES, createPacket, createSurb, decodeSurb, encodeSurb, openReply, useSurb } from '../../../src/node/mixnet/sphinx.js';
import type { RouteHop } from '../../../src/node/mixnet/sphinx.js';
import { FRAME_PACKET } from '../../../src/node/mixnet/wire.js';
import { dial } from '../../../src/node/transport/ws-transport.js';
import { waitUntil } from '../../support/wait.js';
import { expectCode } from '../../support/errors.js';

interface Running {
  readonly name: string;
  readonly node: MixNode;
  readonly mixPublic: Buffer;
  readonly events: PacketEvent[];
  readonly keyring: MixKeyring;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A message body: u16 text length || text || SURB (or nothing). */
function messageBody(text: string, surb?: Buffer): Buffer {
  const t = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(t.length);
  return Buffer.concat([len, t, surb ?? Buffer.alloc(0)]);
}

function readBody(body: Buffer): { text: string; surb: Buffer } {
  const n = body.readUInt16BE(0);
  return { text: body.subarray(2, 2 + n).toString('utf8'), surb: body.subarray(2 + n, 2 + n + SURB_BYTES) };
}

describe('mixnet on loopback: 3 mix layers, 2 providers, 2 clients', () => {
  const directory = new Map<string, string>();
  const nodes: Running[] = [];
  const alice = NodeIdentity.fromSeed(randomBytes(32));
  const bob = NodeIdentity.fromSeed(randomBytes(32));
  let aliceClient: MixClient;

  async function start(name: string, provider: boolean): Promise<Running> {
    const identity = NodeIdentity.fromSeed(randomBytes(32));
    const mixKey = randomBytes(32);
    const events: PacketEvent[] = [];
    const keyring = new MixKeyring({ epoch: 1, privateKey: mixKey });
    const node = new MixNode({
      identity, provider, keyring,
      resolve: (a) => directory.get(hex(a)), onPacket: (e) => events.push(e), linkRate: 500, linkBurst: 50,
    });
    await node.listen();
    directory.set(hex(node.address), node.url);
    const r = { name, node, mixPublic: x25519Base(mixKey), events, keyring };
    nodes.push(r);
    return r;
  }

  const hop = (r: Running, delayMs: number): RouteHop => ({ address: r.node.address, publicKey: r.mixPublic, delayMs });
  let providerA: Running, providerB: Running, mixes: Running[];
  let forwardRoute: RouteHop[];

  beforeAll(async () => {
    providerA = await start('providerA', true);
    providerB = await start('providerB', true);
    mixes = [await start('mix1', false), await start('mix2', false), await start('mix3', false)];
    forwardRoute = [hop(providerA, 0), ...mixes.map((m) => hop(m, 5)), hop(providerB, 0)];
    aliceClient = await MixClient.connect(alice, providerA.node.url, providerA.node.address);
  });

  afterAll(async () => {
    aliceClient?.close();
    await Promise.all(nodes.map((n) => n.node.close()));
  });

  it('delivers to an offline client, who fetches later and answers through a SURB only Alice can read', async () => {
    // Bob is offline. Alice sends him a message with a SURB back to her own mailbox.
    const replyRoute = [hop(providerB, 0), ...mixes.map((m) => hop(m, 5)), hop(providerA, 0)];
    const { surb, secret } = createSurb(replyRoute, aliceClient.mailbox);
    aliceClient.send(createPacket(forwardRoute, bob.publicKey, messageBody('hello bob', encodeSurb(surb))));
    await waitUntil(() => (providerB.node.mailboxSize(bob.publicKey) === 1 ? true : undefined), 'the message in Bob\'s mailbox');

    // Bob comes online and fetches.
    const bobClient = await MixClient.connect(bob, providerB.node.url, providerB.node.address);
    try {
      const items = await bobClient.fetch();
      expect(items).toHaveLength(1);
      const item = items[0]!;
      if (item.kind !== 'deliver') throw new Error('expected a delivered message');
      const { text, surb: surbBytes } = readBody(item.body);
      expect(text).toBe('hello bob');
      const replyBlock = decodeSurb(surbBytes);
      if (!replyBlock) throw new Error('SURB did not decode');
      // The SURB starts at Bob's own provider; Bob learns nothing else about the route.
      expect(replyBlock.firstHop.equals(providerB.node.address)).toBe(true);
      bobClient.send(useSurb(replyBlock, messageBody('hello alice')));
      expect(await bobClient.fetch()).toEqual([]);
    } finally {
      bobClient.close();
    }

    await waitUntil(() => (providerA.node.mailboxSize(alice.publicKey) === 1 ? true : undefined), 'the reply in Alice\'s mailbox');
    const got = await aliceClient.fetch();
    expect(got).toHaveLength(1);
    const reply = got[0]!;
    if (reply.kind !== 'reply') throw new Error('expected a reply');
    expect(reply.surbId.length).toBe(SURB_ID_BYTES);
    expect(reply.surbId.equals(secret.id)).toBe(true);
    const opened = openReply(secret, reply.payload);
    if (!opened.ok) throw new Error(`reply did not open: ${opened.reason}`);
    expect(readBody(opened.body).text).toBe('hello alice');
    // Anyone else holding the payload (e.g. a provider) reads nothing with another SURB's secret.
    expect(openReply(createSurb(replyRoute, aliceClient.mailbox).secret, reply.payload).ok).toBe(false);

    // No node saw both Alice and Bob; Bob's provider saw Bob's mailbox and never Alice.
    const A = hex(alice.publicKey);
    const B = hex(bob.publicKey);
    for (const n of nodes) {
      for (const e of n.events) {
        const ends = [hex(e.from), hex(e.to)];
        expect(ends.includes(A) && ends.includes(B), `${n.name} saw both ends`).toBe(false);
      }
    }
    expect(providerB.events.some((e) => hex(e.to) === B && e.kind === 'deliver')).toBe(true);
    expect(providerB.events.every((e) => hex(e.from) !== A)).toBe(true);
    expect(providerA.events.some((e) => hex(e.from) === A)).toBe(true);
    for (const m of mixes) expect(m.events.every((e) => ![hex(e.from), hex(e.to)].some((x) => x === A || x === B))).toBe(true);
  });

  it('drops a replayed packet and a packet with a flipped bit', async () => {
    const out = createPacket(forwardRoute, bob.publicKey, messageBody('once'));
    aliceClient.send(out);
    await waitUntil(() => (providerB.node.mailboxSize(bob.publicKey) === 1 ? true : undefined), 'the first copy');
    const replaysBefore = providerA.node.drops.replay;
    aliceClient.send(out);
    await waitUntil(() => (providerA.node.drops.replay === replaysBefore + 1 ? true : undefined), 'the replay dropped at the entry');

    const flipped = createPacket(forwardRoute, bob.publicKey, messageBody('tampered'));
    flipped.packet[PACKET_BYTES - 5]! ^= 0x20;
    const payloadBefore = providerB.node.drops.payload;
    aliceClient.send(flipped);
    await waitUntil(() => (providerB.node.drops.payload === payloadBefore + 1 ? true : undefined), 'the tampered packet dropped at the exit');
    expect(providerB.node.mailboxSize(bob.publicKey)).toBe(1);

    // Only Bob's authenticated identity opens Bob's mailbox: Alice at Bob's provider gets her own (empty) one.
    const nosy = await MixClient.connect(alice, providerB.node.url, providerB.node.address);
    try {
      expect(await nosy.fetch()).toEqual([]);
    } finally {
      nosy.close();
    }
    expect(providerB.node.mailboxSize(bob.publicKey)).toBe(1);

    // A mix keeps no mailboxes: a fetch there is dropped and counted, and the client gives up.
    const atMix = await MixClient.connect(alice, mixes[0]!.node.url, mixes[0]!.node.address);
    try {
      await expect(atMix.fetch(300)).rejects.toThrow(/timed out/);
      expect(mixes[0]!.node.drops.fetch).toBe(1);
    } finally {
      atMix.close();
    }
  });

  it('loses no message when a mix rotates its key while packets for the old key are in flight', async () => {
    const mix3 = mixes[2]!;
    const before = providerB.node.mailboxSize(bob.publicKey);
    // Held 300 ms at mix1 and mix2: mix3 rotates to a new epoch key before the packet reaches it.
    const slow = [hop(providerA, 0), hop(mixes[0]!, 300), hop(mixes[1]!, 300), hop(mix3, 0), hop(providerB, 0)];
    aliceClient.send(createPacket(slow, bob.publicKey, messageBody('across the epoch change')));
    const newKey = randomBytes(32);
    mix3.keyring.rotate({ epoch: 2, privateKey: newKey });
    await waitUntil(() => (providerB.node.mailboxSize(bob.publicKey) === before + 1 ? true : undefined), 'the packet made for the old key');
    // A packet made for the new key passes too; once the grace period ends, old-key packets fail.
    const fresh = [hop(providerA, 0), hop(mixes[0]!, 0), hop(mixes[1]!, 0), { ...hop(mix3, 0), publicKey: x25519Base(newKey) }, hop(providerB, 0)];
    aliceClient.send(createPacket(fresh, bob.publicKey, messageBody('new epoch')));
    await waitUntil(() => (providerB.node.mailboxSize(bob.publicKey) === before + 2 ? true : undefined), 'the packet made for the new key');
    mix3.keyring.dropPrevious();
    const macBefore = mix3.node.drops.mac;
    aliceClient.send(createPacket(forwardRoute, bob.publicKey, messageBody('stale key')));
    await waitUntil(() => (mix3.node.drops.mac === macBefore + 1 ? true : undefined), 'the stale-key packet dropped');
    forwardRoute = fresh; // later tests route with mix3's epoch-2 key
  });

  it('keeps serving others while one peer floods a mix past its link rate', async () => {
    const flooder = NodeIdentity.fromSeed(randomBytes(32));
    const mix1 = mixes[0]!;
    const ch = await dial(mix1.node.url, flooder, { expectedRemote: mix1.node.address });
    try {
      const rateBefore = mix1.node.drops.rate;
      const junk = randomBytes(PACKET_BYTES);
      for (let i = 0; i < 2000; i++) ch.send(FRAME_PACKET, junk);
      ch.send(FRAME_PACKET, randomBytes(10));
      await waitUntil(() => (mix1.node.drops.rate > rateBefore ? true : undefined), 'rate-limited frames');
      // Alice's traffic through the same mix still arrives.
      const before = providerB.node.mailboxSize(bob.publicKey);
      aliceClient.send(createPacket(forwardRoute, bob.publicKey, messageBody('still here')));
      await waitUntil(() => (providerB.node.mailboxSize(bob.publicKey) === before + 1 ? true : undefined), 'Alice\'s packet during the flood');
    } finally {
      ch.close();
    }
  });
});

describe('MixNode lifecycle', () => {
  it('close during listen: close resolves, listen rejects CLOSED, the port is free again', async () => {
    const port = await freeTcpPort();
    const node = new MixNode({
      identity: NodeIdentity.fromSeed(randomBytes(32)), provider: false, keyring: new MixKeyring({ epoch: 1, privateKey: randomBytes(32) }),
      resolve: () => undefined,
    });
    const listening = node.listen('127.0.0.1', port);
    const closing = node.close();
    await expectCode(listening, 'CLOSED');
    await closing;
    await expect(bindOnce(port)).resolves.toBeUndefined();
    await expectCode(node.listen(), 'CLOSED');
  });
});

/** A TCP port nobody listens on right now. */
async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Binds `port` and lets it go again: rejects while someone else holds it. */
async function bindOnce(port: number): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await new Promise<void>((r) => server.close(() => r()));
}
