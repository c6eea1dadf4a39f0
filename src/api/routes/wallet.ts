/** Wallet routes: `/wallet/*`. Amounts travel as decimal strings of satoshis (no float rounding). */
import type { FastifyInstance } from 'fastify';
import type { Wallet } from '../../wallet/wallet.js';
import { addressToScript } from '../../wallet/tx.js';
import { DeaddropError } from '../../util/errors.js';

const sats = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;
const txid = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const feeRate = { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 } as const;
const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const sendResult = {
  type: 'object',
  required: ['txid', 'fee', 'vsize'],
  properties: { txid: { type: 'string' }, fee: { type: 'string' }, vsize: { type: 'integer' }, replaces: { type: 'string' } },
} as const;

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
      summary: 'An unsigned PSBT for an external signer',
      body: { type: 'object', required: ['address', 'sats'], additionalProperties: false, properties: { address: { type: 'string', maxLength: 128 }, sats, feeRate } },
      response: { 200: { type: 'object', properties: { psbt: { type: 'string' }, txid, fee: sats, vsize: { type: 'integer' } } }, 400: error, 409: error },
    },
  }, async (req) => {
    const body = req.body as { address: string; sats: string; feeRate?: number };
    const w = need();
    const script = addressToScript(body.address, w.network);
    const r = await w.psbtCreate([{ script, amount: parseAmount(body.sats) }], await rateOf(body.feeRate));
    return { psbt: r.psbt, txid: r.txid, fee: r.fee.toString(), vsize: r.vsize };
  });

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
    return { txid: r.txid, fee: r.fee.toString(), vsize: r.vsize, broadcast: r.broadcast, hex: Buffer.from(r.raw).toString('hex') };
  });
}
