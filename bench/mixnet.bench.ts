/**
 * Mixnet packet benchmarks (docs/protocol/mixnet.md), each beside the raw X25519 rate of this core
 * measured in the same run, turns alternating so that load from other processes hits both alike:
 *
 * - mixnet.unwrap   packets/s per core: Sphinx processing of one 5-hop packet at its first hop
 *                   (X25519 shared secret, HKDF, header MAC, replay check against a cache already
 *                   holding 100,000 tags, routing and payload decryption, re-blinding alpha).
 *                   Processing alone, with no transport (mixnet.forward adds the links). Goal ≥
 *                   5,000/s, at least 2,000/s.
 *                   Anchor: raw libsodium X25519 (crypto_scalarmult) per second. A hop needs two
 *                   X25519 operations (shared secret and blinding), so the ceiling is ratio 0.5.
 * - mixnet.create   5-hop forward packets/s. Anchor: raw X25519/s divided by 19, the X25519
 *                   operations a 5-hop packet needs with blinding (spec, "Key blinding").
 * - mixnet.forward  packets/s through one MixNode on loopback: Noise decryption of the incoming
 *                   link, unwrap, replay check, queueing (zero delay), Noise encryption and sending
 *                   on the outgoing link. The mix runs on the main thread; a worker thread sends
 *                   3,000 packets over one link and counts them arriving at a sink, from the first
 *                   send to the last arrival (the CPU clock starts once the sender has made its
 *                   packets and dialed). The sender sends its burst as a client does (PACKETS
 *                   frames of up to 27 packets, src/node/mixnet/batch.ts) and the mix batches what
 *                   it forwards in one turn of the event loop: zero delays make this the best case
 *                   for batching (docs/protocol/mixnet.md, "Batches"). The value is packets per
 *                   CPU-second used by the whole process during the run (sender, mix and sink
 *                   together: a lower bound for the mix alone; Node 20 has no per-thread CPU
 *                   clock). Anchor: raw X25519/s on the main thread, sampled between the runs (the
 *                   ceiling is again ratio 0.5).
 * - mixnet.forward.wall  the same runs by the wall clock: bounded by the slowest stage, usually the
 *                   worker thread that both sends and receives, on a 2-core machine shared with others.
 * - mixnet.forward.unbatched  the same, with batching off on both sides (one PACKET frame, one Noise
 *                   message per packet, as before batching), runs alternating with the batched
 *                   ones; anchor: the batched rate of the same run, so the ratio is what batching
 *                   changes, out of the load's reach.
 * - mixnet.e2e.*    through the 7-node loopback network: messages/s and median latency with zero
 *                   delays, median and 99th percentile with the default delays (bench/mixnet-e2e.ts).
 */
import { randomBytes } from 'node:crypto';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { NodeIdentity } from '../src/node/identity.js';
import { MixNode } from '../src/node/mixnet/mix-node.js';
import { MixKeyring } from '../src/node/mixnet/replay.js';
import { FRAME_PACKET, FRAME_PACKETS, MAX_BATCH_PACKETS, MAX_MIX_FRAME_BYTES, decodePackets } from '../src/node/mixnet/wire.js';
import { sendPackets } from '../src/node/mixnet/batch.js';
import { ChannelServer, dial } from '../src/node/transport/ws-transport.js';
import { createPacket, processPacket } from '../src/node/mixnet/sphinx.js';
import type { ReplayGuard, RouteHop } from '../src/node/mixnet/sphinx.js';
import { x25519, x25519Base } from '../src/node/mixnet/primitives.js';
import { compare, lastResult, measure, round } from './measure.js';
import type { Emit } from './types.js';
import { benchEndToEnd } from './mixnet-e2e.js';

const POOL = 256;
const PREFILL = 100_000;

/** The replay cache of src/node/mixnet/replay.ts, plus forgetting, so the packet pool can be reused. */
class BenchReplay implements ReplayGuard {
  readonly seen = new Set<string>();
  admit(tag: Uint8Array): boolean {
    const k = Buffer.from(tag.buffer, tag.byteOffset, tag.byteLength).toString('latin1');
    if (this.seen.has(k)) return false;
    this.seen.add(k);
    return true;
  }
}

export async function run(emit: Emit): Promise<void> {
  const keys = Array.from({ length: 5 }, () => randomBytes(32));
  const route: RouteHop[] = keys.map((k) => ({ address: randomBytes(32), publicKey: x25519Base(k), delayMs: 0 }));
  const mailbox = randomBytes(32);
  const body = randomBytes(1000);
  const packets = Array.from({ length: POOL }, () => createPacket(route, mailbox, body).packet);

  const replay = new BenchReplay();
  for (let i = 0; i < PREFILL; i++) replay.admit(randomBytes(16));
  let next = 0;
  let tags: string[] = [];
  const unwrap = (): unknown => {
    if (next === POOL) {
      // Reuse the pool: forget only the pool's own tags (the prefilled 100,000 stay).
      for (const t of tags) replay.seen.delete(t);
      tags = [];
      next = 0;
    }
    const r = processPacket(packets[next++]!, keys[0]!, replay);
    if (!r.ok) throw new Error(`bench packet rejected: ${r.reason}`);
    tags.push(r.tag.toString('latin1'));
    return r;
  };
  const scalar = randomBytes(32);
  const point = route[1]!.publicKey;
  const raw = (): unknown => x25519(scalar, point);

  const u = compare(unwrap, raw, { rounds: 7, sliceMs: 300 });
  if (lastResult() === undefined) throw new Error('no result');
  const unwrapRate = 1000 / u.ours.medianMs;
  const rawRate = 1000 / u.anchor.medianMs;
  emit({ name: 'mixnet.unwrap', unit: 'packets/s', value: round(unwrapRate), anchor: 'raw X25519 (libsodium crypto_scalarmult), the ceiling is 0.5 of it', anchorValue: round(rawRate), ratio: round(unwrapRate / rawRate) });

  const create = (): unknown => createPacket(route, mailbox, body);
  const c = compare(create, raw, { rounds: 5, sliceMs: 300 });
  const createRate = 1000 / c.ours.medianMs;
  const ceiling = 1000 / c.anchor.medianMs / 19;
  emit({ name: 'mixnet.create', unit: 'packets/s', value: round(createRate), anchor: 'raw X25519/s ÷ 19 (X25519 operations per 5-hop packet)', anchorValue: round(ceiling), ratio: round(createRate / ceiling) });

  await benchForward(emit);
  await benchEndToEnd(emit);
}

const FORWARD_PACKETS = 3000;

interface ForwardTask {
  mixUrl: string;
  mixAddress: number[];
  mixPublic: number[];
  n: number;
  /** Send the burst in PACKETS frames (else one PACKET frame per packet). */
  batch: boolean;
}

/** Worker side: a sink that counts packets, and a sender that pushes `n` packets through the mix. */
async function forwardWorker(task: ForwardTask): Promise<number> {
  const port = parentPort!;
  const sinkId = NodeIdentity.fromSeed(randomBytes(32));
  const sink = await ChannelServer.listen(sinkId, { maxFrameBytes: MAX_MIX_FRAME_BYTES });
  let got = 0;
  let done: (() => void) | undefined;
  const all = new Promise<void>((r) => (done = r));
  sink.on('channel', (ch) => ch.on('frame', (type, payload) => {
    got += type === FRAME_PACKET ? 1 : type === FRAME_PACKETS ? (decodePackets(payload)?.length ?? 0) : 0;
    if (got === task.n) done!();
  }));
  const go = new Promise<void>((r) => port.once('message', () => r()));
  const route: RouteHop[] = [
    { address: Uint8Array.from(task.mixAddress), publicKey: Uint8Array.from(task.mixPublic), delayMs: 0 },
    { address: sinkId.publicKey, publicKey: x25519Base(randomBytes(32)), delayMs: 0 },
  ];
  const packets = Array.from({ length: task.n }, () => createPacket(route, randomBytes(32), randomBytes(100)).packet);
  const sender = NodeIdentity.fromSeed(randomBytes(32));
  const ch = await dial(task.mixUrl, sender, { expectedRemote: Uint8Array.from(task.mixAddress), maxFrameBytes: MAX_MIX_FRAME_BYTES, highWaterBytes: 64 * 1024 * 1024 });
  // Only now does the main thread start its CPU clock: making 3,000 packets (about 5 X25519
  // operations each) is the sender's cost, not the mix's, and used to take most of the window.
  port.postMessage({ sinkUrl: sink.url, sinkAddress: Array.from(sinkId.publicKey) });
  await go;
  const t0 = performance.now();
  if (task.batch) for (let i = 0; i < packets.length; i += MAX_BATCH_PACKETS) sendPackets(ch, packets.slice(i, i + MAX_BATCH_PACKETS));
  else for (const p of packets) ch.send(FRAME_PACKET, p);
  await all;
  const secs = (performance.now() - t0) / 1000;
  ch.close();
  await sink.close();
  return secs;
}

const forwardTask = (workerData as { mixnetForward?: ForwardTask } | null)?.mixnetForward;
if (!isMainThread && forwardTask) {
  forwardWorker(forwardTask).then(
    (secs) => parentPort!.postMessage({ secs }),
    (err: unknown) => parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
}

/**
 * One run: a fresh mix on this thread, sender and sink in a worker. Resolves to the wall-clock
 * rate of the whole pipeline and to its rate per CPU-second of the process (all threads).
 */
async function forwardRun(batch: boolean): Promise<{ wall: number; perCore: number }> {
  const mixKey = randomBytes(32);
  let sink: { address: string; url: string } | undefined;
  const mix = new MixNode({
    identity: NodeIdentity.fromSeed(randomBytes(32)),
    keyring: new MixKeyring({ epoch: 1, privateKey: mixKey }),
    resolve: (a) => (sink && Buffer.from(a).toString('hex') === sink.address ? sink.url : undefined),
    linkRate: 1e9, linkBurst: 1e9, maxBatch: batch ? MAX_BATCH_PACKETS : 1,
  });
  await mix.listen();
  try {
    const tsx = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const task: ForwardTask = { mixUrl: mix.url, mixAddress: Array.from(mix.address), mixPublic: Array.from(x25519Base(mixKey)), n: FORWARD_PACKETS, batch };
    let cpu0: NodeJS.CpuUsage | undefined;
    let cpuMs = 0;
    const secs = await new Promise<number>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { mixnetForward: task } });
      let outcome: { secs?: number; error?: string } = { error: 'mixnet bench worker sent no result' };
      w.on('message', (m: { sinkUrl?: string; sinkAddress?: number[]; secs?: number; error?: string }) => {
        if (m.sinkUrl !== undefined && m.sinkAddress !== undefined) {
          sink = { url: m.sinkUrl, address: Buffer.from(m.sinkAddress).toString('hex') };
          cpu0 = process.cpuUsage();
          w.postMessage('go');
        } else {
          const used = process.cpuUsage(cpu0);
          cpuMs = (used.user + used.system) / 1000;
          outcome = m;
        }
      });
      w.once('error', (err) => (outcome = { error: err.message }));
      w.once('exit', () => (outcome.error !== undefined ? reject(new Error(outcome.error)) : resolve(outcome.secs!)));
    });
    if (mix.processed !== FORWARD_PACKETS) throw new Error(`mix processed ${mix.processed} of ${FORWARD_PACKETS}`);
    return { wall: FORWARD_PACKETS / secs, perCore: FORWARD_PACKETS / (cpuMs / 1000) };
  } finally {
    await mix.close();
  }
}

/** mixnet.forward (see the module comment); called from run(). */
export async function benchForward(emit: Emit): Promise<void> {
  const scalar = randomBytes(32);
  const point = x25519Base(randomBytes(32));
  const rates: number[] = [];
  const walls: number[] = [];
  const raws: number[] = [];
  const unbatched: number[] = [];
  for (let r = 0; r < 3; r++) {
    const run = await forwardRun(true);
    rates.push(run.perCore);
    walls.push(run.wall);
    unbatched.push((await forwardRun(false)).perCore);
    raws.push(1000 / measure(() => x25519(scalar, point), { minTimeMs: 300, maxIterations: 100_000 }).medianMs);
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const rate = med(rates);
  const wall = med(walls);
  const raw = med(raws);
  const anchor = 'raw X25519 (libsodium crypto_scalarmult), the ceiling is 0.5 of it';
  emit({ name: 'mixnet.forward', unit: 'packets/s', value: round(rate), anchor, anchorValue: round(raw), ratio: round(rate / raw) });
  emit({ name: 'mixnet.forward.wall', unit: 'packets/s', value: round(wall), anchor, anchorValue: round(raw), ratio: round(wall / raw) });
  const off = med(unbatched);
  emit({ name: 'mixnet.forward.unbatched', unit: 'packets/s', value: round(off), anchor: 'mixnet.forward (batched) in the same run', anchorValue: round(rate), ratio: round(off / rate) });
}
