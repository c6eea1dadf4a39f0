/**
 * Sending a dead drop from the wallet: fund from the wallet's taproot (BIP86 key-path) coins,
 * add the OP_RETURN envelope (and optionally the 330-sat BIP352 k = 0 output), sign, check,
 * broadcast, and report {txid, vsize, fee}.
 *
 * The envelope key depends on the inputs (BIP352: input_hash over the smallest outpoint and the
 * sum of the input private keys), so the inputs are chosen first and the outputs filled in
 * after: coin selection runs over same-sized placeholder outputs (an 80-byte OP_RETURN and a
 * P2TR script), then the placeholders are replaced by the real scripts. The sizes are equal by
 * construction, so the fee planned is the fee paid, and the wallet's builder re-checks both.
 */
import { DeaddropError } from '../util/errors.js';
import { scalar, secp } from '../util/secp.js';
import type { Network } from '../util/network.js';
import type { BroadcastResult } from '../chain/types.js';
import { knownDataProtocol } from '../chain/op-return-scan.js';
import type { TaprootKeyInfo, WalletKeys } from '../wallet/keys.js';
import { buildSigned, planTx, validateOutputs, type BuiltTx, type SpendableCoin, type TxPlan } from '../wallet/tx.js';
import { checkFeeRate, type OutputSpec } from '../wallet/coinselect.js';
import { explainShortfall, type HeldBack } from '../wallet/chain-policy.js';
import { outpointFromHex, type SilentPaymentAddress } from './bip352.js';
import type { DropPayloadInput } from './codec.js';
import { dropScript, ENVELOPE_MAX_BYTES } from './envelope.js';
import { taggedHash } from '../util/hash.js';
import { buildDrop, NOTIFY_OUTPUT_VALUE, type DropInput } from './scan.js';

/** Default cap on the fee rate of a drop (sat/vB). */
export const DEFAULT_MAX_DROP_FEE_RATE = 1000;

/** What to send. */
export interface DropSendParams {
  /** The recipient's silent-payment address (decoded or bech32m). */
  readonly recipient: SilentPaymentAddress | string;
  readonly payload: DropPayloadInput;
  /** sat/vB. */
  readonly feeRate: number;
  /** Cap on the effective fee rate. Default {@link DEFAULT_MAX_DROP_FEE_RATE}. */
  readonly maxFeeRate?: number;
  /** Also pay BIP352 output k = 0 (330 sat P2TR) so silent-payment wallets see the drop. */
  readonly notifyOutput?: boolean;
  /** Envelope length 52..80; default 80 so every drop looks the same size. */
  readonly envelopeLength?: number;
}

/** Wallet material for one drop: spendable taproot coins, a change key and the signing keys. */
export interface DropFunding {
  readonly network: Network;
  readonly keys: WalletKeys;
  readonly coins: readonly SpendableCoin[];
  readonly change: TaprootKeyInfo;
  /** The wallet's own fee-rate cap (sat/vB); the lower of it and the drop's cap applies. */
  readonly maxFeeRate?: number;
  /** Coins left out because the node's unconfirmed-chain limits forbid spending them now. */
  readonly heldBack?: HeldBack | null;
}

/** A signed drop transaction. */
export interface DropTx {
  readonly txid: string;
  readonly raw: Uint8Array;
  readonly vsize: number;
  readonly fee: bigint;
  /** Output index of the OP_RETURN envelope. */
  readonly opReturnVout: number;
  /** Output index of the notify output, or -1. */
  readonly notifyVout: number;
  /** The wallet builder's result (plan, change index), for the wallet to record. */
  readonly built: BuiltTx;
}

/**
 * BIP341 taproot_tweak_seckey for a BIP86 key (no script tree): the private key of the output
 * key, which is what BIP352 sums for a P2TR input. Secret in, secret out.
 */
export function bip86OutputPrivateKey(internalPrivateKey: Uint8Array): Uint8Array {
  const P = secp.pointFromScalar(internalPrivateKey);
  if (P === null) throw DeaddropError.badInput('invalid taproot private key');
  const d = P[0] === 0x03 ? scalar.negate(internalPrivateKey) : internalPrivateKey;
  const t = taggedHash('TapTweak', P.subarray(1));
  const tweaked = d === null || !scalar.isValid(t) ? null : scalar.add(d, t);
  if (tweaked === null) throw DeaddropError.badInput('taproot tweak failed');
  return tweaked;
}

const P2TR_PLACEHOLDER = Uint8Array.from([0x51, 0x20, ...new Uint8Array(32)]);

/** Inputs of a plan with their tweaked private keys (for the envelope). Wipe them after use. */
function dropInputs(plan: TxPlan, keys: WalletKeys): DropInput[] {
  return plan.inputs.map((c) => {
    const internal = keys.taprootPrivateKey(c.chain, c.index);
    try {
      return { outpoint: outpointFromHex(c.txid, c.vout), prevoutScript: c.script, privateKey: bip86OutputPrivateKey(internal) };
    } finally {
      internal.fill(0);
    }
  });
}

/**
 * Plans, fills in and signs a drop transaction. Pure (no network). Throws BAD_INPUT,
 * BAD_ADDRESS, INSUFFICIENT_FUNDS or FEE_TOO_HIGH.
 */
export function buildDropTx(funding: DropFunding, params: DropSendParams): DropTx {
  // The cap first: a rate above it is its own error, whatever the coins could afford.
  const maxFeeRate = Math.min(params.maxFeeRate ?? DEFAULT_MAX_DROP_FEE_RATE, funding.maxFeeRate ?? Infinity);
  checkFeeRate(params.feeRate, maxFeeRate);
  const length = params.envelopeLength ?? ENVELOPE_MAX_BYTES;
  const opPlaceholder: OutputSpec = { script: dropScript(new Uint8Array(length)), amount: 0n };
  const notifyPlaceholder: OutputSpec | null = params.notifyOutput ? { script: P2TR_PLACEHOLDER, amount: NOTIFY_OUTPUT_VALUE } : null;
  const outputs = notifyPlaceholder ? [opPlaceholder, notifyPlaceholder] : [opPlaceholder];
  validateOutputs(outputs);
  let plan: TxPlan;
  try {
    plan = planTx({ candidates: funding.coins, outputs, feeRate: params.feeRate, maxFeeRate, change: funding.change });
  } catch (err) {
    throw explainShortfall(err, funding.heldBack ?? null);
  }
  const inputs = dropInputs(plan, funding.keys);
  let drop;
  try {
    drop = buildDrop({ inputs, recipient: params.recipient, network: funding.network, payload: params.payload, envelopeLength: length, notifyOutput: params.notifyOutput === true });
  } finally {
    for (const i of inputs) i.privateKey?.fill(0);
  }
  // A scanner skips OP_RETURNs starting with another protocol's magic (probability ~2^-30).
  if (knownDataProtocol(drop.envelope) !== undefined) throw DeaddropError.badInput('the envelope collides with another protocol\'s marker: retry with a fresh token');
  const opReturnVout = plan.outputs.indexOf(opPlaceholder);
  const notifyVout = notifyPlaceholder ? plan.outputs.indexOf(notifyPlaceholder) : -1;
  const filled: TxPlan = {
    ...plan,
    outputs: plan.outputs.map((o, i) =>
      i === opReturnVout ? { script: drop.opReturnScript, amount: 0n } : i === notifyVout ? { script: drop.notifyOutputScript!, amount: NOTIFY_OUTPUT_VALUE } : o),
  };
  const built = buildSigned(filled, funding.keys);
  return { txid: built.txid, raw: built.raw, vsize: built.vsize, fee: built.fee, opReturnVout, notifyVout, built };
}

/**
 * The wallet hook {@link sendDrop} needs: coins and a change key to fund with, and a broadcast
 * that also records the transaction (so its coins count as spent). `Wallet` (src/wallet/wallet.ts)
 * implements it with `fundingForDrop()` and `broadcastOwn()`.
 */
export interface DropWallet {
  /** Spendable coins, a fresh change key and the signing keys. */
  fundingForDrop(): Promise<DropFunding>;
  /** Broadcasts and, when accepted, records the transaction as the wallet's own. */
  broadcastOwn(built: BuiltTx): Promise<BroadcastResult>;
}

/** Result of {@link sendDrop}: what `deaddrop drop send` prints. */
export interface DropSendResult {
  readonly txid: string;
  readonly vsize: number;
  /** sat. */
  readonly fee: bigint;
  readonly opReturnVout: number;
  readonly notifyVout: number;
}

/** Drops sent through one wallet, in order: funding is read before the broadcast records it. */
const queues = new WeakMap<DropWallet, Promise<unknown>>();

/**
 * Builds and broadcasts a drop; prints nothing, returns {txid, vsize, fee}. `beforeBroadcast`
 * sees the signed transaction before it leaves (to record its txid). Calls for the same
 * wallet run one after the other so two drops never pick the same coins. REJECTED with the
 * node's reason if the node refuses the transaction.
 * @example
 * const { txid, vsize, fee } = await sendDrop(wallet, { recipient: 'sprt1q...', payload, feeRate: 2 });
 */
export function sendDrop(wallet: DropWallet, params: DropSendParams, hooks: { beforeBroadcast?: (tx: DropTx) => void } = {}): Promise<DropSendResult> {
  const run = async (): Promise<DropSendResult> => {
    const tx = buildDropTx(await wallet.fundingForDrop(), params);
    hooks.beforeBroadcast?.(tx);
    const res = await wallet.broadcastOwn(tx.built);
    if (!res.accepted) throw new DeaddropError('REJECTED', `node rejected the drop transaction: ${res.reason}`, { code: res.code });
    return { txid: tx.txid, vsize: tx.vsize, fee: tx.fee, opReturnVout: tx.opReturnVout, notifyVout: tx.notifyVout };
  };
  const prev = queues.get(wallet) ?? Promise.resolve();
  const next = prev.then(run, run);
  queues.set(wallet, next.catch(() => undefined));
  return next;
}
