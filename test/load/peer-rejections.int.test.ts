/**
 * Issue 17.2: strangers cannot flood the event stream. Thousands of garbage connections to a
 * real daemon's peer-node port (real websocket clients sending bytes that are no Noise
 * handshake) reach subscribers as a bounded number of `node.peer.rejected` summaries whose counts
 * add up, and a wallet event published before them is still in the `?replay=1` history.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { freePort, startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createNodeFeature } from '../../src/node/feature.js';
import { createKeystore } from '../../src/wallet/keystore.js';
import type { DaemonEvent } from '../../src/util/event-bus.js';
import { waitUntil } from '../support/wait.js';

const PASS = 'rejections test passphrase';
const GARBAGE = 3_000;
const SUMMARY_MS = 1_000;

/** One stranger: upgrades, sends bytes that are not a handshake, waits for the server to close. */
function garbageConnection(url: string): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const done = (): void => {
      ws.terminate();
      resolve();
    };
    ws.once('open', () => ws.send(randomBytes(48)));
    ws.once('close', done);
    ws.once('error', done);
    setTimeout(done, 15_000).unref();
  });
}

function subscribe(api: string, token: string, query: string): Promise<{ ws: WebSocket; events: DaemonEvent[] }> {
  const ws = new WebSocket(`${api.replace('http', 'ws')}/events${query}`, { headers: { authorization: `Bearer ${token}` } });
  const events: DaemonEvent[] = [];
  ws.on('message', (m) => events.push(JSON.parse(String(m)) as DaemonEvent));
  return new Promise((resolve, reject) => ws.once('open', () => resolve({ ws, events })).once('error', reject));
}

describe('connections rejected by the peer node', () => {
  const datadir = mkdtempSync(join(tmpdir(), 'dd-reject-'));
  let node: RegtestNode;
  let daemon: Daemon;
  let token: string;
  let nodePort: number;

  beforeAll(async () => {
    node = await startRegtestNode();
    await createKeystore(datadir, { passphrase: PASS, network: 'regtest', scrypt: { N: 2 ** 10, r: 8, p: 1 } });
    nodePort = await freePort();
    daemon = new Daemon({
      datadir, network: 'regtest', backendUrl: node.backendUrl, passphrase: async () => PASS,
      features: [createNodeFeature({ port: nodePort, rejectionSummaryMs: SUMMARY_MS })],
    });
    await daemon.ready();
    token = readFileSync(join(datadir, 'api.token'), 'utf8').trim();
  });

  afterAll(async () => {
    await daemon?.close();
    await node?.stop();
    rmSync(datadir, { recursive: true, force: true });
  });

  it(`${GARBAGE} garbage connections: bounded summaries with exact counts, the wallet event stays in the replay`, { timeout: 120_000 }, async () => {
    // A wallet event a user cares about, published before the flood.
    const address = await daemon.wallet!.newReceiveAddress();
    await node.fund(address, 100_000n, { confirm: true });
    const walletEvent = await waitUntil(() => daemon.events.history('wallet.changed').at(-1), 'wallet.changed');

    const live = await subscribe(daemon.apiUrl, token, '?types=node.peer.rejected');
    const t0 = Date.now();
    const url = `ws://127.0.0.1:${nodePort}`;
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < GARBAGE) {
        next++;
        await garbageConnection(url);
      }
    }));
    const floodMs = Date.now() - t0;
    // Every rejection is counted in some summary, at most one summary per interval.
    const counted = (): number => live.events.reduce((n, e) => n + ((e.data['count'] as number | undefined) ?? 1), 0);
    await waitUntil(() => (counted() >= GARBAGE ? true : undefined), `summaries counting ${GARBAGE} rejections (got ${counted()})`, 3 * SUMMARY_MS + 5_000);
    live.ws.close();
    const elapsed = Date.now() - t0;
    console.error(`${GARBAGE} garbage connections in ${floodMs} ms; ${live.events.length} summaries`);
    expect(live.events.every((e) => e.type === 'node.peer.rejected')).toBe(true);
    expect(counted()).toBe(GARBAGE);
    expect(live.events.length).toBeLessThanOrEqual(Math.ceil(elapsed / SUMMARY_MS) + 1);
    expect(new Set(live.events.map((e) => e.id)).size).toBe(live.events.length);
    expect(Object.keys(live.events[0]!.data['reasons'] as object).length).toBeGreaterThan(0);

    const replay = await subscribe(daemon.apiUrl, token, '?replay=1');
    await new Promise((r) => setTimeout(r, 500));
    replay.ws.close();
    expect(replay.events.map((e) => e.id)).toContain(walletEvent.id);
    expect(replay.events.filter((e) => e.type === 'node.peer.rejected').length).toBeLessThanOrEqual(live.events.length);
  });
});
