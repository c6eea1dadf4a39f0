/**
 * `--public-listen <addr:port>`: a second HTTP listener over the same fastify app that serves
 * only the public routes (PayPub content, the public candidate index). The host guard
 * (host-guard.ts) answers 404 there for every other route, with or without the token; no
 * websocket upgrade is accepted on it.
 *
 * Risks (README, "The local API"): anything that can reach the address can fetch every public
 * route, ask for private-mode terms (bounded per source, see src/paypub/private-offers.ts) and
 * announce pledges; the daemon logs nothing per request, but a network observer sees who fetches
 * which sale. Put it behind TLS (a reverse proxy) and a firewall rule sized to your buyers.
 */
import { createServer, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { DeaddropError } from '../util/errors.js';
import { markPublicListener } from './host-guard.js';

/** Header and request deadlines on the public listener (strangers connect to it). */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 60_000;

export interface PublicListener {
  /** `http://addr:port` as bound (port 0 resolved). */
  readonly url: string;
  close(): Promise<void>;
}

/** `host:port`, `[v6]:port`; the port may be 0 (a free one). BAD_INPUT otherwise. */
export function parseListenAddress(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9a-zA-Z.-]+)):([0-9]{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65_535)) throw DeaddropError.badInput('--public-listen takes <address>:<port>, e.g. 0.0.0.0:8080 or [::]:8080');
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Starts the public listener over `app` (which must be ready). */
export async function listenPublic(app: FastifyInstance, address: string): Promise<PublicListener> {
  const { host, port } = parseListenAddress(address);
  await app.ready();
  const server: Server = createServer((req, res) => {
    markPublicListener(req);
    app.routing(req, res);
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.on('upgrade', (_req, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(DeaddropError.badInput(`cannot listen on ${address} (--public-listen): ${err.code ?? err.message}`)));
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      server.on('error', () => undefined);
      resolve();
    });
  });
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('public listener has no address');
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  return {
    url,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
