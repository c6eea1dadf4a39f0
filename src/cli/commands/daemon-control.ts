/**
 * `deaddrop start --detach` and `deaddrop stop`: the daemon in the background, for shells and
 * scripts. `--detach` re-runs `start` as a detached child (stderr to `<datadir>/daemon.log`,
 * 0600) and returns once the child's API is up, printing what `start` prints, or fails with the
 * child's own error line if it exits first. `stop` signals the daemon named in `<datadir>/.lock`
 * and waits until it has released the lock.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { ContextFactory } from '../main.js';
import { print } from '../output.js';
import { DeaddropError } from '../../util/errors.js';
import { LOCK_FILE, lockHolder } from '../../daemon/datadir-lock.js';
import { sleep } from '../../util/time.js';

/** Where a detached daemon's log lines go. */
export const DAEMON_LOG = 'daemon.log';

function lastLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
    return lines.filter((l) => l.startsWith('error:')).at(-1) ?? lines.at(-1) ?? '';
  } catch {
    return '';
  }
}

/**
 * Runs this same command line without `--detach` (plus `--json`, read back here) as a detached
 * child, and resolves with the child's start-up document once its API answers.
 */
export async function startDetached(datadir: string, argv: readonly string[]): Promise<{ pid: number; doc: Record<string, unknown> }> {
  const args = argv.slice(1).filter((a) => a !== '--detach');
  const log = join(datadir, DAEMON_LOG);
  const fd = openSync(log, 'a', 0o600);
  const child = spawn(process.execPath, [...process.execArgv, ...args, '--json'], { detached: true, stdio: ['ignore', 'pipe', fd], env: process.env });
  closeSync(fd);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (;;) {
    try {
      const doc = JSON.parse(out) as Record<string, unknown>;
      child.stdout!.destroy();
      child.unref();
      return { pid: child.pid!, doc };
    } catch {
      // not the whole document yet
    }
    const code = await Promise.race([exited, sleep(100).then(() => undefined)]);
    if (code !== undefined) {
      const why = lastLine(log).replace(/^error: /, '');
      throw new DeaddropError('CONFLICT', `the daemon exited (code ${code}) before its API was up: ${why || `see ${log}`}`);
    }
  }
}

/** Adds `deaddrop stop`. */
export function registerStopCommand(program: Command, context: ContextFactory): void {
  program
    .command('stop')
    .description('stop the daemon running on this datadir (SIGTERM, then wait until it has released the datadir)')
    .action(async () => {
      const ctx = context();
      const lock = join(ctx.datadir, LOCK_FILE);
      // Only a live holder (same pid and start time): a stale lock's pid may belong to another process now.
      const holder = lockHolder(ctx.datadir);
      if (holder === undefined || holder.holder !== 'daemon') {
        print(ctx, { stopped: false }, `no daemon is running on ${ctx.datadir}`);
        return;
      }
      const pid = holder.pid;
      process.kill(pid, 'SIGTERM');
      for (let waited = 0; existsSync(lock); waited += 100) {
        if (waited > 60_000) throw DeaddropError.unreachable(`a stopped daemon (pid ${pid} still holds ${lock} after 60 s)`);
        await sleep(100);
      }
      print(ctx, { stopped: true, pid }, `daemon stopped (pid ${pid})`);
    });
}
