import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import { buildApp, listenLoopback } from '../../src/api/app.js';
import { EventBus } from '../../src/util/event-bus.js';
import { readApiToken, writeApiToken } from '../../src/api/token.js';
import type { DaemonStatus } from '../../src/api/services.js';
import { DeaddropError } from '../../src/util/errors.js';

const status: DaemonStatus = {
  version: '0.1.0',
  network: 'regtest',
  backend: { kind: 'btcd', capabilities: { fullBlocks: true } },
  tip: { height: 101, hash: 'ab'.repeat(32) },
  synced: true,
  uptimeSeconds: 1, secp: 'native',
};

describe('api app', () => {
  let dir: string;
  let token: string;
  let app: FastifyInstance;
  const events = new EventBus();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dd-api-'));
    token = writeApiToken(dir);
    app = await buildApp({
      token,
      services: { status: { status: async () => status }, events },
      routes: [
        {
          prefix: '/test',
          plugin: async (r) => {
            r.post(
              '/echo',
              { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer', minimum: 1 } }, additionalProperties: false } } },
              async (req) => req.body,
            );
            r.get('/fail', { schema: {} }, async () => {
              throw DeaddropError.insufficientFunds(10n, 5n);
            });
            r.get('/crash', { schema: {} }, async () => {
              throw new Error('secret-internal-detail');
            });
          },
        },
      ],
    });
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the token file with mode 0600 and reads it back', () => {
    expect(statSync(join(dir, 'api.token')).mode & 0o777).toBe(0o600);
    expect(readApiToken(dir)).toBe(token);
  });

  it('rejects requests without or with a wrong token', async () => {
    expect((await app.inject({ url: '/status' })).statusCode).toBe(401);
    const wrong = await app.inject({ url: '/status', headers: { authorization: `Bearer ${'0'.repeat(64)}` } });
    expect(wrong.statusCode).toBe(401);
  });

  it('answers /status behind the token', async () => {
    const res = await app.inject({ url: '/status', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ network: 'regtest', tip: { height: 101 } });
  });

  it('validates bodies against the route schema', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const bad = await app.inject({ method: 'POST', url: '/test/echo', headers: auth, payload: { n: 'x' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toBe('BAD_INPUT');
    const extra = await app.inject({ method: 'POST', url: '/test/echo', headers: auth, payload: { n: 1, m: 2 } });
    expect(extra.statusCode).toBe(400);
    const ok = await app.inject({ method: 'POST', url: '/test/echo', headers: auth, payload: { n: 3 } });
    expect(ok.json()).toEqual({ n: 3 });
  });

  it('maps DeaddropError codes and hides unexpected error details', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const fail = await app.inject({ url: '/test/fail', headers: auth });
    expect(fail.statusCode).toBe(409);
    expect(fail.json().error).toBe('INSUFFICIENT_FUNDS');
    const crash = await app.inject({ url: '/test/crash', headers: auth });
    expect(crash.statusCode).toBe(500);
    expect(crash.body).not.toContain('secret-internal-detail');
  });

  it('serves an OpenAPI document listing the routes', async () => {
    const res = await app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/status', '/test/echo']));
  });

  it('streams events over the websocket to an authorized client only', async () => {
    const base = await listenLoopback(app);
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const wsUrl = base.replace('http', 'ws') + '/events?types=chain.';
    const denied = new WebSocket(wsUrl);
    const deniedResult = await new Promise<string>((resolve) => {
      denied.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      denied.on('open', () => resolve('open'));
      denied.on('error', () => resolve('error'));
    });
    expect(deniedResult).toBe('401');

    const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } });
    await new Promise((resolve, reject) => {
      ws.on('open', resolve);
      ws.on('error', reject);
    });
    const received = new Promise<unknown>((resolve) => ws.once('message', (m) => resolve(JSON.parse(String(m)))));
    events.publish('wallet.tx', 'w1', { txid: 'x' }); // filtered out
    events.publish('chain.tip', 'tip-102', { height: 102 });
    expect(await received).toMatchObject({ id: 'tip-102', type: 'chain.tip', data: { height: 102 } });
    ws.close();
  });
});
