/**
 * Fastify routes of the public candidate index:
 * - `GET /index/candidates?from=H1&to=H2`: candidates with tweak data in a height range
 *   (at most MAX_INDEX_RANGE blocks; the response says which range it covers).
 * - `GET /index/info`: how far the index reaches.
 *
 * Encapsulated plugin (no fastify-plugin): register it with `{ index: IndexService }`. The API
 * runs with `coerceTypes: false`, so the query numbers are validated as digit strings.
 * NOTE: the index serves only on-chain data, to light clients that hold no token: both routes
 * are public (`config: PUBLIC_ROUTE`), also served by the `--public-listen` listener.
 */
import type { FastifyInstance } from 'fastify';
import { PUBLIC_ROUTE } from '../../feature/routes.js';
import { MAX_INDEX_RANGE, type IndexService } from './index-service.js';

const heightParam = { type: 'string', pattern: '^[0-9]{1,10}$' } as const;
const nullableHeight = { anyOf: [{ type: 'integer' }, { type: 'null' }] } as const;
const hex = (min: number, max: number) => ({ type: 'string', pattern: `^[0-9a-f]{${min},${max}}$` }) as const;

const candidateSchema = {
  type: 'object',
  required: ['height', 'blockHash', 'txid', 'vout', 'tweak', 'data'],
  additionalProperties: false,
  properties: {
    height: { type: 'integer' },
    blockHash: hex(64, 64),
    txid: hex(64, 64),
    vout: { type: 'integer' },
    tweak: hex(66, 66),
    data: hex(0, 160),
  },
} as const;

const rangeSchema = {
  type: 'object',
  required: ['from', 'to', 'indexedFrom', 'indexedTip', 'candidates'],
  additionalProperties: false,
  properties: {
    from: { type: 'integer' },
    to: { type: 'integer' },
    indexedFrom: nullableHeight,
    indexedTip: nullableHeight,
    candidates: { type: 'array', items: candidateSchema },
  },
} as const;

const infoSchema = {
  type: 'object',
  required: ['indexedFrom', 'indexedTip', 'maxRange'],
  additionalProperties: false,
  properties: { indexedFrom: nullableHeight, indexedTip: nullableHeight, maxRange: { type: 'integer' } },
} as const;

export interface IndexRoutesOptions {
  readonly index: IndexService;
}

/** The public index route group. */
export async function indexRoutes(app: FastifyInstance, opts: IndexRoutesOptions): Promise<void> {
  app.get(
    '/index/candidates',
    {
      config: PUBLIC_ROUTE,
      schema: {
        summary: `Dead-drop candidates with BIP352 tweak data by height range (at most ${MAX_INDEX_RANGE} blocks)`,
        querystring: {
          type: 'object',
          required: ['from', 'to'],
          additionalProperties: false,
          properties: { from: heightParam, to: heightParam },
        },
        response: { 200: rangeSchema },
      },
    },
    async (request) => {
      const q = request.query as { from: string; to: string };
      return opts.index.candidates(Number(q.from), Number(q.to));
    },
  );
  app.get('/index/info', { config: PUBLIC_ROUTE, schema: { summary: 'Heights the candidate index covers', response: { 200: infoSchema } } }, async () => ({
    ...opts.index.bounds(),
    maxRange: MAX_INDEX_RANGE,
  }));
}
