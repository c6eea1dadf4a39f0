import { describe, it, expect, afterEach } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ChainFollower, type FollowedBlock, type FollowerConsumer } from '../../../src/chain/follow/follower.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { FakeChain, GatedChain } from '../../support/fake-chain.js';
import { activeTimers } from '../../support/resources.js';

const REPO = resolve(import.meta.dirname, '..', '..', '..');

/** A consumer that records applied blocks in its own table and checks the call order. */
function recordingConsumer(db: Database.Database, log: string[] = []): FollowerConsumer & { log: string[] } {
  db.exec('CREATE TABLE IF NOT EXISTS applied (height INTEGER PRIMARY KEY, hash TEXT NOT NULL)');
  const top = db.prepare<[], FollowedBlock>('SELECT height, hash FROM applied ORDER BY height DESC LIMIT 1');
  return {
    log,
    onConnect(height, hash, raw, d) {
      expect(raw.length).toBeGreaterThan(80);
      const t = top.get();
      if (t) expect(height).toBe(t.height + 1);
      d.prepare('INSERT INTO applied (height, hash) VALUES (?, ?)').run(height, hash);
      log.push(`+${height}`);
    },
    onDisconnect(block, d) {
      expect(top.get()).toEqual(block);
      d.prepare('DELETE FROM applied WHERE height = ?').run(block.height);
      log.push(`-${block.height}`);
    },
  };
}

function applied(db: Database.Database): FollowedBlock[] {
  return db.prepare<[], FollowedBlock>('SELECT height, hash FROM applied ORDER BY height').all();
}

function expectInSync(db: Database.Database, chain: FakeChain, start = 0): void {
  expect(applied(db)).toEqual(chain.chain.slice(start).map((b) => ({ height: b.height, hash: b.hash })));
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(opts: { startHeight?: number; depth?: number } = {}) {
  const chain = new FakeChain();
  const db = new Database(':memory:');
  const consumer = recordingConsumer(db);
  const follower = new ChainFollower({
    source: chain, db, name: 'test', consumer, follow: false,
    ...(opts.startHeight !== undefined ? { startHeight: opts.startHeight } : {}),
    ...(opts.depth !== undefined ? { reorgSafetyDepth: opts.depth } : {}),
  });
  cleanups.push(async () => {
    await follower.close();
    db.close();
  });
  return { chain, db, consumer, follower };
}

describe('ChainFollower', () => {
  it('connects every block from genesis to the tip, oldest first', async () => {
    const { chain, db, follower } = setup();
    chain.mine(5);
    const r = await follower.catchUp();
    expect(r).toMatchObject({ connected: 6, disconnected: 0 });
    expect(follower.cursor()).toEqual({ height: 5, hash: chain.chain[5]!.hash });
    expectInSync(db, chain);
    expect(await follower.catchUp()).toMatchObject({ connected: 0, disconnected: 0 });
  });

  it('starts at startHeight and never passes the base block to the consumer', async () => {
    const { chain, db, follower, consumer } = setup({ startHeight: 3 });
    await follower.catchUp();
    expect(applied(db)).toEqual([]);
    chain.mine(4);
    await follower.catchUp();
    expectInSync(db, chain, 3);
    expect(consumer.log).toEqual(['+3', '+4']);
  });

  it('rewinds stale blocks newest first, then connects the new branch', async () => {
    const { chain, db, follower, consumer } = setup();
    chain.mine(5);
    await follower.catchUp();
    consumer.log.length = 0;
    chain.reorg(2, 3);
    const r = await follower.catchUp();
    expect(r).toMatchObject({ connected: 3, disconnected: 2 });
    expect(consumer.log).toEqual(['-5', '-4', '+4', '+5', '+6']);
    expectInSync(db, chain);
  });

  it('handles a chain that got shorter (invalidateblock)', async () => {
    const { chain, db, follower } = setup();
    chain.mine(4);
    await follower.catchUp();
    chain.disconnect(2);
    expect(await follower.catchUp()).toMatchObject({ connected: 0, disconnected: 2 });
    expectInSync(db, chain);
  });

  it('re-bases when the block below startHeight is reorged away before anything was connected', async () => {
    const { chain, db, follower, consumer } = setup({ startHeight: 3 });
    chain.mine(2); // tip 2 = base
    await follower.catchUp();
    chain.reorg(1, 2); // replaces base, tip 3
    await follower.catchUp();
    expectInSync(db, chain, 3);
    expect(consumer.log).toEqual(['+3']);
  });

  it('rewinds everything when the chain shrinks below the base, then starts again', async () => {
    const { chain, db, follower, consumer } = setup({ startHeight: 3 });
    chain.mine(3); // tip 3
    await follower.catchUp();
    chain.mine(1); // tip 4
    await follower.catchUp();
    chain.disconnect(3); // tip 1, below the base at 2
    expect(await follower.catchUp()).toMatchObject({ disconnected: 2, cursor: null });
    expect(applied(db)).toEqual([]);
    chain.mine(3);
    await follower.catchUp();
    expectInSync(db, chain, 3);
    expect(consumer.log).toEqual(['+3', '+4', '-4', '-3', '+3', '+4']);
  });

  it('fails with CONFLICT on a reorg deeper than the safety window', async () => {
    const { chain, follower } = setup({ depth: 3 });
    chain.mine(6);
    await follower.catchUp();
    chain.reorg(4, 5);
    await expect(follower.catchUp()).rejects.toSatisfy((e) => isDeaddropError(e, 'CONFLICT'));
  });

  it('rejects a block that does not hash to the requested hash', async () => {
    const { chain, follower } = setup();
    const b = chain.mine(1)[0]!;
    const tampered = Uint8Array.from(b.raw);
    tampered[0] = tampered[0]! ^ 1; // header no longer hashes to b.hash
    chain.byHash.set(b.hash, { ...b, raw: tampered });
    await expect(follower.catchUp()).rejects.toSatisfy((e) => isDeaddropError(e, 'PROTOCOL'));
  });

  it('keeps the cursor and the consumer consistent when a handler throws', async () => {
    const { chain, db, follower, consumer } = setup();
    chain.mine(4);
    const onConnect = consumer.onConnect.bind(consumer);
    consumer.onConnect = (h, hash, raw, d, p) => {
      onConnect(h, hash, raw, d, p);
      if (h === 3) throw new Error('boom');
    };
    await expect(follower.catchUp()).rejects.toThrow('boom');
    expect(follower.cursor()?.height).toBe(2);
    expect(applied(db).map((b) => b.height)).toEqual([0, 1, 2]);
    consumer.onConnect = onConnect;
    await follower.catchUp();
    expectInSync(db, chain);
  });

  it('resumes after a restart without reconnecting old blocks', async () => {
    const { chain, db, follower } = setup();
    chain.mine(3);
    await follower.catchUp();
    await follower.close();
    chain.mine(2);
    const calls = chain.rawBlockCalls;
    const again = new ChainFollower({ source: chain, db, name: 'test', consumer: recordingConsumer(db), follow: false });
    cleanups.push(() => again.close());
    expect(await again.catchUp()).toMatchObject({ connected: 2, disconnected: 0 });
    expect(chain.rawBlockCalls - calls).toBe(2);
    expectInSync(db, chain);
  });

  it('passes the result of prepare() to onConnect', async () => {
    const chain = new FakeChain();
    const db = new Database(':memory:');
    const seen: [number, string][] = [];
    const follower = new ChainFollower<string>({
      source: chain, db, name: 'p', follow: false,
      consumer: {
        prepare: async (h) => `prepared-${h}`,
        onConnect: (h, _hash, _raw, _db, prepared) => void seen.push([h, prepared!]),
        onDisconnect: () => undefined,
      },
    });
    chain.mine(1);
    await follower.catchUp();
    expect(seen).toEqual([[0, 'prepared-0'], [1, 'prepared-1']]);
    await follower.close();
    db.close();
  });

  it('follows tip events in the background and stops on close', async () => {
    const chain = new FakeChain();
    const db = new Database(':memory:');
    const consumer = recordingConsumer(db);
    const errors: unknown[] = [];
    const follower = new ChainFollower({ source: chain, db, name: 'bg', consumer, pollIntervalMs: 0, onError: (e) => errors.push(e) });
    await follower.ready();
    chain.mine(3);
    await expect.poll(() => follower.cursor()?.height).toBe(3);
    await follower.close();
    chain.mine(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(follower.cursor()?.height).toBe(3);
    await expect(follower.catchUp()).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    await expect(follower.ready()).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    expect(errors).toEqual([]);
    db.close();
  });

  it('polls when the source sends no events', async () => {
    const chain = new FakeChain();
    const db = new Database(':memory:');
    const follower = new ChainFollower({ source: chain, db, name: 'poll', consumer: recordingConsumer(db), pollIntervalMs: 10 });
    await follower.ready();
    await expect.poll(() => follower.cursor()?.height).toBe(0);
    chain.mine(2, { silent: true });
    await expect.poll(() => follower.cursor()?.height).toBe(2);
    await follower.close();
    db.close();
  });

  it('refuses a source without full blocks', async () => {
    const chain = new FakeChain();
    Object.defineProperty(chain, 'capabilities', { value: { ...chain.capabilities, fullBlocks: false } });
    const db = new Database(':memory:');
    const follower = new ChainFollower({ source: chain, db, name: 'x', consumer: recordingConsumer(db), follow: false });
    await expect(follower.catchUp()).rejects.toSatisfy((e) => isDeaddropError(e, 'UNSUPPORTED'));
    await follower.close();
    db.close();
  });

  it('survives kill -9 in the middle of a block: no block lost or applied twice', () => {
    const dir = mkdtempSync(join(tmpdir(), 'follower-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const dbPath = join(dir, 'f.db');
    const script = join(dir, 'crash.mts');
    writeFileSync(script, `
      import { createRequire } from 'node:module';
      const Database = createRequire(${JSON.stringify(join(REPO, 'package.json'))})('better-sqlite3');
      import { ChainFollower } from ${JSON.stringify(join(REPO, 'src/chain/follow/follower.ts'))};
      import { FakeChain } from ${JSON.stringify(join(REPO, 'test/support/fake-chain.ts'))};
      const killAt = Number(process.argv[2]);
      const chain = new FakeChain();
      chain.mine(6);
      const db = new Database(${JSON.stringify(dbPath)});
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE IF NOT EXISTS applied (height INTEGER PRIMARY KEY, hash TEXT NOT NULL)');
      const f = new ChainFollower({ source: chain, db, name: 'crash', follow: false, consumer: {
        onConnect(h, hash) {
          db.prepare('INSERT INTO applied (height, hash) VALUES (?, ?)').run(h, hash);
          if (h === killAt) process.kill(process.pid, 'SIGKILL');
        },
        onDisconnect(b) { db.prepare('DELETE FROM applied WHERE height = ?').run(b.height); },
      } });
      await f.catchUp();
      await f.close();
      process.stdout.write(JSON.stringify(f.cursor()));
    `);
    const run = (killAt: number) => spawnSync(process.execPath, ['--import', 'tsx', script, String(killAt)], { cwd: REPO, encoding: 'utf8' });
    const crashed = run(4);
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    const db = new Database(dbPath, { readonly: true });
    const heights = db.prepare<[], { height: number }>('SELECT height FROM applied ORDER BY height').all().map((r) => r.height);
    const cursor = db.prepare<[], { height: number }>("SELECT MAX(height) AS height FROM follower_blocks WHERE name = 'crash'").get();
    db.close();
    expect(heights).toEqual([0, 1, 2, 3]);
    expect(cursor?.height).toBe(3);
    const resumed = run(-1);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout).height).toBe(6);
    const db2 = new Database(dbPath, { readonly: true });
    expect(db2.prepare('SELECT COUNT(*) AS n FROM applied').get()).toEqual({ n: 7 });
    db2.close();
  });

  it('close during open: close resolves, ready rejects CLOSED, no subscription or timer is left', async () => {
    const chain = new GatedChain();
    const db = new Database(':memory:');
    const timers = activeTimers();
    const follower = new ChainFollower({ source: chain, db, name: 'gated', consumer: recordingConsumer(db), pollIntervalMs: 50 });
    const opening = follower.ready();
    const closing = follower.close();
    chain.release();
    await expect(opening).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    await closing;
    expect(chain.liveSubscriptions).toBe(0);
    expect(activeTimers()).toBeLessThanOrEqual(timers);
    db.close();
  });
});

