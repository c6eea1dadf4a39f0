/**
 * Backend credentials without the command line: a process's arguments are world-readable
 * (`ps`, `/proc/<pid>/cmdline`), so `--backend btcd://user:pass@…` shows the node's password to
 * every user of the machine. The password can come instead from
 *
 * - `--backend-auth-file <path>`: a file holding `user:password` (Bitcoin Core's `.cookie` file
 *   has exactly this form, so it can be named directly), or
 * - `DEADDROP_BACKEND_AUTH=user:password` (the environment is readable by the same user only).
 *
 * A password still given inside `--backend` works, with a warning.
 */
import { readFileSync } from 'node:fs';
import { redactUrl } from '../chain/open.js';
import { DeaddropError } from '../util/errors.js';

/** Environment variable with `user:password` for the backend. */
export const BACKEND_AUTH_ENV = 'DEADDROP_BACKEND_AUTH';

/** Schemes whose URLs carry RPC credentials. */
const AUTH_SCHEMES = /^(bitcoind|btcd)(\+[a-z]+)?:$/;

/** `user:password` from a file (trailing newline ignored); errors never repeat the content. */
export function readAuthFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw DeaddropError.badInput(`cannot read --backend-auth-file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return text.replace(/\r?\n$/, '');
}

/** True when the backend URL has a password in it. */
export function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/**
 * The backend URL with `auth` (`user:password`) put in, for bitcoind:// and btcd:// URLs.
 * Refuses a URL that already carries credentials (two sources, one would be silently ignored).
 */
export function withBackendAuth(url: string, auth: string, source: string): string {
  const colon = auth.indexOf(':');
  if (colon <= 0 || auth.includes('\n')) throw DeaddropError.badInput(`${source} must hold one line user:password`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw DeaddropError.badInput(`bad backend URL ${JSON.stringify(redactUrl(url))}`);
  }
  if (!AUTH_SCHEMES.test(u.protocol)) throw DeaddropError.badInput(`${source}: credentials apply to bitcoind:// and btcd:// backends only`);
  if (u.username || u.password) throw DeaddropError.badInput(`the backend URL already has credentials; drop them from --backend when using ${source}`);
  u.username = encodeURIComponent(auth.slice(0, colon));
  u.password = encodeURIComponent(auth.slice(colon + 1));
  return u.toString();
}

export interface BackendSources {
  /** `--backend` from the command line. */
  readonly flag: string | undefined;
  /** DEADDROP_BACKEND. */
  readonly env: string | undefined;
  readonly authFile: string | undefined;
  /** DEADDROP_BACKEND_AUTH. */
  readonly authEnv: string | undefined;
  readonly warn: (line: string) => void;
}

/** The backend URL to use (credentials merged in), or undefined when none was given. */
export function resolveBackendFlag(s: BackendSources): string | undefined {
  const url = s.flag ?? s.env;
  if (s.flag !== undefined && urlHasPassword(s.flag)) {
    s.warn(`the password in --backend is visible to every user of this machine (ps); use --backend-auth-file <file> or ${BACKEND_AUTH_ENV} instead`);
  }
  if (url === undefined) {
    if (s.authFile !== undefined) throw DeaddropError.badInput('--backend-auth-file needs --backend <url>');
    return undefined;
  }
  if (s.authFile !== undefined) return withBackendAuth(url, readAuthFile(s.authFile), '--backend-auth-file');
  if (s.authEnv !== undefined && s.authEnv !== '') return withBackendAuth(url, s.authEnv, BACKEND_AUTH_ENV);
  return url;
}
