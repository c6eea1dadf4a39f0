/**
 * The local HTTP API: fastify on loopback only, behind a bearer token, a JSON schema on every
 * route and an OpenAPI document at /openapi.json. `buildApp()` is kept apart from `listen()` so
 * tests drive it with `inject()`. Each feature registers its own encapsulated route plugin.
 * The host knows no feature: the daemon hands it the route groups (the dashboard's included)
 * and the dashboard's browser sessions.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { ApiRoutePlugin } from '../feature/routes.js';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import { authPlugin, type SessionCheck } from './auth.js';
import { installErrorHandler } from './errors.js';
import { installJsonParser } from './body-parser.js';
import { hostGuardPlugin } from './host-guard.js';
import { openapiInfo, openapiTransform } from './openapi.js';
import { statusRoutes } from './routes/status.js';
import { eventRoutes } from './routes/events.js';
import type { ApiServices } from './services.js';
import { DEFAULT_CONNECTION_LIMITS, limitConnections, serverTimeouts, type ConnectionLimits } from './connection-limits.js';

export interface BuildAppOptions {
  readonly token: string;
  readonly services: ApiServices;
  /** Browser sessions that may stand in for the token (the dashboard's); none: token only. */
  readonly sessions?: SessionCheck;
  /** Route groups added by features (dashboard, wallet, drops, paypub, node), each registered encapsulated. */
  readonly routes?: readonly ApiRoutePlugin[];
  readonly logger?: boolean;
  /** Where unexpected (500) errors are logged, one line each (the daemon's log). */
  readonly log?: (line: string) => void;
  /** Log 500s with their stack (`--debug`). */
  readonly debug?: boolean;
  /** Connection caps and timeouts (see ./connection-limits.ts); defaults suit a local daemon. */
  readonly limits?: Partial<ConnectionLimits>;
}

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits };
  const app = Fastify({
    ...serverTimeouts(limits),
    logger: opts.logger ? { level: 'info', redact: ['req.headers.authorization', 'req.headers["sec-websocket-protocol"]'] } : false,
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  limitConnections(app.server, limits);
  installJsonParser(app);
  await app.register(swagger, { openapi: openapiInfo(), transform: openapiTransform });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  // Before the token check: a request from a foreign Host or Origin learns nothing, not even 401.
  await app.register(hostGuardPlugin);
  await app.register(authPlugin, { token: opts.token, sessions: opts.sessions });
  installErrorHandler(app, { ...(opts.log ? { log: opts.log } : {}), ...(opts.debug ? { debug: true } : {}) });

  await app.register(statusRoutes, { status: opts.services.status });
  await app.register(eventRoutes, { events: opts.services.events });
  for (const r of opts.routes ?? []) await app.register(r.plugin, { ...(r.options ?? {}), prefix: r.prefix ?? '' });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

/** Listens on 127.0.0.1 only. Returns the base URL. */
export async function listenLoopback(app: FastifyInstance, port = 0): Promise<string> {
  return app.listen({ host: '127.0.0.1', port });
}
