/** The regtest harness against each node (btcd, and Bitcoin Core when available): lifecycle, mining, funding, reorgs, detached mode. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTransaction } from '../../src/chain/block.js';
import {
  REPO_ROOT, attachRegtestNode, spendableCoins, startRegtestNode, stopRegtestNode, type RegtestNode,
} from '../../src/regtest/harness.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';
import { expectCode } from '../support/errors.js';

describe.each(chainNodes())('regtest harness on %s', (kind) => {
  useNodeKind(kind);

  const STRANGER = 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080';

  function alive(pid: number): boolean {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    try {
      return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  }

  describe('node handle', () => {
    let node: RegtestNode;

    beforeAll(async () => {
      node = await startRegtestNode({ kind });
    });

    afterAll(async () => {
      await node?.stop();
    });

    it('starts with mature coinbases and answers RPC', async () => {
      expect(node.kind).toBe(kind);
      expect(await node.rpc<number>('getblockcount')).toBe(101);
      expect(node.backendUrl).toMatch(kind === 'btcd' ? /^btcd:\/\/deaddrop:[0-9a-f]{32}@127\.0\.0\.1:\d+$/ : /^bitcoind:\/\/deaddrop:[0-9a-f]{32}@127\.0\.0\.1:\d+\?rest=1$/);
      // Heights 1 and 2 are mature at tip 101 (spendable in block 102).
      expect(await node.balance()).toBe(2n * 50n * 100_000_000n);
    });

    it('mine(n) returns the new block hashes, paying the funding address', async () => {
      const before = await node.rpc<number>('getblockcount');
      const hashes = await node.mine(2);
      expect(hashes).toHaveLength(2);
      expect(await node.rpc<string>('getbestblockhash')).toBe(hashes[1]);
      expect(await node.rpc<number>('getblockcount')).toBe(before + 2);
      const block = await node.rpc<{ tx: string[] }>('getblock', [hashes[1], 1]);
      const coinbase = await node.rpc<{ vout: { scriptPubKey: { address?: string; addresses?: string[] } }[] }>('getrawtransaction', [block.tx[0], 1]);
      const paid = coinbase.vout.flatMap((o) => o.scriptPubKey.addresses ?? (o.scriptPubKey.address ? [o.scriptPubKey.address] : []));
      expect(paid).toContain(node.fundingAddress);
    });

    it('fund() pays the address, leaves the tx unconfirmed, and can confirm', async () => {
      const h0 = await node.rpc<number>('getblockcount');
      const txid = await node.fund(STRANGER, 123_456n);
      expect(await node.rpc<number>('getblockcount')).toBe(h0);
      expect(await node.rpc<string[]>('getrawmempool')).toContain(txid);
      const tx = parseTransaction(Buffer.from(await node.rpc<string>('getrawtransaction', [txid, 0]), 'hex'));
      expect(tx.outputs.some((o) => o.value === 123_456n)).toBe(true);

      const confirmed = await node.fund(STRANGER, 7_000, { confirm: true });
      expect(await node.rpc<number>('getblockcount')).toBe(h0 + 1);
      const mempool = await node.rpc<string[]>('getrawmempool');
      expect(mempool).not.toContain(confirmed);
      expect(mempool).not.toContain(txid);
    });

    it('chains many sends without confirming (spends its own change) and keeps the balance right', async () => {
      const before = await node.balance();
      const txids: string[] = [];
      for (let i = 0; i < 5; i++) txids.push(await node.fund(STRANGER, 10_000n));
      expect(new Set(txids).size).toBe(5);
      const mempool = await node.rpc<string[]>('getrawmempool');
      for (const t of txids) expect(mempool).toContain(t);
      const after = await node.balance();
      expect(before - after).toBeGreaterThan(50_000n);
      expect(before - after).toBeLessThan(60_000n); // 5 x 10k plus small fees
    });

    it('refuses to overspend with INSUFFICIENT_FUNDS and bad addresses with BAD_ADDRESS', async () => {
      const err = await node.fund(STRANGER, 21_000_000n * 100_000_000n).catch((e: unknown) => e);
      expect(isDeaddropError(err, 'INSUFFICIENT_FUNDS')).toBe(true);
      const bad = await node.fund('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', 1_000n).catch((e: unknown) => e);
      expect(isDeaddropError(bad, 'BAD_ADDRESS')).toBe(true);
    });

    it('invalidateBlock / reconsiderBlock reorg the chain and the wallet follows', async () => {
      const txid = await node.fund(STRANGER, 55_555n, { confirm: true });
      const tip = await node.rpc<string>('getbestblockhash');
      const height = await node.rpc<number>('getblockcount');
      await node.invalidateBlock(tip);
      expect(await node.rpc<number>('getblockcount')).toBe(height - 1);
      expect(await node.rpc<string[]>('getrawmempool')).toContain(txid); // back in the mempool
      // The wallet must not double-spend the inputs of the un-confirmed tx.
      const next = await node.fund(STRANGER, 1_000n);
      expect(await node.rpc<string[]>('getrawmempool')).toEqual(expect.arrayContaining([txid, next]));
      await node.reconsiderBlock(tip);
      expect(await node.rpc<string>('getbestblockhash')).toBe(tip);
    });

    it('mines again right after invalidateblock: a new block on the old parent, never the invalidated one', async () => {
      // Core builds a block from tip, mempool, clock second and address alone: within the same
      // second it rebuilds the invalidated block, which it refuses ("block not accepted").
      for (let i = 0; i < 3; i++) {
        const [gone] = await node.mine(1);
        const parent = (await node.rpc<{ previousblockhash: string }>('getblockheader', [gone, true])).previousblockhash;
        await node.invalidateBlock(gone as string);
        const [next, after] = await node.mine(2);
        expect(next).not.toBe(gone);
        expect((await node.rpc<{ previousblockhash: string }>('getblockheader', [next, true])).previousblockhash).toBe(parent);
        expect(await node.rpc<string>('getbestblockhash')).toBe(after);
      }
    });

    it('mineEmpty(n) advances the chain with coinbase-only blocks and leaves the mempool alone', async () => {
      const pending = await node.fund(STRANGER, 42_000n);
      const h0 = await node.rpc<number>('getblockcount');
      const balance = await node.balance();
      const hashes = await node.mineEmpty(3);
      expect(hashes).toHaveLength(3);
      expect(new Set(hashes).size).toBe(3);
      expect(await node.rpc<number>('getblockcount')).toBe(h0 + 3);
      expect(await node.rpc<string>('getbestblockhash')).toBe(hashes[2]);
      for (const [i, hash] of hashes.entries()) {
        const block = await node.rpc<{ height: number; tx: string[]; previousblockhash: string }>('getblock', [hash, 1]);
        expect(block.height).toBe(h0 + 1 + i);
        expect(block.tx).toHaveLength(1);
        if (i > 0) expect(block.previousblockhash).toBe(hashes[i - 1]);
      }
      expect(await node.rpc<string[]>('getrawmempool')).toContain(pending);
      expect((await node.rpc<{ confirmations?: number }>('getrawtransaction', [pending, 1])).confirmations ?? 0).toBe(0);
      // Empty blocks pay the wallet nothing (older coinbases of its own mature meanwhile), and it still spends.
      const coinbases = await Promise.all(hashes.map(async (h) => (await node.rpc<{ tx: string[] }>('getblock', [h, 1])).tx[0]));
      const coins = await spendableCoins(node);
      expect(coins.filter((c) => coinbases.includes(c.txid))).toEqual([]);
      expect(await node.balance()).toBeGreaterThanOrEqual(balance);
      const next = await node.fund(STRANGER, 1_234n);
      expect(await node.rpc<string[]>('getrawmempool')).toEqual(expect.arrayContaining([pending, next]));

      const [confirming] = await node.mine(1);
      const block = await node.rpc<{ height: number; tx: string[] }>('getblock', [confirming, 1]);
      expect(block.height).toBe(h0 + 4);
      expect(block.tx).toEqual(expect.arrayContaining([pending, next]));
      expect(await node.rpc<string[]>('getrawmempool')).not.toContain(pending);
      await node.fund(STRANGER, 5_000n, { confirm: true });
    });

    it('restart() keeps the chain and the mempool (btcd wipes regtest data on start; the harness replays it)', async () => {
      const tip = await node.rpc<string>('getbestblockhash');
      const pending = await node.fund(STRANGER, 9_999n);
      const oldPid = node.pid;
      await node.restart();
      expect(node.pid).not.toBe(oldPid);
      expect(alive(oldPid)).toBe(false);
      expect(await node.rpc<string>('getbestblockhash')).toBe(tip);
      expect(await node.rpc<string[]>('getrawmempool')).toContain(pending);
      await node.fund(STRANGER, 1_111n, { confirm: true });
    });
  });

  describe('regtest harness teardown', () => {
    it('stop() kills the node and removes its temp dir', async () => {
      const n = await startRegtestNode({ kind, initialBlocks: 1 });
      const dir = join(n.nodeDir, '..');
      expect(existsSync(dir)).toBe(true);
      await n.stop();
      expect(alive(n.pid)).toBe(false);
      expect(existsSync(dir)).toBe(false);
      await n.stop(); // idempotent
    });

    it('a process that dies on SIGTERM takes its node with it', async () => {
      const script = [
        "import { startRegtestNode } from './src/regtest/harness.ts';",
        `const n = await startRegtestNode({ kind: '${kind}', initialBlocks: 1 });`,
        'console.log(JSON.stringify({ pid: n.pid, dir: n.nodeDir }));',
        'setInterval(() => {}, 1000);',
      ].join('\n');
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0] as string);
        });
        child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
      expect(alive(pid)).toBe(true);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await waitUntil(() => !alive(pid), `pid ${pid} to exit`, { timeoutMs: 10_000, intervalMs: 50 });
      // The child's exit hook kills the node first and removes its dir after: wait for the child.
      await exited;
      expect(existsSync(dir)).toBe(false);
    });
  });

  describe('detached regtest node (deaddrop regtest up/attach/down)', () => {
    let datadir: string;

    beforeAll(() => {
      datadir = mkdtempSync(join(tmpdir(), 'deaddrop-detached-'));
    });

    afterAll(async () => {
      await stopRegtestNode(datadir);
      rmSync(datadir, { recursive: true, force: true });
    });

    it('up writes node.json (0600), attach funds, down stops it; a second up keeps coins and chain', async () => {
      const up = await startRegtestNode({ kind, datadir, detached: true });
      up.detach();
      const state = join(datadir, 'regtest', 'node.json');
      expect(statSync(state).mode & 0o777).toBe(0o600);
      const saved = JSON.parse(readFileSync(state, 'utf8')) as { pid: number; kind: string; rpcPort: number; fundingKey: string };
      expect(saved).toMatchObject({ pid: up.pid, kind, rpcPort: up.rpcPort });
      expect(saved.fundingKey).toMatch(/^[0-9a-f]{64}$/);

      await expectCode(startRegtestNode({ kind, datadir, detached: true }), 'CONFLICT');

      const a = await attachRegtestNode(datadir);
      expect(a.pid).toBe(up.pid);
      expect(a.fundingAddress).toBe(up.fundingAddress);
      const txid = await a.fund(STRANGER, 77_000n, { confirm: true });
      const tip = await a.rpc<string>('getbestblockhash');
      const balance = await a.balance();
      a.detach();

      expect(await stopRegtestNode(datadir)).toBe(true);
      await waitUntil(() => !alive(up.pid), `pid ${up.pid} to exit`, { timeoutMs: 10_000, intervalMs: 50 });
      expect(existsSync(state)).toBe(false);
      await expectCode(attachRegtestNode(datadir), 'NOT_FOUND');
      expect(await stopRegtestNode(datadir)).toBe(false);

      const again = await startRegtestNode({ kind, datadir, detached: true });
      try {
        expect(again.fundingAddress).toBe(up.fundingAddress);
        expect(await again.rpc<string>('getbestblockhash')).toBe(tip);
        expect((await again.rpc<{ confirmations: number }>('getrawtransaction', [txid, 1])).confirmations).toBeGreaterThan(0);
        expect(await again.balance()).toBe(balance);
      } finally {
        again.detach();
        await stopRegtestNode(datadir);
      }
    });
  });
});
