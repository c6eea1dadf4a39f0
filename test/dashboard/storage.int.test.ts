/**
 * The dashboard's storage and mixnet pages in a real Chromium against a real daemon on a regtest
 * btcd that serves storage (1-of-4 shares; with one server the four shares wrap onto it): a file
 * put through the file input and one dropped on the drop zone appear as kept files with size and
 * storage index and no read capability until the user reveals it; the put and check bars are
 * driven by the daemon's `storage.progress` events for the operations the page started; a check
 * shows the share health per server. Every request the page makes stays on the daemon's address.
 * Screenshots: .tmp/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { createNodeFeature } from '../../src/node/feature.js';
import { removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { foreignRequests, openWatchedDashboard, screenshot } from '../support/browser.js';

interface StorageState { progress: { op: string; phase: string; done: number; total: number; mine: boolean }[] }
interface KeptFile { storageIndex: string; name: string; size: number; cap: string; servers: { valid: number[] }[] | null }

const storageState = (page: Page): Promise<StorageState> => page.evaluate('window.dashboardState.storage') as Promise<StorageState>;

/** Records every value the bar `id` shows (data-done/data-total/data-source), from now on. */
async function watchBar(page: Page, id: string): Promise<void> {
  await page.evaluate(`(() => {
    const bar = document.getElementById(${JSON.stringify(id)});
    window.barLog = window.barLog ?? {};
    window.barLog[${JSON.stringify(id)}] = [];
    new MutationObserver(() => window.barLog[${JSON.stringify(id)}].push([Number(bar.dataset.done), Number(bar.dataset.total), bar.dataset.source]))
      .observe(bar, { attributes: true, attributeFilter: ['data-done', 'data-total', 'data-source'] });
  })()`);
}
const barLog = (page: Page, id: string): Promise<[number, number, string][]> => page.evaluate(`window.barLog[${JSON.stringify(id)}]`) as Promise<[number, number, string][]>;

describe('dashboard storage and mixnet pages in Chromium', () => {
  let node: RegtestNode;
  let alice: Party;
  let browser: Browser;
  let page: Page;
  let violations: () => Promise<string[]>;
  let requests: string[] = [];
  const data = randomBytes(300_000);

  beforeAll(async () => {
    node = await startRegtestNode();
    alice = await startParty('alice', node, undefined, {
      features: [createNodeFeature({ host: '127.0.0.1', storage: { server: { quotaBytes: 10_000_000 }, shares: { k: 1, happy: 1, n: 4 } } })],
    });
    ({ browser, page, requests, violations } = await openWatchedDashboard(alice));
  });

  afterAll(async () => {
    await browser?.close();
    await alice?.stop();
    await node?.stop();
    if (alice) removeParty(alice);
  });

  it('puts a file with a live progress bar and lists it without its read capability', async () => {
    await page.goto(`${alice.daemon.apiUrl}/#storage`);
    await page.locator('#live').getByText('events: live').waitFor();
    await page.locator('#storage-server dd').getByText('yes, at ').waitFor();
    expect(await page.locator('#quota-bar-text').innerText()).toMatch(/of 10\.0 MB used/);
    await watchBar(page, 'put-bar');
    await page.locator('#put-file').setInputFiles({ name: 'notes.bin', mimeType: 'application/octet-stream', buffer: data });
    await page.locator('#put-result').getByText('Stored notes.bin').waitFor({ timeout: 60_000 });

    // The daemon's progress events for this put reached the page and drove its bar to the last of its 3 segments (128 KiB each) sent.
    const s = await storageState(page);
    const mine = s.progress.filter((p) => p.mine);
    expect(mine.some((p) => p.phase === 'upload' && p.done === 3 && p.total === 3)).toBe(true);
    const log = await barLog(page, 'put-bar');
    expect(log.some(([, , source]) => source === 'storage.progress')).toBe(true);
    // …and ended on the answer, after the last progress tick (none arrives late to move it back).
    expect(log.at(-1)).toEqual([1, 1, 'answer']);
    expect(await page.locator('#put-bar-text').innerText()).toBe('notes.bin: stored (300 kB)');

    const { files } = await alice.ok<{ files: KeptFile[] }>('GET', '/storage/files');
    expect(files).toHaveLength(1);
    const card = page.locator(`article.kept[data-si="${files[0]!.storageIndex}"]`);
    await card.waitFor();
    expect(await card.locator('h4').innerText()).toBe('notes.bin');
    expect(await card.innerText()).toContain('300 kB');
    expect(await card.innerText()).toContain(files[0]!.storageIndex);
    // The read capability is a secret: nowhere on the page until asked for.
    expect(await page.locator('body').innerText()).not.toContain('dd-chk:r:');
    await page.locator('#put-zone').scrollIntoViewIfNeeded();
    await screenshot(page, '20-storage-put');
  });

  it('checks a kept file with a live bar and shows its share health per server; reveals the read capability on request', async () => {
    const { files } = await alice.ok<{ files: KeptFile[] }>('GET', '/storage/files');
    const card = page.locator(`article.kept[data-si="${files[0]!.storageIndex}"]`);
    await watchBar(page, 'check-bar');
    // By keyboard: the focused button keeps the focus when the card is redrawn with the result.
    await card.getByRole('button', { name: 'Check notes.bin' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#check-bar-text').getByText('Checked notes.bin: healthy, 4 of 4 shares').waitFor({ timeout: 60_000 });
    const s = await storageState(page);
    expect(s.progress.some((p) => p.mine && p.phase === 'verify' && p.done === 4 && p.total === 4)).toBe(true);
    const checkLog = await barLog(page, 'check-bar');
    expect(checkLog.some(([done, total, source]) => source === 'storage.progress' && done === 4 && total === 4)).toBe(true);
    expect(checkLog.at(-1)).toEqual([1, 1, 'answer']);

    // Share health per server: one server (this node) holding all four shares, all verified.
    const row = card.locator('table.server-health tbody tr');
    await row.first().waitFor();
    expect(await row.count()).toBe(1);
    expect(await row.first().innerText()).toMatch(/ok\s+#0, #1, #2, #3/);
    expect(await card.innerText()).toContain('healthy · 4 of 4 shares (1 needed)');
    // The route carries it too (until the daemon restarts).
    expect((await alice.ok<{ files: KeptFile[] }>('GET', '/storage/files')).files[0]!.servers![0]!.valid).toEqual([0, 1, 2, 3]);
    await screenshot(page, '21-storage-checked');

    expect(await page.evaluate('document.activeElement.getAttribute("aria-label")')).toBe('Check notes.bin');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await card.locator('.cap').getByText(files[0]!.cap).waitFor();
    expect(await page.evaluate('document.activeElement.getAttribute("aria-expanded")')).toBe('true');
    await card.getByRole('button', { name: 'Hide the read capability of notes.bin' }).click();
    expect(await page.locator('body').innerText()).not.toContain('dd-chk:r:');
  });

  it('takes a file dropped on the drop zone, and reads at phone width', async () => {
    await page.evaluate(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(5000)], 'dropped.txt', { type: 'text/plain' }));
      document.getElementById('put-zone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    })()`);
    await page.locator('#put-result').getByText('Stored dropped.txt').waitFor({ timeout: 60_000 });
    await page.locator('article.kept h4').getByText('dropped.txt').waitFor();

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${alice.daemon.apiUrl}/#storage`);
    await page.locator('article.kept').nth(1).waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await screenshot(page, '22-storage-phone');
  });

  it('shows the mixnet page (mailbox, routes, loop loss), and nothing was fetched from elsewhere', async () => {
    await page.goto(`${alice.daemon.apiUrl}/#mixnet`);
    await page.locator('#mix-status dt').first().waitFor();
    expect(await page.locator('#mix-routes caption').innerText()).toMatch(/Cover loops/);
    expect(await page.locator('#mixnet').innerText()).toMatch(/Mailbox/);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await screenshot(page, '23-mixnet-phone');

    const origin = new URL(alice.daemon.apiUrl).origin;
    const foreign = foreignRequests(requests, origin);
    expect(requests.length).toBeGreaterThan(5);
    expect(foreign).toEqual([]);
    expect(await violations()).toEqual([]);
  });
});
