/**
 * Dead-drop API routes (behind the bearer token):
 * - `GET /invite`: the wallet's invite URI (optional label and hints);
 * - `POST /drops/send`: send an introduction from the wallet, answers {txid, vsize, fee, ...}; with
 *   Tor on it announces the introduction's onion unless `onion: false`, and Tor-only refuses clear-net endpoints;
 *   without `endpoints` (and no onion) it announces the node's mixnet provider (`mixnet:<id>`), as
 *   `deaddrop drop send` does, and never one of the node's own addresses;
 * - `GET /drops`: the drops found for the wallet;
 * - `GET /drops/sent`: the introductions this wallet sent (pairwise key, txid, expiry).
 * Amounts are decimal strings of satoshis. The public candidate index is a separate route group
 * (src/deaddrop/watch/index-routes.ts) registered next to this one.
 */
import type { FastifyInstance } from 'fastify';
import { DeaddropError } from '../util/errors.js';
import type { DropRecord } from './watch/drop-store.js';
import type { IntroductionLedger } from './introductions.js';
import { dropToJson } from './datadir-stores.js';
import { introductionEndpoints, onionPortFor, type TorSendState } from './tor-send.js';
import { parseLifetime, sendIntroduction, type IntroducerWallet, type IntroductionIssuer, type InviteInfo } from './publish.js';

export interface DropRouteOptions {
  /** The unlocked wallet, or undefined (send and invite then answer NOT_INITIALIZED). */
  readonly wallet: () => IntroducerWallet | undefined;
  /** The wallet's invite with the given label and hints. */
  readonly invite: (opts: { label: string | null; hints: readonly string[] }) => Promise<InviteInfo>;
  readonly ledger: () => IntroductionLedger;
  /** Issues each introduction's pairwise key and token (the datadir's peer node). */
  readonly issuer: () => IntroductionIssuer;
  readonly drops: () => DropRecord[];
  readonly defaultFeeRate: () => Promise<number>;
  /** The daemon's Tor setting at call time (default: off). */
  readonly tor?: () => TorSendState;
  /** The mixnet hint (`mixnet:<provider id>`) of the node's home provider, or null (default: none). */
  readonly mixnetHint?: () => string | null;
}

const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const txid = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const nullableString = { type: ['string', 'null'] } as const;
const stringList = { type: 'array', items: { type: 'string' } } as const;

const inviteSchema = {
  type: 'object',
  required: ['uri', 'address', 'label', 'birthday', 'hints'],
  properties: { uri: { type: 'string' }, address: { type: 'string' }, label: nullableString, birthday: nullableInt, hints: stringList },
} as const;

const dropSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, status: { type: 'string', enum: ['pending', 'confirmed', 'reorged', 'evicted'] }, txid, vout: { type: 'integer' },
    height: nullableInt, blockHash: nullableString, endpoints: stringList, message: { type: 'string' }, nodeKey: { type: 'string' },
    token: { type: 'string' }, expiresAt: nullableInt, firstSeen: { type: 'integer' }, updated: { type: 'integer' },
  },
} as const;

const sentSchema = {
  type: 'object',
  required: ['txid', 'vsize', 'fee'],
  properties: {
    txid, vsize: { type: 'integer' }, fee: { type: 'string', pattern: '^[0-9]+$' }, opReturnVout: { type: 'integer' },
    notifyVout: { type: 'integer' }, recipient: { type: 'string' }, introduction: { type: 'integer' }, nodeKey: { type: 'string' },
    expiresAt: nullableInt, endpoints: stringList,
  },
} as const;

const introductionSchema = {
  type: 'object',
  properties: {
    number: { type: 'integer' }, nodeKey: { type: 'string' }, expiresAt: nullableInt, recipient: { type: 'string' },
    label: nullableString, endpoints: stringList, status: { type: 'string' }, txid: nullableString, vout: nullableInt,
    createdAt: { type: 'integer' }, sentAt: nullableInt,
  },
} as const;

function noWallet(): DeaddropError {
  return new DeaddropError('NOT_INITIALIZED', 'no unlocked wallet: run `deaddrop init`, then start the daemon with DEADDROP_PASSPHRASE set');
}

/** The dead-drop route group (register with prefix ''). */
export async function dropRoutes(app: FastifyInstance, opts: DropRouteOptions): Promise<void> {
  app.get('/invite', {
    schema: {
      summary: 'The wallet\'s deaddrop: invite (BIP352 silent-payment address, birthday, optional label and hints)',
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { label: { type: 'string', maxLength: 256 }, hint: { anyOf: [{ type: 'string', maxLength: 300 }, { type: 'array', maxItems: 4, items: { type: 'string', maxLength: 300 } }] } },
      },
      response: { 200: inviteSchema, 400: error, 409: error },
    },
  }, async (req) => {
    const q = req.query as { label?: string; hint?: string | string[] };
    if (!opts.wallet()) throw noWallet();
    const hints = q.hint === undefined ? [] : Array.isArray(q.hint) ? q.hint : [q.hint];
    return opts.invite({ label: q.label ?? null, hints });
  });

  app.post('/drops/send', {
    schema: {
      summary: 'Send an introduction (dead drop) to an invite or silent-payment address, funded from the wallet',
      body: {
        type: 'object', required: ['recipient'], additionalProperties: false,
        properties: {
          recipient: { type: 'string', minLength: 1, maxLength: 2048 },
          endpoints: {
            type: 'array', maxItems: 15, items: { type: 'string', minLength: 1, maxLength: 300 },
            description: 'where the recipient reaches your node; default (absent or empty): mixnet:<your provider>, no IP address',
          },
          message: { type: 'string', maxLength: 1024 },
          notifyOutput: { type: 'boolean' },
          feeRate: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
          onionPort: { type: 'integer', minimum: 1, maximum: 65535 },
          onion: { type: 'boolean', description: 'announce the onion of the introduction\'s pairwise key; default: when the daemon runs Tor' },
          expires: { type: 'string', maxLength: 16, description: 'token lifetime: 30d, 12h, 90m or never (default 30d)' },
        },
      },
      response: { 200: sentSchema, 400: error, 409: error, 422: error },
    },
  }, async (req) => {
    const b = req.body as { recipient: string; endpoints?: string[]; message?: string; notifyOutput?: boolean; feeRate?: number; onionPort?: number; onion?: boolean; expires?: string };
    const explicit = b.endpoints ?? [];
    // Tor-only refuses a clear-net endpoint before anything else, wallet or not.
    const onionPort = onionPortFor(
      { endpoints: explicit, ...(b.onion !== undefined ? { onion: b.onion } : {}), ...(b.onionPort !== undefined ? { onionPort: b.onionPort } : {}) },
      opts.tor?.() ?? { enabled: false },
    );
    // Same default as the CLI: the mixnet hint, never an IP address the user did not give.
    const endpoints = introductionEndpoints(explicit, onionPort, explicit.length === 0 && onionPort === undefined ? (opts.mixnetHint?.() ?? null) : null);
    const wallet = opts.wallet();
    if (!wallet) throw noWallet();
    const lifetimeSeconds = b.expires === undefined ? undefined : parseLifetime(b.expires);
    const r = await sendIntroduction(wallet, { ledger: opts.ledger(), issue: opts.issuer() }, {
      recipient: b.recipient, endpoints, feeRate: b.feeRate ?? (await opts.defaultFeeRate()),
      ...(b.message !== undefined ? { message: b.message } : {}),
      ...(onionPort !== undefined ? { onionPort } : {}),
      ...(b.notifyOutput !== undefined ? { notifyOutput: b.notifyOutput } : {}),
      ...(lifetimeSeconds !== undefined ? { lifetimeSeconds } : {}),
    });
    return { ...r, fee: r.fee.toString() };
  });

  app.get('/drops', {
    schema: { summary: 'Dead drops found for the wallet', response: { 200: { type: 'object', properties: { drops: { type: 'array', items: dropSchema } } } } },
  }, async () => ({ drops: opts.drops().map(dropToJson) }));

  app.get('/drops/sent', {
    schema: { summary: 'Introductions this wallet sent', response: { 200: { type: 'object', properties: { introductions: { type: 'array', items: introductionSchema } } } } },
  }, async () => ({ introductions: opts.ledger().list() }));
}
