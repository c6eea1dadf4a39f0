/**
 * Blocks that hold only a coinbase, built and mined in-process for regtest.
 *
 * btcd's `generate` always takes the whole mempool, so a test cannot let blocks pass while a
 * transaction stays unconfirmed. {@link buildEmptyBlock} makes the block itself and the
 * harness hands it to `submitblock`, which Core and btcd both accept.
 *
 * The coinbase pays 0 sat to a bare OP_RETURN (a coinbase may claim less than the subsidy) and
 * carries no witness, so the block needs no witness commitment.
 */
import { hashToHex, hexToHash, sha256d, writeCompactSize } from '../chain/bytes.js';

/** Header version: BIP9 top bits, no deployment signalled. */
export const EMPTY_BLOCK_VERSION = 0x20000000;
const COINBASE_VERSION = 2;
const OP_RETURN = 0x6a;
const MAX_NONCE = 0xffffffff;

/** What the next block builds on. */
export interface BlockTemplate {
  /** Hash of the block to build on (display hex). */
  readonly prevHash: string;
  /** Height of the new block. */
  readonly height: number;
  /** Header time of the new block, Unix seconds. */
  readonly time: number;
  /** Compact target (`bits`), e.g. 0x207fffff on regtest. */
  readonly bits: number;
  /** Extra scriptSig bytes after the height push (0..80), to make coinbases unique. */
  readonly extraNonce?: Uint8Array;
}

export interface EmptyBlock {
  /** Serialized block. */
  readonly raw: Uint8Array;
  /** Block hash (display hex). */
  readonly hash: string;
  /** Coinbase txid (display hex). */
  readonly coinbaseTxid: string;
}

/**
 * BIP34 height push, as Core's `CScript() << height`: OP_0, OP_1..OP_16, or a minimal
 * little-endian script number with a sign byte when the top bit is set.
 * @example heightPush(101) // Uint8Array [0x01, 0x65]
 */
export function heightPush(height: number): Uint8Array {
  if (!Number.isSafeInteger(height) || height < 0 || height > 0x7fffffff) throw new RangeError(`height must be an integer in 0..2^31-1, got ${height}`);
  if (height === 0) return Uint8Array.of(0x00);
  if (height <= 16) return Uint8Array.of(0x50 + height);
  const bytes: number[] = [];
  for (let v = height; v > 0; v = Math.floor(v / 256)) bytes.push(v % 256);
  if ((bytes[bytes.length - 1]! & 0x80) !== 0) bytes.push(0);
  return Uint8Array.of(bytes.length, ...bytes);
}

/** The 256-bit target a compact `bits` value stands for (no sign or overflow handling: regtest input). */
export function targetFromBits(bits: number): bigint {
  if (!Number.isInteger(bits) || bits < 0 || bits > 0xffffffff) throw new RangeError(`bits must be a uint32, got ${bits}`);
  const exponent = bits >>> 24;
  const mantissa = BigInt(bits & 0x007fffff);
  return exponent <= 3 ? mantissa >> BigInt(8 * (3 - exponent)) : mantissa << BigInt(8 * (exponent - 3));
}

/** A version-2 coinbase: null prevout, `heightPush(height) + push(extraNonce)`, one 0-sat OP_RETURN output, locktime 0. */
export function buildCoinbase(height: number, extraNonce: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (extraNonce.length > 80) throw new RangeError(`extraNonce must be at most 80 bytes, got ${extraNonce.length}`);
  const push = heightPush(height);
  // At least one extra push so the scriptSig is 2..100 bytes even for OP_N heights.
  const scriptSig = Uint8Array.of(...push, extraNonce.length, ...extraNonce);
  const out = new Uint8Array(4 + 1 + 36 + 1 + scriptSig.length + 4 + 1 + 8 + 1 + 1 + 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, COINBASE_VERSION, true);
  let o = writeCompactSize(out, 4, 1);
  o += 32; // null prevout hash
  dv.setUint32(o, 0xffffffff, true);
  o = writeCompactSize(out, o + 4, scriptSig.length);
  out.set(scriptSig, o);
  o += scriptSig.length;
  dv.setUint32(o, 0xffffffff, true); // sequence
  o = writeCompactSize(out, o + 4, 1);
  o += 8; // value 0
  o = writeCompactSize(out, o, 1);
  out[o] = OP_RETURN;
  // locktime 0: the last four bytes are already zero
  return out;
}

/** The 80-byte header with nonce 0. */
function header(prevHash: string, merkleRoot: Uint8Array, time: number, bits: number): Uint8Array {
  const h = new Uint8Array(80);
  const dv = new DataView(h.buffer);
  dv.setInt32(0, EMPTY_BLOCK_VERSION, true);
  h.set(hexToHash(prevHash), 4);
  h.set(merkleRoot, 36);
  dv.setUint32(68, time, true);
  dv.setUint32(72, bits, true);
  return h;
}

/**
 * Builds a coinbase-only block on `t.prevHash` and searches the nonce until the header hash
 * meets the target. Cheap on regtest (about two tries); RangeError if no nonce fits.
 * @example const { raw, hash } = buildEmptyBlock({ prevHash: tip, height: 102, time, bits: 0x207fffff });
 */
export function buildEmptyBlock(t: BlockTemplate): EmptyBlock {
  if (!Number.isInteger(t.time) || t.time < 0 || t.time > 0xffffffff) throw new RangeError(`time must be a uint32, got ${t.time}`);
  const coinbase = buildCoinbase(t.height, t.extraNonce);
  const txid = sha256d(coinbase);
  const h = header(t.prevHash, txid, t.time, t.bits);
  const target = targetFromBits(t.bits);
  const dv = new DataView(h.buffer);
  for (let nonce = 0; nonce <= MAX_NONCE; nonce++) {
    dv.setUint32(76, nonce, true);
    const hash = hashToHex(sha256d(h));
    if (BigInt(`0x${hash}`) <= target) {
      const raw = new Uint8Array(80 + 1 + coinbase.length);
      raw.set(h, 0);
      const o = writeCompactSize(raw, 80, 1);
      raw.set(coinbase, o);
      return { raw, hash, coinbaseTxid: hashToHex(txid) };
    }
  }
  throw new RangeError(`no nonce meets bits ${t.bits.toString(16)}`);
}
