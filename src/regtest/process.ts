/**
 * The processes behind the regtest harness: finding (or installing) the node binaries, free
 * ports, launching a node (its config file, arguments and log file), waiting for its RPC, and
 * killing it. Every node this process owns (not detached) is killed on exit, so no node
 * outlives a failed test. The node handle that drives them is in `harness.ts`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { NodeKind } from '../chain/dialect.js';
import { type RpcClient } from '../chain/rpc.js';
import { DeaddropError } from '../util/errors.js';
import { childEnv } from '../util/child-env.js';
import { sleep } from '../util/time.js';

/** Repository root (this file is `<root>/src/regtest/process.ts`). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How to (re)start one node process. */
export interface LaunchSpec {
  readonly kind: NodeKind;
  readonly binary: string;
  readonly args: string[];
  readonly nodeDir: string;
  readonly logFile: string;
  readonly detached: boolean;
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: every node this process owns is killed on exit.

/** A node this process started and must not leave behind. */
export interface Owned {
  readonly pid: number;
  readonly tempRoot: string | undefined;
}
const owned = new Set<Owned>();
let hooksInstalled = false;

function killOwnedSync(): void {
  for (const o of owned) {
    try {
      process.kill(o.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    if (o.tempRoot) rmSync(o.tempRoot, { recursive: true, force: true });
  }
  owned.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killOwnedSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      killOwnedSync();
      process.removeListener(sig, onSignal);
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Registers a node this process owns: it is killed (and its temp dir removed) if this process exits. */
export function own(pid: number, tempRoot: string | undefined): Owned {
  const entry: Owned = { pid, tempRoot };
  owned.add(entry);
  installExitHooks();
  return entry;
}

/** Forgets an owned node (stopped, or detached on purpose). */
export function disown(entry: Owned): void {
  owned.delete(entry);
}

// ---------------------------------------------------------------------------------------------
// Binaries, ports, liveness.

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The bitcoind to use: `$BITCOIND`, else `bitcoind` on PATH, else undefined. */
export function findBitcoind(): string | undefined {
  const env = process.env.BITCOIND;
  if (env) return resolve(env);
  return onPath('bitcoind');
}

/** Path of the pinned btcd, installing it first when it is missing. */
export async function ensureBtcd(log: (line: string) => void = () => undefined): Promise<string> {
  const bin = process.env.BTCD ? resolve(process.env.BTCD) : join(REPO_ROOT, '.tools', 'bin', 'btcd');
  if (existsSync(bin)) return bin;
  log('btcd is not installed: building it with regtest/install-btcd.sh (go install, about a minute)');
  try {
    await promisify(execFile)('bash', [join(REPO_ROOT, 'regtest', 'install-btcd.sh')], { timeout: 600_000 });
  } catch (err) {
    throw DeaddropError.unsupported(`btcd is not installed and regtest/install-btcd.sh failed: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!existsSync(bin)) throw DeaddropError.unsupported(`btcd not found at ${bin} after install`);
  return bin;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

/** True when `pid` is a live (not zombie) process, and when given, its command line mentions `marker`. */
export function isAlive(pid: number, marker?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    if (marker !== undefined) return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    // no /proc (not Linux): trust kill(0)
  }
  return true;
}

async function waitGone(pid: number, ms: number, marker?: string): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!isAlive(pid, marker)) return true;
    await sleep(50);
  }
  return !isAlive(pid, marker);
}

/** SIGTERM, wait, SIGKILL, wait. Resolves once the pid is gone. */
export async function killPid(pid: number, marker?: string, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid, marker)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitGone(pid, graceMs, marker)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitGone(pid, 5_000, marker);
}


// ---------------------------------------------------------------------------------------------
// Launch.

/** The node's own config file, holding only the RPC credentials (mode 0600). */
function nodeConfigFile(kind: NodeKind, nodeDir: string): string {
  return join(nodeDir, kind === 'btcd' ? 'btcd.conf' : 'bitcoin.conf');
}

/**
 * Writes the RPC credentials to the node's config file (0600), so they never appear on the
 * node's command line, where `ps` shows them to every user of the machine.
 */
export function writeNodeConfig(kind: NodeKind, nodeDir: string, user: string, pass: string): void {
  mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
  const body = kind === 'btcd'
    ? `[Application Options]\nrpcuser=${user}\nrpcpass=${pass}\n`
    : `rpcuser=${user}\nrpcpassword=${pass}\n`;
  const file = nodeConfigFile(kind, nodeDir);
  writeFileSync(file, body, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * `zmqPort` (bitcoind only): one loopback endpoint publishing `sequence` and `rawtx`, found by the backend via getzmqnotifications.
 * The RPC credentials are in the config file written by {@link writeNodeConfig}, not here.
 */
export function launchArgs(kind: NodeKind, nodeDir: string, port: number, miningAddress: string, zmqPort: number): string[] {
  if (kind === 'btcd') {
    return [
      '--regtest', '--notls', `--rpclisten=127.0.0.1:${port}`, `--configfile=${nodeConfigFile('btcd', nodeDir)}`,
      `--datadir=${join(nodeDir, 'data')}`, `--logdir=${join(nodeDir, 'logs')}`, '--nolisten', '--txindex',
      `--miningaddr=${miningAddress}`, '--rejectnonstd',
    ];
  }
  return [
    '-regtest', '-server=1', `-datadir=${nodeDir}`, '-rpcbind=127.0.0.1', '-rpcallowip=127.0.0.1', `-rpcport=${port}`,
    `-conf=${nodeConfigFile('bitcoind', nodeDir)}`, '-listen=0', '-dnsseed=0', '-fixedseeds=0', '-txindex=1', '-rest=1',
    '-disablewallet=1', '-acceptnonstdtxn=0', '-fallbackfee=0.0002', '-printtoconsole=0',
    `-zmqpubsequence=tcp://127.0.0.1:${zmqPort}`, `-zmqpubrawtx=tcp://127.0.0.1:${zmqPort}`,
  ];
}

/** Starts the node process, its output appended to `spec.logFile`. */
export function spawnNode(spec: LaunchSpec): ChildProcess {
  mkdirSync(spec.nodeDir, { recursive: true });
  const fd = openSync(spec.logFile, 'a');
  try {
    // A scrubbed environment: the node never sees DEADDROP_PASSPHRASE or any other secret of ours.
    const child = spawn(spec.binary, spec.args, { stdio: ['ignore', fd, fd], detached: spec.detached, env: childEnv() });
    child.on('error', () => undefined); // reported through the readiness wait
    if (spec.detached) child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-5).join(' | ');
  } catch {
    return '';
  }
}

/** Polls the RPC until it answers, the process dies, or the timeout passes. */
export async function waitReady(client: RpcClient, pid: number | undefined, logFile: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.call('getblockchaininfo', [], { timeoutMs: 2_000, idempotent: false });
      return;
    } catch (err) {
      if (pid === undefined || !isAlive(pid)) throw DeaddropError.unreachable(`regtest node (it exited: ${logTail(logFile)})`);
      if (Date.now() > until) throw DeaddropError.unreachable(`regtest node RPC after ${timeoutMs} ms`, (err as Error).message);
      await sleep(100);
    }
  }
}
