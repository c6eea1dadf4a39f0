/**
 * The pure fee-bump planner: what may be replaced, and what the replacement pays (BIP125
 * rules 3 and 4, no new unconfirmed inputs), from a stored transaction and the wallet's coins.
 */
import { randomBytes } from 'node:crypto';
import { hex } from '@scure/base';
import { describe, expect, it } from 'vitest';
import { parseTransaction } from '../../src/chain/block.js';
import { planBump, type BumpRequest } from '../../src/wallet/bump.js';
import { CHANGE, RECEIVE, WalletKeys } from '../../src/wallet/keys.js';
import type { TxRow, UtxoRow } from '../../src/wallet/store.js';
import { buildSigned, planTx, type SpendableCoin } from '../../src/wallet/tx.js';
import { isDeaddropError } from '../../src/util/errors.js';

const keys = WalletKeys.fromMnemonic('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'regtest');
const dest = WalletKeys.fromMnemonic('legal winner thank year wave sausage worth useful legal winner thank yellow', 'regtest').taprootKey(RECEIVE, 0).script;

function coin(index: number, value: bigint, height: number | null = 200): UtxoRow {
  return { txid: hex.encode(randomBytes(32)), vout: 0, value, script: keys.taprootKey(RECEIVE, index).script, chain: RECEIVE, index, height, coinbase: false, spentBy: null };
}

/** A pending wallet tx paying 60k to `dest` from `inputs` at 2 sat/vB, with its store rows. */
function pending(inputs: UtxoRow[]) {
  const plan = planTx({ candidates: inputs, required: inputs, outputs: [{ script: dest, amount: 60_000n }], feeRate: 2, maxFeeRate: 1000, change: keys.taprootKey(CHANGE, 0), changePosition: 'last' });
  const built = buildSigned(plan, keys);
  const spent = new Map(inputs.map((u) => [`${u.txid}:${u.vout}`, { ...u, spentBy: built.txid }]));
  const row: TxRow = {
    txid: built.txid, raw: built.raw, height: null, blockHash: null, status: 'pending', received: 0n, sent: 0n, fee: built.fee,
    own: true, changeVout: built.changeIndex, replacedBy: null, coinbase: false, firstSeen: 0,
  };
  return { built, row, spent };
}

function request(p: ReturnType<typeof pending>, over: Partial<BumpRequest> = {}): BumpRequest {
  return {
    txid: p.built.txid, row: p.row, feeRate: 10, maxFeeRate: 1000, lockTime: 0,
    utxo: (txid, vout) => p.spent.get(`${txid}:${vout}`),
    outputsOf: [], candidates: [],
    ownKey: (script) => {
      for (const chain of [RECEIVE, CHANGE] as const) for (let i = 0; i < 5; i++) if (hex.encode(keys.taprootKey(chain, i).script) === hex.encode(script)) return keys.taprootKey(chain, i);
      return undefined;
    },
    freshChange: keys.taprootKey(CHANGE, 1),
    ...over,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isDeaddropError(err) ? err.code : `other: ${(err as Error).message}`;
  }
  return undefined;
}

describe('planBump', () => {
  it('keeps the recipients and inputs, pays the new rate and at least old fee + 1 sat/vB, from the change', () => {
    const p = pending([coin(0, 100_000n)]);
    const plan = planBump(request(p));
    const oldTx = parseTransaction(p.built.raw);
    expect(plan.inputs.map((c) => `${c.txid}:${c.vout}`)).toEqual(oldTx.inputs.map((i) => `${i.prevTxidHex}:${i.vout}`));
    expect(plan.outputs.some((o) => hex.encode(o.script) === hex.encode(dest) && o.amount === 60_000n)).toBe(true);
    expect(plan.fee).toBeGreaterThanOrEqual(p.built.fee + BigInt(plan.vsize));
    expect(Number(plan.fee) / plan.vsize).toBeGreaterThanOrEqual(10);
    // The old change key is reused, not a fresh one.
    expect(plan.change?.index).toBe(0);
    expect(plan.changeIndex).toBeGreaterThanOrEqual(0);
  });

  it('adds a confirmed coin when the change cannot cover the new fee', () => {
    const p = pending([coin(0, 61_000n)]);
    const extra: SpendableCoin = coin(1, 50_000n);
    const plan = planBump(request(p, { feeRate: 20, candidates: [extra] }));
    expect(plan.inputs).toHaveLength(2);
    expect(plan.inputs.some((c) => c.txid === extra.txid)).toBe(true);
    expect(codeOf(() => planBump(request(p, { feeRate: 20 })))).toBe('INSUFFICIENT_FUNDS');
  });

  it('refuses what cannot be replaced here', () => {
    const p = pending([coin(0, 100_000n)]);
    expect(codeOf(() => planBump(request(p, { row: undefined })))).toBe('NOT_FOUND');
    expect(codeOf(() => planBump(request(p, { row: { ...p.row, height: 300, status: 'confirmed' } })))).toBe('CONFLICT');
    expect(codeOf(() => planBump(request(p, { row: { ...p.row, status: 'replaced' } })))).toBe('CONFLICT');
    expect(codeOf(() => planBump(request(p, { utxo: () => undefined })))).toBe('BAD_INPUT');
    const child = { ...coin(2, 1n), spentBy: 'ff'.repeat(32) };
    expect(codeOf(() => planBump(request(p, { outputsOf: [child] })))).toBe('CONFLICT');
    expect(codeOf(() => planBump(request(p, { feeRate: 2 })))).toBe('BAD_INPUT');
    expect(codeOf(() => planBump(request(p, { feeRate: 5000 })))).not.toBeUndefined();
  });
});
