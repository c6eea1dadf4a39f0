/**
 * Coin reservations over an in-memory chain: a PSBT holds exactly its inputs, until it is
 * finalized, broadcast, abandoned or expired; reservations survive a restart; a broadcast whose
 * answer was lost is settled with the node at the next start (recorded, sent again, or released).
 * The kill -9 version of the last one runs on real btcd in test/cli/wallet-crash.int.test.ts.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from '../../src/wallet/wallet.js';
import { WalletKeys, RECEIVE } from '../../src/wallet/keys.js';
import { parseTransaction } from '../../src/chain/block.js';
import { DeaddropError } from '../../src/util/errors.js';
import { expectCode } from '../support/errors.js';
import { FakeChain } from '../support/fake-chain.js';
import { fakePayment } from '../support/tx.js';

const keys = WalletKeys.fromMnemonic('legal winner thank year wave sausage worth useful legal winner thank yellow', 'regtest');
const OTHER = WalletKeys.fromMnemonic('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'regtest');
const dest = OTHER.taprootKey(RECEIVE, 0).address;
const destScript = OTHER.taprootKey(RECEIVE, 0).script;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(opts: { reservationTtlMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'reservations-'));
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

async function fund(chain: FakeChain, wallet: Wallet, values: bigint[]): Promise<void> {
  values.forEach((value, i) => {
    const raw = fakePayment([{ script: keys.taprootKey(RECEIVE, i).script, value }]);
    chain.mempool.set(parseTransaction(raw).txid, raw);
  });
  chain.mine(1);
  await wallet.sync();
}

describe('coin reservations', () => {
  it('a PSBT reserves exactly the inputs it spends, and sends use the others', async () => {
    const { wallet, chain } = setup();
    await fund(chain, wallet, [300_000n, 200_000n, 100_000n]);
    const created = await wallet.psbtCreate([{ script: destScript, amount: 1_000n }], 2);
    const [r] = await wallet.reservations();
    expect(r).toMatchObject({ id: created.txid, kind: 'psbt' });
    expect(r!.coins).toHaveLength(1);
    const sent = await wallet.send(dest, 250_000n, { feeRate: 2 });
    const spent = parseTransaction(sent.raw).inputs.map((i) => `${i.prevTxidHex}:${i.vout}`);
    expect(spent).not.toContain(`${r!.coins[0]!.txid}:${r!.coins[0]!.vout}`);
  });

  it('after a PSBT of the only coin, abandon (by txid or by PSBT) frees it for a send at once', async () => {
    const { wallet, chain } = setup();
    await fund(chain, wallet, [849_076n]);
    const a = await wallet.psbtCreate([{ script: destScript, amount: 1_000n }], 2);
    expect((await wallet.balance()).confirmed).toBe(849_076n);
    const err = await expectCode(wallet.send(dest, 1_000n, { feeRate: 2 }), 'INSUFFICIENT_FUNDS');
    expect(err.message).toContain('have 0 sat spendable; 849076 sat more are reserved for PSBTs or sends in progress (see `deaddrop wallet reservations`)');
    expect((await wallet.abandon(a.txid)).id).toBe(a.txid);
    expect(await wallet.reservations()).toEqual([]);
    const b = await wallet.psbtCreate([{ script: destScript, amount: 2_000n }], 2);
    expect((await wallet.abandon(b.psbt)).id).toBe(b.txid);
    await expectCode(wallet.abandon(b.txid), 'NOT_FOUND');
    await expectCode(wallet.abandon('not a psbt'), 'BAD_INPUT');
    await wallet.send(dest, 1_000n, { feeRate: 2 });
  });

  it('releases the coins when the PSBT is finalized, with or without broadcast', async () => {
    const { wallet, chain } = setup();
    await fund(chain, wallet, [100_000n]);
    const a = await wallet.psbtCreate([{ script: destScript, amount: 40_000n }], 3);
    const signed = await wallet.psbtSign(a.psbt);
    await wallet.psbtFinalize(signed.psbt, { broadcast: false });
    expect(await wallet.reservations()).toEqual([]);
    const b = await wallet.psbtCreate([{ script: destScript, amount: 40_000n }], 3);
    const done = await wallet.psbtFinalize((await wallet.psbtSign(b.psbt)).psbt);
    expect(done.txid).toBe(b.txid);
    expect(await wallet.reservations()).toEqual([]);
    // The change of the broadcast PSBT is spendable right away.
    await wallet.send(dest, 10_000n, { feeRate: 2 });
  });

  it('expires a reservation nobody finalizes or abandons', async () => {
    const { wallet, chain } = setup({ reservationTtlMs: 200 });
    await fund(chain, wallet, [100_000n]);
    const a = await wallet.psbtCreate([{ script: destScript, amount: 1_000n }], 2);
    expect(a.expiresAt - Date.now()).toBeLessThanOrEqual(200);
    await expectCode(wallet.send(dest, 1_000n, { feeRate: 2 }), 'INSUFFICIENT_FUNDS');
    await new Promise((r) => setTimeout(r, 250));
    expect(await wallet.reservations()).toEqual([]);
    await wallet.send(dest, 1_000n, { feeRate: 2 });
    // A per-PSBT lifetime overrides the wallet default.
    const long = await wallet.psbtCreate([{ script: destScript, amount: 1_000n }], 2, { ttlMs: 60_000 });
    expect(long.expiresAt - Date.now()).toBeGreaterThan(50_000);
  });

  it('keeps reservations across a restart, neither lost nor leaked', async () => {
    const { wallet, chain, open } = setup();
    await fund(chain, wallet, [100_000n]);
    const a = await wallet.psbtCreate([{ script: destScript, amount: 1_000n }], 2);
    await wallet.close();
    const again = open();
    await again.sync();
    expect((await again.reservations()).map((r) => r.id)).toEqual([a.txid]);
    await expectCode(again.send(dest, 1_000n, { feeRate: 2 }), 'INSUFFICIENT_FUNDS');
    // The external signer comes back after the restart: finalizing still works and releases.
    const done = await again.psbtFinalize((await again.psbtSign(a.psbt)).psbt);
    expect(chain.mempool.has(done.txid)).toBe(true);
    expect(await again.reservations()).toEqual([]);
  });

  it('a funded transaction never broadcast is released by the next start', async () => {
    const { wallet, chain, open } = setup();
    await fund(chain, wallet, [100_000n]);
    await wallet.fundTransaction({ outputs: [{ script: destScript, amount: 1_000n }], feeRate: 2 });
    await wallet.close();
    const again = open();
    await again.sync();
    expect(await again.reservations()).toEqual([]);
    await again.send(dest, 1_000n, { feeRate: 2 });
  });

  it('a broadcast whose answer was lost is recorded if the node has it, sent again if not, released if refused', async () => {
    const { wallet, chain, open } = setup();
    await fund(chain, wallet, [100_000n, 90_000n, 80_000n]);
    const realBroadcast = chain.broadcast.bind(chain);
    // 1. The node got it, the answer was lost.
    chain.broadcast = async (raw) => {
      await realBroadcast(raw);
      throw DeaddropError.unreachable('node', 'connection reset');
    };
    await expectCode(wallet.send(dest, 1_000n, { feeRate: 2 }), 'BACKEND_UNREACHABLE');
    // 2. The node never got it.
    chain.broadcast = async () => {
      throw DeaddropError.unreachable('node', 'connection reset');
    };
    await expectCode(wallet.send(dest, 2_000n, { feeRate: 2 }), 'BACKEND_UNREACHABLE');
    await expectCode(wallet.send(dest, 3_000n, { feeRate: 2 }), 'BACKEND_UNREACHABLE');
    const records = (await wallet.reservations()).filter((r) => r.kind === 'broadcast');
    expect(records).toHaveLength(3);
    await wallet.close();
    expect(chain.mempool.size).toBe(1);
    // 3. The node refuses the third record (as it would a coin spent elsewhere meanwhile).
    const third = parseTransaction(records[2]!.raw!);
    const again = open();
    chain.broadcast = async (raw) => (parseTransaction(raw).txid === third.txid ? { accepted: false, reason: 'bad-txns-inputs-missingorspent', code: -25 } : realBroadcast(raw));
    await again.sync();
    expect(await again.reservations()).toEqual([]);
    expect(chain.mempool.has(records[0]!.id)).toBe(true);
    expect(chain.mempool.has(records[1]!.id)).toBe(true);
    expect(chain.mempool.has(records[2]!.id)).toBe(false);
    const history = await again.history();
    for (const id of [records[0]!.id, records[1]!.id]) expect(history.find((h) => h.txid === id)).toMatchObject({ status: 'pending' });
    // The released coin and the recorded change are all spendable: nothing stranded, nothing lost.
    const bal = await again.balance();
    const fees = history.filter((h) => h.fee !== null).reduce((s, h) => s + h.fee!, 0n);
    expect(bal.confirmed + bal.unconfirmed).toBe(270_000n - 3_000n - fees);
    await again.send(dest, 75_000n, { feeRate: 2 });
  });
});
