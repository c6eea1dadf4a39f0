/** PayPub routes: the content routes are public (buyers are strangers), the rest need the token. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { routeGroup } from '../../src/feature/routes.js';
import { writeApiToken } from '../../src/api/token.js';
import { EventBus } from '../../src/util/event-bus.js';
import { paypubRoutes } from '../../src/paypub/routes.js';

describe('paypub routes', () => {
  let dir: string;
  let app: FastifyInstance;
  let token: string;
  const id = 'ab'.repeat(32);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dd-paypub-routes-'));
    token = writeApiToken(dir);
    const status = { status: async () => ({ version: '0', network: 'regtest', backend: { kind: 'btcd', capabilities: {} }, tip: null, synced: false, uptimeSeconds: 0, secp: 'native' }) };
    app = await buildApp({ token, services: { status, events: new EventBus() }, routes: [routeGroup('/paypub', paypubRoutes, { service: () => undefined })] });
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('content routes need no token; owner routes do', async () => {
    for (const url of [`/paypub/content/${id}/manifest`, `/paypub/content/${id}/chunks/3`, `/paypub/content/${id}/reveal`, `/paypub/content/${id}/anchor`]) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(409); // reached the handler: no wallet here
      expect(r.json()).toMatchObject({ error: 'NOT_INITIALIZED' });
    }
    for (const url of ['/paypub/sales', `/paypub/sales/${id}`]) expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
    const withToken = await app.inject({ method: 'GET', url: '/paypub/sales', headers: { authorization: `Bearer ${token}` } });
    expect(withToken.statusCode).toBe(409);
  });

  it('takes uploads above the JSON body limit, up to 64 MiB', async () => {
    const upload = (bytes: number) => app.inject({
      method: 'POST', url: '/paypub/publish/upload?price=1000&name=a.bin', payload: Buffer.alloc(bytes, 1),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    });
    const two = await upload(2 * 1024 * 1024);
    expect(two.statusCode).toBe(409); // reached the handler: no wallet here
    expect(two.json()).toMatchObject({ error: 'NOT_INITIALIZED' });
    expect((await upload(64 * 1024 * 1024 + 1)).statusCode).toBe(413);
    const noToken = await app.inject({ method: 'POST', url: '/paypub/publish/upload?price=1000', payload: Buffer.alloc(10), headers: { 'content-type': 'application/octet-stream' } });
    expect(noToken.statusCode).toBe(401);
  });

  it('rejects malformed input from strangers with 400', async () => {
    const cases = [
      { method: 'GET' as const, url: '/paypub/content/xyz/manifest' },
      { method: 'GET' as const, url: `/paypub/content/${id}/chunks/-1` },
      { method: 'POST' as const, url: `/paypub/content/${id}/pledges`, payload: { tx: 'zz', vout: 0 } },
      { method: 'POST' as const, url: `/paypub/content/${id}/pledges`, payload: { tx: '00', vout: 0, extra: 1 } },
      { method: 'POST' as const, url: `/paypub/content/${id}/private`, payload: { buyerKey: '12' } },
    ];
    for (const c of cases) {
      const r = await app.inject(c);
      expect(r.statusCode, c.url).toBe(400);
    }
  });
});
