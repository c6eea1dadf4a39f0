/**
 * One mixnet node as its own process, for the multi-host tests (test/node/mixnet/netns.int.test.ts):
 * a MixnetService (src/node/mixnet/service.ts) with the role given in the JSON of argv[2], driven
 * by JSON lines on stdin and reporting JSON lines on stdout. The parent plays the log replication:
 * it hands every signed entry one runner publishes to every other runner.
 *
 * argv[2]: { seed: hex, layer?, provider?, host?, home?: hex, meanDelayMs?, fetchIntervalMs?,
 *            feed?: { seq, prev: hex }, cover?: CoverSettings }  (feed: where this identity's log
 *            continues after a restart; cover: ./src/node/mixnet/cover.ts, off by default)
 * stdin:   { op: "entry", raw: hex } | { op: "send", to: hex, text } | { op: "reply", id, text }
 *          | { op: "status", mailbox?: hex } | { op: "quit" }
 * stdout:  { ev: "ready", address, url } | { ev: "entry", raw, seq, hash } | { ev: "message", m }
 *          | { ev: "packet", from, to, kind } | { ev: "sent", m } | { ev: "status", ... } | { ev: "error", message }
 */
import { createInterface } from 'node:readline';
import { NodeIdentity } from '../../src/node/identity.js';
import { ZERO_HASH, createEntry, decodeEntry } from '../../src/node/log/codec.js';
import { MixnetService } from '../../src/node/mixnet/service.js';
import type { CoverSettings } from '../../src/node/mixnet/cover.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

interface Config {
  seed: string;
  layer?: number;
  provider?: boolean;
  host?: string;
  home?: string;
  meanDelayMs?: number;
  fetchIntervalMs?: number;
  feed?: { seq: number; prev: string };
  cover?: CoverSettings;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const identity = NodeIdentity.fromSeed(fromHex(cfg.seed));
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
let feed = cfg.feed ? { seq: cfg.feed.seq, prev: fromHex(cfg.feed.prev) } : { seq: 0, prev: ZERO_HASH };

const service: MixnetService = new MixnetService({
  identity,
  isContact: () => true,
  publish: (d) => {
    const e = createEntry(identity, { seq: feed.seq + 1, prev: feed.prev, timestamp: Date.now(), header: d.header, body: d.body ?? new Uint8Array(0) });
    feed = { seq: e.seq, prev: e.hash };
    service.ingest(e);
    out({ ev: 'entry', raw: toHex(e.raw), seq: e.seq, hash: toHex(e.hash) });
  },
  onPacket: (p) => out({ ev: 'packet', from: toHex(p.from), to: toHex(p.to), kind: p.kind }),
  fetchIntervalMs: cfg.fetchIntervalMs ?? 200,
  meanDelayMs: cfg.meanDelayMs ?? 20,
  ...(cfg.layer ? { layer: cfg.layer } : {}),
  ...(cfg.provider ? { provider: true } : {}),
  ...(cfg.host ? { host: cfg.host } : {}),
  ...(cfg.home ? { home: fromHex(cfg.home) } : {}),
  ...(cfg.cover ? { cover: cfg.cover } : {}),
});
service.on('message', (m) => out({ ev: 'message', m }));

let quitting = false;
async function quit(): Promise<void> {
  if (quitting) return;
  quitting = true;
  await service.close();
  process.exit(0);
}

function handle(line: string): void {
  let cmd: { op: string; raw?: string; to?: string; id?: string; text?: string; mailbox?: string };
  try {
    cmd = JSON.parse(line) as typeof cmd;
  } catch {
    return out({ ev: 'error', message: 'bad command line' });
  }
  try {
    if (cmd.op === 'entry') service.ingest(decodeEntry(fromHex(cmd.raw!)));
    else if (cmd.op === 'send') out({ ev: 'sent', m: service.send(fromHex(cmd.to!), cmd.text!) });
    else if (cmd.op === 'reply') out({ ev: 'sent', m: service.reply(cmd.id!, cmd.text!) });
    else if (cmd.op === 'status') {
      const node = service.mixNode;
      out({
        ev: 'status', connected: service.connected, home: service.home ? toHex(service.home) : null,
        processed: node?.processed ?? null, drops: node ? { ...node.drops } : null,
        mailbox: node && cmd.mailbox ? node.mailboxSize(fromHex(cmd.mailbox)) : null,
        cover: service.coverStatus(),
      });
    } else if (cmd.op === 'quit') void quit();
    else out({ ev: 'error', message: `unknown op ${cmd.op}` });
  } catch (err) {
    out({ ev: 'error', message: err instanceof Error ? err.message : String(err) });
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', handle);
rl.on('close', () => void quit());
process.on('SIGTERM', () => void quit());

await service.start();
out({ ev: 'ready', address: toHex(identity.publicKey), url: service.url });
