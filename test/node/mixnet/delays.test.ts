import { describe, expect, it } from 'vitest';
import { exponentialDelayMs, routeDelaysMs } from '../../../src/node/mixnet/delays.js';

describe('Poisson mixing delays', () => {
  it('are exponential with the configured mean', () => {
    const n = 20_000;
    const xs = Array.from({ length: n }, () => exponentialDelayMs(200));
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    expect(mean).toBeGreaterThan(190);
    expect(mean).toBeLessThan(210);
    // Memoryless shape: P(X > mean) = 1/e for an exponential distribution.
    const above = xs.filter((x) => x > 200).length / n;
    expect(above).toBeGreaterThan(0.35);
    expect(above).toBeLessThan(0.385);
    expect(xs.every((x) => Number.isInteger(x) && x >= 0)).toBe(true);
  });

  it('map a draw u to round(-mean ln u), with 0 for a zero mean and a bad mean refused', () => {
    expect(exponentialDelayMs(100, () => Math.exp(-1))).toBe(100);
    expect(exponentialDelayMs(100, () => 1)).toBe(0);
    expect(exponentialDelayMs(1e12, () => 1e-9)).toBe(0xffffffff);
    expect(exponentialDelayMs(0)).toBe(0);
    expect(() => exponentialDelayMs(-1)).toThrow(RangeError);
    expect(() => exponentialDelayMs(Number.NaN)).toThrow(RangeError);
  });

  it('leave the providers at both ends of a route without delay', () => {
    const d = routeDelaysMs(5, 50, () => Math.exp(-2));
    expect(d).toEqual([0, 100, 100, 100, 0]);
  });
});
