/**
 * PSBT helpers (BIP174/BIP371) over @scure/btc-signer, for external signers and back:
 * parse/serialize base64, sign with the wallet keys, finalize and extract with the fee-rate cap
 * enforced on whatever comes back. Pure; the wallet adds coin selection and broadcasting.
 */
import { Transaction } from '@scure/btc-signer';
import { base64 } from '@scure/base';
import { DeaddropError } from '../util/errors.js';
import type { WalletKeys } from './keys.js';

/** Parsed PSBTs allow OP_RETURN outputs (dead drops) like the builder does. */
const PSBT_OPTS = { allowUnknownOutputs: true } as const;

/** Serializes a (partially signed) transaction as base64 PSBT (v0). */
export function psbtToBase64(tx: Transaction): string {
  return base64.encode(tx.toPSBT(0));
}

/** Parses a base64 PSBT. BAD_INPUT when it is not one. */
export function psbtFromBase64(psbt: string): Transaction {
  if (typeof psbt !== 'string' || psbt.length === 0) throw DeaddropError.badInput('PSBT must be a non-empty base64 string');
  let bytes: Uint8Array;
  try {
    bytes = base64.decode(psbt.trim());
  } catch {
    throw DeaddropError.badInput('PSBT is not valid base64');
  }
  try {
    return Transaction.fromPSBT(bytes, PSBT_OPTS);
  } catch (err) {
    throw DeaddropError.badInput(`not a valid PSBT: ${(err as Error).message}`);
  }
}

/**
 * Signs the inputs whose derivation records name this wallet's fingerprint. Returns the
 * updated PSBT and how many inputs were signed (0 means none were ours).
 */
export function psbtSign(psbt: string, keys: WalletKeys): { psbt: string; signed: number } {
  const tx = psbtFromBase64(psbt);
  let signed: number;
  try {
    signed = keys.signPsbtTransaction(tx);
  } catch (err) {
    throw DeaddropError.badInput(`cannot sign PSBT: ${(err as Error).message}`);
  }
  return { psbt: psbtToBase64(tx), signed };
}

/** A finalized transaction extracted from a PSBT. */
export interface FinalizedPsbt {
  readonly txid: string;
  readonly raw: Uint8Array;
  readonly vsize: number;
  readonly fee: bigint;
  /** Effective fee rate in sat/vB. */
  readonly feeRate: number;
  readonly tx: Transaction;
}

/**
 * Finalizes every input and extracts the network transaction. BAD_INPUT when an input is
 * unsigned or lacks its prevout; FEE_TOO_HIGH when the effective fee rate exceeds `maxFeeRate`.
 */
export function psbtFinalize(psbt: string, opts: { maxFeeRate: number }): FinalizedPsbt {
  const tx = psbtFromBase64(psbt);
  // A well-formed PSBT can still describe no transaction at all; extract() would throw a plain Error.
  if (tx.inputsLength === 0) throw DeaddropError.badInput('the PSBT has no inputs');
  if (tx.outputsLength === 0) throw DeaddropError.badInput('the PSBT has no outputs');
  try {
    tx.finalize();
  } catch (err) {
    throw DeaddropError.badInput(`cannot finalize PSBT (missing signatures?): ${(err as Error).message}`);
  }
  let fee: bigint;
  try {
    fee = tx.fee;
  } catch {
    throw DeaddropError.badInput('PSBT inputs lack their previous outputs: the fee cannot be checked');
  }
  const raw = tx.extract();
  const vsize = tx.vsize;
  const feeRate = Number(fee) / vsize;
  if (fee < 0n) throw DeaddropError.badInput('PSBT outputs exceed its inputs');
  if (feeRate > opts.maxFeeRate) throw DeaddropError.feeTooHigh(Math.round(feeRate * 100) / 100, opts.maxFeeRate);
  return { txid: tx.id, raw, vsize, fee, feeRate, tx };
}
