/**
 * What the API needs from the daemon. Routes depend on these narrow interfaces, never on the
 * daemon itself, so each route group can be tested with `inject()` over real services.
 */
import type { EventBus } from '../daemon/event-bus.js';

export interface DaemonStatus {
  readonly version: string;
  readonly network: string;
  readonly backend: { readonly kind: string; readonly capabilities: Record<string, unknown> };
  readonly tip: { readonly height: number; readonly hash: string } | null;
  readonly synced: boolean;
  readonly uptimeSeconds: number;
}

export interface StatusService {
  status(): Promise<DaemonStatus>;
}

export interface ApiServices {
  readonly status: StatusService;
  readonly events: EventBus;
}
