/**
 * BIP340-compatible Schnorr adaptor signatures over @noble/curves (no maintained JS library
 * offers them). Used by the private-mode variant in which only the buyer learns the secret:
 *
 *   claim leaf: <buyer> OP_CHECKSIGVERIFY <seller> OP_CHECKSIG
 *   1. the seller's offer carries T = t*G (t opens the wrap) instead of SHA256(s_B);
 *   2. the buyer pre-signs the claim transaction "locked to T" (`adaptorSign`);
 *   3. the seller checks it (`adaptorVerify`), completes it with t (`adaptorComplete`), adds
 *      its own signature and broadcasts: on chain it is an ordinary signature;
 *   4. the buyer, holding the pre-signature, recovers t = s - s' (`adaptorExtract`).
 *
 * Algebra (P = x*G with even y, e = H_BIP340/challenge(x(R) || P || m)):
 *   nonce k, R = k*G + T. If R has even y: s' = k + e*x and s = s' + t, so s*G = R + e*P.
 *   If R has odd y the verifier will use -R, so s' = -k + e*x and s = s' - t gives
 *   s*G = -(k*G + T) + e*P = -R + e*P. The pre-signature keeps R (33 bytes, with parity).
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE, numberToBytesBE } from '@noble/curves/utils.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { taggedHash } from './bytes.js';
import { concatBytes, equalBytes, toHex } from '../util/bytes.js';

const Point = schnorr.Point;
type PointT = ReturnType<typeof Point.fromHex>;
const N = Point.Fn.ORDER;

const mod = (a: bigint): bigint => Point.Fn.create(a);
const num = bytesToNumberBE;
const be32 = (n: bigint): Uint8Array => numberToBytesBE(n, 32);
const hasEvenY = (p: PointT): boolean => (p.toAffine().y & 1n) === 0n;

function challenge(rx: Uint8Array, pub: Uint8Array, msg: Uint8Array): bigint {
  return mod(num(taggedHash('BIP0340/challenge', rx, pub, msg)));
}

/** The adaptor point T = t*G (33-byte compressed) of a secret t. */
export function adaptorPoint(t: Uint8Array): Uint8Array {
  return Point.BASE.multiply(scalar(t)).toBytes(true);
}

function scalar(b: Uint8Array): bigint {
  if (b.length !== 32) throw new TypeError('scalar must be 32 bytes');
  const v = num(b);
  if (v <= 0n || v >= N) throw new RangeError('scalar out of range');
  return v;
}

/**
 * Pre-signature (65 bytes: R compressed || s') on `msg` by `secretKey`, locked to `T`.
 * `aux` feeds the nonce (random by default).
 */
export function adaptorSign(msg: Uint8Array, secretKey: Uint8Array, T: Uint8Array, aux: Uint8Array = randomBytes(32)): Uint8Array {
  const d0 = scalar(secretKey);
  const P = Point.BASE.multiply(d0);
  const d = hasEvenY(P) ? d0 : N - d0;
  const pub = schnorr.utils.pointToBytes(P);
  const Tp = Point.fromHex(toHex(T));
  const k = mod(num(taggedHash('deaddrop/adaptor/nonce', be32(d), T, msg, aux)));
  if (k === 0n) throw new Error('nonce is zero: retry with other aux');
  const R = Point.BASE.multiply(k).add(Tp);
  const e = challenge(schnorr.utils.pointToBytes(R), pub, msg);
  const s = mod((hasEvenY(R) ? k : N - k) + e * d);
  return concatBytes(R.toBytes(true), be32(s));
}

/** True when `presig` becomes a valid BIP340 signature by `pubkey` on `msg` once completed with log(T). Never throws. */
export function adaptorVerify(msg: Uint8Array, pubkey: Uint8Array, T: Uint8Array, presig: Uint8Array): boolean {
  try {
    if (presig.length !== 65) return false;
    const R = Point.fromHex(toHex(presig.subarray(0, 33)));
    const s = num(presig.subarray(33));
    if (s >= N) return false;
    const Rk = R.subtract(Point.fromHex(toHex(T)));
    if (Rk.equals(Point.ZERO)) return false;
    const P = schnorr.utils.lift_x(num(pubkey));
    const e = challenge(schnorr.utils.pointToBytes(R), pubkey, msg);
    const lhs = s === 0n ? Point.ZERO : Point.BASE.multiply(s);
    return lhs.equals((hasEvenY(R) ? Rk : Rk.negate()).add(P.multiply(e)));
  } catch {
    return false;
  }
}

/** Completes a pre-signature with the adaptor secret t into a 64-byte BIP340 signature. */
export function adaptorComplete(presig: Uint8Array, t: Uint8Array): Uint8Array {
  const R = Point.fromHex(toHex(presig.subarray(0, 33)));
  const s1 = num(presig.subarray(33));
  const tt = scalar(t);
  return concatBytes(schnorr.utils.pointToBytes(R), be32(mod(hasEvenY(R) ? s1 + tt : s1 - tt)));
}

/** Recovers t from the pre-signature and the completed signature; null if they do not match `T`. */
export function adaptorExtract(presig: Uint8Array, sig: Uint8Array, T: Uint8Array): Uint8Array | null {
  try {
    const R = Point.fromHex(toHex(presig.subarray(0, 33)));
    if (sig.length !== 64 || !equalBytes(sig.subarray(0, 32), schnorr.utils.pointToBytes(R))) return null;
    const s = num(sig.subarray(32));
    const s1 = num(presig.subarray(33));
    const t = mod(hasEvenY(R) ? s - s1 : s1 - s);
    if (t === 0n) return null;
    const tb = be32(t);
    return equalBytes(adaptorPoint(tb), T) ? tb : null;
  } catch {
    return null;
  }
}

/** The 2-of-2 claim leaf of the adaptor variant: `<buyer> OP_CHECKSIGVERIFY <seller> OP_CHECKSIG`. */
export function adaptorClaimLeafScript(buyerKey: Uint8Array, sellerKey: Uint8Array): Uint8Array {
  if (buyerKey.length !== 32 || sellerKey.length !== 32) throw new TypeError('keys must be 32-byte x-only');
  return Uint8Array.from([0x20, ...buyerKey, 0xad, 0x20, ...sellerKey, 0xac]);
}

/** Exposed for tests: whether a pre-signature's R has even y. */
export function presigNonceParity(presig: Uint8Array): 'even' | 'odd' {
  return presig[0] === 0x02 ? 'even' : 'odd';
}
