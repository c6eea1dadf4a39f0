/**
 * The `/events` stream's bounds (issue 17.1), over a real loopback websocket: a full replay
 * history is delivered, not mistaken for a slow client; a subscriber that stops reading is cut
 * off (socket destroyed) once its queue passes the event bound, while one that reads keeps
 * everything.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { buildApp, listenLoopback } from '../../src/api/app.js';
import { writeApiToken } from '../../src/api/token.js';
import { EventBus } from '../../src/util/event-bus.js';
import type { DaemonStatus } from '../../src/api/services.js';
import { waitUntil } from '../support/wait.js';

const status: DaemonStatus = {
  version: '0.1.0', network: 'regtest', backend: { kind: 'btcd', capabilities: { fullBlocks: true } },
  tip: { height: 1, hash: '00'.repeat(32) }, synced: true, uptimeSeconds: 0, secp: 'native',
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function api(bus: EventBus): Promise<{ ws: (query: string) => Promise<{ ws: WebSocket; got: string[] }> }> {
  const dir = mkdtempSync(join(tmpdir(), 'dd-stream-'));
  const token = writeApiToken(dir);
  const app = await buildApp({ token, services: { status: { status: async () => status }, events: bus } });
  const url = await listenLoopback(app);
  cleanups.push(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    ws: async (query) => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/events${query}`, { headers: { authorization: `Bearer ${token}` } });
      const got: string[] = [];
      ws.on('message', (m) => got.push((JSON.parse(String(m)) as { id: string }).id));
      ws.on('error', () => undefined);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      cleanups.push(async () => void ws.terminate());
      return { ws, got };
    },
  };
}

describe('/events stream bounds', () => {
  it('delivers a full replay history (thousands of events of many kinds) without cutting the client', async () => {
    const bus = new EventBus(256);
    for (const kind of ['drop', 'paypub', 'wallet', 'chain', 'node', 'watch', 'a', 'b', 'c', 'd', 'e', 'f']) {
      for (let i = 0; i < 300; i++) bus.publish(`${kind}.x`, `${kind}:${i}`, { i, pad: 'x'.repeat(200) });
    }
    const expected = bus.history().map((e) => e.id);
    expect(expected.length).toBeGreaterThan(2048 + 256);
    const { ws, got } = await (await api(bus)).ws('?replay=1');
    let closed = false;
    ws.on('close', () => (closed = true));
    await waitUntil(() => (got.length >= expected.length ? true : undefined), `the whole replay (${got.length}/${expected.length})`, 10_000);
    bus.publish('drop.y', 'live:1', {});
    await waitUntil(() => (got.at(-1) === 'live:1' ? true : undefined), 'a live event after the replay', 5_000);
    expect(got.slice(0, expected.length)).toEqual(expected);
    expect(closed).toBe(false);
  });

  it('cuts a subscriber that stopped reading at once, and keeps serving one that reads', async () => {
    const bus = new EventBus();
    const server = await api(bus);
    const stalled = await server.ws('');
    const reader = await server.ws('');
    let stalledClosedAt = 0;
    stalled.ws.on('close', () => (stalledClosedAt = performance.now()));
    // Stop reading: the client's socket no longer drains, so the server's writes pile up.
    const raw = (stalled.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    const subscribers = bus.subscriberCount;
    const t0 = performance.now();
    let n = 0;
    const body = { pad: 'y'.repeat(1000) };
    while (bus.subscriberCount === subscribers && performance.now() - t0 < 20_000) {
      for (let i = 0; i < 200; i++) bus.publish('load.x', `e${n++}`, body);
      await new Promise((r) => setImmediate(r));
    }
    expect(bus.subscriberCount).toBe(subscribers - 1);
    await waitUntil(() => (reader.got.length === n ? true : undefined), `the reader to get all ${n} events (${reader.got.length})`, 10_000);
    // Once it reads again, the stalled client finds its connection closed at once (the server
    // destroyed the socket; it did not queue a close frame and wait 30 s).
    raw.resume();
    await waitUntil(() => (stalledClosedAt > 0 ? true : undefined), 'the stalled client to see its socket closed', 5_000);
  });
});
