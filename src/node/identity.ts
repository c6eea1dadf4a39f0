/**
 * The node's identity: one Ed25519 key from a 32-byte seed supplied by the caller (the wallet
 * derives it from the BIP39 seed; this module never sees the mnemonic). The same key
 * - signs the node's feed (its public key is the feed id),
 * - authenticates the node in Noise, in its X25519 form (same secret scalar),
 * - and, through HKDF, yields deterministic per-purpose secrets (invite tokens, pairwise keys), so
 *   nothing secret has to be stored at rest.
 */
import { SEED_BYTES, ed25519FromSeed, ed25519PublicToX25519, ed25519SecretToX25519, ed25519Sign, hkdf, utf8, wipe, x25519, x25519Public } from './crypto.js';
import type { Signer } from './crypto.js';
import { concatBytes } from '../util/bytes.js';

const DERIVE_SALT = utf8('deaddrop/node-derive/v1');

/** The node's key material. Keep one instance per node; `destroy` wipes it. */
export class NodeIdentity implements Signer {
  readonly publicKey: Uint8Array;
  readonly #secretKey: Uint8Array;
  readonly #seed: Uint8Array;
  readonly #xSecret: Uint8Array;
  readonly #xPublic: Uint8Array;

  private constructor(seed: Uint8Array) {
    this.#seed = seed.slice();
    const kp = ed25519FromSeed(this.#seed);
    this.publicKey = kp.publicKey;
    this.#secretKey = kp.secretKey;
    this.#xSecret = ed25519SecretToX25519(kp.secretKey);
    this.#xPublic = x25519Public(this.#xSecret);
  }

  /** Identity from a 32-byte seed (copied). */
  static fromSeed(seed: Uint8Array): NodeIdentity {
    if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) throw new TypeError('seed: expected 32 bytes');
    return new NodeIdentity(seed);
  }

  /** Ed25519 signature with the identity key. */
  sign(message: Uint8Array): Uint8Array {
    return ed25519Sign(message, this.#secretKey);
  }

  /** X25519 static key pair for Noise (fresh copies). */
  noiseKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
    return { publicKey: this.#xPublic.slice(), secretKey: this.#xSecret.slice() };
  }

  /** Static-static X25519 secret with another node, or null for an invalid key. */
  sharedSecret(peer: Uint8Array): Uint8Array | null {
    const x = ed25519PublicToX25519(peer);
    return x ? x25519(this.#xSecret, x) : null;
  }

  /** X25519 secret with a raw X25519 public key (e.g. an ephemeral key), or null for an invalid key. */
  sharedSecretX(peerX25519: Uint8Array): Uint8Array | null {
    return x25519(this.#xSecret, peerX25519);
  }

  /** A deterministic secret for `label` and `context`, independent of every other label. */
  derive(label: string, context: Uint8Array, length = 32): Uint8Array {
    return hkdf(this.#seed, DERIVE_SALT, concatBytes(utf8(label), Uint8Array.of(0), context), length);
  }

  /** Wipes the secret material. The identity must not be used afterwards. */
  destroy(): void {
    wipe(this.#seed);
    wipe(this.#secretKey);
    wipe(this.#xSecret);
  }
}
