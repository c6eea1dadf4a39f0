/**
 * `GET /node/tor`: whether the node uses Tor, whether tor is bootstrapped, which onions are
 * published, and how each connected peer was reached. `deaddrop node status` prints it.
 */
import type { FastifyInstance } from 'fastify';
import type { TorStatusReport } from '../../feature/tor-status.js';
import type { NodeTorStatus } from './node-tor.js';

/** The Tor part of `/status` and `/node/tor`: `{ enabled: false }` alone when Tor is off. */
export const torStatusSchema = {
  type: 'object',
  required: ['enabled'],
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean' },
    only: { type: 'boolean' },
    port: { type: 'integer', description: 'the onions\' virtual port' },
    managed: { type: 'boolean', description: 'tor was started by this daemon (else an existing tor at --tor-control)' },
    connected: { type: 'boolean' },
    bootstrapped: { type: 'boolean' },
    progress: { type: 'integer' },
    summary: { type: 'string' },
    onions: {
      type: 'array',
      items: { type: 'object', properties: { address: { type: 'string' }, kind: { type: 'string', enum: ['node', 'introduction'] } } },
    },
    restarts: { type: 'integer' },
    lastError: { type: ['string', 'null'] },
    peers: {
      type: 'array',
      items: { type: 'object', properties: { node: { type: 'string' }, via: { type: 'string', enum: ['tor', 'direct', 'inbound'] } } },
    },
  },
} as const;

export interface TorRouteOptions {
  /** The running node's Tor status, or null when Tor is off (or the node is not running). */
  readonly status: () => NodeTorStatus | null;
}

/** The `/node/tor` route group. */
export async function torRoutes(app: FastifyInstance, opts: TorRouteOptions): Promise<void> {
  app.get('/', { schema: { summary: 'Tor: bootstrap, published onions, how peers were reached', response: { 200: torStatusSchema } } }, async () => {
    return torStatusReport(opts.status());
  });
}

/** The report of a node's Tor status (null: Tor off or no running node). */
export function torStatusReport(s: NodeTorStatus | null): TorStatusReport {
  return s === null ? { enabled: false } : { enabled: true, ...s };
}
