/**
 * End-to-end storage through 10 in-process storage servers on loopback (real sockets, Noise
 * channels, shares on disk in a temp dir), 3-of-10:
 * - `storage.loopback.put|get.3of10`: encodeFile + put, and get + verify + decodeFile, of an 8 MB
 *   file, in MB/s of plaintext (median of 5);
 * - `….100MB`: the same for one 100 MB file (shares of about 33 MB, sent and read in 2 MiB parts);
 * - `storage.loopback.putstream.3of10.100MB`: the daemon's put path, `putStream` (two passes over
 *   the source: hash, then encode and send segment by segment in bounded memory), of the same
 *   100 MB, in MB/s;
 * - `storage.loopback.getstream.3of10.100MB`: the same file read with `openRead` + `pipe`
 *   (segment by segment, bounded memory) into a SHA-256, in MB/s;
 * - `storage.loopback.repair.100MB`: one share of that file deleted from its server's disk, then
 *   `StorageClient.repair` with the verify cap (survey of the 10 servers, every block of every
 *   share verified in ranges, the lost share regenerated segment by segment and streamed back), in
 *   ms (median of 3).
 * No external anchor runs these paths.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeIdentity } from '../src/node/identity.js';
import { StorageClient, type ServerInfo } from '../src/node/storage/client.js';
import { encodeFile } from '../src/node/storage/immutable.js';
import { bytesSource } from '../src/node/storage/share-upload.js';
import { ShareStore } from '../src/node/storage/server/share-store.js';
import { StorageServer } from '../src/node/storage/server/storage-service.js';
import { round } from './measure.js';
import type { Emit } from './types.js';

const SIZE = 8 * 1024 * 1024;
const ROUNDS = 5;
const BIG = 100 * 1000 * 1000;

export async function run(emit: Emit): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'dd-storage-bench-'));
  const servers: StorageServer[] = [];
  try {
    const infos: ServerInfo[] = [];
    for (let i = 0; i < 10; i++) {
      const id = NodeIdentity.fromSeed(new Uint8Array(32).fill(i + 1));
      const s = await StorageServer.start(id, new ShareStore({ dir: join(root, String(i)), quotaBytes: 1 << 30 }));
      servers.push(s);
      infos.push({ id: id.publicKey, url: s.url });
    }
    const client = new StorageClient(NodeIdentity.fromSeed(new Uint8Array(32).fill(77)), infos);
    const put: number[] = [];
    const get: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const data = new Uint8Array(randomBytes(SIZE));
      let t = performance.now();
      const file = encodeFile(data, { k: 3, n: 10 });
      await client.put(file, new Uint8Array(randomBytes(32)), 3_600_000);
      put.push(performance.now() - t);
      t = performance.now();
      const back = await client.get(file.readCap);
      get.push(performance.now() - t);
      if (!Buffer.from(back.data).equals(data)) throw new Error('storage bench: read back different bytes');
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
    emit({ name: 'storage.loopback.put.3of10', unit: 'MB/s', value: round(SIZE / 1e6 / (median(put) / 1000)) });
    emit({ name: 'storage.loopback.get.3of10', unit: 'MB/s', value: round(SIZE / 1e6 / (median(get) / 1000)) });

    const big = new Uint8Array(randomBytes(BIG));
    let t = performance.now();
    const file = encodeFile(big, { k: 3, n: 10 });
    const secret = new Uint8Array(randomBytes(32));
    const placed = await client.put(file, secret, 3_600_000);
    emit({ name: 'storage.loopback.put.3of10.100MB', unit: 'MB/s', value: round(BIG / 1e6 / ((performance.now() - t) / 1000)) });
    t = performance.now();
    const back = await client.get(file.readCap);
    emit({ name: 'storage.loopback.get.3of10.100MB', unit: 'MB/s', value: round(BIG / 1e6 / ((performance.now() - t) / 1000)) });
    if (!Buffer.from(back.data).equals(big)) throw new Error('storage bench: read back different bytes (100 MB)');
    t = performance.now();
    const streamed = await client.putStream(bytesSource(big), () => secret, 3_600_000, { k: 3, n: 10 });
    emit({ name: 'storage.loopback.putstream.3of10.100MB', unit: 'MB/s', value: round(BIG / 1e6 / ((performance.now() - t) / 1000)) });
    if (streamed.happiness !== 10) throw new Error('storage bench: streamed put placed fewer than 10 shares');
    t = performance.now();
    const hash = createHash('sha256');
    const reader = await client.openRead(file.readCap);
    await reader.pipe((chunk) => void hash.update(chunk));
    emit({ name: 'storage.loopback.getstream.3of10.100MB', unit: 'MB/s', value: round(BIG / 1e6 / ((performance.now() - t) / 1000)) });
    if (!hash.digest().equals(createHash('sha256').update(big).digest())) throw new Error('storage bench: streamed different bytes (100 MB)');
    const repair: number[] = [];
    for (let r = 0; r < 3; r++) {
      const lost = r * 3;
      const holder = servers[infos.findIndex((x) => x.url === placed.placed.get(lost))] as StorageServer;
      const idx = servers.indexOf(holder);
      rmSync(join(root, String(idx), file.storageIndex, String(lost)));
      t = performance.now();
      const res = await client.repair(file.verifyCap, secret, 3_600_000);
      repair.push(performance.now() - t);
      if (res.repaired.size !== 1 || !res.repaired.has(lost)) throw new Error(`storage bench: repair regenerated ${[...res.repaired.keys()].join(',')}, expected ${lost}`);
    }
    emit({ name: 'storage.loopback.repair.100MB', unit: 'ms', value: round(median(repair)) });
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(root, { recursive: true, force: true });
  }
}
