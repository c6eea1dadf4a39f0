import { describe, it, expect, afterEach } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DropStore, dropId, eventId, type FoundDrop, type IndexedCandidate, type OutboxEvent } from '../../../src/deaddrop/watch/drop-store.js';

const stores: DropStore[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function memStore(): DropStore {
  const s = DropStore.open(':memory:');
  stores.push(s);
  return s;
}

const txid = (n: number): string => n.toString(16).padStart(64, '0');
const blockHash = (height: number, fork = 0): string => `${fork.toString(16).padStart(8, '0')}${height.toString(16).padStart(56, '0')}`;
const found = (n: number, message = `hello ${n}`): FoundDrop => ({ txid: txid(n), vout: 1, identity: 'B', payload: { message } });
const candidate = (height: number, n: number, fork = 0): IndexedCandidate => ({
  height, blockHash: blockHash(height, fork), txid: txid(n), vout: 1, tweak: new Uint8Array(33).fill(2), data: new Uint8Array(80).fill(n & 255),
});

describe('DropStore', () => {
  it('gives drops stable ids that differ per output', () => {
    expect(dropId(txid(1), 1)).toBe(dropId(txid(1).toUpperCase(), 1));
    expect(dropId(txid(1), 1)).not.toBe(dropId(txid(1), 2));
    expect(dropId(txid(1), 1)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('records a mempool drop once, confirms it, and rolls it back on disconnect', () => {
    const s = memStore();
    const b = { height: 10, hash: blockHash(10) };
    const pending = s.transaction(() => s.recordPending(found(1)));
    expect(pending?.type).toBe('drop.pending');
    expect(s.transaction(() => s.recordPending(found(1)))).toBeUndefined();

    const confirmed = s.transaction(() => s.connectBlock(b, [candidate(10, 1), candidate(10, 2)], [found(1)], 12));
    expect(confirmed).toHaveLength(1);
    expect(confirmed[0]).toMatchObject({ type: 'drop.confirmed', data: { confirmations: 3, height: 10, blockHash: b.hash, payload: { message: 'hello 1' } } });
    expect(s.candidateCount()).toBe(2);
    // Seen again in the mempool after confirmation: nothing happens.
    expect(s.transaction(() => s.recordPending(found(1)))).toBeUndefined();

    const reorged = s.transaction(() => s.disconnectBlock(b));
    expect(reorged.map((e) => e.type)).toEqual(['drop.reorged']);
    expect(s.candidateCount()).toBe(0);
    expect(s.getDrop(dropId(txid(1), 1))?.status).toBe('reorged');

    // Back in the mempool, then mined again in the same block (reconsiderblock): new events, new ids.
    expect(s.transaction(() => s.recordPending(found(1)))?.type).toBe('drop.pending');
    const again = s.transaction(() => s.connectBlock(b, [candidate(10, 1)], [found(1)], 10));
    expect(again[0]?.data['confirmations']).toBe(1);
    const ids = s.eventsAfter(0).map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(s.eventsAfter(0).map((e) => e.type)).toEqual(['drop.pending', 'drop.confirmed', 'drop.reorged', 'drop.pending', 'drop.confirmed']);
    expect(ids[0]).toBe(eventId('drop.pending', dropId(txid(1), 1), 1));
  });

  it('evicts only a pending drop, once, and lets it come back as pending or confirmed', () => {
    const s = memStore();
    const id = dropId(txid(1), 1);
    expect(s.transaction(() => s.recordEvicted(id))).toBeUndefined(); // unknown
    s.transaction(() => s.recordPending(found(1)));
    expect(s.pendingDrops().map((d) => d.id)).toEqual([id]);
    const ev = s.transaction(() => s.recordEvicted(id));
    expect(ev).toMatchObject({ id: eventId('drop.evicted', id, 2), type: 'drop.evicted', data: { dropId: id, status: 'evicted', payload: { message: 'hello 1' } } });
    expect(ev?.data).not.toHaveProperty('height');
    expect(s.transaction(() => s.recordEvicted(id))).toBeUndefined(); // already evicted
    expect(s.pendingDrops()).toEqual([]);
    expect(s.transaction(() => s.recordPending(found(1)))?.id).toBe(eventId('drop.pending', id, 3));
    s.transaction(() => s.recordEvicted(id));
    const b = { height: 10, hash: blockHash(10) };
    expect(s.transaction(() => s.connectBlock(b, [], [found(1)], 10)).map((e) => e.id)).toEqual([eventId('drop.confirmed', id, 5)]);
    expect(s.transaction(() => s.recordEvicted(id))).toBeUndefined(); // confirmed drops are never evicted
    expect(s.getDrop(id)?.status).toBe('confirmed');
  });

  it('upgrades a database whose status CHECK predates evicted, keeping its rows', () => {
    const d = mkdtempSync(join(tmpdir(), 'drop-store-'));
    dirs.push(d);
    const file = join(d, 'old.sqlite');
    const s1 = DropStore.open(file);
    s1.transaction(() => s1.recordPending(found(1)));
    // Rewrite dd_drops as an older version created it.
    s1.db.exec(`CREATE TABLE old AS SELECT * FROM dd_drops; DROP TABLE dd_drops;
      CREATE TABLE dd_drops (id TEXT PRIMARY KEY, identity TEXT NOT NULL, txid TEXT NOT NULL, vout INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'reorged')), height INTEGER, block_hash TEXT,
        generation INTEGER NOT NULL, payload TEXT NOT NULL, first_seen INTEGER NOT NULL, updated INTEGER NOT NULL);
      CREATE INDEX dd_drops_block ON dd_drops (block_hash);
      INSERT INTO dd_drops SELECT * FROM old; DROP TABLE old;`);
    expect(() => s1.transaction(() => s1.recordEvicted(dropId(txid(1), 1)))).toThrow(/CHECK/);
    s1.close();
    const s2 = DropStore.open(file);
    stores.push(s2);
    expect(s2.listDrops().map((r) => [r.txid, r.status, r.generation])).toEqual([[txid(1), 'pending', 1]]);
    expect(s2.transaction(() => s2.recordEvicted(dropId(txid(1), 1)))?.type).toBe('drop.evicted');
    const indexes = s2.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'dd_drops' AND sql IS NOT NULL").all();
    expect(indexes).toEqual([{ name: 'dd_drops_block' }]);
    expect(s2.eventsAfter(0).map((e) => e.type)).toEqual(['drop.pending', 'drop.evicted']);
  });

  it('does not emit twice when the same block is applied twice', () => {
    const s = memStore();
    const b = { height: 5, hash: blockHash(5) };
    s.transaction(() => s.connectBlock(b, [], [found(7)], 5));
    expect(s.transaction(() => s.connectBlock(b, [], [found(7)], 6))).toEqual([]);
    expect(s.eventsAfter(0)).toHaveLength(1);
  });

  it('serves index ranges in chain order and keeps other heights on rollback', () => {
    const s = memStore();
    for (let h = 1; h <= 5; h++) s.transaction(() => s.connectBlock({ height: h, hash: blockHash(h) }, [candidate(h, h * 10), candidate(h, h * 10 + 1)], [], h));
    expect(s.candidatesInRange(2, 3, 100).map((c) => c.height)).toEqual([2, 2, 3, 3]);
    expect(s.candidatesInRange(1, 5, 3)).toHaveLength(3);
    s.transaction(() => s.disconnectBlock({ height: 5, hash: blockHash(5) }));
    expect(s.candidatesInRange(0, 10, 100).map((c) => c.height)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    const c = s.candidatesInRange(1, 1, 1)[0]!;
    expect(c.tweak).toEqual(new Uint8Array(33).fill(2));
    expect(c.data).toEqual(new Uint8Array(80).fill(10));
  });

  it('caches prevouts and prunes the oldest', () => {
    const s = memStore();
    s.putPrevouts([{ txid: txid(1), vout: 0, prevout: { script: Uint8Array.of(0x51, 0x20), value: 2_100_000_000_000_000n } }]);
    expect(s.getPrevout(txid(1), 0)).toEqual({ script: Uint8Array.of(0x51, 0x20), value: 2_100_000_000_000_000n });
    s.putPrevouts([1, 2, 3].map((v) => ({ txid: txid(2), vout: v, prevout: { script: Uint8Array.of(v), value: 1n } })));
    s.prunePrevouts(2);
    expect(s.getPrevout(txid(1), 0)).toBeUndefined();
    expect(s.getPrevout(txid(2), 3)?.value).toBe(1n);
  });

  it('keeps state, events and delivery across a reopen (WAL on disk)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropstore-'));
    dirs.push(dir);
    const file = join(dir, 'w.sqlite');
    const a = DropStore.open(file);
    a.transaction(() => a.connectBlock({ height: 1, hash: blockHash(1) }, [candidate(1, 1)], [found(1)], 1));
    a.markDelivered('cli', 1);
    a.markDelivered('cli', 0); // never moves backwards
    a.close();
    const b = DropStore.open(file);
    stores.push(b);
    expect(b.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(b.deliveredSeq('cli')).toBe(1);
    expect(b.eventsAfter(0)).toHaveLength(1);
    expect(b.listDrops()[0]?.status).toBe('confirmed');
  });
});

// -------------------------------------------------------------------------------------------
// Model-based property: random connects, reorgs, mempool sightings, failed (rolled back)
// transactions and crashing consumers. Checks the outbox against a model of the drops.

type Op =
  | { kind: 'mine'; drops: number[] }
  | { kind: 'reorg'; depth: number }
  | { kind: 'mempool'; drop: number }
  | { kind: 'fail'; drops: number[] }
  | { kind: 'deliver'; upTo: number; crash: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('mine' as const), drops: fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('reorg' as const), depth: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('mempool' as const), drop: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ kind: fc.constant('fail' as const), drops: fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('deliver' as const), upTo: fc.integer({ min: 0, max: 5 }), crash: fc.boolean() }),
);

interface ModelBlock {
  height: number;
  hash: string;
  drops: number[];
}

/** Expected status and the event types each drop should have produced so far. */
class Model {
  chain: ModelBlock[] = [];
  status = new Map<number, 'pending' | 'confirmed' | 'reorged'>();
  events = new Map<number, string[]>();
  forks = 0;

  private push(d: number, type: string): void {
    this.events.set(d, [...(this.events.get(d) ?? []), type]);
  }
  confirmedOnChain(d: number): boolean {
    return this.chain.some((b) => b.drops.includes(d));
  }
  mine(drops: number[]): ModelBlock {
    const height = this.chain.length + 1;
    const fresh = drops.filter((d) => !this.confirmedOnChain(d));
    const block = { height, hash: blockHash(height, this.forks), drops: fresh };
    this.chain.push(block);
    for (const d of fresh) {
      this.status.set(d, 'confirmed');
      this.push(d, 'drop.confirmed');
    }
    return block;
  }
  disconnect(): ModelBlock | undefined {
    const b = this.chain.pop();
    if (b === undefined) return undefined;
    this.forks++;
    for (const d of b.drops) {
      this.status.set(d, 'reorged');
      this.push(d, 'drop.reorged');
    }
    return b;
  }
  mempool(d: number): void {
    const s = this.status.get(d);
    if (s === undefined || s === 'reorged') {
      this.status.set(d, 'pending');
      this.push(d, 'drop.pending');
    }
  }
}

describe('DropStore outbox (property)', () => {
  it('writes exactly one event per state change; failed transactions leave nothing; delivery with crashes loses nothing', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const s = DropStore.open(':memory:');
        try {
          const model = new Model();
          const delivered: OutboxEvent[] = [];
          for (const op of ops) apply(s, model, op, delivered);
          apply(s, model, { kind: 'deliver', upTo: 1000, crash: false }, delivered);
          check(s, model, delivered);
        } finally {
          s.close();
        }
      }),
      { numRuns: 200 },
    );
  });
});

function apply(s: DropStore, model: Model, op: Op, delivered: OutboxEvent[]): void {
  switch (op.kind) {
    case 'mine': {
      const tip = model.chain.length + 1;
      const block = model.mine(op.drops);
      // A tx is mined once per chain, so the block carries only drops not already confirmed on it.
      s.transaction(() => s.connectBlock(block, block.drops.map((d) => candidate(block.height, d, model.forks)), block.drops.map((d) => found(d)), tip));
      break;
    }
    case 'reorg':
      for (let i = 0; i < op.depth; i++) {
        const b = model.disconnect();
        if (b) s.transaction(() => s.disconnectBlock(b));
      }
      break;
    case 'mempool':
      if (!model.confirmedOnChain(op.drop)) {
        model.mempool(op.drop);
        s.transaction(() => s.recordPending(found(op.drop)));
      }
      break;
    case 'fail': {
      const before = s.eventsAfter(0).length;
      const height = model.chain.length + 1;
      const block = { height, hash: blockHash(height, 999) };
      expect(() =>
        s.transaction(() => {
          s.connectBlock(block, [candidate(height, 1, 999)], op.drops.map((d) => found(d)), height);
          throw new Error('crash inside the transaction');
        }),
      ).toThrow('crash');
      expect(s.eventsAfter(0)).toHaveLength(before);
      expect(s.candidatesInRange(height, height, 10)).toHaveLength(0);
      break;
    }
    case 'deliver': {
      // A consumer handles rows after its cursor; with crash=true it dies before persisting the cursor.
      const rows = s.eventsAfter(s.deliveredSeq('c'), op.upTo);
      delivered.push(...rows);
      if (!op.crash && rows.length > 0) s.markDelivered('c', rows[rows.length - 1]!.seq);
      break;
    }
  }
}

function check(s: DropStore, model: Model, delivered: OutboxEvent[]): void {
  const all = s.eventsAfter(0, 100_000);
  // seq strictly increasing, ids unique.
  for (let i = 1; i < all.length; i++) expect(all[i]!.seq).toBeGreaterThan(all[i - 1]!.seq);
  expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
  // Per drop, the outbox tells exactly the model's story.
  for (let d = 0; d <= 5; d++) {
    const mine = all.filter((e) => e.data['txid'] === txid(d)).map((e) => e.type);
    expect(mine).toEqual(model.events.get(d) ?? []);
    expect(s.getDrop(dropId(txid(d), 1))?.status).toBe(model.status.get(d));
  }
  // Delivery is at least once; deduplicated by id it is exactly the outbox, in order.
  const seen = new Set<string>();
  const deduped = delivered.filter((e) => (seen.has(e.id) ? false : (seen.add(e.id), true)));
  expect(deduped.map((e) => e.id)).toEqual(all.map((e) => e.id));
  // The index holds exactly the candidates of blocks on the model chain.
  const expected = model.chain.flatMap((b) => b.drops.map((d) => `${b.height}:${txid(d)}`)).sort();
  expect(s.candidatesInRange(0, 1000, 100_000).map((c) => `${c.height}:${c.txid}`).sort()).toEqual(expected);
}
