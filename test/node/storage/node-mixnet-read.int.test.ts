/**
 * Storage reads through the mixnet as the daemon wires them (NodeStorage with the node's mixnet,
 * docs/protocol/storage.md §10), on the loopback mixnet of test/support/mix-world.ts: a serving
 * PeerNode names its provider in its signed announcement and answers from its mailbox; a reader
 * node that may dial nobody, with `reads: 'mixnet'`, learns the announcement (handed over as
 * replication would) and reads the file byte-identical through the providers; a node that holds
 * no announcement reads it the same way from the hint a PayPub offer carries (key, endpoint,
 * provider), as a buyer does. With `reads: 'mixnet'` the reader, a contact of the server, also
 * puts a file through the providers (puts through the mixnet) and reads it back.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { STORAGE_SERVER_TYPE } from '../../../src/node/storage/announce.js';
import { NodeStorage } from '../../../src/node/storage/service.js';
import { nodeContentStore } from '../../../src/node/storage/content-store.js';
import { equalBytes, toHex } from '../../../src/util/bytes.js';
import Fastify from 'fastify';
import { installErrorHandler } from '../../../src/api/errors.js';
import { storageRoutes } from '../../../src/node/storage/routes.js';
import { ContactStore } from '../../../src/node/contacts.js';
import { openNodeDatabase } from '../../../src/node/db.js';
import { NodeIdentity } from '../../../src/node/identity.js';
import { MixWorld, type RelayedPeer, stopRelayedPeer } from '../../support/mix-world.js';
import { waitUntil } from '../../support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'dd-node-storemix-'));
const world = new MixWorld();
const peers: RelayedPeer[] = [];
const storages: NodeStorage[] = [];

afterAll(async () => {
  for (const s of storages) await s.close();
  for (const p of peers) await stopRelayedPeer(p);
  await world.close();
  rmSync(root, { recursive: true, force: true });
});

describe('storage reads through the mixnet in NodeStorage', () => {
  it('announces the provider and serves a reader that reaches it only through the providers', async () => {
    const pa = await world.start({ provider: true, meanDelayMs: 0 });
    const pb = await world.start({ provider: true, meanDelayMs: 0 });
    for (const layer of [1, 2, 3]) await world.start({ layer, meanDelayMs: 0 });
    // The reader is a contact of the server (added before, as an introduction would): the server stores for it.
    const readerSeed = sha256(utf8('storemix reader'));
    const db = openNodeDatabase(join(root, 'server.sqlite'));
    new ContactStore(db).add({ node: NodeIdentity.fromSeed(readerSeed).publicKey, endpoints: [] });
    db.close();
    const server = await world.startRelayedPeer({ seed: sha256(utf8('storemix server')), dbPath: join(root, 'server.sqlite'), home: pb, dial: true });
    peers.push(server);
    const serverStorage = await NodeStorage.start(server.node, {
      dir: join(root, 'server'), server: { quotaBytes: 1 << 26 }, shares: { k: 1, happy: 1, n: 1 }, mixnet: server.mix,
    });
    storages.push(serverStorage);
    // The announcement names the provider once the link is up (re-announced on 'linked' if it came later).
    const announced = await waitUntil(() => serverStorage.directory.get(server.node.id)?.provider, 'an announcement naming the provider');
    expect(equalBytes(announced, pb.identityKey)).toBe(true);
    const data = new Uint8Array(randomBytes(60_000));
    const put = await serverStorage.put(data, { keep: false });

    const reader = await world.startRelayedPeer({ seed: readerSeed, dbPath: join(root, 'reader.sqlite'), home: pa, dial: false });
    peers.push(reader);
    const readerStorage = await NodeStorage.start(reader.node, { dir: join(root, 'reader'), mixnet: reader.mix, reads: 'mixnet' });
    storages.push(readerStorage);
    // As replication would hand them over: the server's announcements.
    const f = server.node.store.feed(server.node.id)!;
    for (const e of server.node.store.range(server.node.id, 1, f.length)) if (e.header.type === STORAGE_SERVER_TYPE) readerStorage.directory.add(e);

    const got = await readerStorage.get(put.readCap);
    expect(Buffer.from(got).equals(data)).toBe(true);
    expect(reader.direct).toEqual([]);
    // In `mixnet`, a check's survey goes through the providers too (this reader may dial nobody).
    const checked = await readerStorage.check(put.readCap);
    expect(checked).toMatchObject({ healthy: true, sharesFound: 1 });
    const { reads } = readerStorage.mixnetStats();
    const { served } = serverStorage.mixnetStats();
    expect(reads!.requests).toBeGreaterThan(0);
    expect(served!.answered).toBe(reads!.requests);
    expect(served!.dropped).toEqual({ malformed: 0, queueFull: 0, sendFailed: 0 });
    // What `GET /storage/server` and `store server status` show.
    const app = Fastify();
    installErrorHandler(app);
    await app.register(storageRoutes, { prefix: '/storage', service: () => readerStorage });
    const status = (await app.inject({ method: 'GET', url: '/storage/server' })).json<{ reads: string; mixnet: { reads: { requests: number }; served: null }; knownServers: { provider: string | null }[] }>();
    await app.close();
    expect(status.reads).toBe('mixnet');
    expect(status.mixnet.reads.requests).toBe(reads!.requests);
    expect(status.mixnet.served).toBeNull();
    expect(status.knownServers.map((k) => k.provider)).toEqual([toHex(pb.identityKey)]);

    // A buyer's case: a node that holds no announcement, given the hint an offer carries (key,
    // endpoint, provider), reads through the providers too (in `auto`, the default, without Tor).
    const buyerStorage = await NodeStorage.start(reader.node, { dir: join(root, 'buyer'), mixnet: reader.mix });
    storages.push(buyerStorage);
    expect(buyerStorage.directory.servers()).toEqual([]);
    const hint = { id: server.node.id, url: serverStorage.status().url!, provider: pb.identityKey };
    expect(put.holders.map((h) => Buffer.from(h.provider!).toString('hex'))).toEqual([Buffer.from(pb.identityKey).toString('hex')]);
    const bought = await nodeContentStore(buyerStorage).get(put.readCap, { servers: [hint] });
    expect(Buffer.from(bought).equals(data)).toBe(true);
    expect(buyerStorage.mixnetStats().reads!.requests).toBeGreaterThan(0);

    // With `direct`, the same reader (which may dial nobody) cannot read: the read above did not dial.
    const directStorage = await NodeStorage.start(reader.node, { dir: join(root, 'reader2'), reads: 'direct' });
    storages.push(directStorage);
    for (const e of server.node.store.range(server.node.id, 1, f.length)) if (e.header.type === STORAGE_SERVER_TYPE) directStorage.directory.add(e);
    await expect(directStorage.get(put.readCap)).rejects.toThrow(/found 0 valid shares/);

    // With `mixnet`, puts go through the providers too (storage.md §10): the reader, which may dial
    // nobody, puts a file; the server wrote it from put requests out of its mailbox.
    const before = serverStorage.mixnetStats().served!.putBytes;
    const data2 = new Uint8Array(randomBytes(30_000));
    const put2 = await readerStorage.put(data2, { keep: false, shares: { k: 1, happy: 1, n: 1 } });
    expect(serverStorage.mixnetStats().served!.putBytes - before).toBeGreaterThanOrEqual(30_000);
    expect(Buffer.from(await readerStorage.get(put2.readCap)).equals(data2)).toBe(true);
    expect(reader.direct).toEqual([]);
  }, 90_000);
});
