/**
 * Cover traffic and loop loss on loopback, real sockets and Noise links: two providers, two mixes
 * in layers 1 and 3, one honest mix and one black hole in layer 2 (a real listener that completes
 * the handshake and silently drops every packet). A client's loops and a mix's loops through the
 * black hole are lost, the others come back; the cover streams run at about their configured rates.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { isDropMailbox } from '../../../src/node/mixnet/cover.js';
import { descriptorDraft } from '../../../src/node/mixnet/directory.js';
import { healthyMixes, LoopMonitor, SUSPECT_MIN_LOOPS } from '../../../src/node/mixnet/loop-monitor.js';
import type { LoopReport } from '../../../src/node/mixnet/loop-monitor.js';
import { PACKET_BYTES } from '../../../src/node/mixnet/params.js';
import { DEFAULT_COVER_RATE, mixnetOptions } from '../../../src/node/mixnet/options.js';
import { mixnetRoutes } from '../../../src/node/mixnet/routes.js';
import { x25519Base } from '../../../src/node/mixnet/primitives.js';
import type { MixnetService } from '../../../src/node/mixnet/service.js';
import { FRAME_PACKET, FRAME_PACKETS, MAX_MIX_FRAME_BYTES, decodePackets } from '../../../src/node/mixnet/wire.js';
import { ChannelServer } from '../../../src/node/transport/ws-transport.js';
import { MixWorld } from '../../support/mix-world.js';
import { waitUntil } from '../../support/wait.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const LOOP_RATE = 20;
const DROP_RATE = 10;
const MIX_LOOP_RATE = 10;
const RUN_MS = 5000;
const LOOP_TIMEOUT_MS = 6000; // generous: a loss here must mean a dropped packet, not a busy machine

/** Lost share of the finished loops of the routes `keep` selects. */
function lossOf(report: LoopReport, keep: (hops: readonly string[]) => boolean): { finished: number; rate: number } {
  let lost = 0;
  let returned = 0;
  for (const r of report.routes.filter((x) => keep(x.hops))) {
    lost += r.lost;
    returned += r.returned;
  }
  return { finished: lost + returned, rate: lost / Math.max(1, lost + returned) };
}

describe('loop monitor', () => {
  it('counts a loop lost after the timeout, per route and per hop, and ignores late or unknown returns', () => {
    let now = 1000;
    const m = new LoopMonitor(500, () => now);
    const [a, b, c] = [Buffer.alloc(32, 1), Buffer.alloc(32, 2), Buffer.alloc(32, 3)];
    const ids = Array.from({ length: 4 }, (_, i) => Buffer.alloc(16, i + 1));
    m.sent(ids[0]!, [a, b]);
    m.sent(ids[1]!, [a, c]);
    m.sent(ids[2]!, [a, c]);
    now += 100;
    expect(m.returned(ids[0]!)).toBe(true);
    expect(m.returned(ids[0]!)).toBe(false);
    expect(m.returned(ids[3]!)).toBe(false);
    now += 450; // ids[1] and ids[2] are now 550 ms old
    expect(m.returned(ids[1]!)).toBe(true); // not swept yet: still counts
    const r = m.report();
    expect(r).toMatchObject({ sent: 3, returned: 2, lost: 1, pending: 0, medianRttMs: 550 });
    expect(m.returned(ids[2]!)).toBe(false); // came back after it was counted lost
    const hop = (x: Buffer) => r.hops.find((h) => h.address === hex(x))!;
    expect(hop(a)).toMatchObject({ sent: 3, returned: 2, lost: 1 });
    expect(hop(b).lossRate).toBe(0);
    expect(hop(c).lossRate).toBe(0.5);
    expect(r.routes[0]).toMatchObject({ hops: [hex(a), hex(c)], sent: 2, lost: 1, lossRate: 0.5 });
  });
});

describe('healthy mixes', () => {
  const mix = (n: number): { address: Uint8Array } => ({ address: Uint8Array.of(n) });
  const [a, b, c] = [mix(1), mix(2), mix(3)];
  const health = (table: Record<string, { loops: number; rate: number }>) => (address: string) => table[address] ?? null;

  it('avoids a mix that loses at least half its loops and twice as many as its best peer', () => {
    expect(healthyMixes([a, b], health({ '01': { loops: 50, rate: 1 }, '02': { loops: 50, rate: 0 } }))).toEqual([b]);
    expect(healthyMixes([a, b, c], health({ '01': { loops: 50, rate: 0.6 }, '02': { loops: 50, rate: 0.25 } }))).toEqual([b, c]);
  });

  it('keeps a mix whose loss its peers share (routes through a dropping mix in another layer), one measured too little, and one never measured', () => {
    expect(healthyMixes([a, b], health({ '01': { loops: 50, rate: 0.5 }, '02': { loops: 50, rate: 0.5 } }))).toEqual([a, b]);
    expect(healthyMixes([a, b], health({ '01': { loops: SUSPECT_MIN_LOOPS - 1, rate: 1 }, '02': { loops: 50, rate: 0 } }))).toEqual([a, b]);
    expect(healthyMixes([a, b], health({ '02': { loops: 50, rate: 0 } }))).toEqual([a, b]);
  });

  it('keeps every mix when all would be avoided: a message has to go somewhere', () => {
    expect(healthyMixes([a, b], health({ '01': { loops: 50, rate: 1 }, '02': { loops: 50, rate: 1 } }))).toEqual([a, b]);
  });
});

describe('cover options of the daemon', () => {
  it('defaults every stream to the mobile-class rate and reads the environment', () => {
    expect(mixnetOptions({}, {}).cover).toEqual({ loopRate: DEFAULT_COVER_RATE, dropRate: DEFAULT_COVER_RATE, mixLoopRate: DEFAULT_COVER_RATE });
    expect(mixnetOptions({}, { DEADDROP_MIX_LOOP_RATE: '0.5', DEADDROP_MIX_DROP_RATE: '0', DEADDROP_MIX_LOOP_TIMEOUT_MS: '9000' }).cover)
      .toEqual({ loopRate: 0.5, dropRate: 0, mixLoopRate: DEFAULT_COVER_RATE, loopTimeoutMs: 9000 });
    expect(() => mixnetOptions({}, { DEADDROP_MIX_MIX_LOOP_RATE: '-1' })).toThrow(/packets per second/);
    expect(() => mixnetOptions({}, { DEADDROP_MIX_LOOP_RATE: '1e3' })).toThrow(/packets per second/);
  });
});

describe('cover traffic and loop loss', () => {
  const world = new MixWorld();
  const holeId = NodeIdentity.fromSeed(randomBytes(32));
  let hole: ChannelServer;
  let swallowed = 0;
  let alice: MixnetService;
  let mix1: MixnetService;
  let providers: MixnetService[];
  const seen: number[] = [];

  beforeAll(async () => {
    // The black hole: a real mix listener that takes every packet and forwards none.
    hole = await ChannelServer.listen(holeId, { maxFrameBytes: MAX_MIX_FRAME_BYTES });
    hole.on('channel', (ch) => ch.on('frame', (type, payload) => {
      // Packets come one per PACKET frame or several per PACKETS frame (batch.ts): count them all.
      const packets = type === FRAME_PACKET ? [payload] : type === FRAME_PACKETS ? (decodePackets(payload) ?? []) : [];
      for (const p of packets) {
        swallowed++;
        seen.push(p.length);
      }
    }));
    world.publish(holeId, descriptorDraft({ layer: 2, provider: false, epoch: 1, mixKey: x25519Base(randomBytes(32)), endpoint: hole.url, until: Date.now() + 600_000 }));
    providers = [await world.start({ provider: true }), await world.start({ provider: true })];
    mix1 = await world.start({ layer: 1, cover: { mixLoopRate: MIX_LOOP_RATE, loopTimeoutMs: LOOP_TIMEOUT_MS } });
    await world.start({ layer: 2 });
    await world.start({ layer: 3 });
    alice = await world.start({ home: providers[0]!.mixNode!.address, cover: { loopRate: LOOP_RATE, dropRate: DROP_RATE, loopTimeoutMs: LOOP_TIMEOUT_MS } });
    await waitUntil(() => (alice.connected ? true : undefined), 'Alice linked to her provider');
  });

  afterAll(async () => {
    await world.close();
    await hole?.close();
  });

  it('runs at about the configured rates, and the loop loss singles out the mix that drops everything', async () => {
    const c0 = alice.coverStatus()!.sent;
    const m0 = mix1.coverStatus()!.sent;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, RUN_MS));
    const c1 = alice.coverStatus()!.sent;
    const m1 = mix1.coverStatus()!.sent;
    const secs = (Date.now() - t0) / 1000;
    alice.cover!.stop();
    mix1.cover!.stop();

    // Rates: Poisson counts over 5 s (expected 100, 50, 50) with wide margins for a busy 2-core box.
    const rate = (n: number): number => n / secs;
    expect(rate(c1.loop - c0.loop)).toBeGreaterThan(LOOP_RATE * 0.5);
    expect(rate(c1.loop - c0.loop)).toBeLessThan(LOOP_RATE * 1.5);
    expect(rate(c1.drop - c0.drop)).toBeGreaterThan(DROP_RATE * 0.5);
    expect(rate(c1.drop - c0.drop)).toBeLessThan(DROP_RATE * 1.5);
    expect(rate(m1.mixLoop - m0.mixLoop)).toBeGreaterThan(MIX_LOOP_RATE * 0.5);
    expect(rate(m1.mixLoop - m0.mixLoop)).toBeLessThan(MIX_LOOP_RATE * 1.5);
    expect(c1.skipped - c0.skipped).toBe(0); // before the link came up, rounds were skipped

    // Every loop in flight comes back or times out.
    await waitUntil(() => (alice.coverStatus()!.loops.pending === 0 && mix1.coverStatus()!.loops.pending === 0 ? true : undefined), 'every loop finished', 20_000);
    const B = hex(holeId.publicKey);
    for (const svc of [alice, mix1]) {
      const report = svc.coverStatus()!.loops;
      const bad = lossOf(report, (hops) => hops.includes(B));
      const good = lossOf(report, (hops) => !hops.includes(B));
      expect(bad.finished).toBeGreaterThan(5);
      expect(good.finished).toBeGreaterThan(5);
      expect(bad.rate).toBeGreaterThanOrEqual(0.95);
      expect(good.rate).toBeLessThanOrEqual(0.05);
      for (const r of report.routes) {
        if (r.returned + r.lost < 3) continue;
        if (r.hops.includes(B)) expect(r.lossRate).toBeGreaterThanOrEqual(0.9);
        else expect(r.lossRate).toBeLessThanOrEqual(0.1);
      }
      // Per hop: the black hole loses everything, the honest mix of its layer (almost) nothing.
      const hop = (a: string) => report.hops.find((h) => h.address === a);
      expect(hop(B)!.lossRate).toBeGreaterThanOrEqual(0.9);
      const honest2 = world.entries.find((e) => e.header.type === 'deaddrop/mix-descriptor' && e.header.layer === 2 && hex(e.author) !== B)!;
      expect(hop(hex(honest2.author))!.lossRate).toBeLessThanOrEqual(0.1);
      expect(report.hops[0]!.address).toBe(B); // sorted by loss: the culprit first
      expect(report.medianRttMs).not.toBeNull();
    }
    expect(swallowed).toBeGreaterThan(0);
    expect(seen.every((n) => n === PACKET_BYTES)).toBe(true);

    // Drop cover ends at a provider that discards it (those through the black hole never arrive).
    const discarded = providers.reduce((n, p) => n + p.mixNode!.coverDiscarded, 0);
    expect(discarded).toBeGreaterThan(0);
    expect(discarded).toBeLessThanOrEqual(c1.drop);
    // No cover packet was kept in any mailbox but the senders' own (client loops, fetched since).
    expect(providers.map((p) => p.mixNode!.mailboxSize(Buffer.alloc(32)))).toEqual([0, 0]);
    expect(isDropMailbox(Buffer.alloc(32))).toBe(true);
    expect(alice.messages()).toEqual([]);

    // The status route reports the same (through its response schema).
    const app = Fastify();
    try {
      await app.register(mixnetRoutes, { service: () => alice, isContact: () => true });
      const res = await app.inject({ method: 'GET', url: '/mixnet' });
      expect(res.statusCode).toBe(200);
      const status = res.json() as { cover: { rates: object; sent: { loop: number }; loops: LoopReport } };
      expect(status.cover.rates).toEqual({ loop: LOOP_RATE, drop: DROP_RATE, mixLoop: 0 });
      expect(status.cover.sent.loop).toBe(alice.coverStatus()!.sent.loop);
      expect(status.cover.loops.hops[0]).toMatchObject({ address: B });
      expect(status.cover.loops.hops[0]!.lossRate).toBeGreaterThanOrEqual(0.9);
      expect(status.cover.loops.routes.length).toBe(alice.coverStatus()!.loops.routes.length);
    } finally {
      await app.close();
    }
  }, 60_000);

  it('real messages and their replies avoid the mix the loops caught, so every one arrives', async () => {
    // Alice's loops (previous test) found the black hole; Bob is a second client on the other provider.
    const bob = await world.start({ home: providers[1]!.mixNode!.address });
    await waitUntil(() => (bob.connected && world.directoryHasMailbox(bob.identityKey) ? true : undefined), 'Bob announced his provider');
    const before = swallowed;
    const N = 12;
    // Without avoidance about half of these would take the black hole in layer 2 and vanish.
    for (let i = 0; i < N; i++) alice.send(bob.identityKey, `message ${i}`);
    const got = await waitUntil(() => {
      const inbound = bob.messages().filter((m) => m.direction === 'in');
      return inbound.length === N ? inbound : undefined;
    }, 'every message reaches Bob', 30_000);
    expect(new Set(got.map((m) => m.text)).size).toBe(N);
    // The replies travel through SURBs Alice built with the same avoidance.
    for (const m of got) bob.reply(m.id, `re: ${m.text}`);
    await waitUntil(() => (alice.messages().filter((m) => m.direction === 'in').length === N ? true : undefined), 'every reply reaches Alice', 30_000);
    expect(swallowed).toBe(before);
  }, 90_000);
});
