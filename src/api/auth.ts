import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { tokenMatches } from './token.js';

/** Public routes that need no token (the OpenAPI document only describes, it reveals nothing). */
const PUBLIC_PATHS = new Set(['/openapi.json']);

/**
 * Route prefixes that need no token: the public candidate index (`/index/...`) serves only
 * on-chain data, to light clients that hold no token. Matched against the route pattern
 * fastify routed to (`routeOptions.url`), never the raw URL, so no encoding or dot-segment
 * trick can make another route public, and an unmatched URL (404) still needs the token.
 */
export const PUBLIC_ROUTE_PREFIXES: readonly string[] = ['/index/'];

function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim();
  // Browsers cannot set headers on a websocket upgrade: allow the token as a subprotocol.
  const protocols = request.headers['sec-websocket-protocol'];
  if (typeof protocols === 'string') {
    for (const p of protocols.split(',')) {
      const v = p.trim();
      if (v.startsWith('bearer.')) return v.slice('bearer.'.length);
    }
  }
  return undefined;
}

/**
 * True for routes declared with `config: { public: true }`: content meant for strangers (PayPub's
 * encrypted chunks and manifest), which must never expose anything the token protects.
 */
function isPublicRoute(request: FastifyRequest): boolean {
  const config = request.routeOptions.config as { public?: unknown } | undefined;
  if (config?.public === true) return true;
  const route = request.routeOptions.url;
  return route !== undefined && PUBLIC_ROUTE_PREFIXES.some((p) => route.startsWith(p));
}

/** Rejects every request without the bearer token. Shared infrastructure, hence fastify-plugin. */
export const authPlugin = fp(async (app: FastifyInstance, opts: { token: string }) => {
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC_PATHS.has(path) || isPublicRoute(request)) return;
    if (!tokenMatches(presentedToken(request), opts.token)) {
      await reply.code(401).send({ error: 'UNAUTHORIZED', message: 'missing or wrong bearer token' });
    }
  });
});
