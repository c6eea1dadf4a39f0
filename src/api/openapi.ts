/**
 * The OpenAPI document's truth about each route: public routes say `security: []` (no token),
 * every other route inherits the document's bearer requirement, and the `/events` websocket is
 * listed (@fastify/websocket hides websocket routes from the document by default).
 */
import type { FastifySchema } from 'fastify';
import { isPublicRoute } from './public-routes.js';

/** The document-level options for @fastify/swagger (a fresh object: the plugin may keep it). */
export function openapiInfo(): { info: { title: string; version: string }; components: { securitySchemes: { bearer: { type: 'http'; scheme: string } } }; security: Record<string, string[]>[] } {
  return {
    info: { title: 'deaddrop local API', version: '0.1.0' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
  };
}

interface TransformInput {
  readonly schema: FastifySchema;
  readonly url: string;
  readonly route: { readonly config?: unknown; readonly websocket?: boolean };
}

/** @fastify/swagger's `transform`: applied to each route when the document is built. */
export function openapiTransform({ schema, url, route }: TransformInput): { schema: FastifySchema; url: string } {
  let out: Record<string, unknown> = { ...(schema as Record<string, unknown> | undefined) };
  if (route.websocket === true) {
    out = {
      ...out,
      hide: false,
      description: 'WebSocket: send a GET with `Connection: Upgrade` and `Upgrade: websocket` (the bearer token in the Authorization header, '
        + 'or as the subprotocol `bearer.<token>` from a browser). Each daemon event arrives as one JSON text frame.',
      response: { 101: { description: 'Switching Protocols: the websocket of daemon events', type: 'null' } },
    };
  }
  if (isPublicRoute(route.config)) out = { ...out, security: [] };
  return { schema: out as FastifySchema, url };
}
