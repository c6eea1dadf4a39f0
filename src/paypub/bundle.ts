/**
 * The storage bundle of a sale: what a seller puts into the storage layer (docs/protocol/paypub.md,
 * "Distribution through storage") so buyers can fetch it while the seller is offline.
 *
 *   bundle = u8 version (1) || signed manifest || c_0 || c_1 || ... || c_{N-1}
 *
 * No lengths are written: the manifest (whose length follows from N) must be byte-identical to
 * the one in the offer, and every ciphertext's exact length follows from the manifest. The
 * storage layer authenticates the bytes against the capability; the buyer then checks every
 * chunk against the manifest's ciphertext hashes, so a wrong or malicious capability yields at
 * worst "does not match", never content the seller did not commit to.
 */
import { DeaddropError } from '../util/errors.js';
import { equalBytes } from '../util/bytes.js';
import { checkCiphertext } from './content.js';
import { encodeManifest, type Manifest } from './manifest.js';
import { TAG_BYTES } from './params.js';
import { Writer } from './bytes.js';

/** Version byte of the bundle layout. */
export const BUNDLE_VERSION = 1;

function chunkLength(m: Manifest, i: number): number {
  const q = Math.floor(m.fileLength / m.chunkCount);
  const r = m.fileLength % m.chunkCount;
  return q + (i < r ? 1 : 0) + TAG_BYTES;
}

/** The bundle of a sale: the manifest and its ciphertexts, in index order. */
export function encodeBundle(m: Manifest, ciphertexts: readonly Uint8Array[]): Uint8Array {
  if (ciphertexts.length !== m.chunkCount) throw new RangeError(`expected ${m.chunkCount} ciphertexts, got ${ciphertexts.length}`);
  const w = new Writer().u8(BUNDLE_VERSION).bytes(encodeManifest(m));
  ciphertexts.forEach((c, i) => {
    if (!checkCiphertext(m, i, c)) throw new RangeError(`ciphertext ${i} does not match the manifest`);
    w.bytes(c);
  });
  return w.finish();
}

/**
 * Splits a bundle fetched from storage and checks it against the manifest from the offer:
 * version, the manifest byte for byte, every chunk's length and hash, and no trailing bytes.
 * Throws PROTOCOL naming the first problem (an index, never content).
 */
export function decodeBundle(m: Manifest, bundle: Uint8Array): Uint8Array[] {
  if (!(bundle instanceof Uint8Array)) throw new TypeError('bundle must be a Uint8Array');
  const manifest = encodeManifest(m);
  if (bundle.length < 1 || bundle[0] !== BUNDLE_VERSION) throw DeaddropError.protocol('storage bundle: unsupported version');
  if (bundle.length < 1 + manifest.length || !equalBytes(bundle.subarray(1, 1 + manifest.length), manifest)) {
    throw DeaddropError.protocol('storage bundle: it holds another manifest than the one in the offer');
  }
  const out: Uint8Array[] = [];
  let off = 1 + manifest.length;
  for (let i = 0; i < m.chunkCount; i++) {
    const len = chunkLength(m, i);
    if (off + len > bundle.length) throw DeaddropError.protocol(`storage bundle: truncated at chunk ${i}`);
    const c = bundle.slice(off, off + len);
    if (!checkCiphertext(m, i, c)) throw DeaddropError.protocol(`storage bundle: chunk ${i} does not match the manifest`);
    out.push(c);
    off += len;
  }
  if (off !== bundle.length) throw DeaddropError.protocol(`storage bundle: ${bundle.length - off} trailing bytes`);
  return out;
}
