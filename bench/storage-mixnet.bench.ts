/**
 * Storage reads through mixnet providers (docs/protocol/storage.md §10) beside direct reads of the
 * same file from the same servers, in the same run and the same process:
 *
 * - storage.mixnet.get.3of10.2MB  MB/s of plaintext: a 2 MB file placed 3-of-10 on 10 storage
 *                                 servers whose mailboxes are at provider B, read by a client
 *                                 homed at provider A with `openRead` + `pipe` (heads, tails,
 *                                 then k shares' blocks, every block verified), every request and
 *                                 answer a Sphinx packet through the loopback network of the
 *                                 tests (test/support/mix-world.ts: two providers, one mix per
 *                                 layer) with zero mix delays and the code's defaults otherwise
 *                                 (48 requests in flight, mailbox polled every 20 ms while busy,
 *                                 servers' replies paced at 1,000 packets/s). Median of 3.
 *                                 Anchor: the same read over direct Noise connections (what a
 *                                 node does without the mixnet, or through Tor without its
 *                                 latency). Every node runs in this process, so on one core.
 * - storage.mixnet.get.3of10.2MB.cpu  the same reads in MB per CPU-second of the whole process
 *                                 (every node's work: packet creation, five unwraps per packet,
 *                                 sealing, share reads), against the direct reads' figure: the
 *                                 machine's load does not distort it, and it is the ceiling of
 *                                 the wall figure with one free core.
 * - storage.mixnet.put.3of10.500KB  MB/s of plaintext: a 500 KB file put 3-of-10 (`putStream`)
 *                                 by the owner homed at provider A onto the same 10 servers, every
 *                                 chunk of every share (MAX_PUT_CHUNK bytes, one at a time per
 *                                 share, the 10 shares in parallel) a Sphinx packet sealed by the
 *                                 owner's key and acknowledged through a SURB. Median of 3.
 *                                 Anchor: the same put over direct Noise connections.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { NodeIdentity } from '../src/node/identity.js';
import type { MixnetService } from '../src/node/mixnet/service.js';
import { StorageClient, type ServerInfo } from '../src/node/storage/client.js';
import { encodeFile } from '../src/node/storage/immutable.js';
import { MixStorageReads } from '../src/node/storage/mix-client.js';
import { MixStorageServer } from '../src/node/storage/server/mix-server.js';
import { ShareStore } from '../src/node/storage/server/share-store.js';
import { bytesSource } from '../src/node/storage/share-upload.js';
import { StorageServer } from '../src/node/storage/server/storage-service.js';
import { sleep } from '../src/util/time.js';
import { MixWorld } from '../test/support/mix-world.js';
import { round } from './measure.js';
import type { Emit } from './types.js';

const SIZE = 2 * 1000 * 1000;
const PUT_SIZE = 500 * 1000;
const ROUNDS = 3;

async function until(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Reads `cap` with openRead + pipe into a SHA-256; returns wall ms, CPU ms of the whole process, and the digest. */
async function timedRead(client: StorageClient, cap: string): Promise<{ ms: number; cpuMs: number; hex: string }> {
  const t = performance.now();
  const c0 = process.cpuUsage();
  const r = await client.openRead(cap);
  const h = createHash('sha256');
  await r.pipe((c) => void h.update(c));
  const c1 = process.cpuUsage(c0);
  return { ms: performance.now() - t, cpuMs: (c1.user + c1.system) / 1000, hex: h.digest('hex') };
}

export async function run(emit: Emit): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dd-bench-storemix-'));
  const world = new MixWorld();
  const servers: StorageServer[] = [];
  const mixServers: MixStorageServer[] = [];
  let reads: MixStorageReads | undefined;
  try {
    const pa = await world.start({ provider: true, meanDelayMs: 0 });
    const pb = await world.start({ provider: true, meanDelayMs: 0 });
    for (const layer of [1, 2, 3]) await world.start({ layer, meanDelayMs: 0 });
    const mixes: MixnetService[] = [];
    const infos: ServerInfo[] = [];
    for (let i = 0; i < 10; i++) {
      const id = NodeIdentity.fromSeed(new Uint8Array(32).fill(i + 1));
      const store = new ShareStore({ dir: join(dir, String(i)), quotaBytes: 1 << 30 });
      const s = await StorageServer.start(id, store);
      servers.push(s);
      const mix = await world.start({ identity: id, home: pb.identityKey, homeEndpoint: pb.url!, meanDelayMs: 0, fetchIntervalMs: 1000 });
      mixes.push(mix);
      const ms = new MixStorageServer(mix, store);
      ms.start();
      mixServers.push(ms);
      infos.push({ id: id.publicKey, url: s.url, provider: pb.identityKey });
    }
    const readerId = NodeIdentity.fromSeed(new Uint8Array(32).fill(77));
    const reader = await world.start({ identity: readerId, home: pa.identityKey, homeEndpoint: pa.url!, meanDelayMs: 0, fetchIntervalMs: 1000 });
    await until(() => [reader, ...mixes].every((m) => m.connected && m.directory.descriptors().length === 5), 'every node linked');
    reads = new MixStorageReads(reader);
    const r = reads;
    const direct = new StorageClient(readerId, infos);
    const viaMix = (): StorageClient => new StorageClient(readerId, infos, { route: () => null, reads: (s, who) => r.open(s, who) });

    const data = new Uint8Array(randomBytes(SIZE));
    const want = createHash('sha256').update(data).digest('hex');
    const file = encodeFile(data, { k: 3, n: 10 });
    await direct.put(file, new Uint8Array(randomBytes(32)), 3_600_000);
    const mixMs: number[] = [];
    const directMs: number[] = [];
    const mixCpu: number[] = [];
    const directCpu: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const d = await timedRead(direct, file.readCap);
      const m = await timedRead(viaMix(), file.readCap);
      if (d.hex !== want || m.hex !== want) throw new Error('storage mixnet bench: read back different bytes');
      directMs.push(d.ms);
      mixMs.push(m.ms);
      directCpu.push(d.cpuMs);
      mixCpu.push(m.cpuMs);
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
    const mbps = (ms: number): number => SIZE / 1e6 / (ms / 1000);
    const value = mbps(median(mixMs));
    const anchorValue = mbps(median(directMs));
    emit({ name: 'storage.mixnet.get.3of10.2MB', unit: 'MB/s', value: round(value), anchor: 'the same read over direct Noise connections', anchorValue: round(anchorValue), ratio: round(value / anchorValue) });
    // Per CPU-second of the whole process (reader, servers, providers and mixes together): what a
    // loaded machine cannot distort, and the ceiling of the wall figure on one free core.
    const cpuValue = mbps(median(mixCpu));
    const cpuAnchor = mbps(median(directCpu));
    emit({ name: 'storage.mixnet.get.3of10.2MB.cpu', unit: 'MB per CPU-second', value: round(cpuValue), anchor: 'the same read over direct Noise connections', anchorValue: round(cpuAnchor), ratio: round(cpuValue / cpuAnchor) });

    // Puts: a fresh file each time (a put of bytes a server already holds would only add a lease).
    const viaMixPuts = new StorageClient(readerId, infos, { route: () => null, reads: (s, who) => r.open(s, who), putsThroughReads: true });
    const putMix: number[] = [];
    const putDirect: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      for (const [client, into] of [[direct, putDirect], [viaMixPuts, putMix]] as const) {
        const t = performance.now();
        const put = await client.putStream(bytesSource(new Uint8Array(randomBytes(PUT_SIZE))), () => new Uint8Array(32).fill(3), 3_600_000, { k: 3, n: 10 });
        if (put.happiness !== 10) throw new Error('storage mixnet bench: a put placed fewer than 10 shares');
        into.push(performance.now() - t);
      }
    }
    const putMbps = (ms: number): number => PUT_SIZE / 1e6 / (ms / 1000);
    const putValue = putMbps(median(putMix));
    const putAnchor = putMbps(median(putDirect));
    emit({ name: 'storage.mixnet.put.3of10.500KB', unit: 'MB/s', value: round(putValue), anchor: 'the same put over direct Noise connections', anchorValue: round(putAnchor), ratio: round(putValue / putAnchor) });
    const st = reads.stats;
    process.stderr.write(`storage-mixnet: ${st.requests} requests, ${st.replies} reply packets, ${st.retries} retries, ${st.dropped.malformed} malformed\n`);
  } finally {
    reads?.close();
    for (const m of mixServers) m.close();
    await Promise.all(servers.map((s) => s.close()));
    await world.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
