/**
 * Shared files over real PeerNodes and real storage servers on loopback: Alice shares a file with
 * her group through the routes; Bob and Carol list and fetch it (the capability stays inside each
 * node: not in events, not in API answers). Carol is removed; Bob, silent since, shares a second
 * file. Alice fetches it; Carol's node never learns it, and her whole database (every sealed value
 * opened with her own key) holds neither its capability nor a key that opens the message carrying
 * it. She can still fetch the file shared before her removal: she kept its capability.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { installErrorHandler } from '../../../src/api/errors.js';
import { API_TOKEN_FILE, API_URL_FILE } from '../../../src/api/token.js';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { decodeFileShare } from '../../../src/node/groups/files.js';
import { decodeMessage } from '../../../src/node/groups/message.js';
import { groupRoutes } from '../../../src/node/groups/routes.js';
import { GroupService } from '../../../src/node/groups/service.js';
import { readGroupEntry } from '../../../src/node/groups/transport.js';
import { PeerNode } from '../../../src/node/node.js';
import { NodeStorage, type NodeStorageOptions } from '../../../src/node/storage/service.js';
import { toHex } from '../../../src/util/bytes.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { expectCode } from '../../support/errors.js';
import { waitUntil } from '../../support/wait.js';
import { cli } from './cli-run.js';
import { bruteForce, everythingHeld } from './held.js';

const root = mkdtempSync(join(tmpdir(), 'dd-group-files-'));

interface Running {
  name: string;
  seed: Uint8Array;
  node: PeerNode;
  storage: NodeStorage;
  groups: GroupService;
  events: { type: string; data: Record<string, unknown> }[];
}

const all: Running[] = [];
const apps: FastifyInstance[] = [];

async function start(name: string, opts: Partial<NodeStorageOptions> = {}): Promise<Running> {
  const seed = sha256(utf8(`group files ${name}`));
  const node = new PeerNode({ seed, dbPath: join(root, `${name}.sqlite`), reconnectMinMs: 100, reconnectMaxMs: 400, inviteWaitMs: 2000 });
  await node.ready();
  const events: Running['events'] = [];
  const publish = (type: string, _id: string, data: Record<string, unknown>): void => void events.push({ type, data });
  const storage = await NodeStorage.start(node, { dir: join(root, name), shares: { k: 2, happy: 3, n: 3 }, publish, ...opts });
  const groups = new GroupService(node, publish, () => storage);
  groups.start();
  const r = { name, seed, node, storage, groups, events };
  all.push(r);
  return r;
}

async function api(r: Running): Promise<FastifyInstance> {
  const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } });
  installErrorHandler(app);
  await app.register(groupRoutes, { prefix: '/node/groups', service: () => r.groups });
  apps.push(app);
  return app;
}

async function introduce(inviter: PeerNode, joiner: PeerNode): Promise<void> {
  await joiner.bootstrapFromIntroduction(inviter.createIntroductionToken());
  await waitUntil(() => inviter.connectedPeers().some((p) => toHex(p) === toHex(joiner.id)), 'connected', { timeoutMs: 5000, intervalMs: 10 });
}

const wait = (cond: () => boolean, what: string): Promise<unknown> => waitUntil(cond, what, { timeoutMs: 20_000, intervalMs: 20 });
const fileEvents = (r: Running): Record<string, unknown>[] => r.events.filter((e) => e.type === 'node.group.file').map((e) => e.data);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  for (const r of all) {
    r.groups.close();
    await r.storage.close().catch(() => undefined);
    await r.node.close().catch(() => undefined);
  }
  rmSync(root, { recursive: true, force: true });
});

describe('groups: shared files over storage', () => {
  it('members share, list and fetch files; a removed member cannot unwrap one shared afterwards', { timeout: 120_000 }, async () => {
    const servers: Running[] = [];
    for (let i = 0; i < 3; i++) servers.push(await start(`s${i}`, { server: { quotaBytes: 4 << 20 } }));
    const [alice, bob, carol] = [await start('alice'), await start('bob'), await start('carol')];
    for (const r of [alice, bob, carol]) {
      for (const s of servers) await r.node.bootstrapFromIntroduction(s.node.createIntroductionToken());
    }
    await introduce(alice.node, bob.node);
    await introduce(alice.node, carol.node);
    for (const r of [alice, bob, carol]) await wait(() => r.storage.directory.servers().length >= 3, `${r.name} knows the storage servers`);

    const group = alice.groups.create('team');
    alice.groups.add(group, bob.node.id);
    alice.groups.add(group, carol.node.id);
    await wait(() => [bob, carol].every((r) => r.groups.member.groups().some((g) => g.status === 'member' && g.members === 3)), 'bob and carol joined');

    // Alice shares through the route; the answer and every event name the file, never its capability.
    const aliceApi = await api(alice);
    const first = randomBytes(50_000);
    const shared = await aliceApi.inject({ method: 'POST', url: `/node/groups/${toHex(group)}/share?name=plans.pdf`, headers: { 'content-type': 'application/octet-stream' }, payload: first });
    expect(shared.statusCode, shared.body).toBe(200);
    expect(shared.json()).toMatchObject({ group: toHex(group), size: 50_000 });
    await wait(() => fileEvents(bob).length === 1 && fileEvents(carol).length === 1, 'bob and carol saw the file');
    expect(fileEvents(bob)[0]).toMatchObject({ group: toHex(group), sender: toHex(alice.node.id), name: 'plans.pdf', size: 50_000 });
    const bobApi = await api(bob);
    const listed = await bobApi.inject({ method: 'GET', url: `/node/groups/${toHex(group)}/files` });
    expect(listed.statusCode, listed.body).toBe(200);
    const files = listed.json<{ files: { id: number; name: string; size: number }[] }>().files;
    expect(files.map((f) => [f.name, f.size])).toEqual([['plans.pdf', 50_000]]);
    const got = await bobApi.inject({ method: 'GET', url: `/node/groups/${toHex(group)}/files/${files[0]!.id}` });
    expect(got.statusCode).toBe(200);
    expect(Buffer.from(got.rawPayload).equals(first)).toBe(true);
    const firstCap = (await carol.groups.fetch(group, carol.groups.files(group)[0]!.id)).cap;
    for (const r of [alice, bob, carol]) expect(JSON.stringify(r.events)).not.toContain(firstCap.split(':')[2]);
    // messages show a file as a line of text
    const msgs = await bobApi.inject({ method: 'GET', url: `/node/groups/${toHex(group)}/messages` });
    expect(msgs.json<{ messages: { text: string; file?: unknown }[] }>().messages.at(-1)).toMatchObject({ text: expect.stringContaining('plans.pdf') as unknown, file: { name: 'plans.pdf', size: 50_000 } });
    // the CLI against Bob's routes: share, files, fetch
    const url = await bobApi.listen({ host: '127.0.0.1', port: 0 });
    const datadir = join(root, 'bob-cli');
    mkdirSync(datadir);
    writeFileSync(join(datadir, API_URL_FILE), url, { mode: 0o600 });
    writeFileSync(join(datadir, API_TOKEN_FILE), 'token', { mode: 0o600 });
    const notes = randomBytes(5_000);
    writeFileSync(join(root, 'notes.bin'), notes);
    expect(await cli(datadir, 'group', 'share', toHex(group), join(root, 'notes.bin'))).toMatch(/^shared as file #\d+ \(5000 bytes\)$/);
    const lines = (await cli(datadir, 'group', 'files', toHex(group))).split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(new RegExp(`^#(\\d+) "notes.bin" 5000 bytes, from ${toHex(bob.node.id).slice(0, 12)} at `));
    const n = /^#(\d+)/.exec(lines[1]!)![1]!;
    expect(await cli(datadir, 'group', 'fetch', toHex(group), n, '--out', join(root, 'notes.out'))).toBe('wrote 5000 bytes to ' + join(root, 'notes.out'));
    expect(readFileSync(join(root, 'notes.out')).equals(notes)).toBe(true);
    await expect(cli(datadir, 'group', 'fetch', toHex(group), n, '--out', join(root, 'notes.out'))).rejects.toSatisfy((e: unknown) => isDeaddropError(e, 'BAD_INPUT'));
    await wait(() => [alice, carol].every((r) => fileEvents(r).some((e) => e.name === 'notes.bin')), 'alice and carol saw bob\'s notes');

    // bad input: no such file, no body
    expect((await bobApi.inject({ method: 'GET', url: `/node/groups/${toHex(group)}/files/999999` })).statusCode).toBe(404);
    expect((await bobApi.inject({ method: 'POST', url: `/node/groups/${toHex(group)}/share?name=x`, payload: { not: 'bytes' } })).statusCode).toBe(400);

    // Carol is removed. Bob has not sent anything since; he shares a second file.
    alice.groups.remove(group, carol.node.id);
    await wait(() => bob.groups.member.members(group).length === 2, 'bob saw the removal');
    await wait(() => carol.groups.member.groups().some((g) => g.status === 'removed'), 'carol learned she is out');
    const second = randomBytes(30_000);
    const { id } = await bob.groups.share(group, second, 'plans-v2.pdf');
    await wait(() => fileEvents(alice).some((e) => e.name === 'plans-v2.pdf'), 'alice saw the second file');
    const aliceFile = alice.groups.files(group).find((f) => f.name === 'plans-v2.pdf')!;
    const fetched = await alice.groups.fetch(group, aliceFile.id);
    expect(Buffer.from(fetched.data).equals(second)).toBe(true);

    // Carol's node has Bob's whole feed (it follows him), yet learns nothing of the second file.
    await wait(() => (carol.node.store.feed(bob.node.id)?.length ?? 0) === bob.node.store.feed(bob.node.id)!.length, 'carol has bob\'s whole feed');
    expect(fileEvents(carol).map((e) => e.name)).toEqual(['plans.pdf', 'notes.bin']);
    expect(carol.groups.files(group).map((f) => f.name)).toEqual(['plans.pdf', 'notes.bin']);
    const held = everythingHeld({ identity: carol.node.identity, db: carol.node.store.db, seed: carol.seed });
    const has = (s: string): boolean => held.some((b) => Buffer.from(b).includes(Buffer.from(s)));
    expect(has(fetched.cap)).toBe(false);
    const shareMessage = bob.groups.member.read(group, id - 1, 1)[0]!;
    expect(decodeFileShare(shareMessage.plaintext)?.cap).toBe(fetched.cap);
    // the message as it went out: the last group message in Bob's feed (opened here as Alice, its
    // recipient, would); Carol could get these bytes from anyone, and no key she holds opens them
    const bobFeed = carol.node.store.range(bob.node.id, 1, bob.node.store.feed(bob.node.id)!.length);
    const wire = bobFeed.map((e) => readGroupEntry(alice.node.identity, e, new Map())).filter((c) => c?.kind === 'message').at(-1)!;
    const sent = decodeMessage(wire.bytes);
    expect(sent.index).toBe(0); // the first message of Bob's new chain: he rotated before it
    expect(bruteForce(held, sent)).toBeNull();
    // what she kept: the capability of the file shared before, and with it the file
    expect(has(firstCap)).toBe(true);
    expect(Buffer.from((await carol.groups.fetch(group, carol.groups.files(group)[0]!.id)).data).equals(first)).toBe(true);
    await expectCode(carol.groups.fetch(group, id), 'NOT_FOUND');
  });
});
