import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  selectCoins, checkFeeRate, dustThreshold, feeFor, txWeight, vsizeOf, P2TR_DUST, type Coin,
} from '../../src/wallet/coinselect.js';
import { isDeaddropError } from '../../src/util/errors.js';

const P2TR = new Uint8Array(34).fill(0x51);
P2TR[0] = 0x51;
P2TR[1] = 0x20;
const P2WPKH = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20));
const P2PKH = Uint8Array.of(0x76, 0xa9, 0x14, ...new Uint8Array(20), 0x88, 0xac);
const P2SH = Uint8Array.of(0xa9, 0x14, ...new Uint8Array(20), 0x87);
const P2WSH = Uint8Array.of(0x00, 0x20, ...new Uint8Array(32));
const OP_RETURN_80 = Uint8Array.of(0x6a, 0x4c, 80, ...new Uint8Array(80));

const coin = (value: bigint): Coin & { id: number } => ({ value, id: Math.random() });

describe('dust and fee-rate rules', () => {
  it('computes Core dust thresholds', () => {
    expect(dustThreshold(P2TR)).toBe(330n);
    expect(dustThreshold(P2WPKH)).toBe(294n);
    expect(dustThreshold(P2PKH)).toBe(546n);
    expect(dustThreshold(P2SH)).toBe(540n);
    expect(dustThreshold(P2WSH)).toBe(330n);
    expect(dustThreshold(OP_RETURN_80)).toBe(0n);
  });

  it('refuses rates below 1 sat/vB, above the cap, and non-numbers', () => {
    expect(() => checkFeeRate(1, 1000)).not.toThrow();
    expect(() => checkFeeRate(1000, 1000)).not.toThrow();
    for (const [rate, code] of [[0.5, 'BAD_INPUT'], [0, 'BAD_INPUT'], [-1, 'BAD_INPUT'], [Number.NaN, 'BAD_INPUT'], [Infinity, 'BAD_INPUT'], [1000.01, 'FEE_TOO_HIGH'], [5000, 'FEE_TOO_HIGH']] as const) {
      try {
        checkFeeRate(rate, 1000);
        expect.unreachable(`rate ${rate}`);
      } catch (err) {
        expect(isDeaddropError(err, code)).toBe(true);
      }
    }
  });

  it('sizes one key-path input paying P2TR + 80-byte OP_RETURN + change at 203 vB', () => {
    expect(vsizeOf(txWeight(1, [83, 34]))).toBe(203);
    expect(vsizeOf(txWeight(1, [83]))).toBe(160);
    expect(feeFor(1.5, 203)).toBe(305n); // ceil(304.5)
  });
});

describe('selectCoins', () => {
  it('uses change when the excess is large', () => {
    const s = selectCoins({ candidates: [coin(100_000n)], outputs: [{ script: P2TR, amount: 50_000n }], feeRate: 2, maxFeeRate: 1000 });
    expect(s.vsize).toBe(vsizeOf(txWeight(1, [34, 34])));
    expect(s.fee).toBe(feeFor(2, s.vsize));
    expect(s.change).toBe(100_000n - 50_000n - s.fee);
  });

  it('finds an exact changeless match with branch and bound', () => {
    const fee = feeFor(2, vsizeOf(txWeight(2, [34])));
    const s = selectCoins({
      candidates: [coin(90_000n), coin(30_000n), coin(20_000n + fee), coin(7_000n)],
      outputs: [{ script: P2TR, amount: 50_000n }], feeRate: 2, maxFeeRate: 1000,
    });
    expect(s.change).toBe(0n);
    expect(s.inputs.map((c) => c.value).sort()).toEqual([30_000n, 20_000n + fee].sort());
  });

  it('folds would-be dust change into the fee', () => {
    const base = feeFor(1, vsizeOf(txWeight(1, [34])));
    const s = selectCoins({ candidates: [coin(10_000n + base + 100n)], outputs: [{ script: P2TR, amount: 10_000n }], feeRate: 1, maxFeeRate: 1000 });
    expect(s.change).toBe(0n);
    expect(s.fee).toBe(base + 100n);
  });

  it('reports insufficient funds with what is needed and available', () => {
    try {
      selectCoins({ candidates: [coin(10_000n), coin(5_000n)], outputs: [{ script: P2TR, amount: 20_000n }], feeRate: 1, maxFeeRate: 1000 });
      expect.unreachable();
    } catch (err) {
      expect(isDeaddropError(err, 'INSUFFICIENT_FUNDS')).toBe(true);
      expect((err as { details: { available: string } }).details.available).toBe('15000');
    }
  });

  it('spends required inputs first (replacements)', () => {
    const req = coin(40_000n);
    const s = selectCoins({ required: [req], candidates: [coin(1_000_000n)], outputs: [{ script: P2TR, amount: 30_000n }], feeRate: 3, maxFeeRate: 1000 });
    expect(s.inputs[0]).toBe(req);
    expect(s.inputs).toHaveLength(1);
  });

  it('honours a minimum absolute fee', () => {
    const s = selectCoins({
      candidates: [coin(100_000n)], outputs: [{ script: P2TR, amount: 10_000n }], feeRate: 1, maxFeeRate: 1000, minFee: () => 5_000n,
    });
    expect(s.fee).toBe(5_000n);
    expect(s.change).toBe(85_000n);
  });

  const outputArb = fc.record({
    script: fc.constantFrom(P2TR, P2WPKH, P2PKH, P2WSH, OP_RETURN_80),
    amount: fc.bigInt({ min: 546n, max: 5_000_000n }),
  }).map((o) => (o.script === OP_RETURN_80 ? { ...o, amount: 0n } : o));

  it('property: balances, no dust change, exact fee with change, cap respected', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 1n, max: 10_000_000n }), { minLength: 0, maxLength: 25 }),
        fc.array(outputArb, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1000, max: 200_000 }).map((m) => m / 1000),
        fc.integer({ min: 1, max: 1000 }),
        (values, outputs, feeRate, capExtra) => {
          const maxFeeRate = feeRate + capExtra / 10;
          const candidates = values.map(coin);
          const amount = outputs.reduce((s, o) => s + o.amount, 0n);
          let s;
          try {
            s = selectCoins({ candidates, outputs, feeRate, maxFeeRate });
          } catch (err) {
            expect(isDeaddropError(err, 'INSUFFICIENT_FUNDS')).toBe(true);
            // Even spending every coin without change cannot pay outputs + fee.
            const all = values.reduce((a, b) => a + b, 0n);
            const minFee = feeFor(feeRate, vsizeOf(txWeight(Math.max(1, values.length), outputs.map((o) => o.script.length))));
            expect(all < amount + minFee || values.length === 0 || values.every((v) => v <= feeFor(feeRate, 58))).toBe(true);
            return;
          }
          const inSum = s.inputs.reduce((a, c) => a + c.value, 0n);
          expect(inSum).toBe(amount + s.change + s.fee);
          expect(s.change === 0n || s.change >= P2TR_DUST).toBe(true);
          const lens = [...outputs.map((o) => o.script.length), ...(s.change > 0n ? [34] : [])];
          expect(s.weight).toBe(txWeight(s.inputs.length, lens));
          expect(s.vsize).toBe(vsizeOf(s.weight));
          expect(s.fee >= feeFor(feeRate, s.vsize)).toBe(true);
          if (s.change > 0n) expect(s.fee).toBe(feeFor(feeRate, s.vsize));
          expect(s.fee <= feeFor(maxFeeRate, s.vsize)).toBe(true);
          expect(new Set(s.inputs).size).toBe(s.inputs.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});
