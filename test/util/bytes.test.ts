import { describe, expect, it } from 'vitest';
import { concatBytes, equalBytes, fromHex, toHex } from '../../src/util/bytes.js';

describe('bytes', () => {
  it('round-trips hex', () => {
    expect(toHex(Uint8Array.of(0, 1, 0xab, 0xff))).toBe('0001abff');
    expect(fromHex('0001ABff')).toEqual(Uint8Array.of(0, 1, 0xab, 0xff));
  });
  it('refuses odd-length or non-hex input', () => {
    expect(() => fromHex('abc')).toThrow(TypeError);
    expect(() => fromHex('zz')).toThrow(TypeError);
  });
  it('compares and concatenates', () => {
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(equalBytes(Uint8Array.of(1), Uint8Array.of(1, 2))).toBe(false);
    expect(concatBytes(Uint8Array.of(1), Uint8Array.of(), Uint8Array.of(2, 3))).toEqual(Uint8Array.of(1, 2, 3));
  });
});
