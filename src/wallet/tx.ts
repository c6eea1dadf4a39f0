/**
 * Building, signing and checking wallet transactions (version 2, RBF-signalling, taproot
 * key-path inputs) with @scure/btc-signer. Pure: no database, no network.
 *
 * The builder checks its own output: after signing, the measured vsize must equal the planned
 * vsize and inputs - outputs must equal the planned fee, or nothing is returned.
 */
import { Address, OutScript, Script, Transaction } from '@scure/btc-signer';
import { hex } from '@scure/base';
import { randomInt } from 'node:crypto';
import { DeaddropError } from '../util/errors.js';
import { NETWORKS, NETWORK_PARAMS, btcSignerNetwork, type Network } from '../util/network.js';
import { dustThreshold, selectCoins, type OutputSpec } from './coinselect.js';
import type { KeyChain, TaprootKeyInfo, WalletKeys } from './keys.js';

/** nSequence signalling BIP125 replaceability (and enabling nLockTime). */
export const RBF_SEQUENCE = 0xfffffffd;
export const TX_VERSION = 2;
/** Data carried by the one OP_RETURN output every node policy relays. */
export const MAX_STANDARD_DATA = 80;

/** A wallet output that can be spent (a subset of the store's UtxoRow). */
export interface SpendableCoin {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  readonly script: Uint8Array;
  readonly chain: KeyChain;
  readonly index: number;
  /** null while unconfirmed; absent counts as confirmed. Confirmed coins are preferred. */
  readonly height?: number | null;
}

export interface PlanParams {
  readonly candidates: readonly SpendableCoin[];
  readonly required?: readonly SpendableCoin[];
  readonly outputs: readonly OutputSpec[];
  readonly feeRate: number;
  readonly maxFeeRate: number;
  /** Where change goes (a wallet change key, or any script with `changeScript`). */
  readonly change: TaprootKeyInfo;
  readonly lockTime?: number;
  /** Minimum absolute fee for a vsize (RBF replacements). */
  readonly minFee?: (vsize: number) => bigint;
  /** 'random' (default, for privacy) or 'last'. */
  readonly changePosition?: 'random' | 'last';
}

/** Everything needed to build the transaction, decided before any signing. */
export interface TxPlan {
  readonly inputs: readonly SpendableCoin[];
  /** Final output order, change included. */
  readonly outputs: readonly OutputSpec[];
  /** Index of the change output, or -1. */
  readonly changeIndex: number;
  readonly change: TaprootKeyInfo | null;
  readonly fee: bigint;
  readonly vsize: number;
  readonly lockTime: number;
}

/** A signed, checked transaction. */
export interface BuiltTx {
  readonly txid: string;
  readonly raw: Uint8Array;
  readonly vsize: number;
  readonly weight: number;
  readonly fee: bigint;
  readonly changeIndex: number;
  readonly plan: TxPlan;
}

/** The OP_RETURN output carrying `data` (amount 0). Up to 80 bytes unless `maxBytes` says otherwise. */
export function dataOutput(data: Uint8Array, opts: { maxBytes?: number } = {}): OutputSpec {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  const max = opts.maxBytes ?? MAX_STANDARD_DATA;
  if (data.length > max) throw DeaddropError.badInput(`OP_RETURN data is ${data.length} bytes; at most ${max} relay everywhere`);
  return { script: Script.encode(['RETURN', data]), amount: 0n };
}

function isDataScript(script: Uint8Array): boolean {
  return script[0] === 0x6a;
}

/**
 * Checks outputs against standard policy: no dust, one OP_RETURN of value 0 with a single
 * push of at most 80 bytes (unless `allowNonStandardData`). BAD_INPUT otherwise.
 */
export function validateOutputs(outputs: readonly OutputSpec[], opts: { allowNonStandardData?: boolean } = {}): void {
  if (outputs.length === 0) throw DeaddropError.badInput('a transaction needs at least one output');
  let data = 0;
  for (const [i, o] of outputs.entries()) {
    if (!(o.script instanceof Uint8Array) || typeof o.amount !== 'bigint') throw new TypeError(`output ${i} must be { script: Uint8Array, amount: bigint }`);
    if (o.amount < 0n || o.amount > 2_100_000_000_000_000n) throw DeaddropError.badInput(`output ${i}: amount out of range`);
    if (isDataScript(o.script)) {
      data++;
      if (o.amount !== 0n) throw DeaddropError.badInput(`output ${i}: an OP_RETURN output must have amount 0`);
      if (!opts.allowNonStandardData) checkStandardData(o.script, i);
      continue;
    }
    const dust = dustThreshold(o.script);
    if (o.amount < dust) throw DeaddropError.badInput(`output ${i}: ${o.amount} sat is below the dust limit of ${dust} sat`, { dust: dust.toString() });
  }
  if (data > 1 && !opts.allowNonStandardData) throw DeaddropError.badInput('at most one OP_RETURN output relays on every node');
}

function checkStandardData(script: Uint8Array, i: number): void {
  let pushes: unknown[];
  try {
    pushes = Script.decode(script).slice(1);
  } catch {
    throw DeaddropError.badInput(`output ${i}: malformed OP_RETURN script`);
  }
  const ok = pushes.length <= 1 && pushes.every((op) => op instanceof Uint8Array && op.length <= MAX_STANDARD_DATA);
  if (!ok || script.length > MAX_STANDARD_DATA + 3) throw DeaddropError.badInput(`output ${i}: OP_RETURN must be one push of at most ${MAX_STANDARD_DATA} bytes`);
}

/**
 * The output script for `address` on `network`. BAD_ADDRESS for malformed addresses, addresses
 * of another network, and silent-payment addresses (those need the silent-payment sender).
 */
export function addressToScript(address: string, network: Network): Uint8Array {
  if (typeof address !== 'string' || address.length === 0 || address.length > 120) throw DeaddropError.badAddress('malformed address');
  const lower = address.toLowerCase();
  const spHrps = new Set(NETWORKS.map((n) => NETWORK_PARAMS[n].silentPaymentHrp));
  const sp = lower.split('1')[0] ?? '';
  if (spHrps.has(sp)) throw DeaddropError.badAddress('this is a silent-payment address: send to it with the silent-payment sender');
  try {
    return OutScript.encode(Address(btcSignerNetwork(network)).decode(address));
  } catch {
    for (const other of NETWORKS) {
      if (other === network) continue;
      try {
        Address(btcSignerNetwork(other)).decode(address);
        throw DeaddropError.badAddress(`address ${address} is for ${other}; this wallet is on ${network}`);
      } catch (err) {
        if (err instanceof DeaddropError) throw err;
      }
    }
    throw DeaddropError.badAddress(`malformed address ${JSON.stringify(address.slice(0, 100))}`);
  }
}

/** Chooses inputs, change and output order. Validation of outputs and fee rate is the caller's. */
export function planTx(p: PlanParams): TxPlan {
  // Confirmed coins first: spending unconfirmed change lengthens chains the node limits.
  const confirmed = p.candidates.filter((c) => c.height !== null);
  if (confirmed.length > 0 && confirmed.length < p.candidates.length) {
    try {
      return planWith(p, confirmed);
    } catch (err) {
      if (!(err instanceof DeaddropError && err.code === 'INSUFFICIENT_FUNDS')) throw err;
    }
  }
  return planWith(p, p.candidates);
}

function planWith(p: PlanParams, candidates: readonly SpendableCoin[]): TxPlan {
  const sel = selectCoins({
    candidates,
    required: p.required ?? [],
    outputs: p.outputs,
    feeRate: p.feeRate,
    maxFeeRate: p.maxFeeRate,
    changeScriptLength: p.change.script.length,
    ...(p.minFee !== undefined ? { minFee: p.minFee } : {}),
  });
  const outputs = [...p.outputs];
  let changeIndex = -1;
  if (sel.change > 0n) {
    changeIndex = p.changePosition === 'last' ? outputs.length : randomInt(outputs.length + 1);
    outputs.splice(changeIndex, 0, { script: p.change.script, amount: sel.change });
  }
  return {
    inputs: sel.inputs, outputs, changeIndex, change: changeIndex >= 0 ? p.change : null,
    fee: sel.fee, vsize: sel.vsize, lockTime: p.lockTime ?? 0,
  };
}

/** The unsigned transaction of a plan, with BIP371 taproot derivation records (a valid PSBT). */
export function buildUnsigned(plan: TxPlan, keys: WalletKeys): Transaction {
  const tx = new Transaction({ version: TX_VERSION, lockTime: plan.lockTime, allowUnknownOutputs: true });
  for (const c of plan.inputs) {
    const k = keys.taprootKey(c.chain, c.index);
    if (hex.encode(k.script) !== hex.encode(c.script)) throw new Error(`coin ${c.txid}:${c.vout} does not pay key ${k.path}`);
    tx.addInput({
      txid: c.txid, index: c.vout, sequence: RBF_SEQUENCE,
      witnessUtxo: { script: c.script, amount: c.value },
      tapInternalKey: k.internalKey,
      tapBip32Derivation: [[k.internalKey, { hashes: [], der: { fingerprint: keys.fingerprint, path: [...k.pathIndexes] } }]],
    });
  }
  plan.outputs.forEach((o, i) => {
    const change = i === plan.changeIndex && plan.change;
    tx.addOutput({
      script: o.script, amount: o.amount,
      ...(change ? {
        tapInternalKey: change.internalKey,
        tapBip32Derivation: [[change.internalKey, { hashes: [], der: { fingerprint: keys.fingerprint, path: [...change.pathIndexes] } }]],
      } : {}),
    });
  });
  return tx;
}

/** Signs every input of a plan's transaction with the wallet keys (key path, SIGHASH_DEFAULT). */
export function signPlan(tx: Transaction, plan: TxPlan, keys: WalletKeys): void {
  plan.inputs.forEach((c, i) => {
    const priv = keys.taprootPrivateKey(c.chain, c.index);
    try {
      if (!tx.signIdx(priv, i)) throw new Error(`input ${i} was not signed`);
    } finally {
      priv.fill(0);
    }
  });
}

/** Finalizes and extracts, then checks the result against the plan (vsize, fee, outputs). */
export function finishTx(tx: Transaction, plan: TxPlan): BuiltTx {
  tx.finalize();
  const raw = tx.extract();
  if (tx.vsize !== plan.vsize) throw new Error(`built tx vsize ${tx.vsize} differs from the planned ${plan.vsize}`);
  if (tx.fee !== plan.fee) throw new Error(`built tx fee ${tx.fee} differs from the planned ${plan.fee}`);
  return { txid: tx.id, raw, vsize: tx.vsize, weight: tx.weight, fee: tx.fee, changeIndex: plan.changeIndex, plan };
}

/** Plan → unsigned → signed → checked. */
export function buildSigned(plan: TxPlan, keys: WalletKeys): BuiltTx {
  const tx = buildUnsigned(plan, keys);
  signPlan(tx, plan, keys);
  return finishTx(tx, plan);
}
