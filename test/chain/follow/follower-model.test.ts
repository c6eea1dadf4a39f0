/**
 * Model test of the follower's state machine (after LND's txnotifier rapid test): random
 * sequences of mining, reorgs, catch-ups, failing handlers and restarts. Invariants:
 * - always: the consumer's table and the follower's stored blocks agree (same transaction);
 * - after a successful catch-up: the consumer has applied exactly the node's best chain.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { ChainFollower, type FollowerConsumer, type FollowedBlock } from '../../../src/chain/follow/follower.js';
import { FakeChain } from '../../support/fake-chain.js';

type Op =
  | { kind: 'mine'; n: number }
  | { kind: 'reorg'; depth: number; len: number }
  | { kind: 'catchUp' }
  | { kind: 'failNext' }
  | { kind: 'restart' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('mine' as const), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('reorg' as const), depth: fc.integer({ min: 1, max: 4 }), len: fc.integer({ min: 0, max: 5 }) }),
  fc.constant({ kind: 'catchUp' as const }),
  fc.constant({ kind: 'failNext' as const }),
  fc.constant({ kind: 'restart' as const }),
);

function consumer(db: Database.Database, state: { failNext: boolean }): FollowerConsumer {
  db.exec('CREATE TABLE IF NOT EXISTS applied (height INTEGER PRIMARY KEY, hash TEXT NOT NULL)');
  const top = db.prepare<[], FollowedBlock>('SELECT height, hash FROM applied ORDER BY height DESC LIMIT 1');
  return {
    onConnect(height, hash, _raw, d) {
      const t = top.get();
      if (t && height !== t.height + 1) throw new Error(`gap: connect ${height} after ${t.height}`);
      d.prepare('INSERT INTO applied (height, hash) VALUES (?, ?)').run(height, hash);
      if (state.failNext) {
        state.failNext = false;
        throw new Error('injected failure');
      }
    },
    onDisconnect(block, d) {
      const t = top.get();
      if (!t || t.height !== block.height || t.hash !== block.hash) throw new Error(`disconnect ${block.height} is not the top`);
      d.prepare('DELETE FROM applied WHERE height = ?').run(block.height);
    },
  };
}

describe('ChainFollower model', () => {
  it('keeps consumer and cursor consistent and converges to the best chain', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 3 }), async (ops, startHeight) => {
        const chain = new FakeChain();
        const db = new Database(':memory:');
        const state = { failNext: false };
        const make = () => new ChainFollower({ source: chain, db, name: 'm', consumer: consumer(db, state), startHeight, follow: false });
        let follower = make();
        const applied = () => db.prepare<[], FollowedBlock>('SELECT height, hash FROM applied ORDER BY height').all();
        const stored = () =>
          db.prepare<[number], FollowedBlock>("SELECT height, hash FROM follower_blocks WHERE name = 'm' AND height >= ? ORDER BY height").all(startHeight);
        try {
          for (const op of [...ops, { kind: 'catchUp' } as Op]) {
            if (op.kind === 'mine') chain.mine(op.n);
            else if (op.kind === 'reorg') chain.reorg(Math.min(op.depth, chain.height), op.len);
            else if (op.kind === 'failNext') state.failNext = true;
            else if (op.kind === 'restart') {
              await follower.close();
              follower = make();
            } else {
              const failing = state.failNext;
              const ok = await follower.catchUp().then(() => true, () => false);
              if (ok) {
                const best = chain.chain.slice(startHeight).map((b) => ({ height: b.height, hash: b.hash }));
                expect(applied()).toEqual(best);
                const tip = chain.height >= startHeight - 1 ? { height: chain.height, hash: chain.chain[chain.height]!.hash } : null;
                expect(follower.cursor()).toEqual(tip);
              } else {
                expect(failing).toBe(true);
              }
            }
            // The last stored blocks are exactly what the consumer holds (window of 100 covers the test).
            expect(applied()).toEqual(stored());
          }
        } finally {
          await follower.close();
          db.close();
        }
      }),
      { numRuns: Number(process.env.FOLLOWER_MODEL_RUNS ?? 150) },
    );
  });
});
