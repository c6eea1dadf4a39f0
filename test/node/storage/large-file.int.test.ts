/**
 * A file larger than the memory bound, put, read back and repaired through loopback storage
 * servers (over the node's Noise transport, shares on disk) by a client process whose memory is
 * measured (test/support/storage-memory-runner.ts; the servers run in a process of their own).
 *
 * Size: DD_LARGE_FILE_MB (default 160 MiB, which keeps the test near a minute on a loaded 2-core
 * machine; 300 MiB runs the same way). Bound: what the client holds after a full collection (V8
 * heap + buffers) grows less than 80 MiB in every phase, whatever the size: puts, reads, checks
 * and repairs go segment by segment. RSS, which also counts garbage not yet collected, was
 * measured at +70 to +96 MiB (160 and 300 MiB files); it is held under 140 MiB, below the file
 * itself, so the check stays meaningful (a whole-file put holds the file and its 3.3x shares)
 * without failing on the collector's timing on a busy machine.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const RUNNER = new URL('../../support/storage-memory-runner.ts', import.meta.url).pathname;
const MB = 1024 * 1024;
const SIZE = Number(process.env.DD_LARGE_FILE_MB ?? 160) * MB;

interface Result {
  error?: string;
  baselineMb: number;
  shareBytes: number;
  phases: { name: string; peakGrowthMb: number; peakLiveGrowthMb: number; seconds: number }[];
  sha256: { original: string; read: string };
  repairedIdentical: boolean;
  repair: { missing: number[]; repaired: number[]; lost: number };
}

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop() as string, { recursive: true, force: true });
});

function run(size: number, dir: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', RUNNER, JSON.stringify({ size, dir })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as Result);
      } catch {
        reject(new Error(`runner printed no result: ${out}`));
      }
    });
  });
}

describe('a file larger than the memory bound', () => {
  it(`puts, reads and repairs ${SIZE / MB} MiB through loopback servers with the client's memory bounded`, { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dd-large-'));
    dirs.push(dir);
    const r = await run(SIZE, dir);
    expect(r.error).toBeUndefined();
    // Shares are a third of the file each (3-of-10): the single share lost and regenerated is itself large.
    expect(r.shareBytes).toBeGreaterThan(SIZE / 3);
    expect(r.sha256.read).toBe(r.sha256.original);
    expect(r.repair).toMatchObject({ missing: [r.repair.lost], repaired: [r.repair.lost] });
    expect(r.repairedIdentical).toBe(true);
    for (const p of r.phases) {
      expect(p.peakGrowthMb, `${p.name}: RSS growth (${JSON.stringify(r.phases)})`).toBeLessThan(140);
      expect(p.peakLiveGrowthMb, `${p.name}: live memory growth`).toBeLessThan(80);
    }
    expect(SIZE / MB).toBeGreaterThan(100);
    console.log(`large file ${SIZE / MB} MiB: ${r.phases.map((p) => `${p.name} ${p.seconds} s, RSS +${p.peakGrowthMb} MiB, live +${p.peakLiveGrowthMb} MiB`).join('; ')}`);
  });
});
