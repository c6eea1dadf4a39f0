import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BODY_BYTES, HEADER_BYTES, MAX_HOPS, PACKET_BYTES, PAYLOAD_BYTES } from '../../../src/node/mixnet/params.js';
import { MixKeyring, ReplayCache } from '../../../src/node/mixnet/replay.js';
import {
  createPacket, createSurb, decodeSurb, encodeSurb, openReply, processPacket, useSurb,
} from '../../../src/node/mixnet/sphinx.js';
import type { ProcessResult } from '../../../src/node/mixnet/sphinx.js';
import { routeOver, testMix } from '../../support/mixnet.js';
import type { TestMix } from '../../support/mixnet.js';

/** Runs `packet` through `mixes` in order, each with a fresh replay cache; returns every hop's result. */
function travel(mixes: readonly TestMix[], packet: Buffer): ProcessResult[] {
  const results: ProcessResult[] = [];
  let p = packet;
  for (const m of mixes) {
    const r = processPacket(p, m.privateKey, new ReplayCache());
    results.push(r);
    if (!r.ok || r.kind !== 'relay') break;
    p = r.packet;
  }
  return results;
}

const POOL = Array.from({ length: 8 }, (_, i) => testMix(`pool ${i}`));

describe('Sphinx packets', () => {
  it('has one fixed packet size of 2,416 bytes', () => {
    expect(PACKET_BYTES).toBe(2416);
    const { packet } = createPacket(routeOver(POOL.slice(0, 5)), Buffer.alloc(32, 7), Buffer.from('hi'));
    expect(packet.length).toBe(PACKET_BYTES);
  });

  it('carries a body through a 5-hop route, each hop learning only the next hop and its delay', () => {
    const mixes = POOL.slice(0, 5);
    const mailbox = Buffer.alloc(32, 9);
    const body = Buffer.from('meet at the usual place');
    const { firstHop, packet } = createPacket(routeOver(mixes, [0, 10, 20, 30, 40]), mailbox, body);
    expect(firstHop.equals(mixes[0]!.address)).toBe(true);
    const results = travel(mixes, packet);
    expect(results).toHaveLength(5);
    for (let i = 0; i < 4; i++) {
      const r = results[i]!;
      if (!r.ok || r.kind !== 'relay') throw new Error(`hop ${i}: ${JSON.stringify(r)}`);
      expect(r.next.equals(mixes[i + 1]!.address)).toBe(true);
      expect(r.delayMs).toBe(i * 10);
      expect(r.packet.length).toBe(PACKET_BYTES);
    }
    const last = results[4]!;
    if (!last.ok || last.kind !== 'deliver') throw new Error(JSON.stringify(last));
    expect(last.mailbox.equals(mailbox)).toBe(true);
    expect(last.delayMs).toBe(40);
    expect(last.body.subarray(0, body.length).equals(body)).toBe(true);
    expect(last.body.length).toBe(BODY_BYTES);
  });

  it('round-trips random bodies over random routes of 1 to 5 hops (property)', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(POOL, { minLength: 1, maxLength: MAX_HOPS }),
        fc.uint8Array({ maxLength: BODY_BYTES }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: MAX_HOPS, maxLength: MAX_HOPS }),
        (mixes, body, delays) => {
          const { packet } = createPacket(routeOver(mixes, delays), Buffer.alloc(32, 1), body);
          const results = travel(mixes, packet);
          const last = results[results.length - 1]!;
          expect(results).toHaveLength(mixes.length);
          if (!last.ok || last.kind !== 'deliver') throw new Error(JSON.stringify(last));
          expect(last.body.subarray(0, body.length).equals(Buffer.from(body))).toBe(true);
          expect(last.delayMs).toBe(delays[mixes.length - 1]);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('drops a packet with any single bit flipped, at some hop of the route (property)', () => {
    const mixes = POOL.slice(0, 5);
    const { packet } = createPacket(routeOver(mixes), Buffer.alloc(32, 2), Buffer.from('payload'));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: PACKET_BYTES * 8 - 1 }), (bit) => {
        const bad = Buffer.from(packet);
        bad[bit >> 3]! ^= 1 << (bit & 7);
        const results = travel(mixes, bad);
        const last = results[results.length - 1]!;
        expect(last.ok).toBe(false);
        // Header bits are caught by the first hop's MAC; payload bits by the exit's payload MAC.
        if (bit < HEADER_BYTES * 8) {
          expect(results).toHaveLength(1);
          expect(['mac', 'point']).toContain((last as { reason: string }).reason);
        } else {
          expect(results).toHaveLength(5);
          expect(last).toEqual({ ok: false, reason: 'payload' });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('drops a bit flipped in a relayed packet at the next hop', () => {
    const mixes = POOL.slice(0, 5);
    const { packet } = createPacket(routeOver(mixes), Buffer.alloc(32, 2), Buffer.from('payload'));
    const r = processPacket(packet, mixes[0]!.privateKey, new ReplayCache());
    if (!r.ok || r.kind !== 'relay') throw new Error('relay expected');
    for (const byte of [0, 31, 32, 200, HEADER_BYTES - 1]) {
      const bad = Buffer.from(r.packet);
      bad[byte]! ^= 0x80;
      const out = processPacket(bad, mixes[1]!.privateKey, new ReplayCache());
      expect(out.ok).toBe(false);
    }
  });

  it('drops a replayed packet under the same key and accepts it under another epoch cache', () => {
    const mixes = POOL.slice(0, 3);
    const { packet } = createPacket(routeOver(mixes), Buffer.alloc(32, 3), Buffer.from('x'));
    const cache = new ReplayCache();
    expect(processPacket(packet, mixes[0]!.privateKey, cache).ok).toBe(true);
    expect(processPacket(packet, mixes[0]!.privateKey, cache)).toEqual({ ok: false, reason: 'replay' });
    expect(cache.size).toBe(1);
  });

  it('does not record the tag of a packet whose MAC fails', () => {
    const mixes = POOL.slice(0, 3);
    const { packet } = createPacket(routeOver(mixes), Buffer.alloc(32, 3), Buffer.from('x'));
    const cache = new ReplayCache();
    const bad = Buffer.from(packet);
    bad[100]! ^= 1;
    expect(processPacket(bad, mixes[0]!.privateKey, cache)).toEqual({ ok: false, reason: 'mac' });
    expect(cache.size).toBe(0);
    expect(processPacket(packet, mixes[0]!.privateKey, cache).ok).toBe(true);
  });

  it('rejects wrong sizes, small-order points and wrong keys with a typed reason, never a throw', () => {
    const mixes = POOL.slice(0, 3);
    const { packet } = createPacket(routeOver(mixes), Buffer.alloc(32, 4), Buffer.from('x'));
    const key = mixes[0]!.privateKey;
    expect(processPacket(packet.subarray(1), key, new ReplayCache())).toEqual({ ok: false, reason: 'size' });
    expect(processPacket(Buffer.concat([packet, Buffer.alloc(1)]), key, new ReplayCache())).toEqual({ ok: false, reason: 'size' });
    expect(processPacket(Buffer.alloc(0), key, new ReplayCache())).toEqual({ ok: false, reason: 'size' });
    const zeroPoint = Buffer.from(packet);
    zeroPoint.fill(0, 0, 32);
    expect(processPacket(zeroPoint, key, new ReplayCache())).toEqual({ ok: false, reason: 'point' });
    const onePoint = Buffer.from(zeroPoint);
    onePoint[0] = 1;
    expect(processPacket(onePoint, key, new ReplayCache())).toEqual({ ok: false, reason: 'point' });
    expect(processPacket(packet, mixes[1]!.privateKey, new ReplayCache())).toEqual({ ok: false, reason: 'mac' });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: PACKET_BYTES, maxLength: PACKET_BYTES }), (junk) => {
        const r = processPacket(junk, key, new ReplayCache());
        expect(r.ok).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it('makes packets for the same route unlinkable: every hop sees fresh alpha and beta', () => {
    const mixes = POOL.slice(0, 3);
    const a = createPacket(routeOver(mixes), Buffer.alloc(32, 5), Buffer.from('x')).packet;
    const b = createPacket(routeOver(mixes), Buffer.alloc(32, 5), Buffer.from('x')).packet;
    expect(a.subarray(0, 32).equals(b.subarray(0, 32))).toBe(false);
    const ra = processPacket(a, mixes[0]!.privateKey, new ReplayCache());
    if (!ra.ok || ra.kind !== 'relay') throw new Error('relay expected');
    // The outgoing packet shares no 16-byte window with the incoming one (no visible invariant).
    const seen = new Set<string>();
    for (let i = 0; i + 16 <= PACKET_BYTES; i += 16) seen.add(a.subarray(i, i + 16).toString('hex'));
    for (let i = 0; i + 16 <= PACKET_BYTES; i += 16) expect(seen.has(ra.packet.subarray(i, i + 16).toString('hex'))).toBe(false);
  });
});

describe('single-use reply blocks', () => {
  it('brings a reply to the creator, and only the creator can read it (property)', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(POOL, { minLength: 1, maxLength: MAX_HOPS }),
        fc.uint8Array({ maxLength: BODY_BYTES }),
        (mixes, body) => {
          const mailbox = Buffer.alloc(32, 0xaa);
          const { surb, secret } = createSurb(routeOver(mixes), mailbox);
          const carried = decodeSurb(encodeSurb(surb));
          if (carried === undefined) throw new Error('SURB did not decode');
          const { firstHop, packet } = useSurb(carried, body);
          expect(firstHop.equals(mixes[0]!.address)).toBe(true);
          expect(packet.length).toBe(PACKET_BYTES);
          const results = travel(mixes, packet);
          const last = results[results.length - 1]!;
          if (!last.ok || last.kind !== 'reply') throw new Error(JSON.stringify(last));
          expect(last.mailbox.equals(mailbox)).toBe(true);
          expect(last.surbId.equals(secret.id)).toBe(true);
          expect(last.payload.length).toBe(PAYLOAD_BYTES);
          const opened = openReply(secret, last.payload);
          if (!opened.ok) throw new Error('creator could not open its reply');
          expect(opened.body.subarray(0, body.length).equals(Buffer.from(body))).toBe(true);
          // Someone else's SURB secret (another SURB over the same route) reads nothing.
          const other = createSurb(routeOver(mixes), mailbox).secret;
          expect(openReply({ ...other, id: secret.id }, last.payload)).toEqual({ ok: false, reason: 'payload' });
        },
      ),
      { numRuns: 30 },
    );
  });

  it('detects a flipped bit in a reply payload when the creator opens it', () => {
    const mixes = POOL.slice(0, 5);
    const { surb, secret } = createSurb(routeOver(mixes), Buffer.alloc(32, 1));
    const { packet } = useSurb(surb, Buffer.from('ack'));
    packet[HEADER_BYTES + 77]! ^= 4;
    const last = travel(mixes, packet).at(-1)!;
    if (!last.ok || last.kind !== 'reply') throw new Error('reply expected');
    expect(openReply(secret, last.payload)).toEqual({ ok: false, reason: 'payload' });
  });

  it('is single-use: the same SURB used twice is dropped as a replay at the first hop', () => {
    const mixes = POOL.slice(0, 3);
    const { surb } = createSurb(routeOver(mixes), Buffer.alloc(32, 1));
    const cache = new ReplayCache();
    expect(processPacket(useSurb(surb, Buffer.from('one')).packet, mixes[0]!.privateKey, cache).ok).toBe(true);
    expect(processPacket(useSurb(surb, Buffer.from('two')).packet, mixes[0]!.privateKey, cache)).toEqual({ ok: false, reason: 'replay' });
  });
});

describe('MixKeyring', () => {
  it('accepts packets for the current and previous epoch, and forgets the old cache with the old key', () => {
    const old = testMix('ring old');
    const cur = testMix('ring new');
    const next = testMix('ring next');
    const ring = new MixKeyring({ epoch: 1, privateKey: old.privateKey });
    const forOld = createPacket(routeOver([{ ...old, address: old.address }]), Buffer.alloc(32), Buffer.from('a')).packet;
    expect(ring.process(forOld).ok).toBe(true);
    ring.rotate({ epoch: 2, privateKey: cur.privateKey });
    expect(ring.epochs).toEqual([2, 1]);
    // Replay of a packet seen in epoch 1 is still caught while epoch 1's key is accepted.
    expect(ring.process(forOld)).toEqual({ ok: false, reason: 'replay' });
    const forCur = createPacket(routeOver([cur]), Buffer.alloc(32), Buffer.from('b')).packet;
    expect(ring.process(forCur).ok).toBe(true);
    ring.rotate({ epoch: 3, privateKey: next.privateKey });
    // Epoch 1's key is gone: its packets fail the MAC rather than being remembered.
    expect(ring.process(forOld)).toEqual({ ok: false, reason: 'mac' });
    expect(ring.process(forCur)).toEqual({ ok: false, reason: 'replay' });
    ring.dropPrevious();
    expect(ring.process(forCur)).toEqual({ ok: false, reason: 'mac' });
    expect(() => ring.rotate({ epoch: 3, privateKey: next.privateKey })).toThrow(RangeError);
  });
});
