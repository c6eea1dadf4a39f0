/** Backend credentials from a file or the environment, merged into the backend URL; warnings for a password on the command line. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveBackendFlag, withBackendAuth } from '../../src/cli/backend-auth.js';

const root = mkdtempSync(join(tmpdir(), 'dd-auth-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function resolve(o: { flag?: string; env?: string; authFile?: string; authEnv?: string }): { url: string | undefined; warnings: string[] } {
  const warnings: string[] = [];
  const url = resolveBackendFlag({ flag: o.flag, env: o.env, authFile: o.authFile, authEnv: o.authEnv, warn: (l) => warnings.push(l) });
  return { url, warnings };
}

describe('backend credentials', () => {
  it('puts user:password from a file (a Core .cookie has that form) into the URL, with no warning', () => {
    const cookie = join(root, '.cookie');
    writeFileSync(cookie, '__cookie__:a1b2:c3\n', { mode: 0o600 });
    const r = resolve({ flag: 'bitcoind://127.0.0.1:18443?rest=1', authFile: cookie });
    expect(r.url).toBe('bitcoind://__cookie__:a1b2%3Ac3@127.0.0.1:18443?rest=1');
    expect(new URL(r.url!).password).toBe('a1b2%3Ac3');
    expect(decodeURIComponent(new URL(r.url!).password)).toBe('a1b2:c3');
    expect(r.warnings).toEqual([]);
  });

  it('takes DEADDROP_BACKEND_AUTH, and DEADDROP_BACKEND for the URL', () => {
    expect(resolve({ env: 'btcd://127.0.0.1:18334', authEnv: 'u:p@ss' }).url).toBe('btcd://u:p%40ss@127.0.0.1:18334');
    expect(resolve({}).url).toBeUndefined();
  });

  it('warns once for a password in --backend (and never repeats it), not for one in DEADDROP_BACKEND', () => {
    const r = resolve({ flag: 'btcd://u:hunter2@127.0.0.1:18334' });
    expect(r.url).toBe('btcd://u:hunter2@127.0.0.1:18334');
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/visible to every user .*--backend-auth-file/);
    expect(r.warnings[0]).not.toContain('hunter2');
    expect(resolve({ env: 'btcd://u:hunter2@127.0.0.1:18334' }).warnings).toEqual([]);
  });

  it('refuses ambiguous or misplaced credentials with a clear error that shows no secret', () => {
    expect(() => withBackendAuth('btcd://a:secret1@127.0.0.1:1', 'u:p', '--backend-auth-file')).toThrow(/already has credentials/);
    expect(() => withBackendAuth('electrum+tcp://127.0.0.1:1', 'u:p', 'X')).toThrow(/bitcoind:\/\/ and btcd:\/\/ backends only/);
    expect(() => withBackendAuth('btcd://127.0.0.1:1', 'no-colon', 'X')).toThrow(/user:password/);
    expect(() => resolve({ authFile: join(root, 'missing') })).toThrow(/needs --backend/);
    expect(() => resolve({ flag: 'btcd://127.0.0.1:1', authFile: join(root, 'missing') })).toThrow(/cannot read --backend-auth-file .*ENOENT/);
    try {
      withBackendAuth('btcd://a:secret1@127.0.0.1:1', 'u:p', 'X');
    } catch (err) {
      expect((err as Error).message).not.toContain('secret1');
    }
  });
});
