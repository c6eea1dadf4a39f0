/** Endpoint hints and the payload codec: canonical round trips, strict and total decoding. */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  decodeEndpoint, encodeEndpoint, isOnionEndpointString, mixnetEndpoint, mixnetProviderId, mixProviderId, normalizeEndpoint, onionAddress,
  HINT_MIXNET, HINT_ONION, HINT_ONION_SELF, HINT_URL, HINT_WS_IPV4, HINT_WS_IPV6, HINT_WSS_DNS,
} from '../../src/deaddrop/endpoint.js';
import { decodePayload, encodePayload, payloadSize, PAYLOAD_FIXED_BYTES, MAX_EXPIRY_SECONDS, type DropPayloadInput } from '../../src/deaddrop/codec.js';
import { expectCode } from '../support/errors.js';

const key = new Uint8Array(32).fill(7);
const other = new Uint8Array(32).fill(9);
const onion = `${onionAddress(key)}.onion`;

describe('endpoints', () => {
  it('normalizes to one canonical string', () => {
    const cases: [string, string][] = [
      ['1.2.3.4:8080', 'ws://1.2.3.4:8080'],
      ['ws://1.2.3.4:80/', 'ws://1.2.3.4'],
      ['WS://[2001:DB8:0:0::1]:9000', 'ws://[2001:db8::1]:9000'],
      ['ws://[::ffff:1.2.3.4]:1', 'ws://[::ffff:102:304]:1'],
      ['wss://Relay.Example.org:443', 'wss://relay.example.org'],
      ['wss://relay.example.org:8443', 'wss://relay.example.org:8443'],
      ['node.example.org:9735', 'ws://node.example.org:9735'],
      ['wss://relay.example.org/dd?x=1', 'wss://relay.example.org/dd?x=1'],
      ['wss://1.2.3.4:9000', 'wss://1.2.3.4:9000'],
      [`${onion}:80`, `ws://${onion}`],
      [`ws://${onion.toUpperCase()}:81`, `ws://${onion}:81`],
    ];
    for (const [input, want] of cases) expect(normalizeEndpoint(input), input).toBe(want);
  });

  it('picks the compact binary form and round-trips it', () => {
    const cases: [string, number, number][] = [
      ['ws://1.2.3.4:8080', HINT_WS_IPV4, 7],
      ['ws://[2001:db8::1]:9000', HINT_WS_IPV6, 19],
      ['wss://relay.example.org', HINT_WSS_DNS, 4 + 17],
      [`ws://${onion}:80`, HINT_ONION_SELF, 3],
      [`ws://${onionAddress(other)}.onion:80`, HINT_ONION, 35],
      ['wss://relay.example.org/dd', HINT_URL, 2 + 'wss://relay.example.org/dd'.length],
      ['mixnet:0123456789abcdef', HINT_MIXNET, 9],
    ];
    for (const [url, type, size] of cases) {
      const b = encodeEndpoint(url, key);
      expect([b[0], b.length], url).toEqual([type, size]);
      expect(decodeEndpoint(b, 0, key)).toEqual({ endpoint: normalizeEndpoint(url), end: size });
    }
    // Without the node key, an onion service is spelled out in full.
    expect(encodeEndpoint(`ws://${onion}:80`)[0]).toBe(HINT_ONION);
  });

  it('rejects what is not an endpoint', () => {
    for (const bad of ['http://a.example:1', 'ws://user:pw@a.example:1', 'ws://a.example:1/#frag', 'ws://abc.onion:1', 'ws://a_b.example:1',
      'ws://[::1', 'not a url at all', `wss://a.example/${'x'.repeat(300)}`, 'ws://-a.example:1']) {
      expectCode(() => normalizeEndpoint(bad), 'BAD_INPUT');
    }
    expect(() => normalizeEndpoint(5 as unknown as string)).toThrow(TypeError);
  });

  it('decodes nothing non-canonical: port 0, empty names, junk bytes, truncation', () => {
    const ok = encodeEndpoint('ws://1.2.3.4:8080');
    for (let n = 0; n < ok.length; n++) expect(decodeEndpoint(ok.subarray(0, n), 0, key)).toBeNull();
    expect(decodeEndpoint(Uint8Array.from([HINT_WS_IPV4, 1, 2, 3, 4, 0, 0]), 0, key)).toBeNull();
    expect(decodeEndpoint(Uint8Array.from([0x03, 0, 0, 80]), 0, key)).toBeNull();
    expect(decodeEndpoint(Uint8Array.from([0x03, 3, 0x41, 0x42, 0x43, 0, 80]), 0, key)).toBeNull(); // upper case is not canonical
    expect(decodeEndpoint(Uint8Array.from([0x03, 7, ...Buffer.from('1.2.3.4'), 0, 80]), 0, key)).toBeNull(); // an IP belongs in 0x01
    expect(decodeEndpoint(Uint8Array.from([0x00]), 0, key)).toBeNull();
    expect(decodeEndpoint(Uint8Array.from([0x09, 1, 2]), 0, key)).toBeNull(); // unknown type
    const mix = encodeEndpoint('mixnet:0123456789abcdef');
    for (let n = 0; n < mix.length; n++) expect(decodeEndpoint(mix.subarray(0, n), 0, key)).toBeNull();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        const r = decodeEndpoint(b, 0, key);
        if (r !== null) expect(Buffer.from(encodeEndpoint(r.endpoint, key)).equals(b.subarray(0, r.end))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('mixnet hints', () => {
  it('name a provider by 8 bytes of a hash of its identity, in one canonical string form', () => {
    const provider = new Uint8Array(32).fill(3);
    const id = mixProviderId(provider);
    expect(id.length).toBe(8);
    expect(mixProviderId(new Uint8Array(32).fill(4))).not.toEqual(id);
    const s = mixnetEndpoint(id);
    expect(s).toMatch(/^mixnet:[0-9a-f]{16}$/);
    expect(mixnetProviderId(s)).toEqual(id);
    expect(normalizeEndpoint(s.toUpperCase().replace('MIXNET', 'MixNet'))).toBe(s);
    expect(isOnionEndpointString(s)).toBe(false);
    expect(Array.from(encodeEndpoint(s))).toEqual([HINT_MIXNET, ...id]);
  });

  it('refuse every other spelling', () => {
    for (const bad of ['mixnet:', 'mixnet:0123456789abcde', 'mixnet:0123456789abcdef0', 'mixnet:0123456789abcdeg', 'mixnet://0123456789abcdef', 'mixnet:0123456789abcdef/x']) {
      expectCode(() => normalizeEndpoint(bad), 'BAD_INPUT');
      expect(mixnetProviderId(bad)).toBeNull();
    }
    expect(mixnetProviderId(5)).toBeNull();
  });

  it('fit beside a 19-byte message in a v0 payload, and decode only when complete', () => {
    const base = { nodeKey: key, token: new Uint8Array(8), expiresAt: null, endpoints: ['mixnet:0123456789abcdef'] };
    expect(decodePayload(encodePayload({ ...base, message: 'x'.repeat(19) }, 72))).toMatchObject({ endpoints: ['mixnet:0123456789abcdef'], message: 'x'.repeat(19) });
    expectCode(() => encodePayload({ ...base, message: 'x'.repeat(20) }, 72), 'BAD_INPUT');
    // A header that claims the hint but whose hint is cut short by the end of the payload.
    const b = encodePayload({ ...base, message: '' }, PAYLOAD_FIXED_BYTES + 9);
    expect(decodePayload(b)).not.toBeNull();
    expect(decodePayload(b.subarray(0, PAYLOAD_FIXED_BYTES + 8))).toBeNull();
  });
});

describe('payload', () => {
  const input: DropPayloadInput = {
    nodeKey: key,
    token: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
    expiresAt: 1_767_225_600, // 2026-01-01T00:00Z
    endpoints: ['ws://1.2.3.4:8080'],
    message: 'hi from A, café ☕',
  };

  it('round-trips and pads with zeros', () => {
    const b = encodePayload(input, 72);
    expect(b.length).toBe(72);
    expect(b[0]).toBe(0x01);
    const p = decodePayload(b);
    expect(p).toEqual({ version: 0, nodeKey: key, token: input.token, expiresAt: 1_767_225_600, endpoints: ['ws://1.2.3.4:8080'], message: input.message });
    expect(payloadSize(input)).toBe(PAYLOAD_FIXED_BYTES + 7 + Buffer.byteLength(input.message ?? ''));
  });

  it('rounds expiry up to the hour; no expiry is 0', () => {
    expect(decodePayload(encodePayload({ ...input, expiresAt: 3601 }, 72))?.expiresAt).toBe(7200);
    expect(decodePayload(encodePayload({ ...input, expiresAt: null }, 72))?.expiresAt).toBeNull();
    for (const bad of [0, -5, 1.5, 2 ** 24 * 3600]) expectCode(() => encodePayload({ ...input, expiresAt: bad }, 72), 'BAD_INPUT');
  });

  it('fits the budget: 28 bytes for hints and message in 72', () => {
    expect(decodePayload(encodePayload({ ...input, endpoints: [], message: 'x'.repeat(28) }, 72))?.message).toBe('x'.repeat(28));
    expectCode(() => encodePayload({ ...input, endpoints: [], message: 'x'.repeat(29) }, 72), 'BAD_INPUT');
    expectCode(() => encodePayload({ ...input, message: 'x'.repeat(22) }, 72), 'BAD_INPUT');
    expect(decodePayload(encodePayload({ ...input, message: 'x'.repeat(21) }, 72))?.message.length).toBe(21);
  });

  it('rejects invalid fields when encoding', () => {
    expectCode(() => encodePayload({ ...input, nodeKey: new Uint8Array(33) }, 72), 'BAD_INPUT');
    expectCode(() => encodePayload({ ...input, token: new Uint8Array(4) }, 72), 'BAD_INPUT');
    for (const c of ['\u0000', '\u001b[31m', '\r', '\u007f', '\u009b']) expectCode(() => encodePayload({ ...input, message: `a${c}b` }, 72), 'BAD_INPUT');
    expect(decodePayload(encodePayload({ ...input, message: 'two\nlines\tok' }, 72))?.message).toBe('two\nlines\tok');
    expectCode(() => encodePayload({ ...input, message: 'lone \ud800' }, 72), 'BAD_INPUT');
    expectCode(() => encodePayload({ ...input, endpoints: ['ftp://x'] }, 72), 'BAD_INPUT');
    expectCode(() => encodePayload({ ...input, endpoints: Array<string>(16).fill('ws://1.2.3.4:1') }, 400), 'BAD_INPUT');
  });

  it('decodes only canonical, known-version bytes', () => {
    const b = encodePayload({ ...input, message: 'short' }, 72);
    const variant = (f: (c: Uint8Array) => void): Uint8Array => {
      const c = b.slice();
      f(c);
      return c;
    };
    expect(decodePayload(variant((c) => (c[0] = 0x11)))).toBeNull(); // version 1
    expect(decodePayload(variant((c) => (c[0] = 0x02)))).toBeNull(); // a hint that is not there
    expect(decodePayload(variant((c) => (c[71] = 1)))).toBeNull(); // non-zero padding
    expect(decodePayload(variant((c) => (c[52] = 0xff)))).toBeNull(); // invalid UTF-8
    expect(decodePayload(variant((c) => (c[52] = 0x1b)))).toBeNull(); // ESC
    expect(decodePayload(variant((c) => (c[53] = 0)))).toBeNull(); // message bytes after the terminator
    expect(decodePayload(b.subarray(0, PAYLOAD_FIXED_BYTES - 1))).toBeNull();
    expect(decodePayload(new Uint8Array(0))).toBeNull();
  });

  it('never throws on random bytes, and whatever decodes re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
        const p = decodePayload(b);
        if (p !== null) expect(Buffer.from(encodePayload(p, b.length)).equals(b)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('round-trips arbitrary valid payloads', () => {
    const endpointArb = fc.oneof(
      fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([ip, port]) => `ws://${ip}:${port}`),
      fc.tuple(fc.domain(), fc.integer({ min: 1, max: 65535 })).map(([d, port]) => `wss://${d}:${port}`),
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.option(fc.integer({ min: 1, max: MAX_EXPIRY_SECONDS })),
        fc.array(endpointArb, { maxLength: 3 }),
        fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => !/[\p{Cc}]/u.test(s.replace(/[\t\n]/g, ''))),
        (nodeKey, token, expiresAt, endpoints, message) => {
          const p: DropPayloadInput = { nodeKey, token, expiresAt, endpoints, message };
          const size = payloadSize(p) + 5;
          const d = decodePayload(encodePayload(p, size));
          expect(d?.message).toBe(message);
          expect(d?.endpoints).toEqual(endpoints.map(normalizeEndpoint));
          expect(d?.expiresAt).toBe(expiresAt === null ? null : Math.ceil(expiresAt / 3600) * 3600);
        },
      ),
      { numRuns: 300 },
    );
  });
});
