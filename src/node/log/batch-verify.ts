/**
 * Verification of many v2 entries at the cost of one Ed25519 verify per signed batch (see codec.ts):
 * what replication and the mixnet feed relay do with every burst of received entries.
 */
import { ed25519Verify } from '../crypto.js';
import { equalBytes } from '../../util/bytes.js';
import { batchRootOf, batchSigningMessage, verifyEntry } from './codec.js';
import type { LogEntry } from './codec.js';
import { treeWithPaths } from './merkle.js';

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
    const { root, paths } = treeWithPaths(entries.slice(from, to).map((e) => e.hash));
    if (ed25519Verify(first.signature, batchSigningMessage(b.firstSeq, b.size, root), first.author)) {
      for (let k = from; k < to; k++) ok[k] = equalBytes(paths[k - from]!, entries[k]!.batch!.path);
      return;
    }
    // some leaf is not what was signed: the others may still verify on their own paths
  }
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
