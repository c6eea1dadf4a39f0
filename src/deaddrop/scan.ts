/**
 * Both ends of a dead drop as pure functions: the receiver's per-candidate check and the
 * sender's construction of the OP_RETURN (plus the optional BIP352 k = 0 "notify" output).
 * Wallet integration (coin selection, signing, broadcast) lives in src/deaddrop/send.ts.
 *
 * Receiver cost per candidate: one variable-base multiplication (src/util/secp.ts), two
 * tagged hashes, one ChaCha20 block pair and one HMAC. Everything a stranger controls (inputs,
 * tweak data, envelope bytes) yields null when malformed; nothing here throws for it.
 */
import { secp, scalar, type Secp } from '../util/secp.js';
import { DeaddropError } from '../util/errors.js';
import {
  decodeAddress, inputHash, outputKey, receiverSharedSecret, receiverSharedSecretFromTweak, spendsFutureWitnessVersion,
  summarizeInputs, sumPrivateKeys, witnessVersion, type InputSummary, type Outpoint, type SenderKey, type SilentPaymentAddress,
  type TxInputView,
} from './bip352.js';
import { hash160 } from '../util/hash.js';
import { openPayload, sealPayload, dropScript, ENVELOPE_MAX_BYTES } from './envelope.js';
import type { DropPayload, DropPayloadInput } from './codec.js';
import type { Network } from '../util/network.js';
import { equalBytes } from '../util/bytes.js';

/** Value of the optional notify output: the P2TR dust limit. */
export const NOTIFY_OUTPUT_VALUE = 330n;

/** A drop the receiver opened. */
export interface OpenedDrop {
  readonly payload: DropPayload;
  /** ser_P(ecdh_shared_secret). Secret: it decrypts the drop. */
  readonly sharedSecret: Uint8Array;
  /**
   * x-only key of the BIP352 output k = 0 for the given spend key (unlabeled). If the
   * transaction pays it, the drop also carried a 330-sat notify output the wallet can spend
   * with b_spend + t_0. null when no spend key was given.
   */
  readonly notifyOutputKey: Uint8Array | null;
}

/** Receiver key material: b_scan (secret) and optionally B_spend (33-byte compressed). */
export interface ReceiverKeys {
  readonly scanKey: Uint8Array;
  readonly spendKey?: Uint8Array;
}

function opened(keys: ReceiverKeys, ecdh: Uint8Array | null, envelope: Uint8Array, backend: Secp): OpenedDrop | null {
  if (ecdh === null) return null;
  const payload = openPayload(ecdh, envelope);
  if (payload === null) return null;
  const notifyOutputKey = keys.spendKey === undefined ? null : outputKey(ecdh, keys.spendKey, 0, backend);
  return { payload, sharedSecret: ecdh, notifyOutputKey };
}

/**
 * Light-client check: tweak data input_hash·A (33 bytes, e.g. from the public candidate
 * index) and the OP_RETURN push data. The drop, or null.
 */
export function openDropWithTweak(keys: ReceiverKeys, tweak: Uint8Array, envelope: Uint8Array, backend: Secp = secp): OpenedDrop | null {
  return opened(keys, receiverSharedSecretFromTweak(keys.scanKey, tweak, backend), envelope, backend);
}

/** Full-node check from A and input_hash (see summarizeInputs). The drop, or null. */
export function openDropWithSummary(keys: ReceiverKeys, summary: InputSummary, envelope: Uint8Array, backend: Secp = secp): OpenedDrop | null {
  return opened(keys, receiverSharedSecret(keys.scanKey, summary, backend), envelope, backend);
}

/** Full-node check from the transaction's inputs with their prevout scripts. The drop, or null. */
export function openDropFromInputs(
  keys: ReceiverKeys,
  inputs: readonly TxInputView[],
  envelope: Uint8Array,
  backend: Secp = secp,
): OpenedDrop | null {
  const summary = summarizeInputs(inputs, backend);
  return summary === null ? null : openDropWithSummary(keys, summary, envelope, backend);
}

// ---------------------------------------------------------------------------------------------
// Sender

/**
 * One input of the drop transaction. Every input counts for outpoint_L. Inputs spending
 * P2TR (key path), P2WPKH or P2PKH outputs must carry their private key (for P2TR the
 * TWEAKED output key's private key, as BIP86 signing uses). A P2SH input with a key is taken
 * as P2SH-P2WPKH; any other input must not carry one.
 */
export interface DropInput {
  readonly outpoint: Outpoint;
  readonly prevoutScript: Uint8Array;
  readonly privateKey?: Uint8Array;
}

/** What the sender puts in the transaction. */
export interface BuiltDrop {
  /** The OP_RETURN output script (value 0). */
  readonly opReturnScript: Uint8Array;
  readonly envelope: Uint8Array;
  /** P2TR script of BIP352 output k = 0 to the recipient, when requested. */
  readonly notifyOutputScript: Uint8Array | null;
}

export interface BuildDropParams {
  readonly inputs: readonly DropInput[];
  /** A decoded address, or its bech32m string (checked against `network` when given). */
  readonly recipient: SilentPaymentAddress | string;
  readonly network?: Network;
  readonly payload: DropPayloadInput;
  /** Envelope length, 52..80 (default 80: every drop then looks the same size). */
  readonly envelopeLength?: number;
  /** Also pay BIP352 output k = 0 (330 sat P2TR) so silent-payment wallets see the drop. */
  readonly notifyOutput?: boolean;
}

function senderKey(input: DropInput, index: number, backend: Secp): SenderKey | null {
  const spk = input.prevoutScript;
  const version = witnessVersion(spk);
  if (version > 1) throw DeaddropError.badInput(`input ${index} spends a witness v${version} output, which BIP352 v0 excludes`);
  const isTaproot = version === 1 && spk.length === 34;
  const isWpkh = version === 0 && spk.length === 22;
  const isPkh = spk.length === 25 && spk[0] === 0x76 && spk[1] === 0xa9;
  const isSh = spk.length === 23 && spk[0] === 0xa9;
  const d = input.privateKey;
  if (d === undefined) {
    if (isTaproot || isWpkh || isPkh) throw DeaddropError.badInput(`input ${index} needs its private key: the receiver counts it`);
    return null;
  }
  if (!isTaproot && !isWpkh && !isPkh && !isSh) throw DeaddropError.badInput(`input ${index} is not an eligible input type but has a key`);
  const P = scalar.isValid(d) ? backend.pointFromScalar(d) : null;
  if (P === null) throw DeaddropError.badInput(`input ${index} has an invalid private key`);
  const h = hash160(P);
  const matches = isTaproot
    ? equalBytes(spk.subarray(2), P.subarray(1))
    : isSh
      ? equalBytes(spk.subarray(2, 22), hash160(Uint8Array.from([0x00, 0x14, ...h])))
      : equalBytes(spk.subarray(isWpkh ? 2 : 3, isWpkh ? 22 : 23), h);
  if (!matches) throw DeaddropError.badInput(`input ${index}: private key does not match its scriptPubKey${isTaproot ? ' (pass the tweaked key)' : ''}`);
  return { privateKey: d, taproot: isTaproot };
}

/**
 * Builds the drop's outputs: the OP_RETURN with the sealed introduction and, if asked, the
 * k = 0 notify output. Throws DeaddropError (BAD_INPUT, BAD_ADDRESS, WRONG_NETWORK) on bad
 * parameters or where BIP352 says the sender fails.
 */
export function buildDrop(params: BuildDropParams, backend: Secp = secp): BuiltDrop {
  const recipient = typeof params.recipient === 'string' ? decodeAddress(params.recipient, params.network) : params.recipient;
  if (params.inputs.length === 0) throw DeaddropError.badInput('a drop needs at least one input');
  if (spendsFutureWitnessVersion(params.inputs.map((i) => i.prevoutScript))) throw DeaddropError.badInput('an input spends a witness version > 1');
  const keys = params.inputs.map((input, i) => senderKey(input, i, backend)).filter((k): k is SenderKey => k !== null);
  if (keys.length === 0) throw DeaddropError.badInput('a drop needs at least one eligible input (P2TR, P2WPKH, P2SH-P2WPKH, P2PKH)');
  const a = sumPrivateKeys(keys, backend);
  const A = backend.pointFromScalar(a) as Uint8Array;
  const h = inputHash(params.inputs.map((i) => i.outpoint), A);
  const s = h === null ? null : scalar.mul(h, a);
  const ecdh = s === null ? null : backend.sharedSecretPoint(s, recipient.scanKey);
  if (ecdh === null) throw DeaddropError.badInput('cannot derive the shared secret for these inputs');
  const envelope = sealPayload(ecdh, params.payload, params.envelopeLength ?? ENVELOPE_MAX_BYTES);
  let notifyOutputScript: Uint8Array | null = null;
  if (params.notifyOutput === true) {
    const P0 = outputKey(ecdh, recipient.spendKey, 0, backend);
    if (P0 === null) throw DeaddropError.badInput('t_0 is not a valid scalar');
    notifyOutputScript = Uint8Array.from([0x51, 0x20, ...P0]);
  }
  return { opReturnScript: dropScript(envelope), envelope, notifyOutputScript };
}
