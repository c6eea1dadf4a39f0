/**
 * Storage on real PeerNodes over real sockets: five nodes opt in as storage servers and announce
 * themselves in their signed logs; Alice and Bob learn them only by replication. A file put by
 * Alice (3-of-5, happy 4) through the API routes is read back byte-identical by Bob, still after
 * n−k servers stop; a corrupted share is found and repaired onto a fresh server by the scheduled
 * maintenance; a quota refusal, a stranger's upload and bad capabilities are clear errors.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { PeerNode } from '../../../src/node/node.js';
import { NodeStorage, type NodeStorageOptions } from '../../../src/node/storage/service.js';
import { encodeFile } from '../../../src/node/storage/immutable.js';
import { StorageConnection } from '../../../src/node/storage/server/storage-service.js';
import { NodeIdentity } from '../../../src/node/identity.js';
import { storageRoutes } from '../../../src/node/storage/routes.js';
import { installErrorHandler } from '../../../src/api/errors.js';
import { waitUntil } from '../../support/wait.js';
import { expectCode } from '../../support/errors.js';

const root = mkdtempSync(join(tmpdir(), 'dd-node-storage-'));

interface Running {
  name: string;
  node: PeerNode;
  storage: NodeStorage;
  events: { type: string; data: Record<string, unknown> }[];
}

async function start(name: string, opts: Partial<NodeStorageOptions> = {}): Promise<Running> {
  const node = new PeerNode({ seed: sha256(utf8(`storage node ${name}`)), dbPath: join(root, `${name}.sqlite`), reconnectMinMs: 100, reconnectMaxMs: 400 });
  await node.ready();
  const events: Running['events'] = [];
  const storage = await NodeStorage.start(node, {
    dir: join(root, name), shares: { k: 3, happy: 4, n: 5 }, publish: (type, _id, data) => events.push({ type, data }), ...opts,
  });
  return { name, node, storage, events };
}

async function stop(r: Running): Promise<void> {
  await r.storage.close();
  await r.node.close();
}

async function mesh(a: Running, others: readonly Running[]): Promise<void> {
  for (const o of others) await a.node.bootstrapFromIntroduction(o.node.createIntroductionToken());
}

async function api(r: Running): Promise<FastifyInstance> {
  const app = Fastify();
  installErrorHandler(app);
  await app.register(storageRoutes, { prefix: '/storage', service: () => r.storage });
  return app;
}

describe('storage on peer nodes: announcements by replication, put/get/check/repair', () => {
  const all: Running[] = [];
  const apps: FastifyInstance[] = [];
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await Promise.all(all.map((r) => stop(r).catch(() => undefined)));
    rmSync(root, { recursive: true, force: true });
  });

  it('stores across five servers, survives n−k gone, repairs a corrupt share onto a fresh server', { timeout: 120_000 }, async () => {
    const servers: Running[] = [];
    for (let i = 0; i < 5; i++) servers.push(await start(`s${i}`, { server: { quotaBytes: 4 << 20 } }));
    const alice = await start('alice', { checkIntervalMs: 600_000 });
    const bob = await start('bob');
    all.push(...servers, alice, bob);

    // Too few servers known yet: a clear error, nothing placed.
    await expectCode(alice.storage.put(new Uint8Array(10)), 'CONFLICT', /0 storage servers known, need at least 4/);

    await mesh(alice, servers);
    await mesh(bob, servers);
    for (const r of [alice, bob]) await waitUntil(() => r.storage.directory.servers().length === 5, `${r.name} verified five announcements`);
    expect(alice.storage.status().knownServers.every((s) => !s.self)).toBe(true);

    // Put through Alice's API, read through Bob's.
    const aliceApi = await api(alice);
    const bobApi = await api(bob);
    apps.push(aliceApi, bobApi);
    // Above fastify's default body limit: the route streams the body to a spool file instead of buffering it.
    const data = randomBytes(3_000_000);
    const op = 'ab'.repeat(16);
    const put = await aliceApi.inject({ method: 'POST', url: `/storage/put?name=report.bin&op=${op}`, headers: { 'content-type': 'application/octet-stream' }, payload: data });
    expect(put.statusCode, put.body).toBe(200);
    const { readCap, verifyCap, storageIndex } = put.json<{ readCap: string; verifyCap: string; storageIndex: string }>();
    expect(readCap).toMatch(/^dd-chk:r:/);
    expect(alice.events.some((e) => e.type === 'storage.progress' && e.data.op === op && e.data.phase === 'upload')).toBe(true);
    expect(alice.events.find((e) => e.type === 'storage.put')?.data).toMatchObject({ op, storageIndex, size: 3_000_000 });
    expect(readdirSync(join(root, 'alice', 'uploads')), 'the spool file is removed after the put').toEqual([]);
    expect(JSON.stringify(alice.events)).not.toContain(readCap.split(':')[2]);
    const holders = servers.filter((s) => s.storage.server!.store.list(storageIndex).length > 0);
    expect(holders.length).toBe(5);

    const got = await bobApi.inject({ method: 'POST', url: '/storage/get', payload: { cap: readCap } });
    expect(got.statusCode).toBe(200);
    expect(Buffer.compare(got.rawPayload, data)).toBe(0);

    // ls: the file is kept, its read cap comes back unsealed.
    const ls = (await aliceApi.inject({ method: 'GET', url: '/storage/files' })).json<{ files: { name: string; cap: string; verifyCap: string }[] }>();
    expect(ls.files).toEqual([expect.objectContaining({ name: 'report.bin', cap: readCap, verifyCap })]);

    // Corrupt the share on s2, add a fresh server s5; the scheduled round repairs onto it.
    const sharesDir = join(root, 's2', 'shares', storageIndex);
    const num = readdirSync(sharesDir).find((f) => /^\d+$/.test(f))!;
    writeFileSync(join(sharesDir, num), randomBytes(100));
    const fresh = await start('s5', { server: { quotaBytes: 4 << 20 } });
    all.push(fresh);
    await mesh(alice, [fresh]);
    await mesh(bob, [fresh]);
    await waitUntil(() => alice.storage.directory.servers().length === 6 && bob.storage.directory.servers().length === 6, 'the fresh server verified');
    const check = (await aliceApi.inject({ method: 'POST', url: '/storage/check', payload: { cap: verifyCap } })).json<{ healthy: boolean; problems: string[] }>();
    expect(check.healthy).toBe(false);
    expect(check.problems.join('\n')).toMatch(new RegExp(`share ${num}: `));
    await alice.storage.maintain();
    const scheduled = alice.events.filter((e) => e.type === 'storage.check' && e.data.scheduled === true).at(-1);
    expect(scheduled?.data).toMatchObject({ storageIndex, repaired: 1 });
    expect(fresh.storage.server!.store.list(storageIndex)).toEqual([Number(num)]);
    expect(alice.storage.list()[0]).toMatchObject({ repairedTotal: 1, healthy: true });

    // n−k = 2 of the original servers gone: still readable, from the repaired share among others.
    await stop(servers[0]!);
    await stop(servers[1]!);
    expect(Buffer.compare(Buffer.from(await bob.storage.get(readCap)), data)).toBe(0);
    await stop(servers[3]!);
    await expectCode(bob.storage.get(readCap), 'NOT_FOUND', /found 2 valid shares, need 3/);
  });

  it('refuses a file beyond every server\'s quota and bad capabilities, with clear errors', { timeout: 60_000 }, async () => {
    const small: Running[] = [];
    for (let i = 0; i < 4; i++) small.push(await start(`q${i}`, { server: { quotaBytes: 100_000 } }));
    const carol = await start('carol');
    all.push(...small, carol);
    await mesh(carol, small);
    await waitUntil(() => carol.storage.directory.servers().length === 4, 'Carol verified four announcements');
    const app = await api(carol);
    apps.push(app);
    const big = await app.inject({ method: 'POST', url: '/storage/put', headers: { 'content-type': 'application/octet-stream' }, payload: randomBytes(600_000) });
    expect(big.statusCode).toBe(422);
    expect(big.json()).toMatchObject({ error: 'REJECTED' });
    expect(big.json<{ message: string }>().message).toMatch(/placed shares on 0 servers, need 4: share \d+ on ws:\/\/127\.0\.0\.1:\d+: share of \d+ bytes (does not fit|exceeds)/);
    for (const cap of ['hello world', 'dd-chk:r:zzzz:abc:3:5:10', 'dd-chk:x:aaaa:bbbb:3:5:10']) {
      const r = await app.inject({ method: 'POST', url: '/storage/get', payload: { cap } });
      expect(r.statusCode, cap).toBe(400);
      expect(r.json<{ message: string }>().message).toMatch(/capability/);
    }
    const verifyOnly = await app.inject({ method: 'POST', url: '/storage/get', payload: { cap: encodeFile(new Uint8Array(10), { k: 3, n: 5 }).verifyCap } });
    expect(verifyOnly.json()).toMatchObject({ error: 'BAD_INPUT', message: expect.stringMatching(/read capability/) });
    const status = (await app.inject({ method: 'GET', url: '/storage/server' })).json<{ serving: boolean; knownServers: unknown[] }>();
    expect(status).toMatchObject({ serving: false });
    expect(status.knownServers.length).toBe(4);
    // A stranger (no contact of the server) may read but not store.
    const stranger = NodeIdentity.fromSeed(new Uint8Array(randomBytes(32)));
    const conn = await StorageConnection.open(small[0]!.storage.server!.url, stranger);
    const si = encodeFile(new Uint8Array(10)).storageIndex;
    const refused = await conn.request({ op: 'put', si, num: 0, leaseSecret: '00'.repeat(32), durationMs: 1000 }, Uint8Array.of(1));
    expect(refused.header).toMatchObject({ ok: false, code: 'not-allowed' });
    expect((await conn.request({ op: 'list', si })).header).toMatchObject({ ok: true, nums: [] });
    conn.close();
    const srvApi = await api(small[0]!);
    apps.push(srvApi);
    expect((await srvApi.inject({ method: 'GET', url: '/storage/server' })).json()).toMatchObject({ serving: true, quotaBytes: 100_000, usedBytes: 0 });
  });

  it('selects the Tahoe-LAFS backend by --storage tahoe:<url>', async () => {
    const node = new PeerNode({ seed: sha256(utf8('storage node tahoe')), dbPath: join(root, 'tahoe.sqlite') });
    await node.ready();
    try {
      const s = await NodeStorage.start(node, { dir: join(root, 'tahoe'), backend: { kind: 'tahoe', url: 'http://127.0.0.1:1' } });
      expect(s.backendKind).toBe('tahoe');
      // A well-formed Tahoe read cap goes to the grid's web API (nothing listens there); the peer
      // backend would have refused it as not one of its capabilities (BAD_INPUT).
      const tahoeCap = `dd-tahoe:URI:CHK:${'b'.repeat(25)}q:${'c'.repeat(51)}q:2:4:1016:${'a'.repeat(52)}`;
      await expectCode(s.get(tahoeCap), 'BACKEND_UNREACHABLE');
      await s.close();
    } finally {
      await node.close();
    }
  });
});
