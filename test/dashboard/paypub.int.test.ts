/**
 * PayPub in the dashboard, in a real Chromium against real daemons on a regtest btcd: the seller
 * publishes a file by dragging it onto the page; two other daemons pledge until the threshold;
 * the seller's page shows the bar fill and the claim without a reload; a buyer's dashboard then
 * downloads the unlocked file, byte-identical. Screenshots: .tmp/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { createPaypubFeature } from '../../src/paypub/feature.js';
import { fundParty, mineTo, removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { runCli } from '../support/cli.js';
import { launchBrowser, screenshot } from '../support/browser.js';

/** A new browser context signed in to `p`'s dashboard through `deaddrop dashboard`. */
async function signedIn(browser: Browser, p: Party): Promise<Page> {
  const r = await runCli(['--datadir', p.datadir, '--network', 'regtest', 'dashboard', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  const page = await (await browser.newContext({ viewport: { width: 420, height: 900 }, acceptDownloads: true })).newPage();
  await page.goto((JSON.parse(r.stdout) as { url: string }).url);
  await page.locator('#nav').waitFor({ state: 'visible' });
  return page;
}

describe('PayPub in the dashboard', () => {
  let node: RegtestNode;
  let seller: Party;
  let buyers: Party[] = [];
  let browser: Browser;
  const file = new Uint8Array(randomBytes(4096));

  beforeAll(async () => {
    node = await startRegtestNode();
    seller = await startParty('seller', node, undefined, { features: [createPaypubFeature({ pollIntervalMs: 500 })] });
    buyers = [await startParty('buyer1', node), await startParty('buyer2', node)];
    for (const p of [seller, ...buyers]) await fundParty(node, p, 1_000_000n);
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    for (const p of [seller, ...buyers]) await p?.stop().catch(() => undefined);
    await node?.stop();
    for (const p of [seller, ...buyers]) removeParty(p);
  });

  it('publishes a dropped file, fills the bar to the threshold, shows the claim, and a buyer downloads the file', async () => {
    const page = await signedIn(browser, seller);
    await page.goto(`${seller.daemon.apiUrl}/#paypub`);
    await page.getByLabel('Price (sat)').fill('100000');
    await page.getByLabel('Threshold (sat)').fill('200000');
    // A real drop event carrying a File, as the browser makes when a file is dragged in.
    const dataTransfer = await page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(${JSON.stringify(Buffer.from(file).toString('base64'))}), (c) => c.charCodeAt(0))], 'dash.bin'));
      return dt;
    })()`);
    await page.locator('#dropzone').dispatchEvent('drop', { dataTransfer });
    const card = page.locator('.sale[data-sale]');
    await card.waitFor({ timeout: 30_000 });
    const id = (await card.getAttribute('data-sale')) as string;
    await screenshot(page, '10-paypub-published');

    await node.mine(1);
    await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
    const sale = await seller.ok<{ beaconHeight: number; threshold: string }>('GET', `/paypub/sales/${id}`);
    expect(sale.threshold).toBe('200000');
    await mineTo(node, sale.beaconHeight + 1);
    await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
    await page.locator(`.sale[data-sale="${id}"] figure svg`).waitFor();
    const { offer } = await seller.ok<{ offer: string }>('GET', `/paypub/sales/${id}/offer`);
    for (const b of buyers) {
      expect((await b.ok<{ ok: boolean }>('POST', '/paypub/verify', { offer, out: 'dash.bin' })).ok).toBe(true);
      await b.ok('POST', '/paypub/pledge', { offer, sats: '100000', feeRate: 2 });
    }
    await node.mine(1); // the pledges confirm, the seller's daemon claims
    await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id, 60_000);
    const bar = page.locator(`.sale[data-sale="${id}"] [role="progressbar"]`);
    await page.locator(`.sale[data-sale="${id}"][data-phase="claim-seen"]`).waitFor({ timeout: 30_000 });
    expect(Number(await bar.getAttribute('aria-valuenow'))).toBeGreaterThanOrEqual(200_000);
    expect(await bar.getAttribute('aria-valuemax')).toBe('200000');
    await screenshot(page, '11-paypub-claimed');

    const buyerPage = await signedIn(browser, buyers[0]!);
    await buyers[0]!.waitFor('paypub.unlocked', (e) => e.data.id === id, 30_000);
    await buyerPage.goto(`${buyers[0]!.daemon.apiUrl}/#paypub`);
    const link = buyerPage.locator(`.sale[data-sale="${id}"] a.download`);
    await link.waitFor({ timeout: 30_000 });
    await screenshot(buyerPage, '12-paypub-buyer');
    const [download] = await Promise.all([buyerPage.waitForEvent('download'), link.click()]);
    const got = readFileSync(await download.path());
    expect(Buffer.compare(got, Buffer.from(file))).toBe(0);
  });
});
