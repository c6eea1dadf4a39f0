import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, renameSync, existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const API_TOKEN_FILE = 'api.token';
/** Where a running daemon writes its API base URL, so CLI commands find it. */
export const API_URL_FILE = 'api.url';

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

/** Writes `<datadir>/api.url` (mode 0600) atomically. */
export function writeApiUrl(datadir: string, url: string): void {
  const path = join(datadir, API_URL_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, url + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** Removes `<datadir>/api.url` if it still names `url` (another daemon may have replaced it). */
export function removeApiUrl(datadir: string, url: string): void {
  const path = join(datadir, API_URL_FILE);
  try {
    if (readFileSync(path, 'utf8').trim() === url) rmSync(path, { force: true });
  } catch {
    // already gone
  }
}

/** Removes `<datadir>/api.url` whatever it names (for a daemon that holds the datadir lock: it is stale). */
export function removeStaleApiUrl(datadir: string): void {
  rmSync(join(datadir, API_URL_FILE), { force: true });
}
