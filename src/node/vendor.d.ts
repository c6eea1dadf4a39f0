// Minimal ambient declarations for the two untyped native/crypto packages the node layer uses.
// Only the functions deaddrop calls are declared.

declare module 'sodium-native' {
  export function crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  export function crypto_sign_detached(sig: Uint8Array, message: Uint8Array, sk: Uint8Array): void;
  export function crypto_sign_verify_detached(sig: Uint8Array, message: Uint8Array, pk: Uint8Array): boolean;
  export function crypto_sign_ed25519_pk_to_curve25519(xPk: Uint8Array, edPk: Uint8Array): void;
  export function crypto_sign_ed25519_sk_to_curve25519(xSk: Uint8Array, edSk: Uint8Array): void;
  export function crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  export function crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  export function crypto_aead_xchacha20poly1305_ietf_encrypt(
    c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array,
  ): number;
  export function crypto_aead_xchacha20poly1305_ietf_decrypt(
    m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array,
  ): number;
  export function crypto_hash_sha256(out: Uint8Array, input: Uint8Array): void;
  export function crypto_hash_sha256_init(state: Uint8Array): void;
  export function crypto_hash_sha256_update(state: Uint8Array, input: Uint8Array): void;
  export function crypto_hash_sha256_final(state: Uint8Array, out: Uint8Array): void;
  export const crypto_hash_sha256_STATEBYTES: number;
  export function randombytes_buf(buf: Uint8Array): void;
  export function sodium_memzero(buf: Uint8Array): void;
}

declare module 'noise-handshake' {
  interface NoiseKeyPair {
    publicKey: Uint8Array;
    secretKey: Uint8Array;
  }
  class NoiseState {
    constructor(pattern: 'XX' | 'IK' | 'NN' | 'XK', initiator: boolean, staticKeypair?: NoiseKeyPair | null, opts?: object);
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    send(payload?: Uint8Array): Uint8Array;
    recv(message: Uint8Array): Uint8Array;
    readonly complete: boolean;
    readonly tx: Uint8Array | null;
    readonly rx: Uint8Array | null;
    readonly rs: Uint8Array | null;
    readonly hash: Uint8Array | null;
  }
  export = NoiseState;
}

declare module 'noise-handshake/cipher.js' {
  class CipherState {
    constructor(key: Uint8Array);
    encrypt(plaintext: Uint8Array, ad?: Uint8Array): Uint8Array;
    decrypt(ciphertext: Uint8Array, ad?: Uint8Array): Uint8Array;
    nonce: number;
  }
  export = CipherState;
}
