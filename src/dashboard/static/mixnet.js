// The mixnet page: roles and the provider link, the mailbox (messages through the mixnet, send and
// reply), cover traffic, and loop loss per route and per hop (GET /node/mixnet, GET /node/messages).
import { get, post } from './api.js';
import { el, fill, guarded, pairs } from './dom.js';

const $ = (id) => document.getElementById(id);

const percent = (rate) => (rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(0)}%`);
const short = (hex) => `${hex.slice(0, 12)}…`;
/** Loss of at least this much marks a route or a hop (the loop monitor's own suspicion threshold). */
const SUSPECT = 0.5;

function lossRow(cells, c) {
  return el('tr', { class: c.lossRate !== null && c.lossRate >= SUSPECT ? 'status-reorged' : undefined },
    ...cells, el('td', { 'data-label': 'Loops' }, c.sent ?? c.returned + c.lost), el('td', { 'data-label': 'Back' }, c.returned),
    el('td', { 'data-label': 'Lost' }, c.lost), el('td', { 'data-label': 'Loss' }, percent(c.lossRate)));
}

function emptyRow(table, cols, text) {
  return fill($(table).tBodies[0], el('tr', {}, el('td', { colspan: cols, class: 'muted' }, text)));
}

async function refreshMailbox(m) {
  const { messages } = await get('/node/messages');
  const contacts = await get('/node/contacts').then((c) => c.contacts ?? [], () => []);
  const select = $('mix-contact');
  const chosen = select.value;
  fill(select, el('option', { value: '' }, contacts.length ? 'choose a contact' : 'no contacts yet'),
    ...contacts.map((c) => el('option', { value: c.node }, `${short(c.node)}${c.connected ? ' · connected' : ''}`)));
  select.value = chosen;
  fill($('mailbox'), ...(messages.length ? [...messages].reverse().map((x) => {
    const li = el('li', { 'data-message': x.id, class: x.direction === 'in' ? 'msg-in' : 'msg-out' },
      el('span', { class: 'muted' }, `${new Date(x.at).toLocaleString()} · ${x.inReplyTo ? 'reply ' : ''}${x.direction === 'in' ? 'from' : 'to'} `),
      el('span', { class: 'mono' }, short(x.contact)), el('br'), x.text);
    if (x.direction === 'in' && x.canReply) {
      const b = el('button', { type: 'button', 'aria-label': `Reply to the message from ${short(x.contact)}` }, 'Reply');
      b.addEventListener('click', () => {
        $('mix-reply-to').value = x.id;
        fill($('mix-replying'), `Replying once, through the sender's reply block, to the message of ${new Date(x.at).toLocaleString()}`);
        $('mix-text').focus();
      });
      li.append(' ', b);
    }
    return li;
  }) : [el('li', { class: 'muted' }, m ? 'No messages yet.' : 'The mixnet is off.')]));
}

/** How often the open page re-reads GET /node/mixnet: loop counts and the link change with no event. */
const TICK_MS = 2000;
let ticker = null;
let ticking = false;

/**
 * Keeps the status and loss tables live while the page is shown: cover loops come back several
 * times a second and no event reports them (an event per loop would flood /events), so the open
 * page reads the route again every {@link TICK_MS}; a hidden page or tab reads nothing.
 * The mailbox stays driven by node.message.received events.
 */
export function watchMixnetPage(shown) {
  if (!shown) {
    clearInterval(ticker);
    ticker = null;
    return;
  }
  ticker ??= setInterval(() => {
    if (document.hidden || ticking) return;
    ticking = true;
    // A failed tick says nothing: the next one tries again, and the page keeps what it showed.
    renderStatus().catch(() => undefined).finally(() => { ticking = false; });
  }, TICK_MS);
}

export async function refreshMixnetPage() {
  const m = await renderStatus();
  if (m) await refreshMailbox(m);
}

/** Roles, link, directory, cover traffic and the loss tables; returns the status (null: off). */
async function renderStatus() {
  const m = await get('/node/mixnet').catch(() => null);
  if (!m) {
    pairs($('mix-status'), [['Mixnet', 'off (it needs the peer node, which needs an unlocked wallet)']]);
    emptyRow('mix-routes', 5, '—');
    emptyRow('mix-hops', 5, '—');
    fill($('mailbox'), el('li', { class: 'muted' }, 'The mixnet is off.'));
    $('mix-send-form').hidden = true;
    return null;
  }
  $('mix-send-form').hidden = false;
  const roles = [m.provider ? 'provider (keeps mailboxes)' : null, m.layer > 0 ? `mix in layer ${m.layer}` : null].filter(Boolean);
  const loops = m.cover?.loops;
  pairs($('mix-status'), [
    ['Roles', roles.length ? `client, ${roles.join(', ')}` : 'client'],
    ['Mailbox', m.home ? `kept by provider ${short(m.home)} · ${m.connected ? 'connected' : 'not connected'}` : 'no provider chosen yet'],
    ['Listener', m.url ?? 'none (a client only dials its provider)'],
    ['Directory', `mixes per layer ${m.layers.join(' / ')} · ${m.providers.length} providers · ${m.refused} refused`],
    ['Cover traffic', m.cover ? `loops ${m.cover.rates.loop}/s, drops ${m.cover.rates.drop}/s · sent ${m.cover.sent.loop} loops, ${m.cover.sent.drop} drops` : 'off'],
    ['Loop loss', loops ? `${loops.lost} of ${loops.returned + loops.lost} lost (${percent(loops.lossRate)}) · ${loops.pending} in flight${loops.medianRttMs === null ? '' : ` · median round trip ${Math.round(loops.medianRttMs)} ms`}` : '—'],
    ...(m.processed !== null ? [['Packets mixed', `${m.processed}${m.drops ? ` · dropped ${Object.entries(m.drops).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}` : ''}`]] : []),
  ]);
  const routes = loops?.routes ?? [];
  if (routes.length) {
    fill($('mix-routes').tBodies[0], ...routes.map((r) => lossRow([el('td', { class: 'mono', 'data-label': 'Route' }, r.hops.map(short).join(' → '))], r)));
  } else emptyRow('mix-routes', 5, 'No cover loops sent yet.');
  const hops = loops?.hops ?? [];
  if (hops.length) {
    // Say which hops are providers (the node's own first): the rest are mixes, the usual suspects.
    const role = (a) => (a === m.home ? ' · your provider' : m.providers.includes(a) ? ' · provider' : '');
    fill($('mix-hops').tBodies[0], ...hops.map((h) => lossRow([el('td', { class: 'mono', 'data-label': 'Hop' }, short(h.address), el('span', { class: 'muted' }, role(h.address)))], h)));
  } else emptyRow('mix-hops', 5, 'No cover loops sent yet.');
  return m;
}

export function wireMixnet() {
  $('mix-send-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      const text = $('mix-text').value.trim();
      const replyTo = $('mix-reply-to').value;
      const contact = $('mix-contact').value;
      if (!text) throw new Error('write a message first');
      if (!replyTo && !contact) throw new Error('choose a contact (or reply to a received message)');
      const r = await post('/node/messages', replyTo ? { replyTo, text } : { contact, text });
      fill($('mix-send-result'), `Sent through the mixnet (${r.message.id.slice(0, 8)}…)`);
      $('mix-text').value = '';
      $('mix-reply-to').value = '';
      fill($('mix-replying'), '');
      await refreshMixnetPage();
    });
  });
}
