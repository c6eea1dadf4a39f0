/**
 * Storage reads through the mixnet (docs/protocol/storage.md §10) in test/support/storage-mix-lab.ts, on the loopback mixnet of
 * test/support/mix-world.ts: two providers and one mix per layer, real sockets, Sphinx packets.
 * Four storage servers keep their mailboxes at provider B; a reader homed at provider A reads a
 * file placed 2-of-4 on them with a route that refuses every dial, so everything it reads comes
 * through the providers. The servers' listeners record every connection and every refused
 * handshake: none may come from the reader. The servers record who sealed each request: never the
 * reader's node key, and a different key for each read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { sealBody } from '../../../src/node/mixnet/message.js';
import type { MixnetService } from '../../../src/node/mixnet/service.js';
import { StorageClient, type ServerInfo } from '../../../src/node/storage/client.js';
import { encodeFile } from '../../../src/node/storage/immutable.js';
import { MixStorageReads } from '../../../src/node/storage/mix-client.js';
import { encodeRequest, STORE_REQUEST } from '../../../src/node/storage/mix-codec.js';
import { toHex } from '../../../src/util/bytes.js';
import { StorageMixLab } from '../../support/storage-mix-lab.js';
import { waitUntil } from '../../support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'dd-storemix-'));
const lab = new StorageMixLab();
const { servers } = lab;
const readerId = NodeIdentity.fromSeed(new Uint8Array(32).fill(99));
let reader: MixnetService;
let reads: MixStorageReads;
let infos: ServerInfo[];

beforeAll(async () => {
  await lab.start({ root, serverIds: [0, 1, 2, 3].map((i) => NodeIdentity.fromSeed(new Uint8Array(32).fill(70 + i))), client: readerId });
  ({ client: reader, reads, infos } = lab);
}, 60_000);

afterAll(async () => {
  await lab.close();
  rmSync(root, { recursive: true, force: true });
});

/** A well-formed storage index nobody stored. */
const SI = 'a'.repeat(26);

/** A client that may read only through the mixnet: every dial is refused. */
const mixOnly = (): StorageClient => lab.mixOnly(readerId, infos);

describe('storage reads through mixnet providers', () => {
  it('reads a file byte-identical through the providers only; the servers see no connection and never the reader\'s key', async () => {
    const owner = NodeIdentity.fromSeed(new Uint8Array(32).fill(98));
    const data = new Uint8Array(randomBytes(150_000));
    const file = encodeFile(data, { k: 2, n: 4 });
    await new StorageClient(owner, infos).put(file, new Uint8Array(randomBytes(32)), 3_600_000);
    for (const s of servers) s.srv.seen.length = 0;

    // Streamed read (openRead + pipe: heads, tails, then k shares' blocks in ranges).
    const reader1 = await mixOnly().openRead(file.readCap);
    const hash = createHash('sha256');
    await reader1.pipe((chunk) => void hash.update(chunk));
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(reader1.rejected).toEqual([]);
    // Whole read (survey: every share fetched and verified).
    const got = await mixOnly().get(file.readCap);
    expect(Buffer.from(got.data).equals(data)).toBe(true);
    expect(got.unreachable).toEqual([]);

    // No connection (or attempt) reached any server's listener since the put.
    for (const s of servers) expect(s.srv.seen).toEqual([]);
    // Requests were sealed by read keys: never the reader's node key, one key per read operation.
    const keys = new Set(servers.flatMap((s) => s.sealedBy));
    expect(keys.size).toBe(2);
    expect(keys.has(toHex(readerId.publicKey))).toBe(false);
    // The reader's only link is to its own provider (A); the servers answered through SURBs.
    expect(servers.reduce((n, s) => n + s.mixServer.stats.answered, 0)).toBeGreaterThan(20);
    expect(reads.stats.dropped.malformed).toBe(0);
  }, 120_000);

  it('a server that lies through the mixnet is detected by verification and the others are used', async () => {
    const owner = NodeIdentity.fromSeed(new Uint8Array(32).fill(97));
    const data = new Uint8Array(randomBytes(40_000));
    const file = encodeFile(data, { k: 2, n: 4 });
    await new StorageClient(owner, infos).put(file, new Uint8Array(randomBytes(32)), 3_600_000);
    // Server 0 flips one byte of everything it reads from disk for the mixnet side.
    const liar = servers[0]!;
    const store = liar.srv.store;
    const honest = store.read.bind(store);
    store.read = (si, num, offset, length) => {
      const b = honest(si, num, offset, length);
      if (b && b.length > 0) b[b.length >> 1]! ^= 0x01;
      return b;
    };
    try {
      const got = await mixOnly().get(file.readCap);
      expect(Buffer.from(got.data).equals(data)).toBe(true);
      expect(got.rejected.join('\n')).toContain(liar.srv.url);
      const streamed = await mixOnly().openRead(file.readCap);
      const parts: Uint8Array[] = [];
      await streamed.pipe((c) => void parts.push(Uint8Array.from(c)));
      expect(Buffer.concat(parts).equals(data)).toBe(true);
      expect(streamed.rejected.join('\n')).toContain(liar.srv.url);
    } finally {
      store.read = honest;
    }
  }, 60_000);

  it('renews leases through the mixnet under the owner\'s key, which the server checks; no connection reaches it', async () => {
    const owner = NodeIdentity.fromSeed(new Uint8Array(32).fill(96));
    const secret = new Uint8Array(randomBytes(32));
    const file = encodeFile(new Uint8Array(randomBytes(10_000)), { k: 2, n: 4 });
    await new StorageClient(owner, infos).put(file, secret, 60_000);
    for (const s of servers) s.srv.seen.length = 0;
    const before = servers.map((s) => s.srv.store.leaseExpiry(file.storageIndex)!);
    const viaMix = new StorageClient(owner, infos, { route: () => null, reads: (s, who) => reads.open(s, who), renewsThroughReads: true });
    const r = await viaMix.repair(file.verifyCap, secret, 3_600_000, { renew: true });
    expect(r).toMatchObject({ healthy: [0, 1, 2, 3], renewed: 4 });
    servers.forEach((s, i) => expect(s.srv.store.leaseExpiry(file.storageIndex)!).toBeGreaterThan(before[i]! + 3_000_000));
    for (const s of servers) expect(s.srv.seen).toEqual([]);
    // The renewals were sealed by the owner's key; the survey's reads by a fresh one.
    expect(servers.every((s) => s.sealedBy.includes(toHex(owner.publicKey)))).toBe(true);
    // A secret with no lease, and a server that stores only for others, renew nothing.
    expect((await viaMix.repair(file.verifyCap, new Uint8Array(32).fill(1), 3_600_000, { renew: true })).renewed).toBe(0);
    servers[1]!.mixServer.mayStore = () => false;
    try {
      expect((await viaMix.repair(file.verifyCap, secret, 3_600_000, { renew: true })).renewed).toBe(3);
    } finally {
      servers[1]!.mixServer.mayStore = () => true;
    }
  }, 60_000);

  it('a server drops malformed requests and counts them, and keeps serving', async () => {
    const target = servers[0]!;
    const before = target.mixServer.stats.dropped.malformed;
    const stranger = NodeIdentity.fromSeed(new Uint8Array(randomBytes(32)));
    const provider = infos[0]!.provider!;
    const good = encodeRequest({ reqId: new Uint8Array(8), op: 'list', si: SI, num: 0, offset: 0, length: 0, surbs: [reader.createReplyBlock(provider, () => undefined)] });
    const junk = [
      Uint8Array.of(STORE_REQUEST), // truncated
      Uint8Array.of(STORE_REQUEST, 9, ...good.subarray(2)), // unknown version
      Uint8Array.of(...good, 0), // trailing byte
      Uint8Array.of(...good.subarray(0, good.length - 1)), // a SURB cut short
    ];
    for (const j of junk) reader.sendTo(provider, target.mix.identityKey, sealBody(stranger, target.mix.identityKey, j));
    await waitUntil(() => target.mixServer.stats.dropped.malformed >= before + junk.length || undefined, 'the malformed requests counted');
    expect(target.mixServer.stats.dropped.malformed).toBe(before + junk.length);
    // Still answers: a list of a storage index it does not hold is an empty list.
    const ch = reads.open(infos[0]!, stranger)!;
    const r = await ch.request({ op: 'list', si: SI });
    expect(r.header).toEqual({ ok: true, nums: [] });
    // A share it does not hold: not-found, as over the direct channel.
    const g = await ch.request({ op: 'get', si: SI, num: 1, offset: 0, length: 10 });
    expect(g.header.code).toBe('not-found');
  }, 60_000);

  it('gives up on a server that never answers after its retries, and close ends waiting reads at once', async () => {
    // A mailbox nobody fetches: the provider keeps the requests, no answer ever comes.
    const nobody = { id: NodeIdentity.fromSeed(new Uint8Array(randomBytes(32))).publicKey, url: 'ws://127.0.0.1:9', provider: infos[0]!.provider! };
    const quick = new MixStorageReads(reader, { requestTimeoutMs: 300, retries: 1 });
    const who = NodeIdentity.fromSeed(new Uint8Array(randomBytes(32)));
    await expect(quick.open(nobody, who)!.request({ op: 'list', si: SI })).rejects.toThrow(/no answer through the mixnet after 2 tries/);
    expect(quick.stats).toMatchObject({ requests: 2, retries: 1, failed: 1 });
    const slow = new MixStorageReads(reader, { requestTimeoutMs: 60_000 });
    const waiting = slow.open(nobody, who)!.request({ op: 'get', si: SI, num: 0, offset: 0, length: 100 });
    const t = Date.now();
    slow.close();
    await expect(waiting).rejects.toThrow(/closed/);
    expect(Date.now() - t).toBeLessThan(1000);
    quick.close();
  }, 30_000);
});
