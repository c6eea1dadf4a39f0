/**
 * Tagged SHA-256 and the binary Merkle trees of the storage layer (docs/protocol/storage.md).
 * Leaves are padded with the all-zero hash up to a power of two, as Tahoe's hash trees are;
 * a node is H("node", left || right).
 */
import { createHash } from 'node:crypto';
import { equalBytes } from '../../util/bytes.js';

const enc = new TextEncoder();

const tagPrefixes = new Map<string, Uint8Array>();

/**
 * SHA-256 of a length-prefixed tag (deaddrop:storage:v1:<tag>) followed by the parts. Uses
 * node:crypto (OpenSSL): every stored byte is hashed, several times faster than a JS SHA-256.
 */
export function taggedHash(tag: string, ...parts: Uint8Array[]): Uint8Array {
  let prefix = tagPrefixes.get(tag);
  if (!prefix) {
    const t = enc.encode(`deaddrop:storage:v1:${tag}`);
    prefix = new Uint8Array(1 + t.length);
    prefix[0] = t.length;
    prefix.set(t, 1);
    tagPrefixes.set(tag, prefix);
  }
  const h = createHash('sha256');
  h.update(prefix);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const ZERO = new Uint8Array(32);

function width(count: number): number {
  let w = 1;
  while (w < count) w *= 2;
  return w;
}

/** All levels of the tree, leaves first; the last level holds the root alone. */
function levels(leaves: readonly Uint8Array[]): Uint8Array[][] {
  if (leaves.length === 0) throw new RangeError('hash-tree: no leaves');
  let level = [...leaves];
  while (level.length < width(leaves.length)) level.push(ZERO);
  const out = [level];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(taggedHash('node', level[i] as Uint8Array, level[i + 1] as Uint8Array));
    out.push(next);
    level = next;
  }
  return out;
}

/** The root of the tree over `leaves`. */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  const ls = levels(leaves);
  return (ls[ls.length - 1] as Uint8Array[])[0] as Uint8Array;
}

/** The sibling hashes from leaf `index` up to (not including) the root. */
export function merkleProof(leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  const ls = levels(leaves);
  const proof: Uint8Array[] = [];
  let i = index;
  for (let d = 0; d < ls.length - 1; d++) {
    proof.push((ls[d] as Uint8Array[])[i ^ 1] as Uint8Array);
    i >>= 1;
  }
  return proof;
}

/** True when `proof` leads from `leaf` at `index` of a `count`-leaf tree to `root`. */
export function verifyMerkleProof(leaf: Uint8Array, index: number, count: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isInteger(index) || index < 0 || index >= count) return false;
  if (proof.length !== Math.log2(width(count))) return false;
  let h = leaf;
  let i = index;
  for (const sib of proof) {
    h = i & 1 ? taggedHash('node', sib, h) : taggedHash('node', h, sib);
    i >>= 1;
  }
  return equalBytes(h, root);
}
