/**
 * Timing helper for bench modules: warm up, then time single calls with performance.now()
 * until both a minimum number of samples and a minimum time are reached, and report the
 * median. Results are kept in a sink so the JIT cannot drop the work.
 */
export interface MeasureOptions {
  /** Untimed calls first, so the JIT has optimized the code. Default 3. */
  readonly warmup?: number;
  /** Default 7. */
  readonly minIterations?: number;
  /** Default 1,000. */
  readonly maxIterations?: number;
  /** Keep sampling until this much time was spent in timed calls. Default 300 ms. */
  readonly minTimeMs?: number;
}

export interface Measurement {
  /** Median duration of one call. */
  readonly medianMs: number;
  readonly minMs: number;
  readonly iterations: number;
}

let sink: unknown;

/** Times `fn` (see the module comment). */
export function measure(fn: () => unknown, options: MeasureOptions = {}): Measurement {
  const { warmup = 3, minIterations = 7, maxIterations = 1000, minTimeMs = 300 } = options;
  for (let i = 0; i < warmup; i++) sink = fn();
  const samples: number[] = [];
  let spent = 0;
  while (samples.length < maxIterations && (samples.length < minIterations || spent < minTimeMs)) {
    const t0 = performance.now();
    sink = fn();
    const dt = performance.now() - t0;
    samples.push(dt);
    spent += dt;
  }
  return summarize(samples);
}

export interface CompareOptions {
  /** Untimed calls of each side first. Default 3. */
  readonly warmup?: number;
  /** Alternations between the two sides. Default 5. */
  readonly rounds?: number;
  /** Time spent sampling one side per round (at least one call). Default 200 ms. */
  readonly sliceMs?: number;
}

/**
 * Times `ours` and `anchor` side by side: they take turns in short slices, so a change of
 * machine load during the run (other processes on a shared 2-core box) hits both alike and
 * the ratio of the medians stays meaningful.
 */
export function compare(ours: () => unknown, anchor: () => unknown, options: CompareOptions = {}): { ours: Measurement; anchor: Measurement } {
  const { warmup = 3, rounds = 5, sliceMs = 200 } = options;
  for (let i = 0; i < warmup; i++) {
    sink = ours();
    sink = anchor();
  }
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    sample(ours, a, sliceMs);
    sample(anchor, b, sliceMs);
  }
  return { ours: summarize(a), anchor: summarize(b) };
}

function sample(fn: () => unknown, into: number[], sliceMs: number): void {
  const start = performance.now();
  for (let n = 0; n < 100_000; n++) {
    const t0 = performance.now();
    sink = fn();
    const t1 = performance.now();
    into.push(t1 - t0);
    if (t1 - start >= sliceMs) return;
  }
}

function summarize(samples: number[]): Measurement {
  samples.sort((x, y) => x - y);
  const mid = samples.length >> 1;
  const medianMs = samples.length % 2 ? samples[mid]! : (samples[mid - 1]! + samples[mid]!) / 2;
  return { medianMs, minMs: samples[0]!, iterations: samples.length };
}

/** The last result, so callers can assert on it (and the JIT cannot prove it unused). */
export function lastResult(): unknown {
  return sink;
}

/** Throughput in `unit` per second for `bytes` processed in `ms`. */
export function throughput(bytes: number, ms: number, unit: 'MB/s' | 'GB/s'): number {
  return bytes / (ms / 1000) / (unit === 'MB/s' ? 1e6 : 1e9);
}

/** Rounds to 4 significant digits, for readable output. */
export function round(x: number): number {
  return Number(x.toPrecision(4));
}
