/**
 * A real MixNode on loopback forwards a burst in PACKETS frames: every packet reaches the next hop
 * exactly once, packets due at different times are not held for one another, per-link rate limits
 * count packets (not frames), and a malformed batch is dropped without closing the link.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { MixClient } from '../../../src/node/mixnet/client.js';
import { MixNode } from '../../../src/node/mixnet/mix-node.js';
import type { MixNodeOptions } from '../../../src/node/mixnet/mix-node.js';
import { PACKET_BYTES } from '../../../src/node/mixnet/params.js';
import { x25519Base } from '../../../src/node/mixnet/primitives.js';
import { MixKeyring } from '../../../src/node/mixnet/replay.js';
import { createPacket, processPacket } from '../../../src/node/mixnet/sphinx.js';
import type { ReplayGuard, RouteHop } from '../../../src/node/mixnet/sphinx.js';
import {
  FRAME_DESCRIPTOR, FRAME_DIRECTORY_DONE, FRAME_DIRECTORY_REQ, FRAME_PACKET, FRAME_PACKETS, MAX_BATCH_PACKETS, MAX_DESCRIPTOR_BYTES, MAX_MIX_FRAME_BYTES, decodePackets,
} from '../../../src/node/mixnet/wire.js';
import { ChannelServer, dial } from '../../../src/node/transport/ws-transport.js';
import { waitUntil } from '../../support/wait.js';

/** The next hop: records each frame it receives (size in packets, arrival time) and unwraps every packet. */
interface Sink {
  readonly address: Buffer;
  readonly url: string;
  readonly publicKey: Uint8Array;
  /** Packets per frame, in arrival order, with the arrival time. */
  readonly frames: { count: number; at: number }[];
  /** How often each body index arrived. */
  readonly seen: Map<number, number>;
  close(): Promise<void>;
}

class NoReplay implements ReplayGuard {
  admit(): boolean {
    return true;
  }
}

async function startSink(): Promise<Sink> {
  const identity = NodeIdentity.fromSeed(randomBytes(32));
  const key = randomBytes(32);
  const server = await ChannelServer.listen(identity, { maxFrameBytes: MAX_MIX_FRAME_BYTES });
  const frames: { count: number; at: number }[] = [];
  const seen = new Map<number, number>();
  const take = (p: Uint8Array): void => {
    // The sink plays the exit provider: the body says which packet of the burst this is.
    const r = processPacket(Buffer.from(p), key, new NoReplay());
    if (!r.ok || r.kind !== 'deliver') throw new Error('sink got a packet it cannot open');
    const i = r.body.readUInt32BE(0);
    seen.set(i, (seen.get(i) ?? 0) + 1);
  };
  server.on('channel', (ch) => ch.on('frame', (type, payload) => {
    const ps = type === FRAME_PACKET ? [payload] : type === FRAME_PACKETS ? decodePackets(payload) : undefined;
    if (!ps) throw new Error(`sink got frame ${type} of ${payload.length} bytes`);
    frames.push({ count: ps.length, at: performance.now() });
    ps.forEach(take);
  }));
  return { address: Buffer.from(identity.publicKey), url: server.url, publicKey: x25519Base(key), frames, seen, close: () => server.close() };
}

describe('a mix forwards bursts in batches', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  async function setup(options: Partial<MixNodeOptions> = {}): Promise<{ mix: MixNode; sink: Sink; client: MixClient; route: (delayMs: number) => RouteHop[] }> {
    const sink = await startSink();
    cleanup.push(() => sink.close());
    const mixKey = randomBytes(32);
    const mix = new MixNode({
      identity: NodeIdentity.fromSeed(randomBytes(32)), keyring: new MixKeyring({ epoch: 1, privateKey: mixKey }),
      resolve: (a) => (Buffer.from(a).equals(sink.address) ? sink.url : undefined), ...options,
    });
    await mix.listen();
    cleanup.push(() => mix.close());
    const client = await MixClient.connect(NodeIdentity.fromSeed(randomBytes(32)), mix.url, mix.address);
    cleanup.push(() => client.close());
    const route = (delayMs: number): RouteHop[] => [
      { address: mix.address, publicKey: x25519Base(mixKey), delayMs },
      { address: sink.address, publicKey: sink.publicKey, delayMs: 0 },
    ];
    return { mix, sink, client, route };
  }

  const body = (i: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(i);
    return b;
  };

  it('delivers every packet of a burst exactly once, in frames of at most MAX_BATCH_PACKETS, far fewer frames than packets', async () => {
    const { mix, sink, client, route } = await setup({ linkRate: 1e6, linkBurst: 1e6 });
    const n = 200;
    const burst = Array.from({ length: n }, (_, i) => createPacket(route(0), randomBytes(32), body(i)));
    for (const p of burst) client.send(p);
    await waitUntil(() => (sink.seen.size === n ? true : undefined), 'every packet at the sink');
    await new Promise((r) => setTimeout(r, 50)); // a duplicate would arrive meanwhile
    expect([...sink.seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect([...sink.seen.values()].every((c) => c === 1)).toBe(true);
    expect(mix.processed).toBe(n);
    const counts = sink.frames.map((f) => f.count);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
    expect(Math.max(...counts)).toBeLessThanOrEqual(MAX_BATCH_PACKETS);
    // The client sent 8 batches (7 × 27 + 11); each is unwrapped in one callback and leaves as one.
    expect(sink.frames.length).toBeLessThanOrEqual(Math.ceil(n / MAX_BATCH_PACKETS) * 2);
    expect(Math.max(...counts)).toBe(MAX_BATCH_PACKETS);
  });

  it('holds each packet for its own delay: packets due at different times leave in different frames', async () => {
    const { sink, client, route } = await setup({ linkRate: 1e6, linkBurst: 1e6 });
    // One packet first, so that the mix's link to the sink is up and its dial is not timed below.
    client.send(createPacket(route(0), randomBytes(32), body(99)));
    await waitUntil(() => (sink.seen.size === 1 ? true : undefined), 'the link to the sink');
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) client.send(createPacket(route(0), randomBytes(32), body(i)));
    for (let i = 10; i < 20; i++) client.send(createPacket(route(400), randomBytes(32), body(i)));
    await waitUntil(() => (sink.seen.size === 21 ? true : undefined), 'both groups at the sink');
    // The undelayed ten do not wait for the delayed ones, and the delayed ones leave after their delay.
    expect(sink.frames[1]!.count).toBe(10);
    expect(sink.frames[1]!.at - t0).toBeLessThan(300);
    expect(sink.frames.slice(2).reduce((a, f) => a + f.count, 0)).toBe(10);
    for (const f of sink.frames.slice(2)) expect(f.at - t0).toBeGreaterThanOrEqual(395);
  });

  it('rate limits count packets, not frames: a burst in batches gets through only the bucket\'s worth', async () => {
    // A bucket of 40 that practically never refills during the test.
    const { mix, sink, client, route } = await setup({ linkRate: 0.001, linkBurst: 40 });
    const n = 100;
    for (let i = 0; i < n; i++) client.send(createPacket(route(0), randomBytes(32), body(i)));
    await waitUntil(() => (mix.drops.rate === n - 40 ? true : undefined), 'the packets beyond the bucket dropped');
    await waitUntil(() => (sink.seen.size === 40 ? true : undefined), 'the bucket\'s worth at the sink');
    expect(mix.processed).toBe(40);
    // The first 40 of the burst, in order: the bucket admits the head of a batch.
    expect([...sink.seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('drops malformed batches (count 0, count beyond the maximum, wrong length, trailing bytes) and keeps the link', async () => {
    const { mix, sink, route } = await setup({ linkRate: 1e6, linkBurst: 1e6 });
    const peer = NodeIdentity.fromSeed(randomBytes(32));
    const ch = await dial(mix.url, peer, { expectedRemote: mix.address, maxFrameBytes: MAX_MIX_FRAME_BYTES });
    cleanup.push(() => ch.close());
    const good = (i: number): Buffer => createPacket(route(0), randomBytes(32), body(i)).packet;
    const bad = [
      Uint8Array.of(0),
      Buffer.concat([Uint8Array.of(MAX_BATCH_PACKETS + 1), randomBytes(2 * PACKET_BYTES)]),
      Buffer.concat([Uint8Array.of(3), good(100), good(101)]),
      Buffer.concat([Uint8Array.of(2), good(102), good(103), Uint8Array.of(0)]),
      new Uint8Array(0),
    ];
    for (const payload of bad) ch.send(FRAME_PACKETS, payload);
    ch.send(FRAME_PACKETS, Buffer.concat([Uint8Array.of(2), good(1), good(2)]));
    await waitUntil(() => (sink.seen.size === 2 ? true : undefined), 'the well-formed batch after the bad ones');
    expect(mix.drops.frame).toBe(bad.length);
    expect([...sink.seen.keys()].sort()).toEqual([1, 2]);
    expect(ch.isOpen).toBe(true);
  });

  it('a client keeps descriptor entries within their old bound although frames may now be a batch long', async () => {
    const providerId = NodeIdentity.fromSeed(randomBytes(32));
    const provider = await ChannelServer.listen(providerId, { maxFrameBytes: MAX_MIX_FRAME_BYTES });
    cleanup.push(() => provider.close());
    const small = randomBytes(300);
    provider.on('channel', (ch) => ch.on('frame', (type) => {
      if (type !== FRAME_DIRECTORY_REQ) return;
      ch.sendFrames([
        { type: FRAME_DESCRIPTOR, payload: randomBytes(MAX_DESCRIPTOR_BYTES + 1) },
        { type: FRAME_DESCRIPTOR, payload: small },
        { type: FRAME_DIRECTORY_DONE, payload: new Uint8Array(0) },
      ]);
    }));
    const client = await MixClient.connect(NodeIdentity.fromSeed(randomBytes(32)), provider.url, providerId.publicKey);
    cleanup.push(() => client.close());
    const entries = await client.fetchDirectory();
    expect(entries.map((e) => Buffer.from(e).toString('hex'))).toEqual([small.toString('hex')]);
  });
});
