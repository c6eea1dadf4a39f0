/**
 * `deaddrop paypub …`: sell access to a file for bitcoin, with the keys released by the seller's
 * own claim (docs/protocol/paypub.md). Each command opens the wallet and paypub.db, catches up
 * with the chain and the mempool, acts, and closes; a running daemon (same datadir) does the
 * automatic parts (sample, claim, unlock, refund) and serves the chunks to buyers.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { ContextFactory } from '../context.js';
import type { CliContext } from '../context.js';
import { print } from '../output.js';
import { parseCount, parseFeeRate, parseSats } from '../parse.js';
import { withWallet } from '../session.js';
import { DeaddropError } from '../../util/errors.js';
import { PaypubService } from '../../paypub/service.js';
import { checkFraudProof, decodeFraudProof } from '../../paypub/private.js';
import { DEFAULT_CHUNKS } from '../../paypub/seller.js';
import { MAX_CHUNKS } from '../../paypub/params.js';
import { fromHex } from '../../util/bytes.js';
import { daemonContentStore } from './store.js';

/** Runs `fn` with a PayPub service over an unlocked, synced wallet; closes everything after. */
async function withPaypub<T>(ctx: CliContext, fn: (s: PaypubService) => Promise<T>, opts: { sync?: boolean } = {}): Promise<T> {
  return withWallet(ctx, async ({ wallet, source }) => {
    // Beside a running daemon, publish into and read from its node's storage.
    const service = new PaypubService({ chain: source, wallet, keys: wallet.keys, datadir: ctx.datadir, network: ctx.network, contentStore: () => daemonContentStore(ctx) });
    try {
      await service.ready();
      if (opts.sync !== false) await service.sync();
      return await fn(service);
    } finally {
      await service.close();
    }
  }, { sync: opts.sync !== false });
}

/** An argument given inline or as `@path` (offer strings and proofs are long). */
function inlineOrFile(value: string, what: string): string {
  if (!value.startsWith('@')) return value.trim();
  try {
    return readFileSync(value.slice(1), 'utf8').trim();
  } catch {
    throw DeaddropError.badInput(`cannot read ${what} from ${value.slice(1)}`);
  }
}

/** `--sample`: a count (8) or a ratio of the chunks (0.25). */
function parseSample(value: string | undefined, chunks: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d{1,3}$/.test(value)) return parseCount(value, '--sample', 0, chunks - 1);
  if (/^0?\.\d{1,6}$/.test(value)) return Math.round(Number(value) * chunks);
  throw DeaddropError.badInput('--sample must be a count of chunks (8) or a ratio below 1 (0.25)');
}

const sat = (n: bigint | string): string => `${n.toString()} sat`;
const feeOpt = (v: string | undefined): { feeRate?: number } => (v === undefined ? {} : { feeRate: parseFeeRate(v) });

export function registerPaypubCommands(program: Command, context: ContextFactory): void {
  const paypub = program.command('paypub').description('sell access to content for bitcoin; the seller\'s claim releases the keys');

  paypub
    .command('publish <file>')
    .description('encrypt a file, sign its manifest and anchor the manifest hash on chain')
    .requiredOption('--price <sats>', 'public mode: suggested pledge; private mode: the price')
    .option('--threshold <sats>', 'public mode: sum of pledges that releases the keys (default: the price)')
    .option('--min-pledge <sats>', 'public mode: smallest pledge that counts')
    .option('--chunks <n>', `chunk count (default ${DEFAULT_CHUNKS})`)
    .option('--sample <r>', 'sampled chunks: a count (8) or a ratio (0.25); default a quarter')
    .option('--beacon-in <blocks>', 'beacon block distance from now')
    .option('--deadline-in <blocks>', 'refund deadline distance from now')
    .option('--private', 'private mode: one buyer, an HTLC and a wrapped key set')
    .option('--claim <kind>', 'public mode: hashlock (version 1, default) or adaptor (version 2: the claim reveals one scalar, ~108 vB per pledge whatever the chunk count)')
    .option('--no-auto-claim', 'do not let the daemon claim on its own')
    .option('--fee-rate <sat/vB>', 'fee rate of the anchor transaction')
    .action(async (file: string, o: { price: string; threshold?: string; minPledge?: string; chunks?: string; sample?: string; beaconIn?: string; deadlineIn?: string; private?: boolean; claim?: string; autoClaim: boolean; feeRate?: string }) => {
      const ctx = context();
      if (o.claim !== undefined && o.claim !== 'hashlock' && o.claim !== 'adaptor') throw DeaddropError.badInput('--claim must be hashlock or adaptor');
      if (o.claim === 'adaptor' && o.private) throw DeaddropError.badInput('--claim adaptor is for public mode only');
      let data: Uint8Array;
      try {
        data = new Uint8Array(readFileSync(file));
      } catch {
        throw DeaddropError.badInput(`cannot read ${file}`);
      }
      const chunks = o.chunks === undefined ? Math.max(1, Math.min(DEFAULT_CHUNKS, data.length)) : parseCount(o.chunks, '--chunks', 1, MAX_CHUNKS);
      const sampleSize = parseSample(o.sample, chunks);
      const opts = {
        data, fileName: basename(file), price: parseSats(o.price, '--price'), chunks, mode: o.private ? 'private' as const : 'public' as const, autoClaim: o.autoClaim,
        ...(o.threshold ? { threshold: parseSats(o.threshold, '--threshold') } : {}), ...(o.minPledge ? { minPledge: parseSats(o.minPledge, '--min-pledge') } : {}),
        ...(sampleSize !== undefined ? { sampleSize } : {}), ...(o.beaconIn ? { beaconIn: parseCount(o.beaconIn, '--beacon-in', 1, 100_000) } : {}),
        ...(o.deadlineIn ? { deadlineIn: parseCount(o.deadlineIn, '--deadline-in', 1, 1_000_000) } : {}), ...feeOpt(o.feeRate),
      };
      await withPaypub(ctx, async (s) => {
        if (o.claim === 'adaptor') {
          const a = await s.publishAdaptor(opts);
          print(ctx, a, [
            `sale ${a.id}`,
            `public mode, adaptor claims (version 2): ${a.chunkCount} chunks, ${a.sampleSize} sampled at the beacon`,
            `anchor ${a.anchorTxid} (fee ${sat(a.anchorFee)})`,
            `beacon at height ${a.beaconHeight}; refunds from ${a.deadlineHeight}`,
            `price ${sat(a.price)}, threshold ${sat(a.threshold)}, minimum pledge ${sat(a.minPledge)}`,
            'the daemon puts it into the node\'s storage once it reveals the sample (offers then carry the read capability): keep it running until the beacon',
          ]);
          return;
        }
        const r = await s.publish(opts);
        print(ctx, r, [
          `sale ${r.id}`,
          `${r.mode} mode: ${r.fileLength} bytes in ${r.chunkCount} chunks, ${r.sampleSize} sampled at the beacon`,
          `anchor ${r.anchorTxid} (fee ${sat(r.anchorFee)})`,
          `beacon at height ${r.beaconHeight}; claim by ${r.claimCutoff}; refunds from ${r.deadlineHeight}`,
          `price ${sat(r.price)}, threshold ${sat(r.threshold)}, minimum pledge ${sat(r.minPledge)}`,
          r.storage.stored ? `stored in the node's storage (${r.storage.backend ?? 'stored before'}): offers carry its read capability`
            : `not in storage (${r.storage.reason ?? 'unknown'}): the daemon serves the chunks${r.storage.reason?.startsWith('no storage') ? '' : ' and tries again'}`,
        ]);
      });
    });

  paypub
    .command('offer <id>')
    .description('print the offer string buyers use (manifest, anchor, where chunks are: the storage capability and/or this node\'s URL; the sample once revealed)')
    .option('--url <url>', 'base URL buyers reach this node\'s API at (default: the running daemon\'s)')
    .action(async (id: string, o: { url?: string }) => {
      const ctx = context();
      await withPaypub(ctx, async (s) => {
        const r = /^[0-9a-f]{64}$/.test(id) && s.adaptor.sale(id) ? s.adaptorOffer(id, o.url) : s.offer(id, o.url);
        print(ctx, r, r.offer);
      }, { sync: false });
    });

  paypub
    .command('sample <id>')
    .description('seller: reveal the sampled keys once the beacon block is final')
    .action(async (id: string) => {
      const ctx = context();
      await withPaypub(ctx, async (s) => {
        const r = await s.sample(id);
        print(ctx, r, [`sample of ${r.id.slice(0, 16)} at beacon ${r.beaconHeight} (${r.beaconHash})`, `revealed chunks: ${r.indices.join(', ')}`,
          ...(r.anchorOk ? [] : ['warning: the anchor is not confirmed early enough; buyers will refuse this sample'])]);
      });
    });

  paypub
    .command('verify <offer>')
    .description('buyer: fetch the manifest and chunks, check anchor, beacon and sample; say what the sample proves')
    .option('--out <file>', 'where the daemon writes the file once the keys are public')
    .action(async (offerArg: string, o: { out?: string }) => {
      const ctx = context();
      const offer = inlineOrFile(offerArg, 'the offer');
      await withPaypub(ctx, async (s) => {
        const r = await s.verify(offer, o.out ? { out: resolve(o.out) } : {});
        print(ctx, r, [
          `sale ${r.id} (${r.mode} mode): ${r.ok ? 'verified' : 'NOT verified'}`,
          ...r.problems.map((p) => `  problem: ${p}`),
          `${r.fileLength} bytes in ${r.chunkCount} chunks (from ${r.chunksFrom === 'store' ? 'this datadir' : r.chunksFrom === 'storage' ? 'storage' : 'the seller'}); anchor ${r.anchor.ok ? `confirmed at ${r.anchor.height}` : 'not accepted'}; sample ${r.sample.verified ? `verified (chunks ${r.sample.indices.join(', ')})` : r.sample.status}`,
          `price ${sat(r.price)}, threshold ${sat(r.threshold)}, minimum ${sat(r.minPledge)}; claim by ${r.claimCutoff}, refunds from ${r.deadlineHeight} (tip ${r.tip})`,
          '', r.proves, '',
          ...r.odds.map((x) => `  ${x.bad} bad chunk(s) escape the sample with probability ${(x.escape * 100).toFixed(1)}%`),
          ...(r.keysPublic ? ['the keys are already public'] : []),
        ]);
      });
    });

  paypub
    .command('pledge <offer> <sats>')
    .description('buyer (public mode): pledge into your own output built from the verified manifest')
    .option('--fee-rate <sat/vB>', 'fee rate')
    .option('--out <file>', 'where the daemon writes the file once the keys are public')
    .action(async (offerArg: string, amount: string, o: { feeRate?: string; out?: string }) => {
      const ctx = context();
      const offer = inlineOrFile(offerArg, 'the offer');
      const sats = parseSats(amount, 'sats');
      await withPaypub(ctx, async (s) => {
        const opts = { ...feeOpt(o.feeRate), ...(o.out ? { out: resolve(o.out) } : {}) };
        const r = offer.startsWith('paypub2:') ? await s.pledgeAdaptor(offer, sats, opts) : await s.pledge(offer, sats, opts);
        print(ctx, r, [`pledged ${sat(r.value)} in ${r.txid}:${r.vout} (fee ${sat(r.fee)})`, r.announced ? 'the seller counted the announcement' : `announcing to the seller failed: ${r.announceError}`,
          `refundable from height ${r.refundAt} if the seller never claims`]);
      });
    });

  paypub
    .command('buy <offer>')
    .description('buyer (private mode): get signed terms, check them and fund the HTLC')
    .option('--fee-rate <sat/vB>', 'fee rate')
    .option('--out <file>', 'where the daemon writes the file once the seller claims')
    .action(async (offerArg: string, o: { feeRate?: string; out?: string }) => {
      const ctx = context();
      const offer = inlineOrFile(offerArg, 'the offer');
      await withPaypub(ctx, async (s) => {
        const r = await s.buy(offer, { ...feeOpt(o.feeRate), ...(o.out ? { out: resolve(o.out) } : {}) });
        print(ctx, r, [`paid ${sat(r.value)} into the HTLC ${r.txid}:${r.vout} (fee ${sat(r.fee)})`, `refundable ${r.csvDelay} blocks after it confirms if the seller never claims`]);
      });
    });

  paypub
    .command('status [id]')
    .description('state of one sale, or the list of sales')
    .action(async (id: string | undefined) => {
      const ctx = context();
      await withPaypub(ctx, async (s) => {
        if (id === undefined) {
          const sales = s.list();
          print(ctx, { sales }, sales.length === 0 ? 'no sales' : sales.map((x) => `${x.id} ${x.role} ${x.mode} ${x.phase}`));
          return;
        }
        if (/^[0-9a-f]{64}$/.test(id) && s.adaptor.sale(id)) {
          const a = s.adaptorStatus(id);
          print(ctx, a, [`sale ${id} (${String(a.role)}, adaptor claims)`, `pledges ${(a.pledges as unknown[]).length}; claim ${String(a.claimTxid ?? 'none')}`,
            ...(a.unlockedPath ? [`unlocked to ${String(a.unlockedPath)}`] : [])]);
          return;
        }
        const r = await s.status(id);
        print(ctx, r, [
          `sale ${r.id} (${r.role}, ${r.mode} mode): ${r.phase}`,
          `keys known ${r.keys.known}/${r.keys.total}; pledges ${r.pledged.pledges}${r.pledged.counted !== null ? `, counted ${sat(r.pledged.counted)} of ${sat(r.threshold)}` : ''}`,
          `beacon ${r.beaconHeight}, claim by ${r.claimCutoff}, deadline ${r.deadlineHeight}, tip ${r.tip}`,
          ...r.claims.map((c) => `claim ${String(c.txid)} ${String(c.status)}${c.height ? ` at ${String(c.height)}` : ''}`),
          ...r.refunds.map((x) => `refund ${String(x.txid)} ${String(x.status)}`),
          ...r.frauds.map((f) => `FRAUD: claim ${String(f.claimTxid)} (${String(f.reason)}); proof in --json output`),
          ...(r.unlocked ? [`unlocked to ${r.unlocked.path}`] : []),
        ]);
      });
    });

  paypub
    .command('claim <id>')
    .description('seller: claim every counted pledge in one RBF transaction (or bump the claim)')
    .option('--fee-rate <sat/vB>', 'fee rate (given on a pending claim: replace it at this rate)')
    .action(async (id: string, o: { feeRate?: string }) => {
      const ctx = context();
      const fee = feeOpt(o.feeRate);
      await withPaypub(ctx, async (s) => {
        if (/^[0-9a-f]{64}$/.test(id) && s.adaptor.sale(id)) {
          const a = await s.claimAdaptor(id, fee);
          if (a.action === 'none') throw new DeaddropError('CONFLICT', `nothing to claim: ${a.reason ?? 'no counted pledges'}`);
          print(ctx, a, a.action === 'pending' ? `claim ${a.txid ?? ''} is already in the mempool` : `claim ${a.txid ?? ''}${a.replaces ? ` replaces ${a.replaces}` : ''}: ${a.pledges ?? 0} pledge(s), fee ${sat(a.fee ?? 0n)} (${a.feeRate ?? 0} sat/vB)`);
          return;
        }
        const r = await s.claim(id, fee);
        if (r.action === 'none') throw new DeaddropError('CONFLICT', `nothing to claim: ${r.reason ?? 'no counted pledges'}${r.shortfall ? ` (${sat(r.shortfall)} short of the threshold)` : ''}`);
        print(ctx, r, r.action === 'pending' ? `claim ${r.txid} is already in the mempool` : `claim ${r.txid}${r.replaces ? ` replaces ${r.replaces}` : ''}: ${r.pledges} pledge(s), ${sat(r.total ?? 0n)}, fee ${sat(r.fee ?? 0n)} (${r.feeRate} sat/vB)`);
      });
    });

  paypub
    .command('unlock <id>')
    .description('decrypt with the keys the claim published (mempool or block) and write the file')
    .requiredOption('--out <file>', 'where to write the file (its directory must exist)')
    .option('--force', 'replace the file if it exists')
    .action(async (id: string, o: { out: string; force?: boolean }) => {
      const ctx = context();
      await withPaypub(ctx, async (s) => {
        const r = /^[0-9a-f]{64}$/.test(id) && s.adaptor.sale(id)
          ? await s.unlockAdaptor(id, resolve(o.out), { force: o.force === true })
          : await s.unlock(id, resolve(o.out), { force: o.force === true });
        print(ctx, r, `wrote ${r.bytes} bytes to ${r.path} (sha256 ${r.sha256})`);
      });
    });

  paypub
    .command('refund <id>')
    .description('buyer: take back your pledges after the deadline (or an HTLC after its CSV delay)')
    .option('--fee-rate <sat/vB>', 'fee rate')
    .action(async (id: string, o: { feeRate?: string }) => {
      const ctx = context();
      const fee = feeOpt(o.feeRate);
      await withPaypub(ctx, async (s) => {
        if (/^[0-9a-f]{64}$/.test(id) && s.adaptor.sale(id)) {
          const a = await s.refundAdaptor(id);
          print(ctx, a, a.refunds.length === 0 ? 'nothing to refund (before the deadline, or every pledge is spent)' : a.refunds.map((t) => `refund ${t}`));
          return;
        }
        const r = await s.refund(id, fee);
        print(ctx, r, r.refunds.map((x) => (x.txid ? `refund ${x.txid}: ${sat(x.value ?? 0n)} back (fee ${sat(x.fee ?? 0n)})` : `refund of ${x.pledge} failed: ${x.error}`)));
      });
    });

  paypub
    .command('check-fraud <proof>')
    .description('check a private-mode fraud proof (hex, or @file) as a third party')
    .action(async (proofArg: string) => {
      const ctx = context();
      const text = inlineOrFile(proofArg, 'the proof');
      if (!/^([0-9a-f]{2})+$/i.test(text)) throw DeaddropError.badInput('a fraud proof is hex');
      let r;
      try {
        r = checkFraudProof(decodeFraudProof(fromHex(text)));
      } catch {
        r = { fraud: false as const, reason: 'undecodable fraud proof' };
      }
      print(ctx, r, r.fraud ? `FRAUD: the seller was paid by ${r.claimTxid} and the wrap ${r.reason}; check that this transaction is confirmed on your own node` : `no fraud shown: ${r.reason}`);
    });
}
