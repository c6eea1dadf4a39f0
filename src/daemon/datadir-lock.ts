/**
 * One writer per datadir, like Bitcoin Core's `.lock`: `deaddrop start` (and a `watch --from`
 * rescan, which rewrites the same stores) hold `<datadir>/.lock` while they run.
 *
 * Node has no portable `flock`, so the lock is a file created atomically (`link` of a finished
 * temp file, which fails with EEXIST when another holder exists) holding the holder's pid and,
 * on Linux, its start time from `/proc/<pid>/stat`. A lock whose process is gone, or whose pid
 * now belongs to another process (a different start time), is stale: a killed daemon never
 * blocks a restart. The holder removes the file when it stops.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeaddropError } from '../util/errors.js';

/** The lock file's name inside the datadir. */
export const LOCK_FILE = '.lock';

/** What `.lock` holds (JSON). */
export interface LockRecord {
  readonly pid: number;
  /** `/proc/<pid>/stat` field 22 (clock ticks after boot), or null where there is no /proc. */
  readonly startTime: string | null;
  /** What holds the lock, for the error message: `daemon`, `watch --from`. */
  readonly holder: string;
}

/** A held lock; `release()` is idempotent. */
export interface DatadirLock {
  readonly path: string;
  release(): void;
}

/** The start time of `pid` from /proc, or null when unavailable (not Linux, or the process is gone). */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may hold spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); field 22 is fields[19].
    if (fields[0] === 'Z') return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** True when the process that wrote `rec` still runs (same pid and, where known, same start time). */
function holderAlive(rec: LockRecord): boolean {
  try {
    process.kill(rec.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStartTime(rec.pid);
  if (rec.startTime === null || now === null) {
    // No /proc to tell a reused pid apart: trust kill(0), unless /proc exists and says it is gone.
    return now !== null || !procAvailable();
  }
  return now === rec.startTime;
}

function procAvailable(): boolean {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
}

function readRecord(path: string): (LockRecord & { text: string }) | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockRecord>;
    if (Number.isSafeInteger(v.pid) && (v.startTime === null || typeof v.startTime === 'string')) {
      return { pid: v.pid!, startTime: v.startTime ?? null, holder: typeof v.holder === 'string' ? v.holder : 'deaddrop', text };
    }
  } catch {
    // a torn or foreign file: treated as stale below
  }
  return { pid: -1, startTime: null, holder: 'unknown', text };
}

/**
 * Takes the exclusive lock on `datadir` for `holder`, or throws CONFLICT naming the running pid:
 * `datadir /x is in use by a deaddrop daemon (pid 1234); stop it first`.
 * @example
 * const lock = lockDatadir(datadir, 'daemon');
 * try { ... } finally { lock.release(); }
 */
export function lockDatadir(datadir: string, holder: string): DatadirLock {
  mkdirSync(datadir, { recursive: true, mode: 0o700 });
  const path = join(datadir, LOCK_FILE);
  const mine: LockRecord = { pid: process.pid, startTime: processStartTime(process.pid), holder };
  const text = `${JSON.stringify(mine)}\n`;
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(tmp, path);
        // Another starter may have moved a stale lock aside between our read and its rename:
        // make sure the file at `path` is the one we wrote.
        if (readFileSync(path, 'utf8') === text) return heldLock(path, text);
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const rec = readRecord(path);
      if (rec === undefined) continue; // released meanwhile: try again
      if (rec.pid > 0 && holderAlive(rec)) {
        const what = rec.holder === 'daemon' ? 'a deaddrop daemon' : `deaddrop ${rec.holder}`;
        throw new DeaddropError('CONFLICT', `datadir ${datadir} is in use by ${what} (pid ${rec.pid}); stop it first`, { pid: rec.pid });
      }
      // Stale (its process is gone): move it aside atomically, then retry the link. If what we
      // moved is not the stale file we read (another starter replaced it meanwhile), put it back.
      const aside = `${path}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
      try {
        renameSync(path, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      try {
        if (readFileSync(aside, 'utf8') !== rec.text) linkSync(aside, path);
      } catch {
        // the slot was taken again: the next attempt reads whoever holds it
      } finally {
        rmSync(aside, { force: true });
      }
    }
    throw new DeaddropError('CONFLICT', `could not take the lock ${path}: another deaddrop process keeps taking it`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function heldLock(path: string, text: string): DatadirLock {
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      // Remove only our own lock (never one a later daemon took after ours went stale).
      if (readFileSync(path, 'utf8') === text) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  // A normal exit (even without close()) leaves no lock behind; SIGKILL leaves a stale one, which the pid check handles.
  process.on('exit', release);
  return { path, release };
}

/** The live holder of `datadir`'s lock, or undefined when it is free or stale (its process is gone). */
export function lockHolder(datadir: string): LockRecord | undefined {
  const rec = readRecord(join(datadir, LOCK_FILE));
  if (rec === undefined || rec.pid <= 0 || !holderAlive(rec)) return undefined;
  return { pid: rec.pid, startTime: rec.startTime, holder: rec.holder };
}
