/**
 * Two daemons in "Tor only" mode, on a private Tor network (test/support/tor-network.ts) and a
 * regtest btcd, sharing nothing but invites: they meet through a drop whose only endpoint is the
 * 3-byte onion hint, replicate feeds and exchange whereabouts with every connection between them
 * going through Tor, never learn each other's clear-net address, find each other again through the
 * onion after a restart on a new port, and survive their tor process dying.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../../src/daemon/daemon.js';
import { nodeIssuer } from '../../../src/node/drop-introduction.js';
import { createDropFeature } from '../../../src/deaddrop/feature.js';
import { onionAddress } from '../../../src/deaddrop/endpoint.js';
import { createNodeFeature } from '../../../src/node/feature.js';
import type { NodeFeatureOptions } from '../../../src/node/feature.js';
import { createKeystore } from '../../../src/wallet/keystore.js';
import { freePort, startRegtestNode } from '../../../src/regtest/harness.js';
import type { RegtestNode } from '../../../src/regtest/harness.js';
import { startTorNetwork, torAvailable } from '../../support/tor-network.js';
import type { TorNetwork } from '../../support/tor-network.js';
import { waitUntil } from '../../support/wait.js';
import { runCli } from '../../support/cli.js';
import { callApi } from '../../support/api.js';
import { fromHex } from '../../../src/util/bytes.js';

const PASS = 'tor daemon test passphrase';
const HAVE_TOR = torAvailable();

interface Peer {
  readonly name: string;
  readonly datadir: string;
  daemon: Daemon;
  token: string;
  port: number;
  /** Runs without Tor (a clear-net node). */
  clear?: boolean;
}

interface TorStatus {
  enabled: boolean;
  only: boolean;
  port: number;
  bootstrapped: boolean;
  restarts: number;
  onions: { address: string; kind: string }[];
  peers: { node: string; via: string }[];
}

interface ContactJson {
  node: string;
  endpoints: string[];
  connected: boolean;
  whereaboutsSeq: number;
}

let root: string;
let net: TorNetwork;
let btc: RegtestNode;
const peers: Peer[] = [];

const api = callApi;

function options(p: Peer): NodeFeatureOptions {
  return {
    port: p.port, reconnectMinMs: 500, reconnectMaxMs: 3000, retryMinMs: 1000, retryMaxMs: 5000, inviteWaitMs: 30_000,
    ...(p.clear ? {} : { tor: { only: true, torrc: net.clientTorrc } }),
  };
}

async function startDaemon(p: Peer): Promise<void> {
  p.daemon = new Daemon({
    datadir: p.datadir, network: 'regtest', backendUrl: btc.backendUrl, passphrase: async () => PASS,
    features: [createDropFeature({ issuer: nodeIssuer }), createNodeFeature(options(p))],
  });
  await p.daemon.ready();
  p.token = readFileSync(join(p.datadir, 'api.token'), 'utf8').trim();
}

async function newPeer(name: string, clear = false): Promise<Peer> {
  const datadir = join(root, name);
  await createKeystore(datadir, { passphrase: PASS, network: 'regtest', scrypt: { N: 2 ** 10, r: 8, p: 1 } });
  const p: Peer = { name, datadir, daemon: undefined as unknown as Daemon, token: '', port: await freePort(), clear };
  peers.push(p);
  await startDaemon(p);
  return p;
}

const nodeId = async (p: Peer): Promise<string> => (await api<{ id: string }>(p, 'GET', '/node')).id;
const torStatus = (p: Peer): Promise<TorStatus> => api<TorStatus>(p, 'GET', '/node/tor');
/** The Tor part of the daemon's `/status`. */
const statusTor = async (p: Peer): Promise<TorStatus | { enabled: false }> => (await api<{ tor: TorStatus | { enabled: false } }>(p, 'GET', '/status')).tor;
const contacts = async (p: Peer): Promise<ContactJson[]> => (await api<{ contacts: ContactJson[] }>(p, 'GET', '/node/contacts')).contacts;

async function contactOf(p: Peer, other: Peer): Promise<ContactJson | undefined> {
  const id = await nodeId(other);
  return (await contacts(p)).find((c) => c.node === id);
}

/** Established TCP connections to `port` on 127.0.0.1, each with the name of the process that opened it. */
function connectionsTo(port: number): { process: string; pid: number }[] {
  const out = execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(l);
    return { process: m?.[1] ?? '?', pid: Number(m?.[2] ?? -1) };
  });
}

/** Every file of a datadir as latin1 text (sqlite, WAL, logs), for "is this string stored?" checks. */
function storedText(dir: string): string {
  let text = '';
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (name.startsWith('tor') || !statSync(path).isFile()) continue;
    text += readFileSync(path).toString('latin1');
  }
  return text;
}

async function appendAndSee(author: Peer, reader: Peer, text: string, timeoutMs = 60_000): Promise<number> {
  const id = await nodeId(author);
  const t0 = performance.now();
  const { entry } = await api<{ entry: { seq: number } }>(author, 'POST', '/node/log', { type: 'post', app: 'test', json: { text } });
  await waitUntil(async () => {
    const log = await api<{ entries: { seq: number; json?: { text?: string } }[] }>(reader, 'GET', `/node/log/${id}?from=${entry.seq}&limit=1`).catch(() => null);
    return log?.entries[0]?.json?.text === text ? true : undefined;
  }, `${reader.name} to replicate ${author.name}#${entry.seq}`, timeoutMs, 100);
  return performance.now() - t0;
}

describe.skipIf(!HAVE_TOR)('two daemons that meet and talk only through Tor', () => {
  let a: Peer;
  let b: Peer;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'dd-tor-daemons-'));
    [net, btc] = await Promise.all([startTorNetwork(), startRegtestNode()]);
    console.log(`private Tor network ready in ${net.startSeconds.toFixed(1)} s`);
  }, 180_000);

  afterAll(async () => {
    for (const p of peers) await p.daemon?.close().catch(() => undefined);
    await btc?.stop();
    await net?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
    // nothing of this file's tor network or daemons' tors is left running
    const left = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n').filter((l) => root && l.includes(root));
    expect(left).toEqual([]);
  });

  it('meet through a drop whose only endpoint is the 3-byte onion hint, replicate, exchange whereabouts, all through Tor', async () => {
    const t0 = Date.now();
    [a, b] = await Promise.all([newPeer('alice'), newPeer('bob')]);
    await waitUntil(async () => ((await torStatus(a)).bootstrapped && (await torStatus(b)).bootstrapped ? true : undefined), 'both tors bootstrapped', 120_000, 250);
    console.log(`two daemons with their own tor bootstrapped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // in Tor-only mode a node announces its onion only: its own key's onion, nothing clear-net
    const aEndpoints = (await api<{ endpoints: string[] }>(a, 'GET', '/node')).endpoints;
    expect(aEndpoints).toEqual([`ws://${onionAddress(fromHex(await nodeId(a)))}.onion`]);
    expect((await torStatus(a)).onions).toContainEqual({ address: `${onionAddress(fromHex(await nodeId(a)))}.onion`, kind: 'node' });

    const { address } = await api<{ address: string }>(a, 'POST', '/wallet/address');
    await btc.fund(address, 200_000, { confirm: true });
    await waitUntil(async () => (Number((await api<{ confirmed: string }>(a, 'GET', '/wallet/balance')).confirmed) >= 200_000 ? true : undefined), 'alice funded', 30_000);

    // out of band: bob's invite reaches alice
    const { uri } = await api<{ uri: string }>(b, 'GET', '/invite');
    // Tor-only: a clear-net endpoint is refused, by the API and by the CLI (one line, before any
    // passphrase), and opting out of the onion leaves nothing to announce
    await expect(api(a, 'POST', '/drops/send', { recipient: uri, endpoints: ['ws://127.0.0.1:9'] })).rejects.toThrow(/400 .*Tor-only.*clear-net/);
    await expect(api(a, 'POST', '/drops/send', { recipient: uri, endpoints: [], onion: false })).rejects.toThrow(/400 .*at least one/);
    const refused = await runCli(['--datadir', a.datadir, '--network', 'regtest', 'drop', 'send', uri, '--endpoint', 'ws://127.0.0.1:9']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/Tor-only.*clear-net.*ws:\/\/127\.0\.0\.1:9/);
    expect((await api<{ introductions: unknown[] }>(a, 'GET', '/drops/sent')).introductions).toEqual([]);
    // with Tor on, the drop announces the introduction's onion by default, in canonical form
    const sent = await api<{ nodeKey: string; endpoints: string[] }>(a, 'POST', '/drops/send', { recipient: uri, endpoints: [], message: 'via tor' });
    const introOnion = `ws://${onionAddress(fromHex(sent.nodeKey))}.onion`;
    expect(sent.endpoints).toEqual([introOnion]);
    // alice's daemon publishes the introduction's onion (key: the pairwise key)
    await waitUntil(async () => ((await torStatus(a)).onions.some((o) => `ws://${o.address}` === introOnion && o.kind === 'introduction') ? true : undefined), 'the introduction onion', 30_000);
    const tSent = Date.now();
    await btc.mine(1);

    await waitUntil(async () => ((await contactOf(a, b))?.connected && (await contactOf(b, a))?.connected ? true : undefined), 'alice <-> bob over Tor', 150_000, 250);
    console.log(`drop mined to contact over Tor: ${((Date.now() - tSent) / 1000).toFixed(1)} s`);
    const drops = await api<{ drops: { nodeKey: string; endpoints: string[] }[] }>(b, 'GET', '/drops');
    expect(drops.drops.map((d) => d.endpoints)).toEqual([[introOnion]]);

    console.log(`replication over Tor: ${(await appendAndSee(a, b, 'hello from alice over tor')).toFixed(0)} ms`);
    console.log(`replication over Tor: ${(await appendAndSee(b, a, 'hello from bob over tor')).toFixed(0)} ms`);

    // whereabouts: each knows the other at its node onion, from a signed record
    const aOnion = `ws://${onionAddress(fromHex(await nodeId(a)))}.onion`;
    const bOnion = `ws://${onionAddress(fromHex(await nodeId(b)))}.onion`;
    await waitUntil(async () => {
      const [x, y] = [await contactOf(b, a), await contactOf(a, b)];
      return x?.endpoints.includes(aOnion) && x.whereaboutsSeq > 0 && y?.endpoints.includes(bOnion) && y.whereaboutsSeq > 0 ? true : undefined;
    }, 'whereabouts with onion endpoints', 60_000);

    // sockets: every connection to either node port was opened by a tor process, none by the daemons
    // (one session joins them: its connection goes to whichever node was dialed)
    const conns = [...connectionsTo(a.port), ...connectionsTo(b.port)];
    expect(conns.length).toBeGreaterThan(0);
    for (const c of conns) expect(c).toMatchObject({ process: 'tor' });
    expect(conns.some((c) => c.pid === process.pid)).toBe(false);
    // status: tor bootstrapped, the peer reached through Tor or it dialed us over our onion
    const st = await torStatus(b);
    expect(st.peers.map((x) => x.via).every((v) => v === 'tor' || v === 'inbound')).toBe(true);
    expect(st.peers.length).toBe(1);
    // `/status` says the same: bootstrapped, tor only, the published onions, how the peer was reached
    const full = await statusTor(b);
    expect(full).toMatchObject({ enabled: true, only: true, port: 80, bootstrapped: true });
    expect((full as TorStatus).onions).toContainEqual({ address: bOnion.slice('ws://'.length), kind: 'node' });
    expect((full as TorStatus).peers).toEqual([{ node: await nodeId(a), via: expect.stringMatching(/^(tor|inbound)$/) }]);
    // and so does `deaddrop node status`
    const shown = await runCli(['--datadir', b.datadir, '--network', 'regtest', 'node', 'status']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('tor: bootstrapped, tor only');
    expect(shown.stdout).toContain(`onion (node): ${bOnion.slice('ws://'.length)}`);
    expect(shown.stdout).toMatch(new RegExp(`peer ${(await nodeId(a)).slice(0, 12)}: (dialed through Tor|it dialed us)`));
  });

  it('neither daemon stores or reports a clear-net endpoint of the other', async () => {
    for (const [me, other] of [[a, b], [b, a]] as const) {
      const c = await contactOf(me, other);
      for (const e of c!.endpoints) expect(e).toMatch(/^ws:\/\/[a-z2-7]{56}\.onion$/);
      const stored = storedText(me.datadir);
      expect(stored).not.toContain(`127.0.0.1:${other.port}`);
      expect(stored).not.toContain(`localhost:${other.port}`);
      const seen = await api<{ whereabouts?: unknown }>(me, 'GET', '/node/whereabouts');
      expect(JSON.stringify(seen)).not.toContain(`:${other.port}`);
    }
  });

  it('a daemon restarted on a new port is found again through its onion, unchanged', async () => {
    const aId = await nodeId(a);
    const before = (await contactOf(b, a))!;
    await a.daemon.close();
    a.port = await freePort();
    await startDaemon(a);
    expect((await api<{ endpoints: string[] }>(a, 'GET', '/node')).endpoints).toEqual(before.endpoints.slice(0, 1));
    await waitUntil(async () => ((await contactOf(b, a))?.connected && (await contactOf(a, b))?.connected ? true : undefined), 'alice found again', 150_000, 250);
    expect((await contactOf(b, a))!.node).toBe(aId);
    await appendAndSee(a, b, 'back after a restart');
    for (const c of connectionsTo(a.port)) expect(c.process).toBe('tor');
  });

  it('a tor process that dies is noticed and restarted, the onions come back, and no entry is lost', async () => {
    const entriesBefore = (await api<{ feeds: { author?: string; length: number }[] }>(b, 'GET', '/node/feeds')).feeds;
    const torLine = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n').find((l) => l.includes(join(a.datadir, 'tor', 'torrc')));
    const torPid = Number(torLine?.trim().split(/\s+/)[0]);
    expect(torPid).toBeGreaterThan(0);
    process.kill(torPid, 'SIGKILL');
    await waitUntil(async () => {
      const s = await torStatus(a);
      return s.restarts >= 1 && s.bootstrapped && s.onions.some((o) => o.kind === 'node') ? true : undefined;
    }, 'alice to restart tor and publish again', 120_000, 250);
    await waitUntil(async () => ((await contactOf(b, a))?.connected && (await contactOf(a, b))?.connected ? true : undefined), 'alice and bob together again', 150_000, 250);
    await appendAndSee(a, b, 'after tor died');
    const entriesAfter = (await api<{ feeds: { length: number }[] }>(b, 'GET', '/node/feeds')).feeds;
    expect(entriesAfter.reduce((n, f) => n + f.length, 0)).toBe(entriesBefore.reduce((n, f) => n + f.length, 0) + 1);
  });

  it('in Tor-only mode a clear-net endpoint in a drop is never dialed directly', async () => {
    // The private network's exits allow only 127.0.0.0/8, so tor clients see "no consensus with
    // exits" and a clear-net endpoint cannot be reached through Tor here at all: what this shows is
    // that alice tries (through SOCKS) and never falls back to a direct connection.
    const c = await newPeer('carol', true);
    const cEndpoint = `ws://127.0.0.1:${c.port}`;
    expect((await api<{ endpoints: string[] }>(c, 'GET', '/node')).endpoints).toEqual([cEndpoint]);
    const { address } = await api<{ address: string }>(c, 'POST', '/wallet/address');
    await btc.fund(address, 200_000, { confirm: true });
    await waitUntil(async () => (Number((await api<{ confirmed: string }>(c, 'GET', '/wallet/balance')).confirmed) >= 200_000 ? true : undefined), 'carol funded', 30_000);
    const { uri } = await api<{ uri: string }>(a, 'GET', '/invite');
    // carol runs without Tor: `/status` says so, and her drop announces no onion by default
    expect(await statusTor(c)).toEqual({ enabled: false });
    const sent = await api<{ nodeKey: string; endpoints: string[] }>(c, 'POST', '/drops/send', { recipient: uri, endpoints: [cEndpoint], message: 'clear' });
    expect(sent.endpoints).toEqual([cEndpoint]);
    await btc.mine(1);
    const intro = await waitUntil(async () => {
      const r = await api<{ introductions: { nodeKey: string; status: string; attempts: number; lastError: string | null }[] }>(a, 'GET', '/node/introductions');
      const x = r.introductions.find((i) => i.nodeKey === sent.nodeKey);
      return x && x.attempts >= 1 ? x : undefined;
    }, 'alice to try carol\'s introduction (a SOCKS attempt gives up after 60 s)', 170_000, 500);
    expect(intro.status).toBe('pending');
    expect(intro.lastError).toMatch(/proxy|socks/i);
    expect(connectionsTo(c.port).filter((x) => x.pid === process.pid)).toEqual([]);
    expect(await contactOf(a, c)).toBeUndefined();
  });
});
