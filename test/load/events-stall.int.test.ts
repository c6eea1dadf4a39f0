/**
 * Issue 17.1: slow `/events` subscribers must not stall the daemon. Twenty websocket clients
 * that never read (2 KiB receive buffers, in a separate process) subscribe while about 3,500
 * events/s flow through a real daemon's EventBus (published in the daemon's process, as its
 * features do); another process probes `/status` open-loop every 20 ms for 42 s, long enough
 * to cover the old 30 s close timeout after the drop and the teardown that followed it, and
 * reads the stream as a well-behaved subscriber. The daemon must stay responsive, cut the
 * stalled clients off promptly, and keep serving the client that reads.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Daemon } from '../../src/daemon/daemon.js';
import { startSlowClients, type SlowClients } from '../support/slow-clients.js';
import { waitUntil } from '../support/wait.js';
import { regtestBackend } from '../../src/cli/regtest-backend.js';

const STALLED = 20;
const RATE = 3_500;
const RUN_MS = 42_000;
const PROBE_EVERY_MS = 20;
const PROBE = fileURLToPath(new URL('../support/api-probe.mjs', import.meta.url));

interface ProbeResult {
  latencies: number[];
  perSecond: number[];
  failures: string[];
  received: number;
  outOfOrder: number;
  readerClosed: boolean;
}

/** A drop-sized event body (about 400 bytes of JSON, like drop.pending). */
function dropLike(i: number): Record<string, unknown> {
  return {
    identity: 'default', txid: i.toString(16).padStart(64, '0'), vout: 0,
    payload: { endpoints: ['ws://198.51.100.7:9000'], message: 'load test '.repeat(8), token: 'ab'.repeat(16), nodeKey: 'cd'.repeat(32) },
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe('slow /events subscribers under load', () => {
  const datadir = mkdtempSync(join(tmpdir(), 'dd-load-'));
  let daemon: Daemon;
  let token: string;
  let slow: SlowClients | undefined;

  beforeAll(async () => {
    daemon = new Daemon({ datadir, network: 'regtest', resolveBackend: regtestBackend(datadir, 'regtest') });
    await daemon.ready();
    token = readFileSync(join(datadir, 'api.token'), 'utf8').trim();
  });

  afterAll(async () => {
    await slow?.stop();
    await daemon?.close();
    rmSync(datadir, { recursive: true, force: true });
  });

  it(`keeps /status under 250 ms at p99 while ${STALLED} stalled subscribers are cut off`, { timeout: 120_000 }, async () => {
    const before = daemon.events.subscriberCount;
    slow = await startSlowClients('stalled-ws', daemon.apiUrl, STALLED, { path: '/events', token });
    expect(slow.opened).toBe(STALLED);
    await waitUntil(() => (daemon.events.subscriberCount >= before + STALLED ? true : undefined), 'stalled subscribers registered', 10_000);

    const probe = spawn(process.execPath, [PROBE, daemon.apiUrl, token, String(RUN_MS), String(PROBE_EVERY_MS), 'load.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: probe.stdout });
    const output: string[] = [];
    const ready = new Promise<void>((resolve) => lines.on('line', (l) => (l === 'ready' ? resolve() : output.push(l))));
    const done = new Promise<number | null>((resolve) => probe.once('exit', resolve));
    await ready;
    await waitUntil(() => (daemon.events.subscriberCount >= before + STALLED + 1 ? true : undefined), 'the reader subscribed', 10_000);

    let published = 0;
    const t0 = performance.now();
    const publisher = setInterval(() => {
      const due = Math.floor((Math.min(performance.now() - t0, RUN_MS) / 1000) * RATE);
      for (; published < due; published++) daemon.events.publish('load.event', `load:${published}`, { seq: published, ...dropLike(published) });
    }, 5);
    let droppedAfterMs = -1;
    while (performance.now() - t0 < RUN_MS) {
      await new Promise((r) => setTimeout(r, 100));
      if (droppedAfterMs < 0 && daemon.events.subscriberCount <= before + 1) droppedAfterMs = performance.now() - t0;
    }
    clearInterval(publisher);
    expect(await done).toBe(0);
    const result = JSON.parse(output.at(-1)!) as ProbeResult;

    const sorted = [...result.latencies].sort((a, b) => a - b);
    const p99 = percentile(sorted, 99);
    console.error(`events published ${published} (${Math.round(published / (RUN_MS / 1000))}/s); /status n=${sorted.length} p50=${percentile(sorted, 50).toFixed(1)} ms p99=${p99.toFixed(1)} ms max=${sorted.at(-1)!.toFixed(1)} ms; stalled clients dropped after ${Math.round(droppedAfterMs)} ms`);
    console.error(`worst /status latency per second: ${result.perSecond.join(' ')}`);
    expect(result.failures).toEqual([]);
    expect(published).toBeGreaterThan(RATE * (RUN_MS / 1000) * 0.9);
    expect(sorted.length).toBe(RUN_MS / PROBE_EVERY_MS);
    expect(sorted.at(-1)!).toBeLessThan(2_000); // no stall of seconds at any point
    expect(p99).toBeLessThan(250);
    // The stalled clients were cut off, promptly; the reader kept everything, in order.
    expect(droppedAfterMs).toBeGreaterThan(0);
    expect(droppedAfterMs).toBeLessThan(15_000);
    expect(result.readerClosed).toBe(false);
    expect(result.received).toBe(published);
    expect(result.outOfOrder).toBe(0);
  });
});
