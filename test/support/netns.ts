/**
 * A small internet of network namespaces for multi-host tests (root only; /work/shared/notes
 * "Many hosts on one machine"). Every test run gets namespaces of its own, named
 * `dd<run>-<host>`, and removes them in `destroy()` (also from a process exit hook, so a crashed
 * run leaves nothing behind):
 *
 * - `dd<run>-net`: the "internet", a bridge `br0` with no address; every public host and the NAT
 *   router's WAN side hang on it by veth pairs.
 * - a public host: `eth0` = 198.18.0.<10+i>/24 (PUBLIC_NET).
 * - `dd<run>-gw`: the NAT router: `wan` = 198.18.0.2/24 on the bridge, `lan` bridge = 198.19.0.1/24,
 *   IPv4 forwarding on, and the nftables table `ip dd_nat` masquerading what leaves by `wan` and
 *   refusing new connections from outside.
 * - a host behind NAT: `eth0` = 198.19.0.<10+i>/24 (PRIVATE_NET), default route via the router.
 *   Public hosts have no route to PRIVATE_NET: they see the router's address only.
 *
 * The addresses are the project's own test addresses: 198.18.0.0/15, the block RFC 2544 reserves
 * for network tests, never routed on the internet. Traffic stays inside the namespaces.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PUBLIC_NET = '198.18.0';
export const PRIVATE_NET = '198.19.0';
/** The NAT router's public address: what public hosts see of a host behind NAT. */
export const ROUTER_WAN_IP = `${PUBLIC_NET}.2`;

export interface NetHost {
  readonly name: string;
  /** The namespace. */
  readonly ns: string;
  /** The host's own address. */
  readonly ip: string;
  readonly natted: boolean;
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * A namespace test's teardown: `stop` ends what the test started, then, whatever it threw, the lab
 * is destroyed and `dirs` removed; throws when a namespace of the lab outlived it.
 */
export async function tearDownLab(lab: NetLab | undefined, stop: () => Promise<unknown>, ...dirs: (string | undefined)[]): Promise<void> {
  const stopped = await stop().then(() => null, (err: unknown) => ({ err }));
  const left = lab ? (await lab.destroy(), lab.leftovers()) : [];
  for (const dir of dirs) if (dir) rmSync(dir, { recursive: true, force: true });
  if (left.length > 0) throw new Error(`network namespaces left behind: ${left.join(', ')}`);
  if (stopped) throw stopped.err;
}

/** Why namespace tests cannot run here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'network namespaces need root';
  try {
    run('ip', ['netns', 'list']);
  } catch {
    return '`ip netns` is not available (install iproute2: regtest/install-netns.sh)';
  }
  return null;
}

function ensureNft(): void {
  try {
    run('nft', ['--version']);
  } catch {
    const script = fileURLToPath(new URL('../../regtest/install-netns.sh', import.meta.url));
    run('bash', [script]);
  }
}

export class NetLab {
  readonly run: string;
  readonly hosts = new Map<string, NetHost>();
  readonly #namespaces: string[] = [];
  readonly #children = new Set<ChildProcess>();
  #destroyed = false;
  readonly #exitHook = (): void => this.#removeAll();

  private constructor() {
    this.run = `dd${randomBytes(3).toString('hex')}`;
    process.on('exit', this.#exitHook);
  }

  /** Builds the network: `publicHosts` on the bridge, `nattedHosts` behind the NAT router. */
  static create(publicHosts: readonly string[], nattedHosts: readonly string[]): NetLab {
    const lab = new NetLab();
    try {
      lab.#build(publicHosts, nattedHosts);
    } catch (err) {
      lab.#removeAll();
      throw err;
    }
    return lab;
  }

  #ns(name: string): string {
    const ns = `${this.run}-${name}`;
    run('ip', ['netns', 'add', ns]);
    this.#namespaces.push(ns);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  #build(publicHosts: readonly string[], nattedHosts: readonly string[]): void {
    const net = this.#ns('net');
    run('ip', ['-n', net, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', net, 'link', 'set', 'br0', 'up']);
    const plug = (ns: string, inner: string, port: string): void => {
      run('ip', ['-n', net, 'link', 'add', port, 'type', 'veth', 'peer', 'name', inner, 'netns', ns]);
      run('ip', ['-n', net, 'link', 'set', port, 'master', 'br0', 'up']);
    };
    publicHosts.forEach((name, i) => {
      const ns = this.#ns(name);
      const ip = `${PUBLIC_NET}.${10 + i}`;
      plug(ns, 'eth0', `p${i}`);
      run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      this.hosts.set(name, { name, ns, ip, natted: false });
    });
    if (nattedHosts.length === 0) return;
    ensureNft();
    const gw = this.#ns('gw');
    plug(gw, 'wan', 'pgw');
    run('ip', ['-n', gw, 'addr', 'add', `${ROUTER_WAN_IP}/24`, 'dev', 'wan']);
    run('ip', ['-n', gw, 'link', 'set', 'wan', 'up']);
    run('ip', ['-n', gw, 'link', 'add', 'lan', 'type', 'bridge']);
    run('ip', ['-n', gw, 'addr', 'add', `${PRIVATE_NET}.1/24`, 'dev', 'lan']);
    run('ip', ['-n', gw, 'link', 'set', 'lan', 'up']);
    run('ip', ['netns', 'exec', gw, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    const rules = [
      'table ip dd_nat {',
      '  chain post {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      '    oifname "wan" masquerade',
      '  }',
      '  chain guard {',
      '    type filter hook forward priority filter; policy drop;',
      '    ct state established,related accept',
      '    iifname "lan" oifname "wan" accept',
      '  }',
      '}',
    ].join('\n');
    execFileSync('ip', ['netns', 'exec', gw, 'nft', '-f', '-'], { input: rules, stdio: ['pipe', 'pipe', 'pipe'] });
    nattedHosts.forEach((name, i) => {
      const ns = this.#ns(name);
      const ip = `${PRIVATE_NET}.${10 + i}`;
      run('ip', ['-n', gw, 'link', 'add', `l${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      run('ip', ['-n', gw, 'link', 'set', `l${i}`, 'master', 'lan', 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', `${PRIVATE_NET}.1`]);
      this.hosts.set(name, { name, ns, ip, natted: true });
    });
  }

  host(name: string): NetHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** Runs `cmd args` inside `host`'s namespace (a child process this lab kills in destroy()). */
  spawn(host: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(host).ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Runs a short command inside `host`'s namespace and returns its stdout. */
  exec(host: string, cmd: string, args: readonly string[]): string {
    return run('ip', ['netns', 'exec', this.host(host).ns, cmd, ...args]);
  }

  /** The peers (address:port) of TCP connections established in `host`'s namespace. */
  tcpPeers(host: string): string[] {
    return this.exec(host, 'ss', ['-Htn', 'state', 'established']).split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/).pop()!);
  }

  /** Names of this run's namespaces that still exist. */
  leftovers(): string[] {
    return this.#namespaces.filter((ns) => existsSync(`/run/netns/${ns}`));
  }

  /** Stops every child, waits for them, and removes every namespace (and so the veths, bridges and nft table). */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    const waits = [...this.#children].map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
      setTimeout(() => c.kill('SIGKILL'), 3000).unref();
    }));
    await Promise.all(waits);
    this.#removeAll();
  }

  #removeAll(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    process.off('exit', this.#exitHook);
    for (const c of this.#children) c.kill('SIGKILL');
    for (const ns of [...this.#namespaces].reverse()) {
      // Processes still inside (none of ours should be) would keep the namespace's devices alive.
      try {
        for (const pid of run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }
}
