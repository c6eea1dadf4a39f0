/**
 * The dashboard: static ES modules and CSS under ./static, served by the daemon's own API at
 * `/` (loopback only: these routes are not public, so the public listener answers 404), plus
 * the sign-in routes (see sessions.ts) and a QR code renderer.
 *
 * Charts use uPlot (MIT), served straight from node_modules under `/dashboard/vendor/<name>`:
 * only the files named in {@link VENDOR_FILES} are read (once, at registration), so no request
 * path ever reaches the file system and nothing else under node_modules is reachable.
 *
 * Every response of this plugin carries a strict Content-Security-Policy (scripts and styles
 * from this origin only, no inline script, no framing), `X-Frame-Options: DENY`, `nosniff` and
 * `Referrer-Policy: no-referrer` (the login URL's code never leaks in a Referer).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import QRCode from 'qrcode';
import { tokenMatches } from '../api/token.js';
import { SIGN_IN_ROUTE } from '../api/public-routes.js';
import { routeGroup, type ApiRoutePlugin } from '../feature/routes.js';
import { cookieName, DashboardSessions, SESSION_TTL_MS } from './sessions.js';

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The only files served from node_modules: URL name → package path (resolved by Node's module
 * resolution, so a hoisted or nested install both work). uPlot draws on canvas and sets its
 * inline styles through the CSSOM, which the strict CSP allows (no `unsafe-inline` needed).
 */
export const VENDOR_FILES: Readonly<Record<string, string>> = {
  'uplot.esm.js': 'uplot/dist/uPlot.esm.js',
  'uplot.min.css': 'uplot/dist/uPlot.min.css',
};

/** Reads the allow-listed vendor files once. */
function loadVendor(): Map<string, { body: Buffer; type: string }> {
  const require = createRequire(import.meta.url);
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [name, spec] of Object.entries(VENDOR_FILES)) {
    files.set(name, { body: readFileSync(require.resolve(spec)), type: TYPES[extname(name)] as string });
  }
  return files;
}

/** The policy described in the module header. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
  "font-src 'none'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');


/** Reads the static files once, keyed by name: only these names are ever served. */
function loadStatic(): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of readdirSync(STATIC_DIR)) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { body: readFileSync(join(STATIC_DIR, name)), type });
  }
  return files;
}

const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;

/** Registers the dashboard routes. `sessions` is shared with the auth plugin. */
export async function dashboardRoutes(app: FastifyInstance, opts: { sessions: DashboardSessions; token: string }): Promise<void> {
  const files = loadStatic();
  const vendor = loadVendor();
  app.addHook('onSend', async (_request, reply: FastifyReply, payload) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    reply.header('x-frame-options', 'DENY');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-store');
    return payload;
  });

  const serve = (name: string, reply: FastifyReply): FastifyReply => {
    const f = files.get(name);
    if (!f) return reply.code(404).send({ error: 'NOT_FOUND', message: 'no such dashboard file' });
    return reply.type(f.type).send(f.body);
  };

  app.get('/', { config: SIGN_IN_ROUTE, schema: { summary: 'The dashboard page (shows how to sign in until a session cookie exists)', hide: true } },
    async (_req, reply) => serve('index.html', reply));

  app.get('/dashboard/static/:file', {
    config: SIGN_IN_ROUTE,
    schema: { summary: 'Dashboard scripts and styles', hide: true, params: { type: 'object', required: ['file'], properties: { file: { type: 'string', pattern: '^[a-z0-9-]+\\.(js|css|svg)$' } } } },
  }, async (req, reply) => serve((req.params as { file: string }).file, reply));

  app.get('/dashboard/vendor/:file', {
    config: SIGN_IN_ROUTE,
    schema: {
      summary: 'Third-party browser modules from node_modules (an allow-list: uPlot)', hide: true,
      params: { type: 'object', required: ['file'], properties: { file: { type: 'string', pattern: '^[a-z0-9.-]+\\.(js|css)$' } } },
      response: { 404: error },
    },
  }, async (req, reply) => {
    const f = vendor.get((req.params as { file: string }).file);
    if (!f) return reply.code(404).send({ error: 'NOT_FOUND', message: 'no such dashboard file' });
    return reply.type(f.type).send(f.body);
  });

  app.get('/dashboard/login', {
    config: SIGN_IN_ROUTE,
    schema: {
      summary: 'Exchange a one-time login code (from `deaddrop dashboard`) for a session cookie, then go to /',
      querystring: { type: 'object', required: ['code'], properties: { code: { type: 'string', minLength: 1, maxLength: 128 } }, additionalProperties: false },
      response: { 401: error },
    },
  }, async (req, reply) => {
    const id = opts.sessions.redeem((req.query as { code: string }).code);
    if (id === undefined) {
      return reply.code(401).send({ error: 'UNAUTHORIZED', message: 'this login link is unknown, used or expired: run `deaddrop dashboard` again' });
    }
    const maxAge = Math.floor(SESSION_TTL_MS / 1000);
    return reply.header('set-cookie', `${cookieName(req)}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}`).redirect('/', 303);
  });

  app.post('/dashboard/login-code', {
    schema: {
      summary: 'A single-use login code for the dashboard (bearer token only; valid two minutes)',
      response: { 200: { type: 'object', required: ['code', 'expiresAt'], properties: { code: { type: 'string' }, expiresAt: { type: 'integer' } } }, 403: error },
    },
  }, async (req, reply) => {
    // A browser session must not mint more sessions: only the token holder (the CLI) may.
    const header = req.headers.authorization;
    if (!tokenMatches(header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined, opts.token)) return reply.code(403).send({ error: 'FORBIDDEN', message: 'login codes are issued to the API token only' });
    return opts.sessions.issueCode();
  });

  app.get('/dashboard/session', {
    schema: {
      summary: 'The signed-in browser session: its CSRF value for state-changing requests',
      response: { 200: { type: 'object', required: ['csrf'], properties: { csrf: { type: ['string', 'null'] } } } },
    },
  }, async (req) => ({ csrf: opts.sessions.csrfFor(req) ?? null }));

  app.post('/dashboard/logout', { schema: { summary: 'End this browser session', response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } },
    async (req, reply) => {
      opts.sessions.end(req);
      return reply.header('set-cookie', `${cookieName(req)}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`).send({ ok: true });
    });

  app.get('/dashboard/qr.svg', {
    schema: {
      summary: 'A QR code of `text` as SVG (invites, addresses)',
      querystring: { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1, maxLength: 1500 } }, additionalProperties: false },
    },
  }, async (req, reply) => {
    const svg = await QRCode.toString((req.query as { text: string }).text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    return reply.type('image/svg+xml').send(svg);
  });
}

/** The dashboard as the API host takes it: its browser sessions (for the auth check) and its route group. */
export function dashboardForApi(token: string): { readonly sessions: DashboardSessions; readonly routes: readonly ApiRoutePlugin[] } {
  const sessions = new DashboardSessions();
  return { sessions, routes: [routeGroup('', dashboardRoutes, { sessions, token })] };
}
