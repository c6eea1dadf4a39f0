/**
 * The API's token check with the daemon's real route groups: only the public candidate index
 * (`/index/...`) and the OpenAPI document answer without the token; every other route, and
 * every URL trick aimed at reaching one through the public prefix, still needs it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { routeGroup } from '../../src/feature/routes.js';
import { EventBus } from '../../src/util/event-bus.js';
import { walletRoutes } from '../../src/wallet/routes.js';
import { dropRoutes } from '../../src/deaddrop/routes.js';
import { indexRoutes } from '../../src/deaddrop/watch/index-routes.js';
import { IndexService } from '../../src/deaddrop/watch/index-service.js';
import { DropStore } from '../../src/deaddrop/watch/drop-store.js';
import type { DaemonStatus } from '../../src/api/services.js';
import { DeaddropError } from '../../src/util/errors.js';
import { dashboardForApi } from '../../src/dashboard/plugin.js';

const TOKEN = 'f'.repeat(64);
const status: DaemonStatus = {
  version: '0.1.0', network: 'regtest', backend: { kind: 'btcd', capabilities: {} }, tip: { height: 101, hash: 'ab'.repeat(32) }, synced: true, uptimeSeconds: 1, secp: 'native',
};
const locked = (): never => {
  throw new DeaddropError('NOT_INITIALIZED', 'locked');
};

describe('api auth with the public candidate index', () => {
  let app: FastifyInstance;
  const store = DropStore.open(':memory:');

  beforeAll(async () => {
    store.transaction(() => {
      store.connectBlock({ height: 101, hash: 'cd'.repeat(32) }, [
        { height: 101, blockHash: 'cd'.repeat(32), txid: 'ef'.repeat(32), vout: 1, tweak: new Uint8Array(33).fill(2), data: new Uint8Array(80).fill(7) },
      ], [], 101);
    });
    const index = new IndexService(store, () => ({ indexedFrom: 100, indexedTip: 101 }));
    const dashboard = dashboardForApi(TOKEN);
    app = await buildApp({
      token: TOKEN,
      sessions: dashboard.sessions,
      services: { status: { status: async () => status }, events: new EventBus() },
      routes: [
        ...dashboard.routes,
        routeGroup('/wallet', walletRoutes, { wallet: () => undefined, defaultFeeRate: async () => 1 }),
        routeGroup('', dropRoutes, { wallet: () => undefined, invite: locked, ledger: locked, issuer: locked, drops: () => [], defaultFeeRate: async () => 1 }),
        routeGroup('', indexRoutes, { index }),
      ],
    });
  });
  afterAll(async () => {
    await app.close();
    store.close();
  });

  it('serves the index without a token', async () => {
    const info = await app.inject({ url: '/index/info' });
    expect(info.statusCode).toBe(200);
    expect(info.json()).toEqual({ indexedFrom: 100, indexedTip: 101, maxRange: 1000 });
    const range = await app.inject({ url: '/index/candidates?from=100&to=101' });
    expect(range.statusCode).toBe(200);
    expect(range.json().candidates).toHaveLength(1);
    expect(range.json().candidates[0]).toMatchObject({ txid: 'ef'.repeat(32), tweak: '02'.repeat(33) });
    // Still validated like any route.
    expect((await app.inject({ url: '/index/candidates?from=x&to=1' })).statusCode).toBe(400);
  });

  it('requires the token on every other route', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => ({ path, method: m.toUpperCase() })));
    routes.push({ path: '/events', method: 'GET' });
    const paths = routes.map((r) => r.path);
    for (const p of ['/status', '/wallet/balance', '/invite', '/drops', '/drops/send', '/drops/sent', '/index/candidates', '/index/info']) expect(paths).toContain(p);
    for (const r of routes) {
      const res = await app.inject({ method: r.method as 'GET' | 'POST', url: r.path, ...(r.method === 'POST' ? { payload: {} } : {}) });
      if (r.path.startsWith('/index/')) expect(res.statusCode, `${r.method} ${r.path}`).not.toBe(401);
      // The dashboard's sign-in exchanges a one-time code instead of the token: without one, no cookie.
      else if (r.path === '/dashboard/login') expect(res.headers['set-cookie'], r.path).toBeUndefined();
      else expect(res.statusCode, `${r.method} ${r.path}`).toBe(401);
    }
    const withToken = await app.inject({ url: '/drops', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(withToken.statusCode).toBe(200);
  });

  it('does not let a URL under /index/ reach another route', async () => {
    const tricks = [
      '/index/../status', '/index/%2e%2e/status', '/index/..%2fstatus', '/index/info/../../wallet/balance', '//index/../drops',
      '/index/../drops', '/index', '/index/', '/index/nothing', '/INDEX/info',
    ];
    for (const url of tricks) {
      const res = await app.inject({ url });
      expect([401, 404], url).toContain(res.statusCode);
      expect(res.body, url).not.toContain('uptimeSeconds');
      expect(res.body, url).not.toContain('"drops"');
    }
    // A percent-encoded path that decodes to the index is the index: still only chain data.
    expect((await app.inject({ url: '/%69ndex/info' })).json()).toEqual({ indexedFrom: 100, indexedTip: 101, maxRange: 1000 });
  });
});
