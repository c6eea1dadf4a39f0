/** `deaddrop wallet …`: addresses, balance, coins, sending, fee bumping and PSBTs. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { ContextFactory } from '../context.js';
import { print } from '../output.js';
import { parseFeeRate, parseSats } from '../parse.js';
import { withWallet } from '../session.js';
import { addressToScript } from '../../wallet/tx.js';
import { DeaddropError } from '../../util/errors.js';
import type { Wallet } from '../../wallet/wallet.js';
import { registerWalletMnemonicCommand } from './wallet-mnemonic.js';
import { toHex } from '../../util/bytes.js';

/** Default fee rate when `--fee-rate` is not given: the backend's estimate, with this fallback. */
const FALLBACK_FEE_RATE = 2;

async function feeRateFor(wallet: Wallet, flag: string | undefined): Promise<number> {
  if (flag !== undefined) return parseFeeRate(flag);
  const estimate = await wallet.source.estimateFee(6, FALLBACK_FEE_RATE);
  return Math.max(1, Math.ceil(estimate.satPerVb));
}

/** A PSBT argument: base64, or @path to a file holding it; `txidOk` also accepts a txid. */
function readPsbtArg(arg: string, txidOk: boolean): string {
  const text = arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8').trim() : arg.trim();
  if (txidOk && /^[0-9a-f]{64}$/i.test(text)) return text.toLowerCase();
  if (!/^[A-Za-z0-9+/=]+$/.test(text)) throw DeaddropError.badInput(`psbt must be base64${txidOk ? ', a txid' : ''} (or @path to a file holding it)`);
  return text;
}

/** `90m`, `12h`, `2d` → ms (at most 30 days). */
function parseDuration(text: string, name: string): number {
  const m = /^([1-9][0-9]{0,5})([smhd])$/.exec(text);
  const ms = m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'] : NaN;
  if (!(ms <= 30 * 86_400_000)) throw DeaddropError.badInput(`${name} must look like 90m, 12h or 2d (at most 30d); got ${JSON.stringify(text.slice(0, 20))}`);
  return ms;
}

function sats(n: bigint): string {
  return `${n.toString()} sat`;
}

export function registerWalletCommands(program: Command, context: ContextFactory): void {
  const wallet = program.command('wallet').description('the BIP86 taproot wallet');
  registerWalletMnemonicCommand(wallet, context);

  wallet
    .command('address')
    .description('a new receive address (never reused)')
    .action(async () => {
      const ctx = context();
      await withWallet(ctx, async ({ wallet: w }) => {
        const address = await w.newReceiveAddress();
        print(ctx, { address }, address);
      });
    });

  wallet
    .command('balance')
    .description('confirmed, unconfirmed and immature balance')
    .action(async () => {
      const ctx = context();
      await withWallet(ctx, async ({ wallet: w }) => {
        const b = await w.balance();
        const out = { confirmed: b.confirmed, unconfirmed: b.unconfirmed, immature: b.immature, height: w.height };
        print(ctx, out, [`confirmed:   ${sats(b.confirmed)}`, `unconfirmed: ${sats(b.unconfirmed)}`, ...(b.immature > 0n ? [`immature:    ${sats(b.immature)}`] : [])]);
      });
    });

  wallet
    .command('utxos')
    .description('unspent outputs')
    .action(async () => {
      const ctx = context();
      await withWallet(ctx, async ({ wallet: w }) => {
        const utxos = await w.utxos();
        print(ctx, { utxos }, utxos.length === 0 ? 'no unspent outputs' : utxos.map((u) => `${u.txid}:${u.vout} ${sats(u.value)} ${u.height === null ? 'unconfirmed' : `height ${u.height}`}`));
      });
    });

  wallet
    .command('history')
    .description('wallet transactions, newest first')
    .action(async () => {
      const ctx = context();
      await withWallet(ctx, async ({ wallet: w }) => {
        const history = await w.history();
        print(ctx, { history }, history.length === 0 ? 'no transactions' : history.map((h) => `${h.txid} ${h.net >= 0n ? '+' : ''}${h.net} sat ${h.height === null ? h.status : `height ${h.height}`}`));
      });
    });

  wallet
    .command('send <address> <sats>')
    .description('send sats to address (RBF-signalling, fee capped)')
    .option('--fee-rate <sat/vB>', 'fee rate; default: the backend estimate for 6 blocks')
    .action(async (address: string, amountArg: string, opts: { feeRate?: string }) => {
      const ctx = context();
      const amount = parseSats(amountArg, 'sats');
      if (opts.feeRate !== undefined) parseFeeRate(opts.feeRate);
      addressToScript(address, ctx.network); // fail on a bad address before unlocking anything
      await withWallet(ctx, async ({ wallet: w }) => {
        const r = await w.send(address, amount, { feeRate: await feeRateFor(w, opts.feeRate) });
        print(ctx, { txid: r.txid, fee: r.fee, vsize: r.vsize }, `${r.txid} (fee ${sats(r.fee)}, ${r.vsize} vB)`);
      });
    });

  wallet
    .command('bump <txid>')
    .description('replace an unconfirmed wallet transaction with one paying a higher fee rate')
    .requiredOption('--fee-rate <sat/vB>', 'the new fee rate')
    .action(async (txid: string, opts: { feeRate: string }) => {
      const ctx = context();
      if (!/^[0-9a-f]{64}$/i.test(txid)) throw DeaddropError.badInput('txid must be 64 hex characters');
      const feeRate = parseFeeRate(opts.feeRate);
      await withWallet(ctx, async ({ wallet: w }) => {
        const r = await w.bump(txid.toLowerCase(), { feeRate });
        print(ctx, { txid: r.txid, replaces: txid, fee: r.fee, vsize: r.vsize }, `${r.txid} replaces ${txid} (fee ${sats(r.fee)})`);
      });
    });

  wallet
    .command('reservations')
    .description('coins held for PSBTs and funded transactions, with their expiry')
    .action(async () => {
      const ctx = context();
      await withWallet(ctx, async ({ wallet: w }) => {
        const reservations = await w.reservations();
        print(ctx, { reservations }, reservations.length === 0 ? 'no reservations' : reservations.map((r) =>
          `${r.id} ${r.kind} ${r.coins.length} coin(s) ${sats(r.coins.reduce((s, c) => s + c.value, 0n))} ${r.expiresAt === null ? 'settling with the node' : `expires ${new Date(r.expiresAt).toISOString()}`}`));
      }, { sync: false });
    });

  const psbt = wallet.command('psbt').description('partially signed transactions for external signers');
  psbt
    .command('create <address> <sats>')
    .description('an unsigned PSBT paying sats to address, with BIP32 derivations for a signer')
    .option('--fee-rate <sat/vB>', 'fee rate; default: the backend estimate')
    .option('--expires <duration>', 'how long its coins stay reserved unless finalized or abandoned: 90m, 12h, 2d (default 1h)')
    .action(async (address: string, amountArg: string, opts: { feeRate?: string; expires?: string }) => {
      const ctx = context();
      const amount = parseSats(amountArg, 'sats');
      const script = addressToScript(address, ctx.network);
      const ttlMs = opts.expires === undefined ? undefined : parseDuration(opts.expires, '--expires');
      await withWallet(ctx, async ({ wallet: w }) => {
        const r = await w.psbtCreate([{ script, amount }], await feeRateFor(w, opts.feeRate), ttlMs === undefined ? {} : { ttlMs });
        print(ctx, { psbt: r.psbt, txid: r.txid, fee: r.fee, vsize: r.vsize, expiresAt: r.expiresAt }, r.psbt);
      });
    });
  psbt
    .command('abandon <psbt>')
    .description('give up a PSBT made by `psbt create` (its txid, the PSBT, or @file) and free its coins')
    .action(async (arg: string) => {
      const ctx = context();
      const text = readPsbtArg(arg, true);
      await withWallet(ctx, async ({ wallet: w }) => {
        const r = await w.abandon(text);
        print(ctx, r, `abandoned ${r.id}: ${r.coins.length} coin(s) free again`);
      }, { sync: false });
    });
  psbt
    .command('finalize <psbt>')
    .description('finalize a signed PSBT (base64, or @file) and broadcast it')
    .option('--no-broadcast', 'only print the final transaction')
    .option('--sign', 'sign with this wallet\'s keys first')
    .action(async (psbtArg: string, opts: { broadcast: boolean; sign?: boolean }) => {
      const ctx = context();
      let text = readPsbtArg(psbtArg, false);
      await withWallet(ctx, async ({ wallet: w }) => {
        if (opts.sign) text = (await w.psbtSign(text)).psbt;
        const r = await w.psbtFinalize(text, { broadcast: opts.broadcast });
        const raw = toHex(r.raw);
        print(ctx, { txid: r.txid, fee: r.fee, vsize: r.vsize, broadcast: r.broadcast, hex: raw }, r.broadcast ? r.txid : raw);
      });
    });
}
