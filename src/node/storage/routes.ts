/**
 * Storage API routes (behind the bearer token), registered under `/storage` by the node feature:
 *
 * - `POST /storage/put`: the file itself as an `application/octet-stream` body, streamed to a 0600
 *   spool file and put from it in bounded memory (no size limit on the peers backend); query
 *   `name`, `keep` (default 1), `shares` (`k/happy/n`), `op` (a client-chosen id its progress
 *   events carry). Answers the read capability (and, peers backend, the servers holding shares).
 * - `POST /storage/get` `{cap, op?, servers?}`: the verified plaintext as `application/octet-stream`,
 *   read on the backend the capability names (./cap-route.ts: a Tahoe file needs `--storage tahoe:`);
 *   `servers` (`[{id, url, provider?}]`, at most 16) are asked besides the verified servers.
 *   The capability travels in the body, never in a URL.
 * - `POST /storage/check` and `POST /storage/repair` `{cap, op?}`: read or verify capability.
 * - `GET /storage/files`: kept files (`store ls`); `POST /storage/files` `{cap, name?}` keeps one
 *   put elsewhere; `POST /storage/files/forget` `{storageIndex}` stops keeping one.
 * - `GET /storage/server`: quota, used, shares, leases, the announcement and the verified servers.
 *
 * Check results (and each kept file, after its first check since the daemon started) carry
 * `servers`: per storage server, the share numbers that verified, failed or were just repaired.
 *
 * Progress reaches the `/events` websocket as `storage.progress` `{op, phase, done, total}`, and
 * results as `storage.put` / `storage.get` / `storage.check` / `storage.failed`.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { DeaddropError } from '../../util/errors.js';
import { fromHex, toHex } from '../../util/bytes.js';
import { parseShares } from './options.js';
import type { ShareParams } from './peer-backend.js';
import type { NodeStorage } from './service.js';

export interface StorageRouteOptions {
  /** The running storage service, or undefined when the node is not running. */
  readonly service: () => NodeStorage | undefined;
}

/**
 * Largest upload body of routes that buffer a file whole (group files, ../groups/routes.ts).
 * The storage put route itself streams its body and has no such limit.
 */
export const MAX_UPLOAD_BYTES = 128 * 1024 * 1024;

/** The error body every storage route answers with (api/errors.ts writes it). */
export const errorSchema = {
  type: 'object', required: ['error', 'message'], properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;
const errors = { 400: errorSchema, 404: errorSchema, 409: errorSchema, 413: errorSchema, 422: errorSchema, 501: errorSchema, 503: errorSchema } as const;

const cap = { type: 'string', minLength: 8, maxLength: 4096, description: 'a read (dd-chk:r:…, dd-tahoe:…) or verify (dd-chk:v:…, dd-tahoe-v:…) capability' } as const;
const op = { type: 'string', pattern: '^[0-9a-f]{16,64}$', description: 'an id of the client\'s choosing that progress events carry' } as const;
const storageIndex = { type: 'string', pattern: '^[0-9a-z]{16,64}$' } as const;
const nullable = (t: string) => ({ type: [t, 'null'] }) as const;

/** A storage server: its Ed25519 key (hex) and endpoint, and the mixnet provider of its mailbox when it announced one. */
const serverHint = {
  type: 'object', required: ['id', 'url'], additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{64}$' }, url: { type: 'string', minLength: 1, maxLength: 300, pattern: '^wss?://' },
    provider: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'reads reach the server through this mixnet provider (docs/protocol/storage.md section 10)' },
  },
} as const;

const counters = { type: 'object', additionalProperties: { anyOf: [{ type: 'integer' }, { type: 'object', additionalProperties: { type: 'integer' } }] } } as const;

const putResult = {
  type: 'object', required: ['op', 'readCap', 'storageIndex', 'size', 'backend', 'kept'],
  properties: {
    op: { type: 'string' }, readCap: { type: 'string' }, verifyCap: nullable('string'), storageIndex: { type: 'string' }, size: { type: 'integer' }, backend: { type: 'string' }, kept: { type: 'boolean' },
    holders: { type: 'array', description: 'peers backend: the servers that took a share (their key, hex, and endpoint)', items: serverHint },
  },
} as const;

const shareNumbers = { type: 'array', items: { type: 'integer' } } as const;
/** Share health per storage server (peers backend): share numbers that verify, fail, or were just repaired onto it. */
const serverHealth = {
  type: 'array',
  items: {
    type: 'object', required: ['id', 'url', 'reachable', 'valid', 'bad', 'repaired'],
    properties: { id: { type: 'string' }, url: { type: 'string' }, reachable: { type: 'boolean' }, valid: shareNumbers, bad: shareNumbers, repaired: shareNumbers },
  },
} as const;

const checkResult = {
  type: 'object', required: ['storageIndex', 'healthy', 'sharesFound', 'sharesNeeded', 'sharesTotal', 'repaired', 'problems'],
  properties: {
    storageIndex: { type: 'string' }, healthy: { type: 'boolean' }, sharesFound: { type: 'integer' }, sharesNeeded: { type: 'integer' }, sharesTotal: { type: 'integer' },
    repaired: { type: 'integer' }, problems: { type: 'array', items: { type: 'string' } }, servers: serverHealth,
  },
} as const;

const keptFile = {
  type: 'object',
  properties: {
    storageIndex: { type: 'string' }, backend: { type: 'string' }, name: nullable('string'), size: { type: 'integer' }, capKind: { type: 'string', enum: ['read', 'verify'] },
    cap: nullable('string'), verifyCap: nullable('string'), addedAt: { type: 'integer' }, checkedAt: nullable('integer'), healthy: nullable('boolean'),
    sharesFound: nullable('integer'), repairedTotal: { type: 'integer' }, lastProblem: nullable('string'),
    servers: { ...serverHealth, type: ['array', 'null'], description: 'share health per server at the last check since the daemon started (null before one)' },
  },
} as const;

const serverStatus = {
  type: 'object',
  properties: {
    serving: { type: 'boolean' }, url: nullable('string'), quotaBytes: nullable('integer'), usedBytes: nullable('integer'), shares: nullable('integer'),
    storageIndexes: nullable('integer'), activeLeases: nullable('integer'), nextLeaseExpiry: nullable('integer'), announcedUntil: nullable('integer'),
    backend: { type: 'string' }, refusedAnnouncements: { type: 'integer' }, keptFiles: { type: 'integer' },
    knownServers: {
      type: 'array',
      items: { type: 'object', properties: { id: { type: 'string' }, endpoint: { type: 'string' }, quota: { type: 'integer' }, free: { type: 'integer' }, until: { type: 'integer' }, self: { type: 'boolean' }, provider: nullable('string') } },
    },
    defaultShares: { type: 'object', properties: { k: { type: 'integer' }, happy: { type: 'integer' }, n: { type: 'integer' } } },
    reads: { type: 'string', enum: ['auto', 'mixnet', 'direct'], description: 'how reads reach storage servers (--storage-reads)' },
    mixnet: {
      type: 'object', description: 'reads (and, with mixnet, puts) through mixnet providers: as a client (requests, replies, retries, failed, dropped) and as a server (requests, answered, replyPackets, putBytes, dropped)',
      properties: { reads: { anyOf: [counters, { type: 'null' }] }, served: { anyOf: [counters, { type: 'null' }] } },
    },
  },
} as const;

const capBody = { type: 'object', required: ['cap'], additionalProperties: false, properties: { cap, op } } as const;
/** `get` also takes server hints that came with the cap (asked besides the verified servers). */
const getBody = { type: 'object', required: ['cap'], additionalProperties: false, properties: { cap, op, servers: { type: 'array', maxItems: 16, items: serverHint } } } as const;

function notRunning(): DeaddropError {
  return new DeaddropError('NOT_INITIALIZED', 'storage needs the peer node, which needs an unlocked wallet (start the daemon with DEADDROP_PASSPHRASE set)');
}

/** The storage route group (register with prefix '/storage'). */
export async function storageRoutes(app: FastifyInstance, opts: StorageRouteOptions): Promise<void> {
  const need = (): NodeStorage => {
    const s = opts.service();
    if (!s) throw notRunning();
    return s;
  };

  // The bytes themselves: the API is loopback-only, so a client that is not the user's shell can store too.
  app.register(async (upload) => {
    // Not buffered: the body streams to a 0600 spool file (NodeStorage.putStream), then is put from it in bounded memory.
    upload.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    upload.post('/put', {
      schema: {
        summary: 'Encrypt, erasure-code and place a file (application/octet-stream body, streamed; any size on the peers backend, 64 MiB on Tahoe-LAFS); answers its read capability',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 255 }, keep: { type: 'string', enum: ['0', '1', 'true', 'false'] },
            shares: { type: 'string', pattern: '^[0-9]{1,3}/[0-9]{1,3}/[0-9]{1,3}$' }, op,
          },
        },
        response: { 200: putResult, ...errors },
      },
    }, async (req) => {
      const body = req.body;
      if (!(body instanceof Readable)) throw DeaddropError.badInput('send the file as an application/octet-stream body');
      const q = req.query as { name?: string; keep?: string; shares?: string; op?: string };
      const s = need();
      const shares: ShareParams | undefined = q.shares ? parseShares(q.shares, 'shares') : undefined;
      const r = await s.putStream(body, {
        ...(q.name ? { name: q.name } : {}), keep: q.keep === undefined || q.keep === '1' || q.keep === 'true', ...(shares ? { shares } : {}), ...(q.op ? { op: q.op } : {}),
      });
      return { ...r, holders: r.holders.map((h) => ({ id: toHex(h.id), url: h.url, ...(h.provider ? { provider: toHex(h.provider) } : {}) })) };
    });
  });

  app.post('/get', {
    schema: {
      summary: 'Fetch, verify and decrypt a file by its read capability (application/octet-stream answer)',
      body: getBody, response: { 200: { type: 'string', format: 'binary' }, ...errors },
    },
  }, async (req, reply) => {
    const b = req.body as { cap: string; op?: string; servers?: { id: string; url: string; provider?: string }[] };
    const servers = b.servers?.map((h) => ({ id: fromHex(h.id), url: h.url, ...(h.provider ? { provider: fromHex(h.provider) } : {}) }));
    // Streamed: bounded memory on the peers backend; an error past the first byte cuts the answer short.
    const { size, stream } = await need().getStream(b.cap, { ...(b.op ? { op: b.op } : {}), ...(servers ? { servers } : {}) });
    return reply.type('application/octet-stream').header('content-length', size).send(stream);
  });

  app.post('/check', {
    schema: { summary: 'Check which shares of a file exist and verify (read or verify capability); repairs nothing', body: capBody, response: { 200: checkResult, ...errors } },
  }, async (req) => {
    const b = req.body as { cap: string; op?: string };
    return need().check(b.cap, b.op ? { op: b.op } : {});
  });

  app.post('/repair', {
    schema: { summary: 'Check a file and regenerate missing or corrupt shares onto fresh servers (a verify capability is enough)', body: capBody, response: { 200: checkResult, ...errors } },
  }, async (req) => {
    const b = req.body as { cap: string; op?: string };
    return need().check(b.cap, { repair: true, ...(b.op ? { op: b.op } : {}) });
  });

  app.get('/files', {
    schema: { summary: 'Files this node keeps alive (put or kept through it), with their capabilities', response: { 200: { type: 'object', properties: { files: { type: 'array', items: keptFile } } }, ...errors } },
  }, async () => ({ files: need().list() }));

  app.post('/files', {
    schema: {
      summary: 'Keep a file put elsewhere alive: renew its leases, check and repair it on schedule',
      body: { type: 'object', required: ['cap'], additionalProperties: false, properties: { cap, name: { type: 'string', minLength: 1, maxLength: 255 } } },
      response: { 200: { type: 'object', properties: { file: keptFile } }, ...errors },
    },
  }, async (req) => {
    const b = req.body as { cap: string; name?: string };
    return { file: need().keep(b.cap, b.name) };
  });

  app.post('/files/forget', {
    schema: {
      summary: 'Stop keeping a file (its shares stay until their leases expire)',
      body: { type: 'object', required: ['storageIndex'], additionalProperties: false, properties: { storageIndex } },
      response: { 200: { type: 'object', properties: { forgotten: { type: 'boolean' } } }, ...errors },
    },
  }, async (req) => {
    const forgotten = need().forget((req.body as { storageIndex: string }).storageIndex);
    if (!forgotten) throw DeaddropError.notFound('this node keeps no file with that storage index');
    return { forgotten };
  });

  app.get('/server', {
    schema: { summary: 'This node\'s storage server (quota, used, shares, leases, announcement) and the storage servers it verified', response: { 200: serverStatus, ...errors } },
  }, async () => {
    const s = need();
    return { ...s.status(), defaultShares: s.shares };
  });
}
