/**
 * PayPub scripts and transactions (public mode; private-mode leaves live here too).
 *
 * A pledge is a taproot output the BUYER derives from the manifest, the sample and the
 * buyer's own key; nothing the seller hands over decides where the money goes:
 *   internal key: the BIP341 NUMS point H (optionally H + r*G, r known to the buyer), so
 *                 there is no key path;
 *   claim leaf:   OP_SHA256 <h_u1> OP_EQUALVERIFY ... OP_SHA256 <h_um> OP_EQUALVERIFY <seller> OP_CHECKSIG
 *                 for every unsampled index u1 < ... < um;
 *   refund leaf:  <deadline> OP_CHECKLOCKTIMEVERIFY OP_DROP <buyer> OP_CHECKSIG.
 * Collecting a pledge therefore publishes every unsampled key in the witness. The seller's
 * claim spends all counted pledges in ONE transaction that signals RBF.
 *
 * @scure/btc-signer's finalizer does not insert preimages, so witnesses are assembled here:
 * claim [sig, k_um, ..., k_u1, leaf, control]: k_u1 ends on top of the stack, where the
 * first OP_SHA256 reads it.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { p2tr, tapLeafHash } from '@scure/btc-signer/payment.js';
import { TaprootControlBlock } from '@scure/btc-signer/psbt.js';
import { RawTx, Script, ScriptNum } from '@scure/btc-signer/script.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { DeaddropError } from '../util/errors.js';
import { btcSignerNetwork, type Network } from '../util/network.js';
import { sha256 } from './bytes.js';
import type { Manifest } from './manifest.js';
import { unsampledIndices } from './sample.js';
import { equalBytes, fromHex, toHex } from '../util/bytes.js';

const OP_SHA256 = 0xa8;
const OP_EQUALVERIFY = 0x88;
const OP_CHECKSIG = 0xac;
const LEAF_VERSION = 0xc0;
/** BIP341's NUMS point H = lift_x(SHA256(G uncompressed)): nobody knows its discrete log. */
export const NUMS_H = fromHex('50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0');
/** nSequence that signals BIP125 replaceability and still enables nLockTime. */
export const SEQUENCE_RBF = 0xfffffffd;
/** Dust limit of a P2TR output. */
export const P2TR_DUST = 330n;

/**
 * The pledge internal key: H, or H + r*G when the buyer chose a tweak r (then r must be
 * shown to anyone who is to recognise the pledge). Both have no known discrete log.
 */
export function pledgeInternalKey(r?: Uint8Array): Uint8Array {
  if (r === undefined) return NUMS_H.slice();
  if (r.length !== 32) throw new TypeError('NUMS tweak r must be 32 bytes');
  const Point = schnorr.Point;
  const t = BigInt('0x' + toHex(r)) % Point.Fn.ORDER;
  if (t === 0n) throw new RangeError('NUMS tweak r must be non-zero mod n');
  const H = schnorr.utils.lift_x(BigInt('0x' + toHex(NUMS_H)));
  return schnorr.utils.pointToBytes(H.add(Point.BASE.multiply(t)));
}

/** True only for H itself or for H + r*G with the r supplied. Buyers refuse any other internal key. */
export function isNumsInternalKey(internalKey: Uint8Array, r?: Uint8Array): boolean {
  try {
    return equalBytes(internalKey, pledgeInternalKey(r));
  } catch {
    return false;
  }
}

/** Throws TypeError unless `key` is a valid BIP340 x-only public key. */
export function assertXOnlyKey(key: Uint8Array, name: string): void {
  let ok = key instanceof Uint8Array && key.length === 32;
  if (ok) {
    try {
      schnorr.utils.lift_x(BigInt('0x' + toHex(key)));
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new TypeError(`${name} must be a valid 32-byte x-only public key`);
}

function push32(b: Uint8Array): Uint8Array {
  if (b.length !== 32) throw new TypeError(`expected a 32-byte push, got ${b.length} bytes`);
  return Uint8Array.of(0x20, ...b);
}

/** The claim leaf for a manifest and its sample (same script in every pledge of the sale). */
export function claimLeafScript(m: Pick<Manifest, 'chunkCount' | 'keyCommitments' | 'sellerKey'>, sampled: readonly number[]): Uint8Array {
  const parts: number[] = [];
  for (const i of unsampledIndices(m.chunkCount, sampled)) parts.push(OP_SHA256, ...push32(m.keyCommitments[i] as Uint8Array), OP_EQUALVERIFY);
  parts.push(...push32(m.sellerKey), OP_CHECKSIG);
  return Uint8Array.from(parts);
}

/** `<deadline> OP_CHECKLOCKTIMEVERIFY OP_DROP <buyer> OP_CHECKSIG`. */
export function refundLeafScript(deadline: number, buyerKey: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(deadline) || deadline < 1 || deadline >= 500_000_000) throw new RangeError(`deadline must be a block height; got ${deadline}`);
  assertXOnlyKey(buyerKey, 'buyer key');
  return Script.encode([deadline, 'CHECKLOCKTIMEVERIFY', 'DROP', buyerKey, 'CHECKSIG']);
}

/** Private mode: `OP_SHA256 <H(s_B)> OP_EQUALVERIFY <seller> OP_CHECKSIG`. */
export function htlcLeafScript(paymentHash: Uint8Array, sellerKey: Uint8Array): Uint8Array {
  return Uint8Array.from([OP_SHA256, ...push32(paymentHash), OP_EQUALVERIFY, ...push32(sellerKey), OP_CHECKSIG]);
}

/** Private mode: `<csv> OP_CHECKSEQUENCEVERIFY OP_DROP <buyer> OP_CHECKSIG` (blocks). */
export function csvRefundLeafScript(csv: number, buyerKey: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(csv) || csv < 1 || csv > 0xffff) throw new RangeError(`CSV delay must be 1..65535 blocks; got ${csv}`);
  assertXOnlyKey(buyerKey, 'buyer key');
  return Script.encode([csv, 'CHECKSEQUENCEVERIFY', 'DROP', buyerKey, 'CHECKSIG']);
}

/** A spendable leaf: its script and its control block in this output. */
export interface LeafSpend {
  readonly script: Uint8Array;
  readonly controlBlock: Uint8Array;
}

/** A two-leaf taproot output with a NUMS internal key. */
export interface TwoLeafOutput {
  /** scriptPubKey: OP_1 <32-byte output key>. */
  readonly script: Uint8Array;
  readonly address: string;
  readonly internalKey: Uint8Array;
  readonly outputKey: Uint8Array;
  /** The hash-locked leaf (claim / HTLC). */
  readonly claim: LeafSpend;
  /** The timelocked leaf (CLTV / CSV refund). */
  readonly refund: LeafSpend;
}

/** Builds the taproot output with leaves [claim, refund] under `internalKey`. */
export function twoLeafOutput(internalKey: Uint8Array, claimLeaf: Uint8Array, refundLeaf: Uint8Array, network: Network): TwoLeafOutput {
  const out = p2tr(internalKey, [{ script: claimLeaf }, { script: refundLeaf }], btcSignerNetwork(network), true);
  const leaf = (script: Uint8Array): LeafSpend => {
    const found = out.tapLeafScript?.find(([, s]) => equalBytes(s.subarray(0, s.length - 1), script));
    if (!found) throw new Error('taproot leaf missing from the tree');
    return { script, controlBlock: TaprootControlBlock.encode(found[0]) };
  };
  return {
    script: out.script,
    address: out.address,
    internalKey: out.tapInternalKey,
    outputKey: out.tweakedPubkey,
    claim: leaf(claimLeaf),
    refund: leaf(refundLeaf),
  };
}

/** What identifies one buyer's pledge. `r` only when the buyer tweaked the NUMS key. */
export interface PledgeKey {
  readonly buyerKey: Uint8Array;
  readonly r?: Uint8Array;
}

/** The buyer's pledge output, derived from the manifest, the sample and the buyer key only. */
export function pledgeOutput(m: Manifest, sampled: readonly number[], p: PledgeKey): TwoLeafOutput {
  return twoLeafOutput(pledgeInternalKey(p.r), claimLeafScript(m, sampled), refundLeafScript(m.deadlineHeight, p.buyerKey), m.network);
}

/**
 * Checks a pledge description handed over by someone else (the seller's offer page, another
 * buyer's announcement): the internal key must be NUMS and the script must be the one the
 * buyer derives. Returns the problem, or null.
 */
export function pledgeDescriptionProblem(m: Manifest, sampled: readonly number[], p: PledgeKey & { internalKey: Uint8Array; script: Uint8Array }): 'non-nums-internal-key' | 'wrong-script' | null {
  if (!isNumsInternalKey(p.internalKey, p.r)) return 'non-nums-internal-key';
  if (!equalBytes(pledgeOutput(m, sampled, p).script, p.script)) return 'wrong-script';
  return null;
}

/** One input to spend through a script path. */
export interface ScriptPathInput {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  /** The scriptPubKey being spent. */
  readonly prevScript: Uint8Array;
  readonly leaf: LeafSpend;
  readonly secretKey: Uint8Array;
  /** Witness items below the leaf script, given the signature: e.g. sig => [sig, ...preimages]. */
  readonly stack: (sig: Uint8Array) => Uint8Array[];
  readonly sequence?: number;
}

export interface SpendOptions {
  readonly inputs: readonly ScriptPathInput[];
  /** Receives everything but the fee. */
  readonly destScript: Uint8Array;
  /** Fee rate in sat/vB (the fee is rounded up from the exact vsize). */
  readonly feeRate: number;
  readonly lockTime?: number;
  /** Default 2 (needed for CSV). */
  readonly version?: number;
}

/** A signed transaction and its measures. */
export interface BuiltTx {
  readonly raw: Uint8Array;
  readonly txid: string;
  readonly fee: bigint;
  readonly vsize: number;
  readonly weight: number;
}

/**
 * Signs and finalises a transaction whose every input spends a taproot leaf with
 * SIGHASH_DEFAULT (64-byte signatures, so the size is known before signing).
 */
export function spendScriptPath(o: SpendOptions): BuiltTx {
  if (!(o.feeRate > 0) || !Number.isFinite(o.feeRate)) throw new RangeError(`fee rate must be positive; got ${o.feeRate}`);
  if (o.inputs.length === 0) throw new RangeError('no inputs to spend');
  const total = o.inputs.reduce((s, i) => s + i.value, 0n);
  const first = assemble(o, total);
  const fee = BigInt(Math.ceil(first.vsize * o.feeRate));
  if (total - fee < P2TR_DUST) throw DeaddropError.insufficientFunds(fee + P2TR_DUST, total);
  const tx = assemble(o, total - fee);
  return { raw: tx.extract(), txid: tx.id, fee, vsize: tx.vsize, weight: tx.weight };
}

function assemble(o: SpendOptions, outValue: bigint): Transaction {
  const tx = new Transaction({ version: o.version ?? 2, lockTime: o.lockTime ?? 0, allowUnknownOutputs: true, allowUnknownInputs: true });
  for (const i of o.inputs) {
    tx.addInput({ txid: i.txid, index: i.vout, sequence: i.sequence ?? SEQUENCE_RBF, witnessUtxo: { script: i.prevScript, amount: i.value } });
  }
  tx.addOutput({ script: o.destScript, amount: outValue });
  const prevScripts = o.inputs.map((i) => i.prevScript);
  const amounts = o.inputs.map((i) => i.value);
  o.inputs.forEach((i, idx) => {
    const sighash = tx.preimageWitnessV1(idx, prevScripts, 0, amounts, undefined, i.leaf.script, LEAF_VERSION);
    const sig = schnorr.sign(sighash, i.secretKey);
    tx.updateInput(idx, { finalScriptWitness: [...i.stack(sig), i.leaf.script, i.leaf.controlBlock] });
  });
  return tx;
}

/** A confirmed pledge the seller claims or the buyer refunds. */
export interface PledgeUtxo extends PledgeKey {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
}

/** Witness items under the claim leaf for `keys` (all chunk keys by index): [sig, k_um, ..., k_u1]. */
export function claimStack(m: Pick<Manifest, 'chunkCount'>, sampled: readonly number[], keys: readonly Uint8Array[]): (sig: Uint8Array) => Uint8Array[] {
  const locked = unsampledIndices(m.chunkCount, sampled).map((i) => {
    const k = keys[i];
    if (!k) throw new TypeError(`missing key ${i}`);
    return k;
  });
  return (sig) => [sig, ...locked.slice().reverse()];
}

export interface ClaimOptions {
  readonly manifest: Manifest;
  readonly sampled: readonly number[];
  /** All chunk keys, by index. */
  readonly keys: readonly Uint8Array[];
  readonly sellerSecretKey: Uint8Array;
  readonly pledges: readonly PledgeUtxo[];
  readonly payoutScript: Uint8Array;
  readonly feeRate: number;
  /** Anti-fee-sniping: the current height is a good choice. Must stay below nothing: claims have no CLTV. */
  readonly lockTime?: number;
}

/**
 * The seller's claim: every pledge in one transaction, RBF-signalling, paying `payoutScript`.
 * A fee bump is the same call with a higher `feeRate` (same inputs, so it replaces).
 */
export function buildClaimTx(o: ClaimOptions): BuiltTx {
  const { manifest: m, sampled } = o;
  for (const [i, k] of o.keys.entries()) {
    if (!equalBytes(sha256(k), m.keyCommitments[i] as Uint8Array)) throw new TypeError(`key ${i} does not match its commitment`);
  }
  const stack = claimStack(m, sampled, o.keys);
  return spendScriptPath({
    inputs: o.pledges.map((p) => {
      const out = pledgeOutput(m, sampled, p);
      return { txid: p.txid, vout: p.vout, value: p.value, prevScript: out.script, leaf: out.claim, secretKey: o.sellerSecretKey, stack };
    }),
    destScript: o.payoutScript,
    feeRate: o.feeRate,
    lockTime: o.lockTime ?? 0,
  });
}

export interface RefundOptions {
  readonly manifest: Manifest;
  readonly sampled: readonly number[];
  readonly pledge: PledgeUtxo;
  readonly buyerSecretKey: Uint8Array;
  readonly destScript: Uint8Array;
  readonly feeRate: number;
  /** Default SEQUENCE_RBF. 0xffffffff would disable nLockTime, and OP_CHECKLOCKTIMEVERIFY then fails. */
  readonly sequence?: number;
  /** Default: the deadline. Valid in a block once the tip has reached the deadline. */
  readonly lockTime?: number;
}

/** The buyer's refund after the deadline: nLockTime = deadline, nSequence < 0xffffffff. */
export function buildRefundTx(o: RefundOptions): BuiltTx {
  return spendRefundLeaf(pledgeOutput(o.manifest, o.sampled, o.pledge), o, o.manifest.deadlineHeight);
}

/**
 * Spends a pledge through its CLTV refund leaf (both versions' pledges have the same one), with
 * nLockTime `lockTime` (default `deadlineHeight`) and an RBF sequence.
 */
export function spendRefundLeaf(
  out: Pick<TwoLeafOutput, 'script' | 'refund'>,
  o: Omit<RefundOptions, 'manifest' | 'sampled' | 'pledge'> & { readonly pledge: Pick<PledgeUtxo, 'txid' | 'vout' | 'value'> },
  deadlineHeight: number,
): BuiltTx {
  return spendScriptPath({
    inputs: [{
      txid: o.pledge.txid, vout: o.pledge.vout, value: o.pledge.value, prevScript: out.script, leaf: out.refund,
      secretKey: o.buyerSecretKey, stack: (sig) => [sig], sequence: o.sequence ?? SEQUENCE_RBF,
    }],
    destScript: o.destScript,
    feeRate: o.feeRate,
    lockTime: o.lockTime ?? deadlineHeight,
  });
}

/** Splits an input witness into its items and its annex (last item starting 0x50 when there are >= 2 items). */
export function splitAnnex(witness: readonly Uint8Array[]): { items: readonly Uint8Array[]; annex?: Uint8Array } {
  const last = witness[witness.length - 1];
  if (witness.length >= 2 && last && last.length > 0 && last[0] === 0x50) return { items: witness.slice(0, -1), annex: last };
  return { items: witness };
}

/** A script-path spend of a hash-lock leaf, as found in a witness. */
export interface HashLockSpend {
  readonly inputIndex: number;
  /** The key in `<key> OP_CHECKSIG` at the end of the leaf. */
  readonly signer: Uint8Array;
  /** (hash, preimage) in script order; each preimage hashes to its hash. */
  readonly locks: readonly { readonly hash: Uint8Array; readonly preimage: Uint8Array }[];
}

/** Parses `(OP_SHA256 <32> OP_EQUALVERIFY)+ <32> OP_CHECKSIG`; null for any other script. */
export function parseHashLockLeaf(script: Uint8Array): { hashes: Uint8Array[]; signer: Uint8Array } | null {
  const hashes: Uint8Array[] = [];
  let p = 0;
  while (script[p] === OP_SHA256 && script[p + 1] === 0x20 && script[p + 34] === OP_EQUALVERIFY && p + 35 <= script.length) {
    hashes.push(script.slice(p + 2, p + 34));
    p += 35;
  }
  if (hashes.length === 0 || p + 34 !== script.length || script[p] !== 0x20 || script[p + 33] !== OP_CHECKSIG) return null;
  return { hashes, signer: script.slice(p + 1, p + 33) };
}

/**
 * Every hash-lock leaf spend in a raw transaction whose preimages check out (annex dropped,
 * 64- or 65-byte signatures). Bad or unrelated transactions give []: never throws.
 */
export function findHashLockSpends(rawTx: Uint8Array): HashLockSpend[] {
  return witnessesOf(rawTx).flatMap((w, inputIndex) => parseHashLockWitness(w, inputIndex) ?? []);
}

/** The witness stacks of a raw transaction, one per input; [] for bytes that are not a transaction (never throws). */
export function witnessesOf(rawTx: Uint8Array): Uint8Array[][] {
  try {
    return RawTx.decode(rawTx).witnesses ?? [];
  } catch {
    return [];
  }
}

function parseHashLockWitness(witness: readonly Uint8Array[], inputIndex: number): HashLockSpend | null {
  const { items } = splitAnnex(witness);
  if (items.length < 4) return null;
  const control = items[items.length - 1] as Uint8Array;
  if (control.length < 33 || (control.length - 33) % 32 !== 0 || ((control[0] as number) & 0xfe) !== LEAF_VERSION) return null;
  const leaf = parseHashLockLeaf(items[items.length - 2] as Uint8Array);
  if (!leaf || items.length !== leaf.hashes.length + 3) return null;
  const sig = items[0] as Uint8Array;
  if (sig.length !== 64 && sig.length !== 65) return null;
  const locks = leaf.hashes.map((hash, j) => ({ hash, preimage: items[leaf.hashes.length - j] as Uint8Array }));
  if (!locks.every((l) => equalBytes(sha256(l.preimage), l.hash))) return null;
  return { inputIndex, signer: leaf.signer, locks };
}

/**
 * The chunk keys a claim transaction publishes for manifest `m`, by chunk index. Keys are
 * self-authenticating (each hashes to its commitment), so a replaced or reorged claim still
 * teaches them. Unrelated transactions give an empty map.
 */
export function extractClaimKeys(rawTx: Uint8Array, m: Pick<Manifest, 'keyCommitments' | 'sellerKey'>): Map<number, Uint8Array> {
  const byHash = new Map<string, number>(m.keyCommitments.map((h, i) => [toHex(h), i]));
  const keys = new Map<number, Uint8Array>();
  for (const spend of findHashLockSpends(rawTx)) {
    if (!equalBytes(spend.signer, m.sellerKey)) continue;
    for (const l of spend.locks) {
      const idx = byHash.get(toHex(l.hash));
      if (idx !== undefined && l.preimage.length === 32) keys.set(idx, l.preimage);
    }
  }
  return keys;
}

/** Txid (display hex) of a raw transaction, witness or not. Throws on undecodable bytes. */
export function txidOf(rawTx: Uint8Array): string {
  const tx = RawTx.decode(rawTx);
  const stripped = RawTx.encode({ ...tx, segwitFlag: false, witnesses: undefined });
  return toHex(sha256(sha256(stripped)).reverse());
}

/**
 * Virtual size one pledge adds to a claim with `unsampled` hash-locked keys: 41 bytes of
 * input plus the witness (count, 64-byte sig, keys, leaf script, 65-byte control block).
 * 491.25 vB for 24 keys. Use it to set the minimum pledge: minPledge >> claimInputVbytes * feerate.
 */
export function claimInputVbytes(unsampled: number): number {
  const leafLen = 35 * unsampled + 34;
  const varint = (n: number): number => (n < 253 ? 1 : 3);
  const witness = varint(unsampled + 3) + 65 + 33 * unsampled + varint(leafLen) + leafLen + 66;
  return (41 * 4 + witness) / 4;
}

/** Encodes a CLTV/CSV number as a script push would (for docs and tests). */
export function scriptNumBytes(n: number): Uint8Array {
  return ScriptNum().encode(BigInt(n));
}

/** The tapleaf hash of a tapscript leaf (for docs, tests and the watcher). */
export function leafHash(script: Uint8Array): Uint8Array {
  return tapLeafHash(script, LEAF_VERSION);
}
