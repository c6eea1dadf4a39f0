import type { FastifyInstance } from 'fastify';
import type { StatusService } from '../services.js';
import { torStatusSchema } from '../../node/tor/routes.js';

const statusSchema = {
  type: 'object',
  required: ['version', 'network', 'backend', 'tip', 'synced', 'uptimeSeconds', 'secp'],
  properties: {
    version: { type: 'string' },
    network: { type: 'string' },
    backend: {
      type: 'object',
      properties: { kind: { type: 'string' }, capabilities: { type: 'object', additionalProperties: true } },
    },
    tip: {
      anyOf: [
        { type: 'null' },
        { type: 'object', properties: { height: { type: 'integer' }, hash: { type: 'string' } } },
      ],
    },
    synced: { type: 'boolean' },
    uptimeSeconds: { type: 'number' },
    secp: { type: 'string', enum: ['native', 'tiny-secp256k1', 'noble'] },
    tor: torStatusSchema,
  },
} as const;

export async function statusRoutes(app: FastifyInstance, opts: { status: StatusService }): Promise<void> {
  app.get('/status', { schema: { summary: 'Daemon, backend and chain status', response: { 200: statusSchema } } }, async () =>
    opts.status.status(),
  );
}
