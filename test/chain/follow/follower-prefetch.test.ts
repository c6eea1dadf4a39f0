/**
 * ChainFollower with `prefetch` > 1: blocks are prepared ahead, out of order, but committed one
 * at a time in height order; a failure or a reorg mid-window commits the prefix before it and
 * leaves nothing running.
 */
import { describe, it, expect } from 'vitest';
import Database from 'better-sqlite3';
import { ChainFollower, type FollowerConsumer } from '../../../src/chain/follow/follower.js';
import { DeaddropError } from '../../../src/util/errors.js';
import { FakeChain } from '../../support/fake-chain.js';
import { expectCode } from '../../support/errors.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Probe {
  readonly consumer: FollowerConsumer<number>;
  readonly committed: number[];
  readonly prepared: number[];
  inFlight: number;
  maxInFlight: number;
}

/** Prepares take longer for lower heights, so later blocks finish first; `failAt` throws there. */
function probe(failAt = -1): Probe {
  const p: Probe = {
    committed: [], prepared: [], inFlight: 0, maxInFlight: 0,
    consumer: {
      async prepare(height) {
        p.inFlight++;
        p.maxInFlight = Math.max(p.maxInFlight, p.inFlight);
        try {
          await sleep(20 - (height % 5) * 4);
          if (height === failAt) throw new DeaddropError('BACKEND_ERROR', `prepare failed at ${height}`);
          p.prepared.push(height);
          return height * 10;
        } finally {
          p.inFlight--;
        }
      },
      onConnect(height, _hash, _raw, _db, prepared) {
        expect(prepared).toBe(height * 10);
        p.committed.push(height);
      },
      onDisconnect() {},
    },
  };
  return p;
}

function follower(chain: FakeChain, p: Probe, prefetch: number): { f: ChainFollower<number>; db: Database.Database } {
  const db = new Database(':memory:');
  return { f: new ChainFollower<number>({ source: chain, db, name: 't', consumer: p.consumer, follow: false, prefetch }), db };
}

describe('ChainFollower prefetch', () => {
  it('prepares up to the window ahead and commits in height order', async () => {
    const chain = new FakeChain();
    chain.mine(30);
    const p = probe();
    const { f, db } = follower(chain, p, 4);
    await f.catchUp();
    expect(p.committed).toEqual(Array.from({ length: 31 }, (_, i) => i));
    expect(p.maxInFlight).toBeGreaterThan(1);
    expect(p.maxInFlight).toBeLessThanOrEqual(4);
    expect(p.prepared).not.toEqual([...p.prepared].sort((a, b) => a - b)); // they did finish out of order
    await f.close();
    db.close();
  });

  it('commits the blocks below a failed prepare, nothing above it, waits for the window, and resumes', async () => {
    const chain = new FakeChain();
    chain.mine(30);
    const p = probe(12);
    const { f, db } = follower(chain, p, 6);
    await expectCode(f.catchUp(), 'BACKEND_ERROR', /prepare failed at 12/);
    expect(p.committed).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(f.cursor()!.height).toBe(11);
    expect(p.inFlight).toBe(0); // the window was drained before catchUp settled
    const again = probe();
    const g = new ChainFollower<number>({ source: chain, db, name: 't', consumer: again.consumer, follow: false, prefetch: 6 });
    await g.catchUp();
    expect(again.committed).toEqual(Array.from({ length: 19 }, (_, i) => i + 12));
    await f.close();
    await g.close();
    db.close();
  });

  it('refuses a window below 1', () => {
    const db = new Database(':memory:');
    expect(() => new ChainFollower({ source: new FakeChain(), db, name: 't', consumer: probe().consumer, prefetch: 0 })).toThrow(RangeError);
    db.close();
  });
});
