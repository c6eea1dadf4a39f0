/**
 * Runs ElectrumX (installed by regtest/install-electrumx.sh into .tools/electrumx) against a
 * regtest node, for integration tests and `deaddrop --regtest`.
 *
 * For btcd a {@link startBtcdRpcProxy} translator sits between ElectrumX and the node (ElectrumX
 * speaks Core's RPC dialect); bitcoind needs none. ElectrumX listens on a free loopback port with a
 * LevelDB in a temp dir. `startElectrumX` resolves once it serves and has caught up to the node's
 * tip. `stop()` ends the process and removes the temp dir; a process `exit` hook kills whatever a
 * failed test left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ElectrumConnection } from '../chain/backends/electrum-client.js';
import { RpcClient } from '../chain/rpc.js';
import { DeaddropError } from '../util/errors.js';
import { sleep } from '../util/time.js';
import { startBtcdRpcProxy, type BtcdRpcProxy } from './btcd-rpc-proxy.js';
import { freePort } from './harness.js';

/** The node ElectrumX indexes: anything with an RPC URL and credentials (the harness's RegtestNode fits). */
export interface ElectrumXNode {
  /** Default 'btcd' (needs the translating proxy). */
  readonly kind?: 'btcd' | 'bitcoind';
  /** e.g. `http://127.0.0.1:18334/`. */
  readonly rpcUrl: string;
  readonly rpcUser: string;
  readonly rpcPass: string;
}

export interface ElectrumXOptions {
  /** Repo root holding `.tools/electrumx`; defaults to this file's repo. */
  readonly repoRoot?: string;
  /** How long to wait for ElectrumX to serve and catch up (default 60 s). */
  readonly startTimeoutMs?: number;
  /** Receives every line ElectrumX logs and every RPC error the proxy sees (debugging). */
  readonly log?: (line: string) => void;
  /**
   * ElectrumX >= 1.18 pads TCP responses against traffic analysis and holds small ones up to 1 s
   * to fill a packet, so a client's sequential calls cost about 1 s each after the first 1 KiB.
   * `true` sets that hold time to 0 (padding stays) for suites that make many sequential calls.
   * Default false: behave like a real server.
   */
  readonly immediateResponses?: boolean;
}

export interface ElectrumXServer {
  /** `electrum+tcp://127.0.0.1:<port>` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Resolves once ElectrumX's tip is at least `height`. */
  waitForHeight(height: number, timeoutMs?: number): Promise<void>;
  /** Stops ElectrumX and starts it again on the same port and database (reconnect tests); resolves once it caught up. */
  restart(downMs?: number): Promise<void>;
  /** Stops ElectrumX and the proxy and removes the database. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOG_TAIL = 40;
const live = new Set<Running>();
let exitHookInstalled = false;

/** Starts ElectrumX for `node`; see the module comment. */
export async function startElectrumX(node: ElectrumXNode, opts: ElectrumXOptions = {}): Promise<ElectrumXServer> {
  const bin = path.join(opts.repoRoot ?? DEFAULT_REPO_ROOT, '.tools', 'electrumx', 'bin', 'electrumx_server');
  if (!existsSync(bin)) throw DeaddropError.notFound(`ElectrumX is not installed (${bin}): run bash regtest/install-electrumx.sh`);
  const proxy = node.kind === 'bitcoind' ? undefined : await startBtcdRpcProxy({ target: node.rpcUrl, onError: (l) => opts.log?.(`proxy: ${l}`) });
  const dir = mkdtempSync(path.join(tmpdir(), 'deaddrop-electrumx-'));
  const port = await freePort();
  const env = electrumxEnv(node, proxy, dir, port);
  const tail: string[] = [];
  const onLine = (line: string): void => {
    tail.push(line);
    if (tail.length > LOG_TAIL) tail.shift();
    opts.log?.(line);
  };
  const cmd: Command = { file: path.join(path.dirname(bin), 'python'), args: ['-c', LAUNCHER, opts.immediateResponses ? 'immediate' : 'padded'] };
  const entry: Running = { child: launch(cmd, env, onLine), dir };
  live.add(entry);
  installExitHook();

  const catchUp = async (): Promise<void> => waitForHeight(port, await nodeHeight(node), opts.startTimeoutMs ?? 60_000, entry.child, tail);
  let stopping: Promise<void> | undefined;
  const server: ElectrumXServer = {
    url: `electrum+tcp://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    waitForHeight: (height, timeoutMs = 30_000) => waitForHeight(port, height, timeoutMs, entry.child, tail),
    restart: async (downMs = 0) => {
      if (stopping) throw DeaddropError.closed('ElectrumX');
      await terminate(entry.child);
      if (downMs > 0) await sleep(downMs);
      entry.child = launch(cmd, env, onLine);
      await catchUp();
    },
    stop: () =>
      (stopping ??= (async () => {
        await terminate(entry.child);
        await proxy?.close();
        rmSync(dir, { recursive: true, force: true });
        live.delete(entry);
      })()),
  };
  try {
    await catchUp();
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

interface Running {
  child: ChildProcess;
  readonly dir: string;
}

interface Command {
  readonly file: string;
  readonly args: string[];
}

/**
 * electrumx_server, plus a watchdog: when its stdin (a pipe from this process) reaches EOF because
 * this process died, even by SIGKILL, it shuts ElectrumX down (SIGTERM, then a hard exit after
 * 10 s) and removes the database. With argv[1] == 'immediate' the response hold time is 0
 * (see `immediateResponses`).
 */
const LAUNCHER = `
import os, shutil, signal, sys, threading, time
orphaned = threading.Event()
def watchdog():
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except Exception:
        pass
    orphaned.set()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    os._exit(1)
threading.Thread(target=watchdog, daemon=True).start()
if sys.argv[1:] == ['immediate']:
    from electrumx.server.transport import PaddedRSTransport
    PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = 0.0
from electrumx.cli.electrumx_server import main
rc = main()
if orphaned.is_set():
    shutil.rmtree(os.environ['DB_DIRECTORY'], ignore_errors=True)
sys.exit(rc)
`;

function launch(cmd: Command, env: NodeJS.ProcessEnv, onLine: (line: string) => void): ChildProcess {
  const child = spawn(cmd.file, cmd.args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.on('error', (e) => onLine(`spawn failed: ${e.message}`));
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8').on('data', (s: string) => s.split('\n').filter(Boolean).forEach(onLine));
  }
  return child;
}

function electrumxEnv(node: ElectrumXNode, proxy: BtcdRpcProxy | undefined, dir: string, port: number): NodeJS.ProcessEnv {
  const target = new URL(proxy ? proxy.url : node.rpcUrl);
  target.username = encodeURIComponent(node.rpcUser);
  target.password = encodeURIComponent(node.rpcPass);
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    COIN: 'Bitcoin',
    NET: 'regtest',
    DB_ENGINE: 'leveldb',
    DB_DIRECTORY: dir,
    DAEMON_URL: target.toString(),
    SERVICES: `tcp://127.0.0.1:${port}`,
    PEER_DISCOVERY: 'off',
    PEER_ANNOUNCE: '',
    ALLOW_ROOT: '1',
    CACHE_MB: '64',
    // Tests mine and broadcast and expect to see it quickly (defaults: 5 s).
    DAEMON_POLL_INTERVAL_BLOCKS: '100',
    DAEMON_POLL_INTERVAL_MEMPOOL: '100',
    // One test client makes many cheap calls; don't let cost throttling slow it down.
    COST_SOFT_LIMIT: '0',
    COST_HARD_LIMIT: '0',
    REQUEST_SLEEP: '0',
  };
}

/** The node's block count, asked directly (not through the proxy). */
async function nodeHeight(node: ElectrumXNode): Promise<number> {
  const client = new RpcClient({ url: node.rpcUrl, auth: { user: node.rpcUser, pass: node.rpcPass } });
  const height = await client.call<unknown>('getblockcount');
  if (typeof height !== 'number') throw DeaddropError.protocol('getblockcount: no number from the node');
  return height;
}

/** Polls ElectrumX's tip until it reaches `height`; fails at once if the process exits. */
async function waitForHeight(port: number, height: number, timeoutMs: number, child: ChildProcess, tail: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not serving yet';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw DeaddropError.unreachable('ElectrumX', `exited (${child.exitCode ?? child.signalCode}):\n${tail.join('\n')}`);
    }
    const got = await electrumHeight(port).catch((e: unknown) => (last = String(e), undefined));
    if (got !== undefined && got >= height) return;
    if (got !== undefined) last = `at height ${got}`;
    await sleep(100);
  }
  throw new DeaddropError('TIMEOUT', `ElectrumX did not reach height ${height} in ${timeoutMs} ms (${last}):\n${tail.join('\n')}`);
}

async function electrumHeight(port: number): Promise<number> {
  const conn = new ElectrumConnection({ host: '127.0.0.1', port, tls: false, timeoutMs: 5000, onNotification: () => undefined, onClose: () => undefined });
  try {
    await conn.connect();
    await conn.request('server.version', ['deaddrop-regtest', '1.4']);
    const tip = (await conn.request('blockchain.headers.subscribe', [])) as { height?: unknown };
    if (typeof tip?.height !== 'number') throw DeaddropError.protocol('headers.subscribe: no height');
    return tip.height;
  } finally {
    conn.close();
  }
}

/** SIGTERM (ElectrumX flushes and exits), SIGKILL after 5 s. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function killAllSync(): void {
  for (const { child, dir } of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  live.clear();
}

/** Kills every ElectrumX this process started when it exits or is interrupted (as the node harness does). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      killAllSync();
      process.removeListener(sig, onSignal);
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
