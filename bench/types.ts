/**
 * What a benchmark reports: one result per line of `npm run bench` output (JSON).
 *
 * A bench module lives in `bench/<area>.bench.ts` and exports
 * `export async function run(emit: Emit): Promise<void>`; `bin/bench.js` runs each module in
 * its own process and prints every emitted result as one JSON line on stdout.
 */
export interface BenchResult {
  /** Unique, dotted: `<area>.<what>`, e.g. `block.scan`. */
  name: string;
  /** Unit of `value` and `anchorValue`, e.g. `MB/s`, `GB/s`, `tx/s`, `ms/block`. */
  unit: string;
  value: number;
  /** What `value` is compared with, measured side by side in the same run (e.g. `bitcoinjs-lib Block.fromBuffer`). */
  anchor?: string;
  anchorValue?: number;
  /** `value / anchorValue`. For throughput units above 1 means ours is faster; for time units below 1 does. */
  ratio?: number;
}

export type Emit = (result: BenchResult) => void;

/** The shape of a `bench/*.bench.ts` module. */
export interface BenchModule {
  run(emit: Emit): Promise<void>;
}
