/**
 * Removal really removes: after a member is removed, a message posted by any remaining member is
 * undecryptable with everything the removed member holds (its whole database, opened with its
 * own node key: every 32-byte window of every value, as a message key and as a chain key moved
 * forward), and with every sender key it could have overheard on the wire. A positive control
 * shows the same search does open a message sent before the removal that it had not read yet.
 * And a member that was offline during the removal catches up, whatever the order of arrival.
 */
import { describe, expect, it } from 'vitest';
import { openSenderKey } from '../../../src/node/groups/key-dist.js';
import { GroupMember } from '../../../src/node/groups/member.js';
import { decodeMessage } from '../../../src/node/groups/message.js';
import { toHex } from '../../../src/util/bytes.js';
import { bruteForce, everythingHeld } from './held.js';
import { World, prng, text, untext } from './world.js';

describe('groups: removal', () => {
  it('a message posted after a removal is undecryptable with the removed member\'s whole state', () => {
    const w = new World();
    const [alice, bob, carol, dave] = [w.party('alice', 1), w.party('bob', 2), w.party('carol', 3), w.party('dave', 4)];
    const { group, outgoing } = alice.member.create('team');
    w.send(outgoing);
    for (const p of [bob, carol, dave]) w.send(alice.member.add(group, p.identity.publicKey));
    w.send(bob.member.post(group, text('all four read this')).outgoing);
    expect(carol.read.map((r) => untext(r.plaintext))).toEqual(['all four read this']);

    // alice posts while carol is away: carol holds the key for it but has not used it
    carol.online = false;
    const unread = alice.member.post(group, text('sent before the removal'));
    w.send(unread.outgoing);
    carol.inbox.splice(0);
    carol.online = true;

    const wireBefore = w.wire.length;
    w.send(alice.member.remove(group, carol.identity.publicKey));
    for (const p of [alice, bob, dave]) expect(w.membersSeenBy(p, group)).toEqual(['alice:admin', 'bob:member', 'dave:member']);
    expect(carol.store.status(group)).toBe('removed');

    const after = [alice, bob, dave].map((p) => p.member.post(group, text(`after the removal, from ${p.name}`)));
    for (const a of after) w.send(a.outgoing);
    for (const p of [alice, bob, dave]) expect(p.read.filter((r) => untext(r.plaintext).startsWith('after the removal'))).toHaveLength(2);
    // carol gets the messages themselves (say, from a relay): refused, no key
    for (const a of after) expect(carol.member.receiveMessage(a.message).status).toBe('refused');

    const held = everythingHeld(carol);
    // positive control: the search does find the key of the message she could read but had not
    expect(untext(bruteForce(held, decodeMessage(unread.message))!)).toBe('sent before the removal');
    for (const a of after) expect(bruteForce(held, decodeMessage(a.message))).toBeNull();
    // every sender key sent after the removal (to the others) stays closed to her
    const keysAfter = w.wire.slice(wireBefore).filter((o) => o.kind === 'key');
    expect(keysAfter.length).toBe(3 * 2);
    for (const k of keysAfter) {
      expect(toHex(k.to)).not.toBe(toHex(carol.identity.publicKey));
      expect(openSenderKey(carol.identity, k.bytes)).toBeNull();
    }
  });

  it('a member silent since the removal rotates when it next speaks, and the removed member cannot read it', () => {
    const w = new World();
    const [alice, bob, carol, dave, erin] = [w.party('alice', 1), w.party('bob', 2), w.party('carol', 3), w.party('dave', 4), w.party('erin', 5)];
    const { group, outgoing } = alice.member.create('team');
    w.send(outgoing);
    for (const p of [bob, carol, dave]) w.send(alice.member.add(group, p.identity.publicKey));
    // dave spoke before the removal: carol holds his chain and read his message
    const daveBefore = dave.member.post(group, text('dave before'));
    w.send(daveBefore.outgoing);
    expect(carol.read.map((r) => untext(r.plaintext))).toContain('dave before');

    const wireBefore = w.wire.length;
    w.send(alice.member.remove(group, carol.identity.publicKey));
    // lazy rotation: the removal itself sends no key at all (only the op, to the three others and carol)
    expect(w.wire.slice(wireBefore).filter((o) => o.kind === 'key')).toEqual([]);
    expect(dave.store.isStale(group)).toBe(true);
    // others talk and a newcomer arrives while dave stays silent; dave's stale chain is not handed to erin
    w.send(bob.member.post(group, text('bob after')).outgoing);
    const beforeAdd = w.wire.length;
    w.send(alice.member.add(group, erin.identity.publicKey));
    expect(w.wire.slice(beforeAdd).some((o) => o.kind === 'key' && toHex(o.to) === toHex(erin.identity.publicKey) && toHex(GroupMember.keySender(o.bytes)!) === toHex(dave.identity.publicKey))).toBe(false);

    const beforeDave = w.wire.length;
    const late = dave.member.post(group, text('dave, long after the removal'));
    w.send(late.outgoing);
    expect(dave.store.isStale(group)).toBe(false);
    for (const p of [alice, bob, erin]) expect(p.read.at(-1)?.plaintext).toEqual(text('dave, long after the removal'));
    // his new key went to the members of now, not to carol, and opens nothing for her
    const daveKeys = w.wire.slice(beforeDave).filter((o) => o.kind === 'key');
    expect(daveKeys.map((o) => toHex(o.to)).sort()).toEqual([alice, bob, erin].map((p) => toHex(p.identity.publicKey)).sort());
    for (const k of daveKeys) expect(openSenderKey(carol.identity, k.bytes)).toBeNull();
    expect(decodeMessage(late.message).generation).toBe(decodeMessage(daveBefore.message).generation + 1);
    expect(carol.member.receiveMessage(late.message).status).toBe('refused');
    expect(bruteForce(everythingHeld(carol), decodeMessage(late.message))).toBeNull();
    // and his next message stays on the new chain (one rotation, not one per message)
    const again = dave.member.post(group, text('again'));
    expect(again.outgoing.filter((o) => o.kind === 'key')).toEqual([]);
    expect(decodeMessage(again.message).generation).toBe(decodeMessage(late.message).generation);
  });

  it('a member offline during a removal catches up from ops, keys and messages in any order', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const w = new World();
      const [alice, bob, carol, dave, erin] = [w.party('alice', 1), w.party('bob', 2), w.party('carol', 3), w.party('dave', 4), w.party('erin', 5)];
      const { group, outgoing } = alice.member.create('team');
      w.send(outgoing);
      for (const p of [bob, carol, dave]) w.send(alice.member.add(group, p.identity.publicKey));
      dave.online = false;
      w.send(alice.member.remove(group, carol.identity.publicKey));
      w.send(alice.member.setRole(group, bob.identity.publicKey, 'admin'));
      w.send(bob.member.add(group, erin.identity.publicKey));
      for (const p of [alice, bob, erin]) w.send(p.member.post(group, text(`news from ${p.name}`)).outgoing);
      expect(dave.inbox.length).toBeGreaterThan(5);
      dave.online = true;
      w.flush(prng(seed));
      const want = ['alice:admin', 'bob:admin', 'dave:member', 'erin:member'];
      for (const p of [alice, bob, dave, erin]) expect(w.membersSeenBy(p, group), `seed ${seed}`).toEqual(want);
      expect(dave.read.map((r) => untext(r.plaintext)).sort(), `seed ${seed}`).toEqual(['news from alice', 'news from bob', 'news from erin']);
      // and dave's own post after catching up reaches everyone but carol
      w.send(dave.member.post(group, text('back')).outgoing);
      for (const p of [alice, bob, erin]) expect(p.read.at(-1)?.plaintext).toEqual(text('back'));
      expect(carol.read.some((r) => untext(r.plaintext) === 'back')).toBe(false);
      expect(dave.refused.filter((r) => r.kind !== 'message')).toEqual([]);
    }
  });

  it('leaving rotates the others\' keys too', () => {
    const w = new World();
    const [alice, bob, carol] = [w.party('alice', 1), w.party('bob', 2), w.party('carol', 3)];
    const { group, outgoing } = alice.member.create('team');
    w.send(outgoing);
    for (const p of [bob, carol]) w.send(alice.member.add(group, p.identity.publicKey));
    w.send(carol.member.leave(group));
    expect(carol.store.status(group)).toBe('removed');
    const m = alice.member.post(group, text('carol left'));
    w.send(m.outgoing);
    expect(bob.read.at(-1)?.plaintext).toEqual(text('carol left'));
    expect(bruteForce(everythingHeld(carol), decodeMessage(m.message))).toBeNull();
  });
});
