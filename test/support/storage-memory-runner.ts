/**
 * A large file through loopback storage servers, measuring the client's memory
 * (test/node/storage/large-file.int.test.ts). The client process starts the servers (eleven, in
 * a second process of this script, role "servers", shares on disk under `dir`), generates a file
 * of `size` bytes on disk (never whole in memory), puts it streamed (StorageClient.putStream) on
 * ten, reads it back streamed (openRead + pipe) into another file, deletes one share on its
 * server's disk and repairs it (every block of every share verified, the lost share regenerated
 * segment by segment onto the eleventh server). RSS is sampled every 20 ms; each phase's peak
 * growth over the baseline (servers up, before the file is generated) is reported.
 *
 * argv[2]: { size: number, dir: string, role?: "servers" }
 * stdout: one JSON line { baselineMb, shareBytes, phases: { name, peakGrowthMb, seconds }[],
 *   sha256: { original, read }, repairedIdentical, repair: { missing, repaired, lost } } | { error }
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { join } from 'node:path';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { NodeIdentity } from '../../src/node/identity.js';
import { StorageClient, type ServerInfo } from '../../src/node/storage/client.js';
import { openFileSource } from '../../src/node/storage/share-upload.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { ShareStore } from '../../src/node/storage/server/share-store.js';
import { StorageServer } from '../../src/node/storage/server/storage-service.js';

const { size, dir, role } = JSON.parse(process.argv[2] ?? '{}') as { size: number; dir: string; role?: 'servers' };
const MB = 1024 * 1024;
const rssMb = (): number => process.memoryUsage.rss() / MB;

let peak = 0;
let peakLive = 0;
/** Live memory: V8 heap in use plus buffers outside it, right after a full collection. */
const liveMb = (): number => {
  global.gc?.();
  const m = process.memoryUsage();
  return (m.heapUsed + m.external) / MB;
};
let ticks = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, rssMb());
  // Every 200 ms, what the process holds (garbage aside): needs --expose-gc.
  if (++ticks % 10 === 0 && global.gc) peakLive = Math.max(peakLive, liveMb());
}, 20);
const phases: { name: string; peakGrowthMb: number; peakLiveGrowthMb: number; seconds: number }[] = [];
let baseline = 0;
let baselineLive = 0;
async function phase<T>(name: string, run: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  peak = rssMb();
  peakLive = 0;
  const out = await run();
  peak = Math.max(peak, rssMb());
  phases.push({ name, peakGrowthMb: Math.round(peak - baseline), peakLiveGrowthMb: Math.round(peakLive - baselineLive), seconds: Math.round((performance.now() - t0) / 100) / 10 });
  return out;
}

/** Writes `size` pseudo-random bytes (a ChaCha20 key stream) to `path` in 1 MiB pieces; returns their SHA-256. */
async function generate(path: string): Promise<string> {
  const out = createWriteStream(path, { mode: 0o600 });
  const h = createHash('sha256');
  const key = new Uint8Array(randomBytes(32));
  for (let at = 0, i = 0; at < size; at += MB, i++) {
    const piece = chacha20(key, new Uint8Array(12), new Uint8Array(Math.min(MB, size - at)), undefined, i * (MB / 64));
    h.update(piece);
    if (!out.write(piece)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return h.digest('hex');
}

/** Reads the file into `path` streamed, hashing as it goes. */
async function readBack(client: StorageClient, cap: string, path: string): Promise<string> {
  const reader = await client.openRead(cap);
  const out = createWriteStream(path, { mode: 0o600 });
  const h = createHash('sha256');
  await reader.pipe(async (chunk) => {
    h.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  });
  out.end();
  await once(out, 'finish');
  return h.digest('hex');
}

/** The eleven servers, in this process (role "servers"): prints their infos, runs until stdin closes. */
async function serve(): Promise<void> {
  clearInterval(sampler);
  const servers: StorageServer[] = [];
  for (let i = 0; i < 11; i++) {
    const id = NodeIdentity.fromSeed(new Uint8Array(32).fill(40 + i));
    servers.push(await StorageServer.start(id, new ShareStore({ dir: join(dir, `srv${i}`), quotaBytes: 4 * size + 64 * MB })));
  }
  process.stdout.write(`${JSON.stringify(servers.map((s, i) => ({ id: toHex(NodeIdentity.fromSeed(new Uint8Array(32).fill(40 + i)).publicKey), url: s.url, dir: join(dir, `srv${i}`) })))}\n`);
  process.stdin.resume();
  await once(process.stdin, 'end');
  await Promise.all(servers.map((s) => s.close()));
}

/** Starts the servers' process and waits for their infos. */
async function startServers(): Promise<{ child: ChildProcess; servers: (ServerInfo & { dir: string })[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify({ role: 'servers', size, dir })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout as Readable }), 'line')) as [string];
  const servers = (JSON.parse(line) as { id: string; url: string; dir: string }[]).map((s) => ({ id: fromHex(s.id), url: s.url, dir: s.dir }));
  return { child, servers };
}

async function main(): Promise<void> {
  const { child, servers: infos } = await startServers();
  const owner = NodeIdentity.fromSeed(new Uint8Array(32).fill(7));
  // Ten servers at first; the eleventh joins for the repair.
  const client = new StorageClient(owner, infos.slice(0, 10));
  const secret = new Uint8Array(randomBytes(32));
  try {
    baselineLive = liveMb();
    baseline = rssMb();
    const original = await phase('generate', () => generate(join(dir, 'in.bin')));
    const put = await phase('put', async () => {
      const source = await openFileSource(join(dir, 'in.bin'));
      try {
        return await client.putStream(source, () => secret, 3_600_000, { k: 3, n: 10 });
      } finally {
        await source.close();
      }
    });
    rmSync(join(dir, 'in.bin'));
    const read = await phase('get', () => readBack(client, put.readCap, join(dir, 'out.bin')));
    rmSync(join(dir, 'out.bin'));
    // Lose one share: delete it from its server's disk.
    const [lostNum, lostUrl] = [...put.placed][0]!;
    const si = put.storageIndex;
    const lostPath = join(infos.find((s) => s.url === lostUrl)!.dir, si, String(lostNum));
    const lostHash = await hashFile(lostPath);
    const shareBytes = statSync(lostPath).size;
    rmSync(lostPath);
    const withSpare = new StorageClient(owner, infos);
    const repair = await phase('repair', () => withSpare.repair(put.verifyCap, secret, 3_600_000));
    const to = infos.find((s) => s.url === repair.repaired.get(lostNum));
    const repairedIdentical = to !== undefined && (await hashFile(join(to.dir, si, String(lostNum)))) === lostHash;
    process.stdout.write(`${JSON.stringify({
      baselineMb: Math.round(baseline), shareBytes, phases, sha256: { original, read }, repairedIdentical,
      repair: { missing: repair.missing, repaired: [...repair.repaired.keys()], lost: lostNum },
    })}\n`);
  } finally {
    clearInterval(sampler);
    child.stdin?.end();
    await once(child, 'exit');
  }
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

(role === 'servers' ? serve() : main()).catch((e: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: (e as Error).stack ?? String(e) })}\n`);
  process.exitCode = 1;
});
