/** `deaddrop init`: creates the encrypted keystore (one BIP39 seed per datadir). */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.js';
import { print } from '../output.js';
import { parseCount } from '../parse.js';
import { createKeystore, readPassphrase } from '../../wallet/keystore.js';
import { tryTipHeight } from '../backend.js';

export function registerInitCommand(program: Command, context: ContextFactory): void {
  program
    .command('init')
    .description('create the wallet: a new 24-word seed, encrypted with your passphrase (DEADDROP_PASSPHRASE or a prompt)')
    .option('--birthday <height>', 'first block height to scan (default: the backend tip, or 0 when no backend is reachable)')
    .option('--restore', 'restore from an existing recovery phrase (read from DEADDROP_MNEMONIC or a prompt)')
    .option('--show-mnemonic', 'print the new recovery phrase once, for your backup')
    .action(async (opts: { birthday?: string; restore?: boolean; showMnemonic?: boolean }) => {
      const ctx = context();
      const birthdayHeight = opts.birthday !== undefined ? parseCount(opts.birthday, '--birthday', 0, 100_000_000) : await tryTipHeight(ctx);
      const passphrase = await readPassphrase({ confirm: true });
      const mnemonic = opts.restore ? (process.env.DEADDROP_MNEMONIC ?? (await readPassphrase({ prompt: 'Recovery phrase: ', env: {} }))) : undefined;
      const ks = await createKeystore(ctx.datadir, { passphrase, network: ctx.network, birthdayHeight, ...(mnemonic ? { mnemonic } : {}) });
      const out: Record<string, unknown> = { datadir: ctx.datadir, network: ctx.network, birthdayHeight: ks.meta.birthdayHeight };
      if (opts.showMnemonic) out.mnemonic = ks.mnemonic;
      print(ctx, out, [
        `wallet created in ${ctx.datadir} (${ctx.network}, scanning from height ${ks.meta.birthdayHeight})`,
        ...(opts.showMnemonic
          ? [`recovery phrase (write it down and keep it offline): ${ks.mnemonic}`]
          : ['back up the recovery phrase: `deaddrop wallet mnemonic` prints it (asks for the passphrase); `init --show-mnemonic` prints it at creation']),
      ]);
    });
}
