/**
 * Route groups as features hand them to the API host (part of the feature contract, see
 * ./contract.ts): the group itself and the one way to declare a route public.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';

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
