/**
 * Small jobs run inside a test network namespace (test/support/daemon-netns.ts), as plain ESM so
 * that they start fast (no tsx). The mode is argv[2]:
 *
 * - `relay <port> <unix socket>`: listens on 127.0.0.1:<port> in the namespace and pipes every
 *   connection to the unix socket (which the test process serves, piping on to the regtest node on
 *   the root namespace's loopback). Unix sockets live in the file system, not in a network
 *   namespace, so the chain is reachable from every namespace without a route between them. Prints
 *   "ready" once listening.
 * - `api`: one call to the daemon's local API from inside the namespace (it listens on the
 *   namespace's 127.0.0.1). DD_API (base URL), DD_TOKEN (never in argv: `ps` shows argv),
 *   DD_METHOD, DD_PATH and DD_BODY come from the environment; prints `{ status, body }`.
 * - `events`: the daemon's `/events?replay=1` websocket for DD_MS milliseconds; prints the JSON
 *   array of the events received (the recent history, kept per kind).
 */
import { connect, createServer } from 'node:net';
import WebSocket from 'ws';

const mode = process.argv[2];
const env = process.env;

if (mode === 'relay') {
  const port = Number(process.argv[3]);
  const socket = process.argv[4];
  const server = createServer((inbound) => {
    const outbound = connect(socket);
    inbound.pipe(outbound).pipe(inbound);
    const end = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', end).on('close', end);
    outbound.on('error', end).on('close', end);
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'api') {
  const res = await fetch(`${env.DD_API}${env.DD_PATH}`, {
    method: env.DD_METHOD,
    headers: { authorization: `Bearer ${env.DD_TOKEN}`, ...(env.DD_BODY ? { 'content-type': 'application/json' } : {}) },
    ...(env.DD_BODY ? { body: env.DD_BODY } : {}),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  process.stdout.write(JSON.stringify({ status: res.status, body }));
} else if (mode === 'events') {
  const url = `${env.DD_API.replace(/^http/, 'ws')}/events?replay=1`;
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${env.DD_TOKEN}` } });
  const got = [];
  ws.on('message', (data) => {
    try {
      got.push(JSON.parse(data.toString()));
    } catch {
      got.push(data.toString());
    }
  });
  ws.on('error', (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
  ws.on('open', () => setTimeout(() => ws.close(), Number(env.DD_MS ?? 1000)));
  ws.on('close', () => process.stdout.write(JSON.stringify(got)));
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
