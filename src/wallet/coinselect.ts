/**
 * Coin selection and exact transaction sizing for a wallet whose inputs are all BIP86 taproot
 * key-path spends. A key-path witness is always one 64-byte signature (SIGHASH_DEFAULT), so
 * weights are exact, not estimates: the vsize computed here is the vsize of the signed tx,
 * and the fee is ceil(feeRate * vsize).
 *
 * Strategy: branch-and-bound for a changeless set (excess below the cost of a change output),
 * else largest-first with change. Change below the dust limit is never made: the remainder goes
 * to the fee, but only while the effective fee rate stays under the cap.
 *
 * Fee rates are handled as integer milli-sat/vB so there is no floating-point rounding.
 */
import { DeaddropError } from '../util/errors.js';

/** P2TR output script length (OP_1 PUSH32 <key>). */
export const P2TR_SCRIPT_LEN = 34;
/** Dust limit of a P2TR output at the default 3 sat/vB dust relay fee. */
export const P2TR_DUST = 330n;
/** Non-witness bytes of one input: outpoint 36 + empty scriptSig length 1 + sequence 4. */
const INPUT_BASE_BYTES = 41;
/** Key-path witness: item count 1 + length 1 + 64-byte Schnorr signature. */
const KEYPATH_WITNESS_BYTES = 66;
/** Weight of one key-path input (230 WU = 57.5 vB). */
export const KEYPATH_INPUT_WEIGHT = INPUT_BASE_BYTES * 4 + KEYPATH_WITNESS_BYTES;
/** Search budget of branch-and-bound. */
const BNB_MAX_TRIES = 100_000;
/** Above this many coins the (recursive) search is skipped for largest-first. */
const BNB_MAX_COINS = 2_000;

/** Anything selectable: a value plus whatever the caller needs back. */
export interface Coin {
  readonly value: bigint;
}

export interface OutputSpec {
  readonly script: Uint8Array;
  readonly amount: bigint;
}

export interface SelectParams<C extends Coin> {
  /** Inputs that must be spent (RBF replacement). */
  readonly required?: readonly C[];
  /** Inputs that may be added. */
  readonly candidates: readonly C[];
  readonly outputs: readonly OutputSpec[];
  /** sat/vB. */
  readonly feeRate: number;
  /** sat/vB; the effective rate of the result never exceeds it. */
  readonly maxFeeRate: number;
  /** Script length of the change output (default P2TR). */
  readonly changeScriptLength?: number;
  /** Smallest change output made (default P2TR dust, 330 sat). */
  readonly changeDust?: bigint;
  /** Minimum absolute fee for a given vsize (BIP125 replacement rules 3 and 4). */
  readonly minFee?: (vsize: number) => bigint;
}

export interface Selection<C extends Coin> {
  readonly inputs: readonly C[];
  /** 0n when there is no change output. */
  readonly change: bigint;
  readonly fee: bigint;
  readonly vsize: number;
  readonly weight: number;
}

/** Length of a Bitcoin CompactSize. */
export function varintLength(n: number): number {
  return n < 0xfd ? 1 : n <= 0xffff ? 3 : n <= 0xffffffff ? 5 : 9;
}

/** Exact weight of a segwit tx spending `nInputs` key-path inputs to outputs with these script lengths. */
export function txWeight(nInputs: number, outputScriptLengths: readonly number[]): number {
  let base = 4 + varintLength(nInputs) + nInputs * INPUT_BASE_BYTES + varintLength(outputScriptLengths.length) + 4;
  for (const len of outputScriptLengths) base += 8 + varintLength(len) + len;
  return base * 4 + 2 + nInputs * KEYPATH_WITNESS_BYTES;
}

/** Virtual size: ceil(weight / 4). */
export function vsizeOf(weight: number): number {
  return Math.ceil(weight / 4);
}

/** Fee rate as integer milli-sat/vB. */
export function rateMilli(feeRate: number): bigint {
  return BigInt(Math.round(feeRate * 1000));
}

/** ceil(feeRate * vsize) in sat. */
export function feeFor(feeRate: number, vsize: number): bigint {
  const m = rateMilli(feeRate) * BigInt(vsize);
  return (m + 999n) / 1000n;
}

/** Largest fee whose rate over `vsize` stays at or below `cap` (ceil, matching feeFor at the cap). */
function capFee(cap: number, vsize: number): bigint {
  return feeFor(cap, vsize);
}

/**
 * Validates a fee rate: a finite number >= 1 sat/vB and <= cap. FEE_TOO_HIGH above the cap,
 * BAD_INPUT below 1 sat/vB.
 */
export function checkFeeRate(feeRate: number, cap: number): void {
  if (typeof feeRate !== 'number' || !Number.isFinite(feeRate)) throw DeaddropError.badInput(`fee rate must be a number of sat/vB; got ${String(feeRate)}`);
  if (feeRate < 1) throw DeaddropError.badInput(`fee rate ${feeRate} sat/vB is below the 1 sat/vB minimum relay fee`);
  if (feeRate > cap) throw DeaddropError.feeTooHigh(feeRate, cap);
}

/**
 * Dust threshold of an output script at the default 3 sat/vB dust relay fee, as Bitcoin Core
 * computes it: 3 * (output size + size of the input that would spend it). 0 for OP_RETURN.
 */
export function dustThreshold(script: Uint8Array): bigint {
  if (script[0] === 0x6a) return 0n;
  const outSize = 8 + varintLength(script.length) + script.length;
  const v = script[0]!;
  const isWitness = script.length >= 4 && script.length <= 42 && (v === 0 || (v >= 0x51 && v <= 0x60)) && script[1] === script.length - 2;
  return BigInt(3 * (outSize + (isWitness ? 67 : 148)));
}

/**
 * Picks inputs (and change) for `outputs` at `feeRate`. INSUFFICIENT_FUNDS when the coins
 * cannot pay outputs plus fee. Fee-rate validation is the caller's (checkFeeRate).
 */
export function selectCoins<C extends Coin>(p: SelectParams<C>): Selection<C> {
  const required = p.required ?? [];
  const outLens = p.outputs.map((o) => o.script.length);
  const amount = p.outputs.reduce((s, o) => s + o.amount, 0n);
  const changeLen = p.changeScriptLength ?? P2TR_SCRIPT_LEN;
  const changeDust = p.changeDust ?? P2TR_DUST;
  const minFee = p.minFee ?? ((): bigint => 0n);
  const spendCost = feeFor(p.feeRate, Math.ceil(KEYPATH_INPUT_WEIGHT / 4));
  // Coins that cost more to spend than they are worth are left out.
  const useful = p.candidates.filter((c) => c.value > spendCost).sort((a, b) => (a.value === b.value ? 0 : a.value > b.value ? -1 : 1));

  const evaluate = (inputs: readonly C[]): Selection<C> | 'more' => {
    const sum = inputs.reduce((s, c) => s + c.value, 0n);
    const n = inputs.length;
    if (n === 0) return 'more';
    const wC = txWeight(n, [...outLens, changeLen]);
    const fC = maxBig(feeFor(p.feeRate, vsizeOf(wC)), minFee(vsizeOf(wC)));
    if (sum - amount - fC >= changeDust) return { inputs, change: sum - amount - fC, fee: fC, vsize: vsizeOf(wC), weight: wC };
    const wN = txWeight(n, outLens);
    const fN = maxBig(feeFor(p.feeRate, vsizeOf(wN)), minFee(vsizeOf(wN)));
    const excess = sum - amount;
    if (excess >= fN && excess <= maxBig(capFee(p.maxFeeRate, vsizeOf(wN)), fN)) {
      return { inputs, change: 0n, fee: excess, vsize: vsizeOf(wN), weight: wN };
    }
    return 'more';
  };

  const bnb = branchAndBound(p, required, useful, amount, outLens, changeLen, minFee);
  if (bnb) return bnb;

  const chosen: C[] = [...required];
  for (let i = 0; ; i++) {
    const r = evaluate(chosen);
    if (r !== 'more') return r;
    const next = useful[i];
    if (!next) break;
    chosen.push(next);
  }
  const all = [...required, ...p.candidates];
  const available = all.reduce((s, c) => s + c.value, 0n);
  const vNeeded = vsizeOf(txWeight(Math.max(1, chosen.length), outLens));
  const needed = amount + maxBig(feeFor(p.feeRate, vNeeded), minFee(vNeeded));
  throw DeaddropError.insufficientFunds(needed, available);
}

function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/**
 * Depth-first search (largest first) for an input set whose excess over outputs + fee is at
 * most the cost of a change output (making and later spending it), so no change is needed.
 */
function branchAndBound<C extends Coin>(
  p: SelectParams<C>, required: readonly C[], coins: readonly C[], amount: bigint, outLens: number[], changeLen: number,
  minFee: (vsize: number) => bigint,
): Selection<C> | null {
  if (coins.length === 0 || coins.length > BNB_MAX_COINS) return null;
  const changeOutVsize = 8 + varintLength(changeLen) + changeLen;
  const costOfChange = feeFor(p.feeRate, changeOutVsize) + feeFor(p.feeRate, Math.ceil(KEYPATH_INPUT_WEIGHT / 4));
  const inFee = (n: number): bigint => {
    const v = vsizeOf(txWeight(n, outLens));
    return maxBig(feeFor(p.feeRate, v), minFee(v));
  };
  const reqSum = required.reduce((s, c) => s + c.value, 0n);
  // Suffix sums bound what the remaining coins can add.
  const suffix: bigint[] = new Array<bigint>(coins.length + 1).fill(0n);
  for (let i = coins.length - 1; i >= 0; i--) suffix[i] = suffix[i + 1]! + coins[i]!.value;
  const picked: C[] = [];
  let tries = 0;
  let found: Selection<C> | null = null;

  const visit = (i: number, sum: bigint): boolean => {
    if (++tries > BNB_MAX_TRIES) return true;
    const n = required.length + picked.length;
    if (n > 0) {
      const fee = inFee(n);
      const excess = sum - amount - fee;
      if (excess >= 0n) {
        if (excess <= costOfChange && sum - amount <= maxBig(capFee(p.maxFeeRate, vsizeOf(txWeight(n, outLens))), fee)) {
          const w = txWeight(n, outLens);
          found = { inputs: [...required, ...picked], change: 0n, fee: sum - amount, vsize: vsizeOf(w), weight: w };
          return true;
        }
        return false; // overshoot: adding more only grows the excess
      }
    }
    if (i >= coins.length || sum + suffix[i]! < amount + inFee(n + 1)) return false;
    picked.push(coins[i]!);
    if (visit(i + 1, sum + coins[i]!.value)) return true;
    picked.pop();
    return visit(i + 1, sum);
  };
  visit(0, reqSum);
  return found;
}
