/**
 * The WebAssembly SIMD text of the Reed–Solomon inner kernel, generated here (rather than kept
 * as one .wat file) because it is the same loop for 1, 2, 3 and 4 outputs per pass; the
 * generator is plain string templating, so the text below is what gets assembled.
 *
 * Technique (as in ISA-L and klauspost/reedsolomon): a product c·x in GF(2^8) is linear in x,
 * so c·x = c·(x & 15) ^ c·(x >> 4 << 4). Two 16-entry tables per coefficient (low nibbles, high
 * nibbles) turn 16 products into two i8x16.swizzle lookups and one XOR.
 *
 * `mul<N>(nIn, inPtrs, outPtrs, tables, len)`: for N outputs at once, out_j[t] = XOR_i
 * c_{j,i}·in_i[t] for t < len (len a multiple of 32). inPtrs holds nIn i32 addresses; outPtrs
 * N addresses; tables holds, for input i, N consecutive 32-byte entries (16 bytes low-nibble
 * products, 16 bytes high-nibble products), i.e. entry (i·N + j)·32.
 */

/** The pages of linear memory the module starts with (it grows on demand). */
export const KERNEL_INITIAL_PAGES = 32;

function mulFunc(n: number): string {
  const js = Array.from({ length: n }, (_, j) => j);
  const locals = [
    ...js.map((j) => `(local $o${j} i32)`),
    ...js.flatMap((j) => [`(local $a${j} v128)`, `(local $b${j} v128)`]),
  ].join(' ');
  const loadOut = js.map((j) => `(local.set $o${j} (i32.load offset=${j * 4} (local.get $outPtrs)))`).join('\n    ');
  const zero = js.flatMap((j) => [`(local.set $a${j} (v128.const i64x2 0 0))`, `(local.set $b${j} (v128.const i64x2 0 0))`]).join('\n      ');
  // Two vectors (32 bytes) per step: independent dependency chains keep the SIMD units busy.
  const acc = js
    .map(
      (j) => `(local.set $tl (v128.load offset=${j * 32} (local.get $t)))
        (local.set $th (v128.load offset=${j * 32 + 16} (local.get $t)))
        (local.set $a${j} (v128.xor (local.get $a${j}) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo)) (i8x16.swizzle (local.get $th) (local.get $hi)))))
        (local.set $b${j} (v128.xor (local.get $b${j}) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo2)) (i8x16.swizzle (local.get $th) (local.get $hi2)))))`,
    )
    .join('\n        ');
  const store = js
    .map(
      (j) => `(v128.store (i32.add (local.get $o${j}) (local.get $pos)) (local.get $a${j}))
      (v128.store offset=16 (i32.add (local.get $o${j}) (local.get $pos)) (local.get $b${j}))`,
    )
    .join('\n      ');
  return `
  (func (export "mul${n}") (param $nIn i32) (param $inPtrs i32) (param $outPtrs i32) (param $tables i32) (param $len i32)
    (local $pos i32) (local $i i32) (local $p i32) (local $t i32)
    (local $v v128) (local $lo v128) (local $hi v128) (local $lo2 v128) (local $hi2 v128) (local $tl v128) (local $th v128) (local $mask v128)
    ${locals}
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    ${loadOut}
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $pos) (local.get $len)))
      ${zero}
        (local.set $i (i32.const 0))
        (local.set $t (local.get $tables))
        (loop $inputs
          (local.set $p (i32.add (i32.load (i32.add (local.get $inPtrs) (i32.shl (local.get $i) (i32.const 2)))) (local.get $pos)))
          (local.set $v (v128.load (local.get $p)))
          (local.set $lo (v128.and (local.get $v) (local.get $mask)))
          (local.set $hi (i8x16.shr_u (local.get $v) (i32.const 4)))
          (local.set $v (v128.load offset=16 (local.get $p)))
          (local.set $lo2 (v128.and (local.get $v) (local.get $mask)))
          (local.set $hi2 (i8x16.shr_u (local.get $v) (i32.const 4)))
        ${acc}
          (local.set $t (i32.add (local.get $t) (i32.const ${n * 32})))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $inputs (i32.lt_u (local.get $i) (local.get $nIn))))
      ${store}
        (local.set $pos (i32.add (local.get $pos) (i32.const 32)))
        (br $rows)))
  )`;
}

/** The module's full WAT text. */
export function kernelWat(): string {
  return `(module
  (memory (export "memory") ${KERNEL_INITIAL_PAGES})
  ${[1, 2, 3, 4].map(mulFunc).join('\n')}
)
`;
}
