/**
 * A real Chromium for the dashboard tests: Debian's build (regtest/install-chromium.sh installs
 * it), driven by playwright-core, which never downloads a browser of its own. Screenshots go to
 * .tmp/screenshots/ (gitignored) as test artifacts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../src/regtest/harness.js';
import { runCli } from './cli.js';

export const CHROMIUM = '/usr/lib/chromium/chromium';
export const SCREENSHOTS = join(REPO_ROOT, '.tmp', 'screenshots');

/** Headless Chromium (no sandbox: the tests may run as root in a container). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** Saves a full-page screenshot as `.tmp/screenshots/<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * A new browser context signed in to the dashboard of the daemon on `datadir` through the
 * one-time URL `deaddrop dashboard` prints (as a user would).
 */
export async function signedInPage(browser: Browser, party: { datadir: string }, viewport = { width: 420, height: 900 }): Promise<Page> {
  const r = await runCli(['--datadir', party.datadir, '--network', 'regtest', 'dashboard', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  const page = await (await browser.newContext({ viewport, acceptDownloads: true })).newPage();
  await page.goto((JSON.parse(r.stdout) as { url: string }).url);
  await page.locator('#nav').waitFor({ state: 'visible' });
  return page;
}

/**
 * Records the page's Content-Security-Policy violations (from now on, across navigations);
 * the returned function reads them. A chart library that needed inline script or style would
 * show up here.
 */
export async function trackCspViolations(page: Page): Promise<() => Promise<string[]>> {
  const seen: string[] = [];
  await page.exposeFunction('reportCspViolation', (text: string) => seen.push(text));
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => window.reportCspViolation(e.violatedDirective + ' ' + e.blockedURI))`);
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) seen.push(m.text());
  });
  await page.reload();
  await page.locator('#nav').waitFor({ state: 'visible' });
  return async () => [...seen];
}

/** A signed-in dashboard page that records every request it makes and its CSP violations. */
export interface WatchedDashboard {
  readonly browser: Browser;
  readonly page: Page;
  /** Every URL the page requested, in order. */
  readonly requests: string[];
  readonly violations: () => Promise<string[]>;
}

/** Launches Chromium and signs a page in to the party's dashboard, watched from the first request. */
export async function openWatchedDashboard(party: { datadir: string }, viewport = { width: 1000, height: 900 }): Promise<WatchedDashboard> {
  const browser = await launchBrowser();
  const page = await signedInPage(browser, party, viewport);
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  return { browser, page, requests, violations: await trackCspViolations(page) };
}

/** The requests that left the daemon's origin (blob: and data: URLs stay on the page). */
export function foreignRequests(requests: readonly string[], origin: string): string[] {
  return requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
}
