/**
 * The dashboard in a real Chromium against real daemons on a regtest btcd: the page without a
 * cookie shows only how to sign in; `deaddrop dashboard` prints a one-time URL that signs the
 * browser in; an invite shows with its QR code; a drop sent by a second daemon appears as pending
 * and then confirmed after a block, without a reload; a page of another origin cannot use the
 * API (not even the cookie-authenticated websocket). Screenshots: .tmp/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { nodeIssuer } from '../../src/node/drop-introduction.js';
import { createDropFeature } from '../../src/deaddrop/feature.js';
import { createPaypubFeature } from '../../src/paypub/feature.js';
import { createNodeFeature } from '../../src/node/feature.js';
import { fundParty, removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { runCli } from '../support/cli.js';
import { launchBrowser, screenshot } from '../support/browser.js';

const features = () => [createDropFeature({ issuer: nodeIssuer }), createPaypubFeature({ pollIntervalMs: 500 }), createNodeFeature({ host: '127.0.0.1' })];

describe('dashboard in Chromium', () => {
  let node: RegtestNode;
  let alice: Party;
  let bob: Party;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let inviteUri = '';

  beforeAll(async () => {
    node = await startRegtestNode();
    alice = await startParty('alice', node, undefined, { features: features() });
    bob = await startParty('bob', node, undefined, { features: features() });
    await fundParty(node, bob, 500_000n);
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    page = await context.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await alice?.stop();
    await bob?.stop();
    await node?.stop();
    removeParty(alice);
    removeParty(bob);
  });

  it('without the cookie shows how to sign in and nothing else', async () => {
    await page.goto(`${alice.daemon.apiUrl}/`);
    await page.locator('#signin').waitFor({ state: 'visible' });
    expect(await page.locator('#nav').isVisible()).toBe(false);
    expect(await page.locator('.page:visible').count()).toBe(0);
    expect(await page.locator('#signin').innerText()).toContain('deaddrop dashboard');
    await screenshot(page, '01-signed-out');
  });

  it('signs in through the one-time URL that `deaddrop dashboard` prints', async () => {
    const r = await runCli(['--datadir', alice.datadir, '--network', 'regtest', 'dashboard', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { url } = JSON.parse(r.stdout) as { url: string };
    expect(url).toMatch(/\/dashboard\/login\?code=/);
    expect(url).not.toContain(readFileSync(join(alice.datadir, 'api.token'), 'utf8').trim());
    await page.goto(url);
    expect(new URL(page.url()).pathname).toBe('/');
    const tip = await node.rpc<number>('getblockcount');
    await page.locator('#status dd').getByText(`${tip} (`).waitFor();
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    await screenshot(page, '02-overview');
    // The link works once: opened again (say from the shell history) it signs nobody in.
    const other = await browser.newContext();
    const again = await (await other.newPage()).goto(url);
    expect(again?.status()).toBe(401);
    expect(await other.cookies()).toHaveLength(0);
    await other.close();
  });

  it('creates an invite and shows it with its QR code', async () => {
    await page.goto(`${alice.daemon.apiUrl}/#drops`);
    await page.getByLabel('Label').fill('shop');
    await page.getByRole('button', { name: 'Show invite' }).click();
    const img = page.locator('#invite-box img.qr');
    await img.waitFor();
    await page.waitForFunction("document.querySelector('#invite-box img.qr')?.naturalWidth > 0");
    inviteUri = await page.locator('#invite-uri').innerText();
    const expected = await alice.ok<{ uri: string }>('GET', '/invite?label=shop');
    expect(inviteUri).toBe(expected.uri);
    expect(await img.getAttribute('data-qr')).toBe(inviteUri);
    expect(await img.evaluate((e) => (e as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(20);
    await screenshot(page, '03-invite-qr');
  });

  it('shows a drop from a second daemon as pending, then confirmed after a block, without reloading', async () => {
    await page.evaluate('window.sameDocument = true');
    const sent = await bob.ok<{ txid: string }>('POST', '/drops/send', { recipient: inviteUri, endpoints: ['ws://192.0.2.1:9000'], message: 'hello from bob' });
    const row = page.locator(`tr[data-drop="${sent.txid}"]`);
    await page.locator(`tr[data-drop="${sent.txid}"][data-status="pending"]`).waitFor({ timeout: 30_000 });
    await row.getByText('hello from bob').waitFor();
    await screenshot(page, '04-drop-pending');
    const [hash] = await node.mine(1);
    await page.locator(`tr[data-drop="${sent.txid}"][data-status="confirmed"]`).waitFor({ timeout: 30_000 });
    await screenshot(page, '05-drop-confirmed');
    // A reorg retracts it on the page; mined again, it is confirmed again.
    await node.invalidateBlock(hash!);
    await alice.waitFor('drop.reorged', (e) => e.data.txid === sent.txid);
    // The transaction went back to the mempool: retracted from its block, pending again.
    await page.locator(`tr[data-drop="${sent.txid}"] td[data-retracted]`).getByText(/reorg/).waitFor({ timeout: 30_000 });
    await screenshot(page, '06-drop-retracted');
    await node.mine(2);
    await page.locator(`tr[data-drop="${sent.txid}"][data-status="confirmed"]`).waitFor({ timeout: 30_000 });
    expect(await page.evaluate('window.sameDocument')).toBe(true);
  });

  it('shows the wallet at phone width: balance, a fresh address with its QR code, a fee preview with an exported PSBT', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${bob.daemon.apiUrl}/#wallet`);
    // bob's dashboard needs its own sign-in: cookies are per daemon (named after the port).
    await page.locator('#signin').waitFor({ state: 'visible' });
    await page.goto(`${alice.daemon.apiUrl}/#wallet`);
    await page.locator('#balance dd').first().waitFor();
    await page.getByRole('button', { name: 'New receive address' }).click();
    const address = await page.locator('#address-box [data-address]').getAttribute('data-address');
    expect(address).toMatch(/^bcrt1/);
    await page.waitForFunction("document.querySelector('#address-box img.qr')?.naturalWidth > 0");
    // Fund alice, then preview a send: the exact fee of an unsigned PSBT, offered for export.
    await node.fund(address!, 200_000n, { confirm: true });
    await page.locator('#balance').getByText('200000 sat').waitFor({ timeout: 30_000 });
    // The history shows the funding as incoming and confirmed at its height.
    await page.locator('#history tbody tr').filter({ hasText: '+200000 sat' }).filter({ hasText: /height [0-9]+/ }).waitFor({ timeout: 30_000 });
    await page.locator('#send-form').getByLabel('To address').fill(address!);
    await page.locator('#send-form').getByLabel('Amount (sat)').fill('10000');
    await page.locator('#send-form').getByLabel('Fee rate (sat/vB)').fill('2');
    await page.getByRole('button', { name: 'Preview fee' }).click();
    await page.locator('#send-result').getByText(/^Fee [0-9]+ sat for [0-9]+ vB/).waitFor();
    expect(await page.locator('#send-result a[download$=".psbt"]').count()).toBe(1);
    // The preview freed its coins again.
    expect((await alice.ok<{ reservations: unknown[] }>('GET', '/wallet/reservations')).reservations).toEqual([]);
    await screenshot(page, '07-wallet-phone');
  });

  it('sends a drop from the page to another daemon\'s invite', async () => {
    const { uri } = await bob.ok<{ uri: string }>('GET', '/invite');
    await page.goto(`${alice.daemon.apiUrl}/#drops`);
    await page.getByLabel('Recipient invite').fill(uri);
    // Alice has no mixnet provider here: she gives her node's endpoint explicitly (the page no
    // longer puts it in on its own).
    const { endpoints } = await alice.ok<{ endpoints: string[] }>('GET', '/node');
    await page.locator('#drop-form').getByLabel(/Where to reach you/).fill(endpoints[0]!);
    await page.locator('#drop-form').getByLabel('Message').fill('hello back from alice');
    await page.locator('#drop-form').getByLabel('Fee rate (sat/vB)').fill('2');
    await page.getByRole('button', { name: 'Send drop' }).click();
    const text = await page.locator('#drop-result').getByText(/^Drop sent in [0-9a-f]{64}/).innerText();
    const txid = /[0-9a-f]{64}/.exec(text)![0];
    const got = await bob.waitFor('drop.pending', (e) => e.data.txid === txid);
    expect(got.data.txid).toBe(txid);
  });

  it('shows the peer node: its id, its whereabouts, its feed and the entries in it', async () => {
    await page.goto(`${alice.daemon.apiUrl}/#node`);
    const info = await alice.ok<{ id: string }>('GET', '/node');
    await page.locator('#node-info dd').getByText(info.id).waitFor();
    await alice.ok('POST', '/node/log', { type: 'post', text: 'hello from the dashboard test' });
    await page.reload();
    await page.locator('#whereabouts dd').first().waitFor();
    await page.getByRole('button', { name: /Show the entries of feed/ }).first().click();
    await page.locator('#entries').getByText('hello from the dashboard test').waitFor();
    await screenshot(page, '09-node');
    // The mixnet page shows the same roles and cover settings as the API.
    const mix = await alice.ok<{ provider: boolean; layer: number; cover: { rates: { loop: number } } | null }>('GET', '/node/mixnet');
    await page.getByRole('link', { name: 'Mixnet' }).click();
    await page.locator('#mix-status dt', { hasText: 'Roles' }).waitFor();
    const roles = await page.locator('#mix-status dd').first().textContent();
    if (mix.provider || mix.layer > 0) expect(roles).toMatch(/^client, /);
    else expect(roles).toBe('client');
    const cover = mix.cover ? `loops ${mix.cover.rates.loop}/s` : 'off';
    await page.locator('#mix-status dd', { hasText: cover }).waitFor();
    await screenshot(page, '09-mixnet');
  });

  it('refuses a page of another origin, cookie or not', async () => {
    const api = alice.daemon.apiUrl;
    // A page on another port of the same host: same-site, so the Strict cookie travels with its
    // requests; only the Origin check stands between it and the API.
    const html = `<!doctype html><title>foreign</title><script>
      window.results = {};
      fetch(${JSON.stringify(`${api}/status`)}, { credentials: 'include' }).then(() => (results.get = 'read'), () => (results.get = 'blocked'));
      fetch(${JSON.stringify(`${api}/wallet/address`)}, { method: 'POST', mode: 'no-cors', credentials: 'include' }).then(() => (results.post = 'sent'), () => (results.post = 'failed'));
      const ws = new WebSocket(${JSON.stringify(api.replace('http:', 'ws:') + '/events')});
      ws.onopen = () => (results.ws = 'open');
      ws.onerror = () => (results.ws = results.ws ?? 'refused');
    </script>`;
    const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const before = await alice.ok<{ confirmed: string }>('GET', '/wallet/balance');
    try {
      const foreign = await context.newPage();
      const seen: { url: string; status: number }[] = [];
      foreign.on('response', (res) => { if (res.url().startsWith(api)) seen.push({ url: res.url(), status: res.status() }); });
      await foreign.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await foreign.waitForFunction('window.results.get && window.results.post && window.results.ws', undefined, { timeout: 15_000 });
      const results = await foreign.evaluate('window.results');
      expect(results).toEqual({ get: 'blocked', post: 'sent', ws: 'refused' });
      // The daemon itself refused them (403 from the Origin check), not only the browser's CORS.
      const statuses = seen.map((s) => s.status);
      expect(statuses.length).toBeGreaterThan(0);
      for (const s of seen) expect(s.status, s.url).toBe(403);
      await screenshot(foreign, '08-foreign-origin');
      await foreign.close();
    } finally {
      server.close();
    }
    expect((await alice.ok<{ confirmed: string }>('GET', '/wallet/balance')).confirmed).toBe(before.confirmed);
  });
});
