/**
 * Against DNS rebinding and cross-site requests from browsers.
 *
 * A web page the user visits can make the browser send requests to 127.0.0.1, either straight
 * away (cross-origin, with an `Origin` header) or through a name it controls that it re-points at
 * 127.0.0.1 (DNS rebinding: then the browser believes the daemon is the page's own origin, and the
 * only trace is the `Host` header naming the attacker's domain). So on the loopback listener:
 *
 * - `Host` must name the listening address: `127.0.0.1`, `localhost` or `[::1]` with the port the
 *   API listens on; anything else is refused with 421 (Misdirected Request);
 * - an `Origin` header, when a browser sends one, must be the daemon's own
 *   (`http://` + one of those hosts); any other, `null` included, is refused with 403.
 *
 * Requests that arrive through the public listener (`--public-listen`, see public-listener.ts)
 * reach only public routes: every other route answers 404 there, token or not. Their `Host` is
 * whatever name the seller published; a browser `Origin` must match it (same origin).
 *
 * Runs first among the `onRequest` hooks (before the token check), on every route, the `/events`
 * websocket upgrade included.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { isPublicRoute } from './public-routes.js';

/** Marks a raw request that came in through the public listener. */
const PUBLIC_LISTENER = Symbol('deaddrop.publicListener');

/** Flags `req` as received on the public listener (public-listener.ts calls this). */
export function markPublicListener(req: IncomingMessage): void {
  (req as IncomingMessage & { [PUBLIC_LISTENER]?: true })[PUBLIC_LISTENER] = true;
}

function onPublicListener(req: IncomingMessage): boolean {
  return (req as IncomingMessage & { [PUBLIC_LISTENER]?: true })[PUBLIC_LISTENER] === true;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

/** `host[:port]` split, lower-cased; undefined for anything that is not a plain authority. */
function parseAuthority(value: string): { name: string; port: string | null } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?$/i.exec(value.trim());
  if (!m) return undefined;
  return { name: (m[1] as string).toLowerCase(), port: m[2] ?? null };
}

/**
 * The port the loopback listener is bound to, or null before it listens (requests then come
 * only from `inject()`, with no network in between: any port of a loopback name is accepted).
 */
function boundPort(app: FastifyInstance): string | null {
  const addr = app.server.listening ? app.server.address() : null;
  return addr && typeof addr === 'object' ? String(addr.port) : null;
}

function loopbackHostAllowed(host: string | undefined, port: string | null): boolean {
  if (host === undefined) return false;
  const a = parseAuthority(host);
  if (!a || !LOOPBACK_NAMES.includes(a.name)) return false;
  return port === null || a.port === port;
}

/** True when `origin` is `http://<host>` for a host this listener accepts. */
function originAllowed(origin: string, hostOk: (host: string) => boolean): boolean {
  const m = /^http:\/\/([^/?#@]+)$/i.exec(origin.trim());
  return m !== null && hostOk(m[1] as string);
}

async function refuse(reply: FastifyReply, status: number, error: string, message: string): Promise<void> {
  await reply.code(status).header('connection', 'close').send({ error, message });
}

/** The guard described in the module header. Shared infrastructure, hence fastify-plugin. */
export const hostGuardPlugin = fp(async (app: FastifyInstance) => {
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const host = request.headers.host;
    const origin = request.headers.origin;
    if (onPublicListener(request.raw)) {
      if (!isPublicRoute(request.routeOptions.config)) {
        return refuse(reply, 404, 'NOT_FOUND', 'not found: the public listener serves only the public routes');
      }
      if (origin !== undefined && !(host !== undefined && originAllowed(origin, (h) => h.toLowerCase() === host.toLowerCase()))) {
        return refuse(reply, 403, 'FORBIDDEN_ORIGIN', 'cross-origin requests from browsers are refused');
      }
      return undefined;
    }
    const port = boundPort(app);
    if (!loopbackHostAllowed(host, port)) {
      return refuse(reply, 421, 'MISDIRECTED_HOST', `the Host header must name this API's address (127.0.0.1, localhost or [::1]${port ? ` with port ${port}` : ''})`);
    }
    if (origin !== undefined && !originAllowed(origin, (h) => loopbackHostAllowed(h, port))) {
      return refuse(reply, 403, 'FORBIDDEN_ORIGIN', 'requests from web pages of other origins are refused');
    }
    return undefined;
  });
});
