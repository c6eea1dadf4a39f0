/**
 * src/util/secp.ts: the native, WASM and noble backends keep one contract (same results, null for
 * every kind of bad bytes, TypeError only for non-bytes). Lives here because the dead-drop
 * work owns the module; it mirrors src/util/secp.ts.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { availableSecpBackends, CURVE_ORDER, nativeSecp, nobleSecp, scalar, secp, secpBackend, selfTest, wasmSecp, type Secp } from '../../src/util/secp.js';

const hex = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('hex'));
const sc = (n: bigint): Uint8Array => scalar.fromBigInt(n);
const G = nobleSecp.pointFromScalar(sc(1n)) as Uint8Array;
/** The 65-byte SEC1 form, which both backends must accept as input. */
function uncompressed(p: Uint8Array): Uint8Array {
  return secp256k1.Point.fromBytes(p).toBytes(false);
}

const backends: Secp[] = [nativeSecp, wasmSecp, nobleSecp].filter((b): b is Secp => b !== null);
/** The libsecp256k1 backends, each checked against noble. */
const fast: Secp[] = backends.filter((b) => b !== nobleSecp);
const scalarArb = fc.bigInt({ min: 1n, max: CURVE_ORDER - 1n });

it('uses the native backend by default here, and every backend passes the self-test', () => {
  // Both libsecp256k1 builds ship with the package here (a prebuilt addon for linux-x64, WASM).
  expect(nativeSecp).not.toBeNull();
  expect(wasmSecp).not.toBeNull();
  expect(availableSecpBackends).toEqual(['native', 'tiny-secp256k1', 'noble']);
  expect(secp.name).toBe(process.env['DEADDROP_SECP'] || 'native');
  for (const b of backends) expect(selfTest(b)).toBe(true);
  expect(secpBackend('noble')).toBe(nobleSecp);
  expect(secpBackend('native')).toBe(nativeSecp);
});

describe.each(fast.map((b) => [b.name, b] as const))('%s and noble agree', (_name, wasm) => {
  it('on multiply, add, tweak, negate and lift_x for random scalars', () => {
    fc.assert(
      fc.property(scalarArb, scalarArb, (a, b) => {
        const A = nobleSecp.pointFromScalar(sc(a)) as Uint8Array;
        const B = nobleSecp.pointFromScalar(sc(b)) as Uint8Array;
        expect(hex(wasm.pointFromScalar(sc(a)))).toBe(hex(A));
        expect(hex(wasm.sharedSecretPoint(sc(b), A))).toBe(hex(nobleSecp.sharedSecretPoint(sc(b), A)));
        expect(hex(wasm.pointMultiply(uncompressed(A), sc(b)))).toBe(hex(nobleSecp.pointMultiply(A, sc(b))));
        expect(hex(wasm.pointAdd(A, B))).toBe(hex(nobleSecp.pointAdd(A, B)));
        expect(hex(wasm.pointAddScalar(A, sc(b)))).toBe(hex(nobleSecp.pointAddScalar(A, sc(b))));
        expect(hex(wasm.pointNegate(A))).toBe(hex(nobleSecp.pointNegate(A)));
        expect(hex(wasm.liftX(A.subarray(1)))).toBe(hex(nobleSecp.liftX(A.subarray(1))));
        // a·(b·G) = (a·b)·G
        expect(hex(wasm.pointMultiply(B, sc(a)))).toBe(hex(nobleSecp.pointFromScalar(scalar.mul(sc(a), sc(b)) as Uint8Array)));
      }),
      { numRuns: 40 },
    );
  });

  it('on random 33-byte strings: same point or both null, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 33, maxLength: 33 }), (p) => {
        for (const b of backends) expect(() => b.isPoint(p)).not.toThrow();
        const r = [wasm, nobleSecp].map((b) => hex(b.pointAddScalar(p, sc(1n))));
        expect(r[0]).toBe(r[1]);
      }),
      { numRuns: 200 },
    );
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('%s rejects bad bytes with null', (_n, b) => {
  const offCurve = Uint8Array.from([0x02, ...sc(5n)]); // x = 5 has no y
  const badPrefix = Uint8Array.from([0x04, ...G.subarray(1)]);
  const wrongY = uncompressed(G);
  wrongY[64] = (wrongY[64] as number) ^ 1;
  const badPoints = [new Uint8Array(0), new Uint8Array(32), new Uint8Array(33), offCurve, badPrefix, wrongY, new Uint8Array(66)];
  const badScalars = [new Uint8Array(31), new Uint8Array(32), sc(0n), Uint8Array.from(Buffer.from(CURVE_ORDER.toString(16), 'hex')), new Uint8Array(32).fill(0xff)];

  it('points', () => {
    for (const p of badPoints) {
      expect(b.isPoint(p)).toBe(false);
      expect(b.pointMultiply(p, sc(3n))).toBeNull();
      expect(b.sharedSecretPoint(sc(3n), p)).toBeNull();
      expect(b.pointAdd(p, G)).toBeNull();
      expect(b.pointAdd(G, p)).toBeNull();
      expect(b.pointAddScalar(p, sc(3n))).toBeNull();
      expect(b.pointNegate(p)).toBeNull();
    }
    expect(b.liftX(sc(5n))).toBeNull();
    expect(b.liftX(new Uint8Array(33))).toBeNull();
  });

  it('scalars', () => {
    for (const s of badScalars) {
      expect(b.pointMultiply(G, s)).toBeNull();
      expect(b.pointFromScalar(s)).toBeNull();
    }
    // A tweak may be zero, but not n or more.
    expect(hex(b.pointAddScalar(G, sc(0n)))).toBe(hex(G));
    expect(b.pointAddScalar(G, badScalars[3] as Uint8Array)).toBeNull();
  });

  it('infinity', () => {
    expect(b.pointAdd(G, b.pointNegate(G) as Uint8Array)).toBeNull();
    expect(b.pointAddScalar(G, sc(CURVE_ORDER - 1n))).toBeNull();
  });

  it('throws TypeError only for non-bytes', () => {
    expect(() => b.pointMultiply('02' as unknown as Uint8Array, sc(1n))).toThrow(TypeError);
    expect(() => b.liftX([1, 2] as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('scalar helpers', () => {
  it('add, mul and negate mod n', () => {
    fc.assert(
      fc.property(scalarArb, scalarArb, (a, b) => {
        expect(scalar.toBigInt(scalar.add(sc(a), sc(b)) ?? sc(0n))).toBe((a + b) % CURVE_ORDER);
        expect(scalar.toBigInt(scalar.mul(sc(a), sc(b)) as Uint8Array)).toBe((a * b) % CURVE_ORDER);
        expect(scalar.toBigInt(scalar.negate(sc(a)) as Uint8Array)).toBe(CURVE_ORDER - a);
      }),
    );
    expect(scalar.add(sc(1n), sc(CURVE_ORDER - 1n))).toBeNull();
    expect(scalar.isValid(sc(0n))).toBe(false);
    expect(scalar.toBigInt(new Uint8Array(31))).toBeNull();
  });
});
