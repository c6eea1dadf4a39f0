/**
 * Peer-node API routes (`/node/*`, behind the bearer token). Keys, hashes and bodies travel as
 * lower-case hex; entries as `EntryJson` (./log/json.ts). Node events reach the `/events`
 * websocket through the EventBus (type prefix `node.`).
 *
 * - `GET  /node`: id, endpoints, connected contacts, counts
 * - `GET  /node/contacts`: contacts with their endpoints, connection state and silent-payment address
 * - `GET  /node/feeds`: every feed stored (author, length, head, forked)
 * - `GET  /node/log/:feed?from&limit`: entries of a feed (`self` = ours)
 * - `POST /node/log`: append to our feed {type, app?, json? | text? | hex?, refs?, attach?: [{cap, name?}]}
 * - `GET  /node/whereabouts`: our signed record and bundle, and where each contact is
 * - `POST /node/follow`: also replicate a feed that is not a contact's
 * - `GET  /node/introductions`: introductions found on chain and what became of them
 */
import type { FastifyInstance } from 'fastify';
import { DeaddropError } from '../util/errors.js';
import type { Contact } from './contacts.js';
import type { EntryHeader, LogEntry } from './log/codec.js';
import { entryToJson } from './log/json.js';
import { ATTACH_KEY, formatAttachHeader, MAX_ATTACHMENT_NAME, MAX_ATTACHMENTS } from './log/attachments.js';
import type { PeerNode } from './node.js';
import { fromHex, toHex } from '../util/bytes.js';

/** What the routes need from the running node feature. */
export interface NodeService {
  readonly node: PeerNode;
  contactInfo(c: Contact, connected: Set<string>): Record<string, unknown>;
  introductions(): Record<string, unknown>[];
}

export interface NodeRouteOptions {
  /** The running node, or undefined without an unlocked wallet (routes answer NOT_INITIALIZED). */
  readonly service: () => NodeService | undefined;
}

/** Largest page of `GET /node/log/:feed`. */
export const MAX_LOG_PAGE = 1000;

const hex32 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const name = { type: 'string', pattern: '^[A-Za-z0-9._:/-]{1,64}$' } as const;
const stringList = { type: 'array', items: { type: 'string' } } as const;
const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const nullableString = { type: ['string', 'null'] } as const;

const feedSchema = {
  type: 'object',
  properties: { author: hex32, length: { type: 'integer' }, head: nullableString, forked: { type: 'boolean' } },
} as const;

/** EntryJson (./log/json.ts); header values and the parsed body are free-form. */
const entrySchema = {
  type: 'object',
  required: ['author', 'seq', 'hash', 'header', 'body'],
  properties: {
    author: hex32, seq: { type: 'integer' }, prev: hex32, timestamp: { type: 'integer' }, hash: hex32,
    header: { type: 'object', additionalProperties: true }, text: { type: 'string' }, json: {}, body: { type: 'string' },
    attachments: {
      type: 'array',
      items: { type: 'object', properties: { cap: { type: 'string' }, name: { type: ['string', 'null'] }, size: { type: ['integer', 'null'] } } },
    },
  },
} as const;

const contactSchema = {
  type: 'object',
  properties: {
    node: hex32, pairwiseKey: nullableString, label: nullableString, endpoints: stringList, whereaboutsSeq: { type: 'integer' },
    addedAt: { type: 'integer' }, lastSeen: nullableInt, connected: { type: 'boolean' }, spAddress: nullableString, beaconTxid: nullableString,
  },
} as const;

const introductionSchema = {
  type: 'object',
  properties: {
    nodeKey: hex32, dropId: { type: 'string' }, status: { type: 'string', enum: ['pending', 'done', 'rejected', 'expired'] },
    attempts: { type: 'integer' }, lastError: nullableString, contact: nullableString,
  },
} as const;

function noNode(): DeaddropError {
  return new DeaddropError('NOT_INITIALIZED', 'the peer node is not running: it needs an unlocked wallet (start the daemon with DEADDROP_PASSPHRASE set)');
}

function feedJson(f: { author: Uint8Array; length: number; head: Uint8Array | null; forked: boolean }): Record<string, unknown> {
  return { author: toHex(f.author), length: f.length, head: f.head ? toHex(f.head) : null, forked: f.forked };
}

/** Body of `POST /node/log`. */
interface AppendBody {
  type: string;
  app?: string;
  json?: unknown;
  text?: string;
  hex?: string;
  refs?: string[];
  /** Files already in storage, by read capability (header `attach`, ./log/attachments.ts). */
  attach?: { cap: string; name?: string }[];
}

function draftBody(b: AppendBody): Uint8Array {
  const given = [b.json !== undefined, b.text !== undefined, b.hex !== undefined].filter(Boolean).length;
  if (given > 1) throw DeaddropError.badInput('give at most one of json, text and hex');
  if (b.json !== undefined) return new TextEncoder().encode(JSON.stringify(b.json));
  if (b.text !== undefined) return new TextEncoder().encode(b.text);
  if (b.hex !== undefined) return fromHex(b.hex);
  return new Uint8Array(0);
}

function appendEntry(node: PeerNode, b: AppendBody): LogEntry {
  const header: EntryHeader = {
    type: b.type, ...(b.app !== undefined ? { app: b.app } : {}), ...(b.refs !== undefined ? { refs: b.refs.map(fromHex) } : {}),
    ...(b.attach !== undefined ? { [ATTACH_KEY]: formatAttachHeader(b.attach) } : {}),
  };
  try {
    return node.append({ header, body: draftBody(b) });
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw DeaddropError.badInput(err.message);
    throw err;
  }
}

function feedParam(node: PeerNode, feed: string): Uint8Array {
  if (feed === 'self') return node.id;
  if (!/^[0-9a-f]{64}$/.test(feed)) throw DeaddropError.badInput('feed must be 64 hex characters or "self"');
  return fromHex(feed);
}

/** The node route group (register with prefix '/node'). */
export async function nodeRoutes(app: FastifyInstance, opts: NodeRouteOptions): Promise<void> {
  const need = (): NodeService => {
    const s = opts.service();
    if (!s) throw noNode();
    return s;
  };

  app.get('/', {
    schema: {
      summary: 'This node: id, endpoints, connected contacts',
      response: {
        200: {
          type: 'object',
          properties: { id: hex32, endpoints: stringList, connected: { type: 'array', items: hex32 }, contacts: { type: 'integer' }, feeds: { type: 'integer' } },
        },
        409: error,
      },
    },
  }, async () => {
    const { node } = need();
    return { id: toHex(node.id), endpoints: node.endpoints, connected: node.connectedPeers().map(toHex), contacts: node.contacts().length, feeds: node.store.feeds().length };
  });

  app.get('/contacts', {
    schema: { summary: 'Contacts', response: { 200: { type: 'object', properties: { contacts: { type: 'array', items: contactSchema } } }, 409: error } },
  }, async () => {
    const s = need();
    const connected = new Set(s.node.connectedPeers().map(toHex));
    return { contacts: s.node.contacts().map((c) => s.contactInfo(c, connected)) };
  });

  app.get('/feeds', {
    schema: { summary: 'Feeds stored by this node', response: { 200: { type: 'object', properties: { feeds: { type: 'array', items: feedSchema } } }, 409: error } },
  }, async () => ({ feeds: need().node.store.feeds().map(feedJson) }));

  app.get('/log/:feed', {
    schema: {
      summary: 'Entries of a feed (`self` for ours), oldest first',
      params: { type: 'object', required: ['feed'], properties: { feed: { type: 'string', maxLength: 64 } } },
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { from: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' }, limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' } },
      },
      response: { 200: { type: 'object', properties: { feed: { anyOf: [feedSchema, { type: 'null' }] }, entries: { type: 'array', items: entrySchema } } }, 400: error, 409: error },
    },
  }, async (req) => {
    const { node } = need();
    const q = req.query as { from?: string; limit?: string };
    const author = feedParam(node, (req.params as { feed: string }).feed);
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (limit > MAX_LOG_PAGE) throw DeaddropError.badInput(`limit must be at most ${MAX_LOG_PAGE}`);
    const info = node.store.feed(author);
    if (!info) return { feed: null, entries: [] };
    const from = q.from === undefined ? Math.max(1, info.length - limit + 1) : Number(q.from);
    return { feed: feedJson(info), entries: node.store.range(author, from, Math.min(info.length, from + limit - 1)).map(entryToJson) };
  });

  app.post('/log', {
    schema: {
      summary: 'Append an entry to this node\'s feed; it reaches connected contacts at once',
      body: {
        type: 'object', required: ['type'], additionalProperties: false,
        properties: {
          type: name, app: name, json: {}, text: { type: 'string', maxLength: 512 * 1024 },
          hex: { type: 'string', maxLength: 1024 * 1024, pattern: '^([0-9a-f]{2})*$' }, refs: { type: 'array', maxItems: 64, items: hex32 },
          attach: {
            type: 'array', minItems: 1, maxItems: MAX_ATTACHMENTS,
            items: {
              type: 'object', required: ['cap'], additionalProperties: false,
              properties: { cap: { type: 'string', maxLength: 512 }, name: { type: 'string', minLength: 1, maxLength: MAX_ATTACHMENT_NAME } },
            },
          },
        },
      },
      response: { 200: { type: 'object', properties: { entry: entrySchema } }, 400: error, 409: error },
    },
  }, async (req) => ({ entry: entryToJson(appendEntry(need().node, req.body as AppendBody)) }));

  app.get('/whereabouts', {
    schema: {
      summary: 'Our signed whereabouts record and bundle, and the last known endpoints of each contact',
      response: {
        200: {
          type: 'object',
          properties: {
            record: { type: 'object', properties: { node: hex32, seq: { type: 'integer' }, expiresAt: { type: 'integer' }, endpoints: stringList } },
            bundle: { type: 'string' },
            contacts: {
              type: 'array',
              items: { type: 'object', properties: { node: hex32, endpoints: stringList, whereaboutsSeq: { type: 'integer' }, connected: { type: 'boolean' } } },
            },
          },
        },
        409: error,
      },
    },
  }, async () => {
    const { node } = need();
    const { record, bundle } = node.whereabouts();
    const connected = new Set(node.connectedPeers().map(toHex));
    return {
      record: { node: toHex(record.node), seq: record.seq, expiresAt: record.expiresAt, endpoints: record.endpoints },
      bundle: toHex(bundle),
      contacts: node.contacts().map((c) => ({ node: toHex(c.node), endpoints: c.endpoints, whereaboutsSeq: c.whereaboutsSeq, connected: connected.has(toHex(c.node)) })),
    };
  });

  app.post('/follow', {
    schema: {
      summary: 'Also replicate a feed that is not a contact\'s (e.g. a contact\'s contact)',
      body: { type: 'object', required: ['feed'], additionalProperties: false, properties: { feed: hex32 } },
      response: { 200: { type: 'object', properties: { following: hex32 } }, 400: error, 409: error },
    },
  }, async (req) => {
    const feed = fromHex((req.body as { feed: string }).feed);
    need().node.follow(feed);
    return { following: toHex(feed) };
  });

  app.get('/introductions', {
    schema: {
      summary: 'Introductions found on chain and the outcome of dialing them',
      response: { 200: { type: 'object', properties: { introductions: { type: 'array', items: introductionSchema } } }, 409: error },
    },
  }, async () => ({ introductions: need().introductions() }));
}
