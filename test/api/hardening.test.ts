/**
 * The API against browsers and bad bodies (issue 9, items 5, 10 and 11): a foreign Host (DNS
 * rebinding) or Origin is refused on every route, the public listener serves the public routes
 * and nothing else, bodies that are not UTF-8 or nest too deep are a clear 400, a wrong network
 * is one status everywhere, every 500 is logged, and /openapi.json describes what is served.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { Transaction } from '@scure/btc-signer';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, listenLoopback } from '../../src/api/app.js';
import { routeGroup } from '../../src/feature/routes.js';
import { listenPublic, type PublicListener } from '../../src/api/public-listener.js';
import { walletRoutes } from '../../src/wallet/routes.js';
import type { DaemonStatus } from '../../src/api/services.js';
import { EventBus } from '../../src/util/event-bus.js';
import { encodeAddress } from '../../src/deaddrop/bip352.js';
import { dropRoutes } from '../../src/deaddrop/routes.js';
import { paypubRoutes } from '../../src/paypub/routes.js';
import { DeaddropError } from '../../src/util/errors.js';
import { psbtFinalize } from '../../src/wallet/psbt.js';
import type { Wallet } from '../../src/wallet/wallet.js';
import type { IntroductionLedger } from '../../src/deaddrop/introductions.js';
import type { IntroducerWallet } from '../../src/deaddrop/publish.js';
import { DropStore } from '../../src/deaddrop/watch/drop-store.js';
import { indexRoutes } from '../../src/deaddrop/watch/index-routes.js';
import { IndexService } from '../../src/deaddrop/watch/index-service.js';
import { runCli } from '../support/cli.js';
import { expectCode } from '../support/errors.js';

const TOKEN = 'e'.repeat(64);
const auth = { authorization: `Bearer ${TOKEN}` };
const status: DaemonStatus = {
  version: '0.1.0', network: 'regtest', backend: { kind: 'btcd', capabilities: {} }, tip: { height: 101, hash: 'ab'.repeat(32) }, synced: true, uptimeSeconds: 1, secp: 'native',
};
const locked = (): never => {
  throw new DeaddropError('NOT_INITIALIZED', 'locked');
};
const saleId = 'ab'.repeat(32);
/** Only `network` is read before the recipient or address is refused. */
const regtestWallet = { network: 'regtest' };

interface RawReply {
  status: number;
  body: string;
}

/** One HTTP/1.1 request with exactly the headers given (fetch would not let a test set Host). */
function raw(url: string, path: string, headers: Record<string, string>, method = 'GET'): Promise<RawReply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method, headers, setHost: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('api hardening', () => {
  let app: FastifyInstance;
  let base: string;
  let pub: PublicListener;
  const logged: string[] = [];
  const store = DropStore.open(':memory:');
  /** inject() with the listening address as Host, like any local client. */
  const inject = (o: { method?: 'GET' | 'POST'; url: string; headers?: Record<string, string>; payload?: string | Buffer | Record<string, unknown> }): Promise<LightMyRequestResponse> =>
    app.inject({ ...o, headers: { host: new URL(base).host, ...o.headers } });

  beforeAll(async () => {
    const index = new IndexService(store, () => ({ indexedFrom: 100, indexedTip: 101 }));
    app = await buildApp({
      token: TOKEN,
      services: { status: { status: async () => status }, events: new EventBus() },
      log: (line) => logged.push(line),
      routes: [
        routeGroup('/wallet', walletRoutes, { wallet: () => regtestWallet as unknown as Wallet, defaultFeeRate: async () => 1 }),
        routeGroup('', dropRoutes, {
          // the ledger and issuer are never reached: the recipient is parsed first
          wallet: () => regtestWallet as unknown as IntroducerWallet, invite: locked, ledger: () => ({}) as IntroductionLedger, issuer: () => locked, drops: () => [], defaultFeeRate: async () => 1,
        }),
        routeGroup('', indexRoutes, { index }),
        routeGroup('/paypub', paypubRoutes, { service: () => undefined }),
        {
          prefix: '/test',
          plugin: async (r) => {
            r.post('/text', {
              schema: { body: { type: 'object', additionalProperties: false, properties: { text: { type: 'string', maxLength: 1000 }, list: { type: 'array' } } } },
            }, async (req) => req.body);
            r.get('/crash', { schema: {} }, async () => {
              throw new TypeError('secret-internal-detail');
            });
            r.post('/psbt', { schema: { body: { type: 'object', required: ['psbt'], properties: { psbt: { type: 'string' } } } } }, async (req) => {
              const fin = psbtFinalize((req.body as { psbt: string }).psbt, { maxFeeRate: 1000 });
              return { txid: fin.txid };
            });
          },
        },
      ],
    });
    base = await listenLoopback(app);
    pub = await listenPublic(app, '127.0.0.1:0');
  });
  afterAll(async () => {
    await pub.close();
    await app.close();
    store.close();
  });

  describe('Host and Origin (DNS rebinding, cross-origin)', () => {
    const port = (): string => new URL(base).port;
    const routes = ['/status', '/index/info', `/paypub/content/${saleId}/manifest`, '/openapi.json', '/nope'];

    it('refuses a foreign Host on private and public routes with 421 and a JSON error', async () => {
      for (const path of routes) {
        for (const host of ['evil.example', `evil.example:${port()}`, '127.0.0.1:1', `127.0.0.2:${port()}`, `localhost.evil.example:${port()}`, `127.0.0.1:${port()}@evil.example`]) {
          const r = await raw(base, path, { host, ...auth });
          expect(r.status, `${path} Host: ${host}`).toBe(421);
          expect(JSON.parse(r.body)).toMatchObject({ error: 'MISDIRECTED_HOST' });
        }
      }
      // No Host at all: Node's HTTP parser refuses HTTP/1.1 without one (400) before the app runs.
      expect([400, 421]).toContain((await raw(base, '/index/info', {})).status);
      expect([400, 421]).toContain((await raw(base, '/index/info', { host: '' })).status);
      const injected = await app.inject({ url: '/index/info', headers: { host: 'evil.example' } });
      expect(injected.statusCode).toBe(421);
    });

    it('accepts the listening address by every loopback name', async () => {
      for (const name of ['127.0.0.1', 'localhost', 'LOCALHOST', '[::1]']) {
        const r = await raw(base, '/status', { host: `${name}:${port()}`, ...auth });
        expect(r.status, name).toBe(200);
        expect((await raw(base, '/index/info', { host: `${name}:${port()}` })).status, name).toBe(200);
      }
      // The token check still runs after the host check.
      expect((await raw(base, '/status', { host: `127.0.0.1:${port()}` })).status).toBe(401);
    });

    it('refuses browser Origins other than the daemon\'s own with 403, on every route', async () => {
      const host = `127.0.0.1:${port()}`;
      for (const path of routes) {
        for (const origin of ['http://evil.example', 'null', `https://127.0.0.1:${port()}`, 'http://127.0.0.1:1', `http://evil.example:${port()}`]) {
          const r = await raw(base, path, { host, origin, ...auth });
          expect(r.status, `${path} Origin: ${origin}`).toBe(403);
          expect(JSON.parse(r.body)).toMatchObject({ error: 'FORBIDDEN_ORIGIN' });
        }
      }
      const own = await raw(base, '/status', { host, origin: `http://localhost:${port()}`, ...auth });
      expect(own.status).toBe(200);
      const post = await raw(base, `/paypub/content/${saleId}/private`, { host, origin: 'http://evil.example', 'content-type': 'application/json' }, 'POST');
      expect(post.status).toBe(403);
    });

    it('refuses a foreign Origin or Host on the /events websocket upgrade, token or not', async () => {
      const outcome = (ws: WebSocket): Promise<string> => new Promise((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
        ws.on('open', () => {
          ws.close();
          resolve('open');
        });
        ws.on('error', () => resolve('error'));
      });
      const url = `${base.replace('http', 'ws')}/events`;
      expect(await outcome(new WebSocket(url, { headers: auth, origin: 'http://evil.example' }))).toBe('403');
      expect(await outcome(new WebSocket(url, { headers: { ...auth, host: 'evil.example' } }))).toBe('421');
      expect(await outcome(new WebSocket(url, { headers: auth, origin: base }))).toBe('open');
    });
  });

  describe('the public listener', () => {
    it('serves the public routes under any Host', async () => {
      const info = await raw(pub.url, '/index/info', { host: 'seller.example:8080' });
      expect(info.status).toBe(200);
      expect(JSON.parse(info.body)).toMatchObject({ indexedFrom: 100 });
      // reaches the PayPub handler (no wallet in this app, hence NOT_INITIALIZED)
      const manifest = await raw(pub.url, `/paypub/content/${saleId}/manifest`, { host: 'seller.example' });
      expect(JSON.parse(manifest.body)).toMatchObject({ error: 'NOT_INITIALIZED' });
    });

    it('answers 404 on every other route, even with the token', async () => {
      for (const [method, path] of [['GET', '/status'], ['GET', '/wallet/balance'], ['GET', '/paypub/sales'], ['POST', '/paypub/publish'], ['GET', '/openapi.json'], ['GET', '/drops'], ['GET', '/events']] as const) {
        const r = await raw(pub.url, path, { host: 'seller.example', ...auth }, method);
        expect(r.status, path).toBe(404);
        expect(JSON.parse(r.body)).toMatchObject({ error: 'NOT_FOUND' });
      }
    });

    it('accepts no websocket upgrade', async () => {
      const ws = new WebSocket(`${pub.url.replace('http', 'ws')}/events`, { headers: auth });
      const r = await new Promise<string>((resolve) => {
        ws.on('open', () => resolve('open'));
        ws.on('unexpected-response', (_q, res) => resolve(String(res.statusCode)));
        ws.on('error', () => resolve('error'));
      });
      expect(r).not.toBe('open');
    });

    it('`deaddrop start --public-listen` refuses an address it cannot parse, with one line', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'dd-public-listen-'));
      try {
        const r = await runCli(['--datadir', dir, 'start', '--public-listen', 'everywhere']);
        expect(r.code).not.toBe(0);
        expect(r.stderr.trim().split('\n')).toEqual(['error: --public-listen takes <address>:<port>, e.g. 0.0.0.0:8080 or [::]:8080']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses a cross-origin browser request', async () => {
      const r = await raw(pub.url, '/index/info', { host: 'seller.example', origin: 'http://evil.example' });
      expect(r.status).toBe(403);
      expect((await raw(pub.url, '/index/info', { host: 'seller.example', origin: 'http://seller.example' })).status).toBe(200);
    });
  });

  describe('clean errors', () => {
    it('a valid but empty PSBT is a 400, not a 500', async () => {
      const empty = Buffer.from(new Transaction().toPSBT()).toString('base64');
      expectCode(() => psbtFinalize(empty, { maxFeeRate: 1000 }), 'BAD_INPUT');
      const r = await inject({ method: 'POST', url: '/test/psbt', headers: auth, payload: { psbt: empty } });
      expect(r.statusCode).toBe(400);
      expect(r.json()).toMatchObject({ error: 'BAD_INPUT' });
    });

    it('logs every 500 by route and error name, never its message; the stack only under --debug', async () => {
      logged.length = 0;
      const r = await inject({ url: '/test/crash', headers: auth });
      expect(r.statusCode).toBe(500);
      expect(r.body).not.toContain('secret-internal-detail');
      expect(logged).toHaveLength(1);
      expect(logged[0]).toContain('GET /test/crash');
      expect(logged[0]).toContain('TypeError');
      expect(logged[0]).not.toContain('secret-internal-detail');

      const lines: string[] = [];
      const debugApp = await buildApp({
        token: TOKEN, services: { status: { status: async () => status }, events: new EventBus() }, log: (l) => lines.push(l), debug: true,
        routes: [{ prefix: '/t', plugin: async (r2) => {
          r2.get('/crash', { schema: {} }, async () => {
            throw new TypeError('boom');
          });
        } }],
      });
      expect((await debugApp.inject({ url: '/t/crash', headers: auth })).statusCode).toBe(500);
      await debugApp.close();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/TypeError: boom\n\s+at /);
    });

    it('deeply nested JSON is a clear 400', async () => {
      for (const payload of [`{"list":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, `{"list":[${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}]}`]) {
        const r = await inject({ method: 'POST', url: '/test/text', headers: { ...auth, 'content-type': 'application/json' }, payload });
        expect(r.statusCode).toBe(400);
        expect(r.json()).toMatchObject({ error: 'BAD_INPUT' });
        expect(r.json().message).toMatch(/nests deeper than \d+ levels/);
      }
      const fine = await inject({ method: 'POST', url: '/test/text', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"list":[[[["a"]]]],"text":"[{\\"]"}' });
      expect(fine.statusCode).toBe(200);
    });

    it('refuses text that is not valid UTF-8 or Unicode instead of storing U+FFFD', async () => {
      const bodies = [
        Buffer.concat([Buffer.from('{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]), // Latin-1 é
        Buffer.concat([Buffer.from('{"text":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), // CESU surrogate
        Buffer.from('{"text":"\\ud800"}'), // lone surrogate escape
        Buffer.from('{"text":"ok","list":["\\udc00x"]}'),
      ];
      for (const payload of bodies) {
        const r = await inject({ method: 'POST', url: '/test/text', headers: { ...auth, 'content-type': 'application/json' }, payload });
        expect(r.statusCode, payload.toString('hex')).toBe(400);
        expect(r.json().error).toBe('BAD_INPUT');
      }
      const ok = await inject({ method: 'POST', url: '/test/text', headers: { ...auth, 'content-type': 'application/json' }, payload: Buffer.from('{"text":"café \\ud83d\\ude00 😀"}') });
      expect(ok.statusCode).toBe(200);
      expect(ok.json().text).toBe('café 😀 😀');
    });

    it('a wrong network is 400 on /drops/send as on /wallet/send', async () => {
      const key = (): Uint8Array => secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
      const mainnetSp = encodeAddress(key(), key(), 'mainnet');
      const drop = await inject({ method: 'POST', url: '/drops/send', headers: auth, payload: { recipient: mainnetSp, endpoints: ['ws://127.0.0.1:9000'] } });
      expect(drop.json().error).toBe('WRONG_NETWORK');
      expect(drop.statusCode).toBe(400);
      const send = await inject({ method: 'POST', url: '/wallet/send', headers: auth, payload: { address: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', sats: '1000' } });
      expect(send.statusCode).toBe(400);
    });
  });

  describe('/openapi.json', () => {
    it('lists the /events websocket and marks public routes as public', async () => {
      const doc = (await inject({ url: '/openapi.json' })).json() as { security: unknown; paths: Record<string, Record<string, { security?: unknown; description?: string }>> };
      expect(doc.security).toEqual([{ bearer: [] }]);
      expect(doc.paths['/events']?.get?.description).toMatch(/WebSocket/);
      expect(doc.paths['/events']?.get?.security).toBeUndefined(); // the token, as everywhere else
      for (const p of ['/index/info', '/index/candidates', '/paypub/content/{id}/manifest', '/paypub/content/{id}/chunks/{index}', '/paypub/content/{id}/private']) {
        const op = Object.values(doc.paths[p] ?? {})[0];
        expect(op?.security, p).toEqual([]);
      }
      for (const p of ['/status', '/wallet/balance', '/paypub/sales', '/drops/send']) {
        const op = Object.values(doc.paths[p] ?? {})[0];
        expect(op, p).toBeDefined();
        expect(op?.security, p).toBeUndefined();
      }
    });
  });
});
