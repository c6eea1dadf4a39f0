import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BitcoindSource, cookieAuth } from '../../../src/chain/backends/bitcoind.js';
import { BtcdSource } from '../../../src/chain/backends/btcd.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { activeTimers } from '../../support/resources.js';

const dir = mkdtempSync(join(tmpdir(), 'deaddrop-cookie-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cookieAuth', () => {
  it('reads __cookie__:<pass> and re-reads it when the node writes a new one', async () => {
    const file = join(dir, '.cookie');
    writeFileSync(file, '__cookie__:aaaa\n');
    const auth = cookieAuth(file);
    expect(await auth()).toEqual({ user: '__cookie__', pass: 'aaaa' });
    writeFileSync(file, '__cookie__:bbbb');
    utimesSync(file, new Date(), new Date(Date.now() + 5_000)); // a restart gives a new mtime
    expect(await auth()).toEqual({ user: '__cookie__', pass: 'bbbb' });
  });

  it('a missing cookie (node down) is BACKEND_UNREACHABLE; a malformed one BAD_INPUT, neither shows content', async () => {
    const missing = await cookieAuth(join(dir, 'nope'))().catch((e: unknown) => e);
    expect(isDeaddropError(missing, 'BACKEND_UNREACHABLE')).toBe(true);
    const bad = join(dir, 'bad');
    writeFileSync(bad, 'SECRETNOCOLON');
    const err = await cookieAuth(bad)().catch((e: unknown) => e);
    expect(isDeaddropError(err, 'BAD_INPUT')).toBe(true);
    expect((err as Error).message).not.toContain('SECRET');
  });

  it('a source whose cookie is missing reports the node unreachable at ready()', async () => {
    const src = new BitcoindSource({ url: 'http://127.0.0.1:1/', auth: { cookieFile: join(dir, 'gone') } }, { expectedNetwork: 'regtest', timeoutMs: 500 });
    const err = await src.ready().catch((e: unknown) => e);
    expect(isDeaddropError(err, 'BACKEND_UNREACHABLE')).toBe(true);
    expect(src.capabilities).toMatchObject({ fullBlocks: true, push: false, scriptHistory: false });
    await src.close();
  });
});

/** A fetch that never answers: each call waits until its signal aborts. Counts calls in flight. */
function hangingFetch(): { fetch: typeof fetch; inFlight: () => number } {
  let n = 0;
  const fetchFn = (_url: string | URL | Request, init?: RequestInit): Promise<Response> => new Promise((_resolve, reject) => {
    n++;
    init?.signal?.addEventListener('abort', () => {
      n--;
      reject(init.signal?.reason);
    }, { once: true });
  });
  return { fetch: fetchFn as typeof fetch, inFlight: () => n };
}

describe('JSON-RPC sources: close during open', () => {
  const makers = {
    bitcoind: (f: typeof fetch) => new BitcoindSource({ url: 'http://127.0.0.1:1/', auth: { user: 'u', pass: 'p' }, fetch: f, zmq: false }, { expectedNetwork: 'regtest', timeoutMs: 60_000 }),
    btcd: (f: typeof fetch) => new BtcdSource({ url: 'http://127.0.0.1:1/', auth: { user: 'u', pass: 'p' }, fetch: f }, { expectedNetwork: 'regtest', timeoutMs: 60_000 }),
  };
  for (const [kind, make] of Object.entries(makers)) {
    it(`${kind}: close aborts the open in flight; ready rejects, close resolves, nothing is left running`, async () => {
      const before = activeTimers();
      const { fetch: f, inFlight } = hangingFetch();
      const src = make(f);
      const opening = src.ready();
      const settled = opening.then(() => 'resolved', (e: unknown) => e);
      await expect.poll(inFlight).toBe(1);
      await src.close();
      const outcome = await settled;
      expect(outcome).not.toBe('resolved');
      expect(inFlight()).toBe(0);
      expect(activeTimers()).toBeLessThanOrEqual(before);
      await expect(src.ready()).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    });
  }
});
