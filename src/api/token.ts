import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const API_TOKEN_FILE = 'api.token';

/**
 * Writes a fresh random bearer token to `<datadir>/api.token` (mode 0600), like Bitcoin Core's
 * cookie file: any local process that can read the datadir can use the API, nothing else can.
 */
export function writeApiToken(datadir: string): string {
  const token = randomBytes(32).toString('hex');
  const path = join(datadir, API_TOKEN_FILE);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, token + '\n', { mode: 0o600 });
  renameSync(tmp, path);
  return token;
}

export function readApiToken(datadir: string): string | undefined {
  const path = join(datadir, API_TOKEN_FILE);
  if (!existsSync(path)) return undefined;
  return readFileSync(path, 'utf8').trim();
}

/** Constant-time comparison of a presented token with the expected one. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
