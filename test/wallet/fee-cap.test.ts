/**
 * The fee-rate cap is checked before coin selection on every way the wallet spends, so a rate
 * above it says so (FEE_TOO_HIGH, naming the cap) whatever the coins: it never turns into
 * "insufficient funds: need 160160 sat" because the rate made the transaction unaffordable.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet, dataOutput } from '../../src/wallet/wallet.js';
import { WalletKeys, RECEIVE } from '../../src/wallet/keys.js';
import { parseTransaction } from '../../src/chain/block.js';
import { DeaddropError } from '../../src/util/errors.js';
import { sendDrop } from '../../src/deaddrop/send.js';
import { walletSilentAddress } from '../../src/deaddrop/publish.js';
import { FakeChain } from '../support/fake-chain.js';
import { fakePayment } from '../support/tx.js';
import { expectCode } from '../support/errors.js';

const keys = WalletKeys.fromMnemonic('legal winner thank year wave sausage worth useful legal winner thank yellow', 'regtest');
const OTHER = WalletKeys.fromMnemonic('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'regtest');
const dest = OTHER.taprootKey(RECEIVE, 0).address;
const recipient = walletSilentAddress(OTHER);
const payload = { nodeKey: new Uint8Array(32).fill(7), token: new Uint8Array(8).fill(9), endpoints: ['ws://127.0.0.1:9000'] };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function walletWith(coin: bigint, maxFeeRate?: number): Promise<{ wallet: Wallet; chain: FakeChain }> {
  const dir = mkdtempSync(join(tmpdir(), 'feecap-'));
  const chain = new FakeChain();
  const wallet = new Wallet({ keys, source: chain, db: join(dir, 'wallet.db'), ...(maxFeeRate ? { maxFeeRate } : {}) });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => wallet.close());
  const raw = fakePayment([{ script: keys.taprootKey(RECEIVE, 0).script, value: coin }]);
  chain.mempool.set(parseTransaction(raw).txid, raw);
  chain.mine(1);
  await wallet.sync();
  return { wallet, chain };
}

describe('fee cap before coin selection', () => {
  it('a drop at 1001 sat/vB with too few coins is refused for its fee rate, not for funds', async () => {
    const { wallet, chain } = await walletWith(20_000n);
    const err = await expectCode(sendDrop(wallet, { recipient, payload, feeRate: 1001 }), 'FEE_TOO_HIGH');
    expect(err.code).toBe('FEE_TOO_HIGH');
    expect(err.message).toBe('fee rate 1001 sat/vB is above the cap of 1000 sat/vB');
    expect(chain.mempool.size).toBe(0);
  });

  it('a drop obeys the wallet\'s own cap too', async () => {
    const { wallet, chain } = await walletWith(10_000_000n, 50);
    const err = await expectCode(sendDrop(wallet, { recipient, payload, feeRate: 60 }), 'FEE_TOO_HIGH');
    expect(err.code).toBe('FEE_TOO_HIGH');
    expect(err.message).toContain('cap of 50 sat/vB');
    expect(chain.mempool.size).toBe(0);
  });

  it('every wallet spend checks the cap first, with or without enough coins', async () => {
    for (const coin of [1_000n, 10_000_000n]) {
      const { wallet } = await walletWith(coin);
      const script = OTHER.taprootKey(RECEIVE, 0).script;
      const calls: [string, Promise<unknown>][] = [
        ['send', wallet.send(dest, 5_000n, { feeRate: 1001 })],
        ['sendOutputs', wallet.sendOutputs({ outputs: [dataOutput(new Uint8Array(80))], feeRate: 1001 })],
        ['fundTransaction', wallet.fundTransaction({ outputs: [{ script, amount: 5_000n }], feeRate: 1001 })],
        ['psbtCreate', wallet.psbtCreate([{ script, amount: 5_000n }], 1001)],
      ];
      for (const [name, p] of calls) {
        const err = await expectCode(p, 'FEE_TOO_HIGH');
        expect(`${name}: ${err.code}`).toBe(`${name}: FEE_TOO_HIGH`);
      }
      // A refused PSBT hands out no change address and reserves nothing.
      expect(await wallet.reservations()).toEqual([]);
      expect((await wallet.addresses()).some((a) => a.chain === 1 && a.issued)).toBe(false);
    }
  });

  it('maps to one API status for one kind of error (400 FEE_TOO_HIGH, 409 INSUFFICIENT_FUNDS)', async () => {
    const { installErrorHandler } = await import('../../src/api/errors.js');
    const { default: Fastify } = await import('fastify');
    const app = Fastify();
    installErrorHandler(app);
    app.get('/fee', async () => {
      throw DeaddropError.feeTooHigh(1001, 1000);
    });
    app.get('/funds', async () => {
      throw DeaddropError.insufficientFunds(1n, 0n);
    });
    expect((await app.inject('/fee')).statusCode).toBe(400);
    expect((await app.inject('/funds')).statusCode).toBe(409);
    await app.close();
  });
});
