import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BitcoindSource, cookieAuth } from '../../../src/chain/backends/bitcoind.js';
import { isDeaddropError } from '../../../src/util/errors.js';

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
