import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { joinBlocks, ReedSolomon, splitIntoBlocks } from '../../../src/node/storage/rs/codec.js';
import { gfInv, gfMul, invertMatrix, zfecEncodingMatrix } from '../../../src/node/storage/rs/gf256.js';
import { PortableKernel, selectKernel, WasmSimdKernel } from '../../../src/node/storage/rs/kernel.js';
import { runZfec, type ZfecJob } from '../../support/zfec.js';

/** Deterministic PRNG (xorshift32) so a failing case can be reproduced from its seed. */
function prng(seed: number): (max: number) => number {
  let s = seed >>> 0 || 1;
  return (max) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % max;
  };
}

function shuffle<T>(xs: T[], rnd: (m: number) => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rnd(i + 1);
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);

interface Case {
  k: number;
  n: number;
  blocks: Uint8Array[];
  nums: number[];
}

/** Random parameters, including the edges k = 1, k = n, n = 256 and lengths not a multiple of 16 or 32. */
function cases(seed: number, count: number): Case[] {
  const rnd = prng(seed);
  const fixed: [number, number][] = [[3, 10], [10, 14], [1, 1], [1, 7], [5, 5], [2, 256], [255, 256], [256, 256], [17, 40]];
  const out: Case[] = [];
  for (let c = 0; c < count; c++) {
    let k: number;
    let n: number;
    if (c < fixed.length) [k, n] = fixed[c] as [number, number];
    else {
      n = 1 + rnd(c % 3 === 0 ? 256 : 30);
      k = 1 + rnd(n);
    }
    const len = [0, 1, 15, 31, 33, 100, 1000, 4099][rnd(8)] as number;
    const size = n > 64 ? Math.min(len, 64) : len;
    const blocks = Array.from({ length: k }, () => new Uint8Array(randomBytes(size)));
    const nums = shuffle(Array.from({ length: n }, (_, i) => i), rnd).slice(0, k);
    out.push({ k, n, blocks, nums });
  }
  return out;
}

describe('GF(2^8) and zfec matrix', () => {
  it('multiplies and inverts in the field with polynomial 0x11d', () => {
    expect(gfMul(2, 0x80)).toBe(0x1d);
    expect(gfMul(0x53, 0xca)).toBe(gfMul(0xca, 0x53));
    for (let a = 1; a < 256; a++) expect(gfMul(a, gfInv(a))).toBe(1);
    expect(() => gfInv(0)).toThrow(RangeError);
    expect(() => invertMatrix({ rows: 2, cols: 2, data: Uint8Array.of(1, 2, 2, 4) })).toThrow(/singular/);
  });

  it('builds the parity rows zfec uses for 3-of-10', () => {
    const m = zfecEncodingMatrix(3, 10);
    const rows = Array.from({ length: 7 }, (_, r) => Array.from(m.data.subarray((r + 3) * 3, (r + 4) * 3)));
    expect(rows).toEqual([[15, 8, 6], [45, 48, 28], [153, 224, 120], [11, 231, 237], [137, 59, 179], [70, 241, 182], [186, 217, 98]]);
  });

  it('rejects parameters outside 1 <= k <= n <= 256', () => {
    for (const [k, n] of [[0, 3], [4, 3], [3, 257], [1.5, 3]] as [number, number][]) {
      expect(() => new ReedSolomon(k, n)).toThrow(RangeError);
    }
  });
});

describe('kernels', () => {
  it('selects WebAssembly SIMD on Node 20 and agrees with the portable kernel', () => {
    expect(selectKernel().name).toBe('wasm-simd');
    const simd = WasmSimdKernel.create();
    const portable = new PortableKernel();
    const rnd = prng(7);
    for (const [nIn, nOut, len] of [[1, 1, 1], [10, 4, 65536 + 5], [3, 7, 33], [256, 9, 70], [5, 13, 40000]] as [number, number, number][]) {
      const coeffs = Uint8Array.from({ length: nIn * nOut }, () => rnd(256));
      const ins = Array.from({ length: nIn }, () => new Uint8Array(randomBytes(len)));
      const a = Array.from({ length: nOut }, () => new Uint8Array(len).fill(0xaa));
      const b = Array.from({ length: nOut }, () => new Uint8Array(len).fill(0x55));
      simd.mulRows(coeffs, ins, a, len);
      portable.mulRows(coeffs, ins, b, len);
      a.forEach((x, j) => expect(eq(x, b[j] as Uint8Array), `nIn=${nIn} nOut=${nOut} len=${len} row ${j}`).toBe(true));
      // Unaligned views (the portable kernel works on 32-bit words) must give the same bytes.
      const insU = ins.map((x) => {
        const buf = new Uint8Array(len + 1);
        buf.set(x, 1);
        return buf.subarray(1);
      });
      const c = Array.from({ length: nOut }, () => new Uint8Array(len + 3).subarray(3));
      portable.mulRows(coeffs, insU, c, len);
      c.forEach((x, j) => expect(eq(x, b[j] as Uint8Array), `unaligned nIn=${nIn} nOut=${nOut} len=${len} row ${j}`).toBe(true));
    }
  });
});

describe('byte-compatibility with zfec 1.6.0.0', () => {
  for (const kernel of ['wasm-simd', 'portable'] as const) {
    it(`${kernel}: our shares equal zfec's, on random parameters and inputs`, () => {
      const cs = cases(kernel === 'portable' ? 11 : 12, 60);
      const zf = runZfec(cs.map((c): ZfecJob => ({ op: 'encode', k: c.k, n: c.n, blocks: c.blocks })));
      cs.forEach((c, i) => {
        const rs = new ReedSolomon(c.k, c.n, kernel === 'portable' ? new PortableKernel() : WasmSimdKernel.create());
        const ours = rs.encode(c.blocks);
        const theirs = zf[i] as Uint8Array[];
        expect(theirs.length).toBe(c.n);
        ours.forEach((s, r) => expect(eq(s, theirs[r] as Uint8Array), `k=${c.k} n=${c.n} len=${c.blocks[0]?.length} share ${r}`).toBe(true));
      });
    });
  }

  it('zfec decodes our shares, from any k of them', () => {
    const cs = cases(21, 50);
    const jobs = cs.map((c): ZfecJob => {
      const shares = new ReedSolomon(c.k, c.n).encode(c.blocks);
      return { op: 'decode', k: c.k, n: c.n, shares: c.nums.map((r) => shares[r] as Uint8Array), nums: c.nums };
    });
    const decoded = runZfec(jobs);
    cs.forEach((c, i) => (decoded[i] as Uint8Array[]).forEach((b, j) => expect(eq(b, c.blocks[j] as Uint8Array), `k=${c.k} n=${c.n} block ${j}`).toBe(true)));
  });

  it("we decode zfec's shares, from any k of them (including the worst case: parity only)", () => {
    const cs = cases(31, 50);
    // Make some cases take parity shares only, where there are enough of them.
    cs.forEach((c, i) => {
      if (i % 2 === 0 && c.n - c.k >= c.k) c.nums = Array.from({ length: c.k }, (_, j) => c.n - 1 - j);
    });
    const zf = runZfec(cs.map((c): ZfecJob => ({ op: 'encode', k: c.k, n: c.n, blocks: c.blocks })));
    cs.forEach((c, i) => {
      const shares = zf[i] as Uint8Array[];
      for (const kernel of [WasmSimdKernel.create(), new PortableKernel()]) {
        const got = new ReedSolomon(c.k, c.n, kernel).decode(c.nums.map((num) => ({ num, data: shares[num] as Uint8Array })));
        got.forEach((b, j) => expect(eq(b, c.blocks[j] as Uint8Array), `${kernel.name} k=${c.k} n=${c.n} nums=${c.nums} block ${j}`).toBe(true));
      }
    });
  });
});

describe('ReedSolomon API', () => {
  it('splits with zero padding and joins back to the original length', () => {
    for (const len of [0, 1, 2, 9, 10, 11, 1000]) {
      const data = new Uint8Array(randomBytes(len));
      const blocks = splitIntoBlocks(data, 3);
      expect(new Set(blocks.map((b) => b.length)).size).toBe(1);
      const rs = new ReedSolomon(3, 10);
      const shares = rs.encode(blocks);
      const back = rs.decode([7, 9, 4].map((num) => ({ num, data: shares[num] as Uint8Array })));
      expect(eq(joinBlocks(back, len), data)).toBe(true);
    }
  });

  it('encodes only the requested share numbers', () => {
    const rs = new ReedSolomon(3, 10);
    const blocks = splitIntoBlocks(new Uint8Array(randomBytes(300)), 3);
    const all = rs.encode(blocks);
    const some = rs.encode(blocks, [9, 1, 5]);
    expect(some.map((s) => Buffer.from(s).toString('hex'))).toEqual([9, 1, 5].map((r) => Buffer.from(all[r] as Uint8Array).toString('hex')));
    expect(() => rs.encode(blocks, [10])).toThrow(/outside/);
  });

  it('refuses too few shares, duplicate-only shares, bad numbers and unequal lengths with clear errors', () => {
    const rs = new ReedSolomon(3, 10);
    const s = rs.encode(splitIntoBlocks(new Uint8Array(randomBytes(30)), 3));
    expect(() => rs.decode([{ num: 1, data: s[1] as Uint8Array }, { num: 2, data: s[2] as Uint8Array }])).toThrow(/need 3 distinct shares, got 2/);
    expect(() => rs.decode([1, 1, 1, 2].map((num) => ({ num, data: s[num] as Uint8Array })))).toThrow(/distinct/);
    expect(() => rs.decode([{ num: 10, data: s[1] as Uint8Array }, ...[1, 2].map((num) => ({ num, data: s[num] as Uint8Array }))])).toThrow(/outside/);
    expect(() => rs.decode([{ num: 0, data: new Uint8Array(9) }, ...[4, 5].map((num) => ({ num, data: s[num] as Uint8Array }))])).toThrow(/equal lengths/);
    expect(() => rs.encode([new Uint8Array(3), new Uint8Array(3)])).toThrow(/needs 3 blocks/);
  });
});
