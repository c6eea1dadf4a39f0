/**
 * The dashboard's sync and rescan bars and its charts, in a real Chromium against a real daemon on
 * a regtest btcd: blocks mined while the overview is open move the drop-scan and wallet bars up
 * to the tip, live from `/events` (`watch.progress`, `wallet.changed`, `chain.tip`); the scan
 * throughput chart and the wallet's fee chart are drawn by uPlot on a canvas under the strict
 * CSP, with the data series the page holds. Screenshots: .tmp/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { nodeIssuer } from '../../src/node/drop-introduction.js';
import { createDropFeature } from '../../src/deaddrop/feature.js';
import { fundParty, removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { launchBrowser, screenshot, signedInPage, trackCspViolations } from '../support/browser.js';

interface ChartState { series: string[]; data: number[][] }
interface Progress { tip: number | null; wallet: number | null; scan: number | null; scanSamples: { time: number; height: number; tip: number }[] }

/** Waits until the page's progress shows `scan` (and `wallet`, when given) at these heights. Function form: a string would be an eval, which the CSP refuses. */
async function waitForProgress(page: Page, scan: number, wallet?: number): Promise<void> {
  await page.waitForFunction(([s, w]) => {
    const p = (globalThis as unknown as { dashboardState: { progress: Progress } }).dashboardState.progress;
    return p.scan === s && (w === undefined || p.wallet === w);
  }, [scan, wallet] as const, { timeout: 60_000 });
}

const progressOf = (page: Page): Promise<Progress> => page.evaluate('window.dashboardState.progress') as Promise<Progress>;
const chartOf = (page: Page, name: string): Promise<ChartState | undefined> =>
  page.evaluate(`window.dashboardState.charts[${JSON.stringify(name)}]`) as Promise<ChartState | undefined>;

describe('dashboard progress bars and charts in Chromium', () => {
  let node: RegtestNode;
  let alice: Party;
  let browser: Browser;
  let page: Page;
  let violations: () => Promise<string[]>;

  beforeAll(async () => {
    node = await startRegtestNode();
    alice = await startParty('alice', node, undefined, { features: [createDropFeature({ issuer: nodeIssuer })] });
    await fundParty(node, alice, 300_000n);
    browser = await launchBrowser();
    page = await signedInPage(browser, alice, { width: 1000, height: 900 });
    violations = await trackCspViolations(page);
  });

  afterAll(async () => {
    await browser?.close();
    await alice?.stop();
    await node?.stop();
    removeParty(alice);
  });

  it('moves the drop-scan and wallet bars to the tip while blocks come in, and charts the scan throughput', async () => {
    await page.goto(`${alice.daemon.apiUrl}/#overview`);
    await page.locator('#live').getByText('events: live').waitFor();
    const start = await node.rpc<number>('getblockcount');
    await waitForProgress(page, start);
    // Sample the bar itself as blocks come in: the values the user sees.
    await page.evaluate(`(() => {
      window.barValues = [];
      const bar = document.getElementById('scan-bar');
      new MutationObserver(() => window.barValues.push([Number(bar.dataset.height), Number(bar.dataset.tip)]))
        .observe(bar, { attributes: true, attributeFilter: ['data-height'] });
    })()`);
    const batches = 6;
    for (let i = 0; i < batches; i++) await node.mine(40);
    const tip = start + batches * 40;
    await waitForProgress(page, tip, tip);
    expect(Number(await page.locator('#scan-bar').getAttribute('value'))).toBe(tip);
    expect(Number(await page.locator('#scan-bar').evaluate((b) => (b as unknown as { max: number }).max))).toBe(tip);
    expect(Number(await page.locator('#wallet-bar').evaluate((b) => (b as unknown as { value: number }).value))).toBe(tip);
    expect(await page.locator('#scan-bar-text').innerText()).toBe(`scanned up to the tip (${tip})`);

    // The bar moved through intermediate heights, never backwards (no reorg here).
    const seen = (await page.evaluate('window.barValues')) as [number, number][];
    const heights = seen.map(([h]) => h);
    expect(new Set(heights).size).toBeGreaterThanOrEqual(3);
    expect(heights.some((h) => h > start && h < tip)).toBe(true);
    for (let i = 1; i < heights.length; i++) expect(heights[i]!).toBeGreaterThanOrEqual(heights[i - 1]!);

    // The throughput chart: a canvas, fed by the progress events the page received.
    const p = await progressOf(page);
    expect(p.scanSamples.length).toBeGreaterThanOrEqual(3);
    await page.locator('#throughput-chart canvas').waitFor();
    const chart = await chartOf(page, 'throughput');
    expect(chart?.series).toEqual(['scan']);
    const [xs, rates] = chart!.data as [number[], number[]];
    expect(xs.length).toBe(rates.length);
    expect(rates.length).toBeGreaterThanOrEqual(2);
    expect(rates.some((r) => r > 0)).toBe(true);
    expect(await page.locator('#throughput-chart canvas').evaluate((c) => (c as unknown as { width: number }).width)).toBeGreaterThan(100);
    await screenshot(page, '13-overview-progress');
    expect(await violations()).toEqual([]);
  });

  it('moves the wallet bar through a long catch-up on the wallet\'s own throttled wallet.progress events', async () => {
    await page.goto(`${alice.daemon.apiUrl}/#overview`);
    await page.locator('#live').getByText('events: live').waitFor();
    await page.evaluate(`(() => {
      window.walletBar = [];
      const bar = document.getElementById('wallet-bar');
      new MutationObserver(() => window.walletBar.push([Number(bar.dataset.height), Number(bar.dataset.tip), bar.dataset.source, Date.now()]))
        .observe(bar, { attributes: true, attributeFilter: ['data-height', 'data-source'] });
    })()`);
    const start = await node.rpc<number>('getblockcount');
    // One long run of blocks: the wallet walks it block by block and reports where it stands.
    await node.mine(400);
    const tip = start + 400;
    await waitForProgress(page, tip, tip);
    const seen = (await page.evaluate('window.walletBar')) as [number, number, string, number][];
    const events = alice.events.filter((e) => e.type === 'wallet.progress' && Number(e.data['height']) > start);
    // The first block of the walk is reported at once, then at most 4 a second (the tip comes with wallet.changed).
    expect(events.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < events.length; i++) expect(events[i]!.time - events[i - 1]!.time).toBeGreaterThanOrEqual(250);
    for (const e of events) expect(Number(e.data['tip'])).toBeGreaterThanOrEqual(Number(e.data['height']));
    // Each tick moved the bar to its height, on its way up to the tip, and nothing pulled it back meanwhile.
    const ticks = [...new Set(seen.filter(([, , source]) => source === 'wallet.progress').map(([h]) => h))];
    expect(ticks).toEqual(events.map((e) => Number(e.data['height'])));
    expect(ticks.some((h) => h < tip)).toBe(true);
    const heights = seen.map(([h]) => h);
    for (let i = 1; i < heights.length; i++) expect(heights[i]!, `bar went from ${heights[i - 1]} to ${heights[i]}`).toBeGreaterThanOrEqual(heights[i - 1]!);
    await screenshot(page, '15-wallet-progress');
  });

  it('draws the fee estimates of the backend on the wallet page, readable at phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${alice.daemon.apiUrl}/#wallet`);
    await page.locator('#fee-chart canvas').waitFor({ timeout: 30_000 });
    const chart = await chartOf(page, 'fees');
    const api = await alice.ok<{ estimates: { target: number; satPerVb: number; source: string }[] }>('GET', '/wallet/fee-estimates');
    expect(chart?.data[0]).toEqual(api.estimates.map((e) => e.target));
    expect(chart?.data[1]).toEqual(api.estimates.map((e) => e.satPerVb));
    expect(chart!.data[1]!.every((v) => v > 0)).toBe(true);
    await page.locator('#fee-note').getByText(/estimates|targets/).waitFor();
    // The chart fits the phone's width (no sideways scrolling of the page).
    const box = await page.locator('#fee-chart canvas').boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await screenshot(page, '14-wallet-fees-phone');
    expect(await violations()).toEqual([]);
  });
});
