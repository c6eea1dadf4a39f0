/**
 * How a feature (dead drops, PayPub, the peer node) plugs into the daemon: it is started once
 * the chain backend and the wallet are ready, may contribute API route groups, and is closed
 * (in reverse order) before the wallet and backend are.
 *
 * This contract is its own layer (src/feature/), between the wallet and the features: the
 * features implement it and the API host and the daemon consume it, so neither side imports the
 * other's folder (see `npm run layers`).
 */
import type { ApiRoutePlugin } from './routes.js';
import type { ChainSource } from '../chain/types.js';
import type { Network } from '../util/network.js';
import type { Wallet } from '../wallet/wallet.js';
import type { WalletKeys } from '../wallet/keys.js';
import type { EventBus } from '../util/event-bus.js';
import type { TorStatusReport } from './tor-status.js';

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
