/** The wallet over a script-history backend: each regtest node + ElectrumX (through the translating proxy on btcd). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackend } from '../../src/chain/open.js';
import type { ChainSource } from '../../src/chain/types.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { startElectrumX, type ElectrumXServer } from '../../src/regtest/electrumx.js';
import { Wallet } from '../../src/wallet/wallet.js';
import { WalletKeys, newMnemonic, RECEIVE } from '../../src/wallet/keys.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('wallet through ElectrumX on %s', (kind) => {
  useNodeKind(kind);

  let node: RegtestNode;
  let ex: ElectrumXServer;
  let source: ChainSource;
  let wallet: Wallet;
  let dir: string;
  const keys = WalletKeys.fromMnemonic(newMnemonic(), 'regtest');
  const other = WalletKeys.fromMnemonic(newMnemonic(), 'regtest');


  async function mine(n = 1): Promise<void> {
    await node.mine(n);
    await ex.waitForHeight(await node.rpc<number>('getblockcount'));
  }

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
    ex = await startElectrumX(node, { immediateResponses: true });
    source = await openBackend(ex.url, { expectedNetwork: 'regtest', timeoutMs: 10_000 });
    await source.ready();
    dir = mkdtempSync(join(tmpdir(), 'wallet-electrum-'));
    wallet = new Wallet({ keys, source, db: join(dir, 'wallet.db') });
    await wallet.ready();
  });

  afterAll(async () => {
    await wallet?.close();
    await source?.close();
    await ex?.stop();
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('wallet on Electrum', () => {
    it('finds payments through script history, including past the first gap window', async () => {
      await node.fund(keys.taprootKey(RECEIVE, 0).address, 300_000n);
      await node.fund(keys.taprootKey(RECEIVE, 15).address, 200_000n);
      await mine();
      await node.fund(keys.taprootKey(RECEIVE, 30).address, 100_000n); // visible only once index 15 is used
      await mine();
      await waitUntil(async () => {
        await wallet.sync();
        expect(await wallet.balance()).toEqual({ confirmed: 600_000n, unconfirmed: 0n, immature: 0n });
        return true;
      }, 'the payments, past the first gap window', { timeoutMs: 20_000, intervalMs: 200, retryOnError: true });
    });

    it('sends, sees its change unconfirmed, then confirmed, with an exact fee', async () => {
      const before = (await wallet.balance()).confirmed;
      const r = await wallet.send(other.taprootKey(RECEIVE, 0).address, 50_000n, { feeRate: 2 });
      expect(r.fee).toBe(BigInt(2 * r.vsize));
      await waitUntil(async () => {
        await wallet.sync();
        expect((await wallet.transaction(r.txid))?.status).toBe('pending');
        return true;
      }, 'the change, unconfirmed', { timeoutMs: 20_000, intervalMs: 200, retryOnError: true });
      await mine();
      await waitUntil(async () => {
        await wallet.sync();
        expect(await wallet.balance()).toEqual({ confirmed: before - 50_000n - r.fee, unconfirmed: 0n, immature: 0n });
        expect((await wallet.transaction(r.txid))?.status).toBe('confirmed');
        return true;
      }, 'the change, confirmed', { timeoutMs: 20_000, intervalMs: 200, retryOnError: true });
    });
  });
});
