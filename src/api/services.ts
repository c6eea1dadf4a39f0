/**
 * What the API needs from the daemon. Routes depend on these narrow interfaces, never on the
 * daemon itself, so each route group can be tested with `inject()` over real services.
 */
import type { EventBus } from '../util/event-bus.js';
import type { TorStatusReport } from '../feature/tor-status.js';

export interface DaemonStatus {
  readonly version: string;
  readonly network: string;
  readonly backend: { readonly kind: string; readonly capabilities: Record<string, unknown> };
  readonly tip: { readonly height: number; readonly hash: string } | null;
  readonly synced: boolean;
  readonly uptimeSeconds: number;
  /** The secp256k1 backend chosen at start-up (native, tiny-secp256k1 or noble): it sets the scan speed. */
  readonly secp: string;
  /**
   * The peer node's Tor: `{ enabled: false }` when Tor is off or the node is not running. The
   * daemon always sets it; optional for services without a peer node.
   */
  readonly tor?: TorStatusReport;
}

export interface StatusService {
  status(): Promise<DaemonStatus>;
}

export interface ApiServices {
  readonly status: StatusService;
  readonly events: EventBus;
}
