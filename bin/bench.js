#!/usr/bin/env node
/**
 * Benchmark runner behind `npm run bench`.
 *
 *   npm run bench                 run every bench/*.bench.ts
 *   npm run bench -- block tx     run only files whose name contains "block" or "tx"
 *
 * Each module runs in its own Node process (a clean JIT, and a bench that crashes or leaves
 * handles open cannot disturb the others). The child loads TypeScript through tsx, calls the
 * module's `run(emit)` and writes each result as one JSON line on stdout; console output of the
 * bench goes to stderr. The parent checks every line and prints the results, and only them, on
 * stdout. Progress and errors go to stderr; the exit code is 1 if any bench failed.
 * Environment: BENCH_TIMEOUT_S (default 300) kills a bench that runs longer.
 */
import { spawn } from 'node:child_process';
import { readdirSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH_DIR = join(ROOT, 'bench');
const SUFFIX = '.bench.ts';

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

/** Returns an error message, or undefined when `r` is a valid BenchResult. */
function invalid(r) {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return 'not an object';
  if (typeof r.name !== 'string' || r.name === '') return 'name must be a non-empty string';
  if (typeof r.unit !== 'string' || r.unit === '') return 'unit must be a non-empty string';
  if (typeof r.value !== 'number' || !Number.isFinite(r.value)) return `value must be a finite number, got ${String(r.value)}`;
  if (r.anchor !== undefined && typeof r.anchor !== 'string') return 'anchor must be a string';
  for (const k of ['anchorValue', 'ratio']) {
    if (r[k] !== undefined && (typeof r[k] !== 'number' || !Number.isFinite(r[k]))) return `${k} must be a finite number, got ${String(r[k])}`;
  }
  const known = new Set(['name', 'unit', 'value', 'anchor', 'anchorValue', 'ratio']);
  const extra = Object.keys(r).filter((k) => !known.has(k));
  return extra.length > 0 ? `unknown fields: ${extra.join(', ')}` : undefined;
}

/** Child mode: run one bench module in this process. */
async function child(file) {
  // Keep stdout for results only.
  for (const m of ['log', 'info', 'debug', 'dir', 'table']) console[m] = console.error;
  const { register } = await import('tsx/esm/api');
  register();
  const mod = await import(pathToFileURL(file).href);
  if (typeof mod.run !== 'function') throw new TypeError(`${file} does not export run(emit)`);
  const emit = (r) => {
    const why = invalid(r);
    if (why) throw new TypeError(`invalid BenchResult (${why}): ${JSON.stringify(r)}`);
    writeSync(1, `${JSON.stringify(r)}\n`);
  };
  await mod.run(emit);
}

/** Parent mode: runs one file in a child process; resolves to an error message or undefined. */
function runFile(file, timeoutMs) {
  return new Promise((resolveRun) => {
    const proc = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', file], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let problem;
    const timer = setTimeout(() => {
      problem = `timed out after ${timeoutMs / 1000} s`;
      proc.kill('SIGKILL');
    }, timeoutMs);
    const lines = createInterface({ input: proc.stdout });
    lines.on('line', (line) => {
      let parsed;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = undefined;
      }
      const why = parsed === undefined ? 'not JSON' : invalid(parsed);
      if (why) {
        problem ??= `wrote a line to stdout that is not a BenchResult (${why})`;
        process.stderr.write(`${line}\n`);
        return;
      }
      writeSync(1, `${JSON.stringify(parsed)}\n`);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && problem === undefined) problem = signal ? `killed by ${signal}` : `exited with code ${code}`;
      resolveRun(problem);
    });
  });
}

async function main(args) {
  const filters = args.filter((a) => !a.startsWith('-'));
  const files = readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith(SUFFIX))
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
    .sort();
  if (files.length === 0) {
    log(`no bench/*${SUFFIX} file matches ${filters.length ? filters.join(', ') : '(no filter)'}`);
    return 1;
  }
  const timeoutS = Number(process.env.BENCH_TIMEOUT_S ?? 300);
  if (!(timeoutS > 0)) {
    log(`BENCH_TIMEOUT_S must be a positive number of seconds, got ${process.env.BENCH_TIMEOUT_S}`);
    return 1;
  }
  const timeoutMs = timeoutS * 1000;
  const failed = [];
  for (const f of files) {
    const t0 = performance.now();
    log(`${f} ...`);
    const problem = await runFile(join(BENCH_DIR, f), timeoutMs);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (problem) {
      failed.push(f);
      log(`${f} FAILED after ${secs} s: ${problem}`);
    } else log(`${f} done in ${secs} s`);
  }
  log(`${files.length - failed.length}/${files.length} passed${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
  return failed.length > 0 ? 1 : 0;
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  child(argv[1]).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
} else {
  main(argv).then((code) => process.exit(code));
}
