/**
 * Mixnet packet benchmarks (docs/protocol/mixnet.md), each beside the raw X25519 rate of this core
 * measured in the same run, turns alternating so that load from other processes hits both alike:
 *
 * - mixnet.unwrap   packets/s per core: Sphinx processing of one 5-hop packet at its first hop
 *                   (X25519 shared secret, HKDF, header MAC, replay check against a cache already
 *                   holding 100,000 tags, routing and payload decryption, re-blinding alpha).
 *                   The mix node (queueing and forwarding on loopback) does not exist yet, so this
 *                   is the unwrap and the replay check alone. Goal ≥ 5,000/s, at least 2,000/s.
 *                   Anchor: raw libsodium X25519 (crypto_scalarmult) per second. A hop needs two
 *                   X25519 operations (shared secret and blinding), so the ceiling is ratio 0.5.
 * - mixnet.create   5-hop forward packets/s. Anchor: raw X25519/s divided by 19, the X25519
 *                   operations a 5-hop packet needs with blinding (spec, "Key blinding").
 */
import { randomBytes } from 'node:crypto';
import { createPacket, processPacket } from '../src/node/mixnet/sphinx.js';
import type { ReplayGuard, RouteHop } from '../src/node/mixnet/sphinx.js';
import { x25519, x25519Base } from '../src/node/mixnet/primitives.js';
import { compare, lastResult, round } from './measure.js';
import type { Emit } from './types.js';

const POOL = 256;
const PREFILL = 100_000;

/** The replay cache of src/node/mixnet/replay.ts, plus forgetting, so the packet pool can be reused. */
class BenchReplay implements ReplayGuard {
  readonly seen = new Set<string>();
  admit(tag: Uint8Array): boolean {
    const k = Buffer.from(tag.buffer, tag.byteOffset, tag.byteLength).toString('latin1');
    if (this.seen.has(k)) return false;
    this.seen.add(k);
    return true;
  }
}

export async function run(emit: Emit): Promise<void> {
  const keys = Array.from({ length: 5 }, () => randomBytes(32));
  const route: RouteHop[] = keys.map((k) => ({ address: randomBytes(32), publicKey: x25519Base(k), delayMs: 0 }));
  const mailbox = randomBytes(32);
  const body = randomBytes(1000);
  const packets = Array.from({ length: POOL }, () => createPacket(route, mailbox, body).packet);

  const replay = new BenchReplay();
  for (let i = 0; i < PREFILL; i++) replay.admit(randomBytes(16));
  let next = 0;
  let tags: string[] = [];
  const unwrap = (): unknown => {
    if (next === POOL) {
      // Reuse the pool: forget only the pool's own tags (the prefilled 100,000 stay).
      for (const t of tags) replay.seen.delete(t);
      tags = [];
      next = 0;
    }
    const r = processPacket(packets[next++]!, keys[0]!, replay);
    if (!r.ok) throw new Error(`bench packet rejected: ${r.reason}`);
    tags.push(r.tag.toString('latin1'));
    return r;
  };
  const scalar = randomBytes(32);
  const point = route[1]!.publicKey;
  const raw = (): unknown => x25519(scalar, point);

  const u = compare(unwrap, raw, { rounds: 7, sliceMs: 300 });
  if (lastResult() === undefined) throw new Error('no result');
  const unwrapRate = 1000 / u.ours.medianMs;
  const rawRate = 1000 / u.anchor.medianMs;
  emit({ name: 'mixnet.unwrap', unit: 'packets/s', value: round(unwrapRate), anchor: 'raw X25519 (libsodium crypto_scalarmult), the ceiling is 0.5 of it', anchorValue: round(rawRate), ratio: round(unwrapRate / rawRate) });

  const create = (): unknown => createPacket(route, mailbox, body);
  const c = compare(create, raw, { rounds: 5, sliceMs: 300 });
  const createRate = 1000 / c.ours.medianMs;
  const ceiling = 1000 / c.anchor.medianMs / 19;
  emit({ name: 'mixnet.create', unit: 'packets/s', value: round(createRate), anchor: 'raw X25519/s ÷ 19 (X25519 operations per 5-hop packet)', anchorValue: round(ceiling), ratio: round(createRate / ceiling) });
}
