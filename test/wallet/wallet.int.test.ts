/**
 * The wallet against each regtest node (btcd --rejectnonstd, Core's default policy): funding, exact fees, refusals that
 * broadcast nothing, RBF replacement in the node's mempool, OP_RETURN funding, PSBT, reorgs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openBackend } from '../../src/chain/open.js';
import type { ChainSource } from '../../src/chain/types.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { Wallet, dataOutput } from '../../src/wallet/wallet.js';
import { WalletKeys, newMnemonic, RECEIVE } from '../../src/wallet/keys.js';
import { parseTransaction } from '../../src/chain/block.js';
import { expectCode } from '../support/errors.js';
import { policyFor } from '../../src/chain/policy.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';

describe.each(chainNodes())('wallet on %s', (kind) => {
  useNodeKind(kind);

  let node: RegtestNode;
  let source: ChainSource;
  let wallet: Wallet;
  let dir: string;
  const other = WalletKeys.fromMnemonic(newMnemonic(), 'regtest');
  const dest = (i: number): string => other.taprootKey(RECEIVE, i).address;

  const mempool = (): Promise<string[]> => node.rpc<string[]>('getrawmempool');

  async function mineAndSync(n = 1): Promise<void> {
    await node.mine(n);
    await wallet.sync();
  }

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
    source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest', pollIntervalMs: 100 });
    await source.ready();
    dir = mkdtempSync(join(tmpdir(), 'wallet-int-'));
    wallet = new Wallet({ keys: WalletKeys.fromMnemonic(newMnemonic(), 'regtest'), source, db: join(dir, 'wallet.db'), maxFeeRate: 500 });
    await wallet.ready();
    await wallet.sync();
  });

  afterAll(async () => {
    await wallet?.close();
    await source?.close();
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('wallet', () => {
    it('sees a funding payment confirmed', async () => {
      const addr = await wallet.newReceiveAddress();
      await node.fund(addr, 1_000_000n);
      await wallet.sync();
      expect(await wallet.balance()).toEqual({ confirmed: 0n, unconfirmed: 1_000_000n, immature: 0n });
      await mineAndSync();
      expect(await wallet.balance()).toEqual({ confirmed: 1_000_000n, unconfirmed: 0n, immature: 0n });
    });

    it('sends 50,000 sat: the balance drops by exactly amount + fee', async () => {
      const before = (await wallet.balance()).confirmed;
      const r = await wallet.send(dest(0), 50_000n, { feeRate: 2 });
      expect(await mempool()).toContain(r.txid);
      const verbose = await node.rpc<{ vsize: number; size: number }>('getrawtransaction', [r.txid, 1]);
      expect(verbose.vsize).toBe(r.vsize);
      expect(r.fee).toBe(BigInt(Math.ceil(2 * r.vsize)));
      await mineAndSync();
      expect(await mempool()).not.toContain(r.txid);
      const after = await wallet.balance();
      expect(after.confirmed).toBe(before - 50_000n - r.fee);
      expect(after.unconfirmed).toBe(0n);
      const h = (await wallet.history()).find((e) => e.txid === r.txid);
      expect(h).toMatchObject({ status: 'confirmed', net: -(50_000n + r.fee), fee: r.fee });
    });

    it('refuses a fee rate above the cap and broadcasts nothing', async () => {
      const pool = await mempool();
      const balance = await wallet.balance();
      await expectCode(wallet.send(dest(1), 10_000n, { feeRate: 501 }), 'FEE_TOO_HIGH');
      expect(await mempool()).toEqual(pool);
      expect(await wallet.balance()).toEqual(balance);
    });

    it('refuses an amount above the balance, dust and malformed or foreign addresses', async () => {
      const pool = await mempool();
      const { confirmed } = await wallet.balance();
      await expectCode(wallet.send(dest(1), confirmed + 1n, { feeRate: 1 }), 'INSUFFICIENT_FUNDS');
      await expectCode(wallet.send(dest(1), 100n, { feeRate: 1 }), 'BAD_INPUT');
      await expectCode(wallet.send('bcrt1qnotreallyanaddress', 10_000n, { feeRate: 1 }), 'BAD_ADDRESS');
      await expectCode(wallet.send(WalletKeys.fromMnemonic(newMnemonic(), 'mainnet').taprootKey(RECEIVE, 0).address, 10_000n, { feeRate: 1 }), 'BAD_ADDRESS');
      expect(await mempool()).toEqual(pool);
    });

    it('bumps a pending send: the replacement takes its place in the node\'s mempool', async () => {
      const before = (await wallet.balance()).confirmed;
      const first = await wallet.send(dest(2), 20_000n, { feeRate: 2 });
      expect(await mempool()).toContain(first.txid);
      const bumped = await wallet.bump(first.txid, { feeRate: 12 });
      const pool = await mempool();
      expect(pool).toContain(bumped.txid);
      expect(pool).not.toContain(first.txid);
      expect(bumped.fee).toBe(BigInt(12 * bumped.vsize));
      expect((await wallet.transaction(first.txid))?.status).toBe('replaced');
      await mineAndSync();
      expect((await wallet.balance()).confirmed).toBe(before - 20_000n - bumped.fee);
      await expectCode(wallet.bump(bumped.txid, { feeRate: 20 }), 'CONFLICT');
    });

    it('funds an 80-byte OP_RETURN transaction that every node relays and mines', async () => {
      const data = new Uint8Array(randomBytes(80));
      const funded = await wallet.fundTransaction({ outputs: [dataOutput(data)], feeRate: 1 });
      const sent = await wallet.broadcast(funded);
      expect(await mempool()).toContain(sent.txid);
      await mineAndSync();
      const tx = parseTransaction(await source.getRawTransaction(sent.txid));
      expect(tx.outputs.some((o) => o.value === 0n && Buffer.from(o.script.subarray(3)).equals(Buffer.from(data)))).toBe(true);
      expect((await wallet.transaction(sent.txid))?.status).toBe('confirmed');
    });

    it('reports a node rejection with its reason and keeps its coins', async () => {
      const pool = await mempool();
      const balance = await wallet.balance();
      // What this node's policy refuses: one OP_RETURN output more than it relays (btcd: a second
      // one), or with no count limit (Core), OP_RETURN data one byte above its limit.
      const policy = policyFor(kind);
      const outputs = Number.isFinite(policy.maxOpReturnOutputs)
        ? Array.from({ length: policy.maxOpReturnOutputs + 1 }, (_, i) => dataOutput(Uint8Array.of(i + 1)))
        : [dataOutput(new Uint8Array(policy.maxOpReturnScriptTotal + 1), { maxBytes: policy.maxOpReturnScriptTotal + 1 })];
      const funded = await wallet.fundTransaction({ outputs, feeRate: 1, allowNonStandardData: true });
      const err = await expectCode(wallet.broadcast(funded), 'REJECTED');
      const reason = String(err.details?.reason);
      expect(reason.length).toBeGreaterThan(0);
      expect(err.message).toContain(reason);
      expect(await mempool()).toEqual(pool);
      await wallet.sync();
      expect(await wallet.balance()).toEqual(balance);
      // The coins were released: a standard transaction can use them again.
      const ok = await wallet.send(dest(5), 10_000n, { feeRate: 1 });
      expect(await mempool()).toContain(ok.txid);
      await mineAndSync();
    });

    it('creates, signs and finalizes a PSBT that the node accepts', async () => {
      const created = await wallet.psbtCreate([{ script: other.taprootKey(RECEIVE, 4).script, amount: 30_000n }], 3);
      const signed = await wallet.psbtSign(created.psbt);
      expect(signed.signed).toBeGreaterThan(0);
      const done = await wallet.psbtFinalize(signed.psbt);
      expect(done.txid).toBe(created.txid);
      expect(await mempool()).toContain(done.txid);
      await mineAndSync();
      expect((await wallet.transaction(done.txid))?.status).toBe('confirmed');
    });

    it('follows a reorg (invalidateblock / reconsiderblock)', async () => {
      const addr = await wallet.newReceiveAddress();
      await node.fund(addr, 77_000n);
      const [hash] = await node.mine(1);
      await wallet.sync();
      const confirmed = (await wallet.balance()).confirmed;
      await node.invalidateBlock(hash!);
      const r = await wallet.sync();
      expect(r.disconnected).toBe(1);
      expect((await wallet.balance()).confirmed).toBe(confirmed - 77_000n);
      await node.reconsiderBlock(hash!);
      await wallet.sync();
      expect((await wallet.balance()).confirmed).toBe(confirmed);
    });
  });
});
