/**
 * Storage puts through the mixnet (docs/protocol/storage.md §10) in test/support/storage-mix-lab.ts, on the loopback mixnet of
 * test/support/mix-world.ts: two providers and one mix per layer, real sockets, Sphinx packets.
 * Four storage servers keep their mailboxes at provider B and store only for the owner; the owner,
 * homed at provider A with a route that refuses every dial, puts a file 2-of-4 through the
 * providers and reads it back. The servers' listeners record every connection and every refused
 * handshake: none may come from the owner. A fifth server with a small quota refuses a share too
 * large for it, with a clear error, and refuses a stranger.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { StorageClient, type ServerInfo } from '../../../src/node/storage/client.js';
import { MixStorageReads } from '../../../src/node/storage/mix-client.js';
import { MAX_PUT_CHUNK } from '../../../src/node/storage/mix-codec.js';
import { bytesSource } from '../../../src/node/storage/share-upload.js';
import { equalBytes, toHex } from '../../../src/util/bytes.js';
import { StorageMixLab } from '../../support/storage-mix-lab.js';
import { waitUntil } from '../../support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'dd-storemixput-'));
const lab = new StorageMixLab();
const { servers } = lab;
const ownerId = NodeIdentity.fromSeed(new Uint8Array(32).fill(88));
let reads: MixStorageReads;
let infos: ServerInfo[];

beforeAll(async () => {
  await lab.start({
    root,
    serverIds: [0, 1, 2, 3, 4].map((i) => NodeIdentity.fromSeed(new Uint8Array(32).fill(60 + i))),
    // The fifth server's quota is smaller than one share of the test files.
    store: (i) => ({ quotaBytes: i === 4 ? 20_000 : 1 << 26, maxShareBytes: 1 << 20 }),
    // Stores for the owner only (a node's contacts, in the daemon).
    mayStore: (sender) => equalBytes(sender, ownerId.publicKey),
    client: ownerId,
  });
  ({ reads, infos } = lab);
}, 60_000);

afterAll(async () => {
  await lab.close();
  rmSync(root, { recursive: true, force: true });
});

/** A client of `who` that reaches `to` only through the mixnet: every dial is refused. */
const mixOnly = (who: NodeIdentity, to: ServerInfo[]): StorageClient => lab.mixOnly(who, to, { renewsThroughReads: true, putsThroughReads: true });

describe('storage puts through mixnet providers', () => {
  it('puts a file through the providers only and reads it back byte-identical; no server sees a connection', async () => {
    const data = new Uint8Array(randomBytes(200_000));
    const four = infos.slice(0, 4);
    const t = Date.now();
    const put = await mixOnly(ownerId, four).putStream(bytesSource(data), () => new Uint8Array(32).fill(5), 3_600_000, { k: 2, n: 4 });
    const ms = Date.now() - t;
    expect(put.happiness).toBe(4);
    servers.slice(0, 4).forEach((s) => expect(s.srv.store.list(put.storageIndex)).toHaveLength(1));
    const got = await mixOnly(ownerId, four).get(put.readCap);
    expect(Buffer.from(got.data).equals(data)).toBe(true);
    // Nothing reached any listener: no connection, no refused handshake.
    for (const s of servers) expect(s.srv.seen).toEqual([]);
    // The puts were sealed by the owner's key, which the servers checked.
    expect(servers.slice(0, 4).every((s) => s.sealedBy.includes(toHex(ownerId.publicKey)))).toBe(true);
    const written = servers.reduce((n, s) => n + s.mixServer.stats.putBytes, 0);
    expect(written).toBeGreaterThanOrEqual(4 * 100_000);
    expect(reads.stats.dropped.malformed).toBe(0);
    console.log(`put ${data.length} bytes (2-of-4, ${written} share bytes) through the mixnet in ${ms} ms`);
  }, 180_000);

  it('repairs a lost share through the mixnet: the regenerated share is put through the providers', async () => {
    const four = infos.slice(0, 4);
    const secret = new Uint8Array(32).fill(8);
    const put = await mixOnly(ownerId, four).putStream(bytesSource(new Uint8Array(randomBytes(12_000))), () => secret, 3_600_000, { k: 2, n: 4 });
    // Server 0 loses its share (a disk replaced): repair regenerates it onto a server holding none.
    const lost = servers[0]!.srv.store.list(put.storageIndex)[0]!;
    rmSync(join(root, 'srv0', put.storageIndex), { recursive: true, force: true });
    const putBytes = servers.map((s) => s.mixServer.stats.putBytes);
    const r = await mixOnly(ownerId, four).repair(put.verifyCap, secret, 3_600_000);
    expect(r.missing).toEqual([lost]);
    expect([...r.repaired.keys()]).toEqual([lost]);
    expect(servers[0]!.srv.store.list(put.storageIndex)).toEqual([lost]);
    expect(servers[0]!.mixServer.stats.putBytes).toBeGreaterThan(putBytes[0]!);
    for (const s of servers) expect(s.srv.seen).toEqual([]);
  }, 60_000);

  it('writes a chunk that overtook the bytes before it once they come, then answers it', async () => {
    const si = 'b'.repeat(26);
    const share = new Uint8Array(randomBytes(3 * MAX_PUT_CHUNK + 100));
    const target = servers[0]!;
    const ch = reads.open(infos[0]!, ownerId)!;
    const base = { op: 'put', si, num: 2, leaseSecret: toHex(new Uint8Array(32).fill(9)), durationMs: 3_600_000, total: share.length } as const;
    const heldBefore = target.mixServer.stats.held;
    // The tail first: held (the server has none of the share yet), answered once the head is written.
    const tail = ch.request({ ...base, offset: 2 * MAX_PUT_CHUNK }, share.subarray(2 * MAX_PUT_CHUNK));
    await waitUntil(() => target.mixServer.stats.held > heldBefore || undefined, 'the early chunk held');
    const head = await ch.request({ ...base, offset: 0 }, share.subarray(0, 2 * MAX_PUT_CHUNK));
    expect(head.header).toEqual({ ok: true });
    expect((await tail).header).toEqual({ ok: true });
    expect(Buffer.from(target.srv.store.get(si, 2)!).equals(share)).toBe(true);
    expect(target.mixServer.stats.heldDropped).toBe(0);
  }, 60_000);

  it('a put beyond a server\'s quota fails with a clear error; a stranger is refused', async () => {
    const small = [infos[4]!];
    const data = new Uint8Array(randomBytes(30_000));
    await expect(mixOnly(ownerId, small).putStream(bytesSource(data), () => new Uint8Array(32).fill(6), 3_600_000, { k: 1, n: 1 }))
      .rejects.toThrow(/does not fit this server's quota \(quota-exceeded\)/);
    const stranger = NodeIdentity.fromSeed(new Uint8Array(randomBytes(32)));
    await expect(mixOnly(stranger, small).putStream(bytesSource(data.subarray(0, 5_000)), () => new Uint8Array(32).fill(7), 3_600_000, { k: 1, n: 1 }))
      .rejects.toThrow(/contacts/);
    expect(servers[4]!.srv.store.usedBytes).toBe(0);
    expect(servers[4]!.srv.seen).toEqual([]);
  }, 60_000);
});
