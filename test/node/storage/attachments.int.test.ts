/**
 * Feed entries with attachments by capability, on two real PeerNodes over loopback sockets that
 * store for each other (each a storage server, shares 1/2/2: one share on each). Alice puts a file
 * through her API's storage route and appends an entry carrying its read capability (header
 * `attach`); Bob receives the entry by replication, reads the attachment from the entry through
 * his API and fetches the file byte-identical with his own storage client. Malformed attachment
 * lines in a stranger's entry are dropped; a bad capability in an append is a clear error.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { PeerNode } from '../../../src/node/node.js';
import { nodeRoutes } from '../../../src/node/routes.js';
import { NodeStorage } from '../../../src/node/storage/service.js';
import { storageRoutes } from '../../../src/node/storage/routes.js';
import { installErrorHandler } from '../../../src/api/errors.js';
import { toHex } from '../../../src/util/bytes.js';
import { waitUntil } from '../../support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'dd-attach-'));

interface Running {
  name: string;
  node: PeerNode;
  storage: NodeStorage;
  app: FastifyInstance;
}

async function start(name: string): Promise<Running> {
  const node = new PeerNode({ seed: sha256(utf8(`attachments ${name}`)), dbPath: join(root, `${name}.sqlite`), reconnectMinMs: 100, reconnectMaxMs: 400 });
  await node.ready();
  const storage = await NodeStorage.start(node, { dir: join(root, name), shares: { k: 1, happy: 2, n: 2 }, server: { quotaBytes: 8 << 20 } });
  const app = Fastify();
  installErrorHandler(app);
  // The node routes need the node and two listings these tests do not read.
  await app.register(nodeRoutes, { prefix: '/node', service: () => ({ node, contactInfo: () => ({}), introductions: () => [] }) });
  await app.register(storageRoutes, { prefix: '/storage', service: () => storage });
  return { name, node, storage, app };
}

describe('feed attachments by capability, two nodes storing for each other', () => {
  const all: Running[] = [];
  afterAll(async () => {
    for (const r of all) {
      await r.app.close();
      await r.storage.close();
      await r.node.close();
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('carries a read capability in an entry; the contact fetches the file from it', { timeout: 60_000 }, async () => {
    const alice = await start('alice');
    const bob = await start('bob');
    all.push(alice, bob);
    await alice.node.bootstrapFromIntroduction(bob.node.createIntroductionToken());
    for (const r of [alice, bob]) await waitUntil(() => r.storage.directory.servers().length === 2, `${r.name} verified both announcements`);

    const data = randomBytes(300_000);
    const put = await alice.app.inject({ method: 'POST', url: '/storage/put?name=photo.bin', headers: { 'content-type': 'application/octet-stream' }, payload: data });
    expect(put.statusCode, put.body).toBe(200);
    const { readCap, storageIndex } = put.json<{ readCap: string; storageIndex: string }>();
    // Storing for each other: one share on each node's server.
    expect(alice.storage.server!.store.list(storageIndex)).toHaveLength(1);
    expect(bob.storage.server!.store.list(storageIndex)).toHaveLength(1);

    const bad = await alice.app.inject({ method: 'POST', url: '/node/log', payload: { type: 'post', text: 'x', attach: [{ cap: 'dd-chk:v:nope' }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'BAD_INPUT', message: expect.stringMatching(/read capability/) });
    const badName = await alice.app.inject({ method: 'POST', url: '/node/log', payload: { type: 'post', attach: [{ cap: readCap, name: '../x' }] } });
    expect(badName.statusCode).toBe(400);

    const appended = await alice.app.inject({ method: 'POST', url: '/node/log', payload: { type: 'post', text: 'the photo', attach: [{ cap: readCap, name: 'photo.bin' }] } });
    expect(appended.statusCode, appended.body).toBe(200);
    const entry = appended.json<{ entry: { seq: number; header: Record<string, unknown>; attachments: unknown[] } }>().entry;
    expect(entry.header.attach).toBe(`${readCap} photo.bin`);
    expect(entry.attachments).toEqual([{ cap: readCap, name: 'photo.bin', size: 300_000 }]);

    // Bob gets the entry by replication and reads the attachment from it.
    const feed = toHex(alice.node.id);
    const seen = await waitUntil(async () => {
      const r = (await bob.app.inject({ method: 'GET', url: `/node/log/${feed}` })).json<{ entries: { seq: number; text?: string; attachments?: { cap: string; name: string | null; size: number | null }[] }[] }>();
      return r.entries.find((e) => e.seq === entry.seq);
    }, 'Bob holds Alice\'s entry');
    expect(seen.text).toBe('the photo');
    expect(seen.attachments).toEqual([{ cap: readCap, name: 'photo.bin', size: 300_000 }]);
    const got = await bob.app.inject({ method: 'POST', url: '/storage/get', payload: { cap: seen.attachments![0]!.cap } });
    expect(got.statusCode).toBe(200);
    expect(Buffer.compare(got.rawPayload, data)).toBe(0);

    // An entry whose `attach` header was written by hand: malformed lines are dropped, not fatal.
    alice.node.append({ header: { type: 'post', attach: `garbage\n${readCap} ok.bin\n${readCap} ../evil\ndd-chk:r:short` }, body: utf8('hand-made') });
    const last = await waitUntil(async () => {
      const r = (await bob.app.inject({ method: 'GET', url: `/node/log/${feed}` })).json<{ entries: { text?: string; attachments?: unknown[] }[] }>();
      return r.entries.find((e) => e.text === 'hand-made');
    }, 'Bob holds the hand-made entry');
    expect(last.attachments).toEqual([{ cap: readCap, name: 'ok.bin', size: 300_000 }]);
  });
});
