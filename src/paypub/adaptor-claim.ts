/**
 * Public-mode pledges claimed through adaptor signatures (docs/protocol/paypub.md §12): the claim
 * costs the same per pledge whatever the chunk count, because it publishes one scalar t (from
 * which every chunk key follows, chunk-keys.ts) instead of N − s hash preimages.
 *
 *   internal key: the BIP341 NUMS point H (no key path: neither side can spend alone);
 *   claim leaf:   <buyer> OP_CHECKSIGVERIFY <seller> OP_CHECKSIG
 *   refund leaf:  <deadline> OP_CHECKLOCKTIMEVERIFY OP_DROP <buyer> OP_CHECKSIG   (as in v1)
 *
 * At pledge time the buyer pre-signs the claim spend of its own pledge, locked to T = t·G, with
 * SIGHASH_NONE|ANYONECANPAY (0x82): the signature commits to this input only (outpoint, amount,
 * scriptPubKey, nSequence, leaf) and to the protocol's fixed nVersion 2 and nLockTime 0, so it
 * stays valid in whatever claim transaction the seller builds. It needs no output commitment:
 * the seller's own SIGHASH_DEFAULT signature in the same leaf fixes the outputs, so nobody who
 * learns the completed buyer signature can redirect the money.
 *
 * The seller completes each pre-signature with t (`adaptorComplete`); whoever holds a
 * pre-signature and sees the claim (mempool or block) recovers t = s − s' (`adaptorExtract`),
 * checks it against T, and derives every chunk key.
 *
 * Claim witness (bottom first): [seller sig (64), buyer sig (65, ends 0x82), leaf, control block].
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { adaptorClaimLeafScript, adaptorComplete, adaptorExtract, adaptorSign, adaptorVerify } from './adaptor.js';
import {
  NUMS_H, P2TR_DUST, SEQUENCE_RBF, assertXOnlyKey, refundLeafScript, spendRefundLeaf, splitAnnex, twoLeafOutput, witnessesOf, type BuiltTx, type TwoLeafOutput,
} from './scripts.js';
import { equalBytes, toHex } from '../util/bytes.js';

const LEAF_VERSION = 0xc0;
/** SIGHASH_NONE | SIGHASH_ANYONECANPAY: the buyer's pre-signature commits to its own input only. */
export const SIGHASH_NONE_ACP = 0x82;
/** Fixed by the protocol, because the buyer's signature commits to them. */
export const CLAIM_TX_VERSION = 2;
export const CLAIM_LOCKTIME = 0;
export const CLAIM_SEQUENCE = SEQUENCE_RBF;

/** What an adaptor pledge depends on: the seller's signed terms. */
export interface AdaptorSaleTerms {
  readonly network: Network;
  /** Seller x-only key (the second key of the claim leaf). */
  readonly sellerKey: Uint8Array;
  /** CLTV height of the refund leaf. */
  readonly deadlineHeight: number;
  /** T = t·G, 33-byte compressed. */
  readonly salePoint: Uint8Array;
}

/** A confirmed (or at least built) adaptor pledge. */
export interface AdaptorPledge {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  /** The buyer's x-only key: signs both the claim pre-signature and the refund. */
  readonly buyerKey: Uint8Array;
}

/** The buyer's pledge output under `terms` (derived by the buyer, never handed over). */
export function adaptorPledgeOutput(terms: AdaptorSaleTerms, buyerKey: Uint8Array): TwoLeafOutput {
  assertXOnlyKey(buyerKey, 'buyer key');
  assertXOnlyKey(terms.sellerKey, 'seller key');
  return twoLeafOutput(NUMS_H, adaptorClaimLeafScript(buyerKey, terms.sellerKey), refundLeafScript(terms.deadlineHeight, buyerKey), terms.network);
}

/**
 * The message the buyer pre-signs: the BIP341 SIGHASH_NONE|ANYONECANPAY script-path sighash of
 * the claim input. Any claim transaction with version 2, nLockTime 0 and this input at
 * nSequence 0xfffffffd gives the same message, wherever the input sits and whatever the outputs.
 */
export function claimInputSighash(terms: AdaptorSaleTerms, pledge: AdaptorPledge): Uint8Array {
  const out = adaptorPledgeOutput(terms, pledge.buyerKey);
  const tx = new Transaction({ version: CLAIM_TX_VERSION, lockTime: CLAIM_LOCKTIME, allowUnknownOutputs: true, allowUnknownInputs: true });
  tx.addInput({ txid: pledge.txid, index: pledge.vout, sequence: CLAIM_SEQUENCE, witnessUtxo: { script: out.script, amount: pledge.value } });
  return tx.preimageWitnessV1(0, [out.script], SIGHASH_NONE_ACP, [pledge.value], undefined, out.claim.script, LEAF_VERSION);
}

/** The buyer's pre-signature (65 bytes: R ‖ s') on its pledge's claim input, locked to T. */
export function presignPledgeClaim(terms: AdaptorSaleTerms, pledge: AdaptorPledge, buyerSecretKey: Uint8Array, aux?: Uint8Array): Uint8Array {
  if (!equalBytes(schnorr.getPublicKey(buyerSecretKey), pledge.buyerKey)) throw new TypeError('buyer secret key does not match the pledge key');
  const msg = claimInputSighash(terms, pledge);
  const presig = adaptorSign(msg, buyerSecretKey, terms.salePoint, aux);
  if (!adaptorVerify(msg, pledge.buyerKey, terms.salePoint, presig)) throw new Error('pre-signature failed its own check');
  return presig;
}

/** True when `presig` is the buyer's valid pre-signature for this pledge's claim. Never throws. */
export function verifyPledgePresig(terms: AdaptorSaleTerms, pledge: AdaptorPledge, presig: Uint8Array): boolean {
  try {
    return adaptorVerify(claimInputSighash(terms, pledge), pledge.buyerKey, terms.salePoint, presig);
  } catch {
    return false;
  }
}

/** A pledge and the buyer's pre-signature, as the seller collects them. */
export interface PresignedPledge extends AdaptorPledge {
  readonly presig: Uint8Array;
}

export interface AdaptorClaimOptions {
  readonly terms: AdaptorSaleTerms;
  /** The per-sale secret t, 32 bytes. */
  readonly saleSecret: Uint8Array;
  readonly sellerSecretKey: Uint8Array;
  readonly pledges: readonly PresignedPledge[];
  readonly payoutScript: Uint8Array;
  /** sat/vB; the fee is rounded up from the exact vsize. */
  readonly feeRate: number;
  /** BIP340 aux_rand of the seller's signatures: random by default; fixed only for test vectors. */
  readonly auxRand?: Uint8Array;
}

/**
 * The seller's claim: every pledge in one transaction (version 2, nLockTime 0, RBF), one payout
 * output. Each pre-signature is checked first (TypeError naming the outpoint): a bad one would
 * make the node reject the whole claim. A fee bump is the same call
 * at a higher rate; the completed buyer signatures do not change.
 */
export function buildAdaptorClaimTx(o: AdaptorClaimOptions): BuiltTx {
  if (!(o.feeRate > 0) || !Number.isFinite(o.feeRate)) throw new RangeError(`fee rate must be positive; got ${o.feeRate}`);
  if (o.pledges.length === 0) throw new RangeError('no pledges to claim');
  const sellerKey = schnorr.getPublicKey(o.sellerSecretKey);
  if (!equalBytes(sellerKey, o.terms.sellerKey)) throw new TypeError('seller secret key does not match the terms');
  const inputs = o.pledges.map((p) => {
    if (!verifyPledgePresig(o.terms, p, p.presig)) throw new TypeError(`pre-signature of ${p.txid}:${p.vout} does not verify`);
    const buyerSig = Uint8Array.of(...adaptorComplete(p.presig, o.saleSecret), SIGHASH_NONE_ACP);
    return { p, out: adaptorPledgeOutput(o.terms, p.buyerKey), buyerSig };
  });
  const total = o.pledges.reduce((s, p) => s + p.value, 0n);
  const assemble = (outValue: bigint): Transaction => {
    const tx = new Transaction({ version: CLAIM_TX_VERSION, lockTime: CLAIM_LOCKTIME, allowUnknownOutputs: true, allowUnknownInputs: true });
    for (const { p, out } of inputs) tx.addInput({ txid: p.txid, index: p.vout, sequence: CLAIM_SEQUENCE, witnessUtxo: { script: out.script, amount: p.value } });
    tx.addOutput({ script: o.payoutScript, amount: outValue });
    const scripts = inputs.map((i) => i.out.script);
    const amounts = inputs.map((i) => i.p.value);
    inputs.forEach(({ out, buyerSig }, idx) => {
      const sighash = tx.preimageWitnessV1(idx, scripts, 0, amounts, undefined, out.claim.script, LEAF_VERSION);
      const sellerSig = schnorr.sign(sighash, o.sellerSecretKey, o.auxRand);
      tx.updateInput(idx, { finalScriptWitness: [sellerSig, buyerSig, out.claim.script, out.claim.controlBlock] });
    });
    return tx;
  };
  const fee = BigInt(Math.ceil(assemble(total).vsize * o.feeRate));
  if (total - fee < P2TR_DUST) throw DeaddropError.insufficientFunds(fee + P2TR_DUST, total);
  const tx = assemble(total - fee);
  return { raw: tx.extract(), txid: tx.id, fee, vsize: tx.vsize, weight: tx.weight };
}

export interface AdaptorRefundOptions {
  readonly terms: AdaptorSaleTerms;
  readonly pledge: AdaptorPledge;
  readonly buyerSecretKey: Uint8Array;
  readonly destScript: Uint8Array;
  readonly feeRate: number;
  /** Default SEQUENCE_RBF; 0xffffffff would disable nLockTime and fail OP_CHECKLOCKTIMEVERIFY. */
  readonly sequence?: number;
  /** Default: the deadline (valid in a block once the tip has reached it). */
  readonly lockTime?: number;
}

/** The buyer's refund after the deadline, through the same CLTV leaf as version 1 pledges. */
export function buildAdaptorRefundTx(o: AdaptorRefundOptions): BuiltTx {
  return spendRefundLeaf(adaptorPledgeOutput(o.terms, o.pledge.buyerKey), o, o.terms.deadlineHeight);
}

/** Parses `<32> OP_CHECKSIGVERIFY <32> OP_CHECKSIG`; null for any other script. */
export function parseAdaptorClaimLeaf(script: Uint8Array): { buyerKey: Uint8Array; sellerKey: Uint8Array } | null {
  if (script.length !== 68 || script[0] !== 0x20 || script[33] !== 0xad || script[34] !== 0x20 || script[67] !== 0xac) return null;
  return { buyerKey: script.slice(1, 33), sellerKey: script.slice(35, 67) };
}

/** One adaptor claim input found in a transaction: the buyer's completed signature (64 bytes, sighash byte dropped). */
export interface AdaptorClaimSpend {
  readonly inputIndex: number;
  readonly buyerKey: Uint8Array;
  readonly sellerKey: Uint8Array;
  readonly buyerSig: Uint8Array;
}

/** Every input of `rawTx` that spends an adaptor claim leaf (annex dropped). Bad bytes give []: never throws. */
export function findAdaptorClaimSpends(rawTx: Uint8Array): AdaptorClaimSpend[] {
  const found: AdaptorClaimSpend[] = [];
  witnessesOf(rawTx).forEach((w, inputIndex) => {
    const { items } = splitAnnex(w);
    if (items.length !== 4) return;
    const control = items[3] as Uint8Array;
    if (control.length < 33 || (control.length - 33) % 32 !== 0 || ((control[0] as number) & 0xfe) !== LEAF_VERSION) return;
    const leaf = parseAdaptorClaimLeaf(items[2] as Uint8Array);
    const buyerSig = items[1] as Uint8Array;
    if (!leaf || (buyerSig.length !== 64 && buyerSig.length !== 65)) return;
    found.push({ inputIndex, ...leaf, buyerSig: buyerSig.slice(0, 64) });
  });
  return found;
}

/**
 * The sale secret t a claim transaction reveals to whoever holds one of its pre-signatures, or
 * null. Checked against T, so a replaced or reorged claim still teaches the right t, and an
 * unrelated transaction teaches nothing.
 */
export function extractSaleSecret(rawTx: Uint8Array, terms: Pick<AdaptorSaleTerms, 'sellerKey' | 'salePoint'>, presigs: readonly Uint8Array[]): Uint8Array | null {
  const byNonce = new Map<string, Uint8Array[]>();
  for (const p of presigs) {
    if (p.length !== 65) continue;
    const k = toHex(p.subarray(1, 33));
    byNonce.set(k, [...(byNonce.get(k) ?? []), p]);
  }
  for (const spend of findAdaptorClaimSpends(rawTx)) {
    if (!equalBytes(spend.sellerKey, terms.sellerKey)) continue;
    for (const presig of byNonce.get(toHex(spend.buyerSig.subarray(0, 32))) ?? []) {
      const t = adaptorExtract(presig, spend.buyerSig, terms.salePoint);
      if (t) return t;
    }
  }
  return null;
}

/**
 * Virtual size one pledge adds to an adaptor claim: 41 bytes of input plus the witness
 * (count, 64-byte seller sig, 65-byte buyer sig, 68-byte leaf, 65-byte control block), each
 * with its length byte: (164 + 1 + 65 + 66 + 69 + 66) / 4 = 107.75 vB, whatever N and s.
 */
export function adaptorClaimInputVbytes(): number {
  return (41 * 4 + 1 + 65 + 66 + 69 + 66) / 4;
}
