/** The codec of storage reads through the mixnet (src/node/storage/mix-codec.ts): round trips and bad input. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readAnnouncement, announcementDraft } from '../../../src/node/storage/announce.js';
import {
  decodeReply, decodeRequest, decodeResponse, encodeRequest, encodeResponse, GET_HEAD, MAX_GET_LENGTH, MAX_PUT_CHUNK, MAX_REQUEST_SURBS, REPLY_DATA, splitReply, STORE_REPLY, STORE_REQUEST,
  type StoreRequest,
} from '../../../src/node/storage/mix-codec.js';
import { RELAY_PLAIN_BYTES } from '../../../src/node/mixnet/feed-relay-codec.js';
import { BODY_BYTES } from '../../../src/node/mixnet/params.js';
import { SURB_BYTES } from '../../../src/node/mixnet/sphinx.js';
import { createEntry, ZERO_HASH } from '../../../src/node/log/codec.js';
import { NodeIdentity } from '../../../src/node/identity.js';

const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const SI = 'abcdefghijklmnopqrstuvwxyz';
const req = (over: Partial<StoreRequest> = {}): StoreRequest => ({
  reqId: rnd(8), op: 'get', si: SI, num: 7, offset: 2 ** 40 + 3, length: MAX_GET_LENGTH, surbs: [rnd(SURB_BYTES), rnd(SURB_BYTES), rnd(SURB_BYTES), rnd(SURB_BYTES)], ...over,
});

describe('storage over the mixnet: requests', () => {
  it('fits one sealed body with four SURBs, and round-trips', () => {
    expect(MAX_REQUEST_SURBS).toBe(4);
    const r = req({ si: 'a'.repeat(64) });
    const b = encodeRequest(r);
    expect(b.length).toBeLessThanOrEqual(RELAY_PLAIN_BYTES);
    expect(decodeRequest(b)).toEqual(r);
    const l = req({ op: 'list', num: 0, offset: 0, length: 0, surbs: [rnd(SURB_BYTES)] });
    expect(decodeRequest(encodeRequest(l))).toEqual(l);
  });

  it('carries a lease renewal: the secret, and the duration in the offset field', () => {
    const r = req({ op: 'renew', num: 0, offset: 31 * 86_400_000, length: 0, surbs: [rnd(SURB_BYTES)], leaseSecret: rnd(32) });
    const b = encodeRequest(r);
    expect(decodeRequest(b)).toEqual(r);
    expect(() => encodeRequest({ ...r, leaseSecret: rnd(31) })).toThrow(RangeError);
    expect(() => encodeRequest({ ...r, leaseSecret: undefined })).toThrow(RangeError);
    expect(() => encodeRequest({ ...req({ op: 'list', num: 0, offset: 0, length: 0 }), leaseSecret: rnd(32) })).toThrow(RangeError);
    expect(() => encodeRequest({ ...r, length: 1 })).toThrow(RangeError);
    // Without its secret (or with one byte more) the bytes do not decode.
    const siEnd = 12 + SI.length;
    expect(decodeRequest(Uint8Array.from([...b.subarray(0, siEnd + 12), ...b.subarray(siEnd + 12 + 32)]))).toBeNull();
    expect(decodeRequest(Uint8Array.of(...b, 0))).toBeNull();
    const withLength = b.slice();
    withLength[siEnd + 10] = 1;
    expect(decodeRequest(withLength)).toBeNull();
    expect(decodeResponse('renew', encodeResponse({ status: 'ok' }))).toEqual({ status: 'ok' });
    for (const status of ['not-allowed', 'no-lease'] as const) expect(decodeResponse('renew', encodeResponse({ status }))).toEqual({ status });
    expect(decodeResponse('renew', Uint8Array.of(0, 1))).toBeNull();
  });

  it('carries a put of one chunk of a share in one sealed body, and decodes no malformed one', () => {
    expect(MAX_PUT_CHUNK).toBeGreaterThan(1000);
    const put = (over: Partial<StoreRequest> = {}): StoreRequest => {
      const data = over.data ?? rnd(MAX_PUT_CHUNK);
      return req({ op: 'put', num: 3, offset: 2 ** 33, length: data.length, surbs: [rnd(SURB_BYTES)], leaseSecret: rnd(32), total: 2 ** 34, durationMs: 31 * 86_400_000, data, ...over });
    };
    const r = put({ si: 'a'.repeat(64) });
    const b = encodeRequest(r);
    expect(b.length).toBe(RELAY_PLAIN_BYTES);
    expect(decodeRequest(b)).toEqual(r);
    const last = put({ offset: 10, total: 20, data: rnd(10) });
    expect(decodeRequest(encodeRequest(last))).toEqual(last);
    // Values a put cannot carry.
    expect(() => encodeRequest(put({ data: rnd(MAX_PUT_CHUNK + 1) }))).toThrow(RangeError);
    expect(() => encodeRequest({ ...put(), length: 5 })).toThrow(RangeError);
    expect(() => encodeRequest(put({ offset: 15, total: 20, data: rnd(10) }))).toThrow(RangeError);
    expect(() => encodeRequest(put({ offset: 0, total: 20, data: rnd(0) }))).toThrow(RangeError);
    expect(() => encodeRequest(put({ durationMs: 0 }))).toThrow(RangeError);
    expect(() => encodeRequest(put({ leaseSecret: undefined }))).toThrow(RangeError);
    expect(() => encodeRequest(put({ total: undefined }))).toThrow(RangeError);
    expect(() => encodeRequest(req({ data: rnd(10) }))).toThrow(RangeError);
    // Malformed bytes: cut, longer, length past the data, past the total, zero total or duration.
    const small = encodeRequest(last);
    const siEnd = 12 + SI.length;
    const field = (at: number, bytes: number[]): Uint8Array => {
      const c = small.slice();
      c.set(bytes, at);
      return c;
    };
    expect(decodeRequest(small.subarray(0, small.length - 1))).toBeNull();
    expect(decodeRequest(Uint8Array.of(...small, 0))).toBeNull();
    expect(decodeRequest(field(siEnd + 7, [0, 0, 0, 11]))).toBeNull(); // length 11: the SURB is cut
    expect(decodeRequest(field(siEnd + 12 + 32, [0, 0, 0, 0, 0, 19]))).toBeNull(); // total below offset + length
    expect(decodeRequest(field(siEnd + 12 + 32, [0, 0, 0, 0, 0, 0]))).toBeNull(); // total 0
    expect(decodeRequest(field(siEnd + 12 + 38, [0, 0, 0, 0, 0, 0]))).toBeNull(); // no lease duration
    expect(decodeRequest(field(siEnd + 7, [0, 0, 0xff, 0xff]))).toBeNull(); // longer than a chunk
    expect(decodeRequest(field(10, [5]))).toBeNull(); // unknown op
    // Answers: ok, or a refusal the owner can act on.
    expect(decodeResponse('put', encodeResponse({ status: 'ok' }))).toEqual({ status: 'ok' });
    for (const status of ['not-allowed', 'quota-exceeded', 'too-large', 'share-exists', 'bad-request'] as const) expect(decodeResponse('put', encodeResponse({ status }))).toEqual({ status });
    expect(decodeResponse('put', Uint8Array.of(0, 0))).toBeNull();
    expect(decodeResponse('put', Uint8Array.of(9))).toBeNull();
  });

  it('refuses values it cannot carry', () => {
    expect(() => encodeRequest(req({ length: MAX_GET_LENGTH + 1 }))).toThrow(RangeError);
    expect(() => encodeRequest(req({ surbs: [] }))).toThrow(RangeError);
    expect(() => encodeRequest(req({ surbs: Array.from({ length: 5 }, () => rnd(SURB_BYTES)) }))).toThrow(RangeError);
    expect(() => encodeRequest(req({ si: 'UPPER' }))).toThrow(RangeError);
    expect(() => encodeRequest(req({ num: 256 }))).toThrow(RangeError);
    expect(() => encodeRequest(req({ reqId: rnd(7) }))).toThrow(RangeError);
  });

  it('decodes nothing malformed', () => {
    const good = encodeRequest(req());
    const at = (i: number, v: number): Uint8Array => {
      const b = good.slice();
      b[i] = v;
      return b;
    };
    const siEnd = 12 + SI.length;
    const bad: Uint8Array[] = [
      new Uint8Array(0),
      good.subarray(0, 20),
      at(0, STORE_REPLY), // another kind
      at(1, 2), // unknown version
      at(10, 3), // unknown op
      at(11, 0), // empty storage index
      at(11, 65), // storage index too long
      at(12, 0x41), // 'A': not lower-case base32
      at(siEnd + 7, 0xff), // length far above MAX_GET_LENGTH
      at(siEnd + 11, 0), // no SURB
      at(siEnd + 11, 5), // more SURBs than fit
      at(siEnd + 11, 3), // count disagrees with the bytes
      Uint8Array.of(...good, 0), // trailing byte
      good.subarray(0, good.length - 1), // a SURB cut short
      new Uint8Array(RELAY_PLAIN_BYTES + 1).fill(STORE_REQUEST),
    ];
    for (const b of bad) expect(decodeRequest(b)).toBeNull();
    // A list that names a share, an offset or a length is not a list.
    const list = encodeRequest(req({ op: 'list', num: 0, offset: 0, length: 0 }));
    const l = list.slice();
    l[siEnd] = 1;
    expect(decodeRequest(l)).toBeNull();
    // Random bytes (with the right kind and version) never throw.
    for (let i = 0; i < 500; i++) {
      const b = rnd(1 + (i % 1900));
      b[0] = STORE_REQUEST;
      if (b.length > 1) b[1] = 1;
      expect(() => decodeRequest(b)).not.toThrow();
    }
  });
});

describe('storage over the mixnet: responses and replies', () => {
  it('splits a full get answer into exactly its SURBs and reassembles it', () => {
    const data = rnd(MAX_GET_LENGTH);
    const resp = encodeResponse({ status: 'ok', size: 2 ** 33, data });
    expect(resp.length).toBe(MAX_REQUEST_SURBS * REPLY_DATA);
    const id = rnd(8);
    const parts = splitReply(id, resp, 4);
    expect(parts).toHaveLength(4);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(BODY_BYTES);
    // Zero padding (as a SURB payload carries it) is accepted.
    const padded = parts.map((p) => Uint8Array.from([...p, ...new Uint8Array(BODY_BYTES - p.length)]));
    const got = padded.map((p) => decodeReply(p)!).reverse().sort((a, b) => a.index - b.index);
    expect(got.every((g) => Buffer.from(g.reqId).equals(id) && g.total === 4)).toBe(true);
    const back = decodeResponse('get', Buffer.concat(got.map((g) => g.data)));
    expect(back && 'size' in back && back.size === 2 ** 33 && Buffer.from(back.data).equals(data)).toBe(true);
    expect(() => splitReply(id, resp, 3)).toThrow(RangeError);
    expect(GET_HEAD).toBe(7);
  });

  it('round-trips lists and refusals', () => {
    expect(decodeResponse('list', encodeResponse({ status: 'ok', nums: [0, 3, 255] }))).toEqual({ status: 'ok', nums: [0, 3, 255] });
    for (const status of ['not-found', 'bad-request', 'internal'] as const) expect(decodeResponse('get', encodeResponse({ status }))).toEqual({ status });
    expect(() => encodeResponse({ status: 'ok', nums: [256] })).toThrow(RangeError);
  });

  it('decodes no malformed reply or response', () => {
    const id = rnd(8);
    const [first, last] = splitReply(id, rnd(REPLY_DATA + 10), 4) as [Uint8Array, Uint8Array];
    const at = (b: Uint8Array, i: number, v: number): Uint8Array => {
      const c = b.slice();
      c[i] = v;
      return c;
    };
    const bad = [
      new Uint8Array(5),
      at(first, 0, STORE_REQUEST),
      at(first, 1, 0),
      at(first, 11, 0), // total 0
      at(first, 11, 5), // more parts than a request has SURBs
      at(first, 10, 2), // index beyond total
      at(first, 13, 1), // a part before the last that is not full
      at(last, 12, 0xff), // length beyond the body
      Uint8Array.of(...last, 0, 0, 1), // bytes after the data that are not padding
      new Uint8Array(BODY_BYTES + 1),
    ];
    for (const b of bad) expect(decodeReply(b)).toBeNull();
    expect(decodeReply(last)).not.toBeNull();
    const badResponses: [op: 'list' | 'get', bytes: Uint8Array][] = [
      ['get', new Uint8Array(0)],
      ['get', Uint8Array.of(9)], // unknown status
      ['get', Uint8Array.of(1, 0)], // a refusal with bytes after it
      ['get', Uint8Array.of(0, 0, 0)], // shorter than its size field
      ['list', Uint8Array.of(0, 2, 1)], // count above the numbers given
      ['list', Uint8Array.of(0)],
    ];
    for (const [op, b] of badResponses) expect(decodeResponse(op, b)).toBeNull();
  });
});

describe('storage announcements naming a provider', () => {
  const id = NodeIdentity.fromSeed(new Uint8Array(32).fill(5));
  const entry = (header: Parameters<typeof createEntry>[1]['header']): ReturnType<typeof createEntry> => createEntry(id, { seq: 1, prev: ZERO_HASH, timestamp: 1, header, body: new Uint8Array(0) });
  it('carries the provider, and refuses a malformed one', () => {
    const provider = rnd(32);
    const d = announcementDraft({ endpoint: 'ws://127.0.0.1:9000', quota: 10, free: 5, until: 99, provider });
    expect(readAnnouncement(entry(d.header))?.provider).toEqual(provider);
    expect(readAnnouncement(entry({ ...d.header, provider: 'zz' }))).toBeNull();
    expect(readAnnouncement(entry({ ...d.header, provider: 7 }))).toBeNull();
    const { provider: _p, ...without } = d.header;
    expect(readAnnouncement(entry(without))?.provider).toBeUndefined();
    expect(() => announcementDraft({ endpoint: 'ws://127.0.0.1:9000', quota: 10, free: 5, until: 99, provider: rnd(31) })).toThrow(RangeError);
  });
});
