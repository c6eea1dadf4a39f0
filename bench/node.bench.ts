/**
 * Peer node benchmarks, each measured side by side with hypercore (npm `hypercore`, 11.x) in the
 * same run, turns alternating so that load from other processes hits both alike:
 *
 * - node.append.batched   entries/s, 1,000 signed entries per durable transaction (target ≥ 20,000)
 *                         vs hypercore `core.append(batch of 1,000)`; one batch signature each
 * - node.append.batched.nofsync  the same without an fsync per transaction (sqlite WAL,
 *                         synchronous=NORMAL), which is hypercore's durability: RocksDB's WAL unsynced
 * - node.append.single    entries/s, one durable transaction (fsync) per entry
 *                         vs hypercore `await core.append(block)`
 * - node.verify           entries/s, decode + verification of 2 batches of 1,000 entries as replication
 *                         does it (hashes, batch tree, one Ed25519 verify per batch; target ≥ 10,000)
 *                         vs hypercore-crypto doing the same work per 1,000-block batch: BLAKE2b leaf
 *                         per block, the parent hashes up to the root, one Ed25519 verify
 * - node.verify.single   entries/s, each entry verified on its own (decode, path, one Ed25519 verify
 *                         each), like for like with hypercore-crypto per block: leaf hash + verify
 * - node.replicate.64k    MB/s, 64 KiB entries from one node to a new contact over loopback WebSocket
 *                         + Noise, verified and durably stored (target ≥ 100)
 *                         vs hypercore replicating the same blocks to a clone over loopback TCP
 *
 * Rounds: 30 for appends, 20 for verification, 4 for replication, each figure the median of its
 * rounds: on a machine shared with other jobs, load comes in bursts, and more alternating rounds
 * keep one burst from deciding a ratio.
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
import { decodeEntry, openEntry, signedPart } from '../src/node/log/codec.js';
import { verifyEntries } from '../src/node/log/batch-verify.js';
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
interface HypercoreNode {
  index: number;
  size: number;
  hash: Buffer;
}
interface HypercoreCrypto {
  keyPair(): { publicKey: Buffer; secretKey: Buffer };
  sign(message: Buffer, secretKey: Buffer): Buffer;
  verify(message: Buffer, signature: Buffer, publicKey: Buffer): boolean;
  data(block: Buffer): Buffer;
  parent(a: HypercoreNode, b: HypercoreNode): Buffer;
  tree(roots: readonly HypercoreNode[]): Buffer;
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
    30,
    async () => BATCH / (await timed(() => store.appendBatch(identity, drafts))),
    async () => BATCH / (await timed(() => core.append(blocks))),
  );
  emit(result('node.append.batched', 'entries/s', batched, 'hypercore core.append(1,000 blocks)', hcBatched));
  // hypercore's RocksDB writes its WAL without fsync: the same durability here is WAL with
  // synchronous=NORMAL (a commit survives a crash of the process, not a power cut)
  const lazyDb = openNodeDatabase(join(dir, 'append-nosync.sqlite'));
  lazyDb.pragma('synchronous = NORMAL');
  const lazy = new FeedStore(lazyDb);
  const [unsynced, hcUnsynced] = await alternate(
    30,
    async () => BATCH / (await timed(() => lazy.appendBatch(identity, drafts))),
    async () => BATCH / (await timed(() => core.append(blocks))),
  );
  emit(result('node.append.batched.nofsync', 'entries/s', unsynced, 'hypercore core.append(1,000 blocks), neither fsyncs', hcUnsynced));
  lazyDb.close();

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

/** hypercore's per-batch work: BLAKE2b leaf per block, the parents up to one root, one signature check. */
function hypercoreBatchRoot(blocks: readonly Buffer[]): Buffer {
  let level = blocks.map((b, i) => ({ index: 2 * i, size: b.byteLength, hash: hcrypto.data(b) }));
  while (level.length > 1) {
    const next: HypercoreNode[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      const a = level[i]!;
      const b = level[i + 1]!;
      next.push({ index: (a.index + b.index) / 2, size: a.size + b.size, hash: hcrypto.parent(a, b) });
    }
    if (level.length % 2 === 1) next.push(level.at(-1)!);
    level = next;
  }
  return hcrypto.tree(level);
}

async function benchVerify(emit: Emit): Promise<void> {
  const identity = NodeIdentity.fromSeed(randomBytes(32));
  const store = new FeedStore(openNodeDatabase(':memory:'));
  const N = 2000;
  const BATCH = 1000;
  const raws: Uint8Array[] = [];
  for (let i = 0; i < N; i += BATCH) {
    const drafts = Array.from({ length: BATCH }, (_, j) => ({ header: { type: 'post' }, body: randomBytes(80 + ((i + j) % 40)) }));
    raws.push(...store.appendBatch(identity, drafts).map((e) => e.raw));
  }
  const kp = hcrypto.keyPair();
  const hcBlocks = raws.map((r) => Buffer.from(signedPart(decodeEntry(r))));
  const hcSigs = hcBlocks.map((b) => hcrypto.sign(hcrypto.data(b), kp.secretKey));
  const hcBatches = Array.from({ length: N / BATCH }, (_, k) => hcBlocks.slice(k * BATCH, (k + 1) * BATCH));
  const hcBatchSigs = hcBatches.map((blocks) => hcrypto.sign(hypercoreBatchRoot(blocks), kp.secretKey));
  let ok = 0;
  const [batched, hcBatched] = await alternate(
    20,
    async () =>
      N /
      (await timed(() => {
        for (const flag of verifyEntries(raws.map(decodeEntry))) ok += flag ? 1 : 0;
      })),
    async () =>
      N /
      (await timed(() => {
        hcBatches.forEach((blocks, k) => (ok += hcrypto.verify(hypercoreBatchRoot(blocks), hcBatchSigs[k]!, kp.publicKey) ? blocks.length : 0));
      })),
  );
  emit(result('node.verify', 'entries/s', batched, 'hypercore-crypto per 1,000-block batch: leaf + parent hashes, one verify', hcBatched));
  const [single, hcSingle] = await alternate(
    20,
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
  if (ok !== N * 80) throw new Error('verification failed during the benchmark');
  emit(result('node.verify.single', 'entries/s', single, 'hypercore-crypto leaf hash + verify per block', hcSingle));
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
  const [mbps, hcMbps] = await alternate(4, ours, anchor);
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
