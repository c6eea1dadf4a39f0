import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import {
  ENTRY_PREFIX_BYTES,
  MAX_BODY_BYTES,
  ZERO_HASH,
  createBatch,
  createEntry,
  createLegacyEntry,
  decodeEntry,
  decodeHeader,
  encodeHeader,
  openEntry,
  signedPart,
  verifyEntry,
} from '../../src/node/log/codec.js';
import type { EntryHeader, HeaderValue } from '../../src/node/log/codec.js';
import { ed25519FromSeed, randomBytes, sha256, signerFromKeyPair, utf8 } from '../../src/node/crypto.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { entryToJson } from '../../src/node/log/json.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

interface Vector {
  description: string;
  seed: string;
  author: string;
  seq: number;
  prev: string;
  timestamp: number;
  header: Record<string, string | number | { hex: string } | { hashes: string[] }>;
  body: string;
  entry: string;
  hash: string;
  signature: string;
  batch?: { firstSeq: number; size: number; index: number; path: string };
}

const file = JSON.parse(readFileSync(resolve(import.meta.dirname, '../vectors/node-log.json'), 'utf8')) as { vectors: Vector[]; legacy: Vector[]; batchRoot: string };
const { vectors, legacy } = file;

function headerFromJson(j: Vector['header']): EntryHeader {
  const out: Record<string, HeaderValue> = {};
  for (const [k, v] of Object.entries(j)) {
    if (typeof v === 'string' || typeof v === 'number') out[k] = v;
    else if ('hex' in v) out[k] = fromHex(v.hex);
    else out[k] = v.hashes.map(fromHex);
  }
  return out as EntryHeader;
}

/** The v1 signed message, rebuilt with noble only: "deaddrop/entry/v1\0" || SHA-256(signed part). */
function nobleMessage(signed: Uint8Array): Uint8Array {
  return Uint8Array.from([...new TextEncoder().encode('deaddrop/entry/v1\0'), ...nobleSha256(signed)]);
}

/** The batch root with noble only: RFC 6962's shape and node hash, the content hashes as leaves. */
function nobleRoot(leaves: Uint8Array[]): Uint8Array {
  const mth = (xs: Uint8Array[]): Uint8Array => {
    if (xs.length === 1) return xs[0]!;
    let k = 1;
    while (k * 2 < xs.length) k *= 2;
    return nobleSha256(Uint8Array.of(1, ...mth(xs.slice(0, k)), ...mth(xs.slice(k))));
  };
  return mth(leaves);
}

/** The v2 batch message, rebuilt by hand: "deaddrop/batch/v2\0" || firstSeq:u64 || n:u16 || root. */
function nobleBatchMessage(firstSeq: number, n: number, root: Uint8Array): Uint8Array {
  const fixed = new Uint8Array(10);
  new DataView(fixed.buffer).setBigUint64(0, BigInt(firstSeq));
  new DataView(fixed.buffer).setUint16(8, n);
  return Uint8Array.from([...new TextEncoder().encode('deaddrop/batch/v2\0'), ...fixed, ...root]);
}

/** A v2 entry's content: everything before its 4-byte seal header, path and signature. */
function contentOf(raw: Uint8Array, pathBytes: number): Uint8Array {
  return raw.subarray(0, raw.length - 64 - pathBytes - 4);
}

const signer = signerFromKeyPair(ed25519FromSeed(new Uint8Array(32).fill(7)));

function sample(overrides: Partial<{ header: EntryHeader; body: Uint8Array }> = {}): ReturnType<typeof createEntry> {
  return createEntry(signer, {
    seq: 1,
    prev: ZERO_HASH,
    timestamp: 1_700_000_000_000,
    header: overrides.header ?? { type: 'post', app: 'chat' },
    body: overrides.body ?? utf8('hello'),
  });
}

describe('log entry vectors (test/vectors/node-log.json)', () => {
  it('has vectors', () => expect(vectors.length).toBeGreaterThanOrEqual(3));

  it('v2: the batch encodes byte-exactly, and noble agrees on the root, the signature and the hashes', () => {
    const s = signerFromKeyPair(ed25519FromSeed(fromHex(vectors[0]!.seed)));
    expect(toHex(s.publicKey)).toBe(vectors[0]!.author);
    const entries = createBatch(s, {
      firstSeq: 1,
      prev: ZERO_HASH,
      items: vectors.map((v) => ({ timestamp: v.timestamp, header: headerFromJson(v.header), body: fromHex(v.body) })),
    });
    // independent implementations: noble Ed25519 (strict, non-ZIP215) and noble SHA-256
    const raws = vectors.map((v) => fromHex(v.entry));
    const hashes = raws.map((raw, i) => nobleSha256(contentOf(raw, fromHex(vectors[i]!.batch!.path).length)));
    const root = nobleRoot(hashes);
    expect(toHex(root)).toBe(file.batchRoot);
    const message = nobleBatchMessage(1, vectors.length, root);
    vectors.forEach((v, i) => {
      expect(toHex(entries[i]!.raw), v.description).toBe(v.entry);
      expect(toHex(entries[i]!.hash)).toBe(v.hash);
      expect(toHex(hashes[i]!)).toBe(v.hash);
      expect(toHex(ed25519.sign(message, fromHex(v.seed)))).toBe(v.signature);
      expect(ed25519.verify(fromHex(v.signature), message, fromHex(v.author), { zip215: false })).toBe(true);
      const d = openEntry(raws[i]!);
      expect(d.batch).toMatchObject({ firstSeq: 1, size: vectors.length, index: i });
      expect(toHex(d.batch!.path)).toBe(v.batch!.path);
      expect(d.seq).toBe(v.seq);
      expect(d.timestamp).toBe(v.timestamp);
      expect(toHex(d.prev)).toBe(v.prev);
      expect(toHex(d.body)).toBe(v.body);
      expect(toHex(encodeHeader(d.header))).toBe(toHex(encodeHeader(headerFromJson(v.header))));
    });
  });

  for (const v of legacy) {
    it(`legacy v1 seq ${v.seq}: still decodes and verifies, and noble agrees on the signature and hash`, () => {
      const s = signerFromKeyPair(ed25519FromSeed(fromHex(v.seed)));
      const e = createLegacyEntry(s, { seq: v.seq, prev: fromHex(v.prev), timestamp: v.timestamp, header: headerFromJson(v.header), body: fromHex(v.body) });
      expect(toHex(e.raw)).toBe(v.entry);
      const raw = fromHex(v.entry);
      const message = nobleMessage(raw.subarray(0, raw.length - 64));
      expect(toHex(ed25519.sign(message, fromHex(v.seed)))).toBe(v.signature);
      expect(toHex(nobleSha256(raw))).toBe(v.hash);
      const d = openEntry(raw);
      expect(d.version).toBe(1);
      expect(d.batch).toBeNull();
      expect(toHex(d.hash)).toBe(v.hash);
    });
  }

  it('vectors chain: each prev is the previous hash', () => {
    for (const list of [vectors, legacy]) for (let i = 1; i < list.length; i++) expect(list[i]!.prev).toBe(list[i - 1]!.hash);
  });
});

describe('tampering', () => {
  /** Each single-bit flip of `raw`: decode refuses it with PROTOCOL, or the entry does not verify. */
  function expectEveryByteFlipRejected(raw: Uint8Array): void {
    for (let i = 0; i < raw.length; i++) {
      const t = raw.slice();
      t[i] = t[i]! ^ 0x01;
      let ok = false;
      try {
        ok = verifyEntry(decodeEntry(t));
      } catch (err) {
        expect(isDeaddropError(err, 'PROTOCOL')).toBe(true);
      }
      expect(ok, `byte ${i}`).toBe(false);
    }
  }

  it('every single-byte change is rejected by decode or signature check', () => {
    const e = sample({ header: { type: 'post', app: 'chat', refs: [sha256(utf8('x'))], n: 7 } });
    expectEveryByteFlipRejected(e.raw);
  });

  it('every single-byte change of an entry inside a batch is rejected too', () => {
    const e = createBatch(signer, { firstSeq: 1, prev: ZERO_HASH, items: [1, 2, 3, 4, 5].map((i) => ({ timestamp: i, header: { type: 't' }, body: utf8(`b${i}`) })) })[2]!;
    expectEveryByteFlipRejected(e.raw);
  });

  it('noble rejects a tampered signature too', () => {
    const e = sample();
    const sig = e.signature.slice();
    sig[5] = sig[5]! ^ 0x80;
    const message = nobleBatchMessage(1, 1, nobleRoot([nobleSha256(signedPart(e))]));
    expect(ed25519.verify(e.signature, message, e.author, { zip215: false })).toBe(true);
    expect(ed25519.verify(sig, message, e.author, { zip215: false })).toBe(false);
  });

  it('rejects unknown versions, truncation, trailing bytes and bad links', () => {
    const e = sample();
    const v3 = e.raw.slice();
    v3[0] = 3;
    expect(() => decodeEntry(v3)).toThrow(/unknown version/);
    expect(() => decodeEntry(e.raw.subarray(0, e.raw.length - 1))).toThrow(/invalid log entry/);
    const longer = new Uint8Array(e.raw.length + 1);
    longer.set(e.raw);
    expect(() => decodeEntry(longer)).toThrow(/invalid log entry/);
    const seq0 = e.raw.slice();
    seq0[40] = 0;
    expect(() => decodeEntry(seq0)).toThrow(/seq 0/);
    const prevSet = e.raw.slice();
    prevSet[50] = 1;
    expect(() => decodeEntry(prevSet)).toThrow(/prev must be zero/);
    expect(() => createEntry(signer, { seq: 2, prev: ZERO_HASH, timestamp: 0, header: { type: 't' }, body: new Uint8Array() })).toThrow(
      RangeError,
    );
  });

  it('enforces the body size limit on both sides', () => {
    expect(() => sample({ body: new Uint8Array(MAX_BODY_BYTES + 1) })).toThrow(RangeError);
    // also past the first entry of a batch, and the other per-entry fields with it
    const items = (bad: object) => [0, 1, 2].map((i) => ({ timestamp: i, header: { type: 't' }, body: utf8('b'), ...(i === 2 ? bad : {}) }));
    expect(() => createBatch(signer, { firstSeq: 1, prev: ZERO_HASH, items: items({ body: new Uint8Array(MAX_BODY_BYTES + 1) }) })).toThrow(RangeError);
    expect(() => createBatch(signer, { firstSeq: 1, prev: ZERO_HASH, items: items({ body: 'text' }) })).toThrow(TypeError);
    expect(() => createBatch(signer, { firstSeq: 1, prev: ZERO_HASH, items: items({ timestamp: -1 }) })).toThrow(RangeError);
    expect(() => createBatch(signer, { firstSeq: 1, prev: ZERO_HASH, items: items({ header: { type: 'has space' } }) })).toThrow(TypeError);
    const e = sample({ body: new Uint8Array(MAX_BODY_BYTES) });
    expect(verifyEntry(openEntry(e.raw))).toBe(true);
  });
});

describe('header encoding', () => {
  it('sorts keys canonically regardless of insertion order', () => {
    const a = encodeHeader({ type: 'x', app: 'y', zeta: 1, alpha: 'a' });
    const b = encodeHeader({ alpha: 'a', zeta: 1, type: 'x', app: 'y' });
    expect(toHex(a)).toBe(toHex(b));
  });

  it('accepts exactly the keys and names of the spec, and sorts any set of keys', () => {
    const keyRe = /^[a-z0-9_.-]{1,32}$/;
    const nameRe = /^[A-Za-z0-9._:/-]{1,64}$/;
    const samples = ['', 'a', 'A', 'a'.repeat(32), 'a'.repeat(33), 'N'.repeat(64), 'N'.repeat(65), 'x y', 'é', 'ā', 'a:b/c', 'a_b.c-d', '\u0000', 'Zz9'];
    for (const text of samples) {
      const asKey = () => encodeHeader({ type: 't', [text]: 1 });
      if (keyRe.test(text) && text !== 'type') expect(asKey, text).not.toThrow();
      else if (text !== 'type') expect(asKey, text).toThrow(TypeError);
      for (const field of ['type', 'app']) {
        const asName = () => encodeHeader({ type: 't', [field]: text });
        if (nameRe.test(text)) expect(asName, `${field}=${text}`).not.toThrow();
        else expect(asName, `${field}=${text}`).toThrow(TypeError);
      }
    }
    const key = fc.stringMatching(/^[a-z0-9_.-]{1,8}$/).filter((k) => k !== 'type' && k !== 'app' && k !== 'refs' && k !== '__proto__');
    fc.assert(
      fc.property(fc.uniqueArray(key, { maxLength: 15 }), (keys) => {
        // decodeHeader refuses keys not in strictly ascending byte order (its own Buffer.compare)
        const forward: Record<string, HeaderValue> = { type: 't' };
        const backward: Record<string, HeaderValue> = {};
        keys.forEach((k, i) => (forward[k] = i));
        [...keys.entries()].reverse().forEach(([i, k]) => (backward[k] = i));
        backward.type = 't';
        const encoded = encodeHeader(forward as EntryHeader);
        expect(() => decodeHeader(encoded)).not.toThrow();
        expect(toHex(encodeHeader(backward as EntryHeader))).toBe(toHex(encoded));
      }),
    );
  });

  it('writes string values as their UTF-8, ASCII or not, short or long', () => {
    // short ASCII strings are written without TextEncoder; the rest through it
    for (const text of ['', 'a', 'x'.repeat(64), 'x'.repeat(65), 'café', '\u{1f600} grin', `${'y'.repeat(63)}é`, 'lone \ud800']) {
      const value = utf8(text);
      const expected = Uint8Array.from([2, 4, ...utf8('note'), 1, value.length >> 8, value.length & 0xff, ...value, 4, ...utf8('type'), 1, 0, 1, ...utf8('t')]);
      expect(toHex(encodeHeader({ type: 't', note: text })), JSON.stringify(text)).toBe(toHex(expected));
      const e = createEntry(signer, { seq: 1, prev: ZERO_HASH, timestamp: 1, header: { type: 't', note: text }, body: new Uint8Array(0) });
      expect(toHex(e.raw.subarray(ENTRY_PREFIX_BYTES, ENTRY_PREFIX_BYTES + expected.length))).toBe(toHex(expected));
    }
  });

  it('rejects unsorted, duplicate, unknown-tag, non-UTF-8 and trailing encodings', () => {
    const good = encodeHeader({ type: 'x', app: 'y' }); // app < type
    expect(decodeHeader(good)).toEqual({ app: 'y', type: 'x' });
    // swap the two fields: unsorted
    const app = good.subarray(1, 1 + 1 + 3 + 1 + 2 + 1);
    const type = good.subarray(1 + app.length);
    expect(() => decodeHeader(Uint8Array.from([2, ...type, ...app]))).toThrow(/sorted/);
    expect(() => decodeHeader(Uint8Array.from([2, ...type, ...type]))).toThrow(/sorted/);
    const unknownTag = good.slice();
    unknownTag[5] = 9;
    expect(() => decodeHeader(unknownTag)).toThrow(/tag/);
    expect(() => decodeHeader(Uint8Array.from([...good, 0]))).toThrow(/trailing/);
    const badUtf8 = encodeHeader({ type: 'x', s: 'ab' });
    // [count=2][1 's' 0x01 0x0002 'a' 'b'][4 'type' ...]: byte 6 is the 'a'
    expect(badUtf8[6]).toBe(0x61);
    badUtf8[6] = 0xff;
    expect(() => decodeHeader(badUtf8)).toThrow(/UTF-8/);
  });

  it('requires a valid type and typed well-known keys', () => {
    expect(() => encodeHeader({} as EntryHeader)).toThrow(TypeError);
    expect(() => encodeHeader({ type: 'has space' })).toThrow(TypeError);
    expect(() => encodeHeader({ type: 'x', app: 5 } as unknown as EntryHeader)).toThrow(TypeError);
    expect(() => encodeHeader({ type: 'x', Upper: 1 })).toThrow(TypeError);
    expect(() => encodeHeader({ type: 'x', n: -1 })).toThrow(RangeError);
  });

  it('keeps a __proto__ key as a plain field', () => {
    const h = JSON.parse('{"type":"x","__proto__":"p"}') as EntryHeader;
    const d = decodeHeader(encodeHeader(h));
    expect(Object.getPrototypeOf(d)).toBe(Object.prototype);
    expect(Object.keys(d)).toContain('__proto__');
  });

  it('round-trips arbitrary headers and bodies (property)', () => {
    const key = fc.stringMatching(/^[a-z0-9_.-]{1,12}$/).filter((k) => k !== 'type' && k !== 'app' && k !== 'refs');
    const value: fc.Arbitrary<HeaderValue> = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.uint8Array({ maxLength: 40 }),
      fc.maxSafeNat(),
      fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 3 }),
    );
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 10 }), fc.uint8Array({ maxLength: 200 }), (extra, body) => {
        const header = { ...extra, type: 'prop' } as EntryHeader;
        const e = createEntry(signer, { seq: 3, prev: sha256(body), timestamp: 5, header, body });
        const d = openEntry(e.raw.slice());
        expect(toHex(encodeHeader(d.header))).toBe(toHex(encodeHeader(header)));
        expect(toHex(d.body)).toBe(toHex(body));
      }),
      { numRuns: 200 },
    );
  });

  it('an entry decodes exactly when its header bytes decode, whatever byte of the header is changed (property)', () => {
    const e = sample({ header: { type: 'post', app: 'chat', s: 'ab', blob: Uint8Array.of(1, 2), n: 3, refs: [sha256(utf8('r'))] } });
    const h = (e.raw[81]! << 8) | e.raw[82]!;
    fc.assert(
      fc.property(fc.nat(h - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const raw = e.raw.slice();
        raw[83 + at] = raw[83 + at]! ^ x;
        let header: EntryHeader | null = null;
        try {
          header = decodeHeader(raw.subarray(83, 83 + h));
        } catch {
          // refused: the entry must be too
        }
        if (header === null) expect(() => decodeEntry(raw)).toThrow(/invalid log entry/);
        else expect(toHex(encodeHeader(decodeEntry(raw).header))).toBe(toHex(encodeHeader(header)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('random keys', () => {
  it('noble verifies what libsodium signs, for random keys and messages', () => {
    for (let i = 0; i < 20; i++) {
      const seed = randomBytes(32);
      const s = signerFromKeyPair(ed25519FromSeed(seed));
      expect(toHex(s.publicKey)).toBe(toHex(ed25519.getPublicKey(seed)));
      const e = createEntry(s, { seq: 1, prev: ZERO_HASH, timestamp: i, header: { type: 'r' }, body: randomBytes(i * 10) });
      const message = nobleBatchMessage(1, 1, nobleRoot([nobleSha256(signedPart(e))]));
      expect(ed25519.verify(e.signature, message, s.publicKey, { zip215: false })).toBe(true);
    }
  });
});

describe('JSON view for CLI/API', () => {
  it('renders bytes as hex, text as text, and JSON bodies parsed', () => {
    const ref = sha256(utf8('r'));
    const e = sample({ header: { type: 'post', blob: Uint8Array.of(1, 2), refs: [ref], n: 3 }, body: utf8('{"a":1}') });
    const j = entryToJson(e);
    expect(j).toMatchObject({ seq: 1, author: toHex(e.author), hash: toHex(e.hash), text: '{"a":1}', json: { a: 1 } });
    expect(j.header).toEqual({ type: 'post', blob: { hex: '0102' }, refs: [toHex(ref)], n: 3 });
    const bin = entryToJson(sample({ body: Uint8Array.of(0xff, 0xfe) }));
    expect(bin.text).toBeUndefined();
    expect(bin.body).toBe('fffe');
  });
});
