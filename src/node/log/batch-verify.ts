/**
 * Verification of many v2 entries at the cost of one Ed25519 verify per signed batch (see codec.ts):
 * what replication and the mixnet feed relay do with every burst of received entries.
 */
import { HASH_BYTES, ed25519Verify, sha256Slot } from '../crypto.js';
import { equalBytes } from '../../util/bytes.js';
import { batchRootOf, batchSigningMessage, verifyEntry } from './codec.js';
import type { LogEntry } from './codec.js';

/** True when `b` follows `a` in the same signed batch (same author, batch, signature; next index). */
function nextInBatch(a: LogEntry, b: LogEntry): boolean {
  const x = a.batch;
  const y = b.batch;
  return (
    x !== null && y !== null && y.firstSeq === x.firstSeq && y.size === x.size && y.index === x.index + 1 &&
    sameBytes(a.signature, b.signature) && sameBytes(a.author, b.author)
  );
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
    while (j < entries.length && nextInBatch(entries[j - 1]!, entries[j]!)) j++;
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
 * is, which is RFC 6962's left-balanced shape. Each level is kept in one buffer as 65-byte slots
 * `0x01 || left || right`, so a parent's hash input is a slice of its children's level: no copies, and
 * no fresh buffer handed to native code (which V8 makes costly). Each carried path is then compared in
 * place with the siblings it must hold: leaves under one node share its sibling, so rebuilding every
 * path (ten 32-byte copies per entry) would cost more than the tree's hashes.
 */
function wholeBatchRoot(entries: readonly LogEntry[], from: number, to: number, ok: boolean[]): Uint8Array {
  const n = to - from;
  const levels: DataView[] = [];
  const counts: number[] = [];
  let level = new Uint8Array(SLOT_BYTES * ((n + 1) >> 1));
  for (let k = 0; k < n; k++) level.set(entries[from + k]!.hash, slotOffset(k));
  let count = n;
  while (count > 1) {
    levels.push(new DataView(level.buffer));
    counts.push(count);
    const pairs = count >> 1;
    const upCount = pairs + (count & 1);
    const up = new Uint8Array(SLOT_BYTES * ((upCount + 1) >> 1));
    for (let j = 0; j < pairs; j++) {
      level[j * SLOT_BYTES] = NODE_TAG;
      up.set(sha256Slot(level, j * SLOT_BYTES, SLOT_BYTES), slotOffset(j));
    }
    if (count & 1) up.set(level.subarray(slotOffset(count - 1), slotOffset(count - 1) + HASH_BYTES), slotOffset(pairs));
    level = up;
    count = upCount;
  }
  for (let k = 0; k < n; k++) ok[from + k] = pathMatches(entries[from + k]!.batch!.path, k, levels, counts);
  return level.slice(1, 1 + HASH_BYTES);
}

const SLOT_BYTES = 1 + 2 * HASH_BYTES;
const NODE_TAG = 0x01;

/** Where node i of a level sits in that level's buffer of 65-byte slots. */
function slotOffset(i: number): number {
  return (i >> 1) * SLOT_BYTES + 1 + (i & 1) * HASH_BYTES;
}

/** True when `path` holds, bottom-up, the sibling of leaf m's ancestor at every level that has one. */
function pathMatches(path: Uint8Array, m: number, levels: readonly DataView[], counts: readonly number[]): boolean {
  const p = new DataView(path.buffer, path.byteOffset, path.length);
  let q = 0;
  for (let l = 0; l < levels.length; l++) {
    const sibling = (m >> l) ^ 1;
    if (sibling >= counts[l]!) continue;
    if (q + HASH_BYTES > path.length) return false;
    const level = levels[l]!;
    const at = slotOffset(sibling);
    for (let t = 0; t < HASH_BYTES; t += 4) if (p.getInt32(q + t, true) !== level.getInt32(at + t, true)) return false;
    q += HASH_BYTES;
  }
  return q === path.length;
}

/** Byte equality of public data; a JS loop, as these are short (≤ 64 bytes) and native calls cost more. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
