/**
 * Bounds on the API's connections (issue 17): before, 100 slowloris connections (headers sent
 * one line at a time, never finished) were held for 82 s until Node's default 60 s headers
 * timeout, checked every 30 s, answered 408, and nothing bounded how many connections one
 * client could open. Here:
 * - a request's headers must be complete within `headersTimeoutMs` (checked every 250 ms) and
 *   the whole request within `requestTimeoutMs`; an idle keep-alive connection closes after
 *   `keepAliveTimeoutMs`. Upgraded websockets (`/events`) are no longer HTTP requests and are
 *   not affected;
 * - at most `maxConnections` connections in all and `maxPerSource` from one address; beyond,
 *   a new connection is closed at once, before any byte is parsed.
 */
import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxPerSource: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 1024,
  maxPerSource: 512,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

/** How often Node checks the headers and request timeouts (its default is 30 s). */
const CHECK_INTERVAL_MS = 250;

/** Options for Fastify's constructor that set the timeouts. */
export function serverTimeouts(limits: ConnectionLimits): { requestTimeout: number; keepAliveTimeout: number; http: ServerOptions } {
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: { headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs), connectionsCheckingInterval: CHECK_INTERVAL_MS },
  };
}

/** Caps the server's connections in all and per source address. */
export function limitConnections(server: Server, limits: ConnectionLimits): void {
  server.maxConnections = limits.maxConnections;
  const perSource = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const source = socket.remoteAddress ?? '';
    const n = perSource.get(source) ?? 0;
    if (n >= limits.maxPerSource) {
      socket.destroy();
      return;
    }
    perSource.set(source, n + 1);
    socket.once('close', () => {
      const left = (perSource.get(source) ?? 1) - 1;
      if (left <= 0) perSource.delete(source);
      else perSource.set(source, left);
    });
  });
}
