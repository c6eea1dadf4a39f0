/**
 * Fee bumping (BIP125 replace-by-fee) as a pure planner beside `planTx`: given the stored
 * transaction, the wallet's view of its coins, the fee rate and the policy limits, it decides
 * whether the transaction may be replaced and plans the replacement. It reads nothing and
 * writes nothing; `Wallet.bump` feeds it from the store, then signs and broadcasts the plan.
 *
 * The replacement keeps every recipient output, spends every original input again (so it
 * conflicts with the original), takes the fee from the change first and adds confirmed coins
 * only when the change cannot cover it, and pays at least the old fee plus the incremental
 * relay fee for its own size (BIP125 rules 3 and 4).
 */
import { DeaddropError } from '../util/errors.js';
import { parseTransaction } from '../chain/block.js';
import { checkFeeRate } from './coinselect.js';
import { CHANGE, type TaprootKeyInfo } from './keys.js';
import type { TxRow, UtxoRow } from './store.js';
import { planTx, RBF_SEQUENCE, validateOutputs, type SpendableCoin, type TxPlan } from './tx.js';

/** Bitcoin Core's default incremental relay fee, sat/vB (BIP125 rule 4). */
export const INCREMENTAL_RELAY_FEE = 1;

/** Everything the bump planner looks at. */
export interface BumpRequest {
  /** The transaction to replace. */
  readonly txid: string;
  /** Its stored row, if the wallet knows it. */
  readonly row: TxRow | undefined;
  /** The wallet's coin at an outpoint (spent or not), if it has one. */
  readonly utxo: (txid: string, vout: number) => UtxoRow | undefined;
  /** The wallet's coins created by `txid`: a spent one means the tx has descendants. */
  readonly outputsOf: readonly UtxoRow[];
  /** Confirmed spendable coins, for extra inputs (BIP125 rule 2: no new unconfirmed inputs). */
  readonly candidates: readonly SpendableCoin[];
  /** The wallet's key for a script it owns (receive or change), else undefined. */
  readonly ownKey: (script: Uint8Array) => TaprootKeyInfo | undefined;
  /** Change key to use when the original has no wallet change output. */
  readonly freshChange: TaprootKeyInfo;
  readonly feeRate: number;
  readonly maxFeeRate: number;
  readonly lockTime: number;
  /** Default {@link INCREMENTAL_RELAY_FEE}. */
  readonly incrementalRelayFee?: number;
}

/**
 * Plans the replacement of a pending wallet transaction at `feeRate`.
 * @throws NOT_FOUND (not a wallet tx), CONFLICT (confirmed, not pending, or has descendants),
 *   BAD_INPUT (foreign inputs, no RBF signal, fee rate not above the current one),
 *   INSUFFICIENT_FUNDS (the change and confirmed coins cannot pay the new fee).
 * @example
 * const plan = planBump({ txid, row: store.tx(txid), utxo, outputsOf, candidates, ownKey, freshChange, feeRate: 5, maxFeeRate: 1000, lockTime });
 */
export function planBump(req: BumpRequest): TxPlan {
  const { txid, row, feeRate } = req;
  checkFeeRate(feeRate, req.maxFeeRate);
  if (!row) throw DeaddropError.notFound(`transaction ${txid} is not a wallet transaction`);
  if (row.height !== null || row.status === 'confirmed') throw new DeaddropError('CONFLICT', `transaction ${txid} is already confirmed`);
  if (row.status !== 'pending') throw new DeaddropError('CONFLICT', `transaction ${txid} is ${row.status}`);
  const parsed = parseTransaction(row.raw);
  const inputs = parsed.inputs.map((i) => req.utxo(i.prevTxidHex, i.vout));
  if (inputs.some((u) => u === undefined || u.spentBy !== txid)) throw DeaddropError.badInput(`transaction ${txid} spends coins that are not this wallet's: it cannot be bumped here`);
  if (!parsed.inputs.some((i) => i.sequence <= RBF_SEQUENCE)) throw DeaddropError.badInput(`transaction ${txid} does not signal replaceability (BIP125)`);
  if (req.outputsOf.some((u) => u.spentBy !== null)) throw new DeaddropError('CONFLICT', `transaction ${txid} has unconfirmed descendants; bump the newest one instead`);
  const required = inputs as UtxoRow[];
  const inSum = required.reduce((s, u) => s + u.value, 0n);
  const outSum = parsed.outputs.reduce((s, o) => s + o.value, 0n);
  const oldFee = inSum - outSum;
  const oldRate = Number(oldFee) / parsed.vsize;
  if (feeRate <= oldRate) throw DeaddropError.badInput(`fee rate must exceed the current ${oldRate.toFixed(2)} sat/vB`);
  const changeVout = row.changeVout ?? parsed.outputs.findIndex((o) => req.ownKey(o.script)?.chain === CHANGE);
  const outputs = parsed.outputs.filter((_, i) => i !== changeVout).map((o) => ({ script: o.script.slice(), amount: o.value }));
  const oldChange = changeVout >= 0 ? req.ownKey(parsed.outputs[changeVout]!.script) : undefined;
  // The original may pay non-standard data outputs the node accepted: keep them as they are.
  validateOutputs(outputs, { allowNonStandardData: true });
  const incremental = req.incrementalRelayFee ?? INCREMENTAL_RELAY_FEE;
  return planTx({
    candidates: req.candidates, outputs, feeRate, maxFeeRate: req.maxFeeRate, change: oldChange ?? req.freshChange,
    lockTime: req.lockTime, changePosition: 'random', required,
    minFee: (vsize) => oldFee + BigInt(Math.ceil(incremental * vsize)),
  });
}
