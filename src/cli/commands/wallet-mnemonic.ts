/**
 * `deaddrop wallet mnemonic`: shows the recovery phrase of an existing wallet, for a backup made
 * after `init`. It needs the passphrase (the phrase is only in the encrypted keystore), never
 * goes through the daemon or its API, and is never logged.
 */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.js';
import { print } from '../output.js';
import { openKeystore, keystoreExists, readPassphrase } from '../../wallet/keystore.js';
import { DeaddropError } from '../../util/errors.js';

/** Adds `mnemonic` under the `wallet` command group. */
export function registerWalletMnemonicCommand(wallet: Command, context: ContextFactory): void {
  wallet
    .command('mnemonic')
    .description('print the 24-word recovery phrase for a backup (asks for the passphrase; keep the output offline)')
    .action(async () => {
      const ctx = context();
      if (!(await keystoreExists(ctx.datadir))) throw new DeaddropError('NOT_INITIALIZED', `no wallet in ${ctx.datadir}: run \`deaddrop init\` first`);
      const { mnemonic, meta } = await openKeystore(ctx.datadir, await readPassphrase());
      // stdout holds only the phrase (so `DEADDROP_MNEMONIC="$(deaddrop wallet mnemonic)"` works); the note goes to stderr.
      if (!ctx.json) process.stderr.write(`recovery phrase (${meta.network}, birthday height ${meta.birthdayHeight}); anyone who has it has the wallet\n`);
      print(ctx, { mnemonic, network: meta.network, birthdayHeight: meta.birthdayHeight }, mnemonic);
    });
}
