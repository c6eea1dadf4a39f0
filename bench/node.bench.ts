/**
 * Peer node benchmarks, each measured side by side with hypercore (npm `hypercore`, 11.x) in the
 * same run, turns alternating so that load from other processes hits both alike:
 *
 * - node.append.batched   entries/s, 1,000 signed entries per durable transaction (target ≥ 20,000)
 *                         vs hypercore `core.append(batch of 1,000)`
 * - node.append.single    entries/s, one durable transaction (fsync) per entry
 *                         vs hypercore `await core.append(block)`
 * - node.verify           entries/s, decode + SHA-256 + Ed25519 verify of stored entries (target ≥ 10,000)
 *                         vs hypercore-crypto per block: BLAKE2b leaf hash + Ed25519 verify
 * - node.replicate.64k    MB/s, 64 KiB entries from one node to a new contact over loopback WebSocket
 *                         + Noise, verified and durably stored (target ≥ 100)
 *                         vs hypercore replicating the same blocks to a clone over loopback TCP
 *
 * In the replication benches the receiving side runs in a worker thread (two nodes are two
 * processes in real life, and the machine has two cores), for ours and for hypercore alike; the
 * time is taken inside the worker, from dialing to the last entry stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { join } from 'node:path';
import { openNodeDatabase } from '../src/node/db.js';
import { FeedStore } from '../src/node/log/feed-store.js';
import { openEntry } from '../src/node/log/codec.js';
import type { EntryDraft } from '../src/node/log/codec.js';
import { PeerNode } from '../src/node/node.js';
import { NodeIdentity } from '../src/node/identity.js';
import { randomBytes } from '../src/node/crypto.js';
import type { Emit } from './types.js';

// hypercore is CommonJS without types: the few members used here.
interface Hypercore {
  readonly key: Buffer;
  readonly length: number;
  ready(): Promise<void>;
  close(): Promise<void>;
  append(blocks: Buffer | Buffer[]): Promise<unknown>;
  replicate(isInitiator: boolean): NodeJS.ReadWriteStream;
  download(range: { start: number; end: number }): { done(): Promise<void> };
}
type HypercoreCtor = new (storage: string, key?: Buffer) => Hypercore;
interface HypercoreCrypto {
  keyPair(): { publicKey: Buffer; secretKey: Buffer };
  sign(message: Buffer, secretKey: Buffer): Buffer;
  verify(message: Buffer, signature: Buffer, publicKey: Buffer): boolean;
  data(block: Buffer): Buffer;
}
const require = createRequire(import.meta.url);
const HypercoreClass = require('hypercore') as HypercoreCtor;
const hcrypto = require('hypercore-crypto') as HypercoreCrypto;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function result(name: string, unit: string, ours: number, anchor: string, anchorValue: number) {
  return { name, unit, value: Math.round(ours), anchor, anchorValue: Math.round(anchorValue), ratio: round3(ours / anchorValue) };
}

/** Alternates async `ours` and `anchor` for `rounds`, returning the median rate of each (units/s). */
async function alternate(rounds: number, ours: () => Promise<number> | number, anchor: () => Promise<number>): Promise<[number, number]> {
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await ours());
    b.push(await anchor());
  }
  return [median(a), median(b)];
}

async function timed(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function benchAppends(dir: string, emit: Emit): Promise<void> {
  const identity = NodeIdentity.fromSeed(randomBytes(32));
  const store = new FeedStore(openNodeDatabase(join(dir, 'append.sqlite')));
  const core = new HypercoreClass(join(dir, 'append-hc'));
  await core.ready();
  const BATCH = 1000;
  const drafts: EntryDraft[] = Array.from({ length: BATCH }, (_, i) => ({ header: { type: 'post', app: 'bench' }, body: randomBytes(80 + (i % 40)) }));
  const blocks = drafts.map((d) => Buffer.from(d.body!));
  const [batched, hcBatched] = await alternate(
    10,
    async () => BATCH / (await timed(() => store.appendBatch(identity, drafts))),
    async () => BATCH / (await timed(() => core.append(blocks))),
  );
  emit(result('node.append.batched', 'entries/s', batched, 'hypercore core.append(1,000 blocks)', hcBatched));

  const SINGLE = 100;
  const [single, hcSingle] = await alternate(
    3,
    async () =>
      SINGLE /
      (await timed(() => {
        for (let i = 0; i < SINGLE; i++) store.append(identity, drafts[i]!);
      })),
    async () =>
      SINGLE /
      (await timed(async () => {
        for (let i = 0; i < SINGLE; i++) await core.append(blocks[i]!);
      })),
  );
  emit(result('node.append.single', 'entries/s', single, 'hypercore await core.append(block)', hcSingle));
  await core.close();
  store.db.close();
  identity.destroy();
}

async function benchVerify(emit: Emit): Promise<void> {
  const identity = NodeIdentity.fromSeed(randomBytes(32));
  const store = new FeedStore(openNodeDatabase(':memory:'));
  const N = 2000;
  const raws = store
    .appendBatch(identity, Array.from({ length: N }, (_, i) => ({ header: { type: 'post' }, body: randomBytes(80 + (i % 40)) })))
    .map((e) => e.raw);
  const kp = hcrypto.keyPair();
  const hcBlocks = raws.map((r) => Buffer.from(r.subarray(0, r.length - 64)));
  const hcSigs = hcBlocks.map((b) => hcrypto.sign(hcrypto.data(b), kp.secretKey));
  let ok = 0;
  const [ours, anchor] = await alternate(
    6,
    async () =>
      N /
      (await timed(() => {
        for (const r of raws) ok += openEntry(r).seq > 0 ? 1 : 0;
      })),
    async () =>
      N /
      (await timed(() => {
        for (let i = 0; i < N; i++) ok += hcrypto.verify(hcrypto.data(hcBlocks[i]!), hcSigs[i]!, kp.publicKey) ? 1 : 0;
      })),
  );
  if (ok !== N * 12) throw new Error('verification failed during the benchmark');
  emit(result('node.verify', 'entries/s', ours, 'hypercore-crypto leaf hash + verify per block', anchor));
  store.db.close();
  identity.destroy();
}

async function benchReplication(dir: string, emit: Emit): Promise<void> {
  const N = 800;
  const SIZE = 64 * 1024;
  const MB = (N * SIZE) / 1e6;
  const body = randomBytes(SIZE);
  const source = new PeerNode({ seed: randomBytes(32), dbPath: join(dir, 'src.sqlite') });
  await source.ready();
  for (let i = 0; i < N; i += 100) source.appendBatch(Array.from({ length: 100 }, () => ({ header: { type: 'blob' }, body })));
  const hcSource = new HypercoreClass(join(dir, 'src-hc'));
  await hcSource.ready();
  for (let i = 0; i < N; i += 100) await hcSource.append(Array.from({ length: 100 }, () => Buffer.from(body)));
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(hcSource.replicate(false)).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let round = 0;
  const ours = async (): Promise<number> => {
    const intro = source.createIntroductionToken();
    const secs = await inWorker({
      role: 'sink',
      dbPath: join(dir, `sink-${round++}.sqlite`),
      intro: { pairwiseKey: [...intro.pairwiseKey], endpoints: [...intro.endpoints], token: [...intro.token] },
      source: [...source.id],
      n: N,
    });
    return MB / secs;
  };
  const anchor = async (): Promise<number> => {
    const secs = await inWorker({ role: 'clone', dir: join(dir, `clone-${round++}`), key: hcSource.key.toString('hex'), port, n: N });
    return MB / secs;
  };
  const [mbps, hcMbps] = await alternate(2, ours, anchor);
  emit(result('node.replicate.64k', 'MB/s', mbps, 'hypercore clone over loopback TCP', hcMbps));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await hcSource.close();
  await source.close();
}

type WorkerTask =
  | { role: 'sink'; dbPath: string; intro: { pairwiseKey: number[]; endpoints: string[]; token: number[] }; source: number[]; n: number }
  | { role: 'clone'; dir: string; key: string; port: number; n: number };

/** Runs a receiving side in a worker thread (this same module); resolves to its measured seconds. */
function inWorker(task: WorkerTask): Promise<number> {
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { nodeBench: task } });
    let outcome: { secs?: number; error?: string } = { error: 'bench worker sent no result' };
    w.once('message', (m: { secs?: number; error?: string }) => (outcome = m));
    w.once('error', (err) => (outcome = { error: err.message }));
    // settle only once the thread is gone: exiting the process while a worker still tears down
    // native addons (hypercore's RocksDB) aborts it
    w.once('exit', () => (outcome.error ? reject(new Error(outcome.error)) : resolve(outcome.secs!)));
  });
}

async function sinkMain(task: WorkerTask): Promise<number> {
  if (task.role === 'sink') {
    const sink = new PeerNode({ seed: randomBytes(32), dbPath: task.dbPath });
    await sink.ready();
    const source = Uint8Array.from(task.source);
    const secs = await timed(async () => {
      await sink.bootstrapFromIntroduction({
        pairwiseKey: Uint8Array.from(task.intro.pairwiseKey),
        endpoints: task.intro.endpoints,
        token: Uint8Array.from(task.intro.token),
      });
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (sink.store.feed(source)?.length === task.n) resolve();
          else setTimeout(check, 1);
        };
        check();
      });
    });
    await sink.close();
    return secs;
  }
  const clone = new HypercoreClass(task.dir, Buffer.from(task.key, 'hex'));
  await clone.ready();
  let socket: Socket | null = null;
  const secs = await timed(async () => {
    socket = connect(task.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.pipe(clone.replicate(true)).pipe(socket);
    await clone.download({ start: 0, end: task.n }).done();
  });
  (socket as Socket | null)?.destroy();
  await clone.close();
  return secs;
}

const benchTask = (workerData as { nodeBench?: WorkerTask } | null)?.nodeBench;
if (!isMainThread && benchTask) {
  sinkMain(benchTask).then(
    (secs) => parentPort!.postMessage({ secs }),
    (err: unknown) => parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
}

/** Entry point for bin/bench.js. */
export async function run(emit: Emit): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dd-node-bench-'));
  try {
    await benchAppends(dir, emit);
    await benchVerify(emit);
    await benchReplication(dir, emit);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
