import { describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../src/node/identity.js';
import { openNodeDatabase } from '../../src/node/db.js';
import {
  WhereaboutsStore,
  decodeWhereabouts,
  openWhereabouts,
  sealWhereabouts,
  verifyWhereabouts,
} from '../../src/node/whereabouts.js';
import { introductionTokenSecrets, signAccept, tokenProof, verifyAccept } from '../../src/node/introduction-token.js';
import { decodeClock, decodeEntries, decodeInvite, encodeClock, encodeEntries, encodeInvite } from '../../src/node/wire.js';
import { randomBytes, sha256, utf8 } from '../../src/node/crypto.js';
import { toHex } from '../../src/util/bytes.js';

const alice = NodeIdentity.fromSeed(sha256(utf8('alice')));
const bob = NodeIdentity.fromSeed(sha256(utf8('bob')));
const carol = NodeIdentity.fromSeed(sha256(utf8('carol')));
const eve = NodeIdentity.fromSeed(sha256(utf8('eve')));

describe('whereabouts bundles', () => {
  const endpoints = ['ws://127.0.0.1:4001', 'ws://[::1]:4001'];
  const raw = sealWhereabouts(alice, { seq: 5, expiresAt: Date.now() + 60_000, endpoints }, [bob.publicKey, carol.publicKey]);

  it('every recipient, and only recipients, can read the endpoints', () => {
    const b = decodeWhereabouts(raw);
    expect(verifyWhereabouts(b)).toBe(true);
    expect(b.envelopes.length).toBe(2);
    expect(openWhereabouts(bob, b)?.endpoints).toEqual(endpoints);
    expect(openWhereabouts(carol, b)?.endpoints).toEqual(endpoints);
    expect(openWhereabouts(eve, b)).toBeNull();
    // the ciphertext does not contain the endpoint in clear
    expect(Buffer.from(raw).includes(Buffer.from('127.0.0.1'))).toBe(false);
  });

  it('any change breaks the signature; unknown versions are refused', () => {
    for (const i of [0, 1, 40, 60, raw.length - 70, raw.length - 1]) {
      const t = raw.slice();
      t[i] = t[i]! ^ 1;
      let ok = false;
      try {
        ok = verifyWhereabouts(decodeWhereabouts(t));
      } catch {
        ok = false;
      }
      expect(ok, `byte ${i}`).toBe(false);
    }
  });

  it('a contact stores the highest seq, refuses stale and expired ones, and records equivocation', () => {
    const store = new WhereaboutsStore(openNodeDatabase(':memory:'));
    const now = Date.now();
    const seal = (seq: number, ep: string, exp = now + 60_000) => decodeWhereabouts(sealWhereabouts(alice, { seq, expiresAt: exp, endpoints: [ep] }, [bob.publicKey]));
    const v5 = seal(5, 'ws://a:1');
    expect(store.put(v5, now)).toBe('stored');
    expect(store.put(v5, now)).toBe('duplicate');
    expect(store.put(seal(4, 'ws://a:0'), now)).toBe('stale');
    expect(store.put(seal(5, 'ws://a:2'), now)).toBe('equivocation');
    expect(toHex(store.get(alice.publicKey, now)!)).toBe(toHex(v5.raw));
    expect(store.put(seal(9, 'ws://a:9', now - 1), now)).toBe('expired');
    const v6 = seal(6, 'ws://a:3', now + 10);
    expect(store.put(v6, now)).toBe('stored');
    expect(store.get(alice.publicKey, now + 20)).toBeNull();
    expect(store.prune(now + 20)).toBe(1);
  });
});

describe('invite proofs', () => {
  it('tokens and pairwise keys are deterministic per tokenId, and proofs are session-bound', () => {
    const tokenId = randomBytes(16);
    const s1 = introductionTokenSecrets(alice, tokenId);
    const s2 = introductionTokenSecrets(alice, tokenId);
    expect(toHex(s1.token)).toBe(toHex(s2.token));
    expect(toHex(s1.pairwise.publicKey)).toBe(toHex(s2.pairwise.publicKey));
    expect(toHex(introductionTokenSecrets(alice, randomBytes(16)).pairwise.publicKey)).not.toBe(toHex(s1.pairwise.publicKey));
    expect(toHex(introductionTokenSecrets(bob, tokenId).token)).not.toBe(toHex(s1.token));
    const hh1 = randomBytes(64);
    const hh2 = randomBytes(64);
    expect(toHex(tokenProof(s1.token, hh1))).not.toBe(toHex(tokenProof(s1.token, hh2)));
    const sig = signAccept(s1.pairwise, hh1, alice.publicKey, bob.publicKey);
    expect(verifyAccept(s1.pairwise.publicKey, sig, hh1, alice.publicKey, bob.publicKey)).toBe(true);
    expect(verifyAccept(s1.pairwise.publicKey, sig, hh2, alice.publicKey, bob.publicKey)).toBe(false);
    expect(verifyAccept(s1.pairwise.publicKey, sig, hh1, alice.publicKey, carol.publicKey)).toBe(false);
  });
});

describe('wire codecs', () => {
  it('round-trip and reject truncation or trailing bytes', () => {
    const clock = [{ feed: randomBytes(32), seq: 2 ** 40 + 3, head: randomBytes(32) }];
    expect(decodeClock(encodeClock(clock))).toEqual(clock);
    const entries = [randomBytes(10), randomBytes(0), randomBytes(300)];
    expect(decodeEntries(encodeEntries(entries)).map(toHex)).toEqual(entries.map(toHex));
    const inv = { tokenId: randomBytes(16), mac: randomBytes(32), endpoints: ['ws://x:1'] };
    expect(decodeInvite(encodeInvite(inv))).toEqual(inv);
    for (const bad of [encodeClock(clock).subarray(1), Uint8Array.from([...encodeClock(clock), 0])]) {
      expect(() => decodeClock(bad)).toThrow(/malformed/);
    }
    expect(() => decodeEntries(encodeEntries(entries).subarray(0, 20))).toThrow(/malformed/);
    expect(() => decodeInvite(Uint8Array.from([...encodeInvite(inv), 1]))).toThrow(/malformed/);
  });
});
