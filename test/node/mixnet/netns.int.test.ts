/**
 * The mixnet across hosts: eight network namespaces (test/support/netns.ts), seven mixnet nodes,
 * each its own Node process in its own namespace (test/support/mix-runner.ts): two providers and
 * three mixes (one per layer) on a bridged "internet", Bob on it too, and Alice behind a NAT router
 * (nftables masquerade). Alice writes to Bob while Bob is offline; Bob comes online, fetches from
 * his provider and answers through Alice's SURB. Every mix and provider records (previous hop, next
 * hop) per packet, and the TCP peers in every namespace are read: no single mix and no provider saw
 * both Alice and Bob, and nobody saw Alice's private address. Alice's loop cover, through the NAT
 * and the three layers, comes back without loss.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { decodeEntry } from '../../../src/node/log/codec.js';
import { toHex } from '../../../src/util/bytes.js';
import { MixRunner, type RunnerEvent } from '../../support/mix-lab.js';
import { NetLab, ROUTER_WAN_IP, netnsUnavailable, tearDownLab } from '../../support/netns.js';
import { waitUntil } from '../../support/wait.js';

const skip = netnsUnavailable();
const RUNNER = new URL('../../support/mix-runner.ts', import.meta.url).pathname;

describe.skipIf(skip !== null)(`mixnet across network namespaces, one client behind NAT${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: NetLab;
  const runners: MixRunner[] = [];
  /** Every signed entry so far, in order, with its author. */
  const entries: { raw: string; author: string }[] = [];
  const feeds = new Map<string, { seq: number; prev: string }>();
  const seeds = new Map<string, string>();
  const ids = new Map<string, string>();
  for (const name of ['provA', 'provB', 'mix1', 'mix2', 'mix3', 'alice', 'bob']) {
    const seed = randomBytes(32);
    seeds.set(name, toHex(seed));
    ids.set(name, toHex(NodeIdentity.fromSeed(seed).publicKey));
  }
  const id = (name: string): string => ids.get(name)!;

  function broadcast(raw: string, from: MixRunner): void {
    const e = decodeEntry(Buffer.from(raw, 'hex'));
    entries.push({ raw, author: toHex(e.author) });
    feeds.set(toHex(e.author), { seq: e.seq, prev: toHex(e.hash) });
    for (const r of runners) if (r !== from) r.send({ op: 'entry', raw });
  }

  async function start(name: string, role: { layer?: number; provider?: boolean; home?: string; cover?: object }): Promise<MixRunner> {
    const host = lab.host(name);
    const feed = feeds.get(id(name));
    const cfg = {
      seed: seeds.get(name), ...(role.layer ? { layer: role.layer } : {}), ...(role.provider ? { provider: true } : {}),
      ...(role.home ? { home: role.home } : {}), ...(role.cover ? { cover: role.cover } : {}), host: host.ip, meanDelayMs: 20, fetchIntervalMs: 200, ...(feed ? { feed } : {}),
    };
    const child = lab.spawn(name, process.execPath, ['--import', 'tsx', RUNNER, JSON.stringify(cfg)], { cwd: process.cwd() });
    const r = new MixRunner(name, id(name), child, broadcast);
    runners.push(r);
    for (const e of entries) r.send({ op: 'entry', raw: e.raw });
    await r.next((e) => e.ev === 'ready', 'ready');
    return r;
  }

  const hasEntry = (author: string, type: string): true | undefined =>
    entries.some((e) => e.author === author && decodeEntry(Buffer.from(e.raw, 'hex')).header.type === type) ? true : undefined;

  beforeAll(async () => {
    lab = NetLab.create(['provA', 'provB', 'mix1', 'mix2', 'mix3', 'bob'], ['alice']);
    await Promise.all([
      start('provA', { provider: true }), start('provB', { provider: true }),
      start('mix1', { layer: 1 }), start('mix2', { layer: 2 }), start('mix3', { layer: 3 }),
    ]);
    for (const n of ['provA', 'provB', 'mix1', 'mix2', 'mix3']) await waitUntil(() => hasEntry(id(n), 'deaddrop/mix-descriptor'), `${n}'s descriptor`);
  });

  afterAll(() => tearDownLab(lab, () => Promise.all(runners.map((r) => r.quit().catch(() => undefined)))));

  it('delivers from the NATed client to an offline one, the reply comes back through a SURB, and no node sees both ends', async () => {
    const alice = lab.host('alice');
    const bob = lab.host('bob');
    expect(alice.natted).toBe(true);
    // A public host has no route to the private network: only the router's address is visible.
    expect(() => lab.exec('provA', 'ip', ['route', 'get', alice.ip])).toThrow();

    // Bob announces his provider, then goes offline.
    const bobOnce = await start('bob', { home: id('provB') });
    await waitUntil(() => hasEntry(id('bob'), 'deaddrop/mix-mailbox'), 'Bob\'s mailbox announcement');
    await bobOnce.quit();

    // Alice, behind NAT, writes to Bob (and sends loop and drop cover all along).
    const a = await start('alice', { home: id('provA'), cover: { loopRate: 4, dropRate: 2, loopTimeoutMs: 15_000 } });
    await waitUntil(async () => ((await a.status()).connected === true ? true : undefined), 'Alice linked to her provider');
    const sentAt = a.events.length;
    a.send({ op: 'send', to: id('bob'), text: 'hello bob, from behind the NAT' });
    const sent = (await a.next((e) => e.ev === 'sent' || e.ev === 'error', 'send', sentAt)) as RunnerEvent & { m?: { id: string }; message?: string };
    expect(sent.ev, sent.message).toBe('sent');
    const provB = runners.find((r) => r.name === 'provB')!;
    await waitUntil(async () => ((await provB.status(id('bob'))).mailbox === 1 ? true : undefined), 'the message waiting at Bob\'s provider');

    // Bob comes online, fetches from his provider, reads and answers through the SURB.
    const b = await start('bob', { home: id('provB') });
    const got = (await b.next((e) => e.ev === 'message', 'Bob receives')).m as { id: string; text: string; contact: string; canReply: boolean };
    expect(got.text).toBe('hello bob, from behind the NAT');
    expect(got.contact).toBe(id('alice'));
    expect(got.canReply).toBe(true);
    b.send({ op: 'reply', id: got.id, text: 'hello alice' });
    const answer = (await a.next((e) => e.ev === 'message', 'the reply reaches Alice')).m as { text: string; inReplyTo: string; contact: string };
    expect(answer.text).toBe('hello alice');
    expect(answer.inReplyTo).toBe(sent.m!.id);
    expect(answer.contact).toBe(id('bob'));

    // Per packet, at every mix and provider: (previous hop, next hop or mailbox).
    const A = id('alice');
    const B = id('bob');
    for (const r of runners.filter((x) => !['alice', 'bob'].includes(x.name))) {
      const ends = new Set(r.packets.flatMap((p) => [p.from, p.to]));
      expect(ends.has(A) && ends.has(B), `${r.name} saw both Alice and Bob`).toBe(false);
      if (r.name.startsWith('mix')) {
        expect(r.packets.length, `${r.name} relayed`).toBeGreaterThanOrEqual(2);
        expect(ends.has(A) || ends.has(B), `${r.name} saw a client`).toBe(false);
      }
    }
    const provA = runners.find((r) => r.name === 'provA')!;
    expect(provA.packets.some((p) => p.from === A)).toBe(true);
    expect(provA.packets.some((p) => p.to === A && p.kind === 'reply')).toBe(true);
    expect(provB.packets.some((p) => p.to === B && p.kind === 'deliver')).toBe(true);
    expect(provB.packets.some((p) => p.from === B)).toBe(true);

    // The same by IP address: the TCP peers of every namespace while both clients are online.
    const ip = (peer: string): string => peer.replace(/:\d+$/, '');
    const peers = new Map(['provA', 'provB', 'mix1', 'mix2', 'mix3'].map((n) => [n, lab.tcpPeers(n).map(ip)]));
    expect(peers.get('provA')).toContain(ROUTER_WAN_IP); // Alice, as the NAT shows her
    expect(peers.get('provB')).toContain(bob.ip);
    for (const [n, ps] of peers) {
      expect(ps.includes(ROUTER_WAN_IP) && ps.includes(bob.ip), `${n} is linked to both Alice and Bob`).toBe(false);
      expect(ps, `${n} saw Alice's private address`).not.toContain(alice.ip);
      if (n.startsWith('mix')) expect(ps.some((p) => p === ROUTER_WAN_IP || p === bob.ip), `${n} is linked to a client`).toBe(false);
    }

    // Alice's loops crossed the NAT and every layer and came back; none was lost.
    const loops = await waitUntil(async () => {
      const c = (await a.status()).cover as { loops: { returned: number; lost: number } } | null;
      return c && c.loops.returned >= 5 ? c.loops : undefined;
    }, 'Alice\'s loops back', 30_000);
    expect(loops.lost).toBe(0);
  });
});
