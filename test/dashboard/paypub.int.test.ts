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
import { fundParty, publishRevealed, removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { launchBrowser, screenshot, signedInPage, trackCspViolations } from '../support/browser.js';

const signedIn = (browser: Browser, p: Party): Promise<Page> => signedInPage(browser, p);

interface ChartState { series: string[]; data: number[][] }
const chartOf = (page: Page, name: string): Promise<ChartState | undefined> =>
  page.evaluate(`window.dashboardState.charts[${JSON.stringify(name)}]`) as Promise<ChartState | undefined>;

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
    // The pledge chart: cumulative confirmed pledges by height reach the threshold line.
    await page.locator(`.sale[data-sale="${id}"] .chart canvas`).waitFor();
    const chart = await chartOf(page, `pledges:${id}`);
    expect(chart?.series).toEqual(['pledged', 'threshold']);
    const [heights, pledged, threshold] = chart!.data as [number[], number[], number[]];
    expect(heights.length).toBeGreaterThanOrEqual(2);
    expect(pledged[0]).toBe(0);
    expect(pledged.at(-1)).toBe(200_000);
    expect(new Set(threshold)).toEqual(new Set([200_000]));
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

  it('shows a buyer whose seller never collects the refund coming, then available, then broadcast and confirmed', async () => {
    const [buyer] = buyers as [Party, Party];
    const pub = await publishRevealed(seller, node, 'unsold.bin', 2048);
    const { offer } = pub;
    const page = await signedIn(browser, buyer);
    const violations = await trackCspViolations(page);
    await page.goto(`${buyer.daemon.apiUrl}/#paypub`);
    // Pledge from the page itself.
    await page.locator('#pledge-form').getByLabel('Offer').fill(offer);
    await page.locator('#pledge-form').getByLabel('Amount (sat)').fill('50000');
    await page.getByRole('button', { name: 'Pledge' }).click();
    await page.locator('#pledge-result').getByText(/^Done: [0-9a-f]{64}/).waitFor({ timeout: 30_000 });
    await node.mine(1);
    const box = page.locator(`.sale[data-sale="${pub.id}"] .refund-box`);
    await page.locator(`.sale[data-sale="${pub.id}"] .refund-box[data-refund="waiting"]`).waitFor({ timeout: 30_000 });
    await box.getByText(new RegExp(`from height ${pub.deadlineHeight}`)).waitFor({ timeout: 30_000 });
    expect(await box.getByRole('button', { name: 'Broadcast refund' }).isDisabled()).toBe(true);
    await screenshot(page, '15-paypub-refund-waiting');
    // Past the deadline the refund is valid. The buyer's daemon broadcasts it on its own at the
    // next tick; the page's button does the same through POST /paypub/sales/:id/refund when the
    // page shows it available first. Either way the page shows the refund without a reload.
    await page.evaluate('window.sameDocument = true');
    await mineTo(node, pub.deadlineHeight);
    const sel = `.sale[data-sale="${pub.id}"] .refund-box`;
    await page.locator(`${sel}[data-refund="available"], ${sel}[data-refund="broadcast"]`).waitFor({ timeout: 30_000 });
    let by = 'daemon';
    if ((await box.getAttribute('data-refund')) === 'available') {
      await screenshot(page, '16-paypub-refund-available');
      const button = box.getByRole('button', { name: 'Broadcast refund' });
      if (await button.isEnabled().catch(() => false)) {
        // The daemon may broadcast between the check and the click: the page then redraws the box
        // as broadcast and the button is gone. That is a pass only if the box really moved on.
        const clicked = await button.click({ timeout: 5_000 }).then(() => true, () => false);
        if (clicked) by = 'button';
        else expect(await box.getAttribute('data-refund')).not.toBe('available');
      }
    }
    const ev = await buyer.waitFor('paypub.refund.broadcast', (e) => e.data.id === pub.id, 30_000);
    await page.locator(`.sale[data-sale="${pub.id}"] .refund-box[data-refund="broadcast"]`).getByText(String(ev.data.txid)).waitFor({ timeout: 30_000 });
    await screenshot(page, '17-paypub-refund-broadcast');
    await node.mine(1);
    await page.locator(`.sale[data-sale="${pub.id}"] .refund-box[data-refund="confirmed"]`).waitFor({ timeout: 30_000 });
    const tx = await node.rpc<{ confirmations: number }>('getrawtransaction', [ev.data.txid, 1]);
    expect(tx.confirmations).toBe(1);
    expect(await page.evaluate('window.sameDocument')).toBe(true);
    await screenshot(page, '18-paypub-refund-confirmed');
    expect(await violations()).toEqual([]);
    console.log(`[dashboard refund test] refund broadcast by the ${by}`);
  });
});
