/**
 * `deaddrop invite`, `deaddrop drop send`, `deaddrop drops list|sent`: publishing an invite,
 * leaving introductions, and listing what was found (`deaddrop watch` is ./watch.ts).
 */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import type { ContextFactory } from '../context.js';
import type { CliContext } from '../context.js';
import { print } from '../output.js';
import { collect, parseCount, parseFeeRate } from '../parse.js';
import { unlockKeys, withWallet } from '../session.js';
import { tryTipHeight } from '../backend.js';
import { inviteQrSvg, inviteQrTerminal, writeInviteQrPng } from '../../deaddrop/invite.js';
import { IntroductionLedger } from '../../deaddrop/introductions.js';
import { checkIntroduction, parseLifetime, parseRecipient, sendIntroduction, walletInvite } from '../../deaddrop/publish.js';
import { mixnetHintOf, nodeIssuer } from '../../node/drop-introduction.js';
import { type DropJson, dropToJson, listLocalDrops } from '../../deaddrop/datadir-stores.js';
import type { Wallet } from '../../wallet/wallet.js';
import { daemonApi } from './node.js';
import { introductionEndpoints, onionPortFor, type TorSendState } from '../../deaddrop/tor-send.js';
import { DeaddropError } from '../../util/errors.js';

/** Default fee rate when `--fee-rate` is not given and the backend has no estimate (sat/vB). */
const FALLBACK_FEE_RATE = 2;


async function feeRateFor(wallet: Wallet, flag: string | undefined): Promise<number> {
  if (flag !== undefined) return parseFeeRate(flag);
  const estimate = await wallet.source.estimateFee(6, FALLBACK_FEE_RATE);
  return Math.max(1, Math.ceil(estimate.satPerVb));
}

interface InviteFlags {
  qr?: boolean;
  png?: string;
  svg?: string;
  label?: string;
  hint: string[];
}

async function inviteAction(ctx: CliContext, opts: InviteFlags): Promise<void> {
  const { keys, birthdayHeight } = await unlockKeys(ctx);
  const birthday = birthdayHeight > 0 ? birthdayHeight : (await tryTipHeight(ctx)) || null;
  const invite = walletInvite(keys, { label: opts.label ?? null, birthday, hints: opts.hint });
  if (opts.png) await writeInviteQrPng(opts.png, invite.uri);
  if (opts.svg) writeFileSync(opts.svg, await inviteQrSvg(invite.uri));
  // The terminal QR code is for eyes only; with --json use --png or --svg.
  const qr = opts.qr && !ctx.json ? await inviteQrTerminal(invite.uri) : undefined;
  const files = [...(opts.png ? [`QR code written to ${opts.png}`] : []), ...(opts.svg ? [`QR code written to ${opts.svg}`] : [])];
  print(ctx, { ...invite, ...(opts.png ? { png: opts.png } : {}), ...(opts.svg ? { svg: opts.svg } : {}) },
    [...(qr !== undefined ? [qr.trimEnd()] : []), invite.uri, ...files]);
}

interface SendFlags {
  endpoint: string[];
  message?: string;
  notifyOutput?: boolean;
  feeRate?: string;
  expires: string;
  onionPort?: string;
  onion?: boolean;
}

/** The Tor setting of this datadir's running daemon; off when no daemon runs (then nothing publishes the onion). */
async function daemonTor(ctx: CliContext): Promise<TorSendState> {
  try {
    const { tor } = await daemonApi<{ tor?: TorSendState }>(ctx, 'GET', '/status');
    return tor ?? { enabled: false };
  } catch (err) {
    if (err instanceof DeaddropError && err.code === 'NOT_INITIALIZED') return { enabled: false };
    throw err;
  }
}

async function sendAction(ctx: CliContext, recipient: string, opts: SendFlags): Promise<void> {
  // Everything typed is checked before the keystore is unlocked or a coin is chosen.
  parseRecipient(recipient, ctx.network);
  const explicitPort = opts.onionPort !== undefined ? parseCount(opts.onionPort, '--onion-port', 1, 65_535) : undefined;
  // With Tor on the daemon, the introduction's onion is announced unless --no-onion.
  const onionPort = onionPortFor({
    endpoints: opts.endpoint, ...(opts.onion !== undefined ? { onion: opts.onion } : {}), ...(explicitPort !== undefined ? { onionPort: explicitPort } : {}),
  }, await daemonTor(ctx));
  // No --endpoint and no onion: the drop says "answer me over the mixnet" (this node's provider),
  // so the recipient's answer reveals neither side's IP address; never a raw endpoint by default.
  const endpoints = introductionEndpoints(opts.endpoint, onionPort, opts.endpoint.length === 0 && onionPort === undefined ? mixnetHintOf(ctx.datadir) : null);
  const content = { endpoints, ...(opts.message !== undefined ? { message: opts.message } : {}), ...(onionPort !== undefined ? { onionPort } : {}) };
  checkIntroduction(content);
  const lifetimeSeconds = parseLifetime(opts.expires);
  if (opts.feeRate !== undefined) parseFeeRate(opts.feeRate);
  await withWallet(ctx, async ({ wallet }) => {
    const ledger = IntroductionLedger.open(ctx.datadir);
    try {
      const r = await sendIntroduction(wallet, { ledger, issue: nodeIssuer(wallet.keys, ctx.datadir) }, {
        recipient, ...content, feeRate: await feeRateFor(wallet, opts.feeRate), notifyOutput: opts.notifyOutput === true, lifetimeSeconds,
      });
      print(ctx, r, `${r.txid} (fee ${r.fee} sat, ${r.vsize} vB; introduction #${r.introduction})`);
    } finally {
      ledger.close();
    }
  });
}

function dropLine(d: DropJson): string {
  const where = d.status === 'confirmed' ? `height ${d.height}` : d.status;
  return `${d.txid}:${d.vout} ${where} ${d.endpoints.join(' ')} ${JSON.stringify(d.message)}`;
}

export function registerDropCommands(program: Command, context: ContextFactory): void {
  program
    .command('invite')
    .description('print your deaddrop: invite (silent-payment address from your seed), optionally as a QR code')
    .option('--qr', 'also print the QR code in the terminal')
    .option('--png <file>', 'write the QR code as PNG')
    .option('--svg <file>', 'write the QR code as SVG')
    .option('--label <name>', 'a name for you, shown to whoever scans the invite')
    .option('--hint <endpoint>', 'an endpoint of your own node (repeatable, at most 4)', collect, [])
    .action(async (opts: InviteFlags) => inviteAction(context(), opts));

  const drop = program.command('drop').description('leave dead drops');
  drop
    .command('send <invite>')
    .description('send an encrypted introduction to a deaddrop: invite or silent-payment address, funded from the wallet')
    .option('--endpoint <hint>', 'where the recipient can reach your node, e.g. ws://1.2.3.4:9000 (repeatable); default: mixnet:<your provider> when your node has one (no IP address)', collect, [])
    .option('--message <text>', 'a short message (what fits: 28 bytes minus the endpoints)')
    .option('--notify-output', 'also pay the 330-sat BIP352 output so silent-payment wallets see the drop')
    .option('--fee-rate <sat/vB>', 'fee rate; default: the backend estimate for 6 blocks')
    .option('--expires <lifetime>', 'token lifetime: 30d, 12h, 90m or never', '30d')
    .option('--onion-port <port>', 'also announce the onion service of this introduction\'s pairwise key on this port (3 bytes)')
    .option('--onion', 'announce the onion service of this introduction\'s pairwise key (3 bytes; the daemon started with --tor publishes it; the default when it runs Tor)')
    .option('--no-onion', 'do not announce the introduction\'s onion even though the daemon runs Tor')
    .action(async (recipient: string, opts: SendFlags) => sendAction(context(), recipient, opts));

  const drops = program.command('drops').description('dead drops found and sent');
  drops
    .command('list')
    .description('drops found for your invite (needs no passphrase)')
    .action(async () => {
      const ctx = context();
      const list = listLocalDrops(ctx.datadir).map(dropToJson);
      print(ctx, { drops: list }, list.length === 0 ? 'no drops yet (run `deaddrop watch`)' : list.map(dropLine));
    });
  drops
    .command('sent')
    .description('introductions you sent: pairwise key, txid, recipient, expiry')
    .action(async () => {
      const ctx = context();
      const ledger = IntroductionLedger.open(ctx.datadir);
      try {
        const list = ledger.list();
        print(ctx, { introductions: list }, list.length === 0 ? 'no introductions sent' : list.map((r) =>
          `#${r.number} ${r.status} ${r.txid ?? '-'} to ${r.recipient}${r.expiresAt === null ? '' : ` until ${new Date(r.expiresAt * 1000).toISOString()}`}`));
      } finally {
        ledger.close();
      }
    });

}
