/**
 * Verification of many v2 entries at the cost of one Ed25519 verify per signed batch (see codec.ts):
 * what replication and the mixnet feed relay do with every burst of received entries.
 */
import { HASH_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, ed25519Verify, sha256Into } from '../crypto.js';
import { equalBytes } from '../../util/bytes.js';
import { MAX_BATCH_ENTRIES, batchRootOf, batchSigningMessage, verifyEntry } from './codec.js';
import type { LogEntry } from './codec.js';

/**
 * Aligned scratch for comparing signatures and keys a word at a time: `runKey` holds the first entry
 * of the current run (signature || author), `candidate` the entry being matched against it. A byte
 * loop over these 96 bytes per entry cost about as much as a node hash; copying them here costs two
 * native memcpy and the compare 24 word reads.
 */
const runKey = new Int32Array((SIGNATURE_BYTES + PUBLIC_KEY_BYTES) / 4);
const runKeyBytes = new Uint8Array(runKey.buffer);
const candidate = new Int32Array(runKey.length);
const candidateBytes = new Uint8Array(candidate.buffer);

/** Copies `e`'s signature and author into `into`; false when they have the wrong lengths. */
function loadKey(e: LogEntry, into: Uint8Array): boolean {
  if (e.signature.length !== SIGNATURE_BYTES || e.author.length !== PUBLIC_KEY_BYTES) return false;
  into.set(e.signature, 0);
  into.set(e.author, SIGNATURE_BYTES);
  return true;
}

/**
 * True when `b` follows `a` in the same signed batch: next index, same batch, and the same signature
 * and author as the run's first entry (loaded in `runKey`), hence as `a`.
 */
function nextInBatch(a: LogEntry, b: LogEntry): boolean {
  const x = a.batch;
  const y = b.batch;
  if (x === null || y === null || y.firstSeq !== x.firstSeq || y.size !== x.size || y.index !== x.index + 1) return false;
  if (!loadKey(b, candidateBytes)) return false;
  for (let t = 0; t < runKey.length; t++) if (candidate[t] !== runKey[t]) return false;
  return true;
}

/**
 * Verifies entries as `verifyEntry` would, one Ed25519 verify per run of consecutive entries of one
 * batch instead of one per entry. A run that is a whole batch is checked against the tree rebuilt
 * from its leaves (n - 1 hashes, and each carried path must equal the rebuilt one, so every stored
 * entry still verifies on its own); a partial run walks each path to the root verified once.
 * Returns one flag per entry; never throws.
 */
export function verifyEntries(entries: readonly LogEntry[]): boolean[] {
  const ok = new Array<boolean>(entries.length).fill(false);
  let i = 0;
  while (i < entries.length) {
    const e = entries[i]!;
    let j = i + 1;
    if (e.batch !== null && loadKey(e, runKeyBytes)) while (j < entries.length && nextInBatch(entries[j - 1]!, entries[j]!)) j++;
    if (j === i + 1) ok[i] = verifyEntry(e);
    else verifyRun(entries, i, j, ok);
    i = j;
  }
  return ok;
}

function verifyRun(entries: readonly LogEntry[], from: number, to: number, ok: boolean[]): void {
  const first = entries[from]!;
  const b = first.batch!;
  const whole = b.index === 0 && to - from === b.size;
  if (whole) {
    const root = wholeBatchRoot(entries, from, to, ok);
    if (ed25519Verify(first.signature, batchSigningMessage(b.firstSeq, b.size, root), first.author)) return;
    // some leaf is not what was signed: the others may still verify on their own paths
  }
  ok.fill(false, from, to);
  let verifiedRoot: Uint8Array | null = null;
  for (let k = from; k < to; k++) {
    const root = batchRootOf(entries[k]!);
    if (root === null) continue;
    if (verifiedRoot !== null) ok[k] = equalBytes(root, verifiedRoot);
    else if (ed25519Verify(first.signature, batchSigningMessage(b.firstSeq, b.size, root), first.author)) {
      verifiedRoot = root;
      ok[k] = true;
    }
  }
}

/**
 * The root of a whole batch rebuilt from its leaves (n - 1 node hashes); meanwhile `ok[k]` is set to
 * whether entry k's carried path is exactly its audit path in that tree.
 *
 * The tree is built level by level, pairing nodes left to right and carrying an odd last node up as it
 * is, which is RFC 6962's left-balanced shape. Each level is kept in one buffer of 68-byte slots
 * `pad(3) || 0x01 || left || right`, so a parent's hash input is a slice of its children's level (no
 * copies, and no fresh buffer handed to native code, which V8 makes costly) and every node is 4-byte
 * aligned. Each carried path is then copied to an aligned scratch and compared a word at a time with
 * the siblings it must hold: rebuilding every path (ten 32-byte copies per entry) or comparing byte
 * by byte cost more than the tree's hashes.
 */
function wholeBatchRoot(entries: readonly LogEntry[], from: number, to: number, ok: boolean[]): Uint8Array {
  const n = to - from;
  const tree = treeFor(n);
  const counts: number[] = [];
  let level = 0;
  for (let k = 0; k < n; k++) tree.bytes[0]!.set(entries[from + k]!.hash, nodeOffset(k));
  for (let count = n; count > 1; level++) {
    counts.push(count);
    const pairs = count >> 1;
    const inputs = tree.inputs[level]!;
    const up = tree.bytes[level + 1]!;
    for (let j = 0; j < pairs; j++) sha256Into(up, nodeOffset(j), inputs[j]!);
    if (count & 1) up.set(tree.bytes[level]!.subarray(nodeOffset(count - 1), nodeOffset(count - 1) + HASH_BYTES), nodeOffset(pairs));
    count = pairs + (count & 1);
  }
  for (let k = 0; k < n; k++) ok[from + k] = pathMatches(entries[from + k]!.batch!.path, k, tree.words, counts);
  return tree.bytes[level]!.slice(nodeOffset(0), nodeOffset(0) + HASH_BYTES);
}

/**
 * The levels of a batch tree of up to `capacity` leaves, with the view of every hash input made once:
 * making views per node hash cost a tenth of the hash.
 */
interface TreeScratch {
  readonly capacity: number;
  readonly bytes: Uint8Array[];
  readonly words: Int32Array[];
  /** inputs[l][j]: `0x01 || node 2j || node 2j+1` of level l. */
  readonly inputs: Uint8Array[][];
}

let cachedTree: TreeScratch | null = null;

/** A tree scratch for n leaves: the one kept for batches up to MAX_BATCH_ENTRIES, or a new one. */
function treeFor(n: number): TreeScratch {
  if (n > MAX_BATCH_ENTRIES) return newTree(n);
  return (cachedTree ??= newTree(MAX_BATCH_ENTRIES));
}

function newTree(capacity: number): TreeScratch {
  const tree: TreeScratch = { capacity, bytes: [], words: [], inputs: [] };
  for (let count = capacity; ; count = (count + 1) >> 1) {
    const bytes = new Uint8Array(SLOT_BYTES * ((count + 1) >> 1));
    const inputs: Uint8Array[] = [];
    for (let j = 0; j < count >> 1; j++) {
      bytes[j * SLOT_BYTES + NODE_TAG_AT] = NODE_TAG;
      inputs.push(bytes.subarray(j * SLOT_BYTES + NODE_TAG_AT, (j + 1) * SLOT_BYTES));
    }
    tree.bytes.push(bytes);
    tree.words.push(new Int32Array(bytes.buffer));
    tree.inputs.push(inputs);
    if (count === 1) return tree;
  }
}

const SLOT_BYTES = 68;
const NODE_TAG_AT = 3;
const NODE_TAG = 0x01;
const HASH_WORDS = HASH_BYTES / 4;

/** Where node i of a level sits in that level's buffer of slots (a multiple of 4). */
function nodeOffset(i: number): number {
  return (i >> 1) * SLOT_BYTES + NODE_TAG_AT + 1 + (i & 1) * HASH_BYTES;
}

let pathWords = new Int32Array(64 * HASH_WORDS);
let pathBytes = new Uint8Array(pathWords.buffer);

/** True when `path` holds, bottom-up, the sibling of leaf m's ancestor at every level that has one. */
function pathMatches(path: Uint8Array, m: number, levels: readonly Int32Array[], counts: readonly number[]): boolean {
  if (path.length % HASH_BYTES !== 0) return false;
  if (path.length > pathBytes.length) {
    pathWords = new Int32Array(path.length / 4);
    pathBytes = new Uint8Array(pathWords.buffer);
  }
  pathBytes.set(path);
  const words = path.length / 4;
  let q = 0;
  for (let l = 0; l < counts.length; l++) {
    const sibling = (m >> l) ^ 1;
    if (sibling >= counts[l]!) continue;
    if (q === words) return false;
    const level = levels[l]!;
    const at = nodeOffset(sibling) >> 2;
    for (let t = 0; t < HASH_WORDS; t++) if (pathWords[q + t] !== level[at + t]) return false;
    q += HASH_WORDS;
  }
  return q === words;
}
