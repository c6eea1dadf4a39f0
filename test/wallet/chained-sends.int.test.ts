/**
 * Many drops in a row from one coin, each spending the previous one's change, on a real node:
 * btcd always, Bitcoin Core too when BITCOIND is set. Every drop must end up sent: on Core the
 * wallet stops at its chain limit (25 unconfirmed ancestors) with a clear error before the node
 * ever refuses anything, and goes on after a block; btcd has no such limit. 70 drops, more than
 * the 60 of the issue, because Core v31 (cluster mempool) only refuses past 64 in a cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openBackend } from '../../src/chain/open.js';
import type { ChainSource } from '../../src/chain/types.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { Wallet } from '../../src/wallet/wallet.js';
import { WalletKeys, newMnemonic } from '../../src/wallet/keys.js';
import { sendDrop } from '../../src/deaddrop/send.js';
import { walletSilentAddress } from '../../src/deaddrop/publish.js';
import { isDeaddropError } from '../../src/util/errors.js';

const DROPS = 70;
const COIN = 10_000_000n;
const kinds: ('btcd' | 'bitcoind')[] = ['btcd', ...(process.env.BITCOIND ? ['bitcoind' as const] : [])];
const recipient = walletSilentAddress(WalletKeys.fromMnemonic(newMnemonic(), 'regtest'));

describe.each(kinds)('%s: %i drops in a row from one coin'.replace('%i', String(DROPS)), (kind) => {
  let node: RegtestNode;
  let source: ChainSource;
  let wallet: Wallet;
  let dir: string;

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
    source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest', pollIntervalMs: 100 });
    await source.ready();
    dir = mkdtempSync(join(tmpdir(), 'chained-'));
    wallet = new Wallet({ keys: WalletKeys.fromMnemonic(newMnemonic(), 'regtest'), source, db: join(dir, 'wallet.db') });
    await wallet.ready();
    await node.fund(await wallet.newReceiveAddress(), COIN, { confirm: true });
    await wallet.sync();
  }, 120_000);

  afterAll(async () => {
    await wallet?.close();
    await source?.close();
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sends every drop: within the node\'s limits, a clear error and a block where a limit is reached', async () => {
    expect((await wallet.balance()).confirmed).toBe(COIN);
    const txids: string[] = [];
    let fees = 0n;
    const limitHits: number[] = [];
    for (let i = 0; i < DROPS; i++) {
      const send = () => sendDrop(wallet, { recipient, feeRate: 1, payload: { nodeKey: randomBytes(32), token: randomBytes(8), endpoints: ['ws://127.0.0.1:9000'] } });
      let r;
      try {
        r = await send();
      } catch (err) {
        // Only the wallet's own chain-limit error is acceptable; never a node rejection.
        if (!(isDeaddropError(err, 'INSUFFICIENT_FUNDS') && err.details?.reason === 'unconfirmed-chain-limit')) throw err;
        expect(err.message).toContain('after the next block');
        limitHits.push(i);
        await node.mine(1);
        await wallet.sync();
        r = await send();
      }
      txids.push(r.txid);
      fees += r.fee;
    }
    if (kind === 'bitcoind') {
      // 25 in the mempool, then the limit: after drops 25 and 50 (0-based) a block was needed.
      expect(limitHits).toEqual([25, 50]);
    } else {
      expect(limitHits).toEqual([]);
    }
    await node.mine(1);
    await wallet.sync();
    const history = await wallet.history();
    for (const txid of txids) expect(history.find((h) => h.txid === txid)?.status).toBe('confirmed');
    expect(await wallet.balance()).toEqual({ confirmed: COIN - fees, unconfirmed: 0n, immature: 0n });
  }, 180_000);
});
