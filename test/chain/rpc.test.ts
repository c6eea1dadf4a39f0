/**
 * RpcClient against a tiny local JSON-RPC server started in the test. The server only
 * exercises parsing, auth, batching, timeouts and retries; real node behaviour is covered by
 * the conformance suite against btcd.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient, RpcError, isIdempotentMethod } from '../../src/chain/rpc.js';
import { freePort } from '../../src/regtest/harness.js';
import { isDeaddropError } from '../../src/util/errors.js';

type Handler = (body: unknown, req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let url: string;
let handler: Handler;
const seen: { auth: string | undefined; body: unknown }[] = [];

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

/** Answers each call in the request with `fn(method, params)`, echoing the id. */
function answer(fn: (method: string, params: unknown[]) => { result?: unknown; error?: { code: number; message: string } }): Handler {
  return (body, _req, res) => {
    const one = (c: { id: unknown; method: string; params: unknown[] }) => ({ result: null, error: null, ...fn(c.method, c.params), id: c.id });
    reply(res, 200, Array.isArray(body) ? body.map(one) : one(body as { id: unknown; method: string; params: unknown[] }));
  };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(data) as unknown;
      seen.push({ auth: req.headers.authorization, body });
      handler(body, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

afterEach(() => {
  seen.length = 0;
});

describe('RpcClient', () => {
  it('sends basic auth and an id, and returns the result', async () => {
    handler = answer((method, params) => ({ result: { method, params } }));
    const c = new RpcClient({ url, auth: { user: 'alice', pass: 's3cret' } });
    expect(await c.call('getblockhash', [0])).toEqual({ method: 'getblockhash', params: [0] });
    expect(seen[0]?.auth).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    const body = seen[0]?.body as { id: unknown; jsonrpc: string };
    expect(typeof body.id).toBe('number');
    expect(body.jsonrpc).toBe('1.0');
  });

  it('takes credentials from the URL but never shows them', async () => {
    handler = answer(() => ({ result: 1 }));
    const port = (server.address() as AddressInfo).port;
    const c = new RpcClient({ url: `http://bob:hunter2@127.0.0.1:${port}/` });
    expect(await c.call('getblockcount')).toBe(1);
    expect(seen[0]?.auth).toBe(`Basic ${Buffer.from('bob:hunter2').toString('base64')}`);
    expect(c.endpoint).toBe(`127.0.0.1:${port}`);
  });

  it('maps node errors to RpcError with the node code', async () => {
    handler = answer(() => ({ error: { code: -5, message: 'Block not found' } }));
    const c = new RpcClient({ url });
    const err = await c.call('getblock', ['00', 0]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(-5);
    expect((err as RpcError).method).toBe('getblock');
  });

  it('reads errors Core sends with HTTP 500', async () => {
    handler = (body, _req, res) =>
      reply(res, 500, { result: null, error: { code: -26, message: 'txn-mempool-conflict' }, id: (body as { id: unknown }).id });
    const err = await new RpcClient({ url }).call('sendrawtransaction', ['00']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(-26);
  });

  it('rejects an answer whose id does not match', async () => {
    handler = (_body, _req, res) => reply(res, 200, { result: 1, error: null, id: 999_999 });
    const err = await new RpcClient({ url }).call('getblockcount').catch((e: unknown) => e);
    expect(isDeaddropError(err, 'PROTOCOL')).toBe(true);
  });

  it('batches and matches answers by id even out of order', async () => {
    handler = (body, _req, res) => {
      const calls = body as { id: number; method: string; params: unknown[] }[];
      const answers = calls.map((c) =>
        c.method === 'bad' ? { result: null, error: { code: -1, message: 'nope' }, id: c.id } : { result: c.params[0], error: null, id: c.id },
      );
      reply(res, 200, answers.reverse());
    };
    const c = new RpcClient({ url });
    const res = await c.batch([
      { method: 'echo', params: ['a'] },
      { method: 'bad' },
      { method: 'echo', params: ['c'] },
    ]);
    expect(res[0]).toEqual({ ok: true, result: 'a' });
    expect(res[1]?.ok).toBe(false);
    expect(res[1]?.ok === false && res[1].error.code).toBe(-1);
    expect(res[2]).toEqual({ ok: true, result: 'c' });
    expect(await c.batch([])).toEqual([]);
  });

  it('reports bad credentials without echoing them', async () => {
    handler = (_body, _req, res) => {
      res.writeHead(401);
      res.end();
    };
    const err = await new RpcClient({ url, auth: { user: 'u', pass: 'TOPSECRET' } }).call('getblockcount').catch((e: unknown) => e);
    expect(isDeaddropError(err, 'BACKEND_ERROR')).toBe(true);
    expect((err as Error).message).not.toContain('TOPSECRET');
  });

  it('maps a refused connection to BACKEND_UNREACHABLE without the password', async () => {
    const port = await freePort();
    const c = new RpcClient({ url: `http://u:PASSWORD123@127.0.0.1:${port}/`, retries: 1, backoffMs: 1 });
    const err = await c.call('getblockcount').catch((e: unknown) => e);
    expect(isDeaddropError(err, 'BACKEND_UNREACHABLE')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).not.toContain('PASSWORD123');
  });

  it('times out a hung request as BACKEND_UNREACHABLE', async () => {
    handler = () => undefined; // never answers
    const c = new RpcClient({ url, timeoutMs: 100, retries: 0 });
    const t0 = Date.now();
    const err = await c.call('getblockcount').catch((e: unknown) => e);
    expect(isDeaddropError(err, 'BACKEND_UNREACHABLE')).toBe(true);
    expect((err as Error).message).toMatch(/timed out/);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('a caller abort is passed through, not turned into a backend error', async () => {
    handler = () => undefined;
    const ac = new AbortController();
    const p = new RpcClient({ url, timeoutMs: 5_000 }).call('getblockcount', [], { signal: ac.signal });
    ac.abort(new Error('stop it'));
    await expect(p).rejects.toThrow('stop it');
  });

  it('retries reads after a dropped connection, with backoff', async () => {
    let n = 0;
    handler = (body, req, res) => {
      if (n++ < 2) {
        req.socket.destroy(); // connection dropped mid-request
        return;
      }
      answer(() => ({ result: 42 }))(body, req, res);
    };
    const c = new RpcClient({ url, retries: 2, backoffMs: 5 });
    expect(await c.call('getblockcount')).toBe(42);
    expect(n).toBe(3);
  });

  it('never retries sendrawtransaction or other writes', async () => {
    let n = 0;
    handler = (_body, req) => {
      n++;
      req.socket.destroy();
    };
    const c = new RpcClient({ url, retries: 3, backoffMs: 1 });
    const err = await c.call('sendrawtransaction', ['00']).catch((e: unknown) => e);
    expect(isDeaddropError(err, 'BACKEND_UNREACHABLE')).toBe(true);
    expect(n).toBe(1);
    n = 0;
    await c.batch([{ method: 'getblockcount' }, { method: 'sendrawtransaction', params: ['00'] }]).catch(() => undefined);
    expect(n).toBe(1);
  });

  it('does not retry RPC errors (the node answered)', async () => {
    let n = 0;
    handler = (body, req, res) => {
      n++;
      answer(() => ({ error: { code: -8, message: 'bad param' } }))(body, req, res);
    };
    await expect(new RpcClient({ url, retries: 3, backoffMs: 1 }).call('getblockhash', [-1])).rejects.toBeInstanceOf(RpcError);
    expect(n).toBe(1);
  });

  it('classifies idempotent methods', () => {
    for (const m of ['getblock', 'getrawtransaction', 'estimatesmartfee', 'testmempoolaccept', 'getrawmempool']) expect(isIdempotentMethod(m)).toBe(true);
    for (const m of ['sendrawtransaction', 'generate', 'generatetoaddress', 'submitblock', 'invalidateblock', 'stop']) expect(isIdempotentMethod(m)).toBe(false);
  });

  it('refuses URLs that are not http(s)', () => {
    expect(() => new RpcClient({ url: 'ftp://x' })).toThrow(/http/);
    expect(() => new RpcClient({ url: 'not a url' })).toThrow(/valid URL/);
  });
});
