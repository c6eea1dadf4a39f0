/** The proofs and plaintexts of an introduction answered over the mixnet: round trips, and every tampering refused. */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { ed25519FromSeed } from '../../../src/node/crypto.js';
import { mixTokenProof, signMixAccept, verifyMixAccept } from '../../../src/node/introduction-token.js';
import { decodeMixAnswer, decodeMixInvite, encodeMixAnswer, encodeMixInvite, MAX_CARRIED_ENTRY_BYTES } from '../../../src/node/mixnet/introduction.js';
import type { MixAnswer, MixInvite } from '../../../src/node/mixnet/introduction.js';
import { SURB_BYTES } from '../../../src/node/mixnet/sphinx.js';
import { BODY_BYTES } from '../../../src/node/mixnet/params.js';

const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

describe('mixnet invite proof and acceptance', () => {
  const token = rnd(32);
  const pairwise = ed25519FromSeed(rnd(32));
  const inviter = NodeIdentity.fromSeed(rnd(32));
  const joiner = rnd(32);
  const nonce = rnd(16);

  it('binds the proof to the nonce and both keys', () => {
    const mac = mixTokenProof(token, nonce, pairwise.publicKey, joiner);
    expect(mac).toEqual(mixTokenProof(token, nonce, pairwise.publicKey, joiner));
    expect(mac).not.toEqual(mixTokenProof(token, rnd(16), pairwise.publicKey, joiner));
    expect(mac).not.toEqual(mixTokenProof(token, nonce, rnd(32), joiner));
    expect(mac).not.toEqual(mixTokenProof(token, nonce, pairwise.publicKey, rnd(32)));
    expect(() => mixTokenProof(token, rnd(15), pairwise.publicKey, joiner)).toThrow(RangeError);
  });

  it('accepts only the attempt it was signed for, by both the pairwise key and the inviter', () => {
    const sig = signMixAccept(pairwise, inviter, nonce, joiner);
    expect(verifyMixAccept(pairwise.publicKey, inviter.publicKey, joiner, nonce, sig)).toBe(true);
    expect(verifyMixAccept(pairwise.publicKey, inviter.publicKey, joiner, rnd(16), sig)).toBe(false); // an older attempt's answer
    expect(verifyMixAccept(pairwise.publicKey, inviter.publicKey, rnd(32), nonce, sig)).toBe(false);
    expect(verifyMixAccept(pairwise.publicKey, rnd(32), joiner, nonce, sig)).toBe(false); // claims another identity
    expect(verifyMixAccept(rnd(32), inviter.publicKey, joiner, nonce, sig)).toBe(false);
    expect(verifyMixAccept(pairwise.publicKey, inviter.publicKey, joiner, nonce, { ...sig, byInviter: sig.byPairwise })).toBe(false);
    expect(verifyMixAccept(pairwise.publicKey, inviter.publicKey, joiner, rnd(3), sig)).toBe(false);
  });
});

describe('mixnet invite plaintexts', () => {
  const invite: MixInvite = { tokenId: rnd(16), nonce: rnd(16), mac: rnd(32), surb: rnd(SURB_BYTES), mailboxEntry: rnd(200), providerEntry: rnd(400) };
  const ok: MixAnswer = { kind: 'ok', nonce: rnd(16), inviter: rnd(32), byPairwise: rnd(64), byInviter: rnd(64), mailboxEntry: rnd(200), providerEntry: rnd(400) };

  it('round-trip, also zero padded to a body, and fit one packet body with room for sealing', () => {
    const b = encodeMixInvite(invite);
    expect(decodeMixInvite(b)).toEqual(invite);
    const padded = new Uint8Array(BODY_BYTES);
    padded.set(b);
    expect(decodeMixInvite(padded)).toBeNull(); // padding only where the caller says the body is padded
    expect(decodeMixInvite(padded, true)).toEqual(invite);
    const big = encodeMixInvite({ ...invite, mailboxEntry: rnd(MAX_CARRIED_ENTRY_BYTES), providerEntry: rnd(MAX_CARRIED_ENTRY_BYTES) });
    expect(big.length).toBeLessThan(BODY_BYTES - 200);
    const a = encodeMixAnswer(ok);
    expect(decodeMixAnswer(a)).toEqual(ok);
    const r = encodeMixAnswer({ kind: 'refused', nonce: invite.nonce });
    expect(decodeMixAnswer(r)).toEqual({ kind: 'refused', nonce: invite.nonce });
  });

  it('refuse truncation, trailing bytes, empty or oversized entries, and other kinds', () => {
    const b = encodeMixInvite(invite);
    for (const n of [0, 1, 17, 100, b.length - 401, b.length - 1]) expect(decodeMixInvite(b.subarray(0, n), true)).toBeNull();
    expect(decodeMixInvite(Uint8Array.from([...b, 1]), true)).toBeNull();
    expect(decodeMixInvite(Uint8Array.from([0x03, ...b.subarray(1)]))).toBeNull();
    expect(() => encodeMixInvite({ ...invite, providerEntry: rnd(MAX_CARRIED_ENTRY_BYTES + 1) })).toThrow(RangeError);
    expect(() => encodeMixInvite({ ...invite, surb: rnd(10) })).toThrow(RangeError);
    const a = encodeMixAnswer(ok);
    for (const n of [0, 1, 16, 100, a.length - 1]) expect(decodeMixAnswer(a.subarray(0, n))).toBeNull();
    expect(decodeMixAnswer(Uint8Array.from([...a, 7]))).toBeNull();
    const noEntry = Uint8Array.from(a);
    noEntry[1 + 16 + 32 + 128] = 0;
    noEntry[1 + 16 + 32 + 128 + 1] = 0;
    expect(decodeMixAnswer(noEntry)).toBeNull();
  });

  it('never throw on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), fc.boolean(), (b, padded) => {
        if (b.length > 0) b[0] = [0x02, 0x03, 0x04][b.length % 3]!;
        decodeMixInvite(b, padded);
        decodeMixAnswer(b, padded);
      }),
      { numRuns: 2000 },
    );
  });
});
