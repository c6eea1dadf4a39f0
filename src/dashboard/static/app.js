// The dashboard: one page per hash (#overview, #wallet, #drops, #paypub, #node, #mixnet, #storage), kept live by the
// daemon's /events websocket (each event refreshes only what it concerns; no polling, except the
// open mixnet page, whose loop counts have no event: see watchMixnetPage in mixnet.js).
import { connectEvents, get, loadSession, post, upload } from './api.js';
import { bar, el, fill, guarded, pairs, qr, wireFileDrop } from './dom.js';
import { refreshMixnetPage, watchMixnetPage, wireMixnet } from './mixnet.js';
import { onStorageEvent, onStorageProgress, refreshStorage, wireStorage } from './storage.js';
import { oddsChart } from './odds.js';
import { chartFigure, dropCharts, lineChart, resizeCharts } from './charts.js';

const $ = (id) => document.getElementById(id);
const PAGES = ['overview', 'wallet', 'drops', 'paypub', 'node', 'mixnet', 'storage'];

function show(page) {
  const name = PAGES.includes(page) ? page : 'overview';
  for (const p of PAGES) $(p).hidden = p !== name;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  refresh[name]?.();
  watchMixnetPage(name === 'mixnet');
  window.requestAnimationFrame(resizeCharts);
}

// ---------------------------------------------------------------------------------------------
// overview

/** What the sync and rescan bars show; kept in window.dashboardState.progress for the tests. */
const progress = Object.assign((window.dashboardState ??= { charts: {}, progress: {} }).progress, {
  tip: null, wallet: null, scan: null, scanSamples: [], walletSamples: [],
});
/**
 * Events seen per bar value. The overview's fetches are snapshots that may be older than an event
 * that came in while they were in flight; a snapshot is applied only if no event moved that value
 * since the fetch began (otherwise it would pull the bar back).
 */
const eventsSeen = { tip: 0, wallet: 0, scan: 0 };
/** Most throughput samples kept (the chart covers the latest scans). */
const MAX_SAMPLES = 300;
let throughput = null;

function percentOf(value, max) {
  return max > 0 ? Math.min(100, Math.floor((value * 100) / max)) : 0;
}

function renderBar(id, value, tip, what) {
  const bar = $(id);
  const text = $(`${id}-text`);
  if (value === null || tip === null) return;
  bar.max = Math.max(tip, 1);
  bar.value = Math.min(value, bar.max);
  bar.dataset.height = String(value);
  bar.dataset.tip = String(tip);
  fill(text, value >= tip ? `${what} up to the tip (${tip})` : `${what} to ${value} of ${tip} (${percentOf(value, tip)}%, ${tip - value} blocks to go)`);
}

function renderProgress() {
  renderBar('wallet-bar', progress.wallet, progress.tip, 'synced');
  renderBar('scan-bar', progress.scan, progress.tip, 'scanned');
}

/** Blocks per second between consecutive progress events (event times are the daemon's). */
function renderThroughput() {
  const s = progress.scanSamples;
  const xs = [];
  const rates = [];
  for (let i = 1; i < s.length; i++) {
    const dt = (s[i].time - s[i - 1].time) / 1000;
    const dh = s[i].height - s[i - 1].height;
    if (dt <= 0 || dh < 0) continue;
    xs.push(s[i].time / 1000);
    rates.push(dh / dt);
  }
  if (!throughput) {
    throughput = chartFigure('throughput-chart', 'Drop scan throughput: blocks scanned per second, from the watcher\'s progress events while this page is open');
    $('throughput-slot').replaceChildren(throughput.figure);
  }
  if (xs.length === 0) {
    fill(throughput.box, el('p', { class: 'muted' }, 'No scan seen yet: the chart fills while the watcher catches up or rescans.'));
    return;
  }
  lineChart(throughput.box, 'throughput', { xLabel: 'time', yLabel: 'blocks/s', xTime: true, yMin: 0, series: [{ label: 'scan', unit: 'blocks/s' }] }, [xs, rates]);
}

function onScanProgress(e) {
  const height = Number(e.data.height);
  const tip = Number(e.data.tip);
  if (!Number.isFinite(height) || !Number.isFinite(tip)) return;
  progress.scan = height;
  progress.tip = Math.max(progress.tip ?? 0, tip);
  eventsSeen.scan++;
  eventsSeen.tip++;
  progress.scanSamples.push({ time: e.time, height, tip });
  if (progress.scanSamples.length > MAX_SAMPLES) progress.scanSamples.splice(0, progress.scanSamples.length - MAX_SAMPLES);
  renderProgress();
  renderThroughput();
}

/** True between a `wallet.progress` and the `wallet.changed` that ends its catch-up. */
let walletCatchingUp = false;

/** The wallet bar's height, from `wallet.progress` during a catch-up and `wallet.changed` after each change. */
function onWalletHeight(height, time, source) {
  if (typeof height !== 'number') return;
  // A change notice from the mempool during a catch-up carries the height before it: not the end of it.
  if (source === 'wallet.changed' && walletCatchingUp && height < (progress.wallet ?? 0)) return;
  walletCatchingUp = source === 'wallet.progress';
  progress.wallet = height;
  eventsSeen.wallet++;
  progress.walletSamples.push({ time, height, source });
  if (progress.walletSamples.length > MAX_SAMPLES) progress.walletSamples.shift();
  $('wallet-bar').dataset.source = source;
  renderProgress();
}

/** A throttled `wallet.progress` tick (at most 4 a second): the block applied and the tip it walks to. */
function onWalletProgress(e) {
  const tip = Number(e.data?.tip);
  if (Number.isFinite(tip)) {
    progress.tip = Math.max(progress.tip ?? 0, tip);
    eventsSeen.tip++;
  }
  onWalletHeight(e.data?.height, e.time, 'wallet.progress');
}

async function refreshOverview() {
  const before = { ...eventsSeen };
  const s = await get('/status');
  const tip = s.tip ? `${s.tip.height} (${s.tip.hash.slice(0, 16)}…)` : 'unknown';
  // The wallet's own height (null without a wallet) drives the sync bar towards the tip.
  const walletHeight = await get('/wallet/balance').then((b) => b.height, () => null);
  // Where the drop watcher's index reaches: the scan bar's value until its first progress event.
  const indexed = await get('/index/info').then((i) => i.indexedTip, () => null);
  pairs($('status'), [
    ['Network', s.network], ['Backend', s.backend?.kind ?? '—'], ['Tip', tip], ['Chain synced', s.synced ? 'yes' : 'no'],
    ['Uptime', `${s.uptimeSeconds} s`],
    ['Peer node', await get('/node').then((n) => `${n.id.slice(0, 16)}… · ${(n.connected ?? []).length} connected · ${n.contacts} contacts`, () => 'off')],
  ]);
  // Assigned, not maximised (a reorg or a rescan moves these heights down), unless an event moved
  // the value while the fetches were in flight: then the event is the newer word.
  if (s.tip && eventsSeen.tip === before.tip) progress.tip = s.tip.height;
  // During a catch-up the wallet's events run ahead of its balance (which moves when the catch-up
  // ends): the fetched height would pull the bar back. wallet.changed (a reorg too) ends that.
  if (walletHeight === null) fill($('wallet-bar-text'), 'no unlocked wallet');
  else if (!walletCatchingUp && eventsSeen.wallet === before.wallet) progress.wallet = walletHeight;
  if (indexed !== null && indexed !== undefined) {
    if (eventsSeen.scan === before.scan) progress.scan = indexed;
  } else if (progress.scan === null) fill($('scan-bar-text'), 'no drop watcher on this backend (or nothing scanned yet)');
  renderProgress();
  renderThroughput();
}

// ---------------------------------------------------------------------------------------------
// wallet

async function refreshWallet() {
  const b = await get('/wallet/balance');
  pairs($('balance'), [['Confirmed', `${b.confirmed} sat`], ['Unconfirmed', `${b.unconfirmed} sat`], ['Immature', `${b.immature} sat`], ['Height', b.height]]);
  const u = await get('/wallet/utxos');
  const rows = (u.utxos ?? []).map((c) => el('tr', {}, el('td', { class: 'mono', 'data-label': 'Outpoint' }, `${c.txid}:${c.vout}`), el('td', { class: 'num', 'data-label': 'Sat' }, c.value ?? c.sats ?? ''), el('td', { 'data-label': 'Height' }, c.height ?? 'mempool')));
  fill($('utxos').tBodies[0], ...rows);
  const h = await get('/wallet/history?limit=50');
  const history = h.history.map((t) => el('tr', {},
    el('td', { class: 'mono', 'data-label': 'Transaction' }, t.txid),
    el('td', { class: 'num', 'data-label': 'Sat' }, `${t.net.startsWith('-') ? '' : '+'}${t.net} sat`),
    el('td', { 'data-label': 'Status' }, t.status === 'confirmed' ? `height ${t.height}` : t.replacedBy ? `${t.status} by ${t.replacedBy}` : t.status)));
  fill($('history').tBodies[0], ...history);
  await refreshFees();
}

let fees = null;

/** The backend's fee estimate per confirmation target; fallback values are said in the caption. */
async function refreshFees() {
  const { estimates } = await get('/wallet/fee-estimates');
  if (!fees) {
    fees = chartFigure('fee-chart', 'Fee rate (sat/vB) the backend estimates for confirmation within n blocks');
    $('fee-slot').replaceChildren(fees.figure, el('p', { id: 'fee-note', class: 'muted' }));
  }
  const fromNode = estimates.filter((e) => e.source === 'node').length;
  fill($('fee-note'), fromNode === estimates.length
    ? 'All estimates come from the backend.'
    : `${estimates.length - fromNode} of ${estimates.length} targets have no estimate from the backend (common on regtest): they show the daemon's default rate.`);
  lineChart(fees.box, 'fees', { xLabel: 'target (blocks)', yLabel: 'sat/vB', xLog: true, yMin: 0, series: [{ label: 'estimate', unit: 'sat/vB' }] },
    [estimates.map((e) => e.target), estimates.map((e) => e.satPerVb)]);
}

function sendBody(form) {
  const f = new FormData(form);
  const body = { address: String(f.get('address')).trim(), sats: String(f.get('sats')).trim() };
  const rate = String(f.get('feeRate') ?? '').trim();
  if (rate) body.feeRate = Number(rate);
  return body;
}

function wireWallet() {
  $('new-address').addEventListener('click', () => guarded(async () => {
    const { address } = await post('/wallet/address');
    fill($('address-box'), el('p', { class: 'mono', 'data-address': address }, address), qr(`bitcoin:${address}`, `QR code of ${address}`));
  }));
  // The preview builds an unsigned PSBT (its fee is exact), shows it for export, then frees its coins.
  $('send-preview').addEventListener('click', () => guarded(async () => {
    const form = $('send-form');
    if (!form.reportValidity()) return;
    const p = await post('/wallet/psbt/create', sendBody(form));
    await post('/wallet/psbt/abandon', { txid: p.txid });
    const blob = new Blob([p.psbt], { type: 'text/plain' });
    const link = el('a', { href: URL.createObjectURL(blob), download: `${p.txid}.psbt` }, 'Export this PSBT (base64)');
    fill($('send-result'), `Fee ${p.fee} sat for ${p.vsize} vB (${(Number(p.fee) / p.vsize).toFixed(1)} sat/vB). `, link, ' (exported PSBTs must be created again to reserve coins)');
  }));
  $('send-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      const r = await post('/wallet/send', sendBody(e.target));
      fill($('send-result'), `Sent ${r.txid}, fee ${r.fee} sat`);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// invites and drops

const drops = new Map();
/** Drops a reorg took out of a block, by id: shown as retracted until confirmed again. */
const retracted = new Set();

function statusText(d) {
  if (d.status === 'reorged') return 'retracted (reorg)';
  if (d.status === 'pending' && retracted.has(d.id)) return 'pending again (reorg retracted it)';
  return d.status;
}

function renderDrops() {
  const rows = [...drops.values()].sort((a, b) => (b.firstSeen ?? 0) - (a.firstSeen ?? 0)).map((d) =>
    el('tr', { 'data-drop': d.txid, 'data-status': d.status },
      el('td', { class: `status-${d.status}`, 'data-retracted': retracted.has(d.id) ? '1' : null, 'data-label': 'Status' }, statusText(d)),
      el('td', { class: 'mono', 'data-label': 'Transaction' }, d.txid), el('td', { 'data-label': 'Height' }, d.status === 'confirmed' ? d.height ?? '—' : '—'),
      el('td', { 'data-label': 'Message' }, d.message ?? '')));
  fill($('drop-table').tBodies[0], ...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No drops yet.'))]));
}

async function refreshDrops() {
  const r = await get('/drops');
  drops.clear();
  for (const d of r.drops ?? []) drops.set(d.id, d);
  renderDrops();
}

function wireDrops() {
  $('invite-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      const label = String(new FormData(e.target).get('label') ?? '').trim();
      const inv = await get(`/invite${label ? `?label=${encodeURIComponent(label)}` : ''}`);
      fill($('invite-box'), el('p', { class: 'mono', id: 'invite-uri' }, inv.uri), qr(inv.uri, 'QR code of the invite'));
    });
  });
  $('drop-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      const f = new FormData(e.target);
      const endpoints = String(f.get('endpoints') ?? '').split(',').map((x) => x.trim()).filter(Boolean);
      // Empty: the daemon announces our mixnet provider (no IP address), never where our node
      // listens; a direct endpoint goes in only when typed here.
      const body = { recipient: String(f.get('recipient')).trim(), ...(endpoints.length > 0 ? { endpoints } : {}) };
      const message = String(f.get('message') ?? '').trim();
      if (message) body.message = message;
      const rate = String(f.get('feeRate') ?? '').trim();
      if (rate) body.feeRate = Number(rate);
      const r = await post('/drops/send', body);
      fill($('drop-result'), `Drop sent in ${r.txid} (fee ${r.fee} sat)`);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// PayPub

/** Pledged sat counted towards the threshold by block height: [heights, cumulative sat, threshold]. */
function pledgeSeries(s, threshold) {
  const confirmed = s.pledges.filter((p) => typeof p.height === 'number').sort((x, y) => x.height - y.height);
  const start = s.anchor?.height ?? (confirmed.length ? confirmed[0].height - 1 : null);
  if (start === null) return null;
  const byHeight = new Map([[start, 0]]);
  let total = 0;
  for (const p of confirmed) {
    total += Number(p.value ?? 0);
    byHeight.set(Math.max(start, p.height), total);
  }
  const end = Math.max(s.tip, start + 1);
  if (!byHeight.has(end)) byHeight.set(end, total);
  const xs = [...byHeight.keys()].sort((x, y) => x - y);
  return [xs, xs.map((h) => byHeight.get(h)), xs.map(() => threshold)];
}

/** `draws` collects the drawing, run once the card is in the page (uPlot measures its box). */
function pledgeChart(s, threshold, draws) {
  const data = pledgeSeries(s, threshold);
  if (!data) return el('p', { class: 'muted' }, 'The pledge chart starts once the anchor confirms.');
  const { figure, box } = chartFigure(`pledges-${s.id.slice(0, 16)}`, `Confirmed pledges (sat) by block height towards the threshold of ${threshold} sat`);
  draws.push(() => lineChart(box, `pledges:${s.id}`, {
    xLabel: 'block height', yLabel: 'sat', yMin: 0,
    series: [{ label: 'pledged', unit: 'sat', step: true }, { label: 'threshold', unit: 'sat', dash: [6, 4] }],
  }, data));
  return figure;
}

/** The buyer's refund: when it becomes possible, then the refund transactions; a button to broadcast it. */
function refundBox(s) {
  const own = s.pledges.filter((p) => p.own);
  const open = own.filter((p) => !p.spentBy);
  const refunds = s.refunds.filter((r) => r.own !== false);
  if (own.length === 0 && refunds.length === 0) return null;
  const openSats = open.reduce((t, p) => t + Number(p.value ?? 0), 0);
  const textId = `refund-text-${s.id.slice(0, 16)}`;
  let state;
  let text;
  if (refunds.length > 0) {
    state = refunds.some((r) => r.status === 'confirmed') ? 'confirmed' : 'broadcast';
    text = `Refunded: ${refunds.map((r) => `${r.txid} (${r.status}${r.height ? ` at height ${r.height}` : ''})`).join(', ')}`;
  } else if (open.length === 0) {
    state = 'none';
    text = 'Your pledges were spent by the seller\'s claim: nothing to refund.';
  } else if (s.mode === 'private') {
    state = 'waiting';
    text = `Refundable after the HTLC's delay if the seller never collects (${openSats} sat).`;
  } else if (s.tip >= s.deadlineHeight) {
    state = 'available';
    text = `The seller never collected: your ${openSats} sat can be refunded now (deadline ${s.deadlineHeight}, tip ${s.tip}). The daemon broadcasts it by itself; the button does it now.`;
  } else {
    state = 'waiting';
    text = `If the seller never collects, your ${openSats} sat can be refunded from height ${s.deadlineHeight} (tip ${s.tip}: ${s.deadlineHeight - s.tip} blocks to go).`;
  }
  const button = el('button', { type: 'button', 'aria-describedby': textId, class: 'refund' }, 'Broadcast refund');
  button.disabled = state !== 'available';
  const out = el('output', { class: 'refund-result' });
  button.addEventListener('click', () => guarded(async () => {
    const r = await post(`/paypub/sales/${s.id}/refund`, {});
    fill(out, r.refunds.map((x) => (x.txid ? `Refund broadcast in ${x.txid}` : `Refund refused: ${x.error}`)).join('; ') || 'Nothing to refund.');
  }));
  return el('div', { class: 'refund-box', 'data-refund': state },
    el('h4', {}, 'Refund'), el('p', { id: textId }, text), ...(state === 'available' || state === 'waiting' ? [button] : []), out);
}

async function saleCard(id, draws) {
  const s = await get(`/paypub/sales/${id}`);
  const threshold = Number(s.threshold ?? s.price ?? 0);
  const counted = Number(s.pledged?.counted ?? s.pledges.reduce((t, p) => t + Number(p.value ?? 0), 0));
  const card = el('article', { class: 'sale', 'data-sale': id, 'data-phase': s.phase },
    el('h3', {}, `${s.fileName ?? 'sale'} · ${s.role} · ${s.phase}`),
    el('p', { class: 'mono' }, id),
    // A seller counts every confirmed pledge; a buyer's daemon knows its own pledges only.
    el('p', {}, s.role === 'seller'
      ? `Pledged ${counted} of ${threshold} sat (${s.pledges.length} pledges)`
      : `Your pledges: ${counted} sat towards the threshold of ${threshold} sat`),
    bar(counted, threshold, `pledges towards the threshold of sale ${id.slice(0, 8)}`));
  card.append(pledgeChart(s, threshold, draws),
    el('p', {}, `Keys known ${s.keys.known}/${s.keys.total}; sample ${s.sample.revealed ? `revealed (${s.sample.indices.length} chunks)` : 'not yet revealed'}`),
    oddsChart(s.keys.total, s.sample.indices.length || Number(s.sampleSize ?? 0)));
  const actions = el('p');
  if (s.role === 'seller') {
    const offer = el('button', { type: 'button' }, 'Show offer');
    offer.addEventListener('click', () => guarded(async () => {
      const o = await get(`/paypub/sales/${id}/offer`);
      const text = o.offer ?? JSON.stringify(o);
      card.append(el('p', { class: 'mono offer' }, text), qr(text, 'QR code of the offer'));
    }));
    const claim = el('button', { type: 'button' }, 'Claim');
    claim.addEventListener('click', () => guarded(() => post(`/paypub/sales/${id}/claim`, {})));
    actions.append(offer, claim);
  } else {
    const unlock = el('button', { type: 'button' }, 'Unlock');
    unlock.addEventListener('click', () => guarded(async () => {
      const r = await post(`/paypub/sales/${id}/unlock`, {});
      card.append(el('p', {}, `Unlocked to ${r.path ?? r.out ?? 'the unlocked folder'}`));
    }));
    // Unlocking needs every key: offered once they are all known and the file is not written yet.
    if (s.keys.known >= s.keys.total && !s.unlocked) actions.append(unlock);
    if (s.unlocked) actions.append(el('a', { href: `/paypub/sales/${id}/unlocked`, download: s.fileName ?? 'unlocked', class: 'download' }, 'Download'));
    const refund = refundBox(s);
    if (refund) card.append(refund);
  }
  card.append(actions);
  return card;
}

async function refreshPaypub() {
  const { sales } = await get('/paypub/sales');
  const draws = [];
  const cards = await Promise.all(sales.map((s) => saleCard(s.id, draws)));
  dropCharts('pledges:');
  fill($('sales'), ...(cards.length ? cards : [el('p', { class: 'muted' }, 'No sales yet.')]));
  for (const draw of draws) draw();
}

async function publishFile(file) {
  const f = new FormData($('publish-form'));
  const q = new URLSearchParams({ name: file.name, price: String(f.get('price')).trim() });
  const threshold = String(f.get('threshold') ?? '').trim();
  if (threshold) q.set('threshold', threshold);
  const r = await upload(`/paypub/publish/upload?${q}`, await file.arrayBuffer());
  fill($('publish-result'), el('span', { class: 'mono' }, `Published ${r.id ?? ''}`));
  await refreshPaypub();
}

function wirePaypub() {
  wireFileDrop($('dropzone'), $('publish-file'), publishFile);
  $('pledge-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      const f = new FormData(e.target);
      const offer = String(f.get('offer')).trim();
      const r = e.submitter?.value === 'buy'
        ? await post('/paypub/buy', { offer })
        : await post('/paypub/pledge', { offer, sats: String(f.get('sats')).trim() });
      fill($('pledge-result'), `Done: ${r.txid ?? JSON.stringify(r)}`);
      await refreshPaypub();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// node

const alerts = [];

async function refreshNode() {
  const n = await get('/node');
  pairs($('node-info'), [['Node id', n.id], ['Endpoints', (n.endpoints ?? []).join(', ')], ['Connected', (n.connected ?? []).length], ['Contacts', n.contacts], ['Feeds', n.feeds]]);
  const c = await get('/node/contacts');
  const contacts = (c.contacts ?? []).map((x) => el('li', { class: 'mono' }, `${x.node ?? x.key ?? JSON.stringify(x)}${x.connected ? ' · connected' : ''}`));
  fill($('contacts'), ...(contacts.length ? contacts : [el('li', { class: 'muted' }, 'No contacts yet: they come from the introductions (drops) you receive and send.')]));
  const w = await get('/node/whereabouts');
  pairs($('whereabouts'), [
    ['Ours', w.record ? `#${w.record.seq}: ${(w.record.endpoints ?? []).join(', ') || 'no endpoints'} (expires ${new Date(w.record.expiresAt).toISOString()})` : 'none yet'],
    ...(w.contacts ?? []).map((c) => [`${c.node.slice(0, 12)}…`, `${(c.endpoints ?? []).join(', ') || 'unknown'}${c.connected ? ' · connected' : ''}`]),
  ]);
  const f = await get('/node/feeds');
  fill($('feeds'), ...(f.feeds ?? []).map((x) => {
    const show = el('button', { type: 'button', 'aria-label': `Show the entries of feed ${x.author}` }, 'Entries');
    show.addEventListener('click', () => guarded(async () => {
      const log = await get(`/node/log/${x.author}`);
      fill($('entries'), el('h3', {}, `Feed ${x.author.slice(0, 16)}…`),
        el('ol', {}, ...(log.entries ?? []).map((e) => el('li', {}, `#${e.seq} ${e.header?.type ?? ''}: ${e.text ?? e.body}`))));
    }));
    return el('li', { class: x.forked ? 'mono status-reorged' : 'mono' }, `${x.author} · ${x.length} ${x.length === 1 ? 'entry' : 'entries'}${x.forked ? ' · FORKED' : ''} `, show);
  }));
  fill($('alerts'), ...(alerts.length ? alerts.map((a) => el('li', {}, a)) : [el('li', { class: 'muted' }, 'No fork alerts while this page is open.')]));
}

// ---------------------------------------------------------------------------------------------

const refresh = {
  overview: () => guarded(refreshOverview),
  wallet: () => guarded(refreshWallet),
  drops: () => guarded(refreshDrops),
  paypub: () => guarded(refreshPaypub),
  node: () => guarded(refreshNode),
  mixnet: () => guarded(refreshMixnetPage),
  storage: () => guarded(refreshStorage),
};

function current() {
  return location.hash.slice(1) || 'overview';
}

function onEvent(e) {
  const page = current();
  if (e.type.startsWith('drop.')) {
    // Show the new status at once from the event, then fetch the full record (message, endpoints).
    const d = e.data ?? {};
    if (typeof d.dropId === 'string') {
      if (e.type === 'drop.reorged') retracted.add(d.dropId);
      if (e.type === 'drop.confirmed') retracted.delete(d.dropId);
      drops.set(d.dropId, { ...(drops.get(d.dropId) ?? { firstSeen: e.time }), id: d.dropId, txid: d.txid, height: d.height ?? null, status: e.type.slice('drop.'.length) });
      renderDrops();
    }
    refresh.drops();
  }
  if (e.type === 'watch.progress') onScanProgress(e);
  if (e.type === 'wallet.changed') onWalletHeight(e.data?.height, e.time, 'wallet.changed');
  if (e.type === 'wallet.progress') onWalletProgress(e);
  if (e.type === 'storage.progress') onStorageProgress(e);
  if (e.type.startsWith('storage.')) onStorageEvent(e, page === 'storage');
  if ((e.type === 'node.message.received' || e.type.startsWith('node.peer.')) && page === 'mixnet') refresh.mixnet();
  if (e.type === 'chain.tip' && typeof e.data?.height === 'number') {
    progress.tip = Math.max(progress.tip ?? 0, e.data.height);
    renderProgress();
  }
  if (e.type === 'node.fork.detected') alerts.unshift(`Fork detected: ${JSON.stringify(e.data)}`);
  if (e.type.startsWith('chain.') && page === 'overview') refresh.overview();
  if ((e.type === 'wallet.changed' || e.type === 'chain.tip') && page === 'wallet') refresh.wallet();
  if ((e.type.startsWith('paypub.') || e.type === 'chain.tip') && page === 'paypub') refresh.paypub();
  if (e.type.startsWith('node.') && page === 'node') refresh.node();
  if (e.type.startsWith('node.peer.') && page === 'overview') refresh.overview();
}

/** Without an unlocked wallet most pages are off: say so once, at the top, with what to do. */
async function noticeLockedWallet() {
  const locked = await get('/wallet/balance').then(() => false, () => true);
  const notice = $('notice');
  notice.hidden = !locked;
  if (locked) {
    fill(notice, 'No unlocked wallet: the wallet, PayPub, the peer node, the mixnet and storage are off. Run ',
      el('code', {}, 'deaddrop init'), ' once, then restart the daemon with ', el('code', {}, 'DEADDROP_PASSPHRASE'), ' set (or ',
      el('code', {}, 'DEADDROP_PASSPHRASE_FILE'), ').');
  }
}

async function start() {
  const signedIn = await loadSession().catch(() => false);
  if (!signedIn) {
    $('signin').hidden = false;
    return;
  }
  $('nav').hidden = false;
  $('logout').addEventListener('click', () => guarded(async () => {
    await post('/dashboard/logout');
    location.reload();
  }));
  wireWallet();
  wireDrops();
  wirePaypub();
  wireMixnet();
  wireStorage();
  window.addEventListener('hashchange', () => show(current()));
  connectEvents(onEvent, (state) => fill($('live'), `events: ${state}`));
  await guarded(refreshDrops);
  await noticeLockedWallet();
  show(current());
}

start();
