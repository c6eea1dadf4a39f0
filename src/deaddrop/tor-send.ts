/**
 * What an introduction announces: with Tor on the daemon, by default the onion of the
 * introduction's own pairwise key (3 bytes, no IP address), and in Tor-only mode never a
 * clear-net endpoint; without Tor and without an endpoint given, the mixnet hint of the node's
 * provider (no IP address either). Never a raw endpoint the user did not give. One place for the
 * CLI (`drop send`) and the API (`POST /drops/send`).
 */
import { DeaddropError } from '../util/errors.js';
import { isOnionEndpointString } from './endpoint.js';

/** The onion virtual port the node publishes on (NodeTorOptions.virtualPort's default). */
export const DEFAULT_ONION_PORT = 80;

/** The daemon's Tor setting, as far as sending an introduction cares. */
export interface TorSendState {
  /** The daemon runs with Tor (it publishes the introductions' onions). */
  readonly enabled: boolean;
  /** Tor-only: nothing clear-net is ever announced or dialed. */
  readonly only?: boolean;
  /** The onions' virtual port (default 80). */
  readonly port?: number;
}

/** What the user asked for. */
export interface OnionChoice {
  readonly endpoints: readonly string[];
  /** true: announce the onion; false (`--no-onion`): do not; undefined: announce it when Tor is enabled. */
  readonly onion?: boolean;
  /** An explicit onion port (implies announcing the onion). */
  readonly onionPort?: number;
}

/**
 * The onion port to announce (undefined: none). Throws one BAD_INPUT line when Tor-only mode
 * would announce a clear-net endpoint, or when the onion is both asked for and refused.
 * @example onionPortFor({ endpoints: [] }, { enabled: true }) // 80
 */
export function onionPortFor(choice: OnionChoice, tor: TorSendState): number | undefined {
  if (choice.onion === false && choice.onionPort !== undefined) throw DeaddropError.badInput('give --onion-port or --no-onion, not both');
  if (tor.enabled && tor.only === true) {
    // Invalid endpoints are left to checkIntroduction's own message.
    const clear = choice.endpoints.find((e) => {
      try {
        return !isOnionEndpointString(e);
      } catch {
        return false;
      }
    });
    if (clear !== undefined) {
      throw DeaddropError.badInput(`the daemon runs Tor-only and never announces a clear-net address: remove --endpoint ${clear.slice(0, 80)} (an .onion endpoint is fine)`);
    }
  }
  if (choice.onionPort !== undefined) return choice.onionPort;
  const port = tor.enabled ? (tor.port ?? DEFAULT_ONION_PORT) : DEFAULT_ONION_PORT;
  if (choice.onion === true) return port;
  if (choice.onion === undefined && tor.enabled) return port;
  return undefined;
}

/**
 * The endpoints an introduction carries: the user's own when given (`--endpoint`, API
 * `endpoints`); else, when no onion is announced either, the mixnet hint (`mixnet:<provider id>`)
 * of the node's home provider. Never falls back to one of the node's own clear-net addresses:
 * with nothing to announce it throws one BAD_INPUT line saying how to get a provider or give an
 * endpoint explicitly.
 * @example introductionEndpoints([], undefined, 'mixnet:0123456789abcdef') // ['mixnet:0123456789abcdef']
 */
export function introductionEndpoints(explicit: readonly string[], onionPort: number | undefined, mixnetHint: string | null): string[] {
  if (explicit.length > 0) return [...explicit];
  if (onionPort !== undefined) return [];
  if (mixnetHint !== null) return [mixnetHint];
  throw DeaddropError.badInput(
    'the node has no mixnet provider yet, so nothing can be announced without an IP address: give at least one --endpoint (API: "endpoints") explicitly, or start the daemon with DEADDROP_MIX_PROVIDER (or wait until it links to its provider)',
  );
}
