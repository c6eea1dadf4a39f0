/**
 * Verification of many v2 entries at the cost of one Ed25519 verify per signed batch (see codec.ts):
 * what replication and the mixnet feed relay do with every burst of received entries.
 */
import { ed25519Verify } from '../crypto.js';
import { equalBytes } from '../../util/bytes.js';
import { batchRootOf, batchSigningMessage, verifyEntry } from './codec.js';
import type { LogEntry } from './codec.js';
import { treeIntoPaths } from './merkle.js';

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
 * whether entry k's carried path is exactly its audit path in that tree. The rebuilt paths go to one
 * scratch buffer and each is compared with one native memcmp: byte loops in JS cost more than the
 * tree's hashes.
 */
function wholeBatchRoot(entries: readonly LogEntry[], from: number, to: number, ok: boolean[]): Uint8Array {
  const run = entries.slice(from, to);
  const at: number[] = [];
  let total = 0;
  for (const e of run) {
    at.push(total);
    total += e.batch!.path.length;
  }
  const scratch = new Uint8Array(total);
  const root = treeIntoPaths(
    run.map((e) => e.hash),
    run.map(() => scratch),
    at,
  );
  run.forEach((e, k) => {
    const path = e.batch!.path;
    ok[from + k] = sameBytes(scratch.subarray(at[k]!, at[k]! + path.length), path);
  });
  return root;
}

/** Byte equality of public data, natively (Buffer#equals accepts any Uint8Array). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && (a.length === 0 || Buffer.prototype.equals.call(a, b));
}
