/**
 * One table of named cases every ChainSource must pass against a real regtest node
 * (modelled on LND's chainntnfs/test/test_interface.go). A backend test file starts the node
 * (and whatever server sits in front of it) once in beforeAll and calls
 * {@link describeConformance}; each case opens a fresh source and closes it afterwards.
 *
 * Cases respect `capabilities`: a backend without full blocks must answer UNSUPPORTED for
 * them instead, one without a mempool list skips the mempool feed, and so on.
 */
import { expect, it } from 'vitest';
import { parseBlock, parseTransaction } from '../../src/chain/block.js';
import type { BackendOptions, ChainEvent, ChainSource } from '../../src/chain/types.js';
import { freePort, type RegtestNode } from '../../src/regtest/harness.js';
import { expectCode } from './errors.js';
import { waitUntil } from './wait.js';

/** What a backend test file hands to the suite. */
export interface ConformanceTarget {
  /** The running node (valid once beforeAll has run). */
  readonly node: () => RegtestNode;
  /** URL of the backend under test (valid once beforeAll has run). */
  readonly backendUrl: () => string;
  /** Opens (without `ready()`) a source for `url` (default backendUrl()) with these options. */
  readonly open: (url: string, opts: BackendOptions) => Promise<ChainSource>;
  /** Makes the backend unreachable for a moment and brings it back; default `node.restart()`. */
  readonly restart?: () => Promise<void>;
  /** Waits until the backend has caught up with the node (servers that index); default nothing. */
  readonly settle?: () => Promise<void>;
}

export interface ConformanceCase {
  readonly name: string;
  readonly run: (t: CaseContext) => Promise<void>;
}

/** Per-case helpers. */
export interface CaseContext {
  readonly node: RegtestNode;
  readonly target: ConformanceTarget;
  /** The source under test, already `ready()`; closed after the case. */
  readonly src: ChainSource;
  /** Every event the source emitted since the case started. */
  readonly events: ChainEvent[];
  /** Opens another source (closed after the case); `ready()` is not called. */
  open(opts?: Partial<BackendOptions> & { url?: string }): Promise<ChainSource>;
  /** Resolves with the first event (seen so far or later) matching `pred`. */
  waitEvent(pred: (e: ChainEvent) => boolean, what: string, timeoutMs?: number): Promise<ChainEvent>;
}

export const POLL_MS = 100;
/** A regtest address nobody here holds the key of (BIP173 test vector program). */
const STRANGER = 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080';

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

/** The conformance table. */
export const CASES: readonly ConformanceCase[] = [
  {
    name: 'detects the network from the genesis hash',
    async run({ src }) {
      expect(await src.network()).toBe('regtest');
    },
  },
  {
    name: 'tip matches the node',
    async run({ src, node, target }) {
      await target.settle?.();
      const tip = await src.getTip();
      expect(tip.hash).toBe(await node.rpc<string>('getbestblockhash'));
      expect(tip.height).toBe(await node.rpc<number>('getblockcount'));
    },
  },
  {
    name: 'block by height and by hash',
    async run({ src, node, target }) {
      await target.settle?.();
      const tip = await src.getTip();
      const h = tip.height - 1;
      const hash = await src.getBlockHash(h);
      expect(hash).toBe(await node.rpc<string>('getblockhash', [h]));
      const header = await src.getBlockHeader(hash);
      expect(header).toMatchObject({ height: h, hash, prevHash: await node.rpc<string>('getblockhash', [h - 1]) });
      expect(header.merkleRoot).toMatch(/^[0-9a-f]{64}$/);
      expect(header.time).toBeGreaterThan(1_296_688_601);
      if (src.capabilities.fullBlocks) {
        const block = parseBlock(await src.getRawBlock(hash));
        expect(block.header.hash).toBe(hash);
        expect(block.txs[0]?.isCoinbase).toBe(true);
      } else {
        await expectCode(src.getRawBlock(hash), 'UNSUPPORTED');
      }
      await expectCode(src.getBlockHash(tip.height + 1000), 'NOT_FOUND');
      await expectCode(src.getBlockHeader('11'.repeat(32)), 'NOT_FOUND');
    },
  },
  {
    name: 'raw transaction by txid, confirmed and unknown',
    async run({ src, node, target }) {
      const txid = await node.fund(STRANGER, 50_000n, { confirm: true });
      await target.settle?.();
      const raw = await src.getRawTransaction(txid);
      expect(parseTransaction(raw).txid).toBe(txid);
      expect(Buffer.from(raw).toString('hex')).toBe(await node.rpc<string>('getrawtransaction', [txid, 0]));
      await expectCode(src.getRawTransaction('22'.repeat(32)), 'NOT_FOUND');
      if (src.verifyTxInBlock) {
        const height = await node.rpc<number>('getblockcount');
        expect(await src.verifyTxInBlock(txid, height)).toBe(true);
        expect(await src.verifyTxInBlock(txid, height - 1)).toBe(false);
      }
    },
  },
  {
    name: 'broadcast: accepted, repeat is accepted, double spend rejected with a reason',
    async run({ src, node }) {
      const tx = await node.buildTx([{ address: STRANGER, sats: 30_000n }]);
      expect(await src.broadcast(tx.raw)).toEqual({ accepted: true, txid: tx.txid });
      expect(await node.rpc<string[]>('getrawmempool')).toContain(tx.txid);
      expect(await src.broadcast(tx.raw)).toEqual({ accepted: true, txid: tx.txid });
      const conflict = await node.buildTx([{ address: STRANGER, sats: 31_000n }], { inputs: tx.inputs });
      expect(conflict.txid).not.toBe(tx.txid);
      const res = await src.broadcast(conflict.raw);
      expect(res.accepted).toBe(false);
      if (!res.accepted) expect(res.reason).toMatch(/spent|conflict|replace|mempool|insufficient fee/i);
      expect(await node.rpc<string[]>('getrawmempool')).not.toContain(conflict.txid);
    },
  },
  {
    name: 'broadcast: non-standard (dust) output rejected with a reason',
    async run({ src, node }) {
      const dust = await node.buildTx([{ address: STRANGER, sats: 100n }]);
      const res = await src.broadcast(dust.raw);
      expect(res.accepted).toBe(false);
      if (!res.accepted) expect(res.reason).toMatch(/dust/i);
    },
  },
  {
    name: 'fee estimate: node value in sat/vB or the fallback',
    async run({ src }) {
      for (const target of [1, 6, 144]) {
        const fee = await src.estimateFee(target, 3.25);
        expect(['node', 'fallback']).toContain(fee.source);
        if (fee.source === 'fallback') {
          expect(fee.satPerVb).toBe(3.25);
        } else {
          // Units check: a node estimate is at least the 1 sat/vB relay floor and not absurd.
          expect(fee.satPerVb).toBeGreaterThanOrEqual(1);
          expect(fee.satPerVb).toBeLessThan(100_000);
        }
      }
    },
  },
  {
    name: 'mempool feed reports a new transaction',
    async run({ src, node, waitEvent }) {
      if (!src.capabilities.mempool) {
        await expectCode(src.getMempoolTxids(), 'UNSUPPORTED');
        return;
      }
      const txid = await node.fund(STRANGER, 20_000n);
      await waitEvent((e) => e.type === 'mempool-tx' && e.txid === txid, `mempool-tx ${txid}`);
      expect(await src.getMempoolTxids()).toContain(txid);
    },
  },
  {
    name: 'tip event after mining',
    async run({ node, waitEvent }) {
      const [hash] = await node.mine(1);
      const height = await node.rpc<number>('getblockcount');
      const e = await waitEvent((ev) => ev.type === 'tip' && ev.tip.hash === hash, `tip ${hash}`);
      expect(e.type === 'tip' && e.tip.height).toBe(height);
    },
  },
  {
    name: 'reorg via invalidateblock is visible',
    async run({ src, node, waitEvent, target }) {
      const [a, b] = await node.mine(2);
      await waitEvent((e) => e.type === 'tip' && e.tip.hash === b, 'tip before the reorg');
      const heightA = (await src.getBlockHeader(a as string)).height;
      await node.invalidateBlock(a as string);
      const fresh = await node.mine(3);
      const newTip = fresh[2] as string;
      try {
        const e = await waitEvent((ev) => ev.type === 'tip' && ev.tip.hash === newTip, 'tip after the reorg');
        expect(e.type === 'tip' && e.tip.height).toBe(heightA + 2);
        await target.settle?.();
        expect((await src.getTip()).hash).toBe(newTip);
        expect(await src.getBlockHash(heightA)).toBe(fresh[0]);
        expect(await src.getBlockHash(heightA)).not.toBe(a);
      } finally {
        await node.reconsiderBlock(a as string); // the old branch has less work and stays inactive
      }
      expect(await node.rpc<string>('getbestblockhash')).toBe(newTip);
    },
  },
  {
    name: 'wrong network → WRONG_NETWORK (and no password in the message)',
    async run({ open, node }) {
      const other = await open({ expectedNetwork: 'mainnet' });
      const err = await expectCode(other.ready(), 'WRONG_NETWORK');
      expect(err.message).toContain('regtest');
      expect(err.message).not.toContain(node.rpcPass);
    },
  },
  {
    name: 'unreachable backend → BACKEND_UNREACHABLE (and no password in the message)',
    async run({ open, target, node }) {
      const url = withPort(target.backendUrl(), await freePort());
      const dead = await open({ url, timeoutMs: 2_000 });
      const err = await expectCode(dead.ready(), 'BACKEND_UNREACHABLE');
      expect(err.message).not.toContain(node.rpcPass);
    },
  },
  {
    name: 'lifecycle: ready() memoized, calls after close() reject with CLOSED',
    async run({ open }) {
      const s = await open();
      const p = s.ready();
      expect(s.ready()).toBe(p);
      await p;
      await s.close();
      await s.close();
      await expectCode(Promise.resolve().then(() => s.getTip()), 'CLOSED');
      expect(() => s.subscribe(() => undefined)).toThrow(/closed/);
    },
  },
  {
    name: 'script history: served, or UNSUPPORTED as declared',
    async run({ src, node, target }) {
      const script = node.wallet.script;
      if (!src.capabilities.scriptHistory) {
        await expectCode(src.getScriptHistory(script), 'UNSUPPORTED');
        await expectCode(src.getScriptUnspent(script), 'UNSUPPORTED');
        return;
      }
      const txid = await node.fund(node.fundingAddress, 40_000n, { confirm: true });
      await target.settle?.();
      expect((await src.getScriptHistory(script)).map((h) => h.txid)).toContain(txid);
      expect((await src.getScriptUnspent(script)).some((u) => u.txid === txid && u.value === 40_000n)).toBe(true);
    },
  },
  {
    name: 'node restart → disconnected, reconnected, and no missed tip',
    async run({ node, target, waitEvent, events }) {
      await (target.restart ? target.restart() : node.restart({ downMs: 4 * POLL_MS }));
      const [hash] = await node.mine(1);
      await waitEvent((e) => e.type === 'tip' && e.tip.hash === hash, `tip ${hash} after the restart`, 30_000);
      const kinds = events.map((e) => e.type);
      const down = kinds.indexOf('disconnected');
      const up = kinds.indexOf('reconnected');
      expect(down, 'a disconnected event').toBeGreaterThanOrEqual(0);
      expect(up, 'reconnected after disconnected').toBeGreaterThan(down);
      const tipAfter = events.findIndex((e, i) => i > up && e.type === 'tip');
      expect(tipAfter, 'a tip event after reconnecting').toBeGreaterThan(up);
    },
  },
];

/** Registers every case as an `it` in the current describe block. */
export function describeConformance(target: ConformanceTarget): void {
  for (const c of CASES) {
    it(c.name, async () => {
      const node = target.node();
      const extra: ChainSource[] = [];
      const open = async (opts: Partial<BackendOptions> & { url?: string } = {}): Promise<ChainSource> => {
        const { url, ...rest } = opts;
        const s = await target.open(url ?? target.backendUrl(), { expectedNetwork: 'regtest', pollIntervalMs: POLL_MS, ...rest });
        extra.push(s);
        return s;
      };
      const src = await open();
      const events: ChainEvent[] = [];
      src.subscribe((e) => events.push(e));
      await src.ready();
      const waitEvent = (pred: (e: ChainEvent) => boolean, what: string, timeoutMs = 15_000): Promise<ChainEvent> =>
        waitUntil(() => events.find(pred), () => `${what}; saw ${JSON.stringify(events.map((e) => e.type))}`, { timeoutMs, intervalMs: 20 });
      try {
        await c.run({ node, target, src, events, open, waitEvent });
      } finally {
        await Promise.all(extra.map((s) => s.close()));
      }
    });
  }
}
