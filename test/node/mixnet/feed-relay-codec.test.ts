/** The feed relay's wire format (HAVE, PART, reassembled messages) and its reassembly bounds, with bad input. */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { ZERO_HASH, createEntry } from '../../../src/node/log/codec.js';
import {
  MAX_HAVE_FEEDS, MAX_PARTS, RELAY_PART_DATA, RELAY_PLAIN_BYTES, decodeRelay, decodeRelayMessage, encodeEntriesMessage, encodeHave,
  encodePart, encodeWhereaboutsMessage, groupEntries, splitMessage,
} from '../../../src/node/mixnet/feed-relay-codec.js';
import type { RelayPart } from '../../../src/node/mixnet/feed-relay-codec.js';
import { PartsBuffer } from '../../../src/node/mixnet/feed-relay-parts.js';
import { openBody, sealBody } from '../../../src/node/mixnet/message.js';
import { BODY_BYTES } from '../../../src/node/mixnet/params.js';
import { utf8 } from '../../../src/node/crypto.js';

const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const clock = (n: number) => Array.from({ length: n }, (_, i) => ({ feed: rnd(32), seq: i * 1000 + 1, head: rnd(32) }));

function entries(n: number, bodyBytes: number): Uint8Array[] {
  const id = NodeIdentity.fromSeed(rnd(32));
  const out: Uint8Array[] = [];
  let prev = ZERO_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e = createEntry(id, { seq, prev, timestamp: 1, header: { type: 'test/post' }, body: rnd(bodyBytes) });
    prev = e.hash;
    out.push(e.raw);
  }
  return out;
}

describe('feed relay codec', () => {
  it('fits its largest plaintext exactly into one sealed packet body', () => {
    const a = NodeIdentity.fromSeed(rnd(32));
    const b = NodeIdentity.fromSeed(rnd(32));
    const body = sealBody(a, b.publicKey, rnd(RELAY_PLAIN_BYTES));
    expect(body.length).toBe(BODY_BYTES);
    expect(openBody(b, body)?.plain.length).toBe(RELAY_PLAIN_BYTES);
    expect(() => sealBody(a, b.publicKey, rnd(RELAY_PLAIN_BYTES + 1))).toThrow(RangeError);
    expect(encodeHave(0, clock(MAX_HAVE_FEEDS)).length).toBeLessThanOrEqual(RELAY_PLAIN_BYTES);
    expect(encodePart(rnd(8), 0, 1, rnd(RELAY_PART_DATA)).length).toBe(RELAY_PLAIN_BYTES);
  });

  it('round-trips HAVE and refuses malformed ones', () => {
    const c = clock(MAX_HAVE_FEEDS);
    const h = encodeHave(123_456, c);
    expect(decodeRelay(h)).toEqual({ kind: 'have', wseq: 123_456, clock: c });
    expect(decodeRelay(encodeHave(0, []))).toEqual({ kind: 'have', wseq: 0, clock: [] });
    expect(() => encodeHave(0, clock(MAX_HAVE_FEEDS + 1))).toThrow(RangeError);
    expect(() => encodeHave(-1, [])).toThrow(RangeError);
    expect(decodeRelay(h.subarray(0, h.length - 1))).toBeNull(); // truncated
    expect(decodeRelay(Uint8Array.from([...h, 0]))).toBeNull(); // trailing byte
    const v2 = h.slice();
    v2[1] = 2;
    expect(decodeRelay(v2)).toBeNull(); // unknown version
    const big = h.slice();
    big[2] = 0xff; // wseq above 2^53
    expect(decodeRelay(big)).toBeNull();
    const seqBig = h.slice();
    seqBig[10 + 4 + 32] = 0xff; // first clock seq above 2^53
    expect(decodeRelay(seqBig)).toBeNull();
    const count = h.slice();
    count[10 + 3] = MAX_HAVE_FEEDS + 1; // count disagrees with the length
    expect(decodeRelay(count)).toBeNull();
  });

  it('splits and reassembles messages, and refuses malformed PARTs', () => {
    const msg = encodeEntriesMessage(entries(3, 3000), true);
    const id = rnd(8);
    const parts = splitMessage(id, msg).map((p) => decodeRelay(p) as RelayPart);
    expect(parts.length).toBe(Math.ceil(msg.length / RELAY_PART_DATA));
    const buf = new PartsBuffer();
    const from = rnd(32);
    const outcomes = [...parts].reverse().map((p) => buf.add(from, p));
    const done = outcomes.at(-1);
    expect(outcomes.slice(0, -1).every((o) => o === 'waiting')).toBe(true);
    expect(typeof done === 'object' && Buffer.from(done.done).equals(Buffer.from(msg))).toBe(true);
    expect(decodeRelayMessage(msg)).toMatchObject({ type: 'entries', more: true });
    expect(buf.size).toBe(0);

    const p0 = encodePart(id, 0, 2, rnd(RELAY_PART_DATA));
    for (const bad of [
      p0.subarray(0, 14), // no data
      Uint8Array.from([0x11, 1, ...id, 0, 2, 0, 2, 1]), // index = total
      Uint8Array.from([0x11, 1, ...id, 0, 0, 0, 0, 1]), // total 0
      Uint8Array.from([0x11, 1, ...id, 0, 0, 0xff, 0xff, 1]), // total above MAX_PARTS
      Uint8Array.from([0x11, 1, ...id, 0, 0, 0, 1, ...rnd(RELAY_PART_DATA + 1)]), // too long for a packet
      Uint8Array.from([0x12, 1, 0]), // unknown kind
      Uint8Array.from([0x01, 0, 5, ...utf8('hello')]), // a text message is not ours
      new Uint8Array(0),
    ]) expect(decodeRelay(bad)).toBeNull();
    expect(() => encodePart(id, 0, MAX_PARTS + 1, rnd(1))).toThrow(RangeError);
    // a short PART that is not the last is refused, and so is a total that changes mid-message
    expect(buf.add(from, { kind: 'part', msgId: id, index: 0, total: 2, data: rnd(10) })).toBe('malformed');
    expect(buf.add(from, { kind: 'part', msgId: id, index: 0, total: 2, data: rnd(RELAY_PART_DATA) })).toBe('waiting');
    expect(buf.add(from, { kind: 'part', msgId: id, index: 2, total: 3, data: rnd(5) })).toBe('malformed');
  });

  it('bounds what one sender can leave waiting, and expires incomplete messages', () => {
    let now = 0;
    const buf = new PartsBuffer({ maxMessages: 2, maxBytes: 3 * RELAY_PART_DATA - 1, timeoutMs: 1000, now: () => now });
    const from = rnd(32);
    const part = (id: Uint8Array): RelayPart => ({ kind: 'part', msgId: id, index: 0, total: 3, data: rnd(RELAY_PART_DATA) });
    expect(buf.add(from, part(rnd(8)))).toBe('waiting');
    expect(buf.add(from, part(rnd(8)))).toBe('waiting');
    expect(buf.add(from, part(rnd(8)))).toBe('over-budget'); // a third message
    expect(buf.add(rnd(32), part(rnd(8)))).toBe('waiting'); // another sender is not affected
    now = 2000;
    expect(buf.add(from, part(rnd(8)))).toBe('waiting'); // the old ones expired
    expect(buf.expired).toBe(3);
    const id = rnd(8);
    expect(buf.add(from, { ...part(id), index: 0 })).toBe('waiting');
    expect(buf.add(from, { ...part(id), index: 1 })).toBe('over-budget'); // a third full PART waiting would pass the byte cap
  });

  it('decodes messages strictly', () => {
    const raws = entries(2, 10);
    expect(decodeRelayMessage(encodeEntriesMessage(raws, false))).toEqual({ type: 'entries', raws, more: false });
    const bundle = rnd(300);
    expect(decodeRelayMessage(encodeWhereaboutsMessage(bundle))).toEqual({ type: 'whereabouts', bundle });
    const m = encodeEntriesMessage(raws, false);
    for (const bad of [
      Uint8Array.from([3, 0, 0]), // unknown type
      Uint8Array.from([1, 2, ...m.subarray(2)]), // unknown flag
      Uint8Array.from([2, 1, 1, 2, 3]), // whereabouts with a flag
      encodeEntriesMessage([], false), // no entries
      m.subarray(0, m.length - 1), // truncated
      Uint8Array.from([...m, 0]), // trailing
    ]) expect(decodeRelayMessage(bad)).toBeNull();
  });

  it('packs small entries into one PART each group and gives a large one a message of its own', () => {
    const small = entries(40, 100);
    const groups = groupEntries(small);
    expect(groups.flat()).toEqual(small);
    for (const g of groups) expect(encodeEntriesMessage(g, false).length).toBeLessThanOrEqual(RELAY_PART_DATA);
    expect(groups.length).toBeLessThan(10);
    const big = entries(1, 5000);
    expect(groupEntries([...small.slice(0, 2), ...big])).toEqual([small.slice(0, 2), big]);
  });

  it('never throws on arbitrary input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2100 }), (b) => {
      decodeRelay(b);
      decodeRelayMessage(b);
      const withKind = Uint8Array.from([0x10 + (b[0] ?? 0) % 2, 1, ...b]);
      decodeRelay(withKind);
    }));
  });
});
