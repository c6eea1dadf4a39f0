/**
 * The CPU half of scanning one block for dead drops, as pure functions over bytes, so that the
 * same code runs on the watcher's thread (one worker: today's path) and in the scan pool's
 * worker threads (./scan-pool.ts). Inputs and outputs are structured-cloneable.
 *
 * Two steps, because prevouts need the network in between:
 * 1. {@link scanBlock}: candidate extraction from the raw block. The candidates come back as
 *    {@link PendingCandidate}s (position, tx bytes copied, outpoints). The watcher then gets
 *    their prevouts: matched by position from the node's spent outputs of the block
 *    ({@link prevoutsFromSpent}, Core REST spenttxouts: one request per candidate block) or
 *    through its PrevoutFetcher (cache, then one lookup per previous tx).
 * 2. {@link finishCandidates}: tweak data input_hash·A and one ECDH per candidate and identity.
 *
 * Total over chain data: a malformed block gives `malformed` and no candidates, a missing
 * prevout or an ineligible input makes the candidate unscannable. Nothing here throws for it.
 */
import { parseTransaction, readTxCount, type Tx } from '../../chain/block.js';
import { scanBlockForCandidates } from '../../chain/op-return-scan.js';
import { spentOutputsAt } from '../../chain/spent-outputs.js';
import type { Prevout } from '../../chain/types.js';
import { outpointKey, type OutpointRef } from '../../chain/follow/prevouts.js';
import { candidateTweak, DROP_SCAN_OPTIONS, dropOutputs, spentOutpoints, trialDecrypt, type WatchIdentity } from './candidates.js';
import type { FoundDrop } from './drop-store.js';

/** A candidate whose prevouts are still to be looked up. */
export interface PendingCandidate {
  /** Position in the block. */
  readonly index: number;
  /** The serialized tx (a copy: it outlives the block buffer). */
  readonly tx: Uint8Array;
  /** The outpoints its inputs spend, in input order. */
  readonly outpoints: OutpointRef[];
}

/** Result of {@link scanBlock}. `malformed` (the parser's message) when the block did not parse. */
export interface BlockScan {
  readonly txCount: number;
  readonly candidates: PendingCandidate[];
  readonly malformed?: string;
}

/** One index row of a block, without its height and hash (the caller adds them). */
export interface ScannedRow {
  readonly txid: string;
  readonly vout: number;
  readonly tweak: Uint8Array;
  readonly data: Uint8Array;
}

/** Result of finishing candidates: the index rows and the drops opened, in block order. */
export interface FinishedScan {
  readonly rows: ScannedRow[];
  readonly found: FoundDrop[];
  /** Candidates with tweak data. */
  readonly candidates: number;
  /** Candidates skipped: unknown prevout or no eligible input. */
  readonly unscannable: number;
}

/** Step 1: the candidates of a raw block (tx bytes copied out), or `malformed`. */
export function scanBlock(raw: Uint8Array): BlockScan {
  try {
    const txCount = readTxCount(raw)[0];
    const candidates = scanBlockForCandidates(raw, DROP_SCAN_OPTIONS);
    return { txCount, candidates: candidates.map((c) => ({ index: c.index, tx: c.tx.bytes.slice(), outpoints: spentOutpoints(c.tx) })) };
  } catch (err) {
    return { txCount: 0, candidates: [], malformed: (err as Error).message };
  }
}

/**
 * The candidates' prevouts keyed by outpoint, matched by position from the node's
 * spent-outputs answer for the block (src/chain/spent-outputs.ts). null when the answer does
 * not fit the block (the caller then looks them up one by one).
 */
export function prevoutsFromSpent(spent: Uint8Array, scan: BlockScan): Map<string, Prevout> | null {
  let lists: Map<number, Prevout[]>;
  try {
    lists = spentOutputsAt(spent, scan.txCount, new Set(scan.candidates.map((c) => c.index)));
  } catch {
    return null;
  }
  const found = new Map<string, Prevout>();
  for (const c of scan.candidates) {
    const list = lists.get(c.index);
    if (list === undefined || list.length !== c.outpoints.length) return null;
    c.outpoints.forEach((o, j) => found.set(outpointKey(o.txid, o.vout), list[j]!));
  }
  return found;
}

function finishTx(tx: Tx, prevouts: ReadonlyMap<string, Prevout>, identities: readonly WatchIdentity[], into: { rows: ScannedRow[]; found: FoundDrop[]; candidates: number; unscannable: number }): void {
  const tweak = candidateTweak(tx, prevouts);
  if (tweak === null) {
    into.unscannable++;
    return;
  }
  into.candidates++;
  const txid = tx.txid;
  const outputs = dropOutputs(tx).map((o) => ({ vout: o.vout, data: o.data.slice() }));
  for (const o of outputs) into.rows.push({ txid, vout: o.vout, tweak, data: o.data });
  into.found.push(...trialDecrypt(txid, tweak, outputs, identities));
}

/** Step 2: tweak data and trial decryption of the candidates, with their prevouts, in block order. */
export function finishCandidates(candidates: readonly PendingCandidate[], prevouts: ReadonlyMap<string, Prevout>, identities: readonly WatchIdentity[]): FinishedScan {
  const acc = { rows: [] as ScannedRow[], found: [] as FoundDrop[], candidates: 0, unscannable: 0 };
  for (const c of candidates) finishTx(parseTransaction(c.tx), prevouts, identities, acc);
  return acc;
}
