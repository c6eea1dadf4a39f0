/**
 * DropWatcher over the in-memory chain (real block serializations, no script validation), for
 * what a real node will not relay or mine: malformed blocks, absurd varints, invalid curve
 * points, unknown prevouts. Plus restarts, rescans, the index service and a fast-check
 * state-machine test (lnd's txnotifier model test, in spirit). Real-node behaviour is in
 * watcher.int.test.ts.
 */
import { describe, it, expect, afterEach } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type FakeBlock, FakeChain, GatedChain } from '../../support/fake-chain.js';
import { buildDrop } from '../../../src/deaddrop/scan.js';
import { outpointFromHex } from '../../../src/deaddrop/bip352.js';
import { DropWatcher, type WatcherEvent } from '../../../src/deaddrop/watch/watcher.js';
import { DropStore } from '../../../src/deaddrop/watch/drop-store.js';
import { IndexService } from '../../../src/deaddrop/watch/index-service.js';
import { validateCandidateRange } from '../../../src/deaddrop/watch/light-client.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { hashToHex, newIdentity, opReturn, payload, runestone, sha256d, taprootTestKey, type TestIdentity, txidOf } from '../../support/watch.js';
import { rawTx } from '../../support/tx.js';
import { expectCode } from '../../support/errors.js';
import { activeTimers } from '../../support/resources.js';

const dirs: string[] = [];
const open: DropWatcher[] = [];
afterEach(async () => {
  for (const w of open.splice(0)) await w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'watcher-unit-'));
  dirs.push(d);
  return d;
}

interface Harness {
  readonly watcher: DropWatcher;
  readonly events: WatcherEvent[];
  readonly errors: unknown[];
  readonly warnings: string[];
}

function watcher(chain: FakeChain, store: string, ids: readonly TestIdentity[], extra: { birthday?: number; rescan?: boolean } = {}): Harness {
  const events: WatcherEvent[] = [];
  const errors: unknown[] = [];
  const warnings: string[] = [];
  const w = new DropWatcher({
    source: chain, store, identities: ids.map((i) => i.identity), follow: false, birthday: extra.birthday ?? 1, rescan: extra.rescan ?? false,
    onEvent: (e) => events.push(e), onError: (e) => errors.push(e), onWarning: (m) => warnings.push(m),
  });
  open.push(w);
  return { watcher: w, events, errors, warnings };
}

const drops = (h: Harness): WatcherEvent[] => h.events.filter((e) => e.type.startsWith('drop.'));

/** A sender with taproot coins on the in-memory chain (created by a funding tx nobody validates). */
class Sender {
  coins: { txid: string; vout: number; priv: Uint8Array; script: Uint8Array }[] = [];

  constructor(readonly chain: FakeChain) {}

  fund(n: number): void {
    const keys = Array.from({ length: n }, () => taprootTestKey());
    const raw = rawTx([{ txid: hashToHex(new Uint8Array(randomBytes(32))), vout: 0 }], keys.map((k) => ({ script: k.script, value: 10_000n })));
    const txid = txidOf(raw);
    keys.forEach((k, vout) => this.coins.push({ txid, vout, priv: k.priv, script: k.script }));
    this.chain.mine(1, { txs: [raw] });
  }

  /** A drop to `to` (envelope optionally damaged), spending one coin with a dummy key-path witness. */
  drop(to: TestIdentity, message: string, damage?: (env: Uint8Array) => Uint8Array): Uint8Array {
    const c = this.coins.pop()!;
    const d = buildDrop({ inputs: [{ outpoint: outpointFromHex(c.txid, c.vout), prevoutScript: c.script, privateKey: c.priv }], recipient: to.address, payload: payload('ws://198.51.100.1:80', message) });
    return this.spend(c, opReturn(damage ? damage(d.envelope) : d.envelope));
  }

  spend(c: { txid: string; vout: number; script: Uint8Array }, data: Uint8Array, witness: Uint8Array[] = [new Uint8Array(64)]): Uint8Array {
    return rawTx([{ txid: c.txid, vout: c.vout, witness }], [{ script: data, value: 0n }, { script: c.script, value: 9_000n }]);
  }
}

/** Appends a block with a valid, linking header and an arbitrary (possibly malformed) body. */
function appendRawBlock(chain: FakeChain, body: Uint8Array): FakeBlock {
  const prev = Uint8Array.from(Buffer.from(chain.chain[chain.height]!.hash, 'hex')).reverse();
  const header = new Uint8Array(80);
  header.set([0, 0, 0, 0x20]);
  header.set(prev, 4);
  header.set(randomBytes(32), 36);
  const raw = new Uint8Array(80 + body.length);
  raw.set(header);
  raw.set(body, 80);
  const block: FakeBlock = { height: chain.chain.length, hash: hashToHex(sha256d(header)), raw, txids: [] };
  chain.chain.push(block);
  chain.byHash.set(block.hash, block);
  return block;
}

describe('DropWatcher (in-memory chain)', () => {
  it('reports pending from the mempool and confirmed when mined, for B only', async () => {
    const chain = new FakeChain();
    const B = newIdentity('B');
    const C = newIdentity('C');
    const sender = new Sender(chain);
    sender.fund(2);
    const dir = tmp();
    const wB = watcher(chain, join(dir, 'b.sqlite'), [B]);
    const wC = watcher(chain, join(dir, 'c.sqlite'), [C]);
    const wBoth = watcher(chain, join(dir, 'bc.sqlite'), [C, B]); // several identities in one watcher
    const all = [wB, wC, wBoth];
    for (const w of all) await w.watcher.catchUp();
    const res = await chain.broadcast(sender.drop(B, 'hi B'));
    expect(res.accepted).toBe(true);
    for (const w of all) await w.watcher.scanMempool();
    chain.mine(3);
    for (const w of all) await w.watcher.catchUp();
    expect(drops(wBoth).map((e) => [e.type, e.data['identity']])).toEqual([['drop.pending', 'B'], ['drop.confirmed', 'B']]);
    expect(drops(wB).map((e) => [e.type, e.data['confirmations']])).toEqual([['drop.pending', undefined], ['drop.confirmed', 3]]);
    expect(drops(wB)[1]!.data['payload']).toMatchObject({ message: 'hi B', endpoints: ['ws://198.51.100.1'] });
    expect(drops(wC)).toEqual([]);
    expect(wB.events.filter((e) => e.type === 'watch.progress').at(-1)?.data).toEqual({ height: chain.height, tip: chain.height });
    expect([...wB.errors, ...wC.errors]).toEqual([]);
  });

  it('survives malformed blocks, absurd varints, invalid points, unknown prevouts and bad envelopes without an event', async () => {
    const chain = new FakeChain();
    const B = newIdentity('B');
    const sender = new Sender(chain);
    sender.fund(12);
    const h = watcher(chain, join(tmp(), 'b.sqlite'), [B]);
    await h.watcher.catchUp();

    // Blocks that do not parse: an absurd tx count, a truncated tx, a 0xff varint.
    appendRawBlock(chain, Uint8Array.of(0xfe, 0xff, 0xff, 0xff, 0x7f));
    appendRawBlock(chain, Uint8Array.of(0x01, 0x02, 0x00, 0x00, 0x00, 0x01));
    appendRawBlock(chain, Uint8Array.of(0x01, 0x02, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    // Transactions that parse but cannot be drops.
    const notOnCurve = Uint8Array.from([0x02, ...new Uint8Array(32).fill(0xff)]); // x >= p
    const wpkhPrev = rawTx([{ txid: hashToHex(new Uint8Array(randomBytes(32))), vout: 0 }], [{ script: Uint8Array.from([0x00, 0x14, ...new Uint8Array(20)]), value: 5000n }]);
    const badTaprootPrev = rawTx([{ txid: hashToHex(new Uint8Array(randomBytes(32))), vout: 0 }], [{ script: Uint8Array.from([0x51, 0x20, ...new Uint8Array(32).fill(0xff)]), value: 5000n }]);
    chain.mine(1, { txs: [wpkhPrev, badTaprootPrev] });
    const data80 = (): Uint8Array => opReturn(new Uint8Array(randomBytes(80)));
    const bad = [
      sender.spend({ txid: txidOf(wpkhPrev), vout: 0, script: new Uint8Array(0) }, data80(), [new Uint8Array(71), notOnCurve]),
      sender.spend({ txid: txidOf(badTaprootPrev), vout: 0, script: new Uint8Array(0) }, data80()),
      sender.spend({ txid: hashToHex(new Uint8Array(randomBytes(32))), vout: 3, script: new Uint8Array(0) }, data80()), // unknown prevout
      sender.drop(B, 'truncated', (e) => e.subarray(0, 60)),
      sender.drop(B, 'flipped', (e) => { const x = e.slice(); x[79]! ^= 0x80; return x; }),
      sender.drop(B, 'short', (e) => e.subarray(0, 51)),
      sender.spend(sender.coins.pop()!, runestone(new Uint8Array(randomBytes(70)))),
      sender.spend(sender.coins.pop()!, data80()),
    ];
    // The mempool too: the same transactions, plus bytes that are not a transaction at all.
    for (const raw of bad) chain.mempool.set(txidOf(raw), raw);
    chain.mempool.set('ab'.repeat(32), Uint8Array.of(1, 2, 3));
    await h.watcher.scanMempool();
    chain.mine(1, { txs: bad });
    // After all that, a real drop is still found.
    const good = sender.drop(B, 'still here');
    chain.mine(1, { txs: [good] });
    await h.watcher.catchUp();
    expect(drops(h).map((e) => [e.type, e.data['txid']])).toEqual([['drop.confirmed', txidOf(good)]]);
    expect(h.errors).toEqual([]);
    expect(h.watcher.stats()).toMatchObject({ malformedBlocks: 3, unscannable: 3 });
    expect(h.warnings).toHaveLength(3);
    expect(h.watcher.cursor()?.height).toBe(chain.height);
  });

  it('rolls back on a reorg, confirms again, and neither a restart nor a rescan repeats an event', async () => {
    const chain = new FakeChain();
    const B = newIdentity('B');
    const sender = new Sender(chain);
    sender.fund(2);
    const file = join(tmp(), 'b.sqlite');
    const h1 = watcher(chain, file, [B]);
    const tx = sender.drop(B, 'reorg');
    const [mined] = chain.mine(1, { txs: [tx] });
    await h1.watcher.catchUp();
    expect(h1.watcher.index.candidates(0, chain.height).candidates.map((c) => c.blockHash)).toEqual([mined!.hash]);
    chain.reorg(1, 2, { txs: [tx] });
    await h1.watcher.catchUp();
    expect(drops(h1).map((e) => e.type)).toEqual(['drop.confirmed', 'drop.reorged', 'drop.confirmed']);
    expect(h1.watcher.index.candidates(0, chain.height).candidates.map((c) => c.blockHash)).toEqual([chain.chain[mined!.height]!.hash]);
    await h1.watcher.close();
    expect(() => h1.watcher.drops()).toThrow(/closed/);

    const h2 = watcher(chain, file, [B]);
    await h2.watcher.ready();
    chain.mine(1);
    await h2.watcher.catchUp();
    expect(drops(h2)).toEqual([]); // everything was delivered before the restart
    await h2.watcher.close();

    const h3 = watcher(chain, file, [B], { rescan: true });
    await h3.watcher.catchUp();
    expect(drops(h3)).toEqual([]); // same blocks, same state: nothing new
    expect(h3.watcher.drops().map((d) => d.status)).toEqual(['confirmed']);
    expect(h3.watcher.index.candidates(0, chain.height).candidates).toHaveLength(1);
  });

  it('retracts a pending drop replaced in the mempool (drop.evicted), once, and follows its return', async () => {
    const chain = new FakeChain();
    const B = newIdentity('B');
    const sender = new Sender(chain);
    sender.fund(2);
    const file = join(tmp(), 'b.sqlite');
    const h1 = watcher(chain, file, [B]);
    await h1.watcher.catchUp();
    const coin = sender.coins.at(-1)!;
    const tx = sender.drop(B, 'rbf me');
    await chain.broadcast(tx);
    await h1.watcher.scanMempool();
    const replacement = sender.spend(coin, opReturn(new Uint8Array(randomBytes(80))));
    expect((await chain.broadcast(replacement)).accepted).toBe(true);
    expect(chain.mempool.has(txidOf(tx))).toBe(false); // FakeChain replaces the conflicting tx
    await h1.watcher.scanMempool();
    await h1.watcher.scanMempool(); // a second pass changes nothing
    const id = h1.watcher.drops()[0]!.id;
    expect(drops(h1).map((e) => e.id)).toEqual([`drop.pending:${id}:1`, `drop.evicted:${id}:2`]);
    expect(drops(h1)[1]!.data).toMatchObject({ txid: txidOf(tx), status: 'evicted' });
    expect(drops(h1)[1]!.data).not.toHaveProperty('height');
    expect(h1.watcher.drops().map((d) => d.status)).toEqual(['evicted']);
    expect(h1.watcher.stats().evicted).toBe(1);
    await h1.watcher.close();

    const h2 = watcher(chain, file, [B]); // restart: nothing is repeated
    await h2.watcher.scanMempool();
    expect(drops(h2)).toEqual([]);
    await chain.broadcast(tx); // the drop comes back (replacing the replacement), then is mined
    await h2.watcher.scanMempool();
    chain.mine(1, { txs: [tx] });
    await h2.watcher.catchUp();
    expect(drops(h2).map((e) => e.id)).toEqual([`drop.pending:${id}:3`, `drop.confirmed:${id}:4`]);
    expect([...h1.errors, ...h2.errors]).toEqual([]);
  });

  it('retracts a pending drop replaced while the watcher was down, at its first mempool pass', async () => {
    const chain = new FakeChain();
    const B = newIdentity('B');
    const sender = new Sender(chain);
    sender.fund(1);
    const file = join(tmp(), 'b.sqlite');
    const h1 = watcher(chain, file, [B]);
    const coin = sender.coins.at(-1)!;
    await chain.broadcast(sender.drop(B, 'replaced while down'));
    await h1.watcher.scanMempool();
    expect(drops(h1).map((e) => e.type)).toEqual(['drop.pending']);
    await h1.watcher.close();
    await chain.broadcast(sender.spend(coin, opReturn(new Uint8Array(randomBytes(80)))));
    chain.mine(1); // the replacement is mined: the drop can never confirm now
    const h2 = watcher(chain, file, [B]);
    await h2.watcher.scanMempool();
    expect(drops(h2).map((e) => e.type)).toEqual(['drop.evicted']);
    expect(h2.watcher.cursor()?.height).toBe(chain.height);
    expect([...h1.errors, ...h2.errors]).toEqual([]);
  });

  it('does not report a pending drop that left the mempool by being mined as evicted', async () => {
    const chain = new FakeChain();
    const B = newIdentity('B');
    const sender = new Sender(chain);
    sender.fund(1);
    const h = watcher(chain, join(tmp(), 'b.sqlite'), [B]);
    await h.watcher.catchUp();
    await chain.broadcast(sender.drop(B, 'mined'));
    await h.watcher.scanMempool();
    chain.mine(1); // leaves the mempool; the watcher has not seen the block yet
    expect(chain.mempool.size).toBe(0);
    await h.watcher.scanMempool(); // must connect the block before deciding
    expect(drops(h).map((e) => e.type)).toEqual(['drop.pending', 'drop.confirmed']);
    expect(h.watcher.stats().evicted).toBe(0);
    expect(h.errors).toEqual([]);
  });

  it('rejects misuse: bad identities, calls before ready', () => {
    const chain = new FakeChain();
    const B = newIdentity('B');
    expect(() => new DropWatcher({ source: chain, store: ':memory:', identities: [B.identity, B.identity] })).toThrow(TypeError);
    expect(() => new DropWatcher({ source: chain, store: ':memory:', identities: [{ ...B.identity, scanPrivateKey: new Uint8Array(32) }] })).toThrow(TypeError);
    expect(() => new DropWatcher({ source: chain, store: ':memory:', birthday: -1 })).toThrow(RangeError);
    const w = new DropWatcher({ source: chain, store: ':memory:' });
    expect(() => w.drops()).toThrow(/ready/);
  });
});

describe('IndexService', () => {
  it('clips to the indexed heights, bounds ranges and splits at whole blocks', () => {
    const store = DropStore.open(':memory:');
    try {
      for (let h = 10; h <= 14; h++) {
        const rows = Array.from({ length: 3 }, (_, i) => ({
          height: h, blockHash: 'ab'.repeat(32), txid: (h * 10 + i).toString(16).padStart(64, '0'), vout: 1, tweak: new Uint8Array(33).fill(2), data: new Uint8Array(80),
        }));
        store.transaction(() => store.connectBlock({ height: h, hash: 'ab'.repeat(32) }, rows, [], h));
      }
      const svc = new IndexService(store, () => ({ indexedFrom: 10, indexedTip: 14 }), { maxRows: 7 });
      const r = svc.candidates(0, 100);
      expect([r.from, r.to, r.candidates.length]).toEqual([10, 11, 6]); // 7 rows would cut block 12
      expect(svc.candidates(12, 12).candidates).toHaveLength(3);
      expect(svc.candidates(15, 20)).toMatchObject({ from: 15, to: 14, candidates: [] });
      const tiny = new IndexService(store, () => ({ indexedFrom: 10, indexedTip: 14 }), { maxRows: 1 });
      expect(tiny.candidates(10, 14)).toMatchObject({ from: 10, to: 10 }); // one block above the limit is served whole
      expect(tiny.candidates(10, 14).candidates).toHaveLength(3);
      for (const [a, b] of [[-1, 5], [5, 4], [0, 1000], [1.5, 2]] as const) {
        expectCode(() => svc.candidates(a, b), 'BAD_INPUT');
      }
      expect(new IndexService(store, () => ({ indexedFrom: null, indexedTip: null })).candidates(0, 5).candidates).toEqual([]);
    } finally {
      store.close();
    }
  });
});

describe('light client response validation', () => {
  const row = { height: 5, blockHash: 'ab'.repeat(32), txid: 'cd'.repeat(32), vout: 0, tweak: '02' + 'ef'.repeat(32), data: '00'.repeat(80) };
  const ok = { from: 5, to: 6, indexedFrom: 0, indexedTip: 9, candidates: [row] };

  it('accepts a well-formed range and rejects everything else as PROTOCOL', () => {
    expect(validateCandidateRange(ok, 5, 6).candidates).toHaveLength(1);
    const bad: unknown[] = [
      null, [], 'x', { ...ok, to: 7 }, { ...ok, from: 4 }, { ...ok, candidates: {} },
      { ...ok, candidates: [{ ...row, height: 7 }] }, { ...ok, candidates: [{ ...row, tweak: '02' }] },
      { ...ok, candidates: [{ ...row, data: '00'.repeat(81) }] }, { ...ok, candidates: [{ ...row, txid: 'CD'.repeat(32) }] },
      { ...ok, candidates: [{ ...row, vout: -1 }] }, { from: 5, to: 4, indexedFrom: 0, indexedTip: 3, candidates: [row] },
    ];
    for (const b of bad) {
      let err: unknown;
      try {
        validateCandidateRange(b, 5, 6);
      } catch (e) {
        err = e;
      }
      expect(isDeaddropError(err, 'PROTOCOL')).toBe(true);
    }
  });
});

// -------------------------------------------------------------------------------------------
// State machine: random drops, decoys, RBF replacements, blocks, reorgs and restarts; the events must tell the
// story of the final chain exactly.

type Step =
  | { kind: 'drop' } | { kind: 'decoy' } | { kind: 'replace' } | { kind: 'mine'; n: number } | { kind: 'reorg'; depth: number } | { kind: 'restart' } | { kind: 'mempool' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.constant({ kind: 'drop' as const }),
  fc.constant({ kind: 'decoy' as const }),
  fc.constant({ kind: 'replace' as const }),
  fc.record({ kind: fc.constant('mine' as const), n: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ kind: fc.constant('reorg' as const), depth: fc.integer({ min: 1, max: 3 }) }),
  fc.constant({ kind: 'restart' as const }),
  fc.constant({ kind: 'mempool' as const }),
);

describe('DropWatcher state machine (property)', () => {
  it('ends with the last event of every drop matching where the chain has it, ids unique, no false drops', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 14 }), async (steps) => {
        const chain = new FakeChain();
        const B = newIdentity('B');
        const sender = new Sender(chain);
        sender.fund(20);
        const file = join(tmp(), 'b.sqlite');
        const all: WatcherEvent[] = [];
        let h = watcher(chain, file, [B]);
        const sent: string[] = [];
        const coinOf = new Map<string, Sender['coins'][number]>();
        for (const s of steps) {
          if (s.kind === 'drop' || s.kind === 'decoy') {
            const coin = sender.coins.at(-1)!;
            const raw = s.kind === 'drop' ? sender.drop(B, 'sm') : sender.spend(sender.coins.pop()!, opReturn(new Uint8Array(randomBytes(80))));
            if (s.kind === 'drop') sent.push(txidOf(raw));
            coinOf.set(txidOf(raw), coin);
            await chain.broadcast(raw);
          } else if (s.kind === 'replace') {
            const victim = sent.find((t) => chain.mempool.has(t));
            if (victim !== undefined) await chain.broadcast(sender.spend(coinOf.get(victim)!, opReturn(new Uint8Array(randomBytes(80)))));
          } else if (s.kind === 'mine') chain.mine(s.n);
          else if (s.kind === 'reorg' && chain.height - s.depth > 1) chain.reorg(s.depth, s.depth + 1, { dropMempool: false });
          else if (s.kind === 'restart') {
            await h.watcher.close();
            all.push(...h.events);
            h = watcher(chain, file, [B]);
          } else if (s.kind === 'mempool') await h.watcher.scanMempool();
          await h.watcher.catchUp();
        }
        await h.watcher.scanMempool();
        await h.watcher.catchUp();
        all.push(...h.events);
        const events = all.filter((e) => e.type.startsWith('drop.'));
        expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
        const onChain = new Map<string, string>();
        for (const b of chain.chain) for (const t of b.txids) onChain.set(t, b.hash);
        for (const txid of new Set(events.map((e) => e.data['txid'] as string))) expect(sent).toContain(txid);
        for (const txid of sent) {
          const mine = events.filter((e) => e.data['txid'] === txid);
          const last = mine.at(-1);
          if (onChain.has(txid)) expect(last).toMatchObject({ type: 'drop.confirmed', data: { blockHash: onChain.get(txid) } });
          else if (chain.mempool.has(txid)) expect(last?.type).toBe('drop.pending');
          else expect([undefined, 'drop.reorged', 'drop.evicted']).toContain(last?.type); // gone: retracted
          // an eviction only ever follows a pending
          mine.forEach((e, i) => {
            if (e.type === 'drop.evicted') expect(mine[i - 1]?.type).toBe('drop.pending');
          });
          // confirmed and reorged alternate, starting with confirmed
          const cr = mine.map((e) => e.type).filter((t) => t !== 'drop.pending' && t !== 'drop.evicted');
          cr.forEach((t, i) => expect(t).toBe(i % 2 === 0 ? 'drop.confirmed' : 'drop.reorged'));
        }
        expect(h.errors).toEqual([]);
      }),
      { numRuns: 25 },
    );
  });
});

describe('DropWatcher lifecycle', () => {
  it('close during open: close resolves, ready rejects CLOSED, nothing is left running', async () => {
    const chain = new GatedChain();
    const file = join(tmp(), 'drops.db');
    const timers = activeTimers();
    const w = new DropWatcher({ source: chain, store: file, identities: [newIdentity('B').identity], pollIntervalMs: 50 });
    const opening = w.ready();
    const closing = w.close();
    chain.release();
    await expect(opening).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    await closing;
    expect(chain.liveSubscriptions).toBe(0);
    expect(activeTimers()).toBeLessThanOrEqual(timers);
    expect(() => w.store).toThrow();
  });
});
