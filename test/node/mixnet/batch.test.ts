/**
 * The PACKETS frame codec (wire.ts) with bad input, and the per-turn batcher (batch.ts).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PACKET_BYTES } from '../../../src/node/mixnet/params.js';
import { FRAME_PACKET, FRAME_PACKETS, MAX_BATCH_PACKETS, MAX_MIX_FRAME_BYTES, decodePackets, encodePackets } from '../../../src/node/mixnet/wire.js';
import { PacketBatcher, sendPackets } from '../../../src/node/mixnet/batch.js';
import { FRAME_HEADER_BYTES } from '../../../src/node/transport/frame.js';

const packets = (n: number): Buffer[] => Array.from({ length: n }, () => randomBytes(PACKET_BYTES));
const hex = (bs: readonly Uint8Array[]): string[] => bs.map((b) => Buffer.from(b).toString('hex'));
/** A PACKETS payload whose count byte says `count` and which holds `n` packets plus `extra` bytes. */
const raw = (count: number, n: number, extra = 0): Buffer => Buffer.concat([Uint8Array.of(count), ...packets(n), randomBytes(extra)]);

describe('PACKETS frame codec', () => {
  it('round-trips 2 to MAX_BATCH_PACKETS packets in order, and the largest batch fits one Noise message', () => {
    for (const n of [2, 3, MAX_BATCH_PACKETS]) {
      const ps = packets(n);
      const payload = encodePackets(ps);
      expect(payload.length).toBe(1 + n * PACKET_BYTES);
      expect(hex(decodePackets(payload)!)).toEqual(hex(ps));
    }
    // frame header + type-less payload of the largest batch ≤ 65,535 − 16 (Noise tag)
    expect(FRAME_HEADER_BYTES + 1 + MAX_BATCH_PACKETS * PACKET_BYTES).toBeLessThanOrEqual(65_519);
    expect(MAX_MIX_FRAME_BYTES).toBe(1 + 1 + MAX_BATCH_PACKETS * PACKET_BYTES);
  });

  it('rejects empty input, count 0, count 1, counts beyond the maximum, wrong lengths and trailing bytes', () => {
    expect(decodePackets(new Uint8Array(0))).toBeUndefined();
    expect(decodePackets(Uint8Array.of(0))).toBeUndefined(); // count 0
    expect(decodePackets(raw(0, 0, PACKET_BYTES))).toBeUndefined(); // count 0 with bytes after it
    expect(decodePackets(raw(1, 1))).toBeUndefined(); // one packet goes in a PACKET frame
    expect(decodePackets(raw(MAX_BATCH_PACKETS + 1, MAX_BATCH_PACKETS + 1))).toBeUndefined(); // beyond the maximum, length consistent
    expect(decodePackets(raw(255, 2))).toBeUndefined();
    expect(decodePackets(raw(3, 2))).toBeUndefined(); // count says 3, holds 2
    expect(decodePackets(raw(2, 3))).toBeUndefined(); // count says 2, holds 3
    expect(decodePackets(raw(2, 2, 1))).toBeUndefined(); // one trailing byte
    expect(decodePackets(raw(2, 2).subarray(0, 1 + 2 * PACKET_BYTES - 1))).toBeUndefined(); // truncated by one byte
    expect(decodePackets(raw(2, 2))).toHaveLength(2);
  });

  it('decodes views of a payload that sits inside a larger buffer (as the frame decoder hands it)', () => {
    const ps = packets(4);
    const outer = Buffer.concat([randomBytes(7), encodePackets(ps), randomBytes(9)]);
    const view = new Uint8Array(outer.buffer, outer.byteOffset + 7, 1 + 4 * PACKET_BYTES);
    expect(hex(decodePackets(view)!)).toEqual(hex(ps));
  });

  it('refuses to encode fewer than 2, more than the maximum, or packets of the wrong size', () => {
    expect(() => encodePackets([])).toThrow(RangeError);
    expect(() => encodePackets(packets(1))).toThrow(RangeError);
    expect(() => encodePackets(packets(MAX_BATCH_PACKETS + 1))).toThrow(RangeError);
    expect(() => encodePackets([randomBytes(PACKET_BYTES), randomBytes(PACKET_BYTES - 1)])).toThrow(RangeError);
  });
});

describe('PacketBatcher', () => {
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

  it('sends what is pushed in one turn at the end of that turn, per hop, in order, cut at the maximum', async () => {
    const sent: [string, string[]][] = [];
    const b = new PacketBatcher((key, ps) => sent.push([key, hex(ps)]));
    const a = packets(MAX_BATCH_PACKETS + 3);
    const c = packets(2);
    for (const [i, p] of a.entries()) {
      b.push('a', p);
      if (i < c.length) b.push('c', c[i]!);
    }
    expect(sent).toEqual([]);
    expect(b.pending).toBe(a.length + c.length);
    await turn();
    expect(sent).toEqual([
      ['a', hex(a.slice(0, MAX_BATCH_PACKETS))],
      ['a', hex(a.slice(MAX_BATCH_PACKETS))],
      ['c', hex(c)],
    ]);
    expect(b.pending).toBe(0);
  });

  it('keeps packets of different turns apart, and timers due in one turn together', async () => {
    const sent: number[] = [];
    const b = new PacketBatcher((_key, ps) => sent.push(ps.length));
    b.push('x', randomBytes(1));
    await turn();
    b.push('x', randomBytes(1));
    b.push('x', randomBytes(1));
    await turn();
    expect(sent).toEqual([1, 2]);
    // Three timers of the same due time fire in one timers phase: their packets leave together.
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 3; i++) setTimeout(() => b.push('x', randomBytes(1)), 5);
      setTimeout(() => setImmediate(resolve), 5);
    });
    await turn();
    expect(sent).toEqual([1, 2, 3]);
  });

  it('flush sends at once, clear forgets, maxBatch 1 turns batching off', async () => {
    const sent: number[] = [];
    const one = new PacketBatcher((_key, ps) => sent.push(ps.length), 1);
    one.push('x', randomBytes(1));
    one.push('x', randomBytes(1));
    one.flush();
    expect(sent).toEqual([1, 1]);
    one.push('x', randomBytes(1));
    one.clear();
    await turn();
    expect(sent).toEqual([1, 1]);
    expect(() => new PacketBatcher(() => undefined, 0)).toThrow(RangeError);
    expect(() => new PacketBatcher(() => undefined, MAX_BATCH_PACKETS + 1)).toThrow(RangeError);
  });

  it('sendPackets: a PACKET frame for one packet, a PACKETS frame for more', () => {
    const frames: [number, number][] = [];
    const ch = { send: (type: number, payload: Uint8Array): boolean => frames.push([type, payload.length]) > 0 };
    sendPackets(ch, packets(1));
    sendPackets(ch, packets(5));
    expect(frames).toEqual([[FRAME_PACKET, PACKET_BYTES], [FRAME_PACKETS, 1 + 5 * PACKET_BYTES]]);
  });
});
