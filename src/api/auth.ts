import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { tokenMatches } from './token.js';
import { isPublicRoute, isSignInRoute } from './public-routes.js';

/**
 * Browser sessions (the dashboard's cookies, see dashboard/sessions.ts): whether a request's
 * cookie authenticates it, and for state changes, its CSRF header too.
 */
export interface SessionCheck {
  check(request: FastifyRequest): 'ok' | 'csrf-missing' | 'none';
}

/** Public routes that need no token (the OpenAPI document only describes, it reveals nothing). */
const PUBLIC_PATHS = new Set(['/openapi.json']);

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
 * Rejects every request without the bearer token or, with `sessions`, a dashboard session
 * cookie (plus its CSRF header on state changes). Shared infrastructure, hence fastify-plugin.
 */
export const authPlugin = fp(async (app: FastifyInstance, opts: { token: string; sessions?: SessionCheck | undefined }) => {
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC_PATHS.has(path) || isPublicRoute(request.routeOptions.config)) return;
    if (isSignInRoute(request.routeOptions.config)) return;
    if (tokenMatches(presentedToken(request), opts.token)) return;
    const byCookie = opts.sessions?.check(request) ?? 'none';
    if (byCookie === 'ok') return;
    if (byCookie === 'csrf-missing') {
      await reply.code(403).send({ error: 'FORBIDDEN', message: 'a state-changing request signed in by cookie needs the X-Deaddrop-CSRF header' });
    } else {
      await reply.code(401).send({ error: 'UNAUTHORIZED', message: 'missing or wrong bearer token' });
    }
  });
});
