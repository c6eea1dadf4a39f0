/**
 * Builds the committed Sphinx vectors (test/vectors/mixnet/sphinx-v1.json) from fixed randomness:
 * packet creation and every hop's processing output. Regenerate after a deliberate format change
 * with `npx tsx test/support/mixnet-vectors.ts > test/vectors/mixnet/sphinx-v1.json`.
 */
import { createHash } from 'node:crypto';
import { BETA_BYTES, SLOT_BYTES } from '../../src/node/mixnet/params.js';
import { ReplayCache } from '../../src/node/mixnet/replay.js';
import { createPacket, createSurb, encodeSurb, openReply, processPacket, useSurb } from '../../src/node/mixnet/sphinx.js';
import type { ProcessResult } from '../../src/node/mixnet/sphinx.js';
import { routeOver, testMix } from './mixnet.js';
import type { TestMix } from './mixnet.js';

/** `n` deterministic bytes from `label`. */
function bytes(label: string, n: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < n; i++) out.push(createHash('sha256').update(`${label} ${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** One hop's processing output in vector form (what the Python checker must reproduce). */
export type HopOutput =
  | { result: 'relay'; next: string; delayMs: number; replayTag: string; packet: string }
  | { result: 'deliver'; mailbox: string; delayMs: number; replayTag: string; body: string }
  | { result: 'reply'; mailbox: string; delayMs: number; replayTag: string; surbId: string; payload: string }
  | { result: 'reject'; reason: string };

export function hopOutput(r: ProcessResult): HopOutput {
  if (!r.ok) return { result: 'reject', reason: r.reason };
  if (r.kind === 'relay') return { result: 'relay', next: hex(r.next), delayMs: r.delayMs, replayTag: hex(r.tag), packet: hex(r.packet) };
  if (r.kind === 'deliver') return { result: 'deliver', mailbox: hex(r.mailbox), delayMs: r.delayMs, replayTag: hex(r.tag), body: hex(r.body) };
  return { result: 'reply', mailbox: hex(r.mailbox), delayMs: r.delayMs, replayTag: hex(r.tag), surbId: hex(r.surbId), payload: hex(r.payload) };
}

export interface VectorHop {
  address: string;
  privateKey: string;
  publicKey: string;
  delayMs: number;
}

export interface Vector {
  name: string;
  kind: 'forward' | 'reply' | 'reject';
  hops: VectorHop[];
  /** Creation inputs (forward and reply). */
  secret?: string;
  padding?: string;
  mailbox?: string;
  body?: string;
  surbId?: string;
  surbKey?: string;
  surb?: string;
  /** The packet given to hop 0. */
  packet: string;
  /** Each hop's output, in route order; processing stops at the first non-relay. */
  processing: HopOutput[];
  /** Reply vectors: the body the SURB's creator reads from the final payload. */
  openedBody?: string;
}

function travel(mixes: readonly TestMix[], packet: Buffer): HopOutput[] {
  const out: HopOutput[] = [];
  let p = packet;
  for (const m of mixes) {
    const r = processPacket(p, m.privateKey, new ReplayCache());
    out.push(hopOutput(r));
    if (!r.ok || r.kind !== 'relay') break;
    p = r.packet;
  }
  return out;
}

const vhops = (mixes: readonly TestMix[], delays: readonly number[]): VectorHop[] =>
  mixes.map((m, i) => ({ address: hex(m.address), privateKey: hex(m.privateKey), publicKey: hex(m.publicKey), delayMs: delays[i] ?? 0 }));

function forward(name: string, n: number, delays: number[], bodyText: Buffer): Vector {
  const mixes = Array.from({ length: n }, (_, i) => testMix(`${name} hop ${i}`));
  const secret = bytes(`${name} secret`, 32);
  const padding = bytes(`${name} padding`, BETA_BYTES - n * SLOT_BYTES);
  const mailbox = bytes(`${name} mailbox`, 32);
  const { packet } = createPacket(routeOver(mixes, delays), mailbox, bodyText, { secret, padding });
  return {
    name, kind: 'forward', hops: vhops(mixes, delays), secret: hex(secret), padding: hex(padding), mailbox: hex(mailbox),
    body: hex(bodyText), packet: hex(packet), processing: travel(mixes, packet),
  };
}

function reply(name: string, n: number, delays: number[], bodyText: Buffer): Vector {
  const mixes = Array.from({ length: n }, (_, i) => testMix(`${name} hop ${i}`));
  const rnd = {
    secret: bytes(`${name} secret`, 32), padding: bytes(`${name} padding`, BETA_BYTES - n * SLOT_BYTES),
    id: bytes(`${name} surb id`, 16), key: bytes(`${name} surb key`, 32),
  };
  const mailbox = bytes(`${name} mailbox`, 32);
  const { surb, secret } = createSurb(routeOver(mixes, delays), mailbox, rnd);
  const { packet } = useSurb(surb, bodyText);
  const processing = travel(mixes, packet);
  const last = processing.at(-1);
  if (last?.result !== 'reply') throw new Error('reply vector did not end in a reply');
  const opened = openReply(secret, Buffer.from(last.payload, 'hex'));
  if (!opened.ok) throw new Error('reply vector did not open');
  return {
    name, kind: 'reply', hops: vhops(mixes, delays), secret: hex(rnd.secret), padding: hex(rnd.padding), mailbox: hex(mailbox),
    surbId: hex(rnd.id), surbKey: hex(rnd.key), surb: hex(encodeSurb(surb)), body: hex(bodyText), packet: hex(packet), processing,
    openedBody: hex(opened.body),
  };
}

function rejected(name: string, base: Vector, mutate: (p: Buffer) => Buffer, upTo: number): Vector {
  const p = mutate(Buffer.from(base.packet, 'hex'));
  const mixes = base.hops.slice(0, upTo).map((h) => ({ address: Buffer.from(h.address, 'hex'), privateKey: Buffer.from(h.privateKey, 'hex'), publicKey: Buffer.from(h.publicKey, 'hex') }));
  return { name, kind: 'reject', hops: base.hops.slice(0, upTo), packet: hex(p), processing: travel(mixes, p) };
}

/** Every committed vector. */
export function buildVectors(): { format: string; packetBytes: number; vectors: Vector[] } {
  const f5 = forward('forward 5 hops', 5, [0, 120, 3000, 45, 0], Buffer.from('deaddrop mixnet vector: five hops'));
  const f1 = forward('forward 1 hop', 1, [7], bytes('full body', 2032));
  const f3 = forward('forward 3 hops', 3, [1, 2, 0xffffffff], Buffer.alloc(0));
  const r5 = reply('reply 5 hops', 5, [10, 20, 30, 40, 0], Buffer.from('an answer through a SURB'));
  const r2 = reply('reply 2 hops', 2, [0, 0], bytes('reply body', 100));
  return {
    format: 'deaddrop Sphinx v1 (docs/protocol/mixnet.md); all byte strings hex',
    packetBytes: 2416,
    vectors: [
      f5, f1, f3, r5, r2,
      rejected('header bit flipped', f5, (p) => { p[200]! ^= 0x10; return p; }, 1),
      rejected('payload bit flipped', f5, (p) => { p[2000]! ^= 0x01; return p; }, 5),
      rejected('alpha of small order', f5, (p) => { p.fill(0, 0, 32); p[0] = 1; return p; }, 1),
      rejected('gamma bit flipped', f3, (p) => { p[367]! ^= 0x80; return p; }, 1),
      rejected('truncated', f3, (p) => p.subarray(0, p.length - 1), 1),
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${JSON.stringify(buildVectors(), null, 1)}\n`);
}
