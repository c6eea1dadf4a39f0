/**
 * Parallel scanning (issue 15): the scan pool against the one-thread path on the same blocks
 * (valid mainnet-shaped blocks from test/support/chaingen.ts, served by the in-memory chain),
 * a rescan stopped half-way and resumed, worker failures, and close().
 */
import { describe, it, expect, afterAll, beforeAll, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeChain } from '../../support/fake-chain.js';
import { generateChain, MATURITY, type ChainBlock } from '../../support/chaingen.js';
import { newIdentity, type TestIdentity } from '../../support/watch.js';
import { expectCode } from '../../support/errors.js';
import { DropWatcher, type WatcherEvent } from '../../../src/deaddrop/watch/watcher.js';
import { DropStore } from '../../../src/deaddrop/watch/drop-store.js';
import { ScanPool, InlineScanner } from '../../../src/deaddrop/watch/scan-pool.js';
import { DeaddropError, isDeaddropError } from '../../../src/util/errors.js';

const BIG = 24;
const who: TestIdentity = newIdentity('me');
const other: TestIdentity = newIdentity('other');
let blocks: ChainBlock[] = [];
const dirs: string[] = [];

beforeAll(() => {
  const base = new FakeChain();
  // 150 txs a block, 12 drop-sized candidates (2 real drops to `who`), 40 Runestones.
  blocks = [...generateChain({ count: BIG, txCount: 150, candidates: 12, runestones: 40, dropsPerBlock: 2, recipient: who.address, pad: 40, genesisHash: base.chain[0]!.hash })];
});

afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh in-memory chain holding the generated blocks (each chain starts with the same block 0). */
function chain(upTo = blocks.length): FakeChain {
  const c = new FakeChain();
  for (const b of blocks.slice(0, upTo)) c.appendRaw(b.raw);
  return c;
}

function tmpStore(): string {
  const d = mkdtempSync(join(tmpdir(), 'dd-scan-pool-'));
  dirs.push(d);
  return join(d, 'watcher.sqlite');
}

interface Outcome {
  readonly events: string[];
  readonly rows: string[];
  readonly candidates: number;
  readonly pooled: number;
}

const open: DropWatcher[] = [];
afterEach(async () => {
  for (const w of open.splice(0)) await w.close();
});

function watcherOn(source: FakeChain, store: string, scanThreads: number, events: WatcherEvent[], extra: { prefetch?: number } = {}): DropWatcher {
  const w = new DropWatcher({
    source, store, identities: [who.identity, other.identity], birthday: MATURITY + 1, follow: false, scanThreads, scanPoolAfterMs: 0, ...extra,
    onEvent: (e) => events.push(e),
  });
  open.push(w);
  return w;
}

async function rescan(scanThreads: number, extra: { prefetch?: number } = {}): Promise<Outcome> {
  const events: WatcherEvent[] = [];
  const w = watcherOn(chain(), tmpStore(), scanThreads, events, extra);
  await w.startScanWorkers();
  await w.catchUp();
  const rows = w.store.candidatesInRange(0, 1_000_000, 1_000_000).map((r) => `${r.height}:${r.txid}:${r.vout}:${Buffer.from(r.tweak).toString('hex')}`);
  const out = { events: events.filter((e) => e.type.startsWith('drop.')).map((e) => `${e.type}:${e.id}:${String(e.data['txid'])}`), rows, candidates: w.stats().candidates, pooled: w.stats().pooledBlocks };
  await w.close();
  return out;
}

describe('parallel scanning', () => {
  it('finds the same drops in the same order, and the same index rows, as the one-thread path', async () => {
    const expected = blocks.flatMap((b) => b.drops.map((d) => d.txid));
    expect(expected).toHaveLength(2 * BIG);
    const one = await rescan(1);
    const two = await rescan(2, { prefetch: 6 });
    expect(one.events.map((e) => e.split(':').pop())).toEqual(expected);
    expect(two.events).toEqual(one.events);
    expect(two.rows).toEqual(one.rows);
    expect(one.candidates).toBe(12 * BIG);
    expect(two.candidates).toBe(one.candidates);
    expect(one.pooled).toBe(0);
    expect(two.pooled).toBeGreaterThan(BIG / 2); // the rest: while the workers loaded, and near the tip
  }, 120_000);

  it('resumes a rescan stopped half-way (a node failure mid-window) without losing or repeating a drop', async () => {
    const store = tmpStore();
    const source = chain();
    const failAt = blocks[MATURITY + 10]!.hash;
    const real = source.getRawBlock.bind(source);
    let broken = true;
    source.getRawBlock = async (hash: string) => {
      if (broken && hash === failAt) throw new DeaddropError('BACKEND_ERROR', 'node went away');
      return real(hash);
    };
    const first: WatcherEvent[] = [];
    const w1 = watcherOn(source, store, 2, first, { prefetch: 8 });
    await w1.startScanWorkers();
    await expectCode(w1.catchUp(), 'BACKEND_ERROR', /node went away/);
    // Blocks before the failing one were committed in order; nothing after it.
    expect(w1.cursor()!.height).toBe(MATURITY + 10);
    await w1.close();

    broken = false;
    const second: WatcherEvent[] = [];
    const w2 = watcherOn(source, store, 2, second);
    await w2.ready();
    await w2.catchUp();
    expect(w2.cursor()!.height).toBe(MATURITY + BIG);
    const seen = [...first, ...second].filter((e) => e.type === 'drop.confirmed');
    expect(seen.map((e) => e.data['txid'])).toEqual(blocks.flatMap((b) => b.drops.map((d) => d.txid)));
    expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
    const s = DropStore.open(store);
    try {
      expect(s.listDrops()).toHaveLength(2 * BIG);
    } finally {
      s.close();
    }
  }, 120_000);

  it('gives the same scans on a worker as on this thread, and transfers the block instead of copying it', async () => {
    const raw = blocks[blocks.length - 1]!.raw;
    const pool = new ScanPool({ size: 2, identities: [who.identity] });
    try {
      const own = raw.slice();
      const viaPool = await pool.scan(own);
      expect(own.byteLength).toBe(0); // detached: moved to the worker
      const inline = await new InlineScanner([who.identity]).scan(raw);
      expect(viaPool).toEqual(inline);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('turns a job that throws in a worker into a rejected promise', async () => {
    const pool = new ScanPool({ size: 1, identities: [who.identity] });
    try {
      await expectCode(pool.finish([{ index: 1, tx: Uint8Array.of(1, 2, 3), outpoints: [] }], new Map()), 'BACKEND_ERROR', /scan worker/);
      // The worker survives a failed job.
      expect((await pool.scan(blocks[0]!.raw.slice())).candidates).toEqual([]);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('rejects the jobs of a worker that exits or throws, and replaces it', async () => {
    const pool = new ScanPool({ size: 2, identities: [], workerUrl: new URL('../../support/failing-scan-worker.ts', import.meta.url) });
    try {
      await expectCode(pool.scan(blocks[0]!.raw.slice()), 'BACKEND_ERROR', /exited \(code 3\)/);
      await expectCode(pool.finish([], new Map()), 'BACKEND_ERROR', /blew up/);
      await expectCode(pool.scan(blocks[0]!.raw.slice()), 'BACKEND_ERROR', /exited/);
    } finally {
      await pool.close();
    }
    expect(pool.liveWorkers).toBe(0);
  }, 60_000);

  it('reports workers that cannot load as an error, not a hang', async () => {
    const pool = new ScanPool({ size: 2, identities: [], workerUrl: new URL('../../support/no-such-scan-worker.ts', import.meta.url) });
    try {
      await expectCode(pool.whenWarm(), 'BACKEND_ERROR', /scan worker/);
      await expectCode(pool.scan(blocks[0]!.raw.slice()), 'BACKEND_ERROR', /scan worker/);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('close() terminates the workers, rejects jobs in flight and later ones', async () => {
    const pool = new ScanPool({ size: 2, identities: [who.identity] });
    await pool.scan(blocks[0]!.raw.slice());
    const inflight = pool.scan(blocks[blocks.length - 1]!.raw.slice()).catch((err: unknown) => err);
    expect(pool.liveWorkers).toBeGreaterThan(0);
    await pool.close();
    expect(pool.liveWorkers).toBe(0);
    expect(isDeaddropError(await inflight, 'CLOSED')).toBe(true);
    await expectCode(pool.scan(blocks[0]!.raw.slice()), 'CLOSED');
    await pool.close(); // idempotent
  }, 60_000);

  it('a watcher closed during a parallel rescan settles and leaves no worker running', async () => {
    const threads = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Worker' || r === 'MessagePort').length;
    const before = threads();
    const events: WatcherEvent[] = [];
    const w = watcherOn(chain(), tmpStore(), 2, events, { prefetch: 8 });
    await w.startScanWorkers();
    const run = w.catchUp().catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 50));
    await w.close();
    await run;
    expect(threads()).toBeLessThanOrEqual(before);
  }, 60_000);
});
