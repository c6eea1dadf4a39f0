/** Strict parsers for CLI arguments: every bad value is a one-line BAD_INPUT error. */
import { DeaddropError } from '../util/errors.js';

const MAX_SATS = 21_000_000n * 100_000_000n;

export function parseSats(value: string, name: string): bigint {
  if (!/^\d{1,16}$/.test(value)) throw DeaddropError.badInput(`${name} must be a whole number of satoshis, got ${JSON.stringify(value)}`);
  const sats = BigInt(value);
  if (sats <= 0n || sats > MAX_SATS) throw DeaddropError.badInput(`${name} must be between 1 and ${MAX_SATS} sat`);
  return sats;
}

export function parseCount(value: string, name: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(value)) throw DeaddropError.badInput(`${name} must be a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min || n > max) throw DeaddropError.badInput(`${name} must be between ${min} and ${max}`);
  return n;
}

/** A fee rate in sat/vB (decimals allowed, e.g. 1.5). */
export function parseFeeRate(value: string, name = '--fee-rate'): number {
  if (!/^\d{1,7}(\.\d{1,3})?$/.test(value)) throw DeaddropError.badInput(`${name} must be a number of sat/vB, got ${JSON.stringify(value)}`);
  const rate = Number(value);
  if (rate <= 0) throw DeaddropError.badInput(`${name} must be positive`);
  return rate;
}

/** commander's accumulator for a repeatable option: `--x a --x b` gives `['a', 'b']`. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];
