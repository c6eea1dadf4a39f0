/**
 * The dashboard's mixnet page in a real Chromium, against a real daemon linked to a real mixnet on
 * loopback: two providers and one mix per layer (test/support/mix-world.ts, MixnetServices on
 * their own Noise/WebSocket listeners, descriptors signed in their logs). The daemon knows only its
 * provider, as `deaddrop start` is told by `DEADDROP_MIX_PROVIDER=<id>@ws://…` (parsed here by the
 * daemon's own mixnetOptions), asks it for the directory, and sends client loops at 5/s so that they
 * come back within seconds.
 *
 * Seen without reloading: the provider link connected, the directory's layers filled, loop rows per
 * route and per hop whose returned loops grow. Bob, a real PeerNode homed at the other provider,
 * meets Alice's node once (an introduction issued into her node's database, as for a drop); from
 * the page's mailbox form, by keyboard, a message reaches him through the mixnet, his answer
 * appears live, and the one-time reply through his reply block reaches him too, after which the
 * page offers no second reply. Then a mix and the provider stop: the loops in
 * flight are counted lost after the loop timeout, the link shows as not connected, and the loss
 * figures on the page are exactly those of GET /node/mixnet. The page is reached and its form used
 * by keyboard, and read at phone width. Screenshots: .tmp/screenshots/3x-mixnet-*.png.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { createNodeFeature } from '../../src/node/feature.js';
import { mixnetOptions } from '../../src/node/mixnet/options.js';
import type { MixnetService } from '../../src/node/mixnet/service.js';
import { toHex } from '../../src/util/bytes.js';
import { issueNodeIntroduction, nodeDbPath, nodeSeed } from '../../src/node/drop-introduction.js';
import { expandDropToken } from '../../src/node/introduction-token.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { MixWorld, stopRelayedPeer, type RelayedPeer } from '../support/mix-world.js';
import { removeParty, startParty, type Party } from '../support/paypub-parties.js';
import { foreignRequests, openWatchedDashboard, screenshot } from '../support/browser.js';
import { waitUntil } from '../support/wait.js';

interface Counts { sent: number; returned: number; lost: number; lossRate: number | null }
interface MixnetStatus {
  home: string | null;
  connected: boolean;
  layers: number[];
  providers: string[];
  cover: { rates: { loop: number; drop: number }; sent: { loop: number; drop: number }; loops: Counts & { pending: number; routes: (Counts & { hops: string[] })[]; hops: (Counts & { address: string })[] } } | null;
}

/** The page's own formatting (mixnet.js `short` and `percent`), to compare its cells with the route's numbers. */
const short = (hex: string): string => `${hex.slice(0, 12)}…`;
const percent = (rate: number | null): string => (rate === null ? '—' : `${(rate * 100).toFixed(0)}%`);

/** A hop as the page's hop table names it: its short id, and whether it is this node's provider. */
const hopLabel = (hex: string, home: string): string => `${short(hex)}${hex === home ? ' · your provider' : ''}`;

/** The cells of every body row of table `id`, as text. */
const rows = (page: Page, id: string): Promise<string[][]> =>
  page.locator(`#${id} tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim())));

/** The row of a loss table that the page should show for `c`, first cell `label`. */
const expectedRow = (label: string, c: Counts): string[] => [label, String(c.sent), String(c.returned), String(c.lost), percent(c.lossRate)];

describe('dashboard mixnet page against a real mixnet, in Chromium', () => {
  const world = new MixWorld();
  let providerA: MixnetService;
  let providerB: MixnetService;
  let bob: RelayedPeer | undefined;
  const bobDir = mkdtempSync(join(tmpdir(), 'dd-mixpage-'));
  let mixes: MixnetService[];
  let node: RegtestNode;
  let alice: Party;
  let browser: Browser;
  let page: Page;
  /** Top-level navigations of the page after it was opened on #mixnet (a reload would count). */
  let loads = 0;
  let violations: () => Promise<string[]>;
  let requests: string[] = [];

  beforeAll(async () => {
    providerA = await world.start({ provider: true, meanDelayMs: 2 });
    providerB = await world.start({ provider: true, meanDelayMs: 2 });
    mixes = [];
    for (const layer of [1, 2, 3]) mixes.push(await world.start({ layer, meanDelayMs: 2 }));
    node = await startRegtestNode();
    // The daemon's environment, as a user would set it for `deaddrop start`.
    const mixnet = mixnetOptions({}, {
      DEADDROP_MIX_PROVIDER: `${toHex(providerA.identityKey)}@${providerA.url!}`,
      DEADDROP_MIX_LOOP_RATE: '5',
      DEADDROP_MIX_DROP_RATE: '1',
      DEADDROP_MIX_MIX_LOOP_RATE: '0',
      DEADDROP_MIX_DELAY_MS: '100',
      DEADDROP_MIX_LOOP_TIMEOUT_MS: '3000',
    });
    alice = await startParty('alice', node, undefined, { features: [createNodeFeature({ host: '127.0.0.1', mixnet })] });
    ({ browser, page, requests, violations } = await openWatchedDashboard(alice));
  });

  afterAll(async () => {
    await browser?.close();
    await alice?.stop();
    await node?.stop();
    if (alice) removeParty(alice);
    if (bob) await stopRelayedPeer(bob);
    await world.close();
    rmSync(bobDir, { recursive: true, force: true });
  });

  it('is reached by keyboard and shows the link, the directory and loop rows filling live', async () => {
    await page.locator('#live').getByText('events: live').waitFor();
    // By keyboard: Tab along the navigation to "Mixnet", Enter.
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate('document.activeElement?.getAttribute("href")') === '#mixnet') break;
    }
    await page.keyboard.press('Enter');
    await page.locator('#mixnet').waitFor({ state: 'visible' });
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) loads++;
    });
    const loadsBefore = loads;

    const status = page.locator('#mix-status');
    await status.getByText(`kept by provider ${short(toHex(providerA.identityKey))} · connected`).waitFor({ timeout: 30_000 });
    await status.getByText('mixes per layer 1 / 1 / 1 · 2 providers · 0 refused').waitFor({ timeout: 30_000 });
    await status.getByText('loops 5/s, drops 1/s', { exact: false }).waitFor();

    // One mix per layer: every loop takes the one route provider → layer 1 → 2 → 3 → provider.
    const pa = toHex(providerA.identityKey);
    const hopsOfRoute = [pa, ...mixes.map((m) => toHex(m.identityKey)), pa].map(short).join(' → ');
    const firstRoute = await waitUntil(async () => {
      const r = await rows(page, 'mix-routes');
      return r.length === 1 && r[0]![0] === hopsOfRoute && Number(r[0]![2]) > 0 ? r[0] : undefined;
    }, 'a route row with returned loops, without reloading', 30_000);
    // …and it keeps filling as loops come back (the open page follows the daemon).
    await waitUntil(async () => {
      const r = await rows(page, 'mix-routes');
      return Number(r[0]![2]) >= Number(firstRoute[2]) + 10 ? true : undefined;
    }, 'more loops back on the page', 30_000);

    const api = await alice.ok<MixnetStatus>('GET', '/node/mixnet');
    expect(api.connected).toBe(true);
    expect(api.layers).toEqual([1, 1, 1]);
    expect(api.cover!.loops.routes.map((r) => r.hops.map(short).join(' → '))).toEqual([hopsOfRoute]);
    // Per hop: the provider and the three mixes, each on every loop.
    const hopCells = await rows(page, 'mix-hops');
    expect(hopCells.map((r) => r[0]).sort()).toEqual(api.cover!.loops.hops.map((h) => hopLabel(h.address, pa)).sort());
    expect(hopCells.map((r) => r[0])).toContain(`${short(pa)} · your provider`);
    expect(hopCells).toHaveLength(4);
    for (const r of hopCells) expect(Number(r[2])).toBeGreaterThan(0);
    // Healthy mixes: loss is a few percent at most (a loop caught by a timer late on a busy machine).
    expect(api.cover!.loops.lossRate!).toBeLessThan(0.2);
    await page.locator('#mix-routes').scrollIntoViewIfNeeded();
    await screenshot(page, '30-mixnet-live');
    expect(loads).toBe(loadsBefore);
  });

  it('sends to a contact from the mailbox form by keyboard, shows the answer live, and replies once through its reply block', async () => {
    // Bob: a real PeerNode homed at the other provider. He meets Alice's node once through an
    // introduction issued into her node's database, as `deaddrop drop send` does for a drop.
    bob = await world.startRelayedPeer({ seed: randomBytes(32), dbPath: join(bobDir, 'bob.sqlite'), home: providerB, dial: true });
    const seed = nodeSeed(WalletKeys.fromMnemonic(alice.mnemonic, 'regtest'));
    const { endpoints } = await alice.ok<{ endpoints: string[] }>('GET', '/node');
    const inv = issueNodeIntroduction({ seed, dbPath: nodeDbPath(alice.datadir), expiresAt: Math.floor(Date.now() / 1000) + 3600, endpoints });
    seed.fill(0);
    const aliceNode = await bob.node.bootstrapFromIntroduction({ pairwiseKey: inv.nodeKey, endpoints: inv.endpoints, token: expandDropToken(inv.token, inv.nodeKey) });
    const bobHex = toHex(bob.node.id);
    // Each learns the other's provider from the replicated logs (mailbox entries).
    const b = bob;
    await waitUntil(() => b.mix.directory.providerOf(aliceNode.node), 'Bob knows Alice\'s provider', 30_000);

    // No contact chosen: the form says so instead of sending anywhere.
    await page.locator('#mix-text').focus();
    await page.keyboard.type('hello Bob, through the mixnet');
    await page.keyboard.press('Enter');
    await page.locator('#error').getByText('choose a contact').waitFor();
    // The contact appeared in the form without a reload (node.peer.* events); chosen by keyboard.
    await page.locator(`#mix-contact option[value="${bobHex}"]`).waitFor({ state: 'attached', timeout: 30_000 });
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate('document.activeElement?.id')).toBe('mix-contact');
    await page.keyboard.press('ArrowDown');
    expect(await page.locator('#mix-contact').inputValue()).toBe(bobHex);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.locator('#mix-send-result').getByText('Sent through the mixnet').waitFor({ timeout: 30_000 });
    const got = await waitUntil(() => b.mix.messages().find((m) => m.direction === 'in' && m.text === 'hello Bob, through the mixnet'), 'Bob receives the message', 30_000);
    expect(got.contact).toBe(toHex(aliceNode.node));
    await page.locator('#mailbox li[data-message].msg-out').getByText('hello Bob, through the mixnet').waitFor();

    // Bob answers; the message appears in Alice's mailbox live, with a one-time reply button.
    b.mix.send(aliceNode.node, 'hi Alice, from Bob');
    const incoming = page.locator('#mailbox li.msg-in', { hasText: 'hi Alice, from Bob' });
    await incoming.waitFor({ timeout: 30_000 });
    await incoming.getByRole('button', { name: /^Reply to the message from / }).focus();
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement?.id')).toBe('mix-text');
    await page.locator('#mix-replying').getByText('Replying once').waitFor();
    await page.keyboard.type('a reply through your reply block');
    await page.keyboard.press('Enter');
    await page.locator('#mix-send-result').getByText('Sent through the mixnet').waitFor({ timeout: 30_000 });
    await waitUntil(() => b.mix.messages().find((m) => m.direction === 'in' && m.text === 'a reply through your reply block'), 'Bob receives the reply', 30_000);
    await page.locator('#mailbox li.msg-out', { hasText: 'a reply through your reply block' }).getByText('reply to').waitFor();
    // The reply block is spent: the message no longer offers a reply.
    await incoming.getByRole('button').waitFor({ state: 'detached' });
    await page.locator('#mailbox').scrollIntoViewIfNeeded();
    await screenshot(page, '31-mixnet-mailbox');
  });

  it('counts the loops in flight as lost when a mix and the provider stop, with the loss figures of GET /node/mixnet', async () => {
    // Layer 2 goes first, so that the loops already past layer 1 die with it; then the provider.
    await world.stop(mixes[1]!);
    await new Promise((r) => setTimeout(r, 1500));
    await world.stop(providerA);
    const loadsBefore = loads;

    // After the loop timeout nothing is in flight any more and the daemon sends no loops without
    // its provider: the counts stand still, and the page must show exactly these.
    const settled = await waitUntil(async () => {
      const s = await alice.ok<MixnetStatus>('GET', '/node/mixnet');
      return !s.connected && s.cover!.loops.pending === 0 ? s : undefined;
    }, 'the loops in flight are lost and the link is down', 30_000);
    const loops = settled.cover!.loops;
    expect(loops.lost).toBeGreaterThan(0);
    expect(loops.lossRate!).toBeGreaterThan(0);

    const status = page.locator('#mix-status');
    await status.getByText(`kept by provider ${short(toHex(providerA.identityKey))} · not connected`).waitFor({ timeout: 10_000 });
    const total = `${loops.lost} of ${loops.returned + loops.lost} lost (${percent(loops.lossRate)}) · 0 in flight`;
    await status.getByText(total, { exact: false }).waitFor({ timeout: 10_000 });
    const wantRoutes = loops.routes.map((r) => expectedRow(r.hops.map(short).join(' → '), r));
    const wantHops = loops.hops.map((h) => expectedRow(hopLabel(h.address, settled.home!), h));
    for (const [id, want] of [['mix-routes', wantRoutes], ['mix-hops', wantHops]] as const) {
      let seen: string[][] = [];
      await waitUntil(async () => {
        seen = await rows(page, id);
        return JSON.stringify(seen) === JSON.stringify(want);
      }, () => `#${id} rows ${JSON.stringify(seen)}, want ${JSON.stringify(want)}`, 10_000);
    }
    await page.locator('#mix-hops').scrollIntoViewIfNeeded();
    await screenshot(page, '32-mixnet-loss');
    expect(loads).toBe(loadsBefore);
  });

  it('reads at phone width, having fetched nothing from elsewhere', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#mix-status').scrollIntoViewIfNeeded();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await screenshot(page, '33-mixnet-phone');

    // All along, the page asked only its own daemon, and broke no rule of its Content-Security-Policy.
    const origin = new URL(alice.daemon.apiUrl).origin;
    expect(requests.filter((u) => u.startsWith(`${origin}/node/mixnet`)).length).toBeGreaterThan(5);
    expect(foreignRequests(requests, origin)).toEqual([]);
    expect(await violations()).toEqual([]);
  });
});
