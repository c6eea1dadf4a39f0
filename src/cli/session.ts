/**
 * Opening the wallet for one CLI command: keystore first (so a wrong passphrase fails before
 * anything else happens), then the backend, then the wallet database, then one sync.
 */
import { join } from 'node:path';
import type { ChainSource } from '../chain/types.js';
import { openKeystore, keystoreExists, readKeystoreMeta, readPassphrase } from '../wallet/keystore.js';
import { WalletKeys } from '../wallet/keys.js';
import { Wallet } from '../wallet/wallet.js';
import { DeaddropError } from '../util/errors.js';
import type { CliContext } from './context.js';
import { connectBackend } from './backend.js';

export const WALLET_DB = 'wallet.db';

/** Decrypts the keystore and checks it belongs to this network. */
export async function unlockKeys(ctx: CliContext): Promise<{ keys: WalletKeys; birthdayHeight: number }> {
  if (!(await keystoreExists(ctx.datadir))) {
    throw new DeaddropError('NOT_INITIALIZED', `no wallet in ${ctx.datadir}: run \`deaddrop init\` first`);
  }
  const meta = await readKeystoreMeta(ctx.datadir);
  if (meta.network !== ctx.network) throw DeaddropError.wrongNetwork(ctx.network, meta.network);
  const unlocked = await openKeystore(ctx.datadir, await readPassphrase());
  return { keys: WalletKeys.fromMnemonic(unlocked.mnemonic, ctx.network), birthdayHeight: unlocked.meta.birthdayHeight };
}

export interface WalletSession {
  readonly wallet: Wallet;
  readonly source: ChainSource;
}

/** Runs `fn` with an unlocked, synced wallet, and closes everything afterwards. */
export async function withWallet<T>(ctx: CliContext, fn: (s: WalletSession) => Promise<T>, opts: { sync?: boolean } = {}): Promise<T> {
  const { keys, birthdayHeight } = await unlockKeys(ctx);
  const source = await connectBackend(ctx);
  const wallet = new Wallet({ keys, source, db: join(ctx.datadir, WALLET_DB), birthdayHeight });
  try {
    await wallet.ready();
    if (opts.sync !== false) await wallet.sync();
    return await fn({ wallet, source });
  } finally {
    await wallet.close();
    await source.close();
  }
}
