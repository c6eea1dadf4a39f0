/**
 * Verification of many v2 entries at the cost of one Ed25519 verify per signed batch (see codec.ts):
 * what replication and the mixnet feed relay do with every burst of received entries.
 */
import { HASH_BYTES, ed25519Verify } from '../crypto.js';
import { equalBytes } from '../../util/bytes.js';
import { batchRootOf, batchSigningMessage, verifyEntry } from './codec.js';
import type { LogEntry } from './codec.js';
import { nodeHash, splitPoint } from './merkle.js';

/** True when `b` follows `a` in the same signed batch (same author, batch, signature; next index). */
function nextInBatch(a: LogEntry, b: LogEntry): boolean {
  const x = a.batch;
  const y = b.batch;
  return (
    x !== null && y !== null && y.firstSeq === x.firstSeq && y.size === x.size && y.index === x.index + 1 &&
    equalBytes(a.signature, b.signature) && equalBytes(a.author, b.author)
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
 * whether entry k's carried path is exactly its audit path in that tree, compared in place.
 */
function wholeBatchRoot(entries: readonly LogEntry[], from: number, to: number, ok: boolean[]): Uint8Array {
  const depth = new Uint8Array(to - from);
  ok.fill(true, from, to);
  const check = (lo: number, hi: number, sibling: Uint8Array): void => {
    for (let m = lo; m < hi; m++) {
      const path = entries[from + m]!.batch!.path;
      const at = depth[m]! * HASH_BYTES;
      depth[m]!++;
      if (!ok[from + m]) continue;
      for (let i = 0; i < HASH_BYTES; i++) {
        if (path[at + i] !== sibling[i]) {
          ok[from + m] = false;
          break;
        }
      }
    }
  };
  const build = (lo: number, size: number): Uint8Array => {
    if (size === 1) return entries[from + lo]!.hash;
    const k = splitPoint(size);
    const left = build(lo, k);
    const right = build(lo + k, size - k);
    check(lo, lo + k, right);
    check(lo + k, lo + size, left);
    return nodeHash(left, right);
  };
  return build(0, to - from);
}
