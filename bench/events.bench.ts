/**
 * Event fan-out of the daemon API (issue 17):
 *
 * - events.fanout.200_subscribers          events/s published on the EventBus and delivered to
 *                                          each of 200 `/events` websocket subscribers
 * - events.fanout.200_subscribers.frames   the same run in websocket frames delivered per second
 *
 * The API is the real fastify app on loopback; the 200 subscribers run in a worker thread (their
 * own event loop, as clients are other processes in real life) and report how many events the
 * slowest of them has received. The publisher keeps at most WINDOW events ahead of the slowest
 * subscriber, so the run measures sustained delivery, not how fast queues fill (a subscriber
 * more than the stream's bound behind would be cut off, which would fail the run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { buildApp, listenLoopback } from '../src/api/app.js';
import { writeApiToken } from '../src/api/token.js';
import { EventBus } from '../src/util/event-bus.js';
import type { DaemonStatus } from '../src/api/services.js';
import type { Emit } from './types.js';

const SUBSCRIBERS = 200;
const EVENTS = 4_000;
const WINDOW = 500;

interface WorkerInput {
  readonly url: string;
  readonly token: string;
  readonly subscribers: number;
}

/** Worker side: opens the subscribers, then reports the slowest one's count every 10 ms. */
async function subscriberWorker(input: WorkerInput): Promise<void> {
  const counts = new Array<number>(input.subscribers).fill(0);
  let closed = 0;
  await Promise.all(counts.map((_, i) => new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`${input.url.replace('http', 'ws')}/events?types=bench.`, { headers: { authorization: `Bearer ${input.token}` }, perMessageDeflate: false });
    ws.on('message', () => counts[i]!++);
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('close', () => closed++);
  })));
  parentPort!.postMessage({ ready: true });
  setInterval(() => parentPort!.postMessage({ min: Math.min(...counts), closed }), 10).unref();
  parentPort!.on('message', (m: { stop?: boolean }) => {
    if (m.stop) process.exit(0);
  });
}

const status: DaemonStatus = {
  version: '0.1.0', network: 'regtest', backend: { kind: 'btcd', capabilities: { fullBlocks: true } },
  tip: { height: 1, hash: '00'.repeat(32) }, synced: true, uptimeSeconds: 0, secp: 'native',
};

export async function run(emit: Emit): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dd-bench-events-'));
  const bus = new EventBus();
  const token = writeApiToken(dir);
  const app = await buildApp({ token, services: { status: { status: async () => status }, events: bus } });
  const url = await listenLoopback(app);
  // The worker loads this module through tsx, as bench/node.bench.ts does.
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(code, { eval: true, workerData: { url, token, subscribers: SUBSCRIBERS } satisfies WorkerInput });
  try {
    let slowest = 0;
    let closed = 0;
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { ready?: boolean; min?: number; closed?: number }) => {
        if (m.ready) resolve();
        if (m.min !== undefined) slowest = m.min;
        if (m.closed !== undefined) closed = m.closed;
      });
      worker.once('error', reject);
    });
    const body = { txid: 'ab'.repeat(32), vout: 1, confirmations: 1, identity: 'default' };
    let published = 0;
    const t0 = performance.now();
    while (slowest < EVENTS) {
      if (closed > 0) throw new Error(`${closed} subscribers were cut off`);
      const until = Math.min(EVENTS, slowest + WINDOW);
      for (; published < until; published++) bus.publish('bench.event', `bench:${published}`, { seq: published, ...body });
      await new Promise((r) => setTimeout(r, 2));
    }
    const seconds = (performance.now() - t0) / 1000;
    emit({ name: 'events.fanout.200_subscribers', unit: 'events/s', value: Math.round(EVENTS / seconds) });
    emit({ name: 'events.fanout.200_subscribers.frames', unit: 'frames/s', value: Math.round((EVENTS * SUBSCRIBERS) / seconds) });
  } finally {
    worker.postMessage({ stop: true });
    await worker.terminate();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!isMainThread) void subscriberWorker(workerData as WorkerInput);
