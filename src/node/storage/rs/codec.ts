/**
 * Systematic Reed–Solomon k-of-n over GF(2^8), byte-compatible with zfec (Tahoe-LAFS's codec):
 * for the same k, n and k input blocks, share r is exactly zfec's share r (shares 0…k−1 are the
 * input blocks themselves), and any k distinct shares give the input back.
 */
import { type GfMatrix, invertMatrix, zfecEncodingMatrix } from './gf256.js';
import { type RsKernel, selectKernel } from './kernel.js';

/** One share: its number (0 ≤ num < n) and its bytes. */
export interface Share {
  readonly num: number;
  readonly data: Uint8Array;
}

/** A k-of-n code. Instances are immutable and reusable. */
export class ReedSolomon {
  readonly k: number;
  readonly n: number;
  readonly #matrix: GfMatrix;
  readonly #kernel: RsKernel;

  /** Throws a RangeError unless 1 ≤ k ≤ n ≤ 256. `kernel` defaults to the fastest available. */
  constructor(k: number, n: number, kernel: RsKernel = selectKernel()) {
    this.#matrix = zfecEncodingMatrix(k, n);
    this.k = k;
    this.n = n;
    this.#kernel = kernel;
  }

  /** The kernel this instance computes with ('wasm-simd' or 'portable'). */
  get kernelName(): RsKernel['name'] {
    return this.#kernel.name;
  }

  /**
   * Encodes k equal-length blocks into n shares. Shares 0…k−1 are the given blocks (the same
   * arrays, not copies); shares k…n−1 are new arrays. `only`, if given, limits the output to
   * those share numbers (in that order), as zfec's `encode(blocks, desired_blocknums)`.
   */
  encode(blocks: readonly Uint8Array[], only?: readonly number[]): Uint8Array[] {
    const len = this.#checkBlocks(blocks, this.k, 'encode');
    const want = only ?? Array.from({ length: this.n }, (_, i) => i);
    for (const r of want) {
      if (!Number.isInteger(r) || r < 0 || r >= this.n) throw new RangeError(`reed-solomon: share number ${r} is outside 0..${this.n - 1}`);
    }
    const parityNums = want.filter((r) => r >= this.k);
    const parity = parityNums.map(() => new Uint8Array(len));
    if (parity.length > 0) this.#kernel.mulRows(this.#rows(parityNums), blocks, parity, len);
    let p = 0;
    return want.map((r) => (r < this.k ? (blocks[r] as Uint8Array) : (parity[p++] as Uint8Array)));
  }

  /**
   * Recovers the k input blocks from any k shares with distinct numbers (extra shares are
   * ignored). Throws a RangeError for fewer than k distinct valid shares or unequal lengths.
   * Input blocks present among the shares are returned as given (not copied).
   */
  decode(shares: readonly Share[]): Uint8Array[] {
    const chosen = new Map<number, Uint8Array>();
    for (const s of shares) {
      if (!Number.isInteger(s.num) || s.num < 0 || s.num >= this.n) throw new RangeError(`reed-solomon: share number ${s.num} is outside 0..${this.n - 1}`);
      // Prefer input blocks: they need no arithmetic.
      if (!chosen.has(s.num)) chosen.set(s.num, s.data);
    }
    if (chosen.size < this.k) throw new RangeError(`reed-solomon: need ${this.k} distinct shares, got ${chosen.size}`);
    const nums = [...chosen.keys()].sort((a, b) => a - b).slice(0, this.k);
    const data = nums.map((r) => chosen.get(r) as Uint8Array);
    const len = this.#checkBlocks(data, this.k, 'decode');
    const missing: number[] = [];
    for (let c = 0; c < this.k; c++) if (!chosen.has(c)) missing.push(c);
    const out: Uint8Array[] = [];
    for (let c = 0; c < this.k; c++) out.push(chosen.get(c) ?? new Uint8Array(0));
    if (missing.length === 0) return out;
    // The rows of the encoding matrix for the shares we hold form an invertible k×k matrix A
    // (any k rows of zfec's matrix do); blocks = A^-1 · shares, and we need only the missing rows.
    const a = new Uint8Array(this.k * this.k);
    nums.forEach((r, i) => a.set(this.#matrix.data.subarray(r * this.k, (r + 1) * this.k), i * this.k));
    const inv = invertMatrix({ rows: this.k, cols: this.k, data: a });
    const coeffs = new Uint8Array(missing.length * this.k);
    missing.forEach((c, j) => coeffs.set(inv.data.subarray(c * this.k, (c + 1) * this.k), j * this.k));
    const rebuilt = missing.map(() => new Uint8Array(len));
    this.#kernel.mulRows(coeffs, data, rebuilt, len);
    missing.forEach((c, j) => (out[c] = rebuilt[j] as Uint8Array));
    return out;
  }

  #rows(nums: readonly number[]): Uint8Array {
    const out = new Uint8Array(nums.length * this.k);
    nums.forEach((r, j) => out.set(this.#matrix.data.subarray(r * this.k, (r + 1) * this.k), j * this.k));
    return out;
  }

  #checkBlocks(blocks: readonly Uint8Array[], count: number, op: string): number {
    if (blocks.length !== count) throw new RangeError(`reed-solomon: ${op} needs ${count} blocks, got ${blocks.length}`);
    const len = (blocks[0] as Uint8Array).length;
    for (const b of blocks) {
      if (!(b instanceof Uint8Array)) throw new TypeError(`reed-solomon: ${op} blocks must be Uint8Arrays`);
      if (b.length !== len) throw new RangeError(`reed-solomon: ${op} blocks must have equal lengths`);
    }
    return len;
  }
}

/**
 * Splits `data` into k blocks of ceil(len/k) bytes, the last padded with zeros, as
 * `zfec.easyfec` does. The length is not stored: carry it separately for `joinBlocks`.
 */
export function splitIntoBlocks(data: Uint8Array, k: number): Uint8Array[] {
  const size = Math.max(1, Math.ceil(data.length / k));
  const padded = new Uint8Array(size * k);
  padded.set(data);
  return Array.from({ length: k }, (_, i) => padded.subarray(i * size, (i + 1) * size));
}

/** Concatenates blocks and cuts the result to `length` bytes (the inverse of splitIntoBlocks). */
export function joinBlocks(blocks: readonly Uint8Array[], length: number): Uint8Array {
  const total = blocks.reduce((s, b) => s + b.length, 0);
  if (length > total) throw new RangeError(`reed-solomon: asked for ${length} bytes from ${total}`);
  const out = new Uint8Array(length);
  let at = 0;
  for (const b of blocks) {
    if (at >= length) break;
    const n = Math.min(b.length, length - at);
    out.set(b.subarray(0, n), at);
    at += n;
  }
  return out;
}
