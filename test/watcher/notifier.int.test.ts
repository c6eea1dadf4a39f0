/** ChainNotifier against each regtest node: confirmations, spends (mempool and block), reorgs, history. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { openBackend } from '../../src/chain/open.js';
import type { ChainSource } from '../../src/chain/types.js';
import { ChainNotifier, type ConfirmationEvent, type ReorgEvent, type SpendEvent } from '../../src/watcher/notifier.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('notifier on %s', (kind) => {
  useNodeKind(kind);

  describe('ChainNotifier', () => {
    let node: RegtestNode;
    let source: ChainSource;
    let notifier: ChainNotifier;

    beforeAll(async () => {
      node = await startRegtestNode({ kind });
      source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest', pollIntervalMs: 100 });
      notifier = new ChainNotifier({ source, pollIntervalMs: 100 });
      await notifier.ready();
    });
    afterAll(async () => {
      await notifier?.close();
      await source?.close();
      await node?.stop();
    });

    it('reports N confirmations of a txid, retracts them on a reorg, and confirms again', async () => {
      const txid = await node.fund(node.fundingAddress, 40_000n);
      const tip = await source.getTip();
      const confs: ConfirmationEvent[] = [];
      const reorgs: ReorgEvent[] = [];
      await notifier.registerConfirmations({ txid }, 2, tip.height, (e) => confs.push(e), (e) => reorgs.push(e));
      const [first] = await node.mine(1);
      await notifier.catchUp();
      expect(confs).toHaveLength(0); // one confirmation is not two
      await node.mine(1);
      await notifier.catchUp();
      expect(confs).toHaveLength(1);
      expect(confs[0]).toMatchObject({ txid, blockHash: first, confirmations: 2, height: tip.height + 1 });

      await node.invalidateBlock(first as string);
      await notifier.catchUp();
      expect(reorgs).toEqual([{ txid, height: tip.height + 1, blockHash: first }]);
      await node.reconsiderBlock(first as string);
      await notifier.catchUp();
      expect(confs).toHaveLength(2);
      expect(confs[1]).toMatchObject({ txid, blockHash: first });
    });

    it('reports a spend from the mempool, then with its block', async () => {
      const built = await node.buildTx([{ address: node.fundingAddress, sats: 30_000n }]);
      const watched = built.inputs[0] as { txid: string; vout: number };
      const spends: SpendEvent[] = [];
      const tip = await source.getTip();
      await notifier.registerSpend(watched, tip.height, (e) => spends.push(e));
      expect(spends).toHaveLength(0);
      const sent = await source.broadcast(built.raw);
      expect(sent.accepted).toBe(true);
      const pending = await waitUntil(() => spends[0], 'the mempool spend', { timeoutMs: 10_000, intervalMs: 50 });
      expect(pending).toMatchObject({ spendingTxid: built.txid, height: null, inputIndex: 0 });
      const [hash] = await node.mine(1);
      await notifier.catchUp();
      const mined = await waitUntil(() => spends.find((s) => s.height !== null), 'the confirmed spend', { timeoutMs: 10_000, intervalMs: 50 });
      expect(mined).toMatchObject({ spendingTxid: built.txid, blockHash: hash, height: tip.height + 1 });
    });

    it('finds confirmations and spends that happened before registration, from the height hint', async () => {
      const start = (await source.getTip()).height;
      const built = await node.buildTx([{ address: node.fundingAddress, sats: 20_000n }]);
      expect((await source.broadcast(built.raw)).accepted).toBe(true);
      await node.mine(3);
      await notifier.catchUp();
      const confs: ConfirmationEvent[] = [];
      const spends: SpendEvent[] = [];
      await notifier.registerConfirmations({ txid: built.txid }, 3, start, (e) => confs.push(e));
      await notifier.registerSpend(built.inputs[0] as { txid: string; vout: number }, start, (e) => spends.push(e));
      expect(confs).toEqual([expect.objectContaining({ txid: built.txid, confirmations: 3, height: start + 1 })]);
      expect(spends).toEqual([expect.objectContaining({ spendingTxid: built.txid, height: start + 1 })]);
    });

    it('watches a script for its first confirmed payment', async () => {
      const start = (await source.getTip()).height;
      const target = await node.buildTx([{ address: node.fundingAddress, sats: 12_345n }]);
      const script = (await import('@scure/btc-signer')).OutScript.encode(
        (await import('@scure/btc-signer')).Address({ bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef }).decode(node.fundingAddress),
      );
      const confs: ConfirmationEvent[] = [];
      await notifier.registerConfirmations({ script }, 1, start + 1, (e) => confs.push(e));
      expect((await source.broadcast(target.raw)).accepted).toBe(true);
      await node.mine(1);
      await notifier.catchUp();
      expect(confs).toHaveLength(1);
      expect(confs[0]?.height).toBe(start + 1);
    });

    it('refuses bad registrations with clear errors', async () => {
      await expect(notifier.registerSpend({ txid: 'xyz', vout: 0 }, 0, () => undefined)).rejects.toThrow(TypeError);
      await expect(notifier.registerConfirmations({}, 1, 0, () => undefined)).rejects.toThrow(/txid or a script/);
      await expect(notifier.registerConfirmations({ txid: 'a'.repeat(64) }, 0, 0, () => undefined)).rejects.toThrow(RangeError);
    });
  });
});
