/**
 * The mixnet under attack across hosts (issue 11, "Tested on several hosts, one of them behind
 * NAT"): the network of netns.int.test.ts (two providers, one mix per layer, Bob on the bridged
 * "internet", Alice behind a NAT router), each node a runner process in its own namespace
 * (test/support/mix-lab.ts, test/support/mix-runner.ts), plus Eve, an attacker on a host of her
 * own who dials mixes and providers as any client can and sends them raw packets:
 *
 * 1. a packet captured as Alice sent it to her provider, re-injected there by Eve, and the same
 *    packet as her provider relayed it to mix1, re-injected at mix1, are dropped as replays and
 *    Bob reads the message once;
 * 2. packets with one bit flipped (alpha, beta, gamma, payload; random positions) are dropped
 *    (header MAC at the entry provider, payload tag at the exit) and never delivered, while the same
 *    packets unflipped are;
 * 3. a flood from Eve at the layer-1 mix, eight times its per-link rate, is dropped by the link's
 *    bucket while Alice's messages through that mix all arrive;
 * 4. the mixes' keys rotate at an epoch change in the middle of a stream of messages and none is
 *    lost; a packet built under the old keys is refused once the grace period is over;
 * 5. a second layer-2 mix that drops every packet it receives is noticed through the loop loss of a
 *    client (Carol) sending loop cover: all its loops are lost, none of the honest layer-2 mix's.
 */
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEntry } from '../../../src/node/log/codec.js';
import { DESCRIPTOR_TYPE } from '../../../src/node/mixnet/directory.js';
import { ALPHA_BYTES, BETA_BYTES, HEADER_BYTES, PAYLOAD_BYTES } from '../../../src/node/mixnet/params.js';
import { MixLab, type MixRunner } from '../../support/mix-lab.js';
import { NetLab, netnsUnavailable, tearDownLab } from '../../support/netns.js';
import { waitUntil } from '../../support/wait.js';

const skip = netnsUnavailable();
/** Short epochs so that one change falls inside the test; the grace period is a quarter of it. */
const EPOCH_MS = 12_000;
const GRACE_MS = EPOCH_MS / 4;

type Drops = Record<string, number>;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip !== null)(`mixnet adversaries across network namespaces${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: NetLab;
  let mix: MixLab;
  const r: Record<string, MixRunner> = {};

  const drops = async (name: string): Promise<Drops> => (await r[name]!.status()).drops as Drops;
  const craft = async (text: string): Promise<string> => (await r.alice!.request({ op: 'craft', to: r.bob!.id, text }, 'crafted')).raw as string;
  const inject = async (at: string, raws: string[]): Promise<void> => {
    await r.eve!.request({ op: 'inject', url: r[at]!.url, address: r[at]!.id, raws }, 'injected');
  };
  /** Waits until `name`'s drop counters satisfy `ok` (they count asynchronously, after the frames arrive). */
  const dropsUntil = (name: string, ok: (d: Drops) => boolean, what: string): Promise<Drops> =>
    waitUntil(async () => {
      const d = await drops(name);
      return ok(d) ? d : undefined;
    }, `${name}: ${what}`, 15_000, 100);
  const count = (texts: string[], t: string): number => texts.filter((x) => x === t).length;
  /** The newest epoch of each mix's and provider's descriptor. */
  const epochs = (): number[] => ['provA', 'provB', 'mix1', 'mix2', 'mix3'].map((n) => Math.max(...mix.entries
    .filter((e) => e.author === r[n]!.id && e.type === DESCRIPTOR_TYPE)
    .map((e) => Number(decodeEntry(Buffer.from(e.raw, 'hex')).header.epoch))));

  beforeAll(async () => {
    lab = NetLab.create(['provA', 'provB', 'mix1', 'mix2', 'mix3', 'bob', 'eve', 'mix2x', 'carol'], ['alice']);
    mix = new MixLab(lab);
    const roles: [string, { layer?: number; provider?: boolean }][] = [
      ['provA', { provider: true }], ['provB', { provider: true }], ['mix1', { layer: 1 }], ['mix2', { layer: 2 }], ['mix3', { layer: 3 }],
    ];
    // Alice's provider also keeps the packets it relays (what a wiretap on its link to mix1 would see inside the Noise layer).
    for (const [name, role] of await Promise.all(roles.map(async ([n, role]) => [n, await mix.start(n, role, { epochMs: EPOCH_MS, capture: n === 'provA' })] as const))) r[name] = role;
    r.bob = await mix.start('bob', {}, { home: r.provB!.id });
    await waitUntil(() => mix.entries.some((e) => e.author === r.bob!.id && e.type === 'deaddrop/mix-mailbox'), 'Bob\'s mailbox announcement');
    // Alice's packets wait 150 ms on average at each mix (the others 20 ms), so that several of them
    // are always in flight, and some cross the epoch change inside a mix.
    r.alice = await mix.start('alice', {}, { home: r.provA!.id, capture: true, meanDelayMs: 150 });
    r.eve = await mix.start('eve', {});
    for (const n of ['alice', 'bob']) await waitUntil(async () => ((await r[n]!.status()).connected === true ? true : undefined), `${n} linked to a provider`);
  }, 60_000);

  afterAll(() => tearDownLab(lab, async () => mix?.close()));

  it('drops a packet captured on Alice\'s link, or on her provider\'s link to mix1, replayed from another host; Bob reads it once', async () => {
    expect(lab.host('alice').natted).toBe(true);
    await r.alice!.request({ op: 'send', to: r.bob!.id, text: 'replay me' }, 'sent');
    await r.bob!.next((e) => e.ev === 'message' && (e.m as { text: string }).text === 'replay me', 'Bob receives');
    // The exact bytes Alice's client handed to its link to her provider (her only packet so far: no cover).
    const captured = (await r.alice!.request({ op: 'captured' }, 'captured')).raws as string[];
    expect(captured).toHaveLength(1);
    const before = await drops('provA');
    await inject('provA', [captured[0]!, captured[0]!]);
    const after = await dropsUntil('provA', (d) => d.replay! >= before.replay! + 2, 'two replays dropped');
    expect(after.replay! - before.replay!).toBe(2);
    // The same packet one hop on, as Alice's provider sent it to mix1, replayed at mix1.
    const relayed = ((await r.provA!.request({ op: 'captured' }, 'captured')).forwarded as { next: string; raw: string }[]).filter((f) => f.next === r.mix1!.id);
    expect(relayed).toHaveLength(1);
    const m0 = await drops('mix1');
    await inject('mix1', [relayed[0]!.raw]);
    const m1 = await dropsUntil('mix1', (d) => d.replay! > m0.replay!, 'the replay dropped at mix1');
    expect(m1.replay! - m0.replay!).toBe(1);
    // Several fetch rounds (200 ms) and route delays (20 ms per mix) later, still only one copy.
    await sleep(1500);
    expect(count(r.bob!.received(), 'replay me')).toBe(1);
  });

  it('drops packets with one bit flipped in alpha, beta, gamma or the payload; the same packets unflipped arrive', async () => {
    const parts: [string, number, number][] = [['alpha', 0, ALPHA_BYTES], ['beta', ALPHA_BYTES, BETA_BYTES], ['gamma', ALPHA_BYTES + BETA_BYTES, HEADER_BYTES - ALPHA_BYTES - BETA_BYTES], ['payload', HEADER_BYTES, PAYLOAD_BYTES]];
    const originals: string[] = [];
    for (const [part] of parts) originals.push(await craft(`flip ${part}`)); // one request at a time: answers are matched by order
    expect(new Set(originals).size).toBe(parts.length);
    const where: string[] = [];
    const flipped = originals.map((raw, i) => {
      const [part, start, len] = parts[i]!;
      const b = Buffer.from(raw, 'hex');
      const at = start + randomInt(len);
      const bit = randomInt(8);
      b[at] = b[at]! ^ (1 << bit);
      where.push(`${part}: byte ${at} bit ${bit}`);
      return b.toString('hex');
    });
    const a0 = await drops('provA');
    const b0 = await drops('provB');
    await inject('provA', flipped);
    // The header flips fail at the first hop (MAC, or a point of small order for alpha); the payload
    // flip passes every mix (which cannot see it) and fails the payload tag at Bob's provider.
    const headerDrops = (d: Drops): number => d.mac! + d.point! - a0.mac! - a0.point!;
    await dropsUntil('provA', (d) => headerDrops(d) >= 3, 'three header flips dropped');
    const b1 = await dropsUntil('provB', (d) => d.payload! >= b0.payload! + 1, 'the payload flip dropped');
    expect(b1.payload! - b0.payload!, where.join(', ')).toBe(1);
    expect(headerDrops(await drops('provA')), where.join(', ')).toBe(3);
    // Control: the three header-flipped packets left no trace (no replay tag), so unflipped they go through.
    await inject('provA', originals.slice(0, 3));
    await waitUntil(() => (parts.slice(0, 3).every(([p]) => count(r.bob!.received(), `flip ${p}`) === 1) ? true : undefined), 'the unflipped packets reach Bob');
    await sleep(1000);
    for (const [p] of parts.slice(0, 3)) expect(count(r.bob!.received(), `flip ${p}`), p).toBe(1);
    expect(count(r.bob!.received(), 'flip payload'), where[3]).toBe(0);
  });

  it('keeps relaying Alice\'s messages through the layer-1 mix while another host floods it at eight times its link rate', async () => {
    const m0 = await drops('mix1');
    const p0 = (await r.mix1!.status()).processed as number;
    // 16,000 packets/s for 3.5 s from one link, against a bucket of 2,000/s (burst 200); long
    // enough that Alice's ten sends fit inside it on a busy machine.
    const flooded = r.eve!.request({ op: 'flood', url: r.mix1!.url, address: r.mix1!.id, rate: 16_000, ms: 3500 }, 'flooded', 60_000);
    let floodEnd = 0;
    void flooded.then(() => (floodEnd = Date.now()), () => undefined);
    // Alice writes while the flood runs (every route crosses mix1, the only mix of its layer).
    await dropsUntil('mix1', (d) => d.rate! > m0.rate!, 'the flood arriving');
    const texts = Array.from({ length: 10 }, (_, i) => `under flood ${i}`);
    for (const text of texts) {
      await r.alice!.request({ op: 'send', to: r.bob!.id, text }, 'sent');
      await sleep(50);
    }
    expect(floodEnd, 'the flood was over before Alice was done').toBe(0);
    const f = await flooded;
    const n = f.n as number;
    const ms = f.ms as number;
    await waitUntil(() => (texts.every((t) => count(r.bob!.received(), t) === 1) ? true : undefined), 'Alice\'s messages reach Bob', 30_000);
    // Every flood packet is accounted for: beyond the link's bucket as `rate`, within it unwrapped
    // and refused (random bytes fail the MAC); nothing else was dropped (Alice's packets were not).
    const dropped = (d: Drops): number => d.rate! + d.mac! + d.point! - m0.rate! - m0.mac! - m0.point!;
    const m1 = await dropsUntil('mix1', (d) => dropped(d) >= n, 'every flood packet dropped');
    await sleep(500);
    expect(dropped(await drops('mix1')), 'drops beyond the flood').toBe(n);
    const rate = m1.rate! - m0.rate!;
    // The bucket let at most its burst plus 2,000/s through while the flood lasted (plus a second
    // of slack for frames still arriving after the sender's last write).
    expect(n - rate, `flood of ${n} in ${ms} ms`).toBeLessThanOrEqual(200 + 2000 * (ms / 1000 + 1));
    expect(rate, `flood of ${n} in ${ms} ms`).toBeGreaterThan(n / 2);
    expect((await r.mix1!.status()).processed as number).toBeGreaterThanOrEqual(p0 + texts.length);
    console.log(`flood: ${n} packets in ${ms} ms from Eve at mix1, ${rate} dropped by the link's bucket, ${n - rate} unwrapped and refused`);
  });

  it('rotates the mix keys at an epoch change in the middle of a stream of messages, losing none; the old keys are then refused', async () => {
    const oneEpoch = (): Promise<number[]> => waitUntil(() => {
      const e = epochs();
      return new Set(e).size === 1 ? e : undefined;
    }, 'one epoch for every node');
    let start = await oneEpoch();
    let old = await craft('built under the old keys');
    // Built just as the epoch changed: build it again under the new keys (the change after is the one tested).
    while (epochs().join() !== start.join()) {
      start = await oneEpoch();
      old = await craft('built under the old keys');
    }
    const texts: string[] = [];
    const sentAt: number[] = [];
    let rotatedAt = 0;
    // One message every 200 ms until every node published its next epoch's key, and 2 s beyond.
    while (rotatedAt === 0 || Date.now() < rotatedAt + 2000) {
      const text = `across the epoch ${texts.length}`;
      await r.alice!.request({ op: 'send', to: r.bob!.id, text }, 'sent');
      texts.push(text);
      sentAt.push(Date.now());
      if (rotatedAt === 0 && epochs().every((e, i) => e > start[i]!)) rotatedAt = Date.now();
      expect(Date.now() - sentAt[0]!, 'no epoch change').toBeLessThan(EPOCH_MS + 10_000);
      await sleep(200);
    }
    expect(sentAt.filter((t) => t < rotatedAt).length, 'messages before the change').toBeGreaterThan(0);
    expect(sentAt.filter((t) => t > rotatedAt).length, 'messages after the change').toBeGreaterThan(0);
    await waitUntil(() => (texts.every((t) => count(r.bob!.received(), t) >= 1) ? true : undefined), 'every message of the stream reaches Bob', 20_000)
      .catch(() => undefined);
    expect(texts.filter((t) => count(r.bob!.received(), t) !== 1), 'messages lost or duplicated').toEqual([]);
    // After the grace period the previous key is gone: a packet made for it fails the MAC.
    const boundary = (start[0]! + 1) * EPOCH_MS;
    await sleep(Math.max(0, boundary + GRACE_MS + 500 - Date.now()));
    const a0 = await drops('provA');
    await inject('provA', [old]);
    await dropsUntil('provA', (d) => d.mac! > a0.mac!, 'the old-key packet refused');
    await sleep(1000);
    expect(count(r.bob!.received(), 'built under the old keys')).toBe(0);
  });

  // Last: once the black hole has joined, routes of the other tests could cross it.
  it('notices a layer-2 mix that drops every packet through the loss of a client\'s loops', async () => {
    r.mix2x = await mix.start('mix2x', { layer: 2 }, { epochMs: EPOCH_MS, blackhole: true });
    r.carol = await mix.start('carol', {}, { home: r.provB!.id, cover: { loopRate: 10, loopTimeoutMs: 3000 } });
    type Hop = { address: string; returned: number; lost: number; lossRate: number | null };
    const hops = await waitUntil(async () => {
      const c = (await r.carol!.status()).cover as { loops: { hops: Hop[] } } | null;
      const hs = c?.loops.hops ?? [];
      const at = (n: string): Hop | undefined => hs.find((h) => h.address === r[n]!.id);
      return (at('mix2x')?.lost ?? 0) >= 10 && (at('mix2')?.returned ?? 0) >= 10 ? hs : undefined;
    }, 'Carol\'s loops through both layer-2 mixes finished', 30_000, 250);
    const at = (n: string): Hop => hops.find((h) => h.address === r[n]!.id)!;
    expect(at('mix2x').returned, 'loops back through the black hole').toBe(0);
    expect(at('mix2x').lossRate).toBe(1);
    // The honest mix of the same layer shares no route with the black hole: it loses nothing.
    expect(at('mix2').lossRate).toBe(0);
    // Mixes of the other layers lose the share of their loops that went through the black hole.
    for (const n of ['mix1', 'mix3']) expect(at(n).lossRate!, n).toBeGreaterThan(0);
    expect(hops[0]!.address, 'the black hole sorts first').toBe(r.mix2x!.id);
  });
});
