/**
 * Thin, typed wrappers over the primitives the node layer uses.
 *
 * - Ed25519 and X25519 come from libsodium (sodium-native, prebuilt). On this machine libsodium
 *   verifies Ed25519 about twice as fast as node:crypto/OpenSSL (19k/s vs 9k/s on short messages),
 *   and its verify is strict (canonical S, canonical A and R, no small-order points), which keeps
 *   signatures non-malleable. @noble/curves cross-checks it in the tests.
 * - SHA-256 and HMAC/HKDF come from node:crypto (SHA-NI accelerated, about 1.7 GB/s here).
 *
 * Every `verify`/`open` style function returns false/null on bad input instead of throwing:
 * their inputs come from strangers.
 */
import { createHash, createHmac, hash, hkdfSync, randomBytes as nodeRandomBytes } from 'node:crypto';
import sodium from 'sodium-native';
import { concatBytes } from '../util/bytes.js';

export const PUBLIC_KEY_BYTES = 32;
export const SECRET_KEY_BYTES = 64;
export const SEED_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const HASH_BYTES = 32;
export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;

/** An Ed25519 key pair: 32-byte public key and libsodium's 64-byte secret key (seed || public key). */
export interface Ed25519KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** Anything that signs with an Ed25519 key: a node identity or a pairwise key. */
export interface Signer {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

function abytes(value: unknown, length: number | undefined, title: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${title}: expected Uint8Array, got ${typeof value}`);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`${title}: expected ${length} bytes, got ${value.length}`);
  }
}

/** Above this, several parts are fed to a Hash object rather than concatenated first. */
const CONCAT_HASH_BYTES = 4096;

function view(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * SHA-256 of one buffer through node:crypto's one-shot `hash`, taking the digest as a 'binary'
 * (latin1: one char per byte) string and copying its 32 chars out: a digest Buffer made by native code costs more
 * than the hash (measured here for a ~200-byte entry: 0.34 us against 0.8 us with a Buffer, 0.78 us
 * with libsodium's portable SHA-256; 65-byte Merkle node: 0.26 us against 0.4 us with libsodium).
 */
function digestInto(data: Uint8Array, out: Uint8Array, at: number): void {
  const s = hash('sha256', data, 'binary');
  for (let i = 0; i < HASH_BYTES; i++) out[at + i] = s.charCodeAt(i);
}

function digestOf(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HASH_BYTES);
  digestInto(data, out, 0);
  return out;
}

/** SHA-256 over the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return digestOf(parts[0]!);
  let n = 0;
  for (const p of parts) n += p.length;
  if (n <= CONCAT_HASH_BYTES) return digestOf(concatBytes(...parts));
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return view(h.digest());
}

// One scratch buffer for the tree hashes below: they run synchronously, so it is never shared.
const treeScratch = new Uint8Array(1 + 2 * HASH_BYTES);
const leafScratch = treeScratch.subarray(0, 1 + HASH_BYTES);

/**
 * SHA-256(tag || a || b?) for Merkle leaves and nodes, without allocating the concatenation: a batch
 * of 1,000 entries takes about 2,000 of these, and the copies and garbage cost as much as the hashing.
 */
export function sha256Tagged(tag: number, a: Uint8Array, b?: Uint8Array): Uint8Array {
  if (a.length !== HASH_BYTES || (b !== undefined && b.length !== HASH_BYTES)) return sha256(Uint8Array.of(tag), a, ...(b ? [b] : []));
  treeScratch[0] = tag;
  treeScratch.set(a, 1);
  if (b) treeScratch.set(b, 1 + HASH_BYTES);
  return digestOf(b ? treeScratch : leafScratch);
}

/** SHA-256 of `data` written to `out[at, at + 32)`, for Merkle nodes kept side by side in one buffer. */
export function sha256Into(out: Uint8Array, at: number, data: Uint8Array): void {
  if (at < 0 || at + HASH_BYTES > out.length) throw new RangeError('out: no room for a digest at `at`');
  digestInto(data, out, at);
}

/**
 * SHA-256 of `data[0, split)`, plus a function that finishes the hash of `data[0, split) || suffix`
 * without hashing the prefix again.
 */
export function sha256Resumable(data: Uint8Array, split: number): { prefix: Uint8Array; finish: (suffix: Uint8Array) => Uint8Array } {
  if (split <= CONCAT_HASH_BYTES) {
    const state = new Uint8Array(sodium.crypto_hash_sha256_STATEBYTES);
    sodium.crypto_hash_sha256_init(state);
    sodium.crypto_hash_sha256_update(state, data.subarray(0, split));
    const copy = state.slice();
    const prefix = new Uint8Array(32);
    sodium.crypto_hash_sha256_final(copy, prefix);
    return {
      prefix,
      finish: (suffix) => {
        const out = new Uint8Array(32);
        sodium.crypto_hash_sha256_update(state, suffix);
        sodium.crypto_hash_sha256_final(state, out);
        return out;
      },
    };
  }
  const h = createHash('sha256').update(data.subarray(0, split));
  const p = view(h.copy().digest());
  return { prefix: p, finish: (suffix) => view(h.update(suffix).digest()) };
}

/** One pass over `data` giving the SHA-256 of `data[0, split)` and of all of `data`. */
export function sha256Split(data: Uint8Array, split: number): { prefix: Uint8Array; whole: Uint8Array } {
  const r = sha256Resumable(data, split);
  return { prefix: r.prefix, whole: r.finish(data.subarray(split)) };
}

/** HMAC-SHA256(key, concat(parts)). */
export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

/** HKDF-SHA256 (RFC 5869). */
export function hkdf(ikm: Uint8Array, salt: Uint8Array | string, info: Uint8Array | string, length: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}

/** Cryptographically secure random bytes. */
export function randomBytes(length: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(length));
}

/** Zero a secret buffer in place. */
export function wipe(buf: Uint8Array): void {
  sodium.sodium_memzero(buf);
}

/** Ed25519 key pair from a 32-byte seed (RFC 8032 private key). */
export function ed25519FromSeed(seed: Uint8Array): Ed25519KeyPair {
  abytes(seed, SEED_BYTES, 'seed');
  const publicKey = new Uint8Array(PUBLIC_KEY_BYTES);
  const secretKey = new Uint8Array(SECRET_KEY_BYTES);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return { publicKey, secretKey };
}

/** Ed25519 signature of `message` with a 64-byte libsodium secret key. */
export function ed25519Sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  abytes(secretKey, SECRET_KEY_BYTES, 'secretKey');
  const sig = new Uint8Array(SIGNATURE_BYTES);
  sodium.crypto_sign_detached(sig, message, secretKey);
  return sig;
}

/** Strict Ed25519 verification; false for any malformed input. */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  try {
    return sodium.crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** A Signer over an Ed25519 key pair. */
export function signerFromKeyPair(kp: Ed25519KeyPair): Signer {
  return { publicKey: kp.publicKey, sign: (m) => ed25519Sign(m, kp.secretKey) };
}

/** The X25519 (Montgomery) form of an Ed25519 public key, or null if it is not a valid point. */
export function ed25519PublicToX25519(publicKey: Uint8Array): Uint8Array | null {
  if (publicKey.length !== PUBLIC_KEY_BYTES) return null;
  const out = new Uint8Array(32);
  try {
    sodium.crypto_sign_ed25519_pk_to_curve25519(out, publicKey);
    return out;
  } catch {
    return null;
  }
}

/** The X25519 secret scalar matching an Ed25519 secret key (same clamped scalar). */
export function ed25519SecretToX25519(secretKey: Uint8Array): Uint8Array {
  abytes(secretKey, SECRET_KEY_BYTES, 'secretKey');
  const out = new Uint8Array(32);
  sodium.crypto_sign_ed25519_sk_to_curve25519(out, secretKey);
  return out;
}

/** X25519 public key of a secret scalar. */
export function x25519Public(secret: Uint8Array): Uint8Array {
  abytes(secret, 32, 'secret');
  const out = new Uint8Array(32);
  sodium.crypto_scalarmult_base(out, secret);
  return out;
}

/** X25519 shared secret, or null for a low-order peer key (all-zero output). */
export function x25519(secret: Uint8Array, peerPublic: Uint8Array): Uint8Array | null {
  if (secret.length !== 32 || peerPublic.length !== 32) return null;
  const out = new Uint8Array(32);
  try {
    sodium.crypto_scalarmult(out, secret, peerPublic);
    return out;
  } catch {
    return null;
  }
}

/** XChaCha20-Poly1305 with a random 24-byte nonce. Output: nonce || ciphertext || tag. */
export function aeadSeal(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  abytes(key, 32, 'key');
  const out = new Uint8Array(AEAD_NONCE_BYTES + plaintext.length + AEAD_TAG_BYTES);
  const nonce = out.subarray(0, AEAD_NONCE_BYTES);
  sodium.randombytes_buf(nonce);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out.subarray(AEAD_NONCE_BYTES), plaintext, ad, null, nonce, key);
  return out;
}

/** Opens `aeadSeal` output; null when the tag does not verify or the input is too short. */
export function aeadOpen(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  if (key.length !== 32 || sealed.length < AEAD_NONCE_BYTES + AEAD_TAG_BYTES) return null;
  const nonce = sealed.subarray(0, AEAD_NONCE_BYTES);
  const out = new Uint8Array(sealed.length - AEAD_NONCE_BYTES - AEAD_TAG_BYTES);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, sealed.subarray(AEAD_NONCE_BYTES), ad, nonce, key);
    return out;
  } catch {
    return null;
  }
}

/** UTF-8 encode a string. */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
