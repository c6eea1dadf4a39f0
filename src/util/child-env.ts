/**
 * The environment handed to processes deaddrop spawns (btcd, bitcoind, ElectrumX): an allow-list,
 * never a copy of ours, so DEADDROP_PASSPHRASE, DEADDROP_BACKEND_AUTH, DEADDROP_MNEMONIC or
 * anything else secret in the user's shell never reaches a child's `/proc/<pid>/environ`.
 */

/** Variables a node needs to run at all (binary lookup, home for defaults, locale, temp dir). */
export const CHILD_ENV_ALLOW = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'] as const;

/** The allow-listed variables of `from` (default process.env) plus `extra`. */
export function childEnv(extra: Readonly<Record<string, string>> = {}, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of CHILD_ENV_ALLOW) {
    const v = from[name];
    if (v !== undefined) env[name] = v;
  }
  return { ...env, ...extra };
}
