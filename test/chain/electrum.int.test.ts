/**
 * ElectrumSource against a real node and a real ElectrumX: through the translating proxy on btcd,
 * directly on Bitcoin Core.
 * One node and one ElectrumX for the whole file.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { p2tr } from '@scure/btc-signer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ElectrumSource } from '../../src/chain/backends/electrum.js';
import { txidFromRaw, verifyMerkleBranch } from '../../src/chain/backends/electrum-codec.js';
import type { ChainEvent } from '../../src/chain/types.js';
import { startElectrumX, type ElectrumXServer } from '../../src/regtest/electrumx.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { btcSignerNetwork } from '../../src/util/network.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';
import { expectCode } from '../support/errors.js';

describe.each(chainNodes())('ElectrumX on %s', (kind) => {
  useNodeKind(kind);

  let node: RegtestNode;
  let ex: ElectrumXServer;
  let src: ElectrumSource;
  const events: ChainEvent[] = [];

  function taproot(): { address: string; script: Uint8Array } {
    const pay = p2tr(schnorr.getPublicKey(schnorr.utils.randomSecretKey()), undefined, btcSignerNetwork('regtest'));
    return { address: pay.address as string, script: pay.script };
  }

  async function mineAndSync(n: number): Promise<number> {
    await node.mine(n);
    const height = await node.rpc<number>('getblockcount');
    await ex.waitForHeight(height);
    return height;
  }

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
    ex = await startElectrumX(node);
    src = new ElectrumSource(ex.host, ex.port, false, { expectedNetwork: 'regtest', timeoutMs: 10_000, reconnectMinMs: 100 });
    src.subscribe((e) => events.push(e));
    await src.ready();
  });

  afterAll(async () => {
    await src?.close();
    await ex?.stop();
    await node?.stop();
  });

  describe('ElectrumSource + ElectrumX', () => {
    it('declares what an Electrum server can and cannot do', async () => {
      expect(src.kind).toBe('electrum');
      expect(src.capabilities).toMatchObject({ fullBlocks: false, scriptHistory: true, push: true, mempool: false, anyTransaction: true });
      await expectCode(src.getRawBlock('00'.repeat(32)), 'UNSUPPORTED');
      await expectCode(src.getMempoolTxids(), 'UNSUPPORTED');
      expect(await src.network()).toBe('regtest');
    });

    it('reports the node\'s tip, hashes and headers, and pushes new tips', async () => {
      const height = await mineAndSync(1);
      const nodeHash = await node.rpc<string>('getblockhash', [height]);
      expect(await src.getTip()).toEqual({ height, hash: nodeHash });
      expect(await src.getBlockHash(height)).toBe(nodeHash);
      const header = await src.getBlockHeader(nodeHash);
      const prev = await node.rpc<string>('getblockhash', [height - 1]);
      expect(header).toMatchObject({ height, hash: nodeHash, prevHash: prev });
      // A header reached only by hash (not cached by this source) is found by walking back from the tip.
      const fresh = new ElectrumSource(ex.host, ex.port, false, { expectedNetwork: 'regtest' });
      try {
        expect((await fresh.getBlockHeader(await node.rpc<string>('getblockhash', [3]))).height).toBe(3);
        await expectCode(fresh.getBlockHeader('11'.repeat(32)), 'NOT_FOUND');
      } finally {
        await fresh.close();
      }
      await expectCode(src.getBlockHash(height + 1000), 'NOT_FOUND');
      await waitUntil(() => events.find((e) => e.type === 'tip' && e.tip.hash === nodeHash), 'tip event', { timeoutMs: 15_000, intervalMs: 50 });
    });

    it('follows a funded taproot script from mempool to block, with a verified merkle proof', async () => {
      const { address, script } = taproot();
      await src.watchScript(script);
      const txid = await node.fund(address, 123_456n);

      const pending = await waitUntil(async () => (await src.getScriptHistory(script)).find((h) => h.txid === txid), 'mempool history', { timeoutMs: 15_000, intervalMs: 50 });
      expect(pending.height).toBeLessThanOrEqual(0);
      const scriptHex = bytesToHex(script);
      await waitUntil(() => events.find((e) => e.type === 'script' && e.scriptHex === scriptHex), 'script event', { timeoutMs: 15_000, intervalMs: 50 });

      const height = await mineAndSync(1);

      const confirmed = await waitUntil(async () => (await src.getScriptHistory(script)).find((h) => h.txid === txid && h.height > 0), 'confirmed history', { timeoutMs: 15_000, intervalMs: 50 });
      expect(confirmed.height).toBe(height);
      // Asked together: ElectrumX holds each small answer up to 1 s (response padding), so this saves seconds.
      const [unspent, raw, inBlock, inParent, beyondTip, proof, header] = await Promise.all([
        src.getScriptUnspent(script),
        src.getRawTransaction(txid),
        src.verifyTxInBlock(txid, height),
        src.verifyTxInBlock(txid, height - 1),
        src.verifyTxInBlock(txid, height + 5),
        src.getMerkleProof(txid, height),
        src.getBlockHash(height).then((h) => src.getBlockHeader(h)),
      ]);
      expect(unspent).toHaveLength(1);
      expect(unspent[0]).toMatchObject({ txid, value: 123_456n, height });
      expect(txidFromRaw(raw)).toBe(txid);
      expect(bytesToHex(raw)).toContain(scriptHex);
      expect([inBlock, inParent, beyondTip]).toEqual([true, false, false]);
      const root = header.merkleRoot;
      expect(verifyMerkleBranch(txid, proof.branch, proof.pos, root)).toBe(true);
      expect(proof.branch.length).toBeGreaterThan(0); // coinbase + funding tx
      const tampered = proof.branch.map((h, i) => (i === 0 ? `${h.slice(0, 62)}${h.slice(62) === '00' ? '01' : '00'}` : h));
      expect(verifyMerkleBranch(txid, tampered, proof.pos, root)).toBe(false);
      expect(verifyMerkleBranch(txid, proof.branch, proof.pos ^ 1, root)).toBe(false);
    });

    it('broadcasts a good transaction and returns rejections as results with the reason', async () => {
      const { address, script } = taproot();
      const good = await node.buildTx([{ address, sats: 50_000n }]);
      expect(await src.broadcast(good.raw)).toEqual({ accepted: true, txid: good.txid });
      await waitUntil(async () => ((await src.getScriptHistory(script)).length > 0 ? true : undefined), 'broadcast tx in history', { timeoutMs: 15_000, intervalMs: 50 });

      const doubleSpend = await node.buildTx([{ address: taproot().address, sats: 40_000n }], { inputs: good.inputs });
      const [garbage, rejected] = await Promise.all([src.broadcast(new Uint8Array([1, 2, 3])), src.broadcast(doubleSpend.raw)]);
      expect(garbage.accepted).toBe(false);
      if (!garbage.accepted) expect(garbage.reason).toMatch(/decode|deserializ/i);
      expect(rejected.accepted).toBe(false);
      // btcd: "already spent"; Core (full RBF): a conflict is a replacement attempt, refused for its fee.
      if (!rejected.accepted) expect(rejected.reason).toMatch(kind === 'btcd' ? /spent|conflict|already/i : /rejecting replacement|conflict/i);
    });

    it('estimates fees from the node, and falls back when the node has no estimate', async () => {
      // btcd: earlier tests mined transactions paying the harness wallet's 2 sat/vB, so it has data,
      // and it estimates at most 25 blocks ahead; beyond that the proxy reports "no estimate".
      // Core: estimatesmartfee needs far more history than this chain has: no estimate at all.
      const [est, far, missing] = await Promise.all([
        src.estimateFee(2, 7),
        src.estimateFee(100, 7),
        src.getRawTransaction('00'.repeat(32)).catch((e: unknown) => e),
      ]);
      const nodeSays = await node.dialect.estimateFee(node.client, 2);
      if (nodeSays === undefined) {
        expect(kind).toBe('bitcoind');
        expect(est).toEqual({ satPerVb: 7, source: 'fallback' });
      } else {
        expect(est.source).toBe('node');
        expect(est.satPerVb).toBeGreaterThanOrEqual(1);
        expect(est.satPerVb).toBeLessThan(100);
      }
      expect(far).toEqual({ satPerVb: 7, source: 'fallback' });
      expect(isDeaddropError(missing, 'NOT_FOUND')).toBe(true);
    });

    it('detects a server on the wrong network', async () => {
      const wrong = new ElectrumSource(ex.host, ex.port, false, { expectedNetwork: 'mainnet' });
      try {
        const err = await wrong.ready().then(() => undefined, (e: unknown) => e);
        expect(isDeaddropError(err, 'WRONG_NETWORK')).toBe(true);
      } finally {
        await wrong.close();
      }
    });

    it('reconnects after the server restarts, re-subscribes, and reports the tip', async () => {
      const { address, script } = taproot();
      await src.watchScript(script);
      const from = events.length;
      await ex.restart(300);
      await waitUntil(() => events.slice(from).find((e) => e.type === 'reconnected'), 'reconnected event', { timeoutMs: 30_000, intervalMs: 50 });
      const after = events.slice(from);
      expect(after.findIndex((e) => e.type === 'disconnected')).toBeLessThan(after.findIndex((e) => e.type === 'reconnected'));
      const tip = await node.rpc<number>('getblockcount');
      await waitUntil(() => events.slice(from).find((e) => e.type === 'tip' && e.tip.height === tip), 'tip after reconnect', { timeoutMs: 15_000, intervalMs: 50 });

      await node.fund(address, 10_000n);
      const scriptHex = bytesToHex(script);
      await waitUntil(() => events.slice(from).find((e) => e.type === 'script' && e.scriptHex === scriptHex), 'script event after reconnect', { timeoutMs: 15_000, intervalMs: 50 });
    });

    it('refuses calls after close and closing twice is harmless', async () => {
      const s = new ElectrumSource(ex.host, ex.port, false, { expectedNetwork: 'regtest' });
      await s.ready();
      await s.close();
      await s.close();
      await expectCode(s.getTip(), 'CLOSED');
      await expectCode(s.ready(), 'CLOSED');
    });
  });
});
