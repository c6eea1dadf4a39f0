/**
 * Groups over real PeerNodes on loopback: ops, welcomes, sender keys and messages travel as
 * sealed entries of the members' feeds. Alice is a contact of Bob and of Carol, who are not
 * contacts of each other: what Bob and Carol send each other is relayed by Alice's node, which
 * follows both feeds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { installErrorHandler } from '../../../src/api/errors.js';
import { groupRoutes } from '../../../src/node/groups/routes.js';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { GroupService } from '../../../src/node/groups/service.js';
import { GROUP_ENTRY_TYPE } from '../../../src/node/groups/transport.js';
import { PeerNode } from '../../../src/node/node.js';
import { toHex } from '../../../src/util/bytes.js';
import { waitUntil } from '../../support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'dd-groups-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const running: { node: PeerNode; groups: GroupService }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    r.groups.close();
    await r.node.close();
  }
});

async function start(name: string): Promise<{ node: PeerNode; groups: GroupService; events: { type: string; data: Record<string, unknown> }[] }> {
  const node = new PeerNode({ seed: sha256(utf8(`group test ${name}`)), dbPath: join(root, `${name}.sqlite`), reconnectMinMs: 100, reconnectMaxMs: 400, inviteWaitMs: 2000 });
  await node.ready();
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const groups = new GroupService(node, (type, _id, data) => events.push({ type, data }));
  groups.start();
  running.push({ node, groups });
  return { node, groups, events };
}

async function introduce(inviter: PeerNode, joiner: PeerNode): Promise<void> {
  await joiner.bootstrapFromIntroduction(inviter.createIntroductionToken());
  await waitUntil(() => inviter.connectedPeers().some((p) => toHex(p) === toHex(joiner.id)), 'connected', { timeoutMs: 5000, intervalMs: 10 });
}

const texts = (events: { type: string; data: Record<string, unknown> }[]): string[] => events.filter((e) => e.type === 'node.group.message').map((e) => String(e.data.text));
const wait = (cond: () => boolean, what: string): Promise<unknown> => waitUntil(cond, what, { timeoutMs: 10_000, intervalMs: 20 });

describe('groups over the node transport', () => {
  it('create, add, post and read among three nodes; a removed node reads nothing new', async () => {
    const alice = await start('alice');
    const bob = await start('bob');
    const carol = await start('carol');
    await introduce(alice.node, bob.node);
    await introduce(alice.node, carol.node);

    const group = alice.groups.create('team');
    alice.groups.add(group, bob.node.id);
    alice.groups.add(group, carol.node.id);
    const three = (s: GroupService): boolean => {
      try {
        return s.member.members(group).length === 3;
      } catch {
        return false;
      }
    };
    await wait(() => three(bob.groups) && three(carol.groups), 'bob and carol joined');

    alice.groups.post(group, 'hello from alice');
    await wait(() => texts(bob.events).includes('hello from alice') && texts(carol.events).includes('hello from alice'), 'alice read by both');
    // bob and carol are not contacts: alice's node relays their feeds
    expect(bob.node.contacts().some((c) => toHex(c.node) === toHex(carol.node.id))).toBe(false);
    bob.groups.post(group, 'bob to all');
    await wait(() => texts(carol.events).includes('bob to all') && texts(alice.events).includes('bob to all'), 'bob read by carol through alice');

    alice.groups.remove(group, carol.node.id);
    await wait(() => bob.groups.member.members(group).length === 2, 'bob saw the removal');
    await wait(() => carol.groups.member.groups().some((g) => g.status === 'removed'), 'carol learned she is out');
    alice.groups.post(group, 'after carol left');
    bob.groups.post(group, 'bob after carol');
    await wait(() => texts(bob.events).includes('after carol left') && texts(alice.events).includes('bob after carol'), 'the rest read on');
    // carol's node holds the entries (it follows both feeds) but opens none of the new messages
    await wait(() => (carol.node.store.feed(bob.node.id)?.length ?? 0) === bob.node.store.feed(bob.node.id)!.length, 'carol has bob\'s whole feed');
    expect(texts(carol.events)).toEqual(['hello from alice', 'bob to all']);
    expect(carol.node.store.range(bob.node.id, 1, bob.node.store.feed(bob.node.id)!.length).some((e) => e.header.type === GROUP_ENTRY_TYPE)).toBe(true);
  }, 40_000);

  it('a node restarted catches up on entries that replicated while it was not listening', async () => {
    const alice = await start('alice2');
    const bob = await start('bob2');
    await introduce(alice.node, bob.node);
    const group = alice.groups.create('t');
    alice.groups.add(group, bob.node.id);
    await wait(() => bob.groups.member.groups().length === 1, 'bob joined');
    bob.groups.close();
    alice.groups.post(group, 'while bob was not listening');
    await wait(() => (bob.node.store.feed(alice.node.id)?.length ?? 0) === alice.node.store.feed(alice.node.id)!.length, 'entry replicated to bob');
    const events: string[] = [];
    const again = new GroupService(bob.node, (type, _id, data) => type === 'node.group.message' && events.push(String(data.text)));
    again.start();
    expect(events).toEqual(['while bob was not listening']);
    again.close();
  }, 30_000);

  it('routes: create, add, members, post, messages; coded errors for bad input', async () => {
    const alice = await start('alice3');
    const bob = await start('bob3');
    const stranger = await start('stranger3');
    await introduce(alice.node, bob.node);
    // the API host's validator settings (src/api/app.ts): extra fields are refused, not dropped
    const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } });
    installErrorHandler(app);
    let service: GroupService | undefined = alice.groups;
    await app.register(groupRoutes, { prefix: '/node/groups', service: () => service });
    try {
      const created = await app.inject({ method: 'POST', url: '/node/groups', payload: { name: 'team' } });
      expect(created.statusCode).toBe(200);
      const group = (created.json() as { group: string }).group;
      expect(created.json()).toEqual({ group, members: 1 });
      const add = await app.inject({ method: 'POST', url: `/node/groups/${group}/add`, payload: { member: toHex(bob.node.id) } });
      expect(add.json()).toEqual({ group, members: 2 });
      // not a contact: refused with a code
      const notContact = await app.inject({ method: 'POST', url: `/node/groups/${group}/add`, payload: { member: toHex(stranger.node.id) } });
      expect(notContact.statusCode).toBe(400);
      expect(notContact.json()).toMatchObject({ error: 'BAD_INPUT' });
      const members = await app.inject({ method: 'GET', url: `/node/groups/${group}/members` });
      expect((members.json() as { members: { role: string }[] }).members.map((m) => m.role).sort()).toEqual(['admin', 'member']);
      expect((await app.inject({ method: 'POST', url: `/node/groups/${group}/post`, payload: { text: 'via the API' } })).statusCode).toBe(200);
      await wait(() => texts(bob.events).includes('via the API'), 'bob read the API post');
      const msgs = await app.inject({ method: 'GET', url: `/node/groups/${group}/messages` });
      expect((msgs.json() as { messages: { text: string; sender: string }[] }).messages).toMatchObject([{ text: 'via the API', sender: toHex(alice.node.id) }]);
      const list = await app.inject({ method: 'GET', url: '/node/groups' });
      expect(list.json()).toEqual({ groups: [{ group, name: 'team', status: 'member', members: 2 }] });
      // unknown group, malformed id, extra field, node not running
      expect((await app.inject({ method: 'GET', url: `/node/groups/${'00'.repeat(32)}/members` })).statusCode).toBe(404);
      expect((await app.inject({ method: 'GET', url: '/node/groups/xyz/members' })).statusCode).toBe(400);
      expect((await app.inject({ method: 'POST', url: `/node/groups/${group}/post`, payload: { text: 'x', extra: 1 } })).statusCode).toBe(400);
      service = undefined;
      const off = await app.inject({ method: 'GET', url: '/node/groups' });
      expect(off.statusCode).toBe(409);
      expect(off.json()).toMatchObject({ error: 'NOT_INITIALIZED' });
    } finally {
      await app.close();
    }
  }, 30_000);

  it('an invite: the join request written before the two nodes are contacts is honoured once', async () => {
    const alice = await start('alice4');
    const bob = await start('bob4');
    const carol = await start('carol4');
    const group = alice.groups.create('by invite');
    const invite = alice.groups.createInvite(group);
    // bob asks at once (his entry waits in his feed), then the introduction makes them contacts
    bob.groups.requestJoin(invite.inviter, invite.group, invite.token);
    await introduce(alice.node, bob.node);
    await wait(() => bob.groups.member.groups().length === 1 && alice.groups.member.members(group).length === 2, 'bob joined through the invite');
    alice.groups.post(group, 'welcome bob');
    await wait(() => texts(bob.events).includes('welcome bob'), 'bob reads');
    // the token is spent: carol, a contact too, cannot use it; nor can a made-up token
    await introduce(alice.node, carol.node);
    carol.groups.requestJoin(invite.inviter, invite.group, invite.token);
    carol.groups.requestJoin(invite.inviter, invite.group, new Uint8Array(16).fill(7));
    await wait(() => (alice.node.store.feed(carol.node.id)?.length ?? 0) >= 2, 'carol\'s requests reached alice');
    await new Promise((r) => setTimeout(r, 200));
    expect(alice.groups.member.members(group).length).toBe(2);
    expect(carol.groups.member.groups()).toEqual([]);
    expect(() => bob.groups.createInvite(group)).toThrow(/only an admin/);
  }, 30_000);
});
