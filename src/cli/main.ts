/**
 * `deaddrop`: the command line over the wallet, the regtest tooling, dead drops, PayPub and
 * the peer node. Each command group lives in its own module under src/cli/commands/.
 */
import { Command, CommanderError } from 'commander';
import { resolveContext, type ContextFactory, type GlobalFlags } from './context.js';
import { errorLine, exitCodeFor } from './output.js';
import { registerRegtestCommands } from './commands/regtest.js';
import { registerInitCommand } from './commands/init.js';
import { registerWalletCommands } from './commands/wallet.js';
import { registerStartCommand } from './commands/start.js';
import { registerPaypubCommands } from './commands/paypub.js';
import { registerDropCommands } from './commands/drops.js';
import { registerWatchCommand } from './commands/watch.js';
import { registerNodeCommands } from './commands/node.js';
import { registerGroupCommands } from './commands/group.js';
import { usePrivateUmask } from '../daemon/file-modes.js';
import { registerMessageCommands } from './commands/message.js';
import { registerDashboardCommand } from './commands/dashboard.js';
import { registerStoreCommands } from './commands/store.js';

export function buildProgram(): Command {
  const program = new Command('deaddrop')
    .description('Bitcoin as a rendezvous nobody controls')
    .option('--datadir <path>', 'data directory (default ~/.deaddrop/<network>)')
    .option('--network <name>', 'mainnet | testnet | signet | regtest (default regtest)')
    .option('--json', 'print one JSON document on stdout')
    .option('--backend <url>', 'bitcoind://user:pass@host:port, btcd://…, electrum+tcp://host:port, electrum+ssl://…, esplora+https://…')
    .option('--backend-auth-file <path>', 'file holding user:password for a bitcoind/btcd --backend (e.g. Core\'s .cookie); or set DEADDROP_BACKEND_AUTH')
    .option('--debug', 'show stack traces on errors')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const context: ContextFactory = () => resolveContext(program.opts<GlobalFlags>());
  registerRegtestCommands(program, context);
  registerInitCommand(program, context);
  registerWalletCommands(program, context);
  registerStartCommand(program, context);
  registerPaypubCommands(program, context);
  registerDropCommands(program, context);
  registerWatchCommand(program, context);
  registerNodeCommands(program, context);
  registerGroupCommands(program, context);
  registerMessageCommands(program, context);
  registerDashboardCommand(program, context);
  registerStoreCommands(program, context);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  // Before anything is written: every file deaddrop (or a node it spawns) creates is private.
  usePrivateUmask();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed as one line by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    const debug = argv.includes('--debug');
    process.stderr.write((debug && err instanceof Error && err.stack ? err.stack : errorLine(err)) + '\n');
    return exitCodeFor(err);
  }
}

const code = await main(process.argv);
// `start` returns only once the daemon has stopped; flush stdout, then exit even if a library left a handle open.
process.stdout.write('', () => process.exit(code));
