/** Resolves the global flags into a datadir, network and backend for every command. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseNetwork, type Network } from '../util/network.js';
import { DeaddropError } from '../util/errors.js';
import type { OutputOptions } from './output.js';
import { BACKEND_AUTH_ENV, resolveBackendFlag } from './backend-auth.js';

export interface GlobalFlags {
  datadir?: string;
  network?: string;
  json?: boolean;
  backend?: string;
  backendAuthFile?: string;
  debug?: boolean;
}

/** Resolves the context of the command being run (global flags, datadir, backend); given to every command module. */
export type ContextFactory = () => CliContext;

export interface CliContext extends OutputOptions {
  readonly network: Network;
  readonly datadir: string;
  /** The explicit `--backend` (or DEADDROP_BACKEND), if any, with credentials from `--backend-auth-file` / DEADDROP_BACKEND_AUTH. */
  readonly backendFlag: string | undefined;
}

/** The network used when neither `--network` nor DEADDROP_NETWORK says otherwise. */
export const DEFAULT_NETWORK: Network = 'regtest';

export function resolveContext(flags: GlobalFlags): CliContext {
  const network = parseNetwork(flags.network ?? process.env.DEADDROP_NETWORK ?? DEFAULT_NETWORK);
  const datadir = resolve(flags.datadir ?? process.env.DEADDROP_DATADIR ?? join(homedir(), '.deaddrop', network));
  return {
    network,
    datadir,
    backendFlag: resolveBackendFlag({
      flag: flags.backend, env: process.env.DEADDROP_BACKEND, authFile: flags.backendAuthFile, authEnv: process.env[BACKEND_AUTH_ENV],
      warn: (line) => process.stderr.write(`warning: ${line}\n`),
    }),
    json: flags.json ?? false,
    debug: flags.debug ?? false,
  };
}

/** Path of the regtest node record written by `deaddrop regtest up`. */
export function regtestRecordPath(datadir: string): string {
  return join(datadir, 'regtest', 'node.json');
}

/**
 * The backend URL: `--backend` when given, else the node started by `deaddrop regtest up`
 * under this datadir, else a clear error.
 */
export async function resolveBackendUrl(ctx: CliContext): Promise<string> {
  if (ctx.backendFlag) return ctx.backendFlag;
  if (ctx.network === 'regtest') {
    // This datadir's own node, else the one `deaddrop regtest up` published for every datadir of this user.
    const { attachAnyRegtestNode, regtestNodeOwner } = await import('../regtest/harness.js');
    if (regtestNodeOwner(ctx.datadir) !== undefined) {
      const node = await attachAnyRegtestNode(ctx.datadir);
      node.detach();
      return node.backendUrl;
    }
  }
  throw DeaddropError.badInput(
    ctx.network === 'regtest'
      ? 'no backend: pass --backend <url> or run `deaddrop regtest up` first'
      : 'no backend: pass --backend <url> (e.g. bitcoind://user:pass@127.0.0.1:8332)',
  );
}
