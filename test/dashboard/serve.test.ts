/**
 * The dashboard's serving and sign-in over a real loopback listener: security headers, the
 * one-time login code, the session cookie, the CSRF header on state changes, and the websocket
 * accepting the cookie from the daemon's own origin only. (Browser flows: *.int.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { buildApp, listenLoopback } from '../../src/api/app.js';
import { writeApiToken } from '../../src/api/token.js';
import { EventBus } from '../../src/util/event-bus.js';
import type { DaemonStatus } from '../../src/api/services.js';
import { DashboardSessions, LOGIN_CODE_TTL_MS } from '../../src/dashboard/sessions.js';
import { dashboardForApi } from '../../src/dashboard/plugin.js';
import { REPO_ROOT } from '../../src/regtest/harness.js';

const status: DaemonStatus = {
  version: '0.1.0', network: 'regtest', backend: { kind: 'btcd', capabilities: {} }, tip: { height: 101, hash: 'ab'.repeat(32) }, synced: true, uptimeSeconds: 1, secp: 'native',
};

describe('dashboard serving and sign-in', () => {
  let dir: string;
  let token: string;
  let app: FastifyInstance;
  let base: string;
  const events = new EventBus();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dd-dash-'));
    token = writeApiToken(dir);
    const dashboard = dashboardForApi(token);
    app = await buildApp({
      token, sessions: dashboard.sessions, services: { status: { status: async () => status }, events },
      routes: [...dashboard.routes, { prefix: '/test', plugin: async (r) => { r.post('/echo', { schema: { body: { type: 'object' } } }, async (req) => ({ got: req.body })); } }],
    });
    base = await listenLoopback(app);
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const loginCode = async (): Promise<string> => {
    const res = await fetch(`${base}/dashboard/login-code`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { code: string }).code;
  };
  const signIn = async (): Promise<string> => {
    const res = await fetch(`${base}/dashboard/login?code=${await loginCode()}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    const cookie = res.headers.get('set-cookie') ?? '';
    return cookie.split(';')[0] as string;
  };

  it('serves the page and its modules with a strict CSP, no framing and nosniff', async () => {
    for (const path of ['/', '/dashboard/static/app.js', '/dashboard/static/style.css']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const html = await (await fetch(`${base}/`)).text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect((await fetch(`${base}/dashboard/static/..%2Fplugin.ts`)).status).toBe(400);
    expect((await fetch(`${base}/dashboard/static/nothere.js`)).status).toBe(404);
  });

  it('serves uPlot from node_modules by an allow-list, and nothing else from there', async () => {
    const js = await fetch(`${base}/dashboard/vendor/uplot.esm.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('content-security-policy')).toContain("script-src 'self'");
    const body = await js.text();
    expect(body).toBe(readFileSync(join(REPO_ROOT, 'node_modules/uplot/dist/uPlot.esm.js'), 'utf8'));
    expect(body).toMatch(/export \{ uPlot as default \}/);
    const css = await fetch(`${base}/dashboard/vendor/uplot.min.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toContain('.uplot');
    // Other files of the same package, other packages, and every traversal spelling are refused
    // (400 from the name pattern or 404 from the allow-list; never the file).
    const refused = [
      '/dashboard/vendor/uPlot.cjs.js', '/dashboard/vendor/uplot.cjs.js', '/dashboard/vendor/package.json', '/dashboard/vendor/qrcode.js',
      '/dashboard/vendor/..%2Fpackage.json', '/dashboard/vendor/..%2F..%2Fpackage.json', '/dashboard/vendor/%2E%2E%2Fuplot%2Fpackage.json',
      '/dashboard/vendor/..%5C..%5Cpackage.json', '/dashboard/vendor/....js', '/dashboard/vendor/uplot%2Fdist%2FuPlot.esm.js',
      '/dashboard/vendor/%00uplot.esm.js', '/dashboard/static/..%2F..%2F..%2Fnode_modules%2Fuplot%2Fpackage.json',
      '/dashboard/vendor/../../package.json', '/node_modules/uplot/dist/uPlot.esm.js', '/dashboard/node_modules/uplot/dist/uPlot.esm.js',
    ];
    for (const path of refused) {
      const res = await fetch(`${base}${path}`);
      expect([400, 401, 404], path).toContain(res.status);
      const text = await res.text();
      expect(text, path).not.toContain('"name": "uplot"');
      expect(text, path).not.toContain('"name": "deaddrop"');
      expect(text, path).not.toContain('uPlot');
    }
  });

  it('issues login codes to the token only, each valid once', async () => {
    expect((await fetch(`${base}/dashboard/login-code`, { method: 'POST' })).status).toBe(401);
    const cookie = await signIn();
    const csrf = ((await (await fetch(`${base}/dashboard/session`, { headers: { cookie } })).json()) as { csrf: string }).csrf;
    // A signed-in browser cannot mint codes (a stolen session must not extend itself).
    const byCookie = await fetch(`${base}/dashboard/login-code`, { method: 'POST', headers: { cookie, 'x-deaddrop-csrf': csrf } });
    expect(byCookie.status).toBe(403);
    const code = await loginCode();
    const first = await fetch(`${base}/dashboard/login?code=${code}`, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const setCookie = first.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\//);
    expect(setCookie).not.toContain(token);
    const again = await fetch(`${base}/dashboard/login?code=${code}`, { redirect: 'manual' });
    expect(again.status).toBe(401);
    expect(again.headers.get('set-cookie')).toBeNull();
  });

  it('accepts the cookie for reads, and for writes only with the CSRF header', async () => {
    expect((await fetch(`${base}/status`)).status).toBe(401);
    expect((await fetch(`${base}/status`, { headers: { cookie: 'deaddrop_session_1=forged' } })).status).toBe(401);
    const cookie = await signIn();
    expect((await fetch(`${base}/status`, { headers: { cookie } })).status).toBe(200);
    const csrf = ((await (await fetch(`${base}/dashboard/session`, { headers: { cookie } })).json()) as { csrf: string }).csrf;
    const post = (headers: Record<string, string>) => fetch(`${base}/test/echo`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: '{"a":1}' });
    expect((await post({})).status).toBe(403);
    expect((await post({ 'x-deaddrop-csrf': 'wrong' })).status).toBe(403);
    expect((await post({ 'x-deaddrop-csrf': csrf })).status).toBe(200);
    // The host guard still runs first: a foreign Origin is refused even with cookie and CSRF value.
    expect((await post({ 'x-deaddrop-csrf': csrf, origin: 'http://evil.example' })).status).toBe(403);
    // Signing out ends the session.
    expect((await fetch(`${base}/dashboard/logout`, { method: 'POST', headers: { cookie, 'x-deaddrop-csrf': csrf, 'content-type': 'application/json' }, body: '{}' })).status).toBe(200);
    expect((await fetch(`${base}/status`, { headers: { cookie } })).status).toBe(401);
  });

  it('opens /events with the cookie from the own origin, refuses a foreign origin', async () => {
    const cookie = await signIn();
    const ws = base.replace('http:', 'ws:') + '/events';
    const own = new WebSocket(ws, { headers: { cookie, origin: base } });
    await new Promise<void>((resolve, reject) => { own.once('open', () => resolve()); own.once('error', reject); });
    const got = new Promise<string>((resolve) => own.once('message', (m) => resolve(m.toString())));
    events.publish('drop.pending', 'x1', { txid: 'aa' });
    expect(JSON.parse(await got).type).toBe('drop.pending');
    own.close();
    const foreign = new WebSocket(ws, { headers: { cookie, origin: 'http://evil.example' } });
    const refused = await new Promise<number>((resolve) => foreign.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(refused).toBe(403);
    const noCookie = new WebSocket(ws, { headers: { origin: base } });
    expect(await new Promise<number>((resolve) => noCookie.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))).toBe(401);
  });

  it('forgets login codes after two minutes', () => {
    let now = 1_000_000;
    const s = new DashboardSessions(() => now);
    const { code } = s.issueCode();
    now += LOGIN_CODE_TTL_MS + 1;
    expect(s.redeem(code)).toBeUndefined();
    const fresh = s.issueCode().code;
    expect(s.redeem(fresh)).toBeTypeOf('string');
    expect(s.redeem(fresh)).toBeUndefined();
  });
});
