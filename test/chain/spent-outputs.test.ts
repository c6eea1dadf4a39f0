/** Decoding Core's REST `/rest/spenttxouts/<hash>.bin` (src/chain/spent-outputs.ts). */
import { describe, expect, it } from 'vitest';
import { spentOutputsAt } from '../../src/chain/spent-outputs.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

// Bitcoin Core 31 (regtest), a block with its coinbase and one tx spending a 50 BTC P2WPKH coinbase output.
const CORE_ANSWER = '02000100f2052a0100000016001477ec271052e56c0222bf28d63b828380353292e8';

describe('spentOutputsAt', () => {
  it('reads the prevouts of the transactions asked for, by position', () => {
    const m = spentOutputsAt(fromHex(CORE_ANSWER), 2, new Set([0, 1]));
    expect(m.get(0)).toEqual([]);
    expect(m.get(1)!.map((p) => ({ value: p.value, script: toHex(p.script) }))).toEqual([
      { value: 5_000_000_000n, script: '001477ec271052e56c0222bf28d63b828380353292e8' },
    ]);
    expect(spentOutputsAt(fromHex(CORE_ANSWER), 2, new Set([1])).has(0)).toBe(false);
  });

  it('copies the scripts out of the answer', () => {
    const raw = fromHex(CORE_ANSWER);
    const script = spentOutputsAt(raw, 2, new Set([1])).get(1)![0]!.script;
    raw.fill(0);
    expect(toHex(script)).toBe('001477ec271052e56c0222bf28d63b828380353292e8');
  });

  it('refuses an answer that does not fit the block or is cut short', () => {
    expect(() => spentOutputsAt(fromHex(CORE_ANSWER), 3, new Set([1]))).toThrow(RangeError);
    expect(() => spentOutputsAt(fromHex(CORE_ANSWER).subarray(0, 20), 2, new Set([1]))).toThrow(RangeError);
    expect(() => spentOutputsAt(fromHex(CORE_ANSWER + '00'), 2, new Set([1]))).toThrow(/trailing/);
    expect(() => spentOutputsAt(new Uint8Array(0), 0, new Set())).toThrow(RangeError);
  });
});
