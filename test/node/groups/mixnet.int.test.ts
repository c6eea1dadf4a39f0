/**
 * Groups between three PeerNodes that are contacts but never connect directly (their dialers may
 * not dial anyone): group entries ride the members' feeds, and the feeds travel through the
 * providers of the loopback mixnet of test/support/mix-world.ts (the feed relay,
 * src/node/mixnet/feed-relay.ts). Real sockets, Sphinx packets, no session between the nodes.
 *
 * They meet directly once (as after drops with endpoints), long enough to learn each other's
 * provider, then restart unable to dial. Alice creates a group, adds Bob and Carol; all three
 * post and read; Alice removes Carol; what Alice and Bob post afterwards reaches Carol's node
 * (she still replicates both feeds as a contact) and she opens none of it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { GroupService } from '../../../src/node/groups/service.js';
import { GROUP_ENTRY_TYPE } from '../../../src/node/groups/transport.js';
import type { MixnetService } from '../../../src/node/mixnet/service.js';
import { MixWorld, type RelayedPeer, stopRelayedPeer } from '../../support/mix-world.js';
import { waitUntil } from '../../support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'dd-groups-mixnet-'));
const world = new MixWorld();

interface Member extends RelayedPeer {
  readonly groups: GroupService | null;
  readonly texts: string[];
}

async function up(name: string, home: MixnetService, dial: boolean, withGroups: boolean): Promise<Member> {
  const peer = await world.startRelayedPeer({ seed: sha256(utf8(`groups mixnet ${name}`)), dbPath: join(root, `${name}.sqlite`), home, dial });
  const texts: string[] = [];
  const groups = withGroups ? new GroupService(peer.node, (type, _id, data) => type === 'node.group.message' && texts.push(String(data.text))) : null;
  groups?.start();
  return { ...peer, groups, texts };
}

async function down(m: Member): Promise<void> {
  m.groups?.close();
  await stopRelayedPeer(m);
}

const running = new Set<Member>();

describe('group traffic through the mixnet providers, with no direct connection', () => {
  afterAll(async () => {
    await Promise.all([...running].map(down));
    await world.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('create, add, post and read among three nodes; a removed node reads nothing new', async () => {
    const pa = await world.start({ provider: true, meanDelayMs: 2 });
    const pb = await world.start({ provider: true, meanDelayMs: 2 });
    for (const layer of [1, 2, 3]) await world.start({ layer, meanDelayMs: 2 });
    const homes = { alice: pa, bob: pb, carol: pa };
    const names = ['alice', 'bob', 'carol'] as const;

    // They meet directly once, pairwise, and learn each other's provider from the replicated logs.
    const met = await Promise.all(names.map((n) => up(n, homes[n], true, false)));
    for (const m of met) running.add(m);
    const [a0, b0, c0] = met as [Member, Member, Member];
    await b0.node.bootstrapFromIntroduction(a0.node.createIntroductionToken());
    await c0.node.bootstrapFromIntroduction(a0.node.createIntroductionToken());
    await c0.node.bootstrapFromIntroduction(b0.node.createIntroductionToken());
    await waitUntil(
      () => met.every((m) => met.every((o) => o === m || m.mix.directory.providerOf(o.node.id) !== undefined)),
      'each knows the others\' providers', 30_000,
    );
    for (const m of met) {
      running.delete(m);
      await down(m);
    }

    // Back, unable to dial, with their group services: no session can exist between them.
    const [alice, bob, carol] = await Promise.all(names.map((n) => up(n, homes[n], false, true)));
    for (const m of [alice!, bob!, carol!]) running.add(m);
    const ga = alice!.groups!;
    const gb = bob!.groups!;
    const gc = carol!.groups!;
    const count = (g: GroupService, group: Uint8Array): number => {
      try {
        return g.member.members(group).length;
      } catch {
        return 0; // no welcome yet
      }
    };
    const wait = (cond: () => boolean, what: string): Promise<unknown> => waitUntil(cond, what, 60_000);

    const group = ga.create('over the mixnet');
    ga.add(group, bob!.node.id);
    await wait(() => count(gb, group) === 2, 'Bob joined (his welcome came through the providers)');
    ga.add(group, carol!.node.id);
    await wait(() => count(gb, group) === 3 && count(gc, group) === 3, 'Bob and Carol see three members');

    ga.post(group, 'alice to all');
    gb.post(group, 'bob to all');
    gc.post(group, 'carol to all');
    await wait(
      () => alice!.texts.length === 2 && bob!.texts.length === 2 && carol!.texts.length === 2,
      'every member read the other two',
    );
    expect(alice!.texts.sort()).toEqual(['bob to all', 'carol to all']);
    expect(bob!.texts.sort()).toEqual(['alice to all', 'carol to all']);
    expect(carol!.texts.sort()).toEqual(['alice to all', 'bob to all']);

    ga.remove(group, carol!.node.id);
    await wait(() => count(gb, group) === 2, 'Bob saw the removal');
    await wait(() => gc.member.groups().some((g) => g.status === 'removed'), 'Carol learned she is out');
    ga.post(group, 'alice after carol');
    gb.post(group, 'bob after carol');
    await wait(() => alice!.texts.includes('bob after carol') && bob!.texts.includes('alice after carol'), 'Alice and Bob read on');

    // Carol's node holds both feeds in full, the new group entries included, and opens none of them.
    for (const author of [alice!, bob!]) {
      const length = author.node.store.feed(author.node.id)!.length;
      await wait(() => (carol!.node.store.feed(author.node.id)?.length ?? 0) === length, 'Carol has the whole feed');
      expect(carol!.node.store.get(author.node.id, length)!.header.type).toBe(GROUP_ENTRY_TYPE); // the post after the removal
    }
    expect(carol!.texts.sort()).toEqual(['alice to all', 'bob to all']);
    expect(gc.member.read(group, 0, 100).map((m) => new TextDecoder().decode(m.plaintext)).sort()).toEqual(['alice to all', 'bob to all', 'carol to all']);

    // All of it through the providers: no dial, no session, nothing dropped as malformed or rejected.
    for (const m of [alice!, bob!, carol!]) {
      expect(m.direct).toEqual([]);
      expect(m.node.connectedPeers()).toEqual([]);
      expect(m.relay.stats.dropped.malformed + m.relay.stats.dropped.rejected + m.relay.stats.dropped.unknownSender).toBe(0);
      expect(m.relay.stats.entriesStored).toBeGreaterThan(0);
    }
  });

  it('members that are not contacts of each other read each other through a common contact\'s node', async () => {
    const [pa, pb] = [...world.services];
    const homes = { hub: pa!, left: pb!, right: pa! };
    const names = ['hub', 'left', 'right'] as const;
    // Left and Right each meet Hub directly once; they never meet each other.
    const met = await Promise.all(names.map((n) => up(n, homes[n], true, false)));
    for (const m of met) running.add(m);
    const [h0, l0, r0] = met as [Member, Member, Member];
    await l0.node.bootstrapFromIntroduction(h0.node.createIntroductionToken());
    await r0.node.bootstrapFromIntroduction(h0.node.createIntroductionToken());
    await waitUntil(
      () => [l0, r0].every((m) => m.mix.directory.providerOf(h0.node.id) && h0.mix.directory.providerOf(m.node.id)),
      'Hub and each spoke know each other\'s provider', 30_000,
    );
    for (const m of met) {
      running.delete(m);
      await down(m);
    }

    const [hub, left, right] = await Promise.all(names.map((n) => up(n, homes[n], false, true)));
    for (const m of [hub!, left!, right!]) running.add(m);
    expect(left!.node.contacts().map((c) => c.node)).toEqual([hub!.node.id]);
    expect(right!.node.contacts().map((c) => c.node)).toEqual([hub!.node.id]);
    const wait = (cond: () => boolean, what: string): Promise<unknown> => waitUntil(cond, what, 60_000);
    const group = hub!.groups!.create('spokes');
    hub!.groups!.add(group, left!.node.id);
    hub!.groups!.add(group, right!.node.id);
    const three = (g: GroupService): boolean => g.member.groups().some((x) => x.members === 3);
    await wait(() => three(left!.groups!) && three(right!.groups!), 'Left and Right see three members');

    // Left's entries reach Right only as entries of Left's feed relayed by Hub's node, and back.
    left!.groups!.post(group, 'left to all');
    right!.groups!.post(group, 'right to all');
    await wait(() => right!.texts.includes('left to all') && left!.texts.includes('right to all'), 'Left and Right read each other');
    expect(hub!.texts.sort()).toEqual(['left to all', 'right to all']);
    for (const m of [hub!, left!, right!]) {
      expect(m.direct).toEqual([]);
      expect(m.node.connectedPeers()).toEqual([]);
    }
  });
});
