/**
 * The envelope: the SIV construction against an independent noble-only implementation,
 * totality on random bytes, tamper detection, uniform-looking output, OP_RETURN scripts.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import {
  dropScript, envelopeKeys, open, openPayload, parseDropScript, seal, sealPayload, ENVELOPE_MAX_BYTES, ENVELOPE_MIN_BYTES, SIV_BYTES,
  TAG_ENC, TAG_MAC,
} from '../../src/deaddrop/envelope.js';
import { taggedHash } from '../../src/util/hash.js';
import type { DropPayloadInput } from '../../src/deaddrop/codec.js';
import { nobleSecp, scalar, secp } from '../../src/util/secp.js';

/** ser_P(i·G): a deterministic, valid shared-secret point per index. */
const ecdhFor = (i: number): Uint8Array => secp.pointFromScalar(scalar.fromBigInt(BigInt(i) + 1n)) as Uint8Array;

const payload: DropPayloadInput = {
  nodeKey: new Uint8Array(32).fill(0x11),
  token: new Uint8Array(8).fill(0x22),
  expiresAt: 1_767_225_600,
  endpoints: ['ws://192.0.2.7:8080'],
  message: 'meet me',
};

/** The construction as docs/protocol/deaddrop.md states it, with noble primitives only. */
function referenceSeal(ecdh: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const kEnc = schnorr.utils.taggedHash('deaddrop/v0/enc', ecdh);
  const kMac = schnorr.utils.taggedHash('deaddrop/v0/mac', ecdh);
  const siv = hmac(sha256, kMac, plaintext).subarray(0, 8);
  const nonce = new Uint8Array(12);
  nonce.set(siv);
  return Uint8Array.from([...siv, ...chacha20(kEnc, nonce, plaintext)]);
}

describe('construction', () => {
  it('tagged hashes match noble', () => {
    fc.assert(
      fc.property(fc.string(), fc.uint8Array({ maxLength: 100 }), (tag, msg) => {
        expect(Buffer.from(taggedHash(tag, msg)).equals(schnorr.utils.taggedHash(tag, msg))).toBe(true);
      }),
    );
    expect(TAG_ENC).toBe('deaddrop/v0/enc');
    expect(TAG_MAC).toBe('deaddrop/v0/mac');
  });

  it('seal equals the noble-only reference, and open inverts it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.uint8Array({ maxLength: 120 }), (i, pt) => {
        const ecdh = ecdhFor(i);
        const env = seal(envelopeKeys(ecdh), pt);
        expect(Buffer.from(env).equals(referenceSeal(ecdh, pt))).toBe(true);
        expect(Buffer.from(open(envelopeKeys(ecdh), env) ?? []).equals(pt)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('is deterministic, and a different payload under the same key shares no keystream', () => {
    const ecdh = ecdhFor(42);
    expect(sealPayload(ecdh, payload)).toEqual(sealPayload(ecdh, payload));
    // The RBF case: same inputs (same key), another message. Without SIV the XOR of the
    // ciphertexts would equal the XOR of the plaintexts.
    const a = sealPayload(ecdh, payload);
    const b = sealPayload(ecdh, { ...payload, message: 'meet you' });
    const xorCt = a.subarray(SIV_BYTES).map((x, i) => x ^ (b[SIV_BYTES + i] as number));
    const zeros = xorCt.filter((x) => x === 0).length;
    expect(zeros).toBeLessThan(10); // same plaintext bytes would give ~64 zeros with a reused keystream
    expect(Buffer.from(a.subarray(0, 8)).equals(b.subarray(0, 8))).toBe(false);
  });

  it('rejects bad shared-secret encodings as misuse', () => {
    expect(() => envelopeKeys(new Uint8Array(32))).toThrow(TypeError);
  });
});

describe('opening is total', () => {
  it('random bytes never decrypt and never throw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.uint8Array({ maxLength: 100 }), (i, bytes) => {
        expect(openPayload(ecdhFor(i), bytes)).toBeNull();
        expect(open(envelopeKeys(ecdhFor(i)), bytes)).toBeNull();
      }),
      { numRuns: 5000 },
    );
    expect(openPayload(ecdhFor(1), 'x' as unknown as Uint8Array)).toBeNull();
  });

  it('the wrong key sees nothing', () => {
    const env = sealPayload(ecdhFor(1), payload);
    expect(openPayload(ecdhFor(1), env)?.message).toBe('meet me');
    for (let i = 2; i < 200; i++) expect(openPayload(ecdhFor(i), env)).toBeNull();
    // The negated point (same x, other y) is a different key too.
    expect(openPayload(nobleSecp.pointNegate(ecdhFor(1)) as Uint8Array, env)).toBeNull();
  });

  it('tampering with any byte fails', () => {
    const ecdh = ecdhFor(7);
    const env = sealPayload(ecdh, payload);
    for (let pos = 0; pos < env.length; pos++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const t = env.slice();
        t[pos] = (t[pos] as number) ^ mask;
        expect(openPayload(ecdh, t), `byte ${pos} ^ ${mask}`).toBeNull();
      }
    }
    expect(openPayload(ecdh, env.subarray(0, 79))).toBeNull();
    expect(openPayload(ecdh, Uint8Array.from([...env, 0]))).toBeNull();
  });
});

describe('looks random', () => {
  const envelopes = Array.from({ length: 1000 }, (_, i) => sealPayload(ecdhFor(i), payload));

  it('every envelope is 80 bytes by default, and no byte position is constant across 1,000', () => {
    for (const e of envelopes) expect(e.length).toBe(ENVELOPE_MAX_BYTES);
    for (let pos = 0; pos < ENVELOPE_MAX_BYTES; pos++) {
      const distinct = new Set(envelopes.map((e) => e[pos])).size;
      // 1,000 uniform draws from 256 values hit about 251 of them.
      expect(distinct, `position ${pos}`).toBeGreaterThan(230);
    }
  });

  it('every bit position is set about half the time (within 6 sigma)', () => {
    for (let bit = 0; bit < ENVELOPE_MAX_BYTES * 8; bit++) {
      const ones = envelopes.reduce((n, e) => n + (((e[bit >> 3] as number) >> (7 - (bit & 7))) & 1), 0);
      expect(Math.abs(ones - 500), `bit ${bit}`).toBeLessThan(6 * Math.sqrt(250));
    }
  });
});

describe('OP_RETURN scripts', () => {
  it('round-trips every allowed length with a minimal push', () => {
    for (let n = ENVELOPE_MIN_BYTES; n <= ENVELOPE_MAX_BYTES; n++) {
      const env = sealPayload(ecdhFor(n), { ...payload, endpoints: [], message: '' }, n);
      const script = dropScript(env);
      expect(script.length).toBe(n + (n <= 75 ? 2 : 3));
      expect(script.length).toBeLessThanOrEqual(83);
      expect(parseDropScript(script)).toEqual(env);
    }
    expect(() => dropScript(new Uint8Array(81))).toThrow(RangeError);
    expect(() => sealPayload(ecdhFor(1), payload, 81)).toThrow(RangeError);
  });

  it('accepts non-minimal pushes but nothing else', () => {
    const data = new Uint8Array(60).fill(3);
    expect(parseDropScript(Uint8Array.from([0x6a, 0x4c, 60, ...data]))).toEqual(data);
    expect(parseDropScript(Uint8Array.from([0x6a, 0x4d, 60, 0, ...data]))).toEqual(data);
    expect(parseDropScript(Uint8Array.from([0x6a, 0x4e, 60, 0, 0, 0, ...data]))).toEqual(data);
    const rejects = [
      Uint8Array.from([0x6a, 0x5d, 20, ...new Uint8Array(20)]), // Runestone: OP_RETURN OP_13 ...
      Uint8Array.from([0x6a, 60, ...data, 0x00]), // trailing byte
      Uint8Array.from([0x6a, 30, ...data.subarray(0, 30), 30, ...data.subarray(0, 30)]), // two pushes
      Uint8Array.from([0x6a, 51, ...new Uint8Array(51)]), // too short
      Uint8Array.from([0x6a, 0x4c, 81, ...new Uint8Array(81)]), // too long
      Uint8Array.from([0x6a, 0x4e, 0xff, 0xff, 0xff, 0xff, 1]), // absurd length
      Uint8Array.from([0x51, 60, ...data]), // not OP_RETURN
      Uint8Array.from([0x6a]),
      new Uint8Array(0),
    ];
    for (const s of rejects) expect(parseDropScript(s)).toBeNull();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (s) => void parseDropScript(s)), { numRuns: 2000 });
  });
});
