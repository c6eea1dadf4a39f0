/**
 * Onion v3 keys from the node's own Ed25519 seeds.
 *
 * Tor's `ADD_ONION ED25519-V3:<base64>` takes the 64-byte *expanded* secret key, not the 32-byte
 * seed: h = SHA-512(seed), with the first half clamped as RFC 8032 clamps the scalar
 * (h[0] &= 248, h[31] &= 127, h[31] |= 64). Tor does not clamp what it is given: an unclamped key
 * is accepted and silently publishes a different address, so the clamping here is what makes the
 * onion's address equal {@link onionAddress} of the node's public key (and lets a drop carry the
 * 3-byte hint 0x05 "onion of the payload's node key").
 */
import { createHash } from 'node:crypto';
import { onionAddress } from '../../deaddrop/endpoint.js';
import { ed25519FromSeed, wipe } from '../crypto.js';

/** The 64-byte expanded Ed25519 secret key Tor wants for a seed (secret: wipe it after use). */
export function expandedSecretKey(seed: Uint8Array): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new TypeError('seed: expected 32 bytes');
  const h = new Uint8Array(createHash('sha512').update(seed).digest());
  h[0] = (h[0] as number) & 248;
  h[31] = ((h[31] as number) & 127) | 64;
  return h;
}

/** The `ED25519-V3:<base64>` key blob of ADD_ONION for a seed (secret: never log it). */
export function addOnionKeyBlob(seed: Uint8Array): string {
  const key = expandedSecretKey(seed);
  try {
    return `ED25519-V3:${Buffer.from(key).toString('base64')}`;
  } finally {
    wipe(key);
  }
}

/** The onion hostname (56 characters, without ".onion") that a seed's key publishes. */
export function onionOfSeed(seed: Uint8Array): string {
  const kp = ed25519FromSeed(seed);
  try {
    return onionAddress(kp.publicKey);
  } finally {
    wipe(kp.secretKey);
  }
}
