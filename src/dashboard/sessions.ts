/**
 * Browser sign-in for the dashboard, without ever putting the API token in a URL.
 *
 * `deaddrop dashboard` asks the daemon (with the bearer token) for a login code: random,
 * single-use, valid for two minutes. The URL it prints carries only that code; opening it
 * exchanges the code for a session cookie (HttpOnly, SameSite=Strict, Path=/). Sessions live in
 * memory: a daemon restart signs every browser out.
 *
 * A cookie is sent by the browser on its own, so a request authenticated by cookie alone could
 * be forged by another page (CSRF). State-changing requests (anything but GET/HEAD) authenticated
 * by cookie must also carry `X-Deaddrop-CSRF` equal to the session's CSRF value, which the page
 * reads from `GET /dashboard/session`; another origin cannot read that answer (no CORS), and the
 * host guard refuses foreign `Origin`s before any of this runs.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** How long a login code printed by `deaddrop dashboard` stays valid, ms. */
export const LOGIN_CODE_TTL_MS = 120_000;
/** How long a browser session lasts, ms. */
export const SESSION_TTL_MS = 12 * 3600_000;
/** The header a cookie-authenticated state-changing request must carry. */
export const CSRF_HEADER = 'x-deaddrop-csrf';
/** Most outstanding login codes; the oldest is forgotten first. */
const MAX_CODES = 64;
/** Most live sessions; the oldest is forgotten first. */
const MAX_SESSIONS = 64;

interface Session {
  readonly csrf: string;
  readonly expires: number;
}

/** Outcome of checking a request's session cookie. */
export type CookieAuth = 'ok' | 'csrf-missing' | 'none';

function secret(): string {
  return randomBytes(32).toString('base64url');
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The cookie name carries the port: browsers share cookies across ports of one host, and two
 * daemons on 127.0.0.1 must not overwrite each other's session.
 */
export function cookieName(request: FastifyRequest): string {
  const m = /:([0-9]{1,5})$/.exec(request.headers.host ?? '');
  return `deaddrop_session_${m ? m[1] : '0'}`;
}

function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Login codes and browser sessions of one daemon, in memory. */
export class DashboardSessions {
  readonly #codes = new Map<string, number>();
  readonly #sessions = new Map<string, Session>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A fresh single-use login code. */
  issueCode(): { code: string; expiresAt: number } {
    this.#prune();
    const code = secret();
    const expiresAt = this.#now() + LOGIN_CODE_TTL_MS;
    this.#codes.set(code, expiresAt);
    while (this.#codes.size > MAX_CODES) this.#codes.delete(this.#codes.keys().next().value as string);
    return { code, expiresAt };
  }

  /** Spends `code`: a new session id, or undefined when the code is unknown, used or expired. */
  redeem(code: string): string | undefined {
    this.#prune();
    let match: string | undefined;
    for (const known of this.#codes.keys()) if (sameSecret(known, code)) match = known;
    if (match === undefined) return undefined;
    this.#codes.delete(match);
    const id = secret();
    this.#sessions.set(id, { csrf: secret(), expires: this.#now() + SESSION_TTL_MS });
    while (this.#sessions.size > MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value as string);
    return id;
  }

  #session(request: FastifyRequest): [string, Session] | undefined {
    const id = readCookie(request, cookieName(request));
    if (id === undefined) return undefined;
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    if (s.expires <= this.#now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return [id, s];
  }

  /** The CSRF value of the request's session, or undefined without a live session cookie. */
  csrfFor(request: FastifyRequest): string | undefined {
    return this.#session(request)?.[1].csrf;
  }

  /** Whether the request's cookie authenticates it, and for state changes, its CSRF header too. */
  check(request: FastifyRequest): CookieAuth {
    const found = this.#session(request);
    if (!found) return 'none';
    const method = request.method.toUpperCase();
    if (method === 'GET' || method === 'HEAD') return 'ok';
    const presented = request.headers[CSRF_HEADER];
    return typeof presented === 'string' && sameSecret(presented, found[1].csrf) ? 'ok' : 'csrf-missing';
  }

  /** Ends the request's session (sign out). */
  end(request: FastifyRequest): void {
    const found = this.#session(request);
    if (found) this.#sessions.delete(found[0]);
  }

  #prune(): void {
    const now = this.#now();
    for (const [code, exp] of this.#codes) if (exp <= now) this.#codes.delete(code);
    for (const [id, s] of this.#sessions) if (s.expires <= now) this.#sessions.delete(id);
  }
}
