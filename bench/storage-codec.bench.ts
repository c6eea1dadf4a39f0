/**
 * Reed–Solomon codec throughput (MB/s of input data), side by side in one run with zfec
 * (Tahoe-LAFS's C codec, PyPI `zfec` 1.6.0.0 through the project-local venv's python) and with
 * `@digitaldefiance/reed-solomon-erasure.wasm` (Rust reed-solomon-erasure compiled to wasm).
 * Shards are 64 KB. Decode uses the worst k shares: every parity share, then the last data shares,
 * so as many data blocks as possible must be rebuilt.
 *
 * zfec runs in a separate python process (it cannot take turns with us in one process); it is
 * measured before and after our own measurements and the faster of its two figures is reported,
 * so machine-load drift cannot favour us.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReedSolomonErasure } from '@digitaldefiance/reed-solomon-erasure.wasm';
import { ReedSolomon, type Share } from '../src/node/storage/rs/codec.js';
import { PortableKernel } from '../src/node/storage/rs/kernel.js';
import { compare, measure, round, throughput } from './measure.js';
import type { Emit } from './types.js';

const SHARD = 64 * 1024;
const PYTHON = fileURLToPath(new URL('../.tools/electrumx/bin/python', import.meta.url));

const ZFEC_SCRIPT = String.raw`
import sys, os, time, zfec
k, n, size, op = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
blocks = [os.urandom(size) for _ in range(k)]
shares = zfec.Encoder(k, n).encode(blocks)
nums = list(range(n - 1, k - 1, -1))[:k]
nums += list(range(k - 1, -1, -1))[: k - len(nums)]
enc, dec = zfec.Encoder(k, n), zfec.Decoder(k, n)
chosen = [shares[i] for i in nums]
f = (lambda: enc.encode(blocks)) if op == "encode" else (lambda: dec.decode(chosen, nums))
for _ in range(5): f()
samples, spent = [], 0.0
while len(samples) < 15 or spent < 1.0:
    t0 = time.perf_counter(); f(); dt = time.perf_counter() - t0
    samples.append(dt); spent += dt
samples.sort()
print(k * size / samples[len(samples) // 2] / 1e6)
`;

/** zfec's MB/s of input for one operation, or undefined when the venv has no zfec. */
function zfecRate(k: number, n: number, op: 'encode' | 'decode'): number | undefined {
  if (!existsSync(PYTHON)) return undefined;
  const r = spawnSync(PYTHON, ['-c', ZFEC_SCRIPT, String(k), String(n), String(SHARD), op], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`zfec bench failed: ${r.stderr}`);
    return undefined;
  }
  return Number(r.stdout.trim());
}

/** The worst k shares for decoding: all parity first, then data from the end. */
function worstNums(k: number, n: number): number[] {
  const nums: number[] = [];
  for (let r = n - 1; r >= k && nums.length < k; r--) nums.push(r);
  for (let r = k - 1; nums.length < k; r--) nums.push(r);
  return nums;
}

export async function run(emit: Emit): Promise<void> {
  // fromCurrentDirectorySync() needs CommonJS's __dirname; load the module's wasm file directly.
  const pkg = createRequire(import.meta.url).resolve('@digitaldefiance/reed-solomon-erasure.wasm');
  const other = ReedSolomonErasure.fromBytes(readFileSync(join(dirname(pkg), 'reed_solomon_erasure_bg.wasm')));
  for (const [k, n, label] of [[10, 14, '10+4'], [3, 10, '3of10']] as const) {
    const bytes = k * SHARD;
    const rs = new ReedSolomon(k, n);
    if (rs.kernelName !== 'wasm-simd') console.error(`storage-codec: SIMD kernel unavailable, measuring ${rs.kernelName}`);
    const blocks = Array.from({ length: k }, () => new Uint8Array(randomBytes(SHARD)));
    const shares = rs.encode(blocks);
    const chosen: Share[] = worstNums(k, n).map((num) => ({ num, data: shares[num] as Uint8Array }));
    const present = Array.from({ length: n }, (_, r) => chosen.some((s) => s.num === r));
    const flat = new Uint8Array(n * SHARD);
    blocks.forEach((b, i) => flat.set(b, i * SHARD));

    const zEnc1 = zfecRate(k, n, 'encode');
    const zDec1 = zfecRate(k, n, 'decode');

    // Check once that the anchor does the work we time (it reports errors as return codes).
    if (other.encode(flat, k, n - k) !== ReedSolomonErasure.RESULT_OK) throw new Error('anchor encode failed');
    const probe = flat.slice();
    present.forEach((ok, r) => ok || probe.fill(0, r * SHARD, (r + 1) * SHARD));
    if (other.reconstruct(probe, k, n - k, present) !== ReedSolomonErasure.RESULT_OK || !Buffer.from(probe.subarray(0, bytes)).equals(flat.subarray(0, bytes))) {
      throw new Error('anchor reconstruct did not rebuild the data');
    }

    const enc = compare(
      () => rs.encode(blocks),
      () => other.encode(flat, k, n - k),
    );
    const ours = throughput(bytes, enc.ours.medianMs, 'MB/s');
    const theirs = throughput(bytes, enc.anchor.medianMs, 'MB/s');
    emit({ name: `storage.rs.encode.${label}`, unit: 'MB/s', value: round(ours), anchor: '@digitaldefiance/reed-solomon-erasure.wasm encode', anchorValue: round(theirs), ratio: round(ours / theirs) });

    const damaged = new Uint8Array(n * SHARD);
    const dec = compare(
      () => rs.decode(chosen),
      () => {
        // The Rust library rebuilds in place, so each call starts from a fresh copy (its cost,
        // a 0.9 MB memcpy, is counted against the anchor).
        damaged.set(flat);
        return other.reconstruct(damaged, k, n - k, present);
      },
    );
    const ourDec = throughput(bytes, dec.ours.medianMs, 'MB/s');
    const theirDec = throughput(bytes, dec.anchor.medianMs, 'MB/s');
    emit({ name: `storage.rs.decode-worst.${label}`, unit: 'MB/s', value: round(ourDec), anchor: '@digitaldefiance/reed-solomon-erasure.wasm reconstruct (with a copy-in)', anchorValue: round(theirDec), ratio: round(ourDec / theirDec) });
    emit({ name: `storage.rs.decode-vs-encode.${label}`, unit: 'MB/s', value: round(ourDec), anchor: 'our own encode, same run', anchorValue: round(ours), ratio: round(ourDec / ours) });

    const zEnc2 = zfecRate(k, n, 'encode');
    const zDec2 = zfecRate(k, n, 'decode');
    const zEnc = Math.max(zEnc1 ?? NaN, zEnc2 ?? NaN);
    const zDec = Math.max(zDec1 ?? NaN, zDec2 ?? NaN);
    if (Number.isFinite(zEnc)) {
      emit({ name: `storage.rs.encode-vs-zfec.${label}`, unit: 'MB/s', value: round(ours), anchor: 'zfec 1.6.0.0 Encoder.encode (C, via python)', anchorValue: round(zEnc), ratio: round(ours / zEnc) });
    }
    if (Number.isFinite(zDec)) {
      emit({ name: `storage.rs.decode-worst-vs-zfec.${label}`, unit: 'MB/s', value: round(ourDec), anchor: 'zfec 1.6.0.0 Decoder.decode (C, via python)', anchorValue: round(zDec), ratio: round(ourDec / zDec) });
    }
  }

  // The portable fallback, for the record (what a runtime without WebAssembly SIMD gets).
  const portable = new ReedSolomon(10, 14, new PortableKernel());
  const blocks = Array.from({ length: 10 }, () => new Uint8Array(randomBytes(SHARD)));
  const m = measure(() => portable.encode(blocks), { minTimeMs: 500 });
  emit({ name: 'storage.rs.encode-portable.10+4', unit: 'MB/s', value: round(throughput(10 * SHARD, m.medianMs, 'MB/s')) });
}
