/**
 * Pure evaluation of a sale's pledge set and of what each party may do at a given height.
 * The seller's daemon claims when `claimDecision` says so; buyers' clients pledge only when
 * `pledgeDecision` allows and refund when `refundDecision` does. No I/O: the watcher feeds
 * candidates (outputs it saw) and the tip height.
 */
import type { Manifest } from './manifest.js';
import { TIMING } from './params.js';
import { sampleStatus } from './sample.js';
import { pledgeOutput, type PledgeKey, type PledgeUtxo } from './scripts.js';
import { equalBytes, toHex } from '../util/bytes.js';

/** An output someone says is a pledge, as seen on chain. */
export interface PledgeCandidate extends PledgeUtxo {
  /** The output's actual scriptPubKey. */
  readonly script: Uint8Array;
  /** Confirmation height; 0 or less when unconfirmed. */
  readonly height: number;
}

export type PledgeRejection = 'duplicate' | 'wrong-script' | 'below-minimum' | 'unconfirmed';

export interface PledgeEvaluation {
  /** Pledges that count toward the threshold, in input order: the claim spends exactly these. */
  readonly counted: readonly PledgeCandidate[];
  readonly rejected: readonly { readonly pledge: PledgeCandidate; readonly reason: PledgeRejection }[];
  readonly total: bigint;
  readonly thresholdMet: boolean;
  /** Sats still missing (0 when met). */
  readonly shortfall: bigint;
}

/**
 * Which candidates count: the output script must be the one derived from the manifest, the
 * sample and the stated buyer key (with its NUMS tweak, if any); the value at least the
 * minimum pledge; confirmed at least `minConfirmations` deep; each outpoint once.
 */
export function evaluatePledges(
  m: Manifest, sampled: readonly number[], candidates: readonly PledgeCandidate[], tipHeight: number,
  minConfirmations: number = TIMING[m.network].pledgeConfirmations,
): PledgeEvaluation {
  const seen = new Set<string>();
  const scripts = new Map<string, Uint8Array | null>();
  const counted: PledgeCandidate[] = [];
  const rejected: { pledge: PledgeCandidate; reason: PledgeRejection }[] = [];
  for (const c of candidates) {
    const reason = rejection(c, seen, () => expectedScript(m, sampled, c, scripts), m.minPledge, tipHeight, minConfirmations);
    if (reason) rejected.push({ pledge: c, reason });
    else counted.push(c);
  }
  const total = counted.reduce((s, c) => s + c.value, 0n);
  return { counted, rejected, total, thresholdMet: total >= m.threshold, shortfall: total >= m.threshold ? 0n : m.threshold - total };
}

function rejection(
  c: PledgeCandidate, seen: Set<string>, expected: () => Uint8Array | null, minPledge: bigint, tip: number, minConf: number,
): PledgeRejection | null {
  const outpoint = `${c.txid.toLowerCase()}:${c.vout}`;
  if (seen.has(outpoint)) return 'duplicate';
  seen.add(outpoint);
  const want = expected();
  if (!want || !equalBytes(want, c.script)) return 'wrong-script';
  if (c.value < minPledge) return 'below-minimum';
  if (c.height <= 0 || c.height > tip || tip - c.height + 1 < minConf) return 'unconfirmed';
  return null;
}

/** Derives (and caches per buyer key) the pledge script; null for keys that cannot make one. */
function expectedScript(m: Manifest, sampled: readonly number[], k: PledgeKey, cache: Map<string, Uint8Array | null>): Uint8Array | null {
  const id = toHex(k.buyerKey) + (k.r ? ':' + toHex(k.r) : '');
  if (!cache.has(id)) {
    let script: Uint8Array | null = null;
    try {
      script = pledgeOutput(m, sampled, k).script;
    } catch {
      script = null;
    }
    cache.set(id, script);
  }
  return cache.get(id) ?? null;
}

/** Last height at which the seller may still broadcast a claim: deadline - claimMargin - 1. */
export function claimCutoff(m: Pick<Manifest, 'deadlineHeight' | 'network'>): number {
  return m.deadlineHeight - TIMING[m.network].claimMargin - 1;
}

/** The terms of a sale as every report shows them: the manifest's numbers plus the claim cutoff. */
export interface SaleTerms {
  readonly fileLength: number;
  readonly chunkCount: number;
  readonly sampleSize: number;
  readonly price: bigint;
  readonly threshold: bigint;
  readonly minPledge: bigint;
  readonly beaconHeight: number;
  readonly deadlineHeight: number;
  readonly claimCutoff: number;
}

export function saleTerms(m: Manifest): SaleTerms {
  return {
    fileLength: m.fileLength, chunkCount: m.chunkCount, sampleSize: m.sampleSize, price: m.price, threshold: m.threshold,
    minPledge: m.minPledge, beaconHeight: m.beaconHeight, deadlineHeight: m.deadlineHeight, claimCutoff: claimCutoff(m),
  };
}

export type Decision<R extends string> = { readonly ok: true } | { readonly ok: false; readonly reason: R };

/**
 * Seller: claim when the threshold is met by counted pledges and the tip is below
 * deadline - margin, so the claim confirms well before refunds become valid (after the
 * deadline both are, and they race). Once keys are public, claiming what is left is still
 * allowed: the keys cannot be taken back.
 */
export function claimDecision(m: Manifest, ev: PledgeEvaluation, tipHeight: number): Decision<'threshold-not-met' | 'too-late'> {
  if (!ev.thresholdMet) return { ok: false, reason: 'threshold-not-met' };
  if (tipHeight > claimCutoff(m)) return { ok: false, reason: 'too-late' };
  return { ok: true };
}

/** Buyer: whether a new pledge makes sense now. */
export function pledgeDecision(
  m: Manifest, s: { readonly tipHeight: number; readonly keysPublic: boolean; readonly beaconFinal?: boolean },
): Decision<'keys-public' | 'sample-not-final' | 'too-late'> {
  if (s.keysPublic) return { ok: false, reason: 'keys-public' };
  if ((s.beaconFinal ?? true) === false || sampleStatus(m.beaconHeight, s.tipHeight, m.network) !== 'final') return { ok: false, reason: 'sample-not-final' };
  // A pledge must confirm (pledgeConfirmations) and be claimed before the cutoff.
  if (s.tipHeight + TIMING[m.network].pledgeConfirmations > claimCutoff(m)) return { ok: false, reason: 'too-late' };
  return { ok: true };
}

/**
 * Buyer: a refund (nLockTime = deadline) is valid in the next block once tip >= deadline.
 * Nodes reject it as non-final before that.
 */
export function refundDecision(m: Pick<Manifest, 'deadlineHeight'>, tipHeight: number): Decision<'before-deadline'> {
  return tipHeight >= m.deadlineHeight ? { ok: true } : { ok: false, reason: 'before-deadline' };
}
