/** Runs the real `deaddrop` CLI in a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../bin/deaddrop.js', import.meta.url));

/**
 * HOME for the CLI processes of one test file (unless a test passes its own): `regtest up`
 * publishes its node in `~/.deaddrop/regtest-node.json` for every datadir of the user, so
 * tests must not share (or write) the real one.
 */
let testHome: string | undefined;
function home(): string {
  // Made on first use: a file whose tests all skip creates none (and so leaves none behind).
  return (testHome ??= mkdtempSync(join(tmpdir(), 'dd-home-')));
}
// Registered on the importing test file: its HOME goes with it.
afterAll(() => {
  if (testHome) rmSync(testHome, { recursive: true, force: true });
});

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, HOME: home(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`deaddrop ${args.join(' ')} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Runs the CLI with `--json` and parses stdout; throws with stderr when it fails. */
export async function runCliJson<T = Record<string, unknown>>(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<T> {
  const r = await runCli([...args, '--json'], env);
  if (r.code !== 0) throw new Error(`deaddrop ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as T;
}

/** A `deaddrop start` child process and what it printed. */
export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly datadir: string;
  readonly api: string;
  readonly token: string;
}

/**
 * Starts `deaddrop --datadir D <args> start --json` and resolves once it printed its API URL.
 * `env` replaces DEADDROP_PASSPHRASE entirely: without it there, the daemon's wallet stays locked.
 */
/** `startArgs` are options of `start` itself (e.g. `--provider`); `args` go before the command. */
export function startDaemonProcess(datadir: string, args: readonly string[], env: Record<string, string>, startArgs: readonly string[] = []): Promise<DaemonProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, HOME: home(), ...env };
  if (!('DEADDROP_PASSPHRASE' in env)) delete childEnv.DEADDROP_PASSPHRASE;
  const child = spawn(process.execPath, [CLI, '--datadir', datadir, ...args, 'start', ...startArgs, '--json'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start: ${stderr}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      try {
        const { api } = JSON.parse(stdout) as { api: string };
        clearTimeout(timer);
        resolve({ child, datadir, api, token: readFileSync(join(datadir, 'api.token'), 'utf8').trim() });
      } catch {
        // not the whole document yet
      }
    });
    child.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${stderr}`)));
  });
}

/** SIGTERM, then SIGKILL after 20 s; resolves when the process has exited. */
export async function stopDaemonProcess(d: DaemonProcess | undefined): Promise<void> {
  if (!d || d.child.exitCode !== null) return;
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  const timer = setTimeout(() => d.child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/**
 * `--backend <url without credentials> --backend-auth-file <file>` for a backend URL with
 * credentials: the way to pass a node password without showing it in `ps` (no warning).
 * The file (0600) is written in `dir`.
 */
export function backendArgs(backendUrl: string, dir: string): string[] {
  const u = new URL(backendUrl);
  if (!u.password) return ['--backend', backendUrl];
  const file = join(dir, `backend-auth-${u.port}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}\n`, { mode: 0o600 });
  u.username = '';
  u.password = '';
  return ['--backend', u.toString(), '--backend-auth-file', file];
}
