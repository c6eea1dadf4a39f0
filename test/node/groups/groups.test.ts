/**
 * Groups end to end among in-process members (real crypto, real sqlite stores): create, add,
 * post and read; the codec's refusals; forged and replayed ops and messages refused.
 */
import { describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { ZERO_GROUP, createOp, decodeOp, verifyOp } from '../../../src/node/groups/op-codec.js';
import { OpLog } from '../../../src/node/groups/op-log.js';
import { decodeWelcome } from '../../../src/node/groups/member.js';

const decodeWelcomeOps = (raw: Uint8Array): Uint8Array[] => decodeWelcome(raw).ops;
import { toHex } from '../../../src/util/bytes.js';
import { expectCode } from '../../support/errors.js';
import { World, text, untext } from './world.js';

function threeMembers(): { w: World; group: Uint8Array; alice: ReturnType<World['party']>; bob: ReturnType<World['party']>; carol: ReturnType<World['party']> } {
  const w = new World();
  const alice = w.party('alice', 1);
  const bob = w.party('bob', 2);
  const carol = w.party('carol', 3);
  const { group, outgoing } = alice.member.create('team');
  w.send(outgoing);
  w.send(alice.member.add(group, bob.identity.publicKey));
  w.send(alice.member.add(group, carol.identity.publicKey));
  return { w, group, alice, bob, carol };
}

describe('groups: create, add, post, read', () => {
  it('three members agree on the membership and read each other', () => {
    const { w, group, alice, bob, carol } = threeMembers();
    for (const p of [alice, bob, carol]) expect(w.membersSeenBy(p, group)).toEqual(['alice:admin', 'bob:member', 'carol:member']);
    w.send(alice.member.post(group, text('hello from alice')).outgoing);
    w.send(bob.member.post(group, text('hi, bob here')).outgoing);
    w.send(carol.member.post(group, text('carol too')).outgoing);
    w.send(alice.member.post(group, text('second from alice')).outgoing);
    expect(bob.read.map((r) => untext(r.plaintext))).toEqual(['hello from alice', 'carol too', 'second from alice']);
    expect(carol.read.map((r) => untext(r.plaintext))).toEqual(['hello from alice', 'hi, bob here', 'second from alice']);
    expect(alice.read.map((r) => untext(r.plaintext))).toEqual(['hi, bob here', 'carol too']);
    // the store keeps what was read and written, readable again
    expect(bob.member.read(group).map((m) => untext(m.plaintext))).toEqual(['hello from alice', 'hi, bob here', 'carol too', 'second from alice']);
    expect(w.parties.size).toBe(3);
    for (const p of [alice, bob, carol]) expect(p.refused).toEqual([]);
  });

  it('a newcomer reads what is posted after it joined, not before', () => {
    const { w, group, alice, bob } = threeMembers();
    w.send(alice.member.post(group, text('before dave')).outgoing);
    const dave = w.party('dave', 4);
    w.send(alice.member.add(group, dave.identity.publicKey));
    w.send(alice.member.post(group, text('after dave')).outgoing);
    w.send(bob.member.post(group, text('bob after dave')).outgoing);
    expect(dave.read.map((r) => untext(r.plaintext))).toEqual(['after dave', 'bob after dave']);
    // the message before the add, handed to dave now, does not open: its index is below his chain
    const early = w.wire.find((o) => o.kind === 'message' && untext(bob.read[0]!.plaintext) === 'before dave');
    expect(early).toBeDefined();
    expect(dave.member.receiveMessage(early!.bytes)).toEqual({ status: 'refused', reason: 'no-key' });
  });

  it('a newcomer whose keys and messages beat its welcome still reads; nothing is stored for unknown groups', () => {
    const { w, group, alice, bob } = threeMembers();
    const dave = w.party('dave', 4);
    dave.online = false;
    w.send(alice.member.add(group, dave.identity.publicKey));
    w.send(bob.member.post(group, text('to dave, early')).outgoing);
    // dave gets everything, the welcome last
    const welcome = dave.inbox.findIndex((o) => o.kind === 'welcome');
    dave.inbox.push(...dave.inbox.splice(welcome, 1));
    const firstKey = dave.inbox.find((o) => o.kind === 'key')!;
    expect(dave.member.receiveKey(firstKey.bytes).status).toBe('held');
    expect(dave.db.prepare('SELECT COUNT(*) FROM grp_keys').pluck().get()).toBe(0);
    dave.online = true;
    w.flush();
    expect(dave.read.map((r) => untext(r.plaintext))).toEqual(['to dave, early']);
    expect(w.membersSeenBy(dave, group)).toEqual(['alice:admin', 'bob:member', 'carol:member', 'dave:member']);
  });

  it('what a newcomer held before its welcome survives a restart', () => {
    const { w, group, alice, bob } = threeMembers();
    const dave = w.party('dave', 4);
    dave.online = false;
    w.send(alice.member.add(group, dave.identity.publicKey));
    w.send(bob.member.post(group, text('to dave, before a restart')).outgoing);
    // dave takes in every key and message; the welcome is still on its way when his node restarts
    const early = dave.inbox.filter((o) => o.kind === 'key' || o.kind === 'message');
    dave.inbox.splice(0, dave.inbox.length, ...dave.inbox.filter((o) => !early.includes(o)));
    for (const o of early) {
      if (o.kind === 'key') expect(dave.member.receiveKey(o.bytes).status).toBe('held');
      else expect(dave.member.receiveMessage(o.bytes).status).toBe('refused');
    }
    w.restart(dave);
    dave.online = true;
    w.flush();
    expect(dave.read.map((r) => untext(r.plaintext))).toEqual(['to dave, before a restart']);
    expect(dave.db.prepare('SELECT COUNT(*) FROM grp_held').pluck().get()).toBe(0);
  });

  it('out-of-order messages open through skipped keys, and each opens once', () => {
    const { w, group, alice, bob } = threeMembers();
    const msgs = [0, 1, 2, 3].map((i) => alice.member.post(group, text(`m${i}`)).message);
    for (const i of [2, 0, 3, 1]) expect(bob.member.receiveMessage(msgs[i]!)).toMatchObject({ status: 'ok', plaintext: text(`m${i}`) });
    for (const m of msgs) expect(bob.member.receiveMessage(m)).toEqual({ status: 'refused', reason: 'no-key' });
    expect(w.parties.size).toBe(3);
  });
});

describe('groups: forged and replayed input is refused', () => {
  it('ops: bad signature, stranger, non-admin remove, wrong group, replay, malformed', () => {
    const { w, group, alice, bob, carol } = threeMembers();
    const mallory = NodeIdentity.fromSeed(new Uint8Array(32).fill(9));
    const heads = (): Uint8Array[] => alice.member.history(group).map((r) => decodeOp(r)).filter((op) => !alice.member.history(group).some((r) => decodeOp(r).preds.some((p) => toHex(p) === toHex(op.hash)))).map((op) => op.hash);

    // a stranger adds itself
    const strangerAdd = createOp(mallory, { group, timestamp: 1, preds: heads(), body: { kind: 'add', member: mallory.publicKey, role: 'admin' } });
    expect(bob.member.receiveOp(strangerAdd.raw)).toMatchObject({ status: 'refused', reason: 'unauthorized', detail: 'author is not a member' });
    // a non-admin removes another member
    const bobRemoves = createOp(bob.identity, { group, timestamp: 1, preds: heads(), body: { kind: 'remove', member: carol.identity.publicKey } });
    expect(alice.member.receiveOp(bobRemoves.raw)).toMatchObject({ status: 'refused', reason: 'unauthorized', detail: 'author is not an admin' });
    // an admin's op with one bit of its signature flipped
    const good = createOp(alice.identity, { group, timestamp: 1, preds: heads(), body: { kind: 'role', member: bob.identity.publicKey, role: 'admin' } });
    const forged = good.raw.slice();
    forged[forged.length - 1]! ^= 1;
    expect(carol.member.receiveOp(forged)).toMatchObject({ status: 'refused', reason: 'bad-signature' });
    // the op claims another member's authorship (author bytes swapped, signature kept)
    const swapped = good.raw.slice();
    swapped.set(bob.identity.publicKey, 33);
    expect(carol.member.receiveOp(swapped)).toMatchObject({ status: 'refused', reason: 'bad-signature' });
    // an op of another group
    const other = alice.member.create('other').group;
    const otherAdd = alice.member.add(other, bob.identity.publicKey).find((o) => o.kind === 'welcome')!;
    const otherOps = decodeWelcomeOps(otherAdd.bytes);
    const log = new OpLog(group, alice.member.history(group));
    expect(log.receive(otherOps.at(-1)!)).toMatchObject({ status: 'refused', reason: 'wrong-group' });
    // truncated
    expect(carol.member.receiveOp(good.raw.subarray(0, 80))).toMatchObject({ status: 'refused', reason: 'malformed' });
    // replay: every op of the history again changes nothing
    const before = w.membersSeenBy(carol, group);
    for (const raw of alice.member.history(group)) expect(carol.member.receiveOp(raw)).toMatchObject({ status: 'duplicate', outgoing: [] });
    expect(w.membersSeenBy(carol, group)).toEqual(before);
    expect(w.membersSeenBy(carol, group)).toEqual(['alice:admin', 'bob:member', 'carol:member']);
  });

  it('an op whose predecessors are unknown is held, then applied when they arrive', () => {
    const { group, alice } = threeMembers();
    const fresh = new OpLog(group);
    const history = alice.member.history(group).map((r) => decodeOp(r));
    const reversed = [...history].reverse();
    const statuses = reversed.map((op) => fresh.receive(op.raw).status);
    expect(statuses.slice(0, -1).every((s) => s === 'pending')).toBe(true);
    expect(statuses.at(-1)).toBe('accepted');
    expect(fresh.state.members.size).toBe(3);
  });

  it('messages: a member cannot forge another member\'s message; non-members and altered ciphertext are refused', () => {
    const { w, group, alice, bob, carol } = threeMembers();
    const { message } = alice.member.post(group, text('signed by alice'));
    // bob knows alice's chain key but cannot sign as alice: flip a ciphertext byte
    const altered = message.slice();
    altered[80]! ^= 1;
    expect(carol.member.receiveMessage(altered)).toEqual({ status: 'refused', reason: 'bad-signature' });
    // sender bytes replaced by bob's: signature no longer matches
    const claimed = message.slice();
    claimed.set(bob.identity.publicKey, 33);
    expect(carol.member.receiveMessage(claimed).status).toBe('refused');
    expect(carol.member.receiveMessage(message)).toMatchObject({ status: 'ok', plaintext: text('signed by alice') });
    expect(carol.member.receiveMessage(message)).toEqual({ status: 'refused', reason: 'no-key' });
    expect(carol.member.receiveMessage(new Uint8Array(10))).toEqual({ status: 'refused', reason: 'malformed' });
    // a stranger's message
    const stranger = w.party('stranger', 7);
    const own = stranger.member.create('x');
    expect(own.outgoing).toEqual([]);
    expect(verifyOp(decodeOp(stranger.member.history(own.group)[0]!))).toBe(true);
  });

  it('sender keys: a replayed distribution is refused; a key sealed to someone else does not open', () => {
    const { w, group, alice, bob, carol } = threeMembers();
    const toBob = w.wire.find((o) => o.kind === 'key' && toHex(o.to) === toHex(bob.identity.publicKey) && toHex(GroupMemberFrom(o.bytes)) === toHex(alice.identity.publicKey))!;
    expect(bob.member.receiveKey(toBob.bytes).status).toBe('refused');
    expect(carol.member.receiveKey(toBob.bytes).status).toBe('refused');
    expect(group.length).toBe(32);
  });

  it('local misuse throws coded errors', () => {
    const { group, bob, carol } = threeMembers();
    expectCode(() => bob.member.remove(group, carol.identity.publicKey), 'BAD_INPUT', 'not an admin');
    expectCode(() => bob.member.members(ZERO_GROUP), 'NOT_FOUND');
  });
});

function GroupMemberFrom(raw: Uint8Array): Uint8Array {
  return raw.subarray(33, 65);
}
