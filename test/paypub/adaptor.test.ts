import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { u32be } from '../../src/paypub/bytes.js';
import {
  adaptorClaimLeafScript, adaptorComplete, adaptorExtract, adaptorPoint, adaptorSign, adaptorVerify, presigNonceParity,
} from '../../src/paypub/adaptor.js';

/** A pre-signature whose combined nonce R has the wanted parity (searching over aux). */
function presigWithParity(msg: Uint8Array, sk: Uint8Array, T: Uint8Array, parity: 'even' | 'odd'): Uint8Array {
  for (let i = 0; i < 200; i++) {
    const ps = adaptorSign(msg, sk, T, u32be(i).slice());
    if (presigNonceParity(ps) === parity) return ps;
  }
  throw new Error('no pre-signature of that parity in 200 tries');
}

describe('Schnorr adaptor signatures', () => {
  // signer keys of both y parities: BIP340 negates the secret for odd-y public points
  const signers = Array.from({ length: 6 }, () => schnorr.utils.randomSecretKey());

  for (const parity of ['even', 'odd'] as const) {
    it(`pre-sign, verify, complete to a valid BIP340 signature, extract t (${parity} nonce)`, () => {
      for (const sk of signers) {
        const pk = schnorr.getPublicKey(sk);
        const t = schnorr.utils.randomSecretKey();
        const T = adaptorPoint(t);
        const msg = randomBytes(32);
        const ps = presigWithParity(msg, sk, T, parity);
        expect(presigNonceParity(ps)).toBe(parity);
        expect(adaptorVerify(msg, pk, T, ps)).toBe(true);
        // a pre-signature is not itself a valid signature
        expect(schnorr.verify(ps.subarray(1), msg, pk)).toBe(false);
        const sig = adaptorComplete(ps, t);
        expect(schnorr.verify(sig, msg, pk)).toBe(true);
        expect(adaptorExtract(ps, sig, T)).toEqual(t);
      }
    });
  }

  it('rejects a mismatched T, message, key or tampered pre-signature', () => {
    const sk = signers[0] as Uint8Array;
    const pk = schnorr.getPublicKey(sk);
    const t = schnorr.utils.randomSecretKey();
    const T = adaptorPoint(t);
    const msg = randomBytes(32);
    const ps = adaptorSign(msg, sk, T);
    expect(adaptorVerify(msg, pk, adaptorPoint(schnorr.utils.randomSecretKey()), ps)).toBe(false);
    expect(adaptorVerify(randomBytes(32), pk, T, ps)).toBe(false);
    expect(adaptorVerify(msg, schnorr.getPublicKey(signers[1] as Uint8Array), T, ps)).toBe(false);
    const bad = ps.slice();
    bad[64] = (bad[64] as number) ^ 1;
    expect(adaptorVerify(msg, pk, T, bad)).toBe(false);
    expect(adaptorVerify(msg, pk, T, ps.subarray(1))).toBe(false);
    // completing with the wrong secret gives an invalid signature, and extraction against T fails
    const wrong = adaptorComplete(ps, schnorr.utils.randomSecretKey());
    expect(schnorr.verify(wrong, msg, pk)).toBe(false);
    expect(adaptorExtract(ps, wrong, T)).toBeNull();
    // an unrelated valid signature yields nothing
    expect(adaptorExtract(ps, schnorr.sign(msg, sk), T)).toBeNull();
  });

  it('2-of-2 claim leaf layout', () => {
    const a = schnorr.getPublicKey(signers[0] as Uint8Array);
    const b = schnorr.getPublicKey(signers[1] as Uint8Array);
    const leaf = adaptorClaimLeafScript(a, b);
    expect(leaf.length).toBe(68);
    expect([leaf[0], leaf[33], leaf[34], leaf[67]]).toEqual([0x20, 0xad, 0x20, 0xac]);
  });
});
