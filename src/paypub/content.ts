/**
 * PayPub content layer: exact-length chunking, one random key per chunk, per-chunk
 * XChaCha20-Poly1305 and the commitments a manifest carries.
 *
 * Fixes of the 2014 design (docs/protocol/paypub.md, "Content"):
 * - keys come from the CSPRNG and are never derived from the content, so holding a chunk
 *   does not give its key;
 * - AEAD instead of ECB: a changed or swapped ciphertext fails authentication, because the
 *   content id, chunk index and chunk count are bound in the associated data;
 * - the file length is recorded and every chunk's length follows from (length, count), so
 *   there is no padding to guess and the chunk count is always honoured.
 *
 * Chunk layout: with L bytes in N chunks, q = floor(L / N) and r = L mod N, chunk i holds
 * q + 1 bytes when i < r and q bytes otherwise (the last chunks are one byte shorter).
 * A layout with a fixed size ceil(L/N) and "the last chunk shorter" can leave trailing
 * chunks empty (100 bytes in 32 chunks of 4 leaves 7 empty), and an empty chunk in a
 * sample proves nothing; this layout leaves none empty when L >= N. Files shorter than
 * N bytes, and empty files, are refused: there is nothing to sample.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { DeaddropError } from '../util/errors.js';
import { sha256, taggedHash, u32be, Writer } from './bytes.js';
import { KEY_BYTES, MAX_CHUNKS, NONCE_BYTES, TAG, TAG_BYTES } from './params.js';
import { equalBytes } from '../util/bytes.js';

/** The parts of a manifest the content layer needs. A `Manifest` satisfies it. */
export interface ContentDescriptor {
  /** 32 random bytes naming this sale; not a hash of the plaintext (that would identify the leak). */
  readonly contentId: Uint8Array;
  readonly fileLength: number;
  readonly chunkCount: number;
  /** h_i = SHA256(k_i), what the claim leaf hash-locks. */
  readonly keyCommitments: readonly Uint8Array[];
  /** SHA256(ciphertext_i), what a buyer checks each served chunk against. */
  readonly ciphertextHashes: readonly Uint8Array[];
}

/** Everything the seller produces when encrypting a file. `keys` are secret until sold. */
export interface EncryptedContent extends ContentDescriptor {
  readonly chunkSize: number;
  readonly keys: readonly Uint8Array[];
  readonly ciphertexts: readonly Uint8Array[];
}

export type ChunkCheck = { readonly ok: true; readonly plaintext: Uint8Array } | { readonly ok: false; readonly reason: ChunkFailure };
export type ChunkFailure = 'bad-index' | 'bad-key-length' | 'key-mismatch' | 'ciphertext-mismatch' | 'bad-length' | 'aead-failed';

/**
 * Checks that `fileLength` bytes can be sold in `chunkCount` chunks.
 * Throws BAD_INPUT for an empty file or one shorter than the chunk count; RangeError for a bad count.
 */
export function checkChunkPlan(fileLength: number, chunkCount: number): void {
  if (!Number.isSafeInteger(chunkCount) || chunkCount < 1 || chunkCount > MAX_CHUNKS) {
    throw new RangeError(`chunk count must be an integer in 1..${MAX_CHUNKS}; got ${chunkCount}`);
  }
  if (!Number.isSafeInteger(fileLength) || fileLength < 0) throw new RangeError(`file length must be a non-negative integer; got ${fileLength}`);
  if (fileLength === 0) throw DeaddropError.badInput('empty file: there is nothing to sell');
  if (fileLength < chunkCount) {
    throw DeaddropError.badInput(`file of ${fileLength} bytes is shorter than ${chunkCount} chunks: use at most ${fileLength} chunks`, {
      fileLength, chunkCount,
    });
  }
}

/** Length of the longest chunk, ceil(L / N): the manifest's "chunk size". */
export function maxChunkLength(fileLength: number, chunkCount: number): number {
  return Math.ceil(fileLength / chunkCount);
}

/** Byte range [start, end) of chunk `index` (layout in the module header). */
export function chunkBounds(fileLength: number, chunkCount: number, index: number): { start: number; end: number } {
  if (!Number.isSafeInteger(index) || index < 0 || index >= chunkCount) throw new RangeError(`chunk index ${index} out of 0..${chunkCount - 1}`);
  const q = Math.floor(fileLength / chunkCount);
  const r = fileLength % chunkCount;
  const start = index * q + Math.min(index, r);
  return { start, end: start + q + (index < r ? 1 : 0) };
}

/** Associated data of chunk `index`: tag || content id || u32 index || u32 count. */
export function chunkAd(contentId: Uint8Array, index: number, chunkCount: number): Uint8Array {
  return new Writer().bytes(sha256(new TextEncoder().encode(TAG.chunkAd))).bytes(contentId, 32).u32(index).u32(chunkCount).finish();
}

/**
 * Nonce of chunk `index`. Each key encrypts exactly one chunk, so the nonce has no secrecy
 * job; deriving a distinct one per (content, index) still keeps keystreams apart should a
 * key ever repeat, and costs no bytes on the wire.
 */
export function chunkNonce(contentId: Uint8Array, index: number): Uint8Array {
  return taggedHash(TAG.chunkNonce, contentId, u32be(index)).slice(0, NONCE_BYTES);
}

/**
 * Encrypts `plaintext` into exactly `chunkCount` chunks, each under its own random key.
 * Identical chunks get different keys and different ciphertexts.
 */
export function encryptContent(plaintext: Uint8Array, chunkCount: number, contentId: Uint8Array = randomBytes(32)): EncryptedContent {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be a Uint8Array');
  checkChunkPlan(plaintext.length, chunkCount);
  return encryptContentWithKeys(plaintext, Array.from({ length: chunkCount }, () => randomBytes(KEY_BYTES)), contentId);
}

/**
 * Encrypts `plaintext` into `keys.length` chunks under the given keys. Only for keys that are
 * unique per chunk and secret until sold: the adaptor-claim variant derives them from one
 * per-sale secret (chunk-keys.ts), never from the content.
 */
export function encryptContentWithKeys(plaintext: Uint8Array, keys: readonly Uint8Array[], contentId: Uint8Array): EncryptedContent {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be a Uint8Array');
  if (!(contentId instanceof Uint8Array) || contentId.length !== 32) throw new TypeError('content id must be 32 bytes');
  const chunkCount = keys.length;
  checkChunkPlan(plaintext.length, chunkCount);
  if (keys.some((k) => !(k instanceof Uint8Array) || k.length !== KEY_BYTES)) throw new TypeError(`chunk keys must be ${KEY_BYTES} bytes`);
  const ciphertexts = keys.map((key, i) => {
    const { start, end } = chunkBounds(plaintext.length, chunkCount, i);
    return xchacha20poly1305(key, chunkNonce(contentId, i), chunkAd(contentId, i, chunkCount)).encrypt(plaintext.subarray(start, end));
  });
  return {
    contentId: contentId.slice(),
    fileLength: plaintext.length,
    chunkCount,
    chunkSize: maxChunkLength(plaintext.length, chunkCount),
    keys: keys.map((k) => k.slice()),
    ciphertexts,
    keyCommitments: keys.map((k) => sha256(k)),
    ciphertextHashes: ciphertexts.map((c) => sha256(c)),
  };
}

/** True when `ciphertext` is the one committed at `index` (hash and exact length). For chunks served by strangers. */
export function checkCiphertext(desc: Pick<ContentDescriptor, 'fileLength' | 'chunkCount' | 'ciphertextHashes'>, index: number, ciphertext: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || index < 0 || index >= desc.chunkCount) return false;
  const { start, end } = chunkBounds(desc.fileLength, desc.chunkCount, index);
  if (ciphertext.length !== end - start + TAG_BYTES) return false;
  return equalBytes(sha256(ciphertext), desc.ciphertextHashes[index] as Uint8Array);
}

/** True when SHA256(key) is the commitment h_index. */
export function checkKey(desc: ContentDescriptor, index: number, key: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || index < 0 || index >= desc.chunkCount) return false;
  return key.length === KEY_BYTES && equalBytes(sha256(key), desc.keyCommitments[index] as Uint8Array);
}

/** Verifies and decrypts one chunk. Never throws on bad data: returns the reason instead. */
export function openChunk(desc: ContentDescriptor, index: number, ciphertext: Uint8Array, key: Uint8Array): ChunkCheck {
  if (!Number.isSafeInteger(index) || index < 0 || index >= desc.chunkCount) return { ok: false, reason: 'bad-index' };
  if (key.length !== KEY_BYTES) return { ok: false, reason: 'bad-key-length' };
  if (!checkKey(desc, index, key)) return { ok: false, reason: 'key-mismatch' };
  const { start, end } = chunkBounds(desc.fileLength, desc.chunkCount, index);
  if (ciphertext.length !== end - start + TAG_BYTES) return { ok: false, reason: 'bad-length' };
  if (!equalBytes(sha256(ciphertext), desc.ciphertextHashes[index] as Uint8Array)) return { ok: false, reason: 'ciphertext-mismatch' };
  return decryptRaw(desc, index, ciphertext, key);
}

/**
 * AEAD decryption alone, without the manifest hash checks: used to show that a tampered or
 * swapped ciphertext (or a mismatched key) fails authentication by itself.
 */
export function decryptRaw(desc: Pick<ContentDescriptor, 'contentId' | 'chunkCount'>, index: number, ciphertext: Uint8Array, key: Uint8Array): ChunkCheck {
  try {
    const plaintext = xchacha20poly1305(key, chunkNonce(desc.contentId, index), chunkAd(desc.contentId, index, desc.chunkCount)).decrypt(ciphertext);
    return { ok: true, plaintext };
  } catch {
    return { ok: false, reason: 'aead-failed' };
  }
}

/**
 * Decrypts a whole file. Throws PROTOCOL naming the first bad chunk (index and reason only:
 * no key material in the message).
 */
export function decryptContent(desc: ContentDescriptor, ciphertexts: readonly Uint8Array[], keys: readonly Uint8Array[]): Uint8Array {
  if (ciphertexts.length !== desc.chunkCount || keys.length !== desc.chunkCount) {
    throw DeaddropError.protocol(`expected ${desc.chunkCount} chunks and keys; got ${ciphertexts.length} and ${keys.length}`);
  }
  const out = new Uint8Array(desc.fileLength);
  for (let i = 0; i < desc.chunkCount; i++) {
    const res = openChunk(desc, i, ciphertexts[i] as Uint8Array, keys[i] as Uint8Array);
    if (!res.ok) throw new DeaddropError('PROTOCOL', `chunk ${i}: ${res.reason}`, { index: i, reason: res.reason });
    out.set(res.plaintext, chunkBounds(desc.fileLength, desc.chunkCount, i).start);
  }
  return out;
}

/**
 * Assembles all N keys from partial sources (the sample reveal, one or more claims), keeping
 * only keys that match their commitments. `keys` is null while any index is `missing`.
 */
export function collectKeys(desc: ContentDescriptor, ...sources: ReadonlyMap<number, Uint8Array>[]): { keys: Uint8Array[] | null; missing: number[] } {
  const found = new Map<number, Uint8Array>();
  for (const src of sources) {
    for (const [i, k] of src) if (!found.has(i) && checkKey(desc, i, k)) found.set(i, k);
  }
  const missing = Array.from({ length: desc.chunkCount }, (_, i) => i).filter((i) => !found.has(i));
  return { keys: missing.length === 0 ? Array.from({ length: desc.chunkCount }, (_, i) => found.get(i) as Uint8Array) : null, missing };
}
