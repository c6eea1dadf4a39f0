/**
 * Unconfirmed-chain limits: the pure graph checks, and the wallet over an in-memory chain
 * sending many times in a row from one coin under Core's policy (the real Core and btcd runs
 * are in chained-sends.int.test.ts).
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from '../../src/wallet/wallet.js';
import { WalletKeys, RECEIVE } from '../../src/wallet/keys.js';
import { parseTransaction } from '../../src/chain/block.js';
import { BTCD_POLICY, CORE_POLICY, PendingGraph, chainPolicyFor, type ChainPolicy } from '../../src/wallet/chain-policy.js';
import { sendDrop } from '../../src/deaddrop/send.js';
import { walletSilentAddress } from '../../src/deaddrop/publish.js';
import { FakeChain } from '../support/fake-chain.js';
import { fakePayment } from '../support/tx.js';
import { expectCode } from '../support/errors.js';

const keys = WalletKeys.fromMnemonic('legal winner thank year wave sausage worth useful legal winner thank yellow', 'regtest');
const OTHER = WalletKeys.fromMnemonic('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'regtest');
const dest = OTHER.taprootKey(RECEIVE, 0).address;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function walletWith(coins: bigint[], chainPolicy?: ChainPolicy): Promise<{ wallet: Wallet; chain: FakeChain }> {
  const dir = mkdtempSync(join(tmpdir(), 'chainpolicy-'));
  const chain = new FakeChain();
  const wallet = new Wallet({ keys, source: chain, db: join(dir, 'wallet.db'), ...(chainPolicy ? { chainPolicy } : {}) });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => wallet.close());
  coins.forEach((value, i) => {
    const raw = fakePayment([{ script: keys.taprootKey(RECEIVE, i).script, value }]);
    chain.mempool.set(parseTransaction(raw).txid, raw);
  });
  chain.mine(1);
  await wallet.sync();
  return { wallet, chain };
}

const chainOf = (n: number, vsize = 200): { txid: string; vsize: number; parents: string[] }[] =>
  Array.from({ length: n }, (_, i) => ({ txid: `t${i}`, vsize, parents: i === 0 ? [] : [`t${i - 1}`] }));

describe('PendingGraph', () => {
  it('counts ancestors, descendants and clusters against a policy', () => {
    const g = new PendingGraph(chainOf(25));
    expect(g.ancestors('t24').size).toBe(25);
    expect(g.descendants('t0').size).toBe(25);
    expect(new PendingGraph(chainOf(24)).violation(CORE_POLICY, ['t23'], 200)).toBeNull(); // the 25th in the chain
    expect(g.violation(CORE_POLICY, ['t23'], 200)).toContain('24 descendants'); // a second child of t23: t0 would have 26
    expect(g.violation(CORE_POLICY, ['t24'], 200)).toContain('25 unconfirmed ancestors');
    expect(g.violation(BTCD_POLICY, ['t24'], 200)).toBeNull();
    expect(g.violation(CORE_POLICY, ['not-pending'], 200)).toBeNull();
    // Fan-out: one parent with 24 children has 25 descendants; a 25th child is one too many.
    const fan = new PendingGraph([{ txid: 'p', vsize: 200, parents: [] }, ...Array.from({ length: 24 }, (_, i) => ({ txid: `c${i}`, vsize: 200, parents: ['p'] }))]);
    expect(fan.violation(CORE_POLICY, ['c0'], 200)).toContain('descendants');
    // Clusters (Core 31): 64 connected transactions at most, even where 25/25 would allow it.
    const clusterOnly: ChainPolicy = { ...BTCD_POLICY, name: 'cluster', maxClusterCount: 64, maxClusterVsize: 101_000 };
    expect(new PendingGraph(chainOf(63)).violation(clusterOnly, ['t62'], 200)).toBeNull();
    expect(new PendingGraph(chainOf(64)).violation(clusterOnly, ['t63'], 200)).toContain('cluster of 64');
    expect(new PendingGraph(chainOf(10, 10_000)).violation(clusterOnly, ['t9'], 2_000)).toContain('101000 vB');
  });

  it('follows each backend\'s own policy on regtest and Core\'s elsewhere', () => {
    expect(chainPolicyFor('btcd', 'regtest')).toBe(BTCD_POLICY);
    expect(chainPolicyFor('bitcoind', 'regtest')).toBe(CORE_POLICY);
    expect(chainPolicyFor('electrum', 'regtest')).toBe(CORE_POLICY);
    expect(chainPolicyFor('btcd', 'mainnet')).toBe(CORE_POLICY);
  });
});

describe('chained sends under Core\'s policy', () => {
  it('sends 25 in a row from one coin, refuses the 26th clearly, and goes on after a block', async () => {
    const { wallet, chain } = await walletWith([1_000_000n], CORE_POLICY);
    for (let i = 0; i < 25; i++) await wallet.send(dest, 1_000n, { feeRate: 1 });
    expect(chain.mempool.size).toBe(25);
    const err = await expectCode(wallet.send(dest, 1_000n, { feeRate: 1 }), 'INSUFFICIENT_FUNDS');
    expect(err.code).toBe('INSUFFICIENT_FUNDS');
    expect(err.details?.reason).toBe('unconfirmed-chain-limit');
    expect(err.message).toContain('Bitcoin Core would refuse to chain further (25 unconfirmed ancestors (the limit is 24))');
    expect(err.message).toContain('after the next block');
    // Drops take the same path.
    const drop = await expectCode(sendDrop(wallet, {
      recipient: walletSilentAddress(OTHER), feeRate: 1, payload: { nodeKey: new Uint8Array(32).fill(1), token: new Uint8Array(8), endpoints: ['ws://127.0.0.1:9000'] },
    }), 'INSUFFICIENT_FUNDS');
    expect(drop.details?.reason).toBe('unconfirmed-chain-limit');
    expect(chain.mempool.size).toBe(25);
    chain.mine(1);
    await wallet.sync();
    await wallet.send(dest, 1_000n, { feeRate: 1 });
  });

  it('prefers a confirmed coin over unconfirmed change', async () => {
    const { wallet } = await walletWith([500_000n, 20_000n], CORE_POLICY);
    const first = await wallet.send(dest, 1_000n, { feeRate: 1 }); // change of 500k is now unconfirmed
    const second = await wallet.send(dest, 1_000n, { feeRate: 1 });
    expect(parseTransaction(second.raw).inputs.map((i) => i.prevTxidHex)).not.toContain(first.txid);
  });
});
