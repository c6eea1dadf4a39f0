/**
 * How a feature (dead drops, PayPub, the peer node) plugs into the daemon: it is started once
 * the chain backend and the wallet are ready, may contribute API route groups, and is closed
 * (in reverse order) before the wallet and backend are.
 *
 * This contract is its own layer, between the wallet and the features: the features implement
 * it and the API host and the daemon consume it, so neither side imports the other's folder
 * (see `npm run layers`). It holds only types and the typed route-group helper.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ChainSource } from '../chain/types.js';
import type { Network } from '../util/network.js';
import type { Wallet } from '../wallet/wallet.js';
import type { WalletKeys } from '../wallet/keys.js';
import type { EventBus } from '../util/event-bus.js';

/**
 * Route config of a public route, the only way to declare one: `{ config: PUBLIC_ROUTE }`.
 * Public routes serve strangers content meant for them (PayPub's encrypted chunks and manifest,
 * the candidate index of on-chain data): no token, `security: []` in the OpenAPI document, and
 * the only routes the `--public-listen` listener serves (api/public-routes.ts reads the flag).
 */
export const PUBLIC_ROUTE = { public: true } as const;

/** A route group a feature adds to the API host, registered encapsulated under `prefix`. */
export interface ApiRoutePlugin {
  readonly plugin: FastifyPluginAsync<Record<string, unknown>>;
  readonly prefix?: string;
  readonly options?: Record<string, unknown>;
}

/** A typed route group: the options are checked here, then carried untyped into `register`. */
export function routeGroup<O extends object>(prefix: string, plugin: (app: FastifyInstance, opts: O) => Promise<void>, options: O): ApiRoutePlugin {
  return { prefix, plugin: plugin as unknown as ApiRoutePlugin['plugin'], options: options as unknown as Record<string, unknown> };
}

/** What `/node/tor` and `deaddrop node status` show (the peer node's Tor, see node/tor/node-tor.ts). */
export interface NodeTorStatus {
  readonly only: boolean;
  /** The onions' virtual port (what an introduction's onion hint announces). */
  readonly port: number;
  readonly managed: boolean;
  readonly connected: boolean;
  readonly bootstrapped: boolean;
  readonly progress: number;
  readonly summary: string;
  readonly onions: { address: string; kind: 'node' | 'introduction' }[];
  readonly restarts: number;
  readonly lastError: string | null;
  /** How each connected peer was reached: dialed through Tor, dialed directly, or it dialed us. */
  readonly peers: { node: string; via: 'tor' | 'direct' | 'inbound' }[];
}

/** Tor as `/status` reports it: off, or the running node's bootstrap, onions and how peers were reached. */
export type TorStatusReport = { readonly enabled: false } | ({ readonly enabled: true } & NodeTorStatus);

/** What a feature may use of the daemon. */
export interface FeatureContext {
  readonly datadir: string;
  readonly network: Network;
  readonly chain: ChainSource;
  readonly events: EventBus;
  /** Undefined while the wallet is not initialized or locked. */
  readonly wallet: Wallet | undefined;
  readonly walletKeys: WalletKeys | undefined;
  defaultFeeRate(): Promise<number>;
  /**
   * The `--public-listen` listener's URL once it listens (undefined without one): where
   * strangers reach the public routes, as opposed to the loopback API URL.
   */
  publicUrl(): string | undefined;
  /** The peer node's Tor as `/status` reports it (read at call time: the node feature starts later). */
  tor(): TorStatusReport;
  /** Human log line (stderr in the CLI). Never pass secrets or anything linking a user's actions. */
  log(line: string): void;
}

export interface RunningFeature {
  readonly routes?: readonly ApiRoutePlugin[];
  /** The feature's Tor status, when it runs Tor (the peer node); null or absent otherwise. */
  tor?(): TorStatusReport | null;
  close(): Promise<void>;
}

export interface DaemonFeature {
  readonly name: string;
  start(ctx: FeatureContext): Promise<RunningFeature>;
}
