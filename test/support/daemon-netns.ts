/**
 * Real `deaddrop start` daemons inside the network namespaces of a {@link NetLab}, for the
 * end-to-end tests across hosts (test/node/mixnet/drop-netns.int.test.ts):
 *
 * - {@link ChainRelay}: the regtest node runs on the root namespace's loopback (the project's
 *   harness, src/regtest/); each namespace that needs the chain gets a relay on its own
 *   127.0.0.1:<same port>, piped through a unix socket to the node. The chain is therefore at the
 *   same URL everywhere, and its traffic never crosses the test's network (so the namespaces' TCP
 *   tables show only the mixnet's and the peers' connections).
 * - {@link NetnsDaemon}: `bin/deaddrop.js --datadir D start --json` spawned in a namespace; its
 *   API listens on that namespace's loopback, so every call goes through a short helper process
 *   run in the same namespace (test/support/netns-helper.mjs), as a user on that host would.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetLab } from './netns.js';
import { waitUntil } from './wait.js';

const HELPER = fileURLToPath(new URL('./netns-helper.mjs', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
// Not imported from ./cli.js: that module makes its HOME at import and removes it in a hook that a
// file whose tests are all skipped (no namespaces here) never runs; these tests bring their own HOME.
const CLI = fileURLToPath(new URL('../../bin/deaddrop.js', import.meta.url));

/**
 * Resolves with the child's stdout once it exited 0 and its output is read; rejects with its
 * stderr otherwise. It waits for 'close', not 'exit': 'exit' can come before the last of stdout
 * has been read (a loaded machine showed it as an empty answer, "Unexpected end of JSON input").
 */
function collect(child: ChildProcess, what: string, timeoutMs = 30_000): Promise<string> {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} timed out`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${what} exited ${code}: ${err.trim().slice(-2000)}`));
    });
  });
}

/** The regtest node's RPC port, reachable on 127.0.0.1 in every namespace given to {@link ChainRelay.into}. */
export class ChainRelay {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly socketPath: string;
  readonly port: number;

  private constructor(server: Server, socketPath: string, port: number) {
    this.#server = server;
    this.socketPath = socketPath;
    this.port = port;
  }

  /** Serves `<dir>/chain.sock`, piping every connection to 127.0.0.1:`port` (the regtest node). */
  static async open(dir: string, port: number): Promise<ChainRelay> {
    const socketPath = join(dir, 'chain.sock');
    const relay: ChainRelay = new ChainRelay(createServer((inbound) => {
      const outbound = connect(port, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        relay.#sockets.add(s);
        s.on('close', () => relay.#sockets.delete(s));
        s.on('error', () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound).pipe(inbound);
    }), socketPath, port);
    await new Promise<void>((resolve, reject) => {
      relay.#server.once('error', reject);
      relay.#server.listen(socketPath, () => resolve());
    });
    return relay;
  }

  /** Starts the relay inside `host`'s namespace (a child of the lab, stopped by it). */
  async into(lab: NetLab, host: string): Promise<void> {
    const child = lab.spawn(host, process.execPath, [HELPER, 'relay', String(this.port), this.socketPath]);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await waitUntil(() => {
      if (child.exitCode !== null) throw new Error(`chain relay in ${host} exited: ${err}`);
      return out.includes('ready');
    }, `the chain relay in ${host}`, 10_000, 50);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }
}

export interface NetnsDaemonOptions {
  readonly lab: NetLab;
  readonly host: string;
  readonly datadir: string;
  /** Global CLI arguments before `start` (e.g. the backend). */
  readonly args: readonly string[];
  /** Options of `start` itself. */
  readonly startArgs?: readonly string[];
  /** Added to the environment. */
  readonly env: Record<string, string>;
  /** HOME of the process (the test's own temp dir: `regtest up` and friends write under it). */
  readonly home: string;
}

/** What a daemon call answered. */
export interface ApiAnswer<T> {
  readonly status: number;
  readonly body: T;
}

/** A `deaddrop start` process in a namespace. */
export class NetnsDaemon {
  readonly name: string;
  readonly datadir: string;
  readonly #lab: NetLab;
  readonly #o: NetnsDaemonOptions;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #api = '';
  #token = '';
  log = '';

  private constructor(o: NetnsDaemonOptions, child: ChildProcess) {
    this.name = o.host;
    this.datadir = o.datadir;
    this.#lab = o.lab;
    this.#o = o;
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
  }

  /** Starts the daemon and resolves once it printed its API address. */
  static async start(o: NetnsDaemonOptions): Promise<NetnsDaemon> {
    const child = o.lab.spawn(o.host, process.execPath, [CLI, '--datadir', o.datadir, ...o.args, 'start', ...(o.startArgs ?? []), '--json'], {
      env: { ...process.env, HOME: o.home, ...o.env }, cwd: REPO,
    });
    const d = new NetnsDaemon(o, child);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const { api } = await waitUntil(() => {
      if (child.exitCode !== null) throw new Error(`the daemon in ${o.host} exited ${child.exitCode}: ${d.log.slice(-3000)}`);
      try {
        return JSON.parse(out) as { api: string };
      } catch {
        return undefined; // not the whole document yet
      }
    }, `the daemon in ${o.host} to start`, 90_000, 100);
    d.#api = api;
    d.#token = readFileSync(join(o.datadir, 'api.token'), 'utf8').trim();
    return d;
  }

  #helper(mode: 'api' | 'events', env: Record<string, string>): Promise<string> {
    const child = this.#lab.spawn(this.name, process.execPath, [HELPER, mode], {
      env: { ...process.env, DD_API: this.#api, DD_TOKEN: this.#token, ...env }, cwd: REPO,
    });
    return collect(child, `${mode} in ${this.name}`);
  }

  /** Calls the daemon's API from inside its namespace; any status is returned. */
  async call<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer<T>> {
    const out = await this.#helper('api', { DD_METHOD: method, DD_PATH: path, ...(body === undefined ? {} : { DD_BODY: JSON.stringify(body) }) });
    return JSON.parse(out) as ApiAnswer<T>;
  }

  /** Like {@link call}, but a non-2xx answer fails with the daemon's name, route and answer. */
  async api<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const r = await this.call<T>(method, path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${this.name} ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /**
   * Runs `deaddrop --datadir D <global args> <args> --json` inside the daemon's namespace, with the
   * daemon's environment, as its user would on that host; resolves with the parsed output.
   */
  async cli(args: readonly string[]): Promise<unknown> {
    const o = this.#o;
    const child = this.#lab.spawn(this.name, process.execPath, [CLI, '--datadir', o.datadir, ...o.args, ...args, '--json'], {
      env: { ...process.env, HOME: o.home, ...o.env }, cwd: REPO,
    });
    return JSON.parse(await collect(child, `deaddrop ${args[0] ?? ''} in ${this.name}`, 120_000)) as unknown;
  }

  /** The events the daemon replays to a new `/events?replay=1` subscriber (its recent history). */
  async events(): Promise<unknown[]> {
    return JSON.parse(await this.#helper('events', { DD_MS: '1000' })) as unknown[];
  }

  /** The daemon's process id (`ip netns exec` execs the daemon itself). */
  get pid(): number {
    return this.#child.pid as number;
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Starts the daemon again on the same datadir, host and options (after {@link stop}). */
  restart(): Promise<NetnsDaemon> {
    if (this.running) throw new Error(`the daemon in ${this.name} is still running`);
    return NetnsDaemon.start(this.#o);
  }

  /** SIGTERM, SIGKILL after 20 s; resolves once the process exited. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 20_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** Runs `deaddrop <args> --json` in the root namespace (set-up steps that need no daemon, e.g. init); resolves with its output. */
export async function runDeaddrop(args: readonly string[], env: Record<string, string>, home: string): Promise<unknown> {
  const child = spawn(process.execPath, [CLI, ...args, '--json'], { env: { ...process.env, HOME: home, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO });
  return JSON.parse(await collect(child, `deaddrop ${args.filter((a) => !a.startsWith('/')).join(' ')}`, 120_000)) as unknown;
}

/** Every file under `dir`, as latin1 text (binary files included: an address is looked for as text). */
export function datadirText(dir: string): string {
  let all = '';
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) all += datadirText(p);
    else if (st.isFile()) all += readFileSync(p).toString('latin1');
  }
  return all;
}

/** A regexp for an IPv4 address as text, not matching a longer address it is a prefix of. */
export function ipPattern(ip: string): RegExp {
  return new RegExp(`(?<![0-9])${ip.replace(/\./g, '\\.')}(?![0-9])`);
}

/**
 * Packet counters on the lab's bridge (nftables, bridge family, in the `net` namespace): every
 * IPv4 packet between two addresses, both directions, over the whole run, where sampling the TCP
 * tables could miss a short connection or a refused dial. Removed with the namespace.
 */
export class BridgeCounters {
  readonly #ns: string;
  readonly #names: string[];

  private constructor(ns: string, names: string[]) {
    this.#ns = ns;
    this.#names = names;
  }

  /** Starts counting the packets between each named pair of addresses. */
  static create(lab: NetLab, pairs: Record<string, readonly [string, string]>): BridgeCounters {
    const ns = `${lab.run}-net`;
    const names = Object.keys(pairs);
    const rules = [
      'table bridge dd_watch {',
      ...names.map((n) => `  counter ${n} {}`),
      '  chain watch {',
      '    type filter hook forward priority 0; policy accept;',
      ...names.flatMap((n) => {
        const [a, b] = pairs[n]!;
        return [`    ip saddr ${a} ip daddr ${b} counter name ${n}`, `    ip saddr ${b} ip daddr ${a} counter name ${n}`];
      }),
      '  }',
      '}',
    ].join('\n');
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: rules, stdio: ['pipe', 'pipe', 'pipe'] });
    return new BridgeCounters(ns, names);
  }

  /** Packets counted so far, by pair name. */
  read(): Record<string, number> {
    const out = execFileSync('ip', ['netns', 'exec', this.#ns, 'nft', '-j', 'list', 'counters', 'table', 'bridge', 'dd_watch'], { encoding: 'utf8' });
    const items = (JSON.parse(out) as { nftables: { counter?: { name: string; packets: number } }[] }).nftables;
    const got: Record<string, number> = {};
    for (const n of this.#names) got[n] = items.find((i) => i.counter?.name === n)?.counter?.packets ?? -1;
    return got;
  }
}
