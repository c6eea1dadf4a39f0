/**
 * The long-running daemon: one chain backend, the wallet (when initialized and unlocked),
 * the watcher and peer node as they land, and the local API over all of them.
 * Lifecycle as in hypercore: `ready()` is memoized opening, `close()` memoized closing,
 * and nothing keeps running after close.
 */
import type { FastifyInstance } from 'fastify';
import type { ChainSource, ChainTip } from '../chain/types.js';
import { openBackend } from '../chain/open.js';
import { buildApp, listenLoopback, type ApiRoutePlugin } from '../api/app.js';
import type { DaemonStatus } from '../api/services.js';
import { writeApiToken } from '../api/token.js';
import type { Network } from '../util/network.js';
import { DeaddropError } from '../util/errors.js';
import { EventBus } from './event-bus.js';
import type { RegtestNode } from '../regtest/harness.js';

export const VERSION = '0.1.0';

export interface DaemonOptions {
  readonly datadir: string;
  readonly network: Network;
  /** Explicit backend URL. Without it, `regtest: true` attaches to or starts a regtest node under the datadir. */
  readonly backendUrl?: string;
  readonly regtest?: boolean;
  /** API port on 127.0.0.1; 0 (default) picks a free one. */
  readonly apiPort?: number;
  /** Log lines for humans (stderr in the CLI). Never given secrets. */
  readonly log?: (line: string) => void;
  /** Route groups of features, registered into the API. */
  readonly routes?: (daemon: Daemon) => Promise<readonly ApiRoutePlugin[]>;
}

export class Daemon {
  readonly events = new EventBus();
  private source: ChainSource | undefined;
  private regtestNode: RegtestNode | undefined;
  private app: FastifyInstance | undefined;
  private url: string | undefined;
  private lastTip: ChainTip | null = null;
  private unsubscribe: (() => void) | undefined;
  private readonly startedAt = Date.now();
  private opening: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: DaemonOptions) {}

  ready(): Promise<void> {
    if (this.closing) return Promise.reject(DeaddropError.closed('daemon'));
    this.opening ??= this.open();
    return this.opening;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** The API base URL (http://127.0.0.1:PORT), once ready. */
  get apiUrl(): string {
    if (!this.url) throw DeaddropError.closed('daemon API (not ready)');
    return this.url;
  }

  get chain(): ChainSource {
    if (!this.source) throw DeaddropError.closed('daemon chain backend (not ready)');
    return this.source;
  }

  get datadir(): string {
    return this.opts.datadir;
  }

  get network(): Network {
    return this.opts.network;
  }

  async status(): Promise<DaemonStatus> {
    const source = this.chain;
    let tip: ChainTip | null = this.lastTip;
    try {
      tip = await source.getTip();
      this.lastTip = tip;
    } catch {
      // Keep answering with the last known tip while the backend reconnects.
    }
    return {
      version: VERSION,
      network: this.opts.network,
      backend: { kind: source.kind, capabilities: { ...source.capabilities } },
      tip,
      synced: tip !== null,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
    };
  }

  private async open(): Promise<void> {
    const log = this.opts.log ?? (() => undefined);
    const backendUrl = this.opts.backendUrl ?? (await this.regtestBackend(log));
    const source = await openBackend(backendUrl, { expectedNetwork: this.opts.network });
    this.source = source;
    await source.ready();
    this.lastTip = await source.getTip();
    this.unsubscribe = source.subscribe((event) => {
      if (event.type === 'tip') {
        this.lastTip = event.tip;
        this.events.publish('chain.tip', `tip:${event.tip.hash}`, { height: event.tip.height, hash: event.tip.hash });
      } else if (event.type === 'disconnected') {
        this.events.publish('chain.disconnected', `disconnected:${Date.now()}`, { reason: event.reason });
      } else if (event.type === 'reconnected') {
        this.events.publish('chain.reconnected', `reconnected:${Date.now()}`, {});
      }
    });

    const token = writeApiToken(this.opts.datadir);
    const routes = this.opts.routes ? await this.opts.routes(this) : [];
    this.app = await buildApp({ token, services: { status: this, events: this.events }, routes });
    this.url = await listenLoopback(this.app, this.opts.apiPort ?? 0);
    log(`api listening on ${this.url} (token in ${this.opts.datadir}/api.token)`);
  }

  /** Attaches to the datadir's detached regtest node, or starts one owned by this daemon. */
  private async regtestBackend(log: (line: string) => void): Promise<string> {
    if (!this.opts.regtest) throw DeaddropError.badInput('no backend: pass --backend <url> (or --regtest on regtest)');
    if (this.opts.network !== 'regtest') throw DeaddropError.badInput('--regtest needs --network regtest');
    const { attachRegtestNode, startRegtestNode } = await import('../regtest/harness.js');
    try {
      const node = await attachRegtestNode(this.opts.datadir);
      node.detach();
      log(`using the running regtest ${node.kind} node (pid ${node.pid})`);
      return node.backendUrl;
    } catch (err) {
      if (!(err instanceof DeaddropError && err.code === 'NOT_FOUND')) throw err;
    }
    this.regtestNode = await startRegtestNode({ datadir: this.opts.datadir });
    log(`started a regtest ${this.regtestNode.kind} node (pid ${this.regtestNode.pid}); it stops with the daemon`);
    return this.regtestNode.backendUrl;
  }

  private async shutdown(): Promise<void> {
    await this.opening?.catch(() => undefined);
    this.unsubscribe?.();
    await this.app?.close();
    await this.source?.close();
    await this.regtestNode?.stop();
  }
}
