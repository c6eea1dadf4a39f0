/**
 * One mixnet node as its own process, for the multi-host tests (test/node/mixnet/netns.int.test.ts):
 * a MixnetService (src/node/mixnet/service.ts) with the role given in the JSON of argv[2], driven
 * by JSON lines on stdin and reporting JSON lines on stdout. The parent plays the log replication:
 * it hands every signed entry one runner publishes to every other runner.
 *
 * argv[2]: { seed: hex, layer?, provider?, host?, home?: hex, meanDelayMs?, fetchIntervalMs?,
 *            feed?: { seq, prev: hex }, cover?: CoverSettings, epochMs?, capture?: boolean,
 *            blackhole?: boolean }
 *            (feed: where this identity's log continues after a restart; cover:
 *            ./src/node/mixnet/cover.ts, off by default; capture: keep the exact packets this
 *            node's client sends to its provider and, for a mix or provider, every packet it relays
 *            with its next hop, for the adversary tests; blackhole: a mix that
 *            publishes its descriptors like any other and then drops every packet it receives)
 * stdin:   { op: "entry", raw: hex } | { op: "send", to: hex, text } | { op: "reply", id, text }
 *          | { op: "status", mailbox?: hex } | { op: "quit" }
 *          adversary ops (test/node/mixnet/netns-adversary.int.test.ts):
 *          | { op: "captured" }: the packets captured so far (capture: true)
 *          | { op: "craft", to: hex, text }: a message packet built as `send` would (no SURB), not sent
 *          | { op: "inject", url, address: hex, raws: hex[] }: dials `url` as a link authenticated
 *            as this runner (expecting `address`) and sends each packet as one PACKET frame
 *          | { op: "flood", url, address: hex, rate, ms }: the same with random packets in PACKETS
 *            frames, `rate` packets/s for `ms` milliseconds
 * stdout:  { ev: "ready", address, url } | { ev: "entry", raw, seq, hash } | { ev: "message", m }
 *          | { ev: "packet", from, to, kind } | { ev: "sent", m } | { ev: "status", ... } | { ev: "error", message }
 *          | { ev: "captured", raws, forwarded: { next, raw }[] } | { ev: "crafted", raw } | { ev: "injected", n } | { ev: "flooded", n, ms }
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { NodeIdentity } from '../../src/node/identity.js';
import { ZERO_HASH, createEntry, decodeEntry } from '../../src/node/log/codec.js';
import { MixnetService } from '../../src/node/mixnet/service.js';
import type { CoverSettings } from '../../src/node/mixnet/cover.js';
import { MixClient } from '../../src/node/mixnet/client.js';
import { routeDelaysMs } from '../../src/node/mixnet/delays.js';
import { sealMessage } from '../../src/node/mixnet/message.js';
import { createPacket } from '../../src/node/mixnet/sphinx.js';
import type { OutgoingPacket, ProcessResult } from '../../src/node/mixnet/sphinx.js';
import { MixKeyring } from '../../src/node/mixnet/replay.js';
import { FRAME_PACKET, FRAME_PACKETS, MAX_BATCH_PACKETS, MAX_MIX_FRAME_BYTES, encodePackets } from '../../src/node/mixnet/wire.js';
import { PACKET_BYTES } from '../../src/node/mixnet/params.js';
import { dial } from '../../src/node/transport/ws-transport.js';
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
  epochMs?: number;
  capture?: boolean;
  blackhole?: boolean;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const identity = NodeIdentity.fromSeed(fromHex(cfg.seed));
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const meanDelayMs = cfg.meanDelayMs ?? 20;

/**
 * Capture on the wire path: every packet this process's client hands to its provider link, as
 * sent (the bytes an observer of Alice's link would record once the link encryption is removed,
 * or her provider once it received them).
 */
const captured: string[] = [];
/** Capture at a mix or provider: each packet it relays as it leaves, with its next hop. */
const forwarded: { next: string; raw: string }[] = [];
if (cfg.capture) {
  const unwrap = Object.getOwnPropertyDescriptor(MixKeyring.prototype, 'process')!.value as (this: MixKeyring, p: Uint8Array) => ProcessResult;
  Object.defineProperty(MixKeyring.prototype, 'process', {
    value(this: MixKeyring, p: Uint8Array): ProcessResult {
      const r = unwrap.call(this, p);
      if (r.ok && r.kind === 'relay') {
        forwarded.push({ next: toHex(r.next), raw: toHex(r.packet) });
        if (forwarded.length > 1000) forwarded.shift();
      }
      return r;
    },
  });
  const original = Object.getOwnPropertyDescriptor(MixClient.prototype, 'send')!.value as (this: MixClient, p: OutgoingPacket) => void;
  Object.defineProperty(MixClient.prototype, 'send', {
    value(this: MixClient, p: OutgoingPacket): void {
      captured.push(toHex(p.packet));
      if (captured.length > 1000) captured.shift();
      original.call(this, p);
    },
  });
}
let feed = cfg.feed ? { seq: cfg.feed.seq, prev: fromHex(cfg.feed.prev) } : { seq: 0, prev: ZERO_HASH };

if (cfg.blackhole) {
  // An active attacker inside the network: every packet is refused before it is unwrapped (and
  // counted as a bad command, which nobody outside this node can see).
  Object.defineProperty(MixKeyring.prototype, 'process', { value: (): ProcessResult => ({ ok: false, reason: 'command' }) });
}

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
  meanDelayMs,
  ...(cfg.layer ? { layer: cfg.layer } : {}),
  ...(cfg.provider ? { provider: true } : {}),
  ...(cfg.host ? { host: cfg.host } : {}),
  ...(cfg.home ? { home: fromHex(cfg.home) } : {}),
  ...(cfg.cover ? { cover: cfg.cover } : {}),
  ...(cfg.epochMs ? { epochMs: cfg.epochMs } : {}),
});
service.on('message', (m) => out({ ev: 'message', m }));

let quitting = false;
async function quit(): Promise<void> {
  if (quitting) return;
  quitting = true;
  await service.close();
  process.exit(0);
}

/** A message packet for `to`, built as MixnetService.send builds one (without the SURB). */
function craft(to: Uint8Array, text: string): string {
  const home = service.home;
  const exit = service.directory.providerOf(to);
  if (!home || !exit) throw new Error('craft: no home link or no provider for the recipient yet');
  const route = service.directory.route(home, exit, routeDelaysMs(5, meanDelayMs));
  return toHex(createPacket(route, to, sealMessage(identity, to, text, null)).packet);
}

/** Dials `url` as a client link of this runner's identity and sends each packet in a PACKET frame. */
async function inject(url: string, address: Uint8Array, raws: readonly string[]): Promise<void> {
  const ch = await dial(url, identity, { expectedRemote: address, maxFrameBytes: MAX_MIX_FRAME_BYTES });
  for (const raw of raws) ch.send(FRAME_PACKET, fromHex(raw));
  // Let the frames leave before the link closes (a close does not wait for the peer to read).
  await new Promise((r) => setTimeout(r, 300));
  ch.close('local');
  out({ ev: 'injected', n: raws.length });
}

/**
 * Random packets at `url` at `rate` packets/s for `ms` milliseconds, in full PACKETS frames (the
 * pace is kept per 5 ms tick, so the flood is steady rather than one burst).
 */
async function flood(url: string, address: Uint8Array, rate: number, ms: number): Promise<void> {
  const ch = await dial(url, identity, { expectedRemote: address, maxFrameBytes: MAX_MIX_FRAME_BYTES });
  // Random packets: the ones the link's bucket lets through cost the mix a full unwrap and fail
  // its MAC (before any replay check), so reusing them across frames changes nothing.
  const full = encodePackets(Array.from({ length: MAX_BATCH_PACKETS }, () => randomBytes(PACKET_BYTES)));
  const t0 = Date.now();
  let sent = 0;
  for (let now = t0; now - t0 < ms; now = Date.now()) {
    while (sent < (rate * (now - t0)) / 1000) {
      const more = ch.send(FRAME_PACKETS, full);
      sent += MAX_BATCH_PACKETS;
      // The socket's buffer is full: wait for it to drain rather than hold the flood in memory.
      if (!more) {
        await new Promise<void>((resolve) => {
          ch.once('drain', resolve);
          ch.once('close', () => resolve()); // the next send throws, reported as an error
        });
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const took = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 300));
  ch.close('local');
  out({ ev: 'flooded', n: sent, ms: took });
}

function handle(line: string): void {
  let cmd: { op: string; raw?: string; to?: string; id?: string; text?: string; mailbox?: string; url?: string; address?: string; raws?: string[]; rate?: number; ms?: number };
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
    } else if (cmd.op === 'captured') out({ ev: 'captured', raws: [...captured], forwarded: [...forwarded] });
    else if (cmd.op === 'craft') out({ ev: 'crafted', raw: craft(fromHex(cmd.to!), cmd.text!) });
    else if (cmd.op === 'inject') void inject(cmd.url!, fromHex(cmd.address!), cmd.raws!).catch((err: Error) => out({ ev: 'error', message: err.message }));
    else if (cmd.op === 'flood') void flood(cmd.url!, fromHex(cmd.address!), cmd.rate!, cmd.ms!).catch((err: Error) => out({ ev: 'error', message: err.message }));
    else if (cmd.op === 'quit') void quit();
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
