/**
 * The committed group vectors (test/vectors/groups/*.json, built by ./vectors.ts): the generator
 * rebuilds each file byte for byte; every op decodes to its inputs, re-encodes from them, and its
 * signature and hash check out with @noble/curves and @noble/hashes alone; the ratchet and the
 * message are recomputed with noble HMAC, HKDF and ChaCha20-Poly1305 alone; every negative
 * vector is refused the way it says.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { decodeMessage, openWithKey, verifyGroupMessage } from '../../../src/node/groups/message.js';
import { ZERO_GROUP, createOp, decodeOp, verifyOp } from '../../../src/node/groups/op-codec.js';
import { fromHex, toHex } from '../../../src/util/bytes.js';
import { expectRefused, type NegativeVector } from '../../support/negative-vectors.js';
import { GROUP_VECTOR_DIR, type OpVector, bodyFromJson, groupVectorFiles } from './vectors.js';

function committed<T>(name: string): T {
  return JSON.parse(readFileSync(resolve(GROUP_VECTOR_DIR, name), 'utf8')) as T;
}

const enc = new TextEncoder();

describe('group vectors (test/vectors/groups/*.json)', () => {
  it('the generator rebuilds every committed file byte for byte', () => {
    for (const [name, text] of Object.entries(groupVectorFiles())) expect(text, name).toBe(readFileSync(resolve(GROUP_VECTOR_DIR, name), 'utf8'));
  });

  it('ops: decode to their inputs, re-encode from them, and verify with noble alone', () => {
    const v = committed<{ ops: OpVector[]; negative: NegativeVector[] }>('op-codec.json');
    expect(v.ops.length).toBe(5);
    for (const o of v.ops) {
      const raw = fromHex(o.encoded);
      const op = decodeOp(raw);
      const author = NodeIdentity.fromSeed(fromHex(o.authorSeed));
      expect(toHex(op.author)).toBe(toHex(ed25519.getPublicKey(fromHex(o.authorSeed))));
      expect(op.body).toEqual(bodyFromJson(o.body));
      expect(op.preds.map(toHex)).toEqual(o.preds);
      expect(op.timestamp).toBe(o.timestamp);
      const group = o.body.kind === 'create' ? ZERO_GROUP : fromHex(v.ops[0]!.hash);
      expect(toHex(createOp(author, { group, timestamp: o.timestamp, preds: o.preds.map(fromHex), body: bodyFromJson(o.body) }).raw)).toBe(o.encoded);
      expect(verifyOp(op)).toBe(true);
      // noble only: hash, and signature over context || unsigned bytes
      expect(toHex(sha256(raw))).toBe(o.hash);
      const signed = Uint8Array.from([...enc.encode('deaddrop/group-op/v1\0'), ...raw.subarray(0, raw.length - 64)]);
      expect(ed25519.verify(fromHex(o.signature), signed, op.author)).toBe(true);
    }
    expect(v.ops.slice(1).every((o) => fromHex(o.encoded).subarray(1, 33).every((b, i) => b === fromHex(v.ops[0]!.hash)[i]))).toBe(true);
  });

  it('ops: every negative vector is refused', () => {
    const v = committed<{ negative: NegativeVector[] }>('op-codec.json');
    expectRefused(v.negative, decodeOp, (op) => verifyOp(op as ReturnType<typeof decodeOp>));
  });

  it('ratchet and message: recomputed with noble HMAC, HKDF and ChaCha20-Poly1305 alone', () => {
    const v = committed<{
      chainKey0: string;
      chain: { index: number; chainKey: string; messageKey: string }[];
      message: { senderSeed: string; group: string; generation: number; index: number; plaintext: string; header: string; aeadKey: string; aeadNonce: string; encoded: string };
    }>('ratchet.json');
    let ck = fromHex(v.chainKey0);
    for (const step of v.chain) {
      expect(toHex(ck)).toBe(step.chainKey);
      expect(toHex(hmac(sha256, ck, Uint8Array.of(1)))).toBe(step.messageKey);
      ck = hmac(sha256, ck, Uint8Array.of(2));
    }
    const m = v.message;
    const header = fromHex(m.header);
    const okm = hkdf(sha256, fromHex(v.chain[m.index]!.messageKey), enc.encode('deaddrop/group-msg/v1'), header, 44);
    expect([toHex(okm.subarray(0, 32)), toHex(okm.subarray(32))]).toEqual([m.aeadKey, m.aeadNonce]);
    const raw = fromHex(m.encoded);
    expect(toHex(raw.subarray(0, 73))).toBe(m.header);
    const ct = raw.subarray(73, raw.length - 64);
    expect(toHex(chacha20poly1305(fromHex(m.aeadKey), fromHex(m.aeadNonce), header).decrypt(ct))).toBe(m.plaintext);
    const sender = ed25519.getPublicKey(fromHex(m.senderSeed));
    expect(ed25519.verify(raw.subarray(raw.length - 64), Uint8Array.from([...enc.encode('deaddrop/group-msg/v1\0'), ...header, ...ct]), sender)).toBe(true);
    // and our decoder agrees
    const d = decodeMessage(raw);
    expect({ group: toHex(d.group), generation: d.generation, index: d.index }).toEqual({ group: m.group, generation: m.generation, index: m.index });
    expect(verifyGroupMessage(d)).toBe(true);
    expect(toHex(openWithKey(d, fromHex(v.chain[m.index]!.messageKey))!)).toBe(m.plaintext);
    expect(openWithKey(d, fromHex(v.chain[m.index - 1]!.messageKey))).toBeNull();
  });
});
