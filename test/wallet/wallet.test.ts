/**
 * Wallet state machine over an in-memory chain (real block and tx bytes, no script validation):
 * indexing, gap limit, mempool, reorgs, maturity, spending rules, RBF and restarts. The same
 * flows run against real btcd in wallet.int.test.ts.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet, DEFAULT_GAP_LIMIT, dataOutput } from '../../src/wallet/wallet.js';
import { WalletKeys, RECEIVE, CHANGE } from '../../src/wallet/keys.js';
import { parseTransaction } from '../../src/chain/block.js';
import { expectCode } from '../support/errors.js';
import { FakeChain } from '../support/fake-chain.js';
import { fakePayment } from '../support/tx.js';

const MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
const keys = WalletKeys.fromMnemonic(MNEMONIC, 'regtest');
const OTHER = WalletKeys.fromMnemonic('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'regtest');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(opts: { birthdayHeight?: number; maxFeeRate?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wallet-'));
  const chain = new FakeChain();
  const dbPath = join(dir, 'wallet.db');
  const open = () => {
    const w = new Wallet({ keys, source: chain, db: dbPath, ...opts });
    cleanups.push(() => w.close());
    return w;
  };
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { chain, open, wallet: open() };
}

const pay = (chain: FakeChain, script: Uint8Array, value: bigint): string => {
  const raw = fakePayment([{ script, value }]);
  chain.mempool.set(parseTransaction(raw).txid, raw);
  return parseTransaction(raw).txid;
};

describe('Wallet (in-memory chain)', () => {
  it('derives the gap window and never reuses a receive address', async () => {
    const { wallet, open } = setup();
    await wallet.ready();
    const addrs = await wallet.addresses();
    expect(addrs.filter((a) => a.chain === RECEIVE)).toHaveLength(DEFAULT_GAP_LIMIT);
    expect(addrs.filter((a) => a.chain === CHANGE)).toHaveLength(DEFAULT_GAP_LIMIT);
    const a = await wallet.newReceiveAddress();
    const b = await wallet.newReceiveAddress();
    expect(a).toBe(keys.taprootKey(RECEIVE, 0).address);
    expect(b).toBe(keys.taprootKey(RECEIVE, 1).address);
    await wallet.close();
    const again = open();
    const c = await again.newReceiveAddress();
    expect(c).toBe(keys.taprootKey(RECEIVE, 2).address);
    expect((await again.addresses()).filter((x) => x.chain === RECEIVE)).toHaveLength(DEFAULT_GAP_LIMIT + 3);
  });

  it('sees mempool payments as unconfirmed and mined ones as confirmed', async () => {
    const { wallet, chain } = setup();
    const addr = await wallet.newReceiveAddress();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 100_000n);
    await wallet.sync();
    expect(await wallet.balance()).toEqual({ confirmed: 0n, unconfirmed: 100_000n, immature: 0n });
    chain.mine(1);
    const r = await wallet.sync();
    expect(r.connected).toBeGreaterThan(0);
    expect(await wallet.balance()).toEqual({ confirmed: 100_000n, unconfirmed: 0n, immature: 0n });
    const h = await wallet.history();
    expect(h).toHaveLength(1);
    expect(h[0]).toMatchObject({ status: 'confirmed', height: 1, net: 100_000n });
    expect(addr).toMatch(/^bcrt1p/);
  });

  it('extends the gap window as addresses get used, within one block', async () => {
    const { wallet, chain } = setup();
    await wallet.ready();
    const p1 = fakePayment([{ script: keys.taprootKey(RECEIVE, 19).script, value: 10_000n }]);
    const p2 = fakePayment([{ script: keys.taprootKey(RECEIVE, 35).script, value: 20_000n }]);
    const beyond = fakePayment([{ script: keys.taprootKey(RECEIVE, 60).script, value: 40_000n }]);
    chain.mine(1, { txs: [p1, p2, beyond] });
    await wallet.sync();
    expect((await wallet.balance()).confirmed).toBe(30_000n);
    expect((await wallet.addresses()).filter((a) => a.chain === RECEIVE)).toHaveLength(35 + 1 + DEFAULT_GAP_LIMIT);
  });

  it('starts at the birthday and ignores older blocks', async () => {
    const { chain, open } = setup({ birthdayHeight: 3 });
    chain.mine(1, { txs: [fakePayment([{ script: keys.taprootKey(RECEIVE, 0).script, value: 10_000n }])] }); // height 1
    chain.mine(2);
    chain.mine(1, { txs: [fakePayment([{ script: keys.taprootKey(RECEIVE, 1).script, value: 20_000n }])] }); // height 4
    const wallet = open();
    await wallet.sync();
    expect((await wallet.balance()).confirmed).toBe(20_000n);
  });

  it('undoes reorged payments and drops those that leave the mempool', async () => {
    const { wallet, chain } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 50_000n);
    chain.mine(2);
    await wallet.sync();
    expect((await wallet.balance()).confirmed).toBe(50_000n);
    chain.reorg(2, 3, { dropMempool: true });
    const r = await wallet.sync();
    expect(r.disconnected).toBe(2);
    expect(await wallet.balance()).toEqual({ confirmed: 0n, unconfirmed: 0n, immature: 0n });
    expect((await wallet.history())[0]!.status).toBe('dropped');
  });

  it('keeps a reorged payment that is mined again on the new branch', async () => {
    const { wallet, chain } = setup();
    const txid = pay(chain, keys.taprootKey(RECEIVE, 0).script, 50_000n);
    chain.mine(1);
    await wallet.sync();
    chain.reorg(1, 2); // the tx returns to the mempool and is mined in the first new block
    await wallet.sync();
    expect((await wallet.balance()).confirmed).toBe(50_000n);
    expect((await wallet.transaction(txid))?.height).toBe(1);
  });

  it('counts coinbase outputs as immature for 100 blocks', async () => {
    const { wallet, chain } = setup();
    chain.mine(1, { payTo: keys.taprootKey(RECEIVE, 0).script, reward: 5_000_000_000n });
    await wallet.sync();
    expect(await wallet.balance()).toEqual({ confirmed: 0n, unconfirmed: 0n, immature: 5_000_000_000n });
    await expectCode(wallet.send(OTHER.taprootKey(RECEIVE, 0).address, 10_000n, { feeRate: 1 }), 'INSUFFICIENT_FUNDS');
    chain.mine(99);
    await wallet.sync();
    expect((await wallet.balance()).confirmed).toBe(5_000_000_000n);
  });

  it('sends with an exact fee, tracks change, and confirms', async () => {
    const { wallet, chain } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 200_000n);
    chain.mine(1);
    await wallet.sync();
    const dest = OTHER.taprootKey(RECEIVE, 0).address;
    const sent = await wallet.send(dest, 50_000n, { feeRate: 2 });
    expect(sent.fee).toBe(BigInt(sent.vsize * 2));
    expect(chain.mempool.has(sent.txid)).toBe(true);
    expect(await wallet.balance()).toEqual({ confirmed: 0n, unconfirmed: 200_000n - 50_000n - sent.fee, immature: 0n });
    chain.mine(1);
    await wallet.sync();
    expect(await wallet.balance()).toEqual({ confirmed: 200_000n - 50_000n - sent.fee, unconfirmed: 0n, immature: 0n });
    const h = await wallet.history();
    expect(h[0]).toMatchObject({ txid: sent.txid, status: 'confirmed', fee: sent.fee, net: -(50_000n + sent.fee) });
  });

  it('refuses bad sends without broadcasting anything', async () => {
    const { wallet, chain } = setup({ maxFeeRate: 500 });
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 100_000n);
    chain.mine(1);
    await wallet.sync();
    const dest = OTHER.taprootKey(RECEIVE, 0).address;
    await expectCode(wallet.send(dest, 10_000n, { feeRate: 501 }), 'FEE_TOO_HIGH');
    await expectCode(wallet.send(dest, 10_000n, { feeRate: 0.5 }), 'BAD_INPUT');
    await expectCode(wallet.send(dest, 100_001n, { feeRate: 1 }), 'INSUFFICIENT_FUNDS');
    await expectCode(wallet.send(dest, 329n, { feeRate: 1 }), 'BAD_INPUT');
    await expectCode(wallet.send('bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr', 10_000n, { feeRate: 1 }), 'BAD_ADDRESS');
    await expectCode(wallet.send('bcrt1pnotanaddress', 10_000n, { feeRate: 1 }), 'BAD_ADDRESS');
    expect(chain.mempool.size).toBe(0);
    expect((await wallet.balance()).confirmed).toBe(100_000n);
  });

  it('surfaces node rejections with the reason and releases the coins', async () => {
    const { wallet, chain } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 100_000n);
    chain.mine(1);
    await wallet.sync();
    chain.rejectReason = 'min relay fee not met';
    await expectCode(wallet.send(OTHER.taprootKey(RECEIVE, 0).address, 10_000n, { feeRate: 1 }), 'REJECTED', 'min relay fee not met');
    chain.rejectReason = null;
    expect((await wallet.balance()).confirmed).toBe(100_000n);
    await wallet.send(OTHER.taprootKey(RECEIVE, 0).address, 10_000n, { feeRate: 1 });
  });

  it('funds a transaction with an OP_RETURN and reserves its coins until broadcast', async () => {
    const { wallet, chain } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 100_000n);
    chain.mine(1);
    await wallet.sync();
    const funded = await wallet.fundTransaction({ outputs: [dataOutput(new Uint8Array(80).fill(1))], feeRate: 1 });
    expect(funded.vsize).toBe(203);
    expect(funded.fee).toBe(203n);
    // The only coin is reserved: a second funding fails until broadcast or release.
    await expectCode(wallet.fundTransaction({ outputs: [dataOutput(new Uint8Array(1))], feeRate: 1 }), 'INSUFFICIENT_FUNDS');
    const sent = await wallet.broadcast(funded);
    expect(chain.mempool.has(sent.txid)).toBe(true);
    // Its change (own, unconfirmed) may be spent right away.
    const next = await wallet.fundTransaction({ outputs: [dataOutput(new Uint8Array(1))], feeRate: 1 });
    wallet.release(next.txid);
    expect(parseTransaction(next.raw).inputs[0]!.prevTxidHex).toBe(sent.txid);
  });

  it('bumps a pending send (RBF) and refuses confirmed or foreign txs', async () => {
    const { wallet, chain } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 100_000n);
    chain.mine(1);
    await wallet.sync();
    const dest = OTHER.taprootKey(RECEIVE, 0).address;
    const first = await wallet.send(dest, 30_000n, { feeRate: 2 });
    await expectCode(wallet.bump(first.txid, { feeRate: 2 }), 'BAD_INPUT');
    await expectCode(wallet.bump(first.txid, { feeRate: 5000 }), 'FEE_TOO_HIGH');
    const bumped = await wallet.bump(first.txid, { feeRate: 10 });
    expect(bumped.fee).toBe(BigInt(bumped.vsize * 10));
    expect(chain.mempool.has(first.txid)).toBe(false);
    expect(chain.mempool.has(bumped.txid)).toBe(true);
    const replacedOutputs = parseTransaction(bumped.raw).outputs.map((o) => o.value);
    expect(replacedOutputs).toContain(30_000n);
    expect((await wallet.transaction(first.txid))).toMatchObject({ status: 'replaced', replacedBy: bumped.txid });
    expect((await wallet.balance()).unconfirmed).toBe(100_000n - 30_000n - bumped.fee);
    chain.mine(1);
    await wallet.sync();
    await expectCode(wallet.bump(bumped.txid, { feeRate: 20 }), 'CONFLICT');
    await expectCode(wallet.bump('00'.repeat(32), { feeRate: 20 }), 'NOT_FOUND');
    expect((await wallet.balance()).confirmed).toBe(100_000n - 30_000n - bumped.fee);
  });

  it('bump adds an input when the change cannot pay the new fee', async () => {
    const { wallet, chain } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 31_000n);
    chain.mine(1);
    await wallet.sync();
    const first = await wallet.send(OTHER.taprootKey(RECEIVE, 0).address, 30_600n, { feeRate: 1 });
    expect(parseTransaction(first.raw).outputs).toHaveLength(1); // no change left to cut
    chain.mine(1, { txs: [fakePayment([{ script: keys.taprootKey(RECEIVE, 1).script, value: 50_000n }])] });
    await wallet.sync();
    const bumped = await wallet.bump(first.txid, { feeRate: 20 });
    expect(parseTransaction(bumped.raw).inputs.length).toBeGreaterThan(parseTransaction(first.raw).inputs.length);
    expect(bumped.fee).toBeGreaterThanOrEqual(BigInt(bumped.vsize * 20));
  });

  it('sees an incoming replacement evict the replaced tx', async () => {
    const { wallet, chain } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 100_000n);
    chain.mine(1);
    await wallet.sync();
    const first = await wallet.send(OTHER.taprootKey(RECEIVE, 0).address, 30_000n, { feeRate: 2 });
    // Someone else (an external signer with the same seed) replaced it: the mempool now holds the other.
    const funded = await wallet.fundTransaction({ outputs: [{ script: OTHER.taprootKey(RECEIVE, 1).script, amount: 20_000n }], feeRate: 1 });
    wallet.release(funded.txid);
    expect(parseTransaction(funded.raw).inputs[0]!.prevTxidHex).toBe(first.txid); // spends first's change
    chain.mempool.delete(first.txid);
    await wallet.sync();
    expect((await wallet.transaction(first.txid))?.status).toBe('dropped');
    expect(await wallet.balance()).toEqual({ confirmed: 100_000n, unconfirmed: 0n, immature: 0n });
  });

  it('creates PSBTs, signs them with its keys, finalizes and broadcasts', async () => {
    const { wallet, chain } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 100_000n);
    chain.mine(1);
    await wallet.sync();
    const created = await wallet.psbtCreate([{ script: OTHER.taprootKey(RECEIVE, 0).script, amount: 40_000n }], 3);
    await expectCode(wallet.psbtFinalize(created.psbt), 'BAD_INPUT');
    const signed = await wallet.psbtSign(created.psbt);
    expect(signed.signed).toBe(1);
    const dry = await wallet.psbtFinalize(signed.psbt, { broadcast: false });
    expect(dry.broadcast).toBe(false);
    expect(chain.mempool.size).toBe(0);
    const done = await wallet.psbtFinalize(signed.psbt);
    expect(done.txid).toBe(created.txid);
    expect(done.fee).toBe(created.fee);
    expect(chain.mempool.has(done.txid)).toBe(true);
    expect((await wallet.balance()).unconfirmed).toBe(100_000n - 40_000n - created.fee);
  });

  it('resumes after a restart without rescanning', async () => {
    const { wallet, chain, open } = setup();
    pay(chain, keys.taprootKey(RECEIVE, 0).script, 70_000n);
    chain.mine(5);
    await wallet.sync();
    await wallet.close();
    const calls = chain.rawBlockCalls;
    const again = open();
    await again.sync();
    expect(chain.rawBlockCalls).toBe(calls);
    expect((await again.balance()).confirmed).toBe(70_000n);
    await expectCode(wallet.balance(), 'CLOSED');
  });

  it('keeps a confirmed payment confirmed when a mempool notice of it arrives late', async () => {
    // Bitcoin Core's ZMQ: the tx's mempool notice is queued behind a sync that already applied
    // the block holding it (the harness mines right after broadcasting).
    const dir = mkdtempSync(join(tmpdir(), 'wallet-late-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const chain = new FakeChain();
    const wallet = new Wallet({ keys, source: chain, db: join(dir, 'w.db'), follow: true, pollIntervalMs: 0 });
    cleanups.push(() => wallet.close());
    await wallet.ready();
    const raw = fakePayment([{ script: keys.taprootKey(RECEIVE, 0).script, value: 23_456n }]);
    const txid = parseTransaction(raw).txid;
    chain.mempool.set(txid, raw);
    chain.mine(1, { silent: true });
    await wallet.sync();
    expect((await wallet.transaction(txid))?.status).toBe('confirmed');
    chain.announce(raw);
    await wallet.sync(); // runs after the notice's handler, and its mempool pass drops pending txs the node does not have
    expect((await wallet.transaction(txid))?.status).toBe('confirmed');
    expect((await wallet.balance()).confirmed).toBe(23_456n);
    await wallet.close();
  });

  it('follows in the background when asked to', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wallet-bg-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const chain = new FakeChain();
    const changes: number[] = [];
    const wallet = new Wallet({ keys, source: chain, db: join(dir, 'w.db'), follow: true, pollIntervalMs: 20, onChange: () => changes.push(1) });
    cleanups.push(() => wallet.close());
    await wallet.ready();
    const raw = fakePayment([{ script: keys.taprootKey(RECEIVE, 0).script, value: 12_345n }]);
    await chain.broadcast(raw); // emits a mempool-tx event with the bytes
    await expect.poll(async () => (await wallet.balance()).unconfirmed).toBe(12_345n);
    chain.mine(1);
    await expect.poll(async () => (await wallet.balance()).confirmed).toBe(12_345n);
    expect(changes.length).toBeGreaterThan(0);
    await wallet.close();
  });
});
