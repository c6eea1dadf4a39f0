/**
 * Arithmetic in GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d) and generator
 * alpha = 2, the field zfec (Tahoe-LAFS's codec) uses, plus the small matrix algebra the
 * Reed–Solomon codec needs (inversion, products, and zfec's exact encoding matrix).
 */

/** exp[i] = alpha^i for 0 <= i < 510 (doubled so exp[log a + log b] needs no reduction). */
export const GF_EXP: Uint8Array = new Uint8Array(510);
/** log[a] for a != 0; log[0] is unused (0). */
export const GF_LOG: Uint8Array = new Uint8Array(256);

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    GF_EXP[i] = x;
    GF_LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 510; i++) GF_EXP[i] = GF_EXP[i - 255] as number;
}

/** Full 256×256 product table: MUL[a * 256 + b] = a·b. 64 KB, used by the portable kernel. */
export const GF_MUL_TABLE: Uint8Array = new Uint8Array(65536);
for (let a = 1; a < 256; a++) {
  const la = GF_LOG[a] as number;
  for (let b = 1; b < 256; b++) GF_MUL_TABLE[a * 256 + b] = GF_EXP[la + (GF_LOG[b] as number)] as number;
}

/** a·b in GF(2^8). */
export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return GF_EXP[(GF_LOG[a] as number) + (GF_LOG[b] as number)] as number;
}

/** a^-1 in GF(2^8); throws for 0. */
export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('gf256: 0 has no inverse');
  return GF_EXP[255 - (GF_LOG[a] as number)] as number;
}

/** A row-major matrix over GF(2^8). */
export interface GfMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
}

/** Inverts a square matrix by Gauss–Jordan elimination; throws if it is singular. */
export function invertMatrix(m: GfMatrix): GfMatrix {
  const n = m.rows;
  if (m.cols !== n) throw new RangeError('gf256: only square matrices can be inverted');
  const a = Uint8Array.from(m.data);
  const inv = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot * n + col] === 0) pivot++;
    if (pivot === n) throw new RangeError('gf256: matrix is singular');
    if (pivot !== col) {
      for (let j = 0; j < n; j++) {
        const t = a[col * n + j] as number;
        a[col * n + j] = a[pivot * n + j] as number;
        a[pivot * n + j] = t;
        const u = inv[col * n + j] as number;
        inv[col * n + j] = inv[pivot * n + j] as number;
        inv[pivot * n + j] = u;
      }
    }
    const scale = gfInv(a[col * n + col] as number);
    for (let j = 0; j < n; j++) {
      a[col * n + j] = gfMul(a[col * n + j] as number, scale);
      inv[col * n + j] = gfMul(inv[col * n + j] as number, scale);
    }
    for (let r = 0; r < n; r++) {
      const f = a[r * n + col] as number;
      if (r === col || f === 0) continue;
      for (let j = 0; j < n; j++) {
        a[r * n + j] = (a[r * n + j] as number) ^ gfMul(f, a[col * n + j] as number);
        inv[r * n + j] = (inv[r * n + j] as number) ^ gfMul(f, inv[col * n + j] as number);
      }
    }
  }
  return { rows: n, cols: n, data: inv };
}

/** The product a·b. */
export function multiplyMatrices(a: GfMatrix, b: GfMatrix): GfMatrix {
  if (a.cols !== b.rows) throw new RangeError('gf256: matrix shapes do not match');
  const out = new Uint8Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.cols; j++) {
      let acc = 0;
      for (let t = 0; t < a.cols; t++) acc ^= gfMul(a.data[i * a.cols + t] as number, b.data[t * b.cols + j] as number);
      out[i * b.cols + j] = acc;
    }
  }
  return { rows: a.rows, cols: b.cols, data: out };
}

/**
 * zfec's n × k encoding matrix: the identity on top (the code is systematic) and below it
 * V[k:n] · V[0:k]^-1, where V is the Vandermonde matrix whose row 0 is [1, 0, …, 0] and whose
 * row r ≥ 1 is [alpha^((r−1)·c)] for c = 0 … k−1 (zfec's fec_new).
 */
export function zfecEncodingMatrix(k: number, n: number): GfMatrix {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 1 || n < k || n > 256) {
    throw new RangeError(`reed-solomon: need integers 1 <= k <= n <= 256, got k=${k}, n=${n}`);
  }
  const v = new Uint8Array(n * k);
  v[0] = 1;
  for (let r = 1; r < n; r++) {
    for (let c = 0; c < k; c++) v[r * k + c] = GF_EXP[((r - 1) * c) % 255] as number;
  }
  const top = invertMatrix({ rows: k, cols: k, data: v.subarray(0, k * k) });
  const bottom = multiplyMatrices({ rows: n - k, cols: k, data: v.subarray(k * k) }, top);
  const out = new Uint8Array(n * k);
  for (let i = 0; i < k; i++) out[i * k + i] = 1;
  out.set(bottom.data, k * k);
  return { rows: n, cols: k, data: out };
}
