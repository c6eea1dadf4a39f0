/**
 * Concurrent offline membership changes converge: replicas that make changes on their own and
 * sync now and then end with the same membership once they hold the same ops, whatever the order
 * those ops arrived in (property test over random histories and delivery orders); and the
 * documented rules for conflicts (docs/protocol/groups.md section 4) hold.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { type GroupOp, type OpBody, NONCE_BYTES, ZERO_GROUP, createOp } from '../../../src/node/groups/op-codec.js';
import { OpLog } from '../../../src/node/groups/op-log.js';
import { deriveState, unauthorizedReason } from '../../../src/node/groups/state.js';
import { fromHex, toHex } from '../../../src/util/bytes.js';
import { prng, shuffle } from './world.js';

const people = [1, 2, 3, 4, 5, 6].map((b) => NodeIdentity.fromSeed(new Uint8Array(32).fill(b)));
const [A, B, C, D] = people as [NodeIdentity, NodeIdentity, NodeIdentity, NodeIdentity];
const name = (k: string): string => `p${people.findIndex((p) => toHex(p.publicKey) === k) + 1}`;
const membership = (log: OpLog): string[] => [...log.state.members].map(([k, r]) => `${name(k)}:${r}`).sort();

function newGroup(): { group: Uint8Array; create: GroupOp } {
  const create = createOp(A, { group: ZERO_GROUP, timestamp: 0, preds: [], body: { kind: 'create', nonce: new Uint8Array(NONCE_BYTES), name: 'g' } });
  return { group: create.hash, create };
}

/** Signs `body` by `who` on top of what `log` holds, and applies it there. */
function act(log: OpLog, who: NodeIdentity, body: OpBody, preds?: Uint8Array[]): GroupOp {
  const op = createOp(who, { group: log.group, timestamp: 0, preds: preds ?? log.state.heads.map(fromHex), body });
  const r = log.receive(op.raw);
  expect(r.status).toBe('accepted');
  return op;
}

function replica(ops: readonly GroupOp[]): OpLog {
  const { group } = newGroup();
  return new OpLog(group, ops.map((o) => o.raw));
}

describe('groups: convergence of concurrent offline changes', () => {
  it('any histories, any delivery orders: every replica derives the same membership', () => {
    const seen = { merges: 0, voided: 0, runs: 0 };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), (seed) => {
        const rand = prng(seed);
        const { group, create } = newGroup();
        const replicas = [A, B, C, D].map(() => new OpLog(group, [create.raw]));
        // everyone starts as a member, B an admin
        act(replicas[0]!, A, { kind: 'add', member: B.publicKey, role: 'admin' });
        act(replicas[0]!, A, { kind: 'add', member: C.publicKey, role: 'admin' });
        act(replicas[0]!, A, { kind: 'add', member: D.publicKey, role: 'member' });
        for (const r of replicas.slice(1)) for (const op of replicas[0]!.ops()) r.receive(op.raw);
        for (let step = 0; step < 24; step++) {
          const i = Math.floor(rand() * 4);
          const log = replicas[i]!;
          const me = [A, B, C, D][i]!;
          if (rand() < 0.25) {
            const j = Math.floor(rand() * 4);
            for (const op of shuffle(log.ops(), rand)) replicas[j]!.receive(op.raw);
            continue;
          }
          if (!log.state.members.has(toHex(me.publicKey))) continue;
          // every change `me` may make here, one picked at random (leaving is rarer)
          const bodies: OpBody[] = people.flatMap((t): OpBody[] => [
            { kind: 'add', member: t.publicKey, role: rand() < 0.5 ? 'admin' : 'member' },
            { kind: 'remove', member: t.publicKey },
            { kind: 'role', member: t.publicKey, role: rand() < 0.5 ? 'admin' : 'member' },
          ]);
          if (rand() < 0.1) bodies.push({ kind: 'leave' });
          const drafts = bodies
            .map((body) => createOp(me, { group, timestamp: step, preds: log.state.heads.map(fromHex), body }))
            .filter((d) => unauthorizedReason(log.state, d) === null);
          if (drafts.length === 0) continue;
          expect(log.receive(drafts[Math.floor(rand() * drafts.length)]!.raw).status).toBe('accepted');
          // the incremental state of a line-extending op equals a full derivation
          expect(membership(log)).toEqual([...deriveState(log.ops()).members].map(([k, r]) => `${name(k)}:${r}`).sort());
        }
        const all = new Map<string, GroupOp>();
        for (const r of replicas) for (const op of r.ops()) all.set(toHex(op.hash), op);
        const everything = [...all.values()];
        const views = replicas.map((r) => {
          for (const op of shuffle([...everything], rand)) r.receive(op.raw);
          return r;
        });
        const fresh = new OpLog(group);
        for (const op of shuffle([...everything], rand)) fresh.receive(op.raw);
        const derived = deriveState(everything);
        const expected = [...derived.members].map(([k, r]) => `${name(k)}:${r}`).sort();
        seen.runs++;
        if (everything.some((op) => op.preds.length > 1)) seen.merges++;
        if (derived.voided.size > 0) seen.voided++;
        for (const v of [...views, fresh]) {
          expect(v.ops().length).toBe(everything.length);
          expect(membership(v)).toEqual(expected);
        }
      }),
      { numRuns: 80 },
    );
    // the histories did have concurrent branches, and conflicts that R3 had to settle
    expect(seen.runs).toBe(80);
    expect(seen.merges).toBeGreaterThan(20);
    expect(seen.voided).toBeGreaterThan(0);
  });

  it('a remove beats a concurrent add by the removed admin', () => {
    const { create } = newGroup();
    const log = replica([create]);
    act(log, A, { kind: 'add', member: B.publicKey, role: 'admin' });
    const base = log.state.heads.map(fromHex);
    const removeB = act(log, A, { kind: 'remove', member: B.publicKey }, base);
    // B, offline, adds C on top of the same history
    const bLog = replica(log.ops().filter((o) => toHex(o.hash) !== toHex(removeB.hash)));
    const addC = act(bLog, B, { kind: 'add', member: C.publicKey, role: 'member' });
    for (const order of [[removeB, addC], [addC, removeB]]) {
      const r = replica(bLog.ops().filter((o) => toHex(o.hash) !== toHex(addC.hash)));
      for (const op of order) r.receive(op.raw);
      expect(membership(r)).toEqual(['p1:admin']);
      expect(r.state.voided.has(toHex(addC.hash))).toBe(true);
    }
  });

  it('two admins removing each other concurrently are both removed', () => {
    const { create } = newGroup();
    const log = replica([create]);
    act(log, A, { kind: 'add', member: B.publicKey, role: 'admin' });
    act(log, A, { kind: 'add', member: C.publicKey, role: 'member' });
    const base = log.ops();
    const aLog = replica(base);
    const bLog = replica(base);
    const aRemovesB = act(aLog, A, { kind: 'remove', member: B.publicKey });
    const bRemovesA = act(bLog, B, { kind: 'remove', member: A.publicKey });
    for (const order of [[aRemovesB, bRemovesA], [bRemovesA, aRemovesB]]) {
      const r = replica(base);
      for (const op of order) expect(r.receive(op.raw).status).toBe('accepted');
      expect(membership(r)).toEqual(['p3:member']);
    }
  });

  it('a removed admin cannot back-date changes past its removal, except against its remover', () => {
    const { create } = newGroup();
    const log = replica([create]);
    act(log, A, { kind: 'add', member: B.publicKey, role: 'admin' });
    act(log, A, { kind: 'add', member: C.publicKey, role: 'admin' });
    act(log, A, { kind: 'add', member: D.publicKey, role: 'member' });
    const base = log.ops();
    const cRemovesB = act(log, C, { kind: 'remove', member: B.publicKey });
    // B, after its removal, signs ops on the old history: remove D, add a friend, remove C
    const bLog = replica(base);
    const removeD = act(bLog, B, { kind: 'remove', member: D.publicKey });
    const friend = act(bLog, B, { kind: 'add', member: people[4]!.publicKey, role: 'admin' });
    const removeC = act(bLog, B, { kind: 'remove', member: C.publicKey });
    const r = replica([...base, cRemovesB]);
    for (const op of [removeD, friend, removeC]) expect(r.receive(op.raw).status).toBe('accepted');
    // D and the friend are untouched by B's back-dated ops; C (its remover) goes with B (R4)
    expect(membership(r)).toEqual(['p1:admin', 'p4:member']);
    // and a non-back-dated op by B after it saw its removal is refused at once
    const late = createOp(B, { group: r.group, timestamp: 0, preds: r.state.heads.map(fromHex), body: { kind: 'remove', member: A.publicKey } });
    expect(r.receive(late.raw)).toMatchObject({ status: 'refused', reason: 'unauthorized' });
  });
});
