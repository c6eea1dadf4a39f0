/**
 * Mixnet API routes (behind the bearer token):
 *
 * - `GET  /node/messages`: messages sent and received through the mixnet (kept in memory)
 * - `POST /node/messages`: `{ contact, text }` sends a message to a contact; `{ replyTo, text }`
 *   answers a received message once through its sender's SURB
 * - `GET  /node/mixnet`: this node's roles, its provider link, the verified directory, cover
 *   traffic and the loop loss per route and per hop, and the counters of feed replication over
 *   the mixnet (`relay`, ./feed-relay.ts)
 *
 * A new message also reaches the `/events` websocket as `node.message.received`.
 */
import type { FastifyInstance } from 'fastify';
import { DeaddropError } from '../../util/errors.js';
import { TooFewMixes } from './directory.js';
import { MAX_TEXT_BYTES } from './message.js';
import type { MixMessage, MixnetService } from './service.js';
import type { FeedRelayStats } from './feed-relay.js';
import { fromHex, toHex } from '../../util/bytes.js';

export interface MixnetRouteOptions {
  /** The running service, or undefined when the node is not running. */
  readonly service: () => MixnetService | undefined;
  /** True when `node` is a contact (messages go to contacts only). */
  readonly isContact: (node: Uint8Array) => boolean;
  /** Counters of the feed relay, when one runs. */
  readonly relay?: () => FeedRelayStats | null;
}

const hex32 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const id = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;

/** JSON of one message (MixMessage). */
export const messageSchema = {
  type: 'object',
  required: ['id', 'direction', 'contact', 'text', 'at', 'canReply', 'inReplyTo'],
  properties: {
    id, direction: { type: 'string', enum: ['in', 'out'] }, contact: hex32, text: { type: 'string' }, at: { type: 'integer' },
    canReply: { type: 'boolean' }, inReplyTo: { anyOf: [id, { type: 'null' }] },
  },
} as const;

const counts = {
  sent: { type: 'integer' }, returned: { type: 'integer' }, lost: { type: 'integer' }, lossRate: { type: ['number', 'null'] },
} as const;

/** Cover traffic and loop loss (MixnetService.coverStatus). */
const coverSchema = {
  type: 'object',
  properties: {
    rates: { type: 'object', properties: { loop: { type: 'number' }, drop: { type: 'number' }, mixLoop: { type: 'number' } } },
    sent: { type: 'object', properties: { loop: { type: 'integer' }, drop: { type: 'integer' }, mixLoop: { type: 'integer' }, skipped: { type: 'integer' } } },
    loops: {
      type: 'object',
      properties: {
        ...counts, pending: { type: 'integer' }, medianRttMs: { type: ['number', 'null'] },
        routes: { type: 'array', items: { type: 'object', properties: { hops: { type: 'array', items: hex32 }, ...counts } } },
        hops: { type: 'array', items: { type: 'object', properties: { address: hex32, ...counts } } },
      },
    },
  },
} as const;

const integer = { type: 'integer' } as const;
/** Feed replication over the mixnet (FeedRelay.stats). */
const relaySchema = {
  type: 'object',
  properties: {
    haveSent: integer, haveReceived: integer, packetsSent: integer, entriesSent: integer, entriesStored: integer,
    whereaboutsSent: integer, whereaboutsStored: integer, dropped: { type: 'object', additionalProperties: integer },
  },
} as const;

const statusSchema = {
  type: 'object',
  properties: {
    layer: { type: 'integer' }, provider: { type: 'boolean' }, url: { type: ['string', 'null'] },
    home: { anyOf: [hex32, { type: 'null' }] }, connected: { type: 'boolean' },
    layers: { type: 'array', items: { type: 'integer' } }, providers: { type: 'array', items: hex32 }, refused: { type: 'integer' },
    drops: { type: ['object', 'null'], additionalProperties: { type: 'integer' } }, processed: { type: ['integer', 'null'] },
    coverDiscarded: { type: ['integer', 'null'] },
    cover: { anyOf: [coverSchema, { type: 'null' }] },
    relay: { anyOf: [relaySchema, { type: 'null' }] },
  },
} as const;

function notRunning(): DeaddropError {
  return new DeaddropError('NOT_INITIALIZED', 'the peer node is not running: it needs an unlocked wallet (start the daemon with DEADDROP_PASSPHRASE set)');
}

/** The mixnet route group (register with prefix '/node'). */
export async function mixnetRoutes(app: FastifyInstance, opts: MixnetRouteOptions): Promise<void> {
  const need = (): MixnetService => {
    const s = opts.service();
    if (!s) throw notRunning();
    return s;
  };

  app.get('/messages', {
    schema: { summary: 'Messages sent and received through the mixnet, oldest first', response: { 200: { type: 'object', properties: { messages: { type: 'array', items: messageSchema } } }, 409: error } },
  }, async () => ({ messages: need().messages() }));

  app.post('/messages', {
    schema: {
      summary: 'Send a message to a contact through the mixnet, or answer one received (once, through its SURB)',
      body: {
        type: 'object', required: ['text'], additionalProperties: false,
        properties: { contact: hex32, replyTo: id, text: { type: 'string', minLength: 1, maxLength: MAX_TEXT_BYTES } },
      },
      response: { 200: { type: 'object', properties: { message: messageSchema } }, 400: error, 404: error, 409: error },
    },
  }, async (req) => {
    const b = req.body as { contact?: string; replyTo?: string; text: string };
    const s = need();
    if ((b.contact === undefined) === (b.replyTo === undefined)) throw DeaddropError.badInput('give exactly one of contact and replyTo');
    if (Buffer.byteLength(b.text, 'utf8') > MAX_TEXT_BYTES) throw DeaddropError.badInput(`text is longer than ${MAX_TEXT_BYTES} bytes`);
    let m: MixMessage;
    try {
      if (b.replyTo !== undefined) {
        m = s.reply(b.replyTo, b.text);
      } else {
        const contact = fromHex(b.contact!);
        if (!opts.isContact(contact)) throw DeaddropError.notFound('not a contact');
        m = s.send(contact, b.text);
      }
    } catch (err) {
      if (err instanceof DeaddropError) throw err;
      if (err instanceof TooFewMixes) throw new DeaddropError('CONFLICT', err.message);
      const msg = err instanceof Error ? err.message : String(err);
      if (/no reply block/.test(msg)) throw DeaddropError.notFound(msg);
      throw new DeaddropError('CONFLICT', msg);
    }
    return { message: m };
  });

  app.get('/mixnet', {
    schema: { summary: 'Mixnet roles, provider link and the verified directory', response: { 200: statusSchema, 409: error } },
  }, async () => {
    const s = need();
    const d = s.directory;
    const home = s.home;
    return {
      layer: s.layer, provider: s.provider, url: s.url, home: home ? toHex(home) : null, connected: s.connected,
      layers: [1, 2, 3].map((l) => d.layer(l).length), providers: d.providers().map((p) => toHex(p.address)), refused: d.refused,
      drops: s.mixNode ? { ...s.mixNode.drops } : null, processed: s.mixNode?.processed ?? null,
      coverDiscarded: s.mixNode?.coverDiscarded ?? null, cover: s.coverStatus(), relay: opts.relay?.() ?? null,
    };
  });
}
