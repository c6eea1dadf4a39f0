// The storage page: this node's storage server (quota, used, free), the files it keeps with their
// last check and share health per server, check and repair with a live bar, and putting a file.
// Progress comes from `storage.progress` events carrying the operation id this page chose.
// Read capabilities are secrets: one is shown only when the user asks to reveal it.
import { get, post, uploadWithProgress } from './api.js';
import { bytes, el, fill, guarded, newOpId, pairs, wireFileDrop } from './dom.js';

const $ = (id) => document.getElementById(id);

/** What the tests read: the progress events of this page's operations and the bars' last states. */
const state = ((window.dashboardState ??= { charts: {}, progress: {} }).storage ??= { progress: [], checks: {} });

/** Operations this page started, by op id: { kind: 'put' | 'check' | 'repair', label }. */
const ops = new Map();
/** The latest check result per storage index (from the answer or a storage.check event). */
const lastCheck = new Map();
/** Storage indexes whose read capability the user chose to reveal. */
const revealed = new Set();

const PHASES = {
  // The peers backend streams: a put hashes every segment, then sends it; a repair regenerates segment by segment.
  send: 'sent to the daemon', encode: 'segments encrypted and hashed', upload: 'segments sent to the servers', download: 'segments fetched',
  verify: 'shares verified', repair: 'segments regenerated',
};

function setBar(id, done, total, text, source) {
  const bar = $(id);
  bar.max = Math.max(Number(total), 1);
  bar.value = Math.min(Number(done), bar.max);
  bar.dataset.done = String(done);
  bar.dataset.total = String(total);
  if (source) bar.dataset.source = source;
  fill($(`${id}-text`), text);
}

/** k and n from a capability's tail (`…:k:n:size`): not secret, the shares a file was cut into. */
function sharesOf(cap) {
  const m = /:(\d+):(\d+):(\d+)$/.exec(cap ?? '');
  return m ? { k: Number(m[1]), n: Number(m[2]) } : null;
}

const when = (ms) => (ms ? new Date(ms).toLocaleString() : '—');
const list = (nums) => (nums.length ? nums.map((n) => `#${n}`).join(', ') : '—');

function healthText(f, c) {
  const shares = sharesOf(f.verifyCap ?? f.cap);
  const found = c?.sharesFound ?? f.sharesFound;
  const healthy = c?.healthy ?? f.healthy;
  if (healthy === null || healthy === undefined) return 'not checked yet';
  const of = c ? `${found} of ${c.sharesTotal} shares (${c.sharesNeeded} needed)` : `${found} of ${shares?.n ?? '?'} shares (${shares?.k ?? '?'} needed)`;
  return `${healthy ? 'healthy' : 'NOT healthy'} · ${of}`;
}

/** Share health per server of the last check: which share numbers each server holds, verified or not. */
function serverTable(f, servers) {
  if (!servers || servers.length === 0) return el('p', { class: 'muted' }, 'Share health per server shows after a check (run one below).');
  const rows = servers.map((s) => {
    const state = !s.reachable ? 'unreachable' : s.bad.length ? 'bad shares' : s.valid.length || s.repaired.length ? 'ok' : 'holds none';
    return el('tr', { 'data-server': s.id, class: !s.reachable || s.bad.length ? 'status-reorged' : undefined },
      el('td', { class: 'mono', 'data-label': 'Server' }, `${s.id.slice(0, 12)}… ${s.url}`), el('td', { 'data-label': 'State' }, state),
      el('td', { 'data-label': 'Valid shares' }, list(s.valid)), el('td', { 'data-label': 'Bad' }, list(s.bad)), el('td', { 'data-label': 'Repaired' }, list(s.repaired)));
  });
  return el('table', { class: 'server-health stack' },
    el('caption', {}, `Share health per server (last check of ${f.name ?? 'this file'})`),
    el('thead', {}, el('tr', {}, el('th', {}, 'Server'), el('th', {}, 'State'), el('th', {}, 'Valid shares'), el('th', {}, 'Bad'), el('th', {}, 'Repaired'))),
    el('tbody', {}, ...rows));
}

function fileCard(f) {
  const c = lastCheck.get(f.storageIndex);
  const name = f.name ?? '(unnamed file)';
  const card = el('article', { class: 'kept', 'data-si': f.storageIndex, 'data-healthy': String(c?.healthy ?? f.healthy) },
    el('h4', {}, name));
  const dl = el('dl');
  pairs(dl, [
    ['Size', bytes(f.size)], ['Storage index', el('span', { class: 'mono' }, f.storageIndex)], ['Kept since', when(f.addedAt)],
    ['Last check', `${healthText(f, c)}${f.checkedAt ? ` · ${when(f.checkedAt)}` : ''}`],
    ['Repaired so far', `${f.repairedTotal} share${f.repairedTotal === 1 ? '' : 's'}`],
    ...(c?.problems?.length || f.lastProblem ? [['Problem', (c?.problems ?? [f.lastProblem]).join('; ')]] : []),
  ]);
  card.append(dl, serverTable(f, c?.servers ?? f.servers));
  const actions = el('p', { class: 'actions' });
  const cap = f.verifyCap ?? f.cap;
  for (const kind of ['check', 'repair']) {
    const b = el('button', { type: 'button', 'data-action': kind, 'aria-label': `${kind === 'check' ? 'Check' : 'Repair'} ${name}` }, kind === 'check' ? 'Check' : 'Repair');
    b.disabled = cap === null;
    b.addEventListener('click', () => guarded(() => checkFile(f, cap, kind)));
    actions.append(b);
  }
  if (f.capKind === 'read' && f.cap) {
    const shown = revealed.has(f.storageIndex);
    const capId = `cap-${f.storageIndex.slice(0, 16)}`;
    const b = el('button', { type: 'button', 'data-action': 'reveal', 'aria-expanded': String(shown), 'aria-controls': capId, 'aria-label': `${shown ? 'Hide' : 'Reveal'} the read capability of ${name}` },
      shown ? 'Hide read capability' : 'Reveal read capability');
    b.addEventListener('click', () => {
      if (revealed.has(f.storageIndex)) revealed.delete(f.storageIndex);
      else revealed.add(f.storageIndex);
      renderFiles();
    });
    actions.append(b);
    card.append(actions, el('p', { id: capId, class: 'mono cap', hidden: shown ? null : '' },
      ...(shown ? [el('strong', {}, 'Read capability (anyone holding it can read the file): '), f.cap] : [])));
  } else {
    card.append(actions);
  }
  return card;
}

let files = [];

/** Redraws the file cards; the button that had the focus keeps it (a keyboard user is not sent back to the top). */
function renderFiles() {
  const focused = document.activeElement;
  const action = focused?.dataset?.action;
  const si = focused?.closest?.('article.kept')?.dataset.si;
  fill($('kept-files'), ...(files.length ? files.map(fileCard) : [el('p', { class: 'muted' }, 'No kept files yet: put one above.')]));
  if (action && si) $('kept-files').querySelector(`article.kept[data-si="${si}"] button[data-action="${action}"]`)?.focus();
}

async function checkFile(f, cap, kind) {
  const op = newOpId();
  const label = f.name ?? f.storageIndex.slice(0, 16);
  ops.set(op, { kind, label });
  setBar('check-bar', 0, 1, `${kind === 'check' ? 'Checking' : 'Repairing'} ${label}…`);
  const r = await post(`/storage/${kind}`, { cap, op });
  lastCheck.set(r.storageIndex, r);
  state.checks[r.storageIndex] = r;
  finish(op, 'check-bar', `${kind === 'check' ? 'Checked' : 'Repaired'} ${label}: ${r.healthy ? 'healthy' : 'NOT healthy'}, ${r.sharesFound} of ${r.sharesTotal} shares${r.repaired ? `, ${r.repaired} repaired` : ''}`);
  await refreshStorage();
}

async function putFile(file) {
  const op = newOpId();
  const keep = $('put-keep').checked;
  ops.set(op, { kind: 'put', label: file.name });
  fill($('put-result'), '');
  const q = new URLSearchParams({ name: file.name, op, keep: keep ? '1' : '0' });
  const data = await file.arrayBuffer();
  const r = await uploadWithProgress(`/storage/put?${q}`, data, (sent, total) => {
    // Once the daemon reports its own phases, the browser's transfer is behind us.
    if (!ops.get(op)?.started) setBar('put-bar', sent, total, `${file.name}: ${bytes(sent)} of ${bytes(total)} ${PHASES.send}`, 'send');
  });
  finish(op, 'put-bar', `${file.name}: stored (${bytes(r.size)})`);
  fill($('put-result'), `Stored ${file.name} · storage index `, el('span', { class: 'mono' }, r.storageIndex),
    r.kept ? ' · kept: its read capability is in the file list below (hidden until you reveal it).' : ' · not kept: this node will not remember its read capability; reveal it to copy it now.');
  if (!r.kept) {
    const b = el('button', { type: 'button', 'aria-expanded': 'false' }, 'Reveal read capability');
    b.addEventListener('click', () => {
      b.replaceWith(el('span', { class: 'mono cap' }, r.readCap));
    });
    $('put-result').append(' ', b);
  }
  await refreshStorage();
}

/** How long the final text waits for the operation's last event after the answer (a closed websocket never brings it). */
const END_GRACE_MS = 2000;

/**
 * The answer is in. The websocket may still be delivering the operation's progress, and it brings
 * them in order before the operation's own result event: the bar shows `text` once that event is
 * seen (or after END_GRACE_MS), so a late progress tick never moves it back from "done".
 */
function finish(op, bar, text) {
  const o = ops.get(op);
  if (!o) return;
  o.final = () => setBar(bar, 1, 1, text, 'answer');
  if (o.ended) o.final();
  else setTimeout(() => ended(op), END_GRACE_MS);
}

/** The operation's result event (or the grace period) came: no more progress for it. */
function ended(op) {
  const o = ops.get(op);
  if (!o || o.ended) return;
  o.ended = true;
  o.final?.();
}

/** A storage.progress event: drives the put bar or the check bar when the operation is this page's (or a scheduled one). */
export function onStorageProgress(e) {
  const d = e.data ?? {};
  if (typeof d.op !== 'string' || typeof d.done !== 'number' || typeof d.total !== 'number') return;
  const mine = ops.get(d.op);
  state.progress.push({ op: d.op, phase: d.phase, done: d.done, total: d.total, mine: Boolean(mine) });
  if (state.progress.length > 200) state.progress.shift();
  if (mine?.ended) return;
  if (mine) mine.started = true;
  const what = `${d.done} of ${d.total} ${PHASES[d.phase] ?? d.phase}`;
  if (mine?.kind === 'put') setBar('put-bar', d.done, d.total, `${mine.label}: ${what}`, 'storage.progress');
  else setBar('check-bar', d.done, d.total, `${mine ? `${mine.kind === 'check' ? 'Checking' : 'Repairing'} ${mine.label}` : 'A scheduled check'}: ${what}`, 'storage.progress');
}

/** storage.check / storage.put / storage.failed events. */
export function onStorageEvent(e, visible) {
  const d = e.data ?? {};
  if (e.type === 'storage.check' && typeof d.storageIndex === 'string') lastCheck.set(d.storageIndex, { ...d, problems: lastCheck.get(d.storageIndex)?.problems ?? [] });
  if ((e.type === 'storage.put' || e.type === 'storage.check' || e.type === 'storage.failed') && ops.has(d.op)) ended(d.op);
  if (e.type === 'storage.failed' && ops.has(d.op)) {
    const bar = ops.get(d.op).kind === 'put' ? 'put-bar' : 'check-bar';
    fill($(`${bar}-text`), `Failed: ${d.message ?? d.code}`);
  }
  if (visible && e.type !== 'storage.progress') refreshStorage();
}

export async function refreshStorage() {
  let server;
  try {
    server = await get('/storage/server');
  } catch (err) {
    fill($('storage-server'), el('dt', {}, 'Storage'), el('dd', {}, `off: ${err.message}`));
    $('storage-on').hidden = true;
    return;
  }
  $('storage-on').hidden = false;
  const free = server.quotaBytes === null ? null : Math.max(0, server.quotaBytes - server.usedBytes);
  const sh = server.defaultShares;
  pairs($('storage-server'), [
    ['Serving', server.serving ? `yes, at ${server.url}` : 'no (start the daemon with --storage-server to store for your contacts)'],
    ['Quota', bytes(server.quotaBytes)], ['Used', bytes(server.usedBytes)], ['Free', bytes(free)],
    ['Shares held', server.shares ?? '—'], ['Files (storage indexes)', server.storageIndexes ?? '—'], ['Active leases', server.activeLeases ?? '—'],
    ['Next lease expiry', when(server.nextLeaseExpiry)], ['Announced until', when(server.announcedUntil)],
    ['Backend', server.backend], ['New files', sh ? `cut into ${sh.n} shares, any ${sh.k} of which rebuild it, spread over at least ${sh.happy} server${sh.happy === 1 ? '' : 's'}` : '—'],
  ]);
  const quota = $('quota-bar');
  if (server.quotaBytes) {
    quota.max = server.quotaBytes;
    quota.value = server.usedBytes;
    fill($('quota-bar-text'), `${bytes(server.usedBytes)} of ${bytes(server.quotaBytes)} used (${bytes(free)} free)`);
  } else {
    fill($('quota-bar-text'), 'This node serves no storage.');
  }
  const servers = server.knownServers ?? [];
  fill($('storage-servers').tBodies[0], ...(servers.length ? servers.map((s) => el('tr', {},
    el('td', { class: 'mono', 'data-label': 'Server' }, `${s.id.slice(0, 12)}…${s.self ? ' (this node)' : ''}`), el('td', { class: 'mono', 'data-label': 'Endpoint' }, s.endpoint),
    el('td', { 'data-label': 'Quota' }, bytes(s.quota)), el('td', { 'data-label': 'Free when announced' }, bytes(s.free)), el('td', { 'data-label': 'Announced until' }, when(s.until))))
    : [el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No storage server verified yet: servers are those your contacts announce, and this node when it serves.'))]));
  files = (await get('/storage/files')).files ?? [];
  renderFiles();
}

export function wireStorage() {
  wireFileDrop($('put-zone'), $('put-file'), putFile);
}
