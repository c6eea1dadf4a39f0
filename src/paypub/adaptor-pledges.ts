/**
 * Version 2 (adaptor-claim) pledges as the seller counts them, and the announcement that
 * carries a buyer's pre-signature (docs/protocol/paypub.md §12). Pure: the caller supplies what
 * its chain view saw.
 *
 * Announcement (166 bytes, PRESIG_ANNOUNCEMENT_BYTES): u8 2 ‖ manifest hash ‖ pledge txid (internal order) ‖ u32 vout ‖
 * buyer x-only key ‖ pre-signature (65). Nothing in it is trusted: the output must be on the
 * seller's chain with the script derived from the manifest and the key, and the pre-signature
 * must verify against that output. It is public (it cannot be completed without t), and
 * publishing it where the seller does not control it is what releases t to non-payers.
 */
import { DeaddropError } from '../util/errors.js';
import { verifyPledgePresig, adaptorPledgeOutput, type PresignedPledge } from './adaptor-claim.js';
import { adaptorTerms, type AdaptorManifest } from './adaptor-manifest.js';
import { Reader, Writer } from './bytes.js';
import { TIMING } from './params.js';
import { equalBytes, fromHex, toHex } from '../util/bytes.js';

export const PRESIG_ANNOUNCEMENT_VERSION = 2;
export const PRESIG_ANNOUNCEMENT_BYTES = 1 + 32 + 32 + 4 + 32 + 65;

export interface PresigAnnouncement {
  readonly manifestHash: Uint8Array;
  /** Display hex. */
  readonly txid: string;
  readonly vout: number;
  readonly buyerKey: Uint8Array;
  readonly presig: Uint8Array;
}

export function encodePresigAnnouncement(a: PresigAnnouncement): Uint8Array {
  if (!/^[0-9a-f]{64}$/i.test(a.txid)) throw new TypeError('txid must be 64 hex characters');
  return new Writer().u8(PRESIG_ANNOUNCEMENT_VERSION).bytes(a.manifestHash, 32).bytes(fromHex(a.txid).reverse(), 32).u32(a.vout)
    .bytes(a.buyerKey, 32).bytes(a.presig, 65).finish();
}

/** Layout only; `evaluateAdaptorPledges` checks the rest. Throws PROTOCOL. */
export function decodePresigAnnouncement(bytes: Uint8Array): PresigAnnouncement {
  const r = new Reader(bytes, 'pre-signature announcement');
  if (r.u8() !== PRESIG_ANNOUNCEMENT_VERSION) throw DeaddropError.protocol('pre-signature announcement: unsupported version');
  const a = { manifestHash: r.bytes(32), txid: toHex(r.bytes(32).reverse()), vout: r.u32(), buyerKey: r.bytes(32), presig: r.bytes(65) };
  r.end();
  return a;
}

/** A pledge output the seller saw, with the pre-signature announced for it. */
export interface AdaptorPledgeCandidate extends PresignedPledge {
  /** The output's actual scriptPubKey. */
  readonly script: Uint8Array;
  /** Confirmation height; 0 or less when unconfirmed. */
  readonly height: number;
}

export type AdaptorPledgeRejection = 'duplicate' | 'wrong-script' | 'below-minimum' | 'unconfirmed' | 'bad-presig';

export interface AdaptorPledgeEvaluation {
  /** What the claim spends, in input order. */
  readonly counted: readonly AdaptorPledgeCandidate[];
  readonly rejected: readonly { readonly pledge: AdaptorPledgeCandidate; readonly reason: AdaptorPledgeRejection }[];
  readonly total: bigint;
  readonly thresholdMet: boolean;
  readonly shortfall: bigint;
}

/**
 * The version 1 counting rules (pledges.ts) plus one: the pre-signature must verify, since a
 * single bad one would make the node reject the whole claim. Each outpoint counts once.
 */
export function evaluateAdaptorPledges(
  m: AdaptorManifest, candidates: readonly AdaptorPledgeCandidate[], tipHeight: number,
  minConfirmations: number = TIMING[m.network].pledgeConfirmations,
): AdaptorPledgeEvaluation {
  const terms = adaptorTerms(m);
  const seen = new Set<string>();
  const counted: AdaptorPledgeCandidate[] = [];
  const rejected: { pledge: AdaptorPledgeCandidate; reason: AdaptorPledgeRejection }[] = [];
  for (const c of candidates) {
    const reason = rejection(c);
    if (reason) rejected.push({ pledge: c, reason });
    else counted.push(c);
  }
  const total = counted.reduce((s, c) => s + c.value, 0n);
  return { counted, rejected, total, thresholdMet: total >= m.threshold, shortfall: total >= m.threshold ? 0n : m.threshold - total };

  function rejection(c: AdaptorPledgeCandidate): AdaptorPledgeRejection | null {
    const outpoint = `${c.txid.toLowerCase()}:${c.vout}`;
    if (seen.has(outpoint)) return 'duplicate';
    seen.add(outpoint);
    let want: Uint8Array | null = null;
    try {
      want = adaptorPledgeOutput(terms, c.buyerKey).script;
    } catch {
      want = null;
    }
    if (!want || !equalBytes(want, c.script)) return 'wrong-script';
    if (c.value < m.minPledge) return 'below-minimum';
    if (c.height <= 0 || c.height > tipHeight || tipHeight - c.height + 1 < minConfirmations) return 'unconfirmed';
    if (!verifyPledgePresig(terms, c, c.presig)) return 'bad-presig';
    return null;
  }
}
