/**
 * `GET /node/tor`: whether the node uses Tor, whether tor is bootstrapped, which onions are
 * published, and how each connected peer was reached. `deaddrop node status` prints it.
 */
import type { FastifyInstance } from 'fastify';
import type { NodeTorStatus } from './node-tor.js';

const torStatusSchema = {
  type: 'object',
  required: ['enabled'],
  properties: {
    enabled: { type: 'boolean' },
    only: { type: 'boolean' },
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
    const s = opts.status();
    return s === null ? { enabled: false } : { enabled: true, ...s };
  });
}
