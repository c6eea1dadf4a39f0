/**
 * The long-running daemon: one chain backend, the wallet (when initialized and unlocked),
 * the watcher and peer node as they land, and the local API over all of them.
 * Lifecycle as in hypercore: `ready()` is memoized opening, `close()` memoized closing,
 * and nothing keeps running after close.
 */
import type { FastifyInstance } from 'fastify';
import type { ChainSource, ChainTip } from '../chain/types.js';
import { openBackend } from '../chain/open.js';
import { buildApp, listenLoopback } from '../api/app.js';
import { listenPublic, type PublicListener } from '../api/public-listener.js';
import type { DaemonStatus } from '../api/services.js';
import { removeApiUrl, removeStaleApiUrl, writeApiToken, writeApiUrl } from '../api/token.js';
import type { Network } from '../util/network.js';
import { DeaddropError } from '../util/errors.js';
import { EventBus } from '../util/event-bus.js';
import { secp } from '../util/secp.js';
import { Lifecycle } from '../util/lifecycle.js';
import { join } from 'node:path';
import { keystoreExists, openKeystore, readKeystoreMeta } from '../wallet/keystore.js';
import { WalletKeys } from '../wallet/keys.js';
import { Wallet } from '../wallet/wallet.js';
import { walletRoutes } from '../wallet/routes.js';
import { dashboardForApi } from '../dashboard/plugin.js';
import type { DaemonFeature, FeatureContext, RunningFeature } from '../feature/contract.js';
import { routeGroup, type ApiRoutePlugin } from '../feature/routes.js';
import type { TorStatusReport } from '../feature/tor-status.js';
import { lockDatadir, type DatadirLock } from './datadir-lock.js';
import { octal, secureDatadir, usePrivateUmask } from './file-modes.js';

/** Fee rate used when the backend has no estimate (sat/vB). */
export const FALLBACK_FEE_RATE = 2;

export const VERSION = '0.1.0';

/** A backend found or started for the daemon (the CLI's regtest node). */
export interface ResolvedBackend {
  readonly url: string;
  /** Runs after the daemon has closed the backend (stops a node started for this daemon). */
  release?(): Promise<void>;
}

/** Finds the backend when no URL is given; resolved by the caller (the CLI), never by the daemon. */
export type BackendResolver = (log: (line: string) => void) => Promise<ResolvedBackend>;

export interface DaemonOptions {
  readonly datadir: string;
  readonly network: Network;
  /** Explicit backend URL. Without it, `resolveBackend` finds one (the CLI's regtest node, see cli/regtest-backend.ts). */
  readonly backendUrl?: string;
  readonly resolveBackend?: BackendResolver;
  /** API port on 127.0.0.1; 0 (default) picks a free one. */
  readonly apiPort?: number;
  /** Log lines for humans (stderr in the CLI). Never given secrets. */
  readonly log?: (line: string) => void;
  /**
   * Supplies the keystore passphrase when a wallet exists; undefined keeps the wallet locked
   * (the daemon still runs, wallet routes answer NOT_INITIALIZED).
   */
  readonly passphrase?: () => Promise<string | undefined>;
  /**
   * `<addr>:<port>` of a second listener that serves only the public routes (PayPub content, the
   * public candidate index) to other machines. Off by default; see README "The local API".
   */
  readonly publicListen?: string;
  /** Log unexpected API errors with their stack. */
  readonly debug?: boolean;
  /** Features started after the wallet, in order; each may add API routes. */
  readonly features?: readonly DaemonFeature[];
}

export class Daemon {
  readonly events = new EventBus();
  #source: ChainSource | undefined;
  #walletInstance: Wallet | undefined;
  #keys: WalletKeys | undefined;
  #releaseBackend: (() => Promise<void>) | undefined;
  readonly #running: RunningFeature[] = [];
  #app: FastifyInstance | undefined;
  #url: string | undefined;
  #publicListener: PublicListener | undefined;
  #lastTip: ChainTip | null = null;
  #unsubscribe: (() => void) | undefined;
  readonly #startedAt = Date.now();
  readonly #life = new Lifecycle('daemon', { open: (signal) => this.#open(signal), close: () => this.#shutdown() });
  #lock: DatadirLock | undefined;

  readonly #opts: DaemonOptions;

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
  }

  ready(): Promise<void> {
    return this.#life.ready();
  }

  close(): Promise<void> {
    return this.#life.close();
  }

  /** The API base URL (http://127.0.0.1:PORT), once ready. */
  get apiUrl(): string {
    if (!this.#url) throw DeaddropError.closed('daemon API (not ready)');
    return this.#url;
  }

  /** The public listener's URL (`--public-listen`), once ready; undefined without one. */
  get publicUrl(): string | undefined {
    return this.#publicListener?.url;
  }

  get chain(): ChainSource {
    if (!this.#source) throw DeaddropError.closed('daemon chain backend (not ready)');
    return this.#source;
  }

  /** The unlocked wallet, if the datadir has one and it was unlocked. */
  get wallet(): Wallet | undefined {
    return this.#walletInstance;
  }

  /** The wallet's keys (silent-payment and node keys derive from the same seed), if unlocked. */
  get walletKeys(): WalletKeys | undefined {
    return this.#keys;
  }

  async defaultFeeRate(): Promise<number> {
    const estimate = await this.chain.estimateFee(6, FALLBACK_FEE_RATE);
    return Math.max(1, Math.ceil(estimate.satPerVb));
  }

  get datadir(): string {
    return this.#opts.datadir;
  }

  get network(): Network {
    return this.#opts.network;
  }

  async status(): Promise<DaemonStatus> {
    const source = this.chain;
    let tip: ChainTip | null = this.#lastTip;
    try {
      tip = await source.getTip();
      this.#lastTip = tip;
    } catch {
      // Keep answering with the last known tip while the backend reconnects.
    }
    return {
      version: VERSION,
      network: this.#opts.network,
      backend: { kind: source.kind, capabilities: { ...source.capabilities } },
      tip,
      synced: tip !== null,
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      secp: secp.name,
      tor: this.torStatus(),
    };
  }

  /** The peer node's Tor status (`{ enabled: false }` when no feature runs Tor). */
  torStatus(): TorStatusReport {
    for (const feature of this.#running) {
      const t = feature.tor?.();
      if (t) return t;
    }
    return { enabled: false };
  }

  /**
   * Everything started here is recorded at once in a field that `shutdown` (run after this
   * settles) releases; after each await it stops early when `close()` was called meanwhile.
   */
  async #open(signal: AbortSignal): Promise<void> {
    const log = this.#opts.log ?? (() => undefined);
    // Before anything writes to the datadir: a second daemon here would run a second wallet and claimer.
    this.#lock = lockDatadir(this.#opts.datadir, 'daemon');
    // Holding the lock, any api.url here is a dead daemon's: remove it so nobody waits on it.
    removeStaleApiUrl(this.#opts.datadir);
    // Files created from here on are 0600 (sqlite gives -wal/-shm the mode of their database);
    // anything looser already there is tightened, and said.
    usePrivateUmask();
    for (const fix of secureDatadir(this.#opts.datadir)) log(`tightened the mode of ${fix.path} from ${octal(fix.from)} to ${octal(fix.to)}`);
    const backendUrl = this.#opts.backendUrl ?? (await this.#resolveBackend(log));
    if (signal.aborted) return;
    const source = await openBackend(backendUrl, { expectedNetwork: this.#opts.network });
    this.#source = source;
    // A backend that does not answer would hold the close for its whole timeout.
    signal.addEventListener('abort', () => void source.close(), { once: true });
    log('connecting to the chain backend');
    await source.ready();
    this.#lastTip = await source.getTip();
    if (signal.aborted) return;
    this.#unsubscribe = source.subscribe((event) => {
      if (event.type === 'tip') {
        this.#lastTip = event.tip;
        this.events.publish('chain.tip', `tip:${event.tip.hash}`, { height: event.tip.height, hash: event.tip.hash });
      } else if (event.type === 'disconnected') {
        this.events.publish('chain.disconnected', `disconnected:${Date.now()}`, { reason: event.reason });
      } else if (event.type === 'reconnected') {
        this.events.publish('chain.reconnected', `reconnected:${Date.now()}`, {});
      }
    });

    log('opening the wallet');
    await this.#openWallet(log);
    if (signal.aborted) return;

    const token = writeApiToken(this.#opts.datadir);
    const dashboard = dashboardForApi(token);
    const routes: ApiRoutePlugin[] = [
      ...dashboard.routes,
      routeGroup('/wallet', walletRoutes, { wallet: () => this.#walletInstance, defaultFeeRate: () => this.defaultFeeRate() }),
    ];
    for (const feature of this.#opts.features ?? []) {
      log(`starting ${feature.name}`);
      const running = await feature.start(this.#featureContext(log));
      this.#running.push(running);
      if (signal.aborted) return;
      routes.push(...(running.routes ?? []));
    }
    this.#app = await buildApp({ token, sessions: dashboard.sessions, services: { status: this, events: this.events }, routes, log, ...(this.#opts.debug ? { debug: true } : {}) });
    // The public listener first: features learn its URL when the loopback API starts listening.
    if (this.#opts.publicListen) {
      this.#publicListener = await listenPublic(this.#app, this.#opts.publicListen);
      log(`public routes (PayPub content, candidate index) listening on ${this.#publicListener.url}`);
    }
    if (signal.aborted) return;
    this.#url = await listenLoopback(this.#app, this.#opts.apiPort ?? 0);
    if (signal.aborted) return;
    writeApiUrl(this.#opts.datadir, this.#url);
    log(`api listening on ${this.#url} (send "Authorization: Bearer <token>", the token is in ${join(this.#opts.datadir, 'api.token')})`);
  }

  #featureContext(log: (line: string) => void): FeatureContext {
    return {
      datadir: this.#opts.datadir,
      network: this.#opts.network,
      chain: this.chain,
      events: this.events,
      wallet: this.#walletInstance,
      walletKeys: this.#keys,
      defaultFeeRate: () => this.defaultFeeRate(),
      publicUrl: () => this.#publicListener?.url,
      tor: () => this.torStatus(),
      log,
    };
  }

  async #openWallet(log: (line: string) => void): Promise<void> {
    if (!(await keystoreExists(this.#opts.datadir))) {
      log('no wallet in this datadir yet (run `deaddrop init`); running without one');
      return;
    }
    const meta = await readKeystoreMeta(this.#opts.datadir);
    if (meta.network !== this.#opts.network) throw DeaddropError.wrongNetwork(this.#opts.network, meta.network);
    const passphrase = await this.#opts.passphrase?.();
    if (passphrase === undefined) {
      log('wallet locked: set DEADDROP_PASSPHRASE to unlock it at start');
      return;
    }
    const unlocked = await openKeystore(this.#opts.datadir, passphrase);
    this.#keys = WalletKeys.fromMnemonic(unlocked.mnemonic, this.#opts.network);
    let changes = 0;
    const wallet = new Wallet({
      keys: this.#keys,
      source: this.chain,
      db: join(this.#opts.datadir, 'wallet.db'),
      birthdayHeight: meta.birthdayHeight,
      follow: true,
      onError: (err) => log(`wallet sync: ${err instanceof Error ? err.message : String(err)}`),
      onChange: () => {
        changes++;
        this.events.publish('wallet.changed', `wallet:${this.#startedAt}:${changes}`, { height: wallet.height });
      },
      // Throttled by the sync (at most 4 a second), and kept in the small noise history of the event bus.
      onSyncProgress: (height, tip) => this.events.publish('wallet.progress', `wallet.progress:${this.#startedAt}:${height}`, { height, tip }),
    });
    // Recorded before it opens, so that a close (or a failure) during its open still closes it.
    this.#walletInstance = wallet;
    await wallet.ready();
    await wallet.sync();
    log(`wallet unlocked (synced to height ${wallet.height ?? 'none'})`);
  }

  /** The backend URL from `resolveBackend`; remembers how to release it at close. */
  async #resolveBackend(log: (line: string) => void): Promise<string> {
    if (!this.#opts.resolveBackend) throw DeaddropError.badInput('no backend: pass --backend <url> (or --regtest on regtest)');
    const resolved = await this.#opts.resolveBackend(log);
    if (resolved.release) this.#releaseBackend = () => resolved.release!();
    return resolved.url;
  }

  async #shutdown(): Promise<void> {
    this.#unsubscribe?.();
    if (this.#url) removeApiUrl(this.#opts.datadir, this.#url);
    await this.#publicListener?.close();
    await this.#app?.close();
    for (const feature of this.#running.reverse()) await feature.close().catch(() => undefined);
    await this.#walletInstance?.close();
    await this.#source?.close();
    await this.#releaseBackend?.();
    this.#lock?.release();
  }
}
