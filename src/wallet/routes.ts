/** Wallet routes: `/wallet/*`. Amounts travel as decimal strings of satoshis (no float rounding). */
import type { FastifyInstance } from 'fastify';
import type { Reservation, Wallet } from './wallet.js';
import { addressToScript } from './tx.js';
import { DeaddropError } from '../util/errors.js';
import { toHex } from '../util/bytes.js';

const sats = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;
const txid = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const feeRate = { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 } as const;
const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const sendResult = {
  type: 'object',
  required: ['txid', 'fee', 'vsize'],
  properties: { txid: { type: 'string' }, fee: { type: 'string' }, vsize: { type: 'integer' }, replaces: { type: 'string' } },
} as const;

const reservation = {
  type: 'object',
  required: ['id', 'kind', 'coins', 'createdAt', 'expiresAt'],
  properties: {
    id: txid,
    kind: { type: 'string', enum: ['psbt', 'funded', 'broadcast'] },
    coins: { type: 'array', items: { type: 'object', properties: { txid, vout: { type: 'integer' }, value: sats } } },
    createdAt: { type: 'integer', description: 'Unix ms' },
    expiresAt: { type: ['integer', 'null'], description: 'Unix ms; null for a broadcast being settled with the node' },
  },
} as const;
/** Confirmation targets (blocks) of `GET /wallet/fee-estimates`: btcd estimates up to 25 at most. */
const FEE_TARGETS = [1, 2, 3, 6, 12, 24, 48, 144] as const;
/** Longest reservation a PSBT may ask for: 30 days. */
const MAX_PSBT_EXPIRY_SECONDS = 30 * 86_400;

function reservationToJson(r: Reservation): Record<string, unknown> {
  return {
    id: r.id, kind: r.kind, createdAt: r.createdAt, expiresAt: r.expiresAt,
    coins: r.coins.map((c) => ({ txid: c.txid, vout: c.vout, value: c.value.toString() })),
  };
}

export interface WalletRouteOptions {
  /** The unlocked wallet, or undefined when the daemon runs without one. */
  readonly wallet: () => Wallet | undefined;
  readonly defaultFeeRate: () => Promise<number>;
}

function parseAmount(value: string): bigint {
  const n = BigInt(value);
  if (n <= 0n) throw DeaddropError.badInput('sats must be positive');
  return n;
}

export async function walletRoutes(app: FastifyInstance, opts: WalletRouteOptions): Promise<void> {
  const need = (): Wallet => {
    const w = opts.wallet();
    if (!w) throw new DeaddropError('NOT_INITIALIZED', 'no unlocked wallet: run `deaddrop init`, then start the daemon with DEADDROP_PASSPHRASE set');
    return w;
  };
  const rateOf = async (rate: number | undefined): Promise<number> => rate ?? (await opts.defaultFeeRate());

  app.get('/balance', {
    schema: {
      summary: 'Wallet balance in satoshis',
      response: { 200: { type: 'object', properties: { confirmed: sats, unconfirmed: sats, immature: sats, height: { type: ['integer', 'null'] } } }, 409: error },
    },
  }, async () => {
    const w = need();
    const b = await w.balance();
    return { confirmed: b.confirmed.toString(), unconfirmed: b.unconfirmed.toString(), immature: b.immature.toString(), height: w.height };
  });

  app.post('/address', {
    schema: { summary: 'A new, never used receive address', response: { 200: { type: 'object', properties: { address: { type: 'string' } } }, 409: error } },
  }, async () => ({ address: await need().newReceiveAddress() }));

  app.get('/utxos', {
    schema: {
      summary: 'Unspent outputs',
      response: {
        200: {
          type: 'object',
          properties: {
            utxos: {
              type: 'array',
              items: { type: 'object', properties: { txid, vout: { type: 'integer' }, value: sats, height: { type: ['integer', 'null'] }, spentBy: { type: ['string', 'null'] } } },
            },
          },
        },
      },
    },
  }, async () => {
    const utxos = await need().utxos();
    return { utxos: utxos.map((u) => ({ txid: u.txid, vout: u.vout, value: u.value.toString(), height: u.height, spentBy: u.spentBy })) };
  });

  app.get('/history', {
    schema: {
      summary: 'Wallet transactions, newest first (unconfirmed ones first)',
      // The API runs without type coercion, so the limit is validated as a digit string.
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$', description: '1 to 1000 (default 100)' } } },
      response: {
        200: {
          type: 'object',
          required: ['history'],
          properties: {
            history: {
              type: 'array',
              items: {
                type: 'object',
                required: ['txid', 'height', 'status', 'received', 'sent', 'net', 'fee', 'replacedBy', 'firstSeen'],
                properties: {
                  txid,
                  height: { type: ['integer', 'null'] },
                  status: { type: 'string', enum: ['pending', 'confirmed', 'replaced', 'conflicted', 'dropped'] },
                  received: sats,
                  sent: sats,
                  net: { type: 'string', pattern: '^-?[0-9]{1,16}$', description: 'received - sent: negative for a spend' },
                  fee: { anyOf: [sats, { type: 'null' }] },
                  replacedBy: { anyOf: [txid, { type: 'null' }] },
                  firstSeen: { type: 'integer', description: 'Unix ms' },
                },
              },
            },
          },
        },
        409: error,
      },
    },
  }, async (req) => {
    const limit = Number((req.query as { limit?: string }).limit ?? 100);
    if (limit > 1000) throw DeaddropError.badInput('limit must be at most 1000');
    const history = await need().history(limit);
    return {
      history: history.map((h) => ({
        txid: h.txid, height: h.height, status: h.status, received: h.received.toString(), sent: h.sent.toString(), net: h.net.toString(),
        fee: h.fee === null ? null : h.fee.toString(), replacedBy: h.replacedBy, firstSeen: h.firstSeen,
      })),
    };
  });

  app.post('/send', {
    schema: {
      summary: 'Send to an address (RBF-signalling; fee rate capped)',
      body: { type: 'object', required: ['address', 'sats'], additionalProperties: false, properties: { address: { type: 'string', maxLength: 128 }, sats, feeRate } },
      response: { 200: sendResult, 400: error, 409: error, 422: error },
    },
  }, async (req) => {
    const body = req.body as { address: string; sats: string; feeRate?: number };
    const w = need();
    addressToScript(body.address, w.network);
    const r = await w.send(body.address, parseAmount(body.sats), { feeRate: await rateOf(body.feeRate) });
    return { txid: r.txid, fee: r.fee.toString(), vsize: r.vsize };
  });

  app.post('/bump', {
    schema: {
      summary: 'Replace an unconfirmed wallet transaction with a higher fee rate',
      body: { type: 'object', required: ['txid', 'feeRate'], additionalProperties: false, properties: { txid, feeRate } },
      response: { 200: sendResult, 400: error, 409: error, 422: error },
    },
  }, async (req) => {
    const body = req.body as { txid: string; feeRate: number };
    const r = await need().bump(body.txid, { feeRate: body.feeRate });
    return { txid: r.txid, fee: r.fee.toString(), vsize: r.vsize, replaces: body.txid };
  });

  app.post('/psbt/create', {
    schema: {
      summary: 'An unsigned PSBT for an external signer; its inputs stay reserved until finalized, abandoned or expired',
      body: {
        type: 'object', required: ['address', 'sats'], additionalProperties: false,
        properties: {
          address: { type: 'string', maxLength: 128 }, sats, feeRate,
          expiresIn: { type: 'integer', minimum: 1, maximum: MAX_PSBT_EXPIRY_SECONDS, description: 'seconds the inputs stay reserved (default: the wallet\'s, 3600)' },
        },
      },
      response: { 200: { type: 'object', properties: { psbt: { type: 'string' }, txid, fee: sats, vsize: { type: 'integer' }, expiresAt: { type: 'integer' } } }, 400: error, 409: error },
    },
  }, async (req) => {
    const body = req.body as { address: string; sats: string; feeRate?: number; expiresIn?: number };
    const w = need();
    const script = addressToScript(body.address, w.network);
    const r = await w.psbtCreate([{ script, amount: parseAmount(body.sats) }], await rateOf(body.feeRate), {
      ...(body.expiresIn !== undefined ? { ttlMs: body.expiresIn * 1000 } : {}),
    });
    return { psbt: r.psbt, txid: r.txid, fee: r.fee.toString(), vsize: r.vsize, expiresAt: r.expiresAt };
  });

  app.post('/psbt/abandon', {
    schema: {
      summary: 'Give up a PSBT created here and free its reserved coins at once',
      body: {
        type: 'object', additionalProperties: false, minProperties: 1, maxProperties: 1,
        properties: { txid, psbt: { type: 'string', maxLength: 400_000, pattern: '^[A-Za-z0-9+/=]+$' } },
      },
      response: { 200: reservation, 400: error, 404: error, 409: error },
    },
  }, async (req) => {
    const body = req.body as { txid?: string; psbt?: string };
    return reservationToJson(await need().abandon((body.txid ?? body.psbt)!));
  });

  app.get('/fee-estimates', {
    schema: {
      summary: "The backend's fee estimates by confirmation target (the dashboard's fee chart)",
      response: {
        200: {
          type: 'object', required: ['estimates'],
          properties: {
            estimates: {
              type: 'array',
              items: {
                type: 'object', required: ['target', 'satPerVb', 'source'],
                properties: { target: { type: 'integer' }, satPerVb: { type: 'number' }, source: { type: 'string', enum: ['node', 'fallback'] } },
              },
            },
          },
        },
        409: error,
      },
    },
  }, async () => {
    const source = need().source;
    // Where the backend has no estimate, the daemon's default rate stands in, marked 'fallback'.
    const fallback = await opts.defaultFeeRate();
    const estimates = await Promise.all(FEE_TARGETS.map(async (target) => ({ target, ...(await source.estimateFee(target, fallback)) })));
    return { estimates };
  });

  app.get('/reservations', {
    schema: {
      summary: 'Coins held for PSBTs, funded transactions and broadcasts being settled',
      response: { 200: { type: 'object', properties: { reservations: { type: 'array', items: reservation } } }, 409: error },
    },
  }, async () => ({ reservations: (await need().reservations()).map(reservationToJson) }));

  app.post('/psbt/finalize', {
    schema: {
      summary: 'Finalize a signed PSBT and (by default) broadcast it',
      body: {
        type: 'object', required: ['psbt'], additionalProperties: false,
        properties: { psbt: { type: 'string', maxLength: 400_000, pattern: '^[A-Za-z0-9+/=]+$' }, broadcast: { type: 'boolean' }, sign: { type: 'boolean' } },
      },
      response: { 200: { type: 'object', properties: { txid, fee: sats, vsize: { type: 'integer' }, broadcast: { type: 'boolean' }, hex: { type: 'string' } } }, 400: error, 422: error },
    },
  }, async (req) => {
    const body = req.body as { psbt: string; broadcast?: boolean; sign?: boolean };
    const w = need();
    const psbt = body.sign ? (await w.psbtSign(body.psbt)).psbt : body.psbt;
    const r = await w.psbtFinalize(psbt, { broadcast: body.broadcast ?? true });
    return { txid: r.txid, fee: r.fee.toString(), vsize: r.vsize, broadcast: r.broadcast, hex: toHex(r.raw) };
  });
}
