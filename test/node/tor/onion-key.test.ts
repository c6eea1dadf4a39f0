import { describe, expect, it } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { onionAddress } from '../../../src/deaddrop/endpoint.js';
import { addOnionKeyBlob, expandedSecretKey, onionOfSeed } from '../../../src/node/tor/onion-key.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

// RFC 8032 section 7.1, TEST 1
const SEED = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const PUB = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');

function scalarOf(expanded: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(expanded.subarray(0, 32)).reverse().toString('hex')}`);
}

describe('onion keys from Ed25519 seeds', () => {
  it('expands a seed so that the clamped scalar times the base point is the public key', () => {
    const key = expandedSecretKey(SEED);
    expect(key.length).toBe(64);
    expect(Buffer.from(ed25519.Point.BASE.multiply(scalarOf(key) % ed25519.Point.CURVE().n).toBytes()).toString('hex')).toBe(Buffer.from(PUB).toString('hex'));
  });

  it('clamps the first half (low 3 bits clear, bit 254 set, bit 255 clear) and keeps the second half of SHA-512', () => {
    for (let i = 0; i < 50; i++) {
      const seed = ed25519.utils.randomSecretKey();
      const key = expandedSecretKey(seed);
      expect((key[0] as number) & 7).toBe(0);
      expect((key[31] as number) & 0xc0).toBe(0x40);
      const pub = ed25519.getPublicKey(seed);
      expect(ed25519.Point.BASE.multiply(scalarOf(key) % ed25519.Point.CURVE().n).equals(ed25519.Point.fromBytes(pub))).toBe(true);
    }
  });

  it('builds the ADD_ONION blob and the onion name of the seed', () => {
    const blob = addOnionKeyBlob(SEED);
    expect(blob.startsWith('ED25519-V3:')).toBe(true);
    expect(Buffer.from(blob.slice(11), 'base64')).toEqual(Buffer.from(expandedSecretKey(SEED)));
    expect(onionOfSeed(SEED)).toBe(onionAddress(PUB));
    expect(onionOfSeed(SEED)).toMatch(/^[a-z2-7]{55}d$/); // version byte 3 ends the name in 'd'
  });

  it('rejects a seed of the wrong size', () => {
    expect(() => expandedSecretKey(new Uint8Array(31))).toThrow(TypeError);
    expect(() => expandedSecretKey(new Uint8Array(64))).toThrow(TypeError);
  });
});
