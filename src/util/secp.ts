/**
 * The secp256k1 point arithmetic deaddrop needs (ECDH, point add, tweak, x-only lifting), behind
 * one small interface with three interchangeable backends, chosen once at start-up in this order:
 *
 * - `native`: libsecp256k1 compiled into a Node addon (the `secp256k1` package, which ships a
 *   prebuilt binary for linux-x64 and builds from its vendored library elsewhere). Several times
 *   faster than WASM for the variable-base multiplication the dead-drop scanner does once per
 *   candidate transaction. Used when the addon loads and passes the self-test.
 * - `tiny-secp256k1`: libsecp256k1 compiled to WASM. The first fallback: no native code needed.
 * - `@noble/curves`: pure JS. The last fallback, and the reference the others are tested against.
 *
 * Contract (identical for both backends, checked by test/deaddrop/secp.test.ts):
 * - Points are SEC1 byte strings: 33-byte compressed or 65-byte uncompressed on input,
 *   always 33-byte compressed on output. x-only keys go through {@link Secp.liftX} first.
 * - Scalars are 32-byte big-endian strings. A multiplier must be in [1, n); a tweak in [0, n).
 * - Anything a stranger can put on chain (wrong length, not on the curve, scalar out of range,
 *   result at infinity) makes the function return `null`. Nothing here throws for bad bytes, so
 *   a scanner needs no try/catch. Only a non-Uint8Array argument (a programming error) throws
 *   a TypeError.
 *
 * Scalar arithmetic mod n is cheap and backend independent: see {@link scalar}.
 * Set `DEADDROP_SECP=noble` (or `tiny-secp256k1`, `native`) in the environment to force a backend.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { fromHex, toHex } from './bytes.js';
import { createRequire } from 'node:module';

/** The order n of the secp256k1 group. */
export const CURVE_ORDER: bigint = secp256k1.Point.Fn.ORDER;

/** Names of the available backends. */
export type SecpBackendName = 'native' | 'tiny-secp256k1' | 'noble';

/** Point operations over secp256k1. All results are 33-byte compressed points or null. */
export interface Secp {
  readonly name: SecpBackendName;
  /** ECDH: `scalar·point`. null if either is invalid. Alias of {@link Secp.pointMultiply}. */
  sharedSecretPoint(scalar: Uint8Array, point: Uint8Array): Uint8Array | null;
  /** `scalar·point`, scalar in [1, n). */
  pointMultiply(point: Uint8Array, scalar: Uint8Array): Uint8Array | null;
  /** `scalar·G`, scalar in [1, n). */
  pointFromScalar(scalar: Uint8Array): Uint8Array | null;
  /** `a + b`; null at infinity. */
  pointAdd(a: Uint8Array, b: Uint8Array): Uint8Array | null;
  /** `point + tweak·G`, tweak in [0, n); null at infinity. */
  pointAddScalar(point: Uint8Array, tweak: Uint8Array): Uint8Array | null;
  /** `-point`. */
  pointNegate(point: Uint8Array): Uint8Array | null;
  /** True for a valid 33- or 65-byte SEC1 encoding of a point on the curve. */
  isPoint(point: Uint8Array): boolean;
  /** BIP340 lift_x: the even-y point with this 32-byte x coordinate, as 0x02 || x. */
  liftX(x: Uint8Array): Uint8Array | null;
}

function assertBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array, got ${typeof value}`);
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt('0x' + toHex(bytes));
}

function fromBigInt(n: bigint): Uint8Array {
  return fromHex(n.toString(16).padStart(64, '0'));
}

/** Scalar arithmetic mod n on 32-byte big-endian strings (pure bigint, backend independent). */
export const scalar = {
  /** The scalar as a bigint, or null unless it is 32 bytes and in [0, n). */
  toBigInt(bytes: Uint8Array): bigint | null {
    assertBytes(bytes, 'scalar');
    if (bytes.length !== 32) return null;
    const n = toBigInt(bytes);
    return n < CURVE_ORDER ? n : null;
  },
  /** 32-byte big-endian encoding of `n mod n`. */
  fromBigInt(n: bigint): Uint8Array {
    return fromBigInt(((n % CURVE_ORDER) + CURVE_ORDER) % CURVE_ORDER);
  },
  /** True for a 32-byte scalar in [1, n): a valid private key. */
  isValid(bytes: Uint8Array): boolean {
    const n = scalar.toBigInt(bytes);
    return n !== null && n !== 0n;
  },
  /** `(a + b) mod n`; null if either is out of range or the sum is zero. */
  add(a: Uint8Array, b: Uint8Array): Uint8Array | null {
    const x = scalar.toBigInt(a);
    const y = scalar.toBigInt(b);
    if (x === null || y === null) return null;
    const s = (x + y) % CURVE_ORDER;
    return s === 0n ? null : fromBigInt(s);
  },
  /** `(a · b) mod n`; null if either is out of range or the product is zero. */
  mul(a: Uint8Array, b: Uint8Array): Uint8Array | null {
    const x = scalar.toBigInt(a);
    const y = scalar.toBigInt(b);
    if (x === null || y === null) return null;
    const p = (x * y) % CURVE_ORDER;
    return p === 0n ? null : fromBigInt(p);
  },
  /** `(-a) mod n`; null if out of range. */
  negate(a: Uint8Array): Uint8Array | null {
    const x = scalar.toBigInt(a);
    return x === null ? null : fromBigInt((CURVE_ORDER - x) % CURVE_ORDER);
  },
};

// ---------------------------------------------------------------------------------------------
// noble backend

const Point = secp256k1.Point;
type NoblePoint = InstanceType<typeof Point>;

function noblePoint(bytes: Uint8Array): NoblePoint | null {
  assertBytes(bytes, 'point');
  if (bytes.length !== 33 && bytes.length !== 65) return null;
  try {
    return Point.fromBytes(bytes);
  } catch {
    return null;
  }
}

function nobleOut(p: NoblePoint): Uint8Array | null {
  return p.is0() ? null : p.toBytes(true);
}

function nobleMultiplier(bytes: Uint8Array): bigint | null {
  const n = scalar.toBigInt(bytes);
  return n === null || n === 0n ? null : n;
}

/** The pure-JS backend (@noble/curves). Always available. */
export const nobleSecp: Secp = {
  name: 'noble',
  sharedSecretPoint(s, point) {
    return nobleSecp.pointMultiply(point, s);
  },
  pointMultiply(point, s) {
    const P = noblePoint(point);
    const n = nobleMultiplier(s);
    return P === null || n === null ? null : nobleOut(P.multiply(n));
  },
  pointFromScalar(s) {
    const n = nobleMultiplier(s);
    return n === null ? null : nobleOut(Point.BASE.multiply(n));
  },
  pointAdd(a, b) {
    const A = noblePoint(a);
    const B = noblePoint(b);
    return A === null || B === null ? null : nobleOut(A.add(B));
  },
  pointAddScalar(point, tweak) {
    const P = noblePoint(point);
    const t = scalar.toBigInt(tweak);
    if (P === null || t === null) return null;
    return nobleOut(t === 0n ? P : P.add(Point.BASE.multiply(t)));
  },
  pointNegate(point) {
    const P = noblePoint(point);
    return P === null ? null : nobleOut(P.negate());
  },
  isPoint(point) {
    return noblePoint(point) !== null;
  },
  liftX(x) {
    assertBytes(x, 'x');
    if (x.length !== 32) return null;
    const out = new Uint8Array(33);
    out[0] = 0x02;
    out.set(x, 1);
    return noblePoint(out) === null ? null : out;
  },
};

// ---------------------------------------------------------------------------------------------
// tiny-secp256k1 (WASM libsecp256k1) backend

type Tiny = typeof import('tiny-secp256k1');

function validSec1Length(p: Uint8Array): boolean {
  return (p.length === 33 && (p[0] === 0x02 || p[0] === 0x03)) || (p.length === 65 && p[0] === 0x04);
}

/**
 * The raw operations of one libsecp256k1 build, all on 33-byte compressed output. They may throw
 * or return null on bad input or at infinity; {@link libsecpBackend} has already checked lengths,
 * prefixes and scalar ranges.
 */
interface LibsecpOps {
  multiply(point: Uint8Array, scalar: Uint8Array): Uint8Array | null;
  fromScalar(scalar: Uint8Array): Uint8Array | null;
  add(a: Uint8Array, b: Uint8Array): Uint8Array | null;
  /** `point + tweak·G` for a tweak in [1, n). */
  addScalar(point: Uint8Array, tweak: Uint8Array): Uint8Array | null;
  /** The compressed form of a valid point. */
  compress(point: Uint8Array): Uint8Array;
  isPoint(point: Uint8Array): boolean;
}

/**
 * Wraps a libsecp256k1 build so it keeps this module's contract: null, never a throw, for bad
 * bytes or a result at infinity (libsecp256k1 refuses those, which is exactly the null).
 */
function libsecpBackend(name: SecpBackendName, ops: LibsecpOps): Secp {
  const guard = (f: () => Uint8Array | null): Uint8Array | null => {
    try {
      return f();
    } catch {
      return null;
    }
  };
  const point = (p: Uint8Array): boolean => {
    assertBytes(p, 'point');
    return validSec1Length(p);
  };
  const backend: Secp = {
    name,
    sharedSecretPoint(s, p) {
      return backend.pointMultiply(p, s);
    },
    pointMultiply(p, s) {
      if (!point(p) || !scalar.isValid(s)) return null;
      return guard(() => ops.multiply(p, s));
    },
    pointFromScalar(s) {
      if (!scalar.isValid(s)) return null;
      return guard(() => ops.fromScalar(s));
    },
    pointAdd(a, b) {
      if (!point(a) || !point(b)) return null;
      return guard(() => ops.add(a, b));
    },
    pointAddScalar(p, t) {
      if (!point(p)) return null;
      const tweak = scalar.toBigInt(t);
      if (tweak === null) return null;
      // A zero tweak leaves the point as it is; some libsecp256k1 builds refuse it.
      return guard(() => (tweak === 0n ? ops.compress(p) : ops.addScalar(p, t)));
    },
    pointNegate(p) {
      if (!point(p) || !ops.isPoint(p)) return null;
      const c = guard(() => ops.compress(p));
      if (c === null) return null;
      const out = c.slice();
      out[0] = c[0] === 0x02 ? 0x03 : 0x02;
      return out;
    },
    isPoint(p) {
      return point(p) && ops.isPoint(p);
    },
    liftX(x) {
      assertBytes(x, 'x');
      if (x.length !== 32) return null;
      const out = new Uint8Array(33);
      out[0] = 0x02;
      out.set(x, 1);
      return ops.isPoint(out) ? out : null;
    },
  };
  return backend;
}

/** Wraps tiny-secp256k1 (libsecp256k1 compiled to WASM). */
export function wasmBackend(tiny: Tiny): Secp {
  return libsecpBackend('tiny-secp256k1', {
    multiply: (p, s) => tiny.pointMultiply(p, s, true),
    fromScalar: (s) => tiny.pointFromScalar(s, true),
    add: (a, b) => tiny.pointAdd(a, b, true),
    addScalar: (p, t) => tiny.pointAddScalar(p, t, true),
    compress: (p) => tiny.pointCompress(p, true),
    isPoint: (p) => tiny.isPoint(p),
  });
}

// ---------------------------------------------------------------------------------------------
// native libsecp256k1 backend (the `secp256k1` addon)

/** The subset of the `secp256k1` addon's API this module uses (v5, synchronous, throws on bad input). */
export interface NativeSecp256k1 {
  publicKeyVerify(pubkey: Uint8Array): boolean;
  publicKeyCreate(seckey: Uint8Array, compressed?: boolean): Uint8Array;
  publicKeyConvert(pubkey: Uint8Array, compressed?: boolean): Uint8Array;
  publicKeyCombine(pubkeys: Uint8Array[], compressed?: boolean): Uint8Array;
  publicKeyTweakAdd(pubkey: Uint8Array, tweak: Uint8Array, compressed?: boolean): Uint8Array;
  publicKeyTweakMul(pubkey: Uint8Array, tweak: Uint8Array, compressed?: boolean): Uint8Array;
}

/** Wraps the native addon (libsecp256k1 built into a Node addon). */
export function nativeBackend(lib: NativeSecp256k1): Secp {
  return libsecpBackend('native', {
    multiply: (p, s) => lib.publicKeyTweakMul(p, s, true),
    fromScalar: (s) => lib.publicKeyCreate(s, true),
    add: (a, b) => lib.publicKeyCombine([a, b], true),
    addScalar: (p, t) => lib.publicKeyTweakAdd(p, t, true),
    compress: (p) => lib.publicKeyConvert(p, true),
    isPoint: (p) => lib.publicKeyVerify(p),
  });
}

/** Checks a backend against noble on fixed inputs; a WASM build that disagrees is not used. */
export function selfTest(backend: Secp): boolean {
  try {
    const two = scalar.fromBigInt(2n);
    const three = scalar.fromBigInt(3n);
    const G2 = nobleSecp.pointFromScalar(two) as Uint8Array;
    const G3 = nobleSecp.pointFromScalar(three) as Uint8Array;
    const G6 = nobleSecp.pointFromScalar(scalar.fromBigInt(6n)) as Uint8Array;
    const G5 = nobleSecp.pointFromScalar(scalar.fromBigInt(5n)) as Uint8Array;
    const eq = (a: Uint8Array | null, b: Uint8Array): boolean => a !== null && a.length === b.length && a.every((v, i) => v === b[i]);
    return (
      eq(backend.pointFromScalar(two), G2) &&
      eq(backend.pointMultiply(G2, three), G6) &&
      eq(backend.pointAdd(G2, G3), G5) &&
      eq(backend.pointAddScalar(G2, three), G5) &&
      backend.pointAdd(G2, backend.pointNegate(G2) as Uint8Array) === null &&
      backend.pointMultiply(new Uint8Array(33), three) === null
    );
  } catch {
    return false;
  }
}

async function loadWasm(): Promise<Secp | null> {
  try {
    const tiny = (await import('tiny-secp256k1')) as Tiny;
    const backend = wasmBackend(tiny);
    return selfTest(backend) ? backend : null;
  } catch {
    return null;
  }
}

/**
 * Loads the addon's native build only: `secp256k1`'s main entry silently falls back to a pure-JS
 * implementation (elliptic) when the addon is missing, which must not pass for native here.
 */
function loadNative(): Secp | null {
  try {
    const lib = createRequire(import.meta.url)('secp256k1/bindings') as NativeSecp256k1;
    const backend = nativeBackend(lib);
    return selfTest(backend) ? backend : null;
  } catch {
    return null;
  }
}

/** The native backend, or null when the addon failed to load or failed its self-test. */
export const nativeSecp: Secp | null = loadNative();

/** The WASM backend, or null when tiny-secp256k1 failed to load or failed its self-test. */
export const wasmSecp: Secp | null = await loadWasm();

/** Every backend that loaded here, fastest first. */
export const availableSecpBackends: readonly SecpBackendName[] = [
  ...(nativeSecp === null ? [] : (['native'] as const)),
  ...(wasmSecp === null ? [] : (['tiny-secp256k1'] as const)),
  'noble',
];

/** A backend by name; throws a RangeError if that backend is not available here. */
export function secpBackend(name: SecpBackendName): Secp {
  if (name === 'noble') return nobleSecp;
  const backend = name === 'native' ? nativeSecp : wasmSecp;
  if (backend === null) throw new RangeError(`secp backend ${name} is not available`);
  return backend;
}

function chooseSecp(): Secp {
  const forced = process.env['DEADDROP_SECP'];
  if (forced === 'native' || forced === 'tiny-secp256k1' || forced === 'noble') return secpBackend(forced);
  if (forced !== undefined && forced !== '') {
    throw new RangeError(`DEADDROP_SECP must be native, tiny-secp256k1 or noble; got ${JSON.stringify(forced)}`);
  }
  return nativeSecp ?? wasmSecp ?? nobleSecp;
}

/** The backend deaddrop uses: native libsecp256k1, else WASM libsecp256k1, else noble. */
export const secp: Secp = chooseSecp();
