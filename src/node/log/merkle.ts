/**
 * RFC 6962 / RFC 9162 Merkle tree over the entry hashes of one feed, and the signed tree head.
 *
 * Leaf i (0-based) is entry seq i+1. leaf = SHA-256(0x00 || entryHash), node = SHA-256(0x01 || l || r),
 * the tree over n leaves splits at the largest power of two below n. A feed of n entries is kept as
 * its "frontier": the roots of the full subtrees ("peaks") whose sizes are the bits of n, from which
 * the root is folded right to left. Every full subtree node is stored once, with the leaf that
 * completes it, so proofs need O(log n) reads.
 *
 * A signed tree head (author, size, root) is "one signed root that proves any entry": with an
 * inclusion proof, any single entry can be checked against it without the rest of the feed.
 */
import { DeaddropError } from '../../util/errors.js';
import { HASH_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, ed25519Verify, sha256, sha256Tagged, utf8 } from '../crypto.js';
import type { Signer } from '../crypto.js';
import { concatBytes, equalBytes } from '../../util/bytes.js';

const LEAF_TAG = 0x00;
const NODE_TAG = 0x01;

/** Root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1). */
export const EMPTY_ROOT: Uint8Array = sha256();

/** Leaf hash of an entry hash. */
export function leafHash(entryHash: Uint8Array): Uint8Array {
  return sha256Tagged(LEAF_TAG, entryHash);
}

/** Interior node hash. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Tagged(NODE_TAG, left, right);
}

/** Largest power of two strictly below n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Reference MTH over leaf hashes (RFC 6962 §2.1); O(n), for tests and tiny trees. */
export function rootOfLeaves(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return nodeHash(rootOfLeaves(leaves.slice(0, k)), rootOfLeaves(leaves.slice(k)));
}

/** Returns the stored hash of the full subtree at (level, index): leaves [index·2^level, (index+1)·2^level). */
export type FullNodeLookup = (level: number, index: number) => Uint8Array;

/** MTH of leaves [start, start+size) where start is aligned (as in every RFC 6962 recursion from 0). */
export function rangeHash(start: number, size: number, full: FullNodeLookup): Uint8Array {
  if (Number.isInteger(Math.log2(size)) && start % size === 0) return full(Math.log2(size), start / size);
  const k = splitPoint(size);
  return nodeHash(rangeHash(start, k, full), rangeHash(start + k, size - k, full));
}

/** An RFC 9162 inclusion proof of leaf `leafIndex` in the tree of `treeSize` leaves. */
export interface InclusionProof {
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly path: readonly Uint8Array[];
}

/** Audit path PATH(m, D[n]) (RFC 6962 §2.1.1), bottom-up. */
export function inclusionPath(leafIndex: number, treeSize: number, full: FullNodeLookup): Uint8Array[] {
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize) || leafIndex < 0 || leafIndex >= treeSize) {
    throw new RangeError('leafIndex must be in [0, treeSize)');
  }
  const path: Uint8Array[] = [];
  let m = leafIndex;
  let start = 0;
  let n = treeSize;
  const siblings: Uint8Array[] = [];
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      siblings.push(rangeHash(start + k, n - k, full));
      n = k;
    } else {
      siblings.push(rangeHash(start, k, full));
      m -= k;
      start += k;
      n -= k;
    }
  }
  for (let i = siblings.length - 1; i >= 0; i--) path.push(siblings[i]!);
  return path;
}

/** Verifies an inclusion proof (RFC 9162 §2.1.3.2). Returns false, never throws. */
export function verifyInclusion(leaf: Uint8Array, proof: InclusionProof, root: Uint8Array): boolean {
  const { leafIndex, treeSize, path } = proof;
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize) || leafIndex < 0 || leafIndex >= treeSize) return false;
  if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_BYTES || !Array.isArray(path)) return false;
  const r = rootFromPath(leaf, leafIndex, treeSize, path);
  return r !== null && equalBytes(r, root);
}

/**
 * Number of hashes in the audit path of leaf `index` in a tree of `size` leaves: the levels at which
 * its ancestor has a sibling, the tree being built by pairing nodes left to right and carrying an odd
 * last one up (RFC 6962's shape). O(log n) steps; every decoded entry asks.
 */
export function pathLength(index: number, size: number): number {
  let m = index;
  let n = size;
  let d = 0;
  while (n > 1) {
    if ((m % 2 === 0 ? m + 1 : m - 1) < n) d++;
    m = Math.floor(m / 2);
    n = Math.ceil(n / 2);
  }
  return d;
}

/**
 * The root that an audit path leads to from `leaf` (RFC 9162 §2.1.3.2 without the final compare),
 * or null when the path has the wrong shape. `path` is a list of hashes or their concatenation.
 */
export function rootFromPath(leaf: Uint8Array, leafIndex: number, treeSize: number, path: readonly Uint8Array[] | Uint8Array): Uint8Array | null {
  const count = path instanceof Uint8Array ? path.length / HASH_BYTES : path.length;
  if (!Number.isInteger(count)) return null;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leaf;
  for (let i = 0; i < count; i++) {
    const p = path instanceof Uint8Array ? path.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES) : path[i];
    if (!(p instanceof Uint8Array) || p.length !== HASH_BYTES || sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

/**
 * MTH over `leaves`, writing every leaf's audit path (its hashes bottom-up) into `out[m]` from
 * `at[m]`: the layout the batch seal carries. RFC 6962's recursive definition as it reads; batches
 * are built with treeLevels and writeAuditPaths (fewer copies), which the tests check against this.
 */
function treeIntoPaths(leaves: readonly Uint8Array[], out: readonly Uint8Array[], at: readonly number[]): Uint8Array {
  const n = leaves.length;
  if (n === 0) return EMPTY_ROOT;
  const offset = Int32Array.from(at);
  const build = (lo: number, size: number): Uint8Array => {
    if (size === 1) return leaves[lo]!;
    const k = splitPoint(size);
    const left = build(lo, k);
    const right = build(lo + k, size - k);
    for (let m = lo; m < lo + size; m++) {
      out[m]!.set(m < lo + k ? right : left, offset[m]!);
      offset[m]! += HASH_BYTES;
    }
    return nodeHash(left, right);
  };
  return build(0, n);
}

/**
 * Every level of the tree over `leaves`, bottom-up: `levels[0]` is the leaves, each next level pairs
 * neighbours and carries an unpaired last node up as it is, and the last level is `[root]`. That is
 * RFC 6962's tree (split at the largest power of two below n) built without recursion, n - 1 node
 * hashes. `levels[l][j]` with (j + 1)·2^l ≤ n is the full subtree over leaves [j·2^l, (j+1)·2^l).
 */
export function treeLevels(leaves: readonly Uint8Array[]): Uint8Array[][] {
  const levels: Uint8Array[][] = [leaves.slice()];
  for (let cur = levels[0]!; cur.length > 1; ) {
    const next: Uint8Array[] = [];
    for (let j = 0; j + 1 < cur.length; j += 2) next.push(nodeHash(cur[j]!, cur[j + 1]!));
    if (cur.length % 2 === 1) next.push(cur[cur.length - 1]!);
    levels.push(next);
    cur = next;
  }
  return levels;
}

/** Trailing zero bits of i > 0. */
function trailingZeros(i: number): number {
  return 31 - Math.clz32(i & -i);
}

/**
 * Writes each leaf's audit path (its hashes bottom-up) of the tree `levels` (from treeLevels) into
 * `out[m]` from `at[m]`, as treeIntoPaths does. Leaf m shares with leaf m - 1 every path hash above
 * level ctz(m) (same ancestors there), and those are the end of both paths: one copy of that suffix
 * and about two single hashes per leaf instead of one `set` per hash (10,000 per 1,000 leaves).
 * Returns the root.
 */
export function writeAuditPaths(levels: readonly (readonly Uint8Array[])[], out: readonly Uint8Array[], at: readonly number[]): Uint8Array {
  const leaves = levels[0]!;
  const top = levels.length - 1;
  let prevOut: Uint8Array | null = null;
  let prevEnd = 0;
  for (let m = 0; m < leaves.length; m++) {
    const o = out[m]!;
    let off = at[m]!;
    const own = m === 0 ? top - 1 : Math.min(trailingZeros(m), top - 1);
    for (let l = 0; l <= own; l++) {
      const level = levels[l]!;
      const sibling = (m >>> l) ^ 1;
      if (sibling < level.length) {
        o.set(level[sibling]!, off);
        off += HASH_BYTES;
      }
    }
    if (m > 0) {
      let shared = 0;
      for (let l = own + 1; l < top; l++) if (((m >>> l) ^ 1) < levels[l]!.length) shared += HASH_BYTES;
      if (shared > 0) {
        o.set(prevOut!.subarray(prevEnd - shared, prevEnd), off);
        off += shared;
      }
    }
    prevOut = o;
    prevEnd = off;
  }
  return levels[top]![0]!;
}

/** MTH over `leaves` and every leaf's audit path, each as one buffer of its hashes bottom-up (the reference for treeLevels and writeAuditPaths). */
export function treeWithPaths(leaves: readonly Uint8Array[]): { root: Uint8Array; paths: Uint8Array[] } {
  const paths = leaves.map((_, i) => new Uint8Array(pathLength(i, leaves.length) * HASH_BYTES));
  return { root: treeIntoPaths(leaves, paths, new Array<number>(leaves.length).fill(0)), paths };
}

/** One peak of the frontier: the root of a full subtree of 2^level leaves. */
export interface Peak {
  readonly level: number;
  readonly hash: Uint8Array;
}

/**
 * The incremental tree state of a feed: its peaks, largest first.
 * `append` returns the hashes of the full subtrees completed by the new leaf, level 0 first;
 * these are what a store keeps with the entry.
 */
export class MerkleFrontier {
  readonly #peaks: Peak[];
  #n: number;

  constructor(size = 0, peaks: Peak[] = []) {
    this.#n = size;
    this.#peaks = peaks.slice();
  }

  get size(): number {
    return this.#n;
  }

  append(entryHash: Uint8Array): Uint8Array[] {
    return this.appendLeaf(leafHash(entryHash));
  }

  /**
   * `appendLeaf` for each leaf of a tree already built by treeLevels (`levels[0]`), taking from it
   * the full subtrees it hashed instead of hashing them again: a leaf completes the feed node over
   * 2^l leaves ending with it, and when the batch starts at a multiple of 2^l that node is one of the
   * batch tree's own (an RFC 6962 tree holds every aligned full subtree). Batches of 1,000 start at
   * multiples of 8, so about 7 in 8 of these hashes are saved. Returns what appendLeaf returns, per leaf.
   */
  appendTree(levels: readonly (readonly Uint8Array[])[]): Uint8Array[][] {
    const start = this.#n;
    const leaves = levels[0]!;
    const out: Uint8Array[][] = [];
    for (let i = 0; i < leaves.length; i++) {
      let node: Peak = { level: 0, hash: leaves[i]! };
      const completed = [node.hash];
      for (let last = this.#peaks.at(-1); last !== undefined && last.level === node.level; last = this.#peaks.at(-1)) {
        this.#peaks.pop();
        const level = node.level + 1;
        const span = 2 ** level;
        // the merge means start + i + 1 is a multiple of span; with start one too, the node covers
        // batch leaves [i + 1 - span, i + 1), an aligned full subtree of the batch tree
        const own = start % span === 0 && i + 1 >= span ? levels[level]?.[(i + 1) / span - 1] : undefined;
        node = { level, hash: own ?? nodeHash(last.hash, node.hash) };
        completed.push(node.hash);
      }
      this.#peaks.push(node);
      this.#n += 1;
      out.push(completed);
    }
    return out;
  }

  /** `append` given the leaf itself (a v2 entry's leaf is its hash, see codec.ts `feedLeaf`). */
  appendLeaf(leaf: Uint8Array): Uint8Array[] {
    let node: Peak = { level: 0, hash: leaf };
    const completed = [node.hash];
    for (let last = this.#peaks.at(-1); last !== undefined && last.level === node.level; last = this.#peaks.at(-1)) {
      this.#peaks.pop();
      node = { level: node.level + 1, hash: nodeHash(last.hash, node.hash) };
      completed.push(node.hash);
    }
    this.#peaks.push(node);
    this.#n += 1;
    return completed;
  }

  root(): Uint8Array {
    if (this.#peaks.length === 0) return EMPTY_ROOT;
    let r = this.#peaks.at(-1)!.hash;
    for (let i = this.#peaks.length - 2; i >= 0; i--) r = nodeHash(this.#peaks[i]!.hash, r);
    return r;
  }

  clone(): MerkleFrontier {
    return new MerkleFrontier(this.#n, this.#peaks);
  }
}

/** Positions of the peaks of a tree of `size` leaves: (level, index) pairs, largest first. */
export function peakPositions(size: number): { level: number; index: number }[] {
  const out: { level: number; index: number }[] = [];
  let start = 0;
  for (let level = 52; level >= 0; level--) {
    const w = 2 ** level;
    if (size - start >= w) {
      out.push({ level, index: start / w });
      start += w;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Signed tree head

export const TREE_HEAD_VERSION = 1;
export const TREE_HEAD_BYTES = 1 + 32 + 8 + 32 + 8 + SIGNATURE_BYTES;
const TREE_HEAD_CONTEXT = utf8('deaddrop/tree-head/v1\0');

/** The author's signature over (size, root) of its feed at a point in time. */
export interface SignedTreeHead {
  readonly author: Uint8Array;
  readonly size: number;
  readonly root: Uint8Array;
  readonly timestamp: number;
  readonly signature: Uint8Array;
}

function treeHeadBody(h: Omit<SignedTreeHead, 'signature'>): Uint8Array {
  const out = new Uint8Array(TREE_HEAD_BYTES - SIGNATURE_BYTES);
  const v = new DataView(out.buffer);
  out[0] = TREE_HEAD_VERSION;
  out.set(h.author, 1);
  v.setUint32(33, Math.floor(h.size / 2 ** 32));
  v.setUint32(37, h.size >>> 0);
  out.set(h.root, 41);
  v.setUint32(73, Math.floor(h.timestamp / 2 ** 32));
  v.setUint32(77, h.timestamp >>> 0);
  return out;
}

/** Signs a tree head with the feed's key. */
export function signTreeHead(signer: Signer, size: number, root: Uint8Array, timestamp = Date.now()): SignedTreeHead {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size: expected an unsigned safe integer');
  if (root.length !== HASH_BYTES) throw new RangeError('root: expected 32 bytes');
  const head = { author: signer.publicKey, size, root, timestamp };
  return { ...head, signature: signer.sign(concatBytes(TREE_HEAD_CONTEXT, treeHeadBody(head))) };
}

/** Verifies a tree head signature. Returns false, never throws. */
export function verifyTreeHead(h: SignedTreeHead): boolean {
  if (h.author?.length !== PUBLIC_KEY_BYTES || h.root?.length !== HASH_BYTES || h.signature?.length !== SIGNATURE_BYTES) return false;
  if (!Number.isSafeInteger(h.size) || h.size < 0 || !Number.isSafeInteger(h.timestamp) || h.timestamp < 0) return false;
  return ed25519Verify(h.signature, concatBytes(TREE_HEAD_CONTEXT, treeHeadBody(h)), h.author);
}

/** Fixed-size binary encoding of a signed tree head. */
export function encodeTreeHead(h: SignedTreeHead): Uint8Array {
  return concatBytes(treeHeadBody(h), h.signature);
}

/** Decodes a signed tree head (structure only; call verifyTreeHead). */
export function decodeTreeHead(b: Uint8Array): SignedTreeHead {
  if (b.length !== TREE_HEAD_BYTES) throw DeaddropError.protocol('tree head: wrong length');
  if (b[0] !== TREE_HEAD_VERSION) throw DeaddropError.protocol(`tree head: unknown version ${b[0]}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hi = v.getUint32(33);
  const thi = v.getUint32(73);
  if (hi > 0x1f_ffff || thi > 0x1f_ffff) throw DeaddropError.protocol('tree head: integer above 2^53-1');
  return {
    author: b.slice(1, 33),
    size: hi * 2 ** 32 + v.getUint32(37),
    root: b.slice(41, 73),
    timestamp: thi * 2 ** 32 + v.getUint32(77),
    signature: b.slice(81),
  };
}
