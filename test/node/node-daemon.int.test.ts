/**
 * Three daemons (separate datadirs, loopback ports, nothing shared but a regtest node and the
 * invites handed over out of band) find each other only through dead drops on chain, replicate
 * each other's feeds, find a moved node again through whereabouts, and fall back to beacon drops
 * when nobody can reach anybody, and spread the proof of a forked feed. Everything goes through the daemons' HTTP API and event stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Daemon } from '../../src/daemon/daemon.js';
import { createDropFeature } from '../../src/deaddrop/feature.js';
import { createNodeFeature, type NodeFeatureOptions } from '../../src/node/feature.js';
import { nodeIssuer } from '../../src/node/drop-introduction.js';
import { introductionFromDrop, nodeSeed } from '../../src/node/drop-introduction.js';
import { PeerNode } from '../../src/node/node.js';
import { randomBytes, utf8, wipe } from '../../src/node/crypto.js';
import { NodeIdentity } from '../../src/node/identity.js';
import { createEntry } from '../../src/node/log/codec.js';
import { dial } from '../../src/node/transport/ws-transport.js';
import { MSG, encodeEntries } from '../../src/node/wire.js';
import { createKeystore } from '../../src/wallet/keystore.js';
import { sendDrop } from '../../src/deaddrop/send.js';
import { parseInvite } from '../../src/deaddrop/invite.js';
import { freePort, startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { callApi } from '../support/api.js';
import { fromHex } from '../../src/util/bytes.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('peer node daemons on %s', (kind) => {
  useNodeKind(kind);

  const PASS = 'node daemon test passphrase';
  const root = mkdtempSync(join(tmpdir(), 'dd-node-daemon-'));

  interface Peer {
    readonly name: string;
    readonly datadir: string;
    daemon: Daemon;
    token: string;
    port: number;
  }

  interface Contact {
    node: string;
    endpoints: string[];
    connected: boolean;
    spAddress: string | null;
    whereaboutsSeq: number;
  }

  let btc: RegtestNode;
  const peers: Peer[] = [];
  const sockets = new Set<WebSocket>();

  const api = callApi;

  function featureOptions(extra: NodeFeatureOptions): NodeFeatureOptions {
    return { reconnectMinMs: 200, reconnectMaxMs: 1000, retryMinMs: 300, retryMaxMs: 2000, inviteWaitMs: 3000, ...extra };
  }

  async function startDaemon(p: Peer, extra: NodeFeatureOptions): Promise<void> {
    p.daemon = new Daemon({
      datadir: p.datadir,
      network: 'regtest',
      backendUrl: btc.backendUrl,
      passphrase: async () => PASS,
      features: [createDropFeature({ issuer: nodeIssuer }), createNodeFeature(featureOptions({ port: p.port, ...extra }))],
    });
    await p.daemon.ready();
    p.token = readFileSync(join(p.datadir, 'api.token'), 'utf8').trim();
  }

  async function newPeer(name: string): Promise<Peer> {
    const datadir = join(root, name);
    await createKeystore(datadir, { passphrase: PASS, network: 'regtest', scrypt: { N: 2 ** 10, r: 8, p: 1 } });
    const p: Peer = { name, datadir, daemon: undefined as unknown as Daemon, token: '', port: await freePort() };
    await startDaemon(p, {});
    peers.push(p);
    return p;
  }

  async function restart(p: Peer, extra: NodeFeatureOptions = {}): Promise<void> {
    p.port = await freePort();
    await startDaemon(p, extra);
  }

  async function nodeId(p: Peer): Promise<string> {
    return (await api<{ id: string }>(p, 'GET', '/node')).id;
  }

  async function endpoints(p: Peer): Promise<string[]> {
    return (await api<{ endpoints: string[] }>(p, 'GET', '/node')).endpoints;
  }

  async function contacts(p: Peer): Promise<Contact[]> {
    return (await api<{ contacts: Contact[] }>(p, 'GET', '/node/contacts')).contacts;
  }

  async function connected(a: Peer, b: Peer): Promise<boolean> {
    const id = await nodeId(b);
    return (await contacts(a)).some((c) => c.node === id && c.connected);
  }

  async function fund(p: Peer, sats: number): Promise<void> {
    const { address } = await api<{ address: string }>(p, 'POST', '/wallet/address');
    await btc.fund(address, sats, { confirm: true });
    await waitUntil(async () => Number((await api<{ confirmed: string }>(p, 'GET', '/wallet/balance')).confirmed) >= sats, `${p.name} funded`, { timeoutMs: 20_000, intervalMs: 50 });
  }

  /** `from` leaves an introduction for `to` (whose invite it got out of band) and a block confirms it. */
  async function introduce(from: Peer, to: Peer): Promise<void> {
    const { uri } = await api<{ uri: string }>(to, 'GET', '/invite');
    const sent = await api<{ nodeKey: string }>(from, 'POST', '/drops/send', { recipient: uri, endpoints: await endpoints(from), message: `from ${from.name}` });
    expect(sent.nodeKey).toMatch(/^[0-9a-f]{64}$/);
    await btc.mine(1);
  }

  /** A drop from `from`'s wallet to `to` with a payload of our choosing (not a valid invite of `from`'s node). */
  async function sendRawDrop(from: Peer, to: Peer, payload: { token: Uint8Array; expiresAt: number }): Promise<void> {
    const { uri } = await api<{ uri: string }>(to, 'GET', '/invite');
    await sendDrop(from.daemon.wallet!, {
      recipient: parseInvite(uri, 'regtest').address,
      payload: { nodeKey: randomBytes(32), token: payload.token, expiresAt: payload.expiresAt, endpoints: await endpoints(from) },
      feeRate: 2,
    });
  }

  /** Opens the daemon's event stream and records node events with their arrival time. */
  async function events(p: Peer): Promise<{ seen: { type: string; data: Record<string, unknown>; at: number }[]; close: () => void }> {
    const ws = new WebSocket(`${p.daemon.apiUrl.replace('http', 'ws')}/events?types=node.`, { headers: { authorization: `Bearer ${p.token}` } });
    sockets.add(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const seen: { type: string; data: Record<string, unknown>; at: number }[] = [];
    ws.on('message', (m) => {
      const e = JSON.parse(String(m)) as { type: string; data: Record<string, unknown> };
      seen.push({ ...e, at: performance.now() });
    });
    return { seen, close: () => ws.close() };
  }

  /** Appends on `author` and returns how long each of `others` took to report the entry. */
  async function replicationLatencies(author: Peer, others: Peer[], text: string): Promise<number[]> {
    const streams = await Promise.all(others.map(events));
    try {
      const id = await nodeId(author);
      const t0 = performance.now();
      const { entry } = await api<{ entry: { seq: number } }>(author, 'POST', '/node/log', { type: 'post', app: 'test', json: { text } });
      const arrivals = await Promise.all(streams.map((s, i) => waitUntil(() =>
        s.seen.find((e) => e.type === 'node.entry.replicated' && e.data.author === id && e.data.seq === entry.seq)?.at, `${others[i]!.name} has ${author.name}#${entry.seq}`, { timeoutMs: 5000, intervalMs: 50 })));
      for (const o of others) {
        const log = await api<{ entries: { seq: number; json?: { text?: string } }[] }>(o, 'GET', `/node/log/${id}?from=${entry.seq}&limit=1`);
        expect(log.entries[0]?.json?.text).toBe(text);
      }
      return arrivals.map((t) => t - t0);
    } finally {
      for (const s of streams) s.close();
    }
  }

  beforeAll(async () => {
    btc = await startRegtestNode({ kind });
  });

  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    for (const p of peers) await p.daemon?.close().catch(() => undefined);
    await btc?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  describe('three daemons that share nothing but invites', () => {
    let a: Peer;
    let b: Peer;
    let c: Peer;

    it('find each other only through drops on chain and replicate each other within 1 s', async () => {
      [a, b, c] = [await newPeer('alice'), await newPeer('bob'), await newPeer('carol')];
      expect(statSync(join(a.datadir, 'api.url')).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(a.datadir, 'api.url'), 'utf8').trim()).toBe(a.daemon.apiUrl);
      for (const p of [a, b, c]) expect(await contacts(p)).toEqual([]);
      await fund(a, 200_000);
      await fund(b, 200_000);
      await fund(c, 200_000);

      // Out of band: bob's invite reaches alice, carol's reaches alice and bob. Nothing else is shared.
      await introduce(a, b);
      await introduce(a, c);
      await introduce(b, c);
      for (const [x, y] of [[a, b], [a, c], [b, c]] as const) {
        await waitUntil(async () => (await connected(x, y)) && (await connected(y, x)), `${x.name} <-> ${y.name}`, { timeoutMs: 30_000, intervalMs: 50 });
      }
      for (const p of [a, b, c]) expect((await contacts(p)).length).toBe(2);
      const intros = await api<{ introductions: { status: string }[] }>(b, 'GET', '/node/introductions');
      expect(intros.introductions.map((i) => i.status)).toEqual(['done']);

      for (const author of [a, b, c]) {
        const latencies = await replicationLatencies(author, [a, b, c].filter((p) => p !== author), `hello from ${author.name}`);
        for (const ms of latencies) expect(ms).toBeLessThanOrEqual(1000);
      }
      // contact cards: everyone learned every contact's silent-payment address (needed for beacons)
      for (const p of [a, b, c]) {
        await waitUntil(async () => (await contacts(p)).every((x) => x.spAddress?.startsWith('sprt1')), `${p.name} knows its contacts' addresses`, { timeoutMs: 20_000, intervalMs: 50 });
      }
    });

    it('rejects replayed and forged tokens and garbage from strangers, and stays up', async () => {
      const drops = await api<{ drops: { nodeKey: string; token: string; endpoints: string[]; expiresAt: number | null; message: string }[] }>(b, 'GET', '/drops');
      const found = introductionFromDrop(drops.drops[0] as unknown as Record<string, unknown>);
      expect(found).not.toBeNull();
      const stranger = new PeerNode({ seed: randomBytes(32), dbPath: join(root, 'stranger.sqlite'), inviteWaitMs: 3000 });
      await stranger.ready();
      try {
        // the introduction bob already used, replayed by someone who learned it
        const refused = { code: 'REJECTED', message: expect.stringMatching(/refused/) };
        await expect(stranger.bootstrapFromIntroduction(found!.introduction)).rejects.toMatchObject(refused);
        const forged = found!.introduction.token.slice();
        forged[31] = forged[31]! ^ 1;
        await expect(stranger.bootstrapFromIntroduction({ ...found!.introduction, token: forged })).rejects.toMatchObject(refused);
        expect(stranger.contacts()).toEqual([]);
      } finally {
        await stranger.close();
      }
      const [url] = await endpoints(a);
      for (const frame of [Buffer.from('not noise at all'), Buffer.alloc(70_000, 1)]) {
        const ws = new WebSocket(url!);
        ws.on('error', () => undefined);
        await new Promise((r) => ws.once('open', r));
        ws.send(frame);
        await new Promise((r) => ws.once('close', r));
      }
      expect((await contacts(a)).length).toBe(2);

      // an introduction whose token has expired is not even dialed
      const bobStream = await events(b);
      await sendRawDrop(a, b, { token: randomBytes(8), expiresAt: Math.floor(Date.now() / 1000) - 7200 });
      await btc.mine(1);
      await waitUntil(() => bobStream.seen.find((e) => e.type === 'node.introduction.expired'), 'bob skips the expired introduction', { timeoutMs: 20_000, intervalMs: 50 });
      bobStream.close();
      expect(bobStream.seen.filter((e) => e.type.startsWith('node.introduction.') && e.type !== 'node.introduction.expired')).toEqual([]);
      expect((await contacts(b)).length).toBe(2);
      const latencies = await replicationLatencies(a, [b, c], 'still here');
      for (const ms of latencies) expect(ms).toBeLessThanOrEqual(1000);
    });

    it('a node restarted on another port is found again through whereabouts, without a new drop', async () => {
      const before = (await api<{ drops: unknown[] }>(b, 'GET', '/drops')).drops.length;
      const oldEndpoints = await endpoints(a);
      const aId = await nodeId(a);
      const seqBefore = (await contacts(b)).find((x) => x.node === aId)!.whereaboutsSeq;
      await a.daemon.close();
      await restart(a);
      const moved = await endpoints(a);
      expect(moved).not.toEqual(oldEndpoints);
      for (const p of [b, c]) {
        await waitUntil(async () => {
          const x = (await contacts(p)).find((y) => y.node === aId);
          return x?.connected && x.endpoints[0] === moved[0] && x.whereaboutsSeq > seqBefore;
        }, `${p.name} finds alice at ${moved[0]}`, { timeoutMs: 20_000, intervalMs: 50 });
      }
      expect((await api<{ drops: unknown[] }>(b, 'GET', '/drops')).drops.length).toBe(before);
      const latencies = await replicationLatencies(a, [b, c], 'moved');
      for (const ms of latencies) expect(ms).toBeLessThanOrEqual(1000);
    });

    it('when nobody can reach anybody, a beacon drop on chain brings them back together', async () => {
      for (const p of [a, b, c]) await p.daemon.close();
      // everyone moves; alice and bob only know the old addresses of everyone
      await restart(a);
      await restart(b);
      await restart(c, { beaconAfterMs: 1500 });
      const cStream = await events(c);
      const sent = await waitUntil(() => {
        const s = cStream.seen.filter((e) => e.type === 'node.beacon.sent');
        return s.length === 2 ? s : null;
      }, 'carol sends beacon drops', { timeoutMs: 30_000, intervalMs: 50 });
      cStream.close();
      expect(new Set(sent.map((e) => e.data.node))).toEqual(new Set([await nodeId(a), await nodeId(b)]));
      await btc.mine(1);
      for (const [x, y] of [[a, c], [b, c], [a, b]] as const) {
        await waitUntil(async () => (await connected(x, y)) && (await connected(y, x)), `${x.name} <-> ${y.name} after the beacon`, { timeoutMs: 30_000, intervalMs: 50 });
      }
      // alice and bob got back to carol by bootstrapping from her beacon drops (before, alice had
      // found no introduction at all, bob only alice's)
      const carolId = await nodeId(c);
      for (const [p, total] of [[a, 1], [b, 2]] as const) {
        const { introductions } = await api<{ introductions: { status: string; contact: string | null }[] }>(p, 'GET', '/node/introductions');
        expect(introductions.filter((i) => i.status === 'done')).toHaveLength(total);
        expect(introductions.filter((i) => i.status === 'done' && i.contact === carolId)).toHaveLength(1);
      }
      const latencies = await replicationLatencies(c, [a, b], 'found you');
      for (const ms of latencies) expect(ms).toBeLessThanOrEqual(1000);
    });

    it('a contact that signs two histories is caught by the daemon that gets both; the proof reaches the third, nothing is lost', async () => {
      const carolId = await nodeId(c);
      type Log = { feed: { length: number; forked: boolean } | null; entries: { seq: number; hash: string; prev: string }[] };
      const logOf = (p: Peer): Promise<Log> => api<Log>(p, 'GET', `/node/log/${carolId}?from=1&limit=1000`);
      const forkedOn = async (p: Peer): Promise<boolean> =>
        (await api<{ feeds: { author: string; forked: boolean }[] }>(p, 'GET', '/node/feeds')).feeds.some((f) => f.author === carolId && f.forked);
      const before = await logOf(c);
      const n = before.entries.length;
      expect(n).toBeGreaterThanOrEqual(2);
      for (const p of [a, b]) await waitUntil(async () => (await logOf(p)).feed?.length === n, `${p.name} has all of carol's feed`, { timeoutMs: 20_000, intervalMs: 50 });
      for (const p of [a, b, c]) expect(await forkedOn(p)).toBe(false);

      // carol's key (from the same wallet seed) signs a second entry n: same seq and link, other content
      const seed = nodeSeed(c.daemon.walletKeys!);
      const twin = NodeIdentity.fromSeed(seed);
      wipe(seed);
      const head = before.entries[n - 1]!;
      const other = createEntry(twin, { seq: n, prev: fromHex(head.prev), timestamp: Date.now(), header: { type: 'post', app: 'test' }, body: utf8('the other branch') });
      expect(other.hash).not.toEqual(fromHex(head.hash));

      // carol goes away; her twin reaches alice (who knows carol's key as a contact) and shows her the other branch
      await c.daemon.close();
      await waitUntil(async () => !(await contacts(a)).some((x) => x.node === carolId && x.connected), 'alice sees carol gone', { timeoutMs: 20_000, intervalMs: 50 });
      const [aStream, bStream] = [await events(a), await events(b)];
      const ch = await dial((await endpoints(a))[0]!, twin);
      try {
        ch.send(MSG.ENTRIES, encodeEntries([other.raw]));
        const forkOf = (s: typeof aStream) => () => s.seen.find((e) => e.type === 'node.fork.detected' && e.data.author === carolId);
        const onAlice = await waitUntil(forkOf(aStream), 'alice detects the fork', { timeoutMs: 20_000, intervalMs: 50 });
        expect(onAlice.data.seq).toBe(n);
        // bob never saw the other branch: only the proof alice gossiped can tell him
        const onBob = await waitUntil(forkOf(bStream), 'the proof reaches bob', { timeoutMs: 20_000, intervalMs: 50 });
        expect(onBob.data.seq).toBe(n);
      } finally {
        ch.close('local');
        twin.destroy();
        aStream.close();
        bStream.close();
      }
      for (const p of [a, b]) {
        expect(await forkedOn(p)).toBe(true);
        const log = await logOf(p);
        expect(log.feed).toMatchObject({ length: n, forked: true });
        expect(log.entries.map((e) => e.hash)).toEqual(before.entries.map((e) => e.hash));
      }

      // carol comes back: she learns the proof against her own key and keeps everything she wrote
      await restart(c);
      await waitUntil(() => forkedOn(c), 'carol learns the fork proof', { timeoutMs: 30_000, intervalMs: 50 });
      expect((await logOf(c)).entries.map((e) => e.hash)).toEqual(before.entries.map((e) => e.hash));
    });
  });
});
