/**
 * `deaddrop dashboard [--open]`: prints a one-time sign-in URL for the running daemon's web
 * dashboard (a single-use code valid two minutes, never the API token), and with `--open`
 * hands it to `xdg-open`.
 */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContextFactory } from '../context.js';
import { print } from '../output.js';
import { API_URL_FILE } from '../../api/token.js';
import { daemonApi } from './node.js';

/** Tries to open `url` in the desktop's browser; failure is reported, not fatal. */
function openInBrowser(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    // The URL goes as an argument (no shell), and the code is single-use and short-lived.
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    child.once('error', () => resolve(false));
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}

export function registerDashboardCommand(program: Command, context: ContextFactory): void {
  program
    .command('dashboard')
    .description('print a one-time URL that signs this browser in to the daemon\'s dashboard')
    .option('--open', 'also open it with xdg-open')
    .action(async (opts: { open?: boolean }) => {
      const ctx = context();
      const { code, expiresAt } = await daemonApi<{ code: string; expiresAt: number }>(ctx, 'POST', '/dashboard/login-code');
      const base = readFileSync(join(ctx.datadir, API_URL_FILE), 'utf8').trim();
      const url = `${base}/dashboard/login?code=${encodeURIComponent(code)}`;
      const opened = opts.open ? await openInBrowser(url) : false;
      print(ctx, { url, expiresAt, opened }, [
        url,
        'Open it within two minutes; it works once and signs this browser in (a cookie for this daemon only).',
        ...(opts.open && !opened ? ['(could not run xdg-open: open the URL yourself)'] : []),
      ]);
    });
}
