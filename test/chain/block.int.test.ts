/**
 * The block parser and candidate scan on blocks mined by each regtest node (btcd, and
 * Bitcoin Core when available): txids and hash must match what the node reports, and the scan
 * must find exactly the data outputs we sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Block as BjsBlock } from 'bitcoinjs-lib';
import { parseBlock } from '../../src/chain/block.js';
import { scanBlockForCandidates } from '../../src/chain/op-return-scan.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

describe.each(chainNodes())('regtest blocks from %s', (kind) => {
  useNodeKind(kind);

  let node: RegtestNode;

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
  });

  afterAll(async () => {
    await node?.stop();
  });

  const dataScript = (data: Uint8Array): Uint8Array => Uint8Array.from([0x6a, data.length, ...data]);

  describe('regtest blocks', () => {
    it('parse to the node’s hash and txids, and the scan finds our data outputs', async () => {
      const long = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 1) & 0xff);
      const short = Uint8Array.from({ length: 20 }, (_, i) => 0x80 | i);
      const payTo = node.fundingAddress;
      const dropTxid = await node.send([
        { address: payTo, sats: 50_000n },
        { script: dataScript(long), sats: 0n },
      ]);
      const shortTxid = await node.send([{ script: dataScript(short), sats: 0n }, { address: payTo, sats: 20_000n }]);
      const plainTxid = await node.fund(payTo, 30_000n);
      const [hash] = await node.mine(1);

      const hex = await node.rpc<string>('getblock', [hash, 0]);
      const verbose = await node.rpc<{ tx: string[]; hash: string }>('getblock', [hash, 1]);
      const raw = fromHex(hex);
      const block = parseBlock(raw);
      expect(block.header.hash).toBe(hash);
      expect(block.txs.map((tx) => tx.txid)).toEqual(verbose.tx);
      expect(verbose.tx).toEqual(expect.arrayContaining([dropTxid, shortTxid, plainTxid]));
      expect(BjsBlock.fromBuffer(raw).checkTxRoots()).toBe(true);
      expect(block.txs[0]!.isCoinbase).toBe(true);

      const all = scanBlockForCandidates(raw);
      expect(all.map((c) => [c.tx.txid, c.outputs.map((o) => toHex(o.data))])).toEqual(
        expect.arrayContaining([
          [dropTxid, [toHex(long)]],
          [shortTxid, [toHex(short)]],
        ]),
      );
      expect(all).toHaveLength(2);

      const longOnly = scanBlockForCandidates(raw, { minDataLength: 43 });
      expect(longOnly.map((c) => c.tx.txid)).toEqual([dropTxid]);
      const drop = longOnly[0]!;
      // Inputs and the data output's index are what the node reports.
      const decoded = await node.rpc<{ vin: { txid: string; vout: number }[]; vout: { n: number; scriptPubKey: { hex: string } }[] }>(
        'getrawtransaction',
        [dropTxid, 1],
      );
      expect(drop.inputs.map((i) => [i.prevTxidHex, i.vout])).toEqual(decoded.vin.map((v) => [v.txid, v.vout]));
      const nulldata = decoded.vout.find((o) => o.scriptPubKey.hex === toHex(dataScript(long)));
      expect(drop.outputs.map((o) => o.vout)).toEqual([nulldata?.n]);
    });
  });
});
