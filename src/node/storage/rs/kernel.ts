/**
 * The codec's inner loop, out_j = XOR_i c_{j,i}·in_i over byte arrays, in two implementations:
 * WebAssembly SIMD (split-nibble table lookups, see kernel-wat.ts) and portable TypeScript
 * (a 64 KB product table). `selectKernel()` picks the SIMD one when the runtime supports it.
 */
import { GF_MUL_TABLE, gfMul } from './gf256.js';
import { KERNEL_WASM_BASE64 } from './kernel-wasm-bytes.js';
import { equalBytes } from '../../../util/bytes.js';

/** Computes out_j[t] = XOR_i coeffs[j·nIn + i]·inputs[i][t] for t < len (outputs are overwritten). */
export interface RsKernel {
  readonly name: 'wasm-simd' | 'portable';
  mulRows(coeffs: Uint8Array, inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], len: number): void;
}

/**
 * Portable kernel: one 256-byte table row per coefficient. It works on 32-bit words (four
 * lookups, one load, one XOR-store), several times faster in V8 than a byte loop; the product
 * of each byte lands back in that byte's lane on either endianness. Unaligned inputs are copied
 * to aligned scratch first; the last len % 4 bytes use the byte loop.
 */
export class PortableKernel implements RsKernel {
  readonly name = 'portable' as const;

  mulRows(coeffs: Uint8Array, inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], len: number): void {
    const nIn = inputs.length;
    const words = len >>> 2;
    const srcs = inputs.map((x) => (x.byteOffset % 4 === 0 ? x : x.slice(0, len)));
    const src32 = srcs.map((x) => new Uint32Array(x.buffer, x.byteOffset, words));
    for (let j = 0; j < outputs.length; j++) {
      const given = outputs[j] as Uint8Array;
      const out = given.byteOffset % 4 === 0 ? given : new Uint8Array(len);
      out.fill(0, 0, len);
      const out32 = new Uint32Array(out.buffer, out.byteOffset, words);
      for (let i = 0; i < nIn; i++) {
        const c = coeffs[j * nIn + i] as number;
        if (c === 0) continue;
        const row = GF_MUL_TABLE.subarray(c * 256, c * 256 + 256);
        const s32 = src32[i] as Uint32Array;
        for (let t = 0; t < words; t++) {
          const v = s32[t] as number;
          out32[t] =
            (out32[t] as number) ^
            ((row[v & 255] as number) | ((row[(v >>> 8) & 255] as number) << 8) | ((row[(v >>> 16) & 255] as number) << 16) | ((row[v >>> 24] as number) << 24));
        }
        const src = srcs[i] as Uint8Array;
        for (let t = words * 4; t < len; t++) out[t] = (out[t] as number) ^ (row[src[t] as number] as number);
      }
      if (out !== given) given.set(out.subarray(0, len));
    }
  }
}

/** The little of the WebAssembly JS API we use (the project's TS lib set has no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: unknown };
}

interface KernelExports {
  readonly memory: WasmMemory;
  readonly mul1: MulFn;
  readonly mul2: MulFn;
  readonly mul3: MulFn;
  readonly mul4: MulFn;
}
type MulFn = (nIn: number, inPtrs: number, outPtrs: number, tables: number, len: number) => void;

/** Bytes per input and output processed per kernel call: 14 streams of 16 KB stay in L2. */
const CHUNK = 16 * 1024;

/** WebAssembly SIMD kernel. Inputs are copied into linear memory one chunk at a time. */
export class WasmSimdKernel implements RsKernel {
  readonly name = 'wasm-simd' as const;
  readonly #ex: KernelExports;

  private constructor(ex: KernelExports) {
    this.#ex = ex;
  }

  /** Instantiates the kernel; throws when the runtime lacks WebAssembly SIMD. */
  static create(): WasmSimdKernel {
    const bytes = Buffer.from(KERNEL_WASM_BASE64, 'base64');
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    if (!wasm) throw new Error('reed-solomon: this runtime has no WebAssembly');
    const inst = new wasm.Instance(new wasm.Module(bytes), {});
    return new WasmSimdKernel(inst.exports as unknown as KernelExports);
  }

  mulRows(coeffs: Uint8Array, inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], len: number): void {
    const nIn = inputs.length;
    const nOut = outputs.length;
    if (nOut === 0) return;
    const chunk = Math.min(CHUNK, roundUp(len, 32));
    // Layout: tables (32 bytes per coefficient), input pointers, output pointers, inputs, outputs.
    const tablesAt = 0;
    const inPtrsAt = roundUp(nIn * nOut * 32, 64);
    const outPtrsAt = inPtrsAt + roundUp(nIn * 4, 64);
    const dataAt = outPtrsAt + roundUp(nOut * 4, 64);
    const need = dataAt + (nIn + nOut) * chunk;
    const mem = this.#ex.memory;
    if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
    const heap = new Uint8Array(mem.buffer);
    const view = new DataView(mem.buffer);

    // Tables, in groups of up to 4 outputs: for input i, the group's entries (i·g + j)·32.
    const groups: { first: number; size: number; tables: number }[] = [];
    let at = tablesAt;
    for (let first = 0; first < nOut; first += 4) {
      const size = Math.min(4, nOut - first);
      groups.push({ first, size, tables: at });
      for (let i = 0; i < nIn; i++) {
        for (let j = 0; j < size; j++) {
          const c = coeffs[(first + j) * nIn + i] as number;
          const e = at + (i * size + j) * 32;
          for (let x = 0; x < 16; x++) {
            heap[e + x] = gfMul(c, x);
            heap[e + 16 + x] = gfMul(c, x << 4);
          }
        }
      }
      at += nIn * size * 32;
    }
    for (let i = 0; i < nIn; i++) view.setUint32(inPtrsAt + i * 4, dataAt + i * chunk, true);
    const outBase = dataAt + nIn * chunk;
    const fns = [this.#ex.mul1, this.#ex.mul2, this.#ex.mul3, this.#ex.mul4];

    for (let s = 0; s < len; s += chunk) {
      const n = Math.min(chunk, len - s);
      const padded = roundUp(n, 32);
      for (let i = 0; i < nIn; i++) {
        const src = inputs[i] as Uint8Array;
        heap.set(src.subarray(s, s + n), dataAt + i * chunk);
        // Zero the tail so the padded lanes are defined (their results are never copied out).
        if (padded > n) heap.fill(0, dataAt + i * chunk + n, dataAt + i * chunk + padded);
      }
      for (const g of groups) {
        for (let j = 0; j < g.size; j++) view.setUint32(outPtrsAt + j * 4, outBase + (g.first + j) * chunk, true);
        (fns[g.size - 1] as MulFn)(nIn, inPtrsAt, outPtrsAt, g.tables, padded);
      }
      for (let j = 0; j < nOut; j++) {
        (outputs[j] as Uint8Array).set(heap.subarray(outBase + j * chunk, outBase + j * chunk + n), s);
      }
    }
  }
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

let selected: RsKernel | undefined;

/**
 * The fastest kernel this runtime supports: WebAssembly SIMD, checked by instantiating it and
 * comparing one product with the portable kernel; the portable kernel otherwise.
 */
export function selectKernel(): RsKernel {
  if (selected) return selected;
  const portable = new PortableKernel();
  try {
    const simd = WasmSimdKernel.create();
    const a = Uint8Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 255);
    const b = Uint8Array.from({ length: 100 }, (_, i) => (i * 91 + 5) & 255);
    const coeffs = Uint8Array.of(7, 200, 1, 0, 0x53, 0xca);
    const x = [new Uint8Array(100), new Uint8Array(100), new Uint8Array(100)];
    const y = [new Uint8Array(100), new Uint8Array(100), new Uint8Array(100)];
    simd.mulRows(coeffs, [a, b], x, 100);
    portable.mulRows(coeffs, [a, b], y, 100);
    selected = x.every((r, i) => equalBytes(r, y[i] as Uint8Array)) ? simd : portable;
  } catch {
    selected = portable;
  }
  return selected;
}
