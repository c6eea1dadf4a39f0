/**
 * Each node's relay policy, as src/chain/policy.ts describes it, checked against the running node
 * on both sides of every limit: the largest OP_RETURN data it relays and one byte more, how many
 * OP_RETURN outputs, the minimum relay fee for a transaction without priority, and the longest
 * chain of unconfirmed transactions. Each verdict is the node's own `sendrawtransaction`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Script } from '@scure/btc-signer';
import { policyFor } from '../../src/chain/policy.js';
import type { BroadcastResult } from '../../src/chain/types.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { chainNodes } from '../support/nodes.js';

/** A regtest address nobody here holds the key of (BIP173 test vector program). */
const STRANGER = 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080';
/** Standard transaction overhead around one OP_RETURN output: the data that fits under the standard weight. */
const FITS_IN_STANDARD_TX = 99_000;

const opReturn = (bytes: number, fill = 7): Uint8Array => Script.encode(['RETURN', new Uint8Array(bytes).fill(fill)]);

describe.each(chainNodes())('relay policy of %s', (kind) => {
  const policy = policyFor(kind);
  let node: RegtestNode;

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
  });

  afterAll(async () => {
    await node?.stop();
  });

  async function send(outputs: { script: Uint8Array; sats: bigint }[] | { address: string; sats: bigint }[], opts: { feeRate?: number; inputs?: { txid: string; vout: number }[] } = {}): Promise<BroadcastResult & { vsize?: number; fee?: bigint }> {
    const tx = await node.buildTx(outputs, opts);
    const res = await node.dialect.sendRawTransaction(node.client, tx.hex);
    return { ...res, fee: tx.fee };
  }

  it(`relays OP_RETURN data up to ${policy.maxOpReturnData} bytes (within a standard transaction) and refuses one byte more`, async () => {
    const largest = Math.min(policy.maxOpReturnData, FITS_IN_STANDARD_TX);
    const ok = await send([{ script: opReturn(largest), sats: 0n }], { feeRate: 1 });
    expect(ok.accepted, ok.accepted ? '' : ok.reason).toBe(true);
    const over = await send([{ script: opReturn(policy.maxOpReturnData + 1, 8), sats: 0n }], { feeRate: 1 });
    expect(over.accepted).toBe(false);
    await node.mine(1);
  });

  it(`relays ${Number.isFinite(policy.maxOpReturnOutputs) ? `at most ${policy.maxOpReturnOutputs}` : 'several'} OP_RETURN output(s) per transaction`, async () => {
    const allowed = Number.isFinite(policy.maxOpReturnOutputs) ? policy.maxOpReturnOutputs : 3;
    const ok = await send(Array.from({ length: allowed }, (_, i) => ({ script: opReturn(40, i), sats: 0n })));
    expect(ok.accepted, ok.accepted ? '' : ok.reason).toBe(true);
    if (Number.isFinite(policy.maxOpReturnOutputs)) {
      const over = await send(Array.from({ length: allowed + 1 }, (_, i) => ({ script: opReturn(40, 10 + i), sats: 0n })));
      expect(over.accepted).toBe(false);
    }
    await node.mine(1);
  });

  it(`relays a transaction without priority at ${policy.minRelayFeeSatPerKvB} sat/kvB and refuses one below`, async () => {
    // An unconfirmed parent gives the child no priority (btcd relays old coins for free otherwise).
    const parent = await node.fund(node.fundingAddress, 1_000_000n);
    const spend = (feeRate: number) => send([{ address: STRANGER, sats: 10_000n }], { feeRate, inputs: [{ txid: parent, vout: 0 }] });
    const rate = policy.minRelayFeeSatPerKvB / 1000;
    const below = await spend(rate * 0.85);
    expect(below.accepted).toBe(false);
    const at = await spend(rate * 1.05); // the harness wallet's size estimate is within 5% of the real vsize
    expect(at.accepted, at.accepted ? '' : at.reason).toBe(true);
    await node.mine(1);
  });

  // A chain of unconfirmed transactions is one cluster: its longest length is the cluster limit.
  const chainLimit = Number.isFinite(policy.unconfirmed.maxClusterCount) ? policy.unconfirmed.maxClusterCount : undefined;
  it(`takes a chain of unconfirmed transactions ${chainLimit === undefined ? 'longer than Core\'s cluster limit' : `up to ${chainLimit} long, and refuses one more`}`, async () => {
    const limit = chainLimit;
    const length = limit ?? policyFor('bitcoind').unconfirmed.maxClusterCount + 1;
    let prev: string | undefined;
    for (let i = 0; i < length; i++) {
      const res = await send([{ address: STRANGER, sats: 1_000n }], prev ? { inputs: [{ txid: prev, vout: 1 }] } : {});
      expect(res.accepted, `transaction ${i + 1} of the chain: ${res.accepted ? '' : res.reason}`).toBe(true);
      if (!res.accepted) return;
      prev = res.txid;
    }
    if (limit !== undefined) {
      const over = await send([{ address: STRANGER, sats: 1_000n }], { inputs: [{ txid: prev as string, vout: 1 }] });
      expect(over.accepted).toBe(false);
    }
    await node.mine(1);
  });
});
