/**
 * A real Chromium for the dashboard tests: Debian's build (regtest/install-chromium.sh installs
 * it), driven by playwright-core, which never downloads a browser of its own. Screenshots go to
 * .tmp/screenshots/ (gitignored) as test artifacts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../src/regtest/harness.js';

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
