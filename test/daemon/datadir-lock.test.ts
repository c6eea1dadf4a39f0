/**
 * The datadir lock's stale-holder rules with real processes: a live holder refuses with its pid,
 * a holder that exited or whose pid now belongs to another process (different start time) is
 * stale and taken over, a torn file is stale, and release removes only our own lock.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, lockDatadir, lockHolder } from '../../src/daemon/datadir-lock.js';
import { isDeaddropError } from '../../src/util/errors.js';

const root = mkdtempSync(join(tmpdir(), 'dd-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

describe('datadir lock', () => {
  it('refuses a second holder while the first runs (another real process), naming its pid', async () => {
    const dir = join(root, 'live');
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      lockDatadir(dir, 'daemon').release();
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: sleeper.pid, startTime: startTimeOf(sleeper.pid!), holder: 'daemon' }));
      let err: unknown;
      try {
        lockDatadir(dir, 'daemon');
      } catch (e) {
        err = e;
      }
      expect(isDeaddropError(err, 'CONFLICT')).toBe(true);
      expect((err as Error).message).toBe(`datadir ${dir} is in use by a deaddrop daemon (pid ${sleeper.pid}); stop it first`);
      expect(lockHolder(dir)?.pid).toBe(sleeper.pid);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('takes over a lock whose process has exited', () => {
    const dir = join(root, 'dead');
    const gone = spawnSync('true');
    lockDatadir(dir, 'daemon').release();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: gone.pid, startTime: '1', holder: 'daemon' }));
    expect(lockHolder(dir)).toBeUndefined();
    const lock = lockDatadir(dir, 'daemon');
    expect((JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number }).pid).toBe(process.pid);
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('takes over a lock whose pid was reused by another process (start time differs), and a torn file', () => {
    const dir = join(root, 'reused');
    lockDatadir(dir, 'daemon').release();
    // Our own pid is alive, but with another start time it is "someone else" who held the lock before.
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, startTime: '12345', holder: 'daemon' }));
    lockDatadir(dir, 'daemon').release();
    writeFileSync(join(dir, LOCK_FILE), '{"pid": 12');
    const lock = lockDatadir(dir, 'watch --from');
    expect(lockHolder(dir)).toMatchObject({ pid: process.pid, holder: 'watch --from' });
    // A second taker in the same process is refused too: one writer, whatever the process.
    expect(() => lockDatadir(dir, 'daemon')).toThrow(/in use by deaddrop watch --from \(pid \d+\)/);
    lock.release();
  });

  it('release leaves a lock that another holder took after ours alone', () => {
    const dir = join(root, 'release');
    const lock = lockDatadir(dir, 'daemon');
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, startTime: null, holder: 'daemon' }));
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
  });
});
