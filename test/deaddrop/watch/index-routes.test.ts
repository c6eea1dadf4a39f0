import { describe, it, expect, afterEach } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandler } from '../../../src/api/errors.js';
import { indexRoutes } from '../../../src/deaddrop/watch/index-routes.js';
import { IndexService, MAX_INDEX_RANGE } from '../../../src/deaddrop/watch/index-service.js';
import { DropStore } from '../../../src/deaddrop/watch/drop-store.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function app(): Promise<{ app: FastifyInstance; store: DropStore }> {
  const store = DropStore.open(':memory:');
  const tweak = Uint8Array.from([0x02, ...new Uint8Array(32).fill(9)]);
  for (let h = 100; h <= 104; h++) {
    const txid = h.toString(16).padStart(64, '0');
    store.transaction(() => store.connectBlock({ height: h, hash: 'ab'.repeat(32) }, [{ height: h, blockHash: 'ab'.repeat(32), txid, vout: 2, tweak, data: new Uint8Array(80).fill(h) }], [], h));
  }
  // The same ajv options as src/api/app.ts.
  const a = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } });
  installErrorHandler(a);
  await a.register(indexRoutes, { index: new IndexService(store, () => ({ indexedFrom: 100, indexedTip: 104 })) });
  cleanup.push(() => store.close(), () => a.close());
  return { app: a, store };
}

describe('index routes', () => {
  it('serves a range with hex tweak data and the covered bounds', async () => {
    const { app: a } = await app();
    const res = await a.inject({ method: 'GET', url: '/index/candidates?from=101&to=102' });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { from: number; to: number; candidates: { height: number; tweak: string; data: string; vout: number }[] };
    expect([body.from, body.to]).toEqual([101, 102]);
    expect(body.candidates.map((c) => c.height)).toEqual([101, 102]);
    expect(body.candidates[0]!.tweak).toBe('02' + '09'.repeat(32));
    expect(body.candidates[0]!.data).toBe('65'.repeat(80));
    const info = await a.inject({ method: 'GET', url: '/index/info' });
    expect(info.json()).toEqual({ indexedFrom: 100, indexedTip: 104, maxRange: MAX_INDEX_RANGE });
  });

  it('rejects bad and oversized ranges with 400', async () => {
    const { app: a } = await app();
    for (const q of ['from=a&to=2', 'from=1', 'from=-1&to=2', 'from=5&to=4', `from=0&to=${MAX_INDEX_RANGE}`, 'from=1&to=2&extra=1', 'from=99999999999&to=1']) {
      const res = await a.inject({ method: 'GET', url: `/index/candidates?${q}` });
      expect(res.statusCode, q).toBe(400);
    }
  });
});
