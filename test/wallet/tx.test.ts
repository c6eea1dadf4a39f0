import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Transaction, SigHash } from '@scure/btc-signer';
import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from 'node:crypto';
import { hex } from '@scure/base';
import { WalletKeys, RECEIVE, CHANGE } from '../../src/wallet/keys.js';
import {
  planTx, buildSigned, dataOutput, validateOutputs, addressToScript, RBF_SEQUENCE, type SpendableCoin,
} from '../../src/wallet/tx.js';
import { feeFor } from '../../src/wallet/coinselect.js';
import { parseTransaction } from '../../src/chain/block.js';
import { isDeaddropError } from '../../src/util/errors.js';

const ABANDON = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const keys = WalletKeys.fromMnemonic(ABANDON, 'regtest');
const mainKeys = WalletKeys.fromMnemonic(ABANDON, 'mainnet');

function coinAt(index: number, value: bigint, chain: 0 | 1 = RECEIVE): SpendableCoin {
  return { txid: hex.encode(randomBytes(32)), vout: index % 3, value, script: keys.taprootKey(chain, index).script, chain, index };
}

/** Verifies every key-path signature against the input's output key (proves the BIP86 tweak). */
function verifySignatures(raw: Uint8Array, coins: readonly SpendableCoin[]): void {
  const tx = Transaction.fromRaw(raw, { allowUnknownOutputs: true });
  const scripts = coins.map((c) => c.script);
  const amounts = coins.map((c) => c.value);
  for (let i = 0; i < tx.inputsLength; i++) {
    const witness = tx.getInput(i).finalScriptWitness!;
    expect(witness).toHaveLength(1);
    expect(witness[0]).toHaveLength(64);
    const msg = tx.preimageWitnessV1(i, scripts, SigHash.DEFAULT, amounts);
    expect(schnorr.verify(witness[0]!, msg, coins[i]!.script.slice(2))).toBe(true);
  }
}

describe('building transactions', () => {
  it('builds a v2 RBF tx whose vsize and fee are exactly as planned', () => {
    const coins = [coinAt(0, 70_000n), coinAt(1, 40_000n)];
    const dest = mainKeys.taprootKey(RECEIVE, 9).script; // any P2TR script
    const plan = planTx({
      candidates: coins, outputs: [{ script: dest, amount: 100_000n }], feeRate: 3, maxFeeRate: 1000,
      change: keys.taprootKey(CHANGE, 0), lockTime: 150,
    });
    const built = buildSigned(plan, keys);
    const parsed = parseTransaction(built.raw);
    expect(parsed.version).toBe(2);
    expect(parsed.locktime).toBe(150);
    expect(parsed.inputs.every((i) => i.sequence === RBF_SEQUENCE)).toBe(true);
    expect(parsed.vsize).toBe(built.vsize);
    expect(built.vsize).toBe(plan.vsize);
    expect(built.txid).toBe(parsed.txid);
    const outSum = parsed.outputs.reduce((s, o) => s + o.value, 0n);
    expect(110_000n - outSum).toBe(built.fee);
    if (built.changeIndex >= 0) expect(built.fee).toBe(feeFor(3, built.vsize));
    verifySignatures(built.raw, plan.inputs);
  });

  it('carries an 80-byte OP_RETURN (about 203 vB with change)', () => {
    const data = randomBytes(80);
    const coins = [coinAt(2, 100_000n)];
    const plan = planTx({ candidates: coins, outputs: [dataOutput(data)], feeRate: 1, maxFeeRate: 1000, change: keys.taprootKey(CHANGE, 1) });
    const built = buildSigned(plan, keys);
    expect(built.vsize).toBe(203);
    expect(built.fee).toBe(203n);
    const parsed = parseTransaction(built.raw);
    const op = parsed.outputs.find((o) => o.script[0] === 0x6a)!;
    expect(op.value).toBe(0n);
    expect(hex.encode(op.script.slice(3))).toBe(hex.encode(data));
    verifySignatures(built.raw, plan.inputs);
  });

  it('property: signed vsize equals the plan and fee = ceil(rate * vsize) when there is change', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 5_000n, max: 3_000_000n }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1000, max: 40_000 }).map((m) => m / 1000),
        fc.boolean(),
        (values, pct, feeRate, withData) => {
          const coins = values.map((v, i) => coinAt(i, v));
          const total = values.reduce((a, b) => a + b, 0n);
          const amount = (total * BigInt(pct)) / 100n + 330n;
          const outputs = [{ script: mainKeys.taprootKey(RECEIVE, 1).script, amount }, ...(withData ? [dataOutput(randomBytes(40))] : [])];
          let plan;
          try {
            plan = planTx({ candidates: coins, outputs, feeRate, maxFeeRate: 1000, change: keys.taprootKey(CHANGE, 2) });
          } catch (err) {
            expect(isDeaddropError(err, 'INSUFFICIENT_FUNDS')).toBe(true);
            return;
          }
          const built = buildSigned(plan, keys);
          const tx = Transaction.fromRaw(built.raw, { allowUnknownOutputs: true });
          expect(tx.vsize).toBe(plan.vsize);
          expect(parseTransaction(built.raw).vsize).toBe(plan.vsize);
          if (plan.changeIndex >= 0) expect(built.fee).toBe(feeFor(feeRate, built.vsize));
          else expect(built.fee >= feeFor(feeRate, built.vsize)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('output and address checks', () => {
  const p2tr = mainKeys.taprootKey(RECEIVE, 0).script;
  const expectCode = (fn: () => unknown, code: string): void => {
    try {
      fn();
      expect.unreachable();
    } catch (err) {
      expect(isDeaddropError(err, code as never)).toBe(true);
    }
  };

  it('rejects dust, oversized or multiple OP_RETURNs and valued OP_RETURNs', () => {
    expectCode(() => validateOutputs([{ script: p2tr, amount: 329n }]), 'BAD_INPUT');
    expect(() => validateOutputs([{ script: p2tr, amount: 330n }])).not.toThrow();
    expectCode(() => dataOutput(new Uint8Array(81)), 'BAD_INPUT');
    expect(dataOutput(new Uint8Array(81), { maxBytes: 100 }).script.length).toBe(84);
    expectCode(() => validateOutputs([dataOutput(new Uint8Array(81), { maxBytes: 100 })]), 'BAD_INPUT');
    expect(() => validateOutputs([dataOutput(new Uint8Array(81), { maxBytes: 100 })], { allowNonStandardData: true })).not.toThrow();
    expectCode(() => validateOutputs([dataOutput(new Uint8Array(1)), dataOutput(new Uint8Array(2))]), 'BAD_INPUT');
    expectCode(() => validateOutputs([{ script: dataOutput(new Uint8Array(4)).script, amount: 1n }]), 'BAD_INPUT');
    expectCode(() => validateOutputs([]), 'BAD_INPUT');
  });

  it('decodes addresses of the wallet network only', () => {
    const regAddr = keys.taprootKey(RECEIVE, 0).address;
    expect(addressToScript(regAddr, 'regtest')).toEqual(keys.taprootKey(RECEIVE, 0).script);
    expect(addressToScript('bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', 'regtest')).toHaveLength(22);
    try {
      addressToScript(mainKeys.taprootKey(RECEIVE, 0).address, 'regtest');
      expect.unreachable();
    } catch (err) {
      expect(isDeaddropError(err, 'BAD_ADDRESS')).toBe(true);
      expect((err as Error).message).toContain('mainnet');
    }
    for (const bad of ['', 'hello', 'bcrt1pzzzz', regAddr.slice(0, -1) + (regAddr.endsWith('q') ? 'p' : 'q'), 'x'.repeat(500)]) {
      expectCode(() => addressToScript(bad, 'regtest'), 'BAD_ADDRESS');
    }
    expectCode(() => addressToScript('sprt1qqw6vczcfpdh5nf5y2ky99kmqae0tr30hgdfg88parz50cp80wd2wqqll5497pp2gcr4cmq0v5nv07x8u5jswmf8ap2q0kxmx8628mkqanyu63ck8', 'regtest'), 'BAD_ADDRESS');
  });
});
