/**
 * Measures a daemon's API from outside its process (load tests): probes `/status` open-loop
 * every `everyMs` for `durationMs`, timing each request from when it was due (so a stall counts
 * for every probe it delayed), while one websocket subscriber reads `/events?types=<types>`.
 * Prints "ready" once subscribed, then one JSON line with the results at the end.
 *
 * usage: node api-probe.mjs <apiUrl> <token> <durationMs> <everyMs> <types>
 */
import WebSocket from 'ws';

const [api, token, durationArg, everyArg, types] = process.argv.slice(2);
const durationMs = Number(durationArg);
const everyMs = Number(everyArg);
const headers = { authorization: `Bearer ${token}` };

const reader = new WebSocket(`${api.replace('http', 'ws')}/events?types=${types}`, { headers });
await new Promise((resolve, reject) => reader.once('open', resolve).once('error', reject));
let received = 0;
let outOfOrder = 0;
let readerClosed = false;
reader.on('message', (m) => {
  const seq = JSON.parse(String(m)).data.seq;
  if (seq !== received) outOfOrder++;
  received++;
});
reader.on('close', () => (readerClosed = true));
for (let i = 0; i < 20; i++) await (await fetch(`${api}/status`, { headers })).arrayBuffer();
process.stdout.write('ready\n');

const latencies = [];
const perSecond = [];
const failures = [];
const inflight = new Set();
const t0 = performance.now();
let probes = 0;
const timer = setInterval(() => {
  const due = Math.min(Math.floor((performance.now() - t0) / everyMs), Math.floor(durationMs / everyMs));
  for (; probes < due; probes++) {
    const dueAt = t0 + probes * everyMs;
    const p = fetch(`${api}/status`, { headers })
      .then(async (res) => {
        await res.arrayBuffer();
        if (res.status !== 200) failures.push(`status ${res.status}`);
        const ms = performance.now() - dueAt;
        latencies.push(ms);
        const s = Math.floor((dueAt - t0) / 1000);
        perSecond[s] = Math.max(perSecond[s] ?? 0, Math.round(ms));
      })
      .catch((err) => void failures.push(String(err)))
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }
}, 2);
await new Promise((r) => setTimeout(r, durationMs + 10));
clearInterval(timer);
await Promise.all(inflight);
// Give the reader time to receive what was published until the end.
let last = -1;
while (last !== received) {
  last = received;
  await new Promise((r) => setTimeout(r, 500));
}
reader.close();
process.stdout.write(`${JSON.stringify({ latencies, perSecond, failures, received, outOfOrder, readerClosed })}\n`);
process.exit(0);
