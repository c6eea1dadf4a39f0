/** Tor options of `deaddrop start` from its flags (and DEADDROP_TOR_PASSWORD, kept out of the process list). */
import { parseControlAddress } from './control.js';
import type { NodeTorOptions } from './node-tor.js';

/** `--tor`, `--tor-control <addr>`, `--tor-only`: either implies `--tor`. Undefined when Tor is off. */
export function torOptionsFromFlags(
  flags: { tor?: boolean; torControl?: string; torOnly?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): NodeTorOptions | undefined {
  if (!flags.tor && flags.torControl === undefined && !flags.torOnly) return undefined;
  if (flags.torControl !== undefined) parseControlAddress(flags.torControl); // a clear error before anything starts
  return {
    ...(flags.torControl !== undefined ? { control: flags.torControl } : {}),
    ...(env.DEADDROP_TOR_PASSWORD ? { controlPassword: env.DEADDROP_TOR_PASSWORD } : {}),
    only: flags.torOnly === true,
  };
}
