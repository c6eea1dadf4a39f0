/**
 * btcd backend: JSON-RPC over HTTP (btcd must run with `--notls` on loopback, or with a TLS
 * certificate the process trusts), polling for tips and mempool changes.
 *
 * NOTE: btcd's websocket notifications (`notifyblocks`, `notifynewtransactions`) would give a
 * push channel; they are not used, so `capabilities.push` is false and the poller feeds events.
 * Confirmed transactions are only reachable with `--txindex`; `ready()` probes for it.
 */
import { btcdDialect } from '../dialect.js';
import { RpcClient, type RpcAuth } from '../rpc.js';
import type { BackendOptions, ChainSource } from '../types.js';
import { RpcChainSource } from './rpc-source.js';

export interface BtcdConfig {
  /** `http://host:port/` of btcd's RPC listener (no credentials in it). */
  readonly url: string;
  readonly auth: RpcAuth;
  /** Injected transport (tests). */
  readonly fetch?: typeof fetch;
}

/** A btcd node as a ChainSource. */
export class BtcdSource extends RpcChainSource implements ChainSource {
  constructor(cfg: BtcdConfig, options: BackendOptions) {
    super({
      kind: 'btcd',
      dialect: btcdDialect,
      makeClient: (signal) => new RpcClient({ url: cfg.url, auth: cfg.auth, timeoutMs: options.timeoutMs, fetch: cfg.fetch, signal }),
      options,
      capabilities: { fullBlocks: true, anyTransaction: false, mempool: true, scriptHistory: false, push: false, rawBlockRoute: 'rpc' },
    });
  }
}
