/**
 * A private Tahoe-LAFS grid on 127.0.0.1 for the Tahoe backend's tests, built from PyPI
 * `tahoe-lafs` 1.20.0 in the project-local venv (regtest/install-tahoe.sh): one introducer, four
 * storage nodes and a client without storage (or several: `clients`, one per user who reaches the
 * grid through a Tahoe node of their own), each in its own directory under a fresh temp dir,
 * created with explicit loopback `--port`/`--location`/`--webport` (never `--hostname`, which
 * listens on every interface) and started with `tahoe run --allow-stdin-close`, each in its own
 * process group. Ready when every client's `/?t=json` lists every storage server as connected.
 *
 * Encoding on the clients: shares.needed = 2, shares.happy = 4, shares.total = 4. One share per
 * storage node (total = 4 = nodes), any 2 rebuild the file, so it survives any two nodes stopped;
 * happy = 4 makes an upload fail unless the four shares sit on four distinct nodes, so that
 * guarantee holds for every file that uploaded (a lower happy would let Tahoe double shares up on
 * one node when another is down, and losing that node would then cost two shares).
 *
 * Every Tahoe node also opens a "log tub" (Tahoe's `create_log_tub`, the `flogtool` log port) on
 * an ephemeral port bound to all interfaces, whatever the options say. The nodes here run through
 * a small launcher that binds that one to 127.0.0.1 too, then hands over to Tahoe's own runner
 * with `run --allow-stdin-close <dir>`, so nothing of the grid listens beyond loopback.
 *
 * Ports. A Tahoe node whose port is taken when it starts does not fail: it runs on without a
 * listener and the clients wait for it forever (seen once in CI: a port picked by bind(0) was
 * taken by another test between the pick and the node's start, seconds later). So the grid takes
 * its ports below the kernel's ephemeral range, which bind(0) and outgoing connections never hand
 * out, checks that each node listens on its own port before waiting for connections, and builds
 * the grid once more with fresh ports if the first build does not come up.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitUntil } from './wait.js';
import { VENV_PYTHON } from './zfec.js';

const run = promisify(execFile);

/** Tahoe's CLI, run through the venv's python (the console script's #! may point elsewhere). */
const CLI = 'import sys; from allmydata.scripts.runner import run; sys.exit(run(argv=["tahoe"] + sys.argv[1:]))';

/** `tahoe run`, with the log tub bound to loopback (see the module comment). */
const LAUNCHER = String.raw`
import socket, sys
import allmydata.util.iputil as iputil
def loopback_endpoint(portnum):
    if portnum is None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        portnum = s.getsockname()[1]
        s.close()
    return portnum, "tcp:%d:interface=127.0.0.1" % portnum
iputil._foolscapEndpointForPortNumber = loopback_endpoint
from allmydata.scripts.runner import run
sys.exit(run(argv=["tahoe", "run", "--allow-stdin-close", sys.argv[1]]))
`;

export const SHARES = { needed: 2, happy: 4, total: 4 } as const;
export const STORAGE_NODES = 4;

/** Whether tahoe-lafs 1.20.0 is importable from the venv (regtest/install-tahoe.sh installs it). */
export async function tahoeVersion(): Promise<string | undefined> {
  if (!existsSync(VENV_PYTHON)) return undefined;
  try {
    const { stdout } = await run(VENV_PYTHON, ['-c', CLI, '--version'], { timeout: 30_000 });
    return stdout.trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

interface NodeProc {
  readonly name: string;
  readonly dir: string;
  child: ChildProcess | undefined;
}

export interface TahoeGridOptions {
  /** Client nodes (no storage, each with its own web API); default 1. */
  readonly clients?: number;
}

export interface TahoeGrid {
  /** The first client's web API, e.g. http://127.0.0.1:PORT. */
  readonly url: string;
  /** Every client's web API (`url` first). */
  readonly clientUrls: readonly string[];
  /** The grid's root temp dir (a dir per node below it). */
  readonly root: string;
  /** Seconds from the first `tahoe run` to ready. */
  readonly startSeconds: number;
  /** Storage directory of storage node i (0-based): `<node>/storage`. */
  storageDir(i: number): string;
  /** Stops storage node i (its whole process group) and waits until it has exited. */
  stopStorage(i: number): Promise<void>;
  /** Starts storage node i again (same dir and port) and waits until the first client sees it connected. */
  startStorage(i: number): Promise<void>;
  /** Stops client node i (its whole process group) and waits until it has exited: its web API is gone. */
  stopClient(i: number): Promise<void>;
  /** Pids of the running nodes (each leads its own process group). */
  pids(): number[];
  /** Storage servers the first client currently lists as connected. */
  connectedServers(): Promise<number>;
  /** Waits until client `client` (default the first) lists `count` connected storage servers. */
  waitConnected(count: number, timeoutMs?: number, client?: number): Promise<void>;
  /** Stops every node, removes the dirs; idempotent, nothing left running. */
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Last resort: a test process that dies does not leave nodes behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) if (c.pid !== undefined) killGroup(c.pid, 'SIGKILL');
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function startNode(node: NodeProc): void {
  const log = openSync(join(node.dir, 'run.log'), 'a');
  try {
    const child = spawn(VENV_PYTHON, ['-c', LAUNCHER, node.dir], { detached: true, stdio: ['ignore', log, log] });
    node.child = child;
    live.add(child);
    child.once('exit', () => live.delete(child));
    // A spawn failure (no python) shows as an exited node in waitConnected's message.
    child.once('error', () => live.delete(child));
  } finally {
    closeSync(log);
  }
}

/** SIGTERM to the node's process group, SIGKILL after a grace period; resolves once it exited. */
async function stopNode(node: NodeProc, graceMs = 5_000): Promise<void> {
  const child = node.child;
  node.child = undefined;
  if (!child || child.pid === undefined) return;
  const pid = child.pid;
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
  killGroup(pid, 'SIGTERM');
  const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // The group may hold children of the node (none today); make sure none outlives it.
  killGroup(pid, 'SIGKILL');
}

/** Nodes that should run but exited, with the last line of their log, for timeout messages. */
function exitedNodes(nodes: readonly NodeProc[]): string {
  const dead = nodes.filter((n) => n.child && (n.child.exitCode !== null || n.child.signalCode !== null || n.child.pid === undefined));
  if (dead.length === 0) return '';
  const last = (n: NodeProc): string => {
    try {
      return readFileSync(join(n.dir, 'run.log'), 'utf8').trim().split('\n').at(-1) ?? '';
    } catch {
      return 'no log';
    }
  };
  return ` (exited: ${dead.map((n) => `${n.name}: ${last(n)}`).join('; ')})`;
}

async function tahoe(args: readonly string[]): Promise<void> {
  await run(VENV_PYTHON, ['-c', CLI, ...args], { timeout: 60_000 });
}

async function connected(url: string): Promise<number> {
  const res = await fetch(`${url}/?t=json`, { signal: AbortSignal.timeout(5_000) });
  const json = (await res.json()) as { servers?: { connection_status?: string }[] };
  return (json.servers ?? []).filter((s) => /^connected/i.test(s.connection_status ?? '')).length;
}

/** Builds and starts the grid; resolves once every client sees all four storage servers. */
export async function startTahoeGrid(opts: TahoeGridOptions = {}): Promise<TahoeGrid> {
  const clientCount = opts.clients ?? 1;
  if (!Number.isSafeInteger(clientCount) || clientCount < 1) throw new RangeError(`a grid needs at least one client, not ${clientCount}`);
  installExitHook();
  try {
    return await buildGrid(clientCount);
  } catch (err) {
    // A second build with fresh ports and dirs; a grid that fails twice fails the test.
    console.warn(`the Tahoe grid did not come up, building it once more: ${(err as Error).message}`);
    return await buildGrid(clientCount);
  }
}

/** The lowest port bind(0) and outgoing connections use here (Linux default 32768). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isSafeInteger(low) && low > 12_000) return low;
  } catch {
    // not Linux
  }
  return 32_768;
}

const handedOut = new Set<number>();

/** Whether nothing listens on 127.0.0.1:`port` right now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/**
 * A free port on 127.0.0.1 below the ephemeral range (see the module comment), not handed out
 * before by this process. Another process could still pick the same one on purpose; none of the
 * project's tests does.
 */
async function gridPort(): Promise<number> {
  const low = 10_000;
  const high = ephemeralLow();
  for (let tries = 0; tries < 200; tries++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port between ${low} and ${high} on 127.0.0.1`);
}

async function buildGrid(clientCount: number): Promise<TahoeGrid> {
  const root = await mkdtemp(join(tmpdir(), 'deaddrop-tahoe-'));
  const intro: NodeProc = { name: 'introducer', dir: join(root, 'introducer'), child: undefined };
  const storage: NodeProc[] = Array.from({ length: STORAGE_NODES }, (_, i) => ({ name: `storage${i}`, dir: join(root, `storage${i}`), child: undefined }));
  const clients: NodeProc[] = Array.from({ length: clientCount }, (_, i) => {
    const name = i === 0 ? 'client' : `client${i}`;
    return { name, dir: join(root, name), child: undefined };
  });
  const all = [intro, ...storage, ...clients];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await Promise.all(all.map((n) => stopNode(n)));
      await rm(root, { recursive: true, force: true });
    })());

  try {
    const [introPort, ...ports] = await Promise.all([gridPort(), ...storage.map(() => gridPort())]);
    const webPorts = await Promise.all(clients.map(() => gridPort()));
    const loopback = (p: number | undefined): string[] => [`--port=tcp:${p}:interface=127.0.0.1`, `--location=tcp:127.0.0.1:${p}`];
    /** Waits until `node` listens on 127.0.0.1:`port`; names a node that runs without it. */
    const listening = (node: NodeProc, port: number | undefined): Promise<unknown> =>
      waitUntil(
        () => node.child?.pid !== undefined && listeningSockets([node.child.pid]).includes(`127.0.0.1:${port}`),
        () => `${node.name} listening on 127.0.0.1:${port}${exitedNodes(all)}`,
        { timeoutMs: 30_000, intervalMs: 100, retryOnError: true },
      );
    await tahoe(['create-introducer', '--listen=tcp', ...loopback(introPort), intro.dir]);
    const t0 = Date.now();
    startNode(intro);
    await listening(intro, introPort);
    // The introducer writes its fURL on first start; nodes need it to join.
    const furlFile = join(intro.dir, 'private', 'introducer.furl');
    const furl = await waitUntil(async () => existsSync(furlFile) && (await readFile(furlFile, 'utf8')).trim(), 'the introducer fURL', 30_000);
    await Promise.all([
      ...storage.map((n, i) => tahoe(['create-node', `--nickname=${n.name}`, '--listen=tcp', ...loopback(ports[i]), '--webport=none', `--introducer=${furl}`, n.dir])),
      ...clients.map((c, i) => tahoe([
        'create-node', `--nickname=${c.name}`, '--no-storage', '--listen=none', `--webport=tcp:${webPorts[i]}:interface=127.0.0.1`,
        `--shares-needed=${SHARES.needed}`, `--shares-happy=${SHARES.happy}`, `--shares-total=${SHARES.total}`,
        `--introducer=${furl}`, c.dir,
      ])),
    ]);
    for (const n of [...storage, ...clients]) startNode(n);
    await Promise.all([...storage.map((n, i) => listening(n, ports[i])), ...clients.map((c, i) => listening(c, webPorts[i]))]);
    const clientUrls = webPorts.map((p) => `http://127.0.0.1:${p}`);
    const url = clientUrls[0] as string;
    const waitConnectedAt = async (at: string, count: number, timeoutMs = 60_000): Promise<void> => {
      await waitUntil(async () => (await connected(at).catch(() => -1)) === count, () => `${count} connected Tahoe storage servers at ${at}${exitedNodes(all)}`, { timeoutMs, intervalMs: 200 });
    };
    await Promise.all(clientUrls.map((u) => waitConnectedAt(u, STORAGE_NODES)));
    const startSeconds = (Date.now() - t0) / 1000;
    const node = (i: number): NodeProc => {
      const n = storage[i];
      if (!n) throw new RangeError(`no storage node ${i}`);
      return n;
    };
    const clientNode = (i: number): NodeProc => {
      const c = clients[i];
      if (!c) throw new RangeError(`no client node ${i}`);
      return c;
    };
    const waitConnected = (count: number, timeoutMs?: number, client = 0): Promise<void> => {
      clientNode(client);
      return waitConnectedAt(clientUrls[client] as string, count, timeoutMs);
    };
    return {
      url,
      clientUrls,
      root,
      startSeconds,
      storageDir: (i) => join(node(i).dir, 'storage'),
      stopStorage: (i) => stopNode(node(i)),
      startStorage: async (i) => {
        if (node(i).child) return;
        startNode(node(i));
        await waitUntil(
          async () => {
            const res = await fetch(`${url}/?t=json`, { signal: AbortSignal.timeout(5_000) });
            const json = (await res.json()) as { servers?: { nickname?: string; connection_status?: string }[] };
            return json.servers?.some((s) => s.nickname === node(i).name && /^connected/i.test(s.connection_status ?? ''));
          },
          `Tahoe storage node ${i} connected again`,
          { timeoutMs: 90_000, intervalMs: 200, retryOnError: true },
        );
      },
      stopClient: (i) => stopNode(clientNode(i)),
      pids: () => all.flatMap((n) => (n.child?.pid !== undefined && n.child.exitCode === null ? [n.child.pid] : [])),
      connectedServers: () => connected(url),
      waitConnected,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** IPv4 or IPv6 address from /proc/net/tcp{,6}'s hex (little-endian 32-bit words). */
function procAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups = Array.from({ length: 8 }, (_, i) => (((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0)).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/**
 * The TCP sockets the given processes listen on (`address:port`), from /proc (Linux), so the
 * tests can check that nothing of the grid listens beyond loopback.
 */
export function listeningSockets(pids: readonly number[]): string[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1] as string);
      } catch {
        // closed meanwhile
      }
    }
  }
  const out: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // fields: sl local_address rem_address st … inode (10th)
      if (f[3] !== '0A' || !inodes.has(f[9] ?? '')) continue;
      const [addr, port] = (f[1] ?? '').split(':');
      out.push(`${procAddress(addr ?? '')}:${parseInt(port ?? '0', 16)}`);
    }
  }
  return out;
}
