/**
 * The peer node's Tor side (`deaddrop start --tor [--tor-control <addr>] [--tor-only]`).
 *
 * - Tor: an existing tor reached over its control port, or one this node starts itself with its
 *   data directory under the datadir (`<datadir>/tor`, mode 0700). Bootstrap is followed through
 *   STATUS_CLIENT events; a control connection that closes (tor died) is noticed, the tor we own is
 *   restarted (an external one is reconnected) with backoff, and every onion is published again.
 * - Onions: the node's own onion (its identity key: the endpoint contacts and whereabouts carry),
 *   and one per live invite, whose key is the invite's pairwise key, so a drop carries the 3-byte
 *   hint 0x05. Invites are read from the node database every second (`drop send` may run in
 *   another process); an invite's onion is removed once the invite expired, or some minutes after
 *   it was used. All are removed when the node stops (they are published with Flags=Detach).
 * - Dialing: `.onion` endpoints, and with `only` every endpoint, go through the SOCKS port with
 *   per-peer stream isolation (./socks.ts). In `only` mode nothing is dialed directly.
 * Log lines name no onion, peer or endpoint (they would link a user's actions).
 */
import { join } from 'node:path';
import { normalizeEndpoint, onionAddress } from '../../deaddrop/endpoint.js';
import { DeaddropError } from '../../util/errors.js';
import { ed25519FromSeed, wipe } from '../crypto.js';
import type { SqliteDatabase } from '../db.js';
import type { NodeIdentity } from '../identity.js';
import type { DialRoute } from '../node.js';
import { parseEndpoint } from '../transport/ws-transport.js';
import { TorControl, parseControlAddress } from './control.js';
import type { BootstrapStatus } from './control.js';
import { TorProcess } from './process.js';
import { TorSocksConnector } from './socks.js';
import type { SocksAddress } from './socks.js';
import { toHex } from '../../util/bytes.js';
import { Backoff, sleep } from '../../util/time.js';
import type { NodeTorStatus } from '../../feature/tor-status.js';
import { Lifecycle } from '../../util/lifecycle.js';

/** Tor options of the node. */
export interface NodeTorOptions {
  /** Control port of an existing tor ("host:port", "port" or "unix:/path"); default: start our own. */
  readonly control?: string;
  /** Password for that control port (else cookie or no authentication, as tor offers). */
  readonly controlPassword?: string;
  /** Dial every endpoint through Tor and announce only onions. */
  readonly only?: boolean;
  /** Extra torrc lines for the tor we start (the tests' private network). */
  readonly torrc?: readonly string[];
  /** The onions' virtual port (default 80). */
  readonly virtualPort?: number;
  /** How long an used invite's onion stays up (default 10 min). */
  readonly usedInviteGraceMs?: number;
}

/** What `/node/tor` and `deaddrop node status` show; declared with the feature contract, where `/status` needs it. */
export type { NodeTorStatus };

interface Published {
  readonly kind: 'node' | 'introduction';
  readonly seed: Uint8Array;
  readonly target: string;
  /** token id (hex) of an introduction's invite */
  readonly invite: string | null;
  live: boolean;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for an endpoint on the onion network. */
export function isOnionEndpoint(url: string): boolean {
  return parseEndpoint(url)?.hostname.endsWith('.onion') ?? false;
}

/** The Tor side of one running node. */
export class NodeTor {
  readonly #opts: NodeTorOptions;
  readonly #dataDir: string;
  readonly #log: (line: string) => void;
  #control: TorControl | null = null;
  #process: TorProcess | null = null;
  #socks: TorSocksConnector | null = null;
  #bootstrap: BootstrapStatus = { progress: 0, tag: 'starting', summary: 'Starting' };
  readonly #onions = new Map<string, Published>();
  #restarts = 0;
  #lastError: string | null = null;
  readonly #life = new Lifecycle('tor', { open: () => this.#connect(), close: () => this.#close() });
  #reconnecting: Promise<void> | null = null;
  #inviteTimer: NodeJS.Timeout | null = null;
  #publishing: Promise<void> = Promise.resolve();
  readonly #dialed = new Map<string, 'tor' | 'direct'>();

  private constructor(opts: NodeTorOptions, dataDir: string, log: (line: string) => void) {
    this.#opts = opts;
    this.#dataDir = dataDir;
    this.#log = log;
  }

  /** Connects to (or starts) tor. Does not wait for bootstrap: see {@link waitBootstrapped}. */
  static async open(opts: NodeTorOptions, datadir: string, log: (line: string) => void): Promise<NodeTor> {
    const t = new NodeTor(opts, join(datadir, 'tor'), log);
    try {
      await t.#life.ready();
    } catch (err) {
      // A tor started (or a control connection opened) before the failure must not outlive it.
      await t.close();
      throw err;
    }
    return t;
  }

  /** Whether dialing clear-net endpoints directly is forbidden. */
  get only(): boolean {
    return this.#opts.only === true;
  }

  get virtualPort(): number {
    return this.#opts.virtualPort ?? 80;
  }

  async #connect(): Promise<void> {
    let control: TorControl;
    let socks: SocksAddress;
    if (this.#opts.control === undefined) {
      const proc = await TorProcess.start({ dataDir: this.#dataDir, torrc: this.#opts.torrc ?? [] });
      this.#process = proc;
      control = proc.control;
      socks = proc.socks!;
    } else {
      control = await TorControl.connect(parseControlAddress(this.#opts.control));
      try {
        await control.authenticate(this.#opts.controlPassword !== undefined ? { password: this.#opts.controlPassword } : {});
        const listeners = (await control.getInfo('net/listeners/socks'))['net/listeners/socks'] ?? '';
        const m = /"?([0-9.]+|\[[0-9a-f:]+\]):(\d+)"?/i.exec(listeners);
        if (!m) throw new DeaddropError('UNSUPPORTED', 'the tor at --tor-control has no SOCKS port');
        socks = { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
      } catch (err) {
        control.close();
        throw err;
      }
    }
    this.#control = control;
    this.#socks = new TorSocksConnector(socks);
    control.on('bootstrap', (b) => {
      const was = this.#bootstrap.progress;
      this.#bootstrap = b;
      if (b.progress === 100 && was < 100) this.#log('tor: bootstrapped');
    });
    control.on('close', () => this.#onLost());
    await control.watchBootstrap();
    this.#bootstrap = await control.bootstrapStatus();
  }

  #onLost(): void {
    if (this.#life.closing) return;
    this.#control = null;
    this.#bootstrap = { progress: 0, tag: 'lost', summary: 'Connection to tor lost' };
    for (const p of this.#onions.values()) p.live = false;
    this.#lastError = 'the connection to tor was lost';
    this.#log('tor: the connection to tor was lost; reconnecting');
    this.#reconnecting ??= this.#reconnect().finally(() => (this.#reconnecting = null));
  }

  async #reconnect(): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
    while (!this.#life.closing) {
      try {
        await this.#process?.stop(2_000);
        this.#process = null;
        if (this.#life.closing) return;
        await this.#connect();
        if (this.#life.closing) return;
        this.#restarts++;
        this.#log(`tor: ${this.#opts.control === undefined ? 'restarted' : 'reconnected'}; publishing onions again`);
        await this.#republish();
        return;
      } catch (err) {
        this.#lastError = message(err);
        this.#log(`tor: reconnect failed: ${message(err)}`);
        // Cut short by close(), which waits for this loop.
        await sleep(backoff.next(), this.#life.signal).catch(() => undefined);
      }
    }
  }

  async #republish(): Promise<void> {
    for (const [address, p] of this.#onions) {
      if (p.live || this.#control === null) continue;
      await this.#add(address, p);
    }
  }

  async #add(address: string, p: Published): Promise<void> {
    const control = this.#control;
    if (control === null) return;
    const [host, port] = [p.target.slice(0, p.target.lastIndexOf(':')), p.target.slice(p.target.lastIndexOf(':') + 1)];
    try {
      const id = await control.addOnion(p.seed, [{ virtualPort: this.virtualPort, target: `${host}:${port}` }]);
      if (id !== address) throw new DeaddropError('PROTOCOL', 'tor published the onion under another address');
      p.live = true;
    } catch (err) {
      // already published (tor kept it across our reconnect): take it as live
      if (err instanceof DeaddropError && /550 Onion address collision/i.test(err.message)) p.live = true;
      else throw err;
    }
  }

  /** Resolves once tor reports 100% bootstrapped (rejects with TIMEOUT after `timeoutMs`). */
  async waitBootstrapped(timeoutMs = 120_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.#bootstrap.progress < 100) {
      if (this.#life.closing) throw new DeaddropError('CLOSED', 'tor closed');
      if (Date.now() > until) throw new DeaddropError('TIMEOUT', 'tor did not bootstrap in time');
      await sleep(200);
    }
  }

  /**
   * Publishes the onion of `seed` (copied, kept in memory to publish it again after a tor
   * restart) forwarding to `target` (host:port). Returns its endpoint URL.
   */
  async publish(seed: Uint8Array, target: string, kind: 'node' | 'introduction', invite: string | null = null): Promise<string> {
    const kp = ed25519FromSeed(seed);
    wipe(kp.secretKey);
    const address = onionAddress(kp.publicKey);
    const existing = this.#onions.get(address);
    if (existing) return this.#endpoint(address);
    const p: Published = { kind, seed: seed.slice(), target, invite, live: false };
    this.#onions.set(address, p);
    await this.#add(address, p);
    return this.#endpoint(address);
  }

  #endpoint(address: string): string {
    return normalizeEndpoint(`ws://${address}.onion:${this.virtualPort}`);
  }

  /** The endpoint of the onion of an Ed25519 public key (what a drop's 0x05 hint names). */
  endpointOf(publicKey: Uint8Array): string {
    return this.#endpoint(onionAddress(publicKey));
  }

  async #remove(address: string): Promise<void> {
    const p = this.#onions.get(address);
    if (!p) return;
    this.#onions.delete(address);
    wipe(p.seed);
    if (p.live && this.#control) await this.#control.delOnion(address).catch(() => undefined);
  }

  /**
   * Keeps an onion up for every live invite in the node database (its key: the invite's pairwise
   * key, derived from the identity and the token id), forwarding to `target`.
   */
  watchInvites(db: SqliteDatabase, identity: NodeIdentity, target: string, intervalMs = 1000): void {
    const live = db.prepare('SELECT token_id AS id, used_at AS used FROM invites WHERE expires_at > ? AND (used_at IS NULL OR used_at > ?)');
    const tick = (): void => {
      if (this.#life.closing) return;
      this.#publishing = this.#publishing.then(async () => {
        const now = Date.now();
        let rows: { id: Buffer; used: number | null }[];
        try {
          rows = live.all(now, now - (this.#opts.usedInviteGraceMs ?? 600_000)) as { id: Buffer; used: number | null }[];
        } catch {
          return; // database closed under us (shutdown)
        }
        const wanted = new Set(rows.map((r) => r.id.toString('hex')));
        for (const [address, p] of [...this.#onions]) {
          if (p.kind === 'introduction' && p.invite !== null && !wanted.has(p.invite)) await this.#remove(address);
        }
        const have = new Set([...this.#onions.values()].map((p) => p.invite));
        for (const r of rows) {
          const id = r.id.toString('hex');
          if (have.has(id) || this.#life.closing || this.#control === null) continue;
          const seed = identity.derive('pairwise-key', new Uint8Array(r.id), 32);
          try {
            await this.publish(seed, target, 'introduction', id);
          } catch (err) {
            this.#lastError = message(err);
          } finally {
            wipe(seed);
          }
        }
      });
    };
    tick();
    this.#inviteTimer = setInterval(tick, intervalMs);
  }

  /** Resolves once the onions of the invites seen so far are published (tests, `drop send`). */
  settled(): Promise<void> {
    return this.#publishing;
  }

  /**
   * How to dial `url` for `peer` (node.ts `route`): through SOCKS for onions (and everything in
   * `only` mode), isolated per peer; directly otherwise.
   */
  route(url: string, peer: Uint8Array): DialRoute | null {
    const viaTor = this.only || isOnionEndpoint(url);
    if (!viaTor) return {};
    const socks = this.#socks;
    if (socks === null || this.#control === null) return this.only ? { agent: this.#deadAgent() } : null;
    return { agent: socks.agent(toHex(peer)) };
  }

  /** In `only` mode while tor is down: an agent that fails, never a direct connection. */
  #deadAgent(): DialRoute['agent'] {
    const socks = new TorSocksConnector({ host: '127.0.0.1', port: 9 });
    return socks.agent('down', { timeoutMs: 1000 });
  }

  /** Whether `url` is one of the onions this node publishes (a drop it sent itself). */
  publishes(url: string): boolean {
    const host = parseEndpoint(url)?.hostname;
    return host !== undefined && host.endsWith('.onion') && this.#onions.has(host.slice(0, -'.onion'.length));
  }

  /** Endpoints this node may announce: onions only in `only` mode. */
  announceable(endpoints: readonly string[]): string[] {
    return this.only ? endpoints.filter(isOnionEndpoint) : [...endpoints];
  }

  /** Records how we reached a peer we dialed (node.ts `peer.dialed`). */
  noteDialed(peer: Uint8Array, url: string): void {
    this.#dialed.set(toHex(peer), this.only || isOnionEndpoint(url) ? 'tor' : 'direct');
  }

  /** Forgets a peer's route when its session ends. */
  noteDisconnected(peer: Uint8Array): void {
    this.#dialed.delete(toHex(peer));
  }

  /** Status with `connected` the peers that have a session now. */
  status(connected: readonly Uint8Array[] = []): NodeTorStatus {
    return {
      only: this.only,
      port: this.virtualPort,
      managed: this.#opts.control === undefined,
      connected: this.#control !== null,
      bootstrapped: this.#control !== null && this.#bootstrap.progress === 100,
      progress: this.#bootstrap.progress,
      summary: this.#bootstrap.summary,
      onions: [...this.#onions].filter(([, p]) => p.live).map(([address, p]) => ({ address: `${address}.onion`, kind: p.kind })),
      restarts: this.#restarts,
      lastError: this.#lastError,
      peers: connected.map((n) => ({ node: toHex(n), via: this.#dialed.get(toHex(n)) ?? 'inbound' })),
    };
  }

  /** The tor process we started (tests: kill it to see recovery), or null. */
  get process(): TorProcess | null {
    return this.#process;
  }

  /** Removes every onion, stops the tor we started or closes the control connection. */
  close(): Promise<void> {
    return this.#life.close();
  }

  async #close(): Promise<void> {
    if (this.#inviteTimer) clearInterval(this.#inviteTimer);
    await this.#publishing.catch(() => undefined);
    await this.#reconnecting?.catch(() => undefined);
    for (const address of [...this.#onions.keys()]) await this.#remove(address);
    this.#control?.close();
    this.#control = null;
    await this.#process?.stop();
    this.#process = null;
  }
}
