/**
 * File modes of the datadir: it holds the encrypted seed, decrypted drop payloads and invite
 * tokens, the node's signing state, PayPub keys and the API token, so nothing in it may be
 * readable by other users.
 *
 * Policy (documented in the README): the datadir is 0700 and every file under it is 0600
 * (more exactly, no group or other permission bit is set). New files get it from the process
 * umask (0077, set by the CLI before anything is written, and inherited by the regtest node it
 * spawns); SQLite creates each `-wal`/`-shm` file with the mode of its database file, so those
 * follow. At start-up the daemon checks the whole tree and tightens anything looser, saying
 * which path it fixed (a file loosened by hand or by an older version), rather than refusing
 * to start: the fix is safe and never loses data. Only paths the user owns can be changed;
 * a path owned by someone else is refused with a clear error.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeaddropError } from '../util/errors.js';

/** The umask every deaddrop process sets: new files 0600, new directories 0700. */
export const PRIVATE_UMASK = 0o077;

/** One path whose mode was tightened. */
export interface ModeFix {
  readonly path: string;
  readonly from: number;
  readonly to: number;
}

/**
 * Sets the process umask to {@link PRIVATE_UMASK} (no-op where umask is unavailable, e.g. in a
 * worker thread). Returns the previous one.
 */
export function usePrivateUmask(): number | undefined {
  try {
    return process.umask(PRIVATE_UMASK);
  } catch {
    return undefined;
  }
}

/**
 * Creates `datadir` (0700) if needed, then walks it and removes every group/other permission
 * bit. Symlinks are not followed. Returns what was changed.
 */
export function secureDatadir(datadir: string): ModeFix[] {
  mkdirSync(datadir, { recursive: true, mode: 0o700 });
  const fixes: ModeFix[] = [];
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const visit = (path: string, depth: number): void => {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return; // removed while we walk (a sqlite -shm, a temp file)
    }
    if (st.isSymbolicLink()) return;
    const mode = st.mode & 0o7777;
    if ((mode & 0o077) !== 0) {
      if (uid !== undefined && st.uid !== uid) {
        throw new DeaddropError('CONFLICT', `${path} is owned by another user (uid ${st.uid}) and readable by others: fix its owner and mode (chmod go-rwx)`);
      }
      const to = mode & ~0o077;
      chmodSync(path, to);
      fixes.push({ path, from: mode, to });
    }
    if (st.isDirectory() && depth < 16) {
      for (const name of readdirSync(path)) visit(join(path, name), depth + 1);
    }
  };
  visit(datadir, 0);
  return fixes;
}

/** `0644` style, for messages. */
export function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
