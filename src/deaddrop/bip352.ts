/**
 * BIP352 silent payments, version 0, pure and step by step as the BIP writes it:
 * https://github.com/bitcoin/bips/blob/master/bip-0352.mediawiki
 *
 * Sections, in BIP order:
 * 1. Address encoding (bech32m; hrp sp / tsp / sprt; labels).
 * 2. Inputs for shared secret derivation (P2TR incl. the NUMS-H script-path exclusion, P2WPKH,
 *    P2SH-P2WPKH, P2PKH) and the segwit-version > 1 skip rule.
 * 3. input_hash over the smallest outpoint, A = sum of input keys, tweak data input_hash·A.
 * 4. Sender: a = sum of (negated if needed) input private keys, ecdh = input_hash·a·B_scan,
 *    t_k = hash_BIP0352/SharedSecret(ser_P(ecdh) || ser32(k)), P = B_m + t_k·G.
 * 5. Receiver: ecdh = input_hash·b_scan·A, then the output scan with labels, up to K_max.
 *
 * Keys are byte strings: private keys and tweaks 32 bytes, public keys 33-byte compressed,
 * taproot output keys 32-byte x-only. Point arithmetic goes through src/util/secp.ts (WASM
 * libsecp256k1 when it loads). Chain data never makes these functions throw: an input that
 * is not eligible yields null, a transaction that cannot be scanned yields null or [].
 * Sender-side failures the BIP calls "fail" throw a DeaddropError (BAD_INPUT).
 */
import { bech32m } from '@scure/base';
import { secp, scalar, type Secp } from '../util/secp.js';
import { NETWORK_PARAMS, NETWORKS, type Network } from '../util/network.js';
import { DeaddropError } from '../util/errors.js';
import { taggedHash, hash160, ser32 } from '../util/hash.js';
import { concatBytes, equalBytes, fromHex, toHex } from '../util/bytes.js';

/** Per-group recipient limit: a sender fails above it, a receiver never looks at k >= K_MAX. */
export const K_MAX = 2323;

/** BIP341's NUMS point H (x-only): a taproot internal key nobody knows the private key of. */
export const NUMS_H = fromHex('50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0');

/** Address length limit the BIP recommends for bech32m silent-payment addresses. */
export const MAX_ADDRESS_LENGTH = 1023;

export const TAG_INPUTS = 'BIP0352/Inputs';
export const TAG_SHARED_SECRET = 'BIP0352/SharedSecret';
export const TAG_LABEL = 'BIP0352/Label';

// =============================================================================================
// 1. Addresses

/** A decoded silent-payment address. `spendKey` is B_m (B_spend, or B_spend plus a label). */
export interface SilentPaymentAddress {
  readonly hrp: string;
  readonly version: number;
  /** B_scan, 33-byte compressed. */
  readonly scanKey: Uint8Array;
  /** B_m, 33-byte compressed. */
  readonly spendKey: Uint8Array;
}

/** The silent-payment hrp of a network: sp (mainnet), tsp (testnet, signet), sprt (regtest). */
export function hrpForNetwork(network: Network): string {
  return NETWORK_PARAMS[network].silentPaymentHrp;
}

/** Networks that use this hrp (tsp is shared by testnet and signet); [] if none. */
export function networksForHrp(hrp: string): Network[] {
  return NETWORKS.filter((n) => NETWORK_PARAMS[n].silentPaymentHrp === hrp);
}

/**
 * Encodes (B_scan, B_m) as a version-0 bech32m address.
 * @example encodeAddress(scanPub, spendPub, 'regtest') // 'sprt1qq...'
 */
export function encodeAddress(scanKey: Uint8Array, spendKey: Uint8Array, network: Network): string {
  if (!secp.isPoint(scanKey) || scanKey.length !== 33) throw new TypeError('scanKey must be a 33-byte compressed point');
  if (!secp.isPoint(spendKey) || spendKey.length !== 33) throw new TypeError('spendKey must be a 33-byte compressed point');
  const words = [0, ...bech32m.toWords(concatBytes(scanKey, spendKey))];
  return bech32m.encode(hrpForNetwork(network), words, MAX_ADDRESS_LENGTH);
}

/**
 * Decodes a silent-payment address following the BIP's version rules: v0 must carry exactly
 * 66 bytes; v1 to v30 are read as their first 66 bytes; v31 fails.
 * Throws DeaddropError BAD_ADDRESS (or WRONG_NETWORK when `network` is given and differs).
 */
export function decodeAddress(address: string, network?: Network): SilentPaymentAddress {
  if (typeof address !== 'string') throw new TypeError(`address must be a string, got ${typeof address}`);
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32m.decode(address as `${string}1${string}`, MAX_ADDRESS_LENGTH);
  } catch (err) {
    throw DeaddropError.badAddress(`not a bech32m silent-payment address: ${(err as Error).message}`);
  }
  const { prefix: hrp, words } = decoded;
  const nets = networksForHrp(hrp);
  if (nets.length === 0) throw DeaddropError.badAddress(`unknown silent-payment hrp "${hrp}"`);
  if (network !== undefined && !nets.includes(network)) {
    throw new DeaddropError('WRONG_NETWORK', `address is for ${nets.join('/')}, expected ${network}`, { expected: network, got: nets[0] });
  }
  const version = words[0];
  if (version === undefined) throw DeaddropError.badAddress('address has no version');
  if (version === 31) throw DeaddropError.badAddress('silent-payment version 31 is reserved');
  let data: Uint8Array;
  try {
    data = bech32m.fromWords(words.slice(1));
  } catch (err) {
    throw DeaddropError.badAddress(`bad address payload: ${(err as Error).message}`);
  }
  if (version === 0 ? data.length !== 66 : data.length < 66) {
    throw DeaddropError.badAddress(`version ${version} address must carry ${version === 0 ? 'exactly' : 'at least'} 66 bytes, got ${data.length}`);
  }
  const scanKey = data.slice(0, 33);
  const spendKey = data.slice(33, 66);
  if (!secp.isPoint(scanKey) || !secp.isPoint(spendKey)) throw DeaddropError.badAddress('address keys are not valid points');
  return { hrp, version, scanKey, spendKey };
}

/** A receiver label m: its tweak hash_BIP0352/Label(ser256(b_scan) || ser32(m)) and tweak·G. */
export interface Label {
  readonly m: number;
  readonly tweak: Uint8Array;
  /** tweak·G, 33-byte compressed. */
  readonly point: Uint8Array;
}

/** Label m for scan private key `scanKey`. m = 0 is the change label: never hand it out. */
export function createLabel(scanKey: Uint8Array, m: number): Label {
  const tweak = taggedHash(TAG_LABEL, scanKey, ser32(m));
  const point = secp.pointFromScalar(tweak);
  if (point === null) throw DeaddropError.badInput('label tweak is not a valid scalar');
  return { m, tweak, point };
}

/** B_m = B_spend + label·G. */
export function labeledSpendKey(spendKey: Uint8Array, label: Label): Uint8Array {
  const Bm = secp.pointAdd(spendKey, label.point);
  if (Bm === null) throw DeaddropError.badInput('labeled spend key is the point at infinity');
  return Bm;
}

// =============================================================================================
// 2. Inputs for shared secret derivation

/** An outpoint: txid in internal (serialized, little-endian) byte order and output index. */
export interface Outpoint {
  readonly txid: Uint8Array;
  readonly vout: number;
}

/** What a receiver sees of one transaction input, plus the scriptPubKey it spends. */
export interface TxInputView {
  readonly outpoint: Outpoint;
  readonly scriptSig: Uint8Array;
  readonly witness: readonly Uint8Array[];
  readonly prevoutScript: Uint8Array;
}

/** Outpoint from a txid in display hex (as RPCs print it) and an output index. */
export function outpointFromHex(txidHex: string, vout: number): Outpoint {
  if (!/^[0-9a-fA-F]{64}$/.test(txidHex)) throw new TypeError('txid must be 64 hex characters');
  return { txid: fromHex(txidHex).reverse(), vout };
}

/** The 36-byte serialization: txid (little-endian) || vout (uint32 little-endian). */
export function serializeOutpoint(o: Outpoint): Uint8Array {
  if (!isOutpoint(o)) throw new TypeError('outpoint must have a 32-byte txid and a uint32 vout');
  const out = new Uint8Array(36);
  out.set(o.txid, 0);
  new DataView(out.buffer).setUint32(32, o.vout, true);
  return out;
}

const isP2PKH = (s: Uint8Array): boolean =>
  s.length === 25 && s[0] === 0x76 && s[1] === 0xa9 && s[2] === 0x14 && s[23] === 0x88 && s[24] === 0xac;
const isP2SH = (s: Uint8Array): boolean => s.length === 23 && s[0] === 0xa9 && s[1] === 0x14 && s[22] === 0x87;
const isP2WPKH = (s: Uint8Array): boolean => s.length === 22 && s[0] === 0x00 && s[1] === 0x14;
const isP2TR = (s: Uint8Array): boolean => s.length === 34 && s[0] === 0x51 && s[1] === 0x20;

/** The witness version of a witness-program scriptPubKey, or -1 if it is not one. */
export function witnessVersion(script: Uint8Array): number {
  if (script.length < 4 || script.length > 42) return -1;
  const op = script[0] as number;
  const version = op === 0x00 ? 0 : op >= 0x51 && op <= 0x60 ? op - 0x50 : -1;
  return version >= 0 && script[1] === script.length - 2 ? version : -1;
}

/** True if any prevout is a witness program of version > 1: BIP352 v0 skips such transactions. */
export function spendsFutureWitnessVersion(prevoutScripts: readonly Uint8Array[]): boolean {
  return prevoutScripts.some((s) => witnessVersion(s) > 1);
}

function compressedKey(bytes: Uint8Array | undefined, backend: Secp): Uint8Array | null {
  if (bytes === undefined || bytes.length !== 33) return null;
  return backend.isPoint(bytes) ? bytes : null;
}

/**
 * P2PKH: the receiver MUST find the key even in a malleated scriptSig. Scan from the end with a
 * 33-byte window for a compressed key whose HASH160 matches the scriptPubKey.
 */
function p2pkhKey(scriptSig: Uint8Array, keyHash: Uint8Array, backend: Secp): Uint8Array | null {
  for (let end = scriptSig.length; end >= 33; end--) {
    const first = scriptSig[end - 33];
    if (first !== 0x02 && first !== 0x03) continue;
    const candidate = scriptSig.subarray(end - 33, end);
    if (equalBytes(hash160(candidate), keyHash)) return compressedKey(candidate.slice(), backend);
  }
  return null;
}

function p2trKey(input: TxInputView, backend: Secp): Uint8Array | null {
  let stack = input.witness;
  if (stack.length === 0) return null;
  if (stack.length > 1 && stack[stack.length - 1]?.[0] === 0x50) stack = stack.slice(0, -1); // annex
  if (stack.length > 1) {
    const controlBlock = stack[stack.length - 1] as Uint8Array;
    if (controlBlock.length >= 33 && equalBytes(controlBlock.subarray(1, 33), NUMS_H)) return null;
  }
  return backend.liftX(input.prevoutScript.subarray(2, 34));
}

/**
 * The public key this input contributes to the shared secret (33-byte compressed; P2TR keys
 * lifted to even y), or null if the input is not from the eligible list.
 */
export function inputPublicKey(input: TxInputView, backend: Secp = secp): Uint8Array | null {
  const spk = input.prevoutScript;
  const witness = input.witness;
  if (isP2PKH(spk)) return p2pkhKey(input.scriptSig, spk.subarray(3, 23), backend);
  if (isP2SH(spk)) {
    const ss = input.scriptSig;
    if (ss.length === 23 && ss[0] === 0x16 && isP2WPKH(ss.subarray(1))) return compressedKey(witness[witness.length - 1], backend);
    return null;
  }
  if (isP2WPKH(spk)) return compressedKey(witness[witness.length - 1], backend);
  if (isP2TR(spk)) return p2trKey(input, backend);
  return null;
}

// =============================================================================================
// 3. input_hash, A and tweak data

function isOutpoint(o: Outpoint): boolean {
  return o.txid instanceof Uint8Array && o.txid.length === 32 && Number.isInteger(o.vout) && o.vout >= 0 && o.vout <= 0xffff_ffff;
}

/** The lexicographically smallest serialized outpoint. */
export function smallestOutpoint(outpoints: readonly Outpoint[]): Uint8Array {
  if (outpoints.length === 0) throw new RangeError('smallestOutpoint: no outpoints');
  let best = serializeOutpoint(outpoints[0] as Outpoint);
  for (let i = 1; i < outpoints.length; i++) {
    const s = serializeOutpoint(outpoints[i] as Outpoint);
    if (Buffer.compare(s, best) < 0) best = s;
  }
  return best;
}

/** A = A_1 + ... + A_n; null if the sum is the point at infinity (intermediate zeros are fine). */
export function sumPublicKeys(keys: readonly Uint8Array[], backend: Secp = secp): Uint8Array | null {
  let acc: Uint8Array | null = null;
  for (const k of keys) acc = acc === null ? k : backend.pointAdd(acc, k);
  return acc;
}

/** input_hash = hash_BIP0352/Inputs(outpoint_L || ser_P(A)); null if it is not a valid scalar. */
export function inputHash(outpoints: readonly Outpoint[], A: Uint8Array): Uint8Array | null {
  const h = taggedHash(TAG_INPUTS, smallestOutpoint(outpoints), A);
  return scalar.isValid(h) ? h : null;
}

/** Per-transaction data the receiver needs, computed from the inputs alone. */
export interface InputSummary {
  /** A, the sum of the eligible input keys. */
  readonly A: Uint8Array;
  readonly inputHash: Uint8Array;
}

/**
 * A and input_hash for a transaction, or null if it has no eligible input, spends a witness
 * version > 1 output, or its keys sum to infinity. `outpoints` of all inputs count for
 * outpoint_L, eligible or not.
 */
export function summarizeInputs(inputs: readonly TxInputView[], backend: Secp = secp): InputSummary | null {
  if (inputs.length === 0 || !inputs.every((i) => isOutpoint(i.outpoint))) return null;
  if (spendsFutureWitnessVersion(inputs.map((i) => i.prevoutScript))) return null;
  const keys: Uint8Array[] = [];
  for (const input of inputs) {
    const key = inputPublicKey(input, backend);
    if (key !== null) keys.push(key);
  }
  if (keys.length === 0) return null;
  const A = sumPublicKeys(keys, backend);
  if (A === null) return null;
  const h = inputHash(inputs.map((i) => i.outpoint), A);
  return h === null ? null : { A, inputHash: h };
}

/** Tweak data input_hash·A (33 bytes): what an index serves so a light client does one ECDH. */
export function tweakData(summary: InputSummary, backend: Secp = secp): Uint8Array | null {
  return backend.pointMultiply(summary.A, summary.inputHash);
}

// =============================================================================================
// 4. Sender

/** A private key of an eligible input. `taproot` says it spends a P2TR output (x-only key). */
export interface SenderKey {
  readonly privateKey: Uint8Array;
  readonly taproot: boolean;
}

/**
 * a = a_1 + ... + a_n mod n, where taproot keys are negated when their point has odd y.
 * Throws BAD_INPUT for an invalid key or a zero sum.
 */
export function sumPrivateKeys(keys: readonly SenderKey[], backend: Secp = secp): Uint8Array {
  let sum = 0n;
  for (const { privateKey, taproot } of keys) {
    let d = scalar.toBigInt(privateKey);
    if (d === null || d === 0n) throw DeaddropError.badInput('invalid input private key');
    if (taproot) {
      const P = backend.pointFromScalar(privateKey) as Uint8Array;
      if (P[0] === 0x03) d = scalar.toBigInt(scalar.negate(privateKey) as Uint8Array) as bigint;
    }
    sum += d;
  }
  const a = scalar.fromBigInt(sum);
  if (!scalar.isValid(a)) throw DeaddropError.badInput('input private keys sum to zero');
  return a;
}

/**
 * The sender's ecdh_shared_secret = input_hash·a·B_scan for the transaction's `outpoints`
 * (all of them) and eligible input keys. Throws BAD_INPUT where the BIP says "fail".
 */
export function senderSharedSecret(
  keys: readonly SenderKey[],
  outpoints: readonly Outpoint[],
  scanKey: Uint8Array,
  backend: Secp = secp,
): Uint8Array {
  const a = sumPrivateKeys(keys, backend);
  const A = backend.pointFromScalar(a) as Uint8Array;
  const h = inputHash(outpoints, A);
  if (h === null) throw DeaddropError.badInput('input_hash is not a valid scalar');
  const s = scalar.mul(h, a);
  const ecdh = s === null ? null : backend.sharedSecretPoint(s, scanKey);
  if (ecdh === null) throw DeaddropError.badInput('recipient scan key is not a valid point');
  return ecdh;
}

/** t_k = hash_BIP0352/SharedSecret(ser_P(ecdh) || ser32(k)); null if not a valid scalar. */
export function sharedSecretTweak(ecdh: Uint8Array, k: number): Uint8Array | null {
  const t = taggedHash(TAG_SHARED_SECRET, ecdh, ser32(k));
  return scalar.isValid(t) ? t : null;
}

/** P_k = B_m + t_k·G as a 32-byte x-only taproot output key, or null if t_k is invalid. */
export function outputKey(ecdh: Uint8Array, spendKey: Uint8Array, k: number, backend: Secp = secp): Uint8Array | null {
  const t = sharedSecretTweak(ecdh, k);
  const P = t === null ? null : backend.pointAddScalar(spendKey, t);
  return P === null ? null : P.slice(1);
}

/**
 * Creating outputs: one x-only output key per recipient, in the order given. Recipients are
 * grouped by B_scan; k counts up within a group. Throws BAD_INPUT where the BIP says "fail"
 * (zero key sum, invalid input_hash or t_k, a group larger than K_MAX).
 */
export function createOutputs(
  keys: readonly SenderKey[],
  outpoints: readonly Outpoint[],
  recipients: readonly SilentPaymentAddress[],
  backend: Secp = secp,
): Uint8Array[] {
  const groups = new Map<string, number[]>();
  recipients.forEach((r, i) => {
    const id = toHex(r.scanKey);
    const g = groups.get(id);
    if (g === undefined) groups.set(id, [i]);
    else g.push(i);
  });
  for (const g of groups.values()) {
    if (g.length > K_MAX) throw DeaddropError.badInput(`more than K_max = ${K_MAX} outputs for one scan key`);
  }
  const outputs: Uint8Array[] = new Array(recipients.length);
  for (const indexes of groups.values()) {
    const first = recipients[indexes[0] as number] as SilentPaymentAddress;
    const ecdh = senderSharedSecret(keys, outpoints, first.scanKey, backend);
    indexes.forEach((ri, k) => {
      const P = outputKey(ecdh, (recipients[ri] as SilentPaymentAddress).spendKey, k, backend);
      if (P === null) throw DeaddropError.badInput('t_k is not a valid scalar');
      outputs[ri] = P;
    });
  }
  return outputs;
}

// =============================================================================================
// 5. Receiver

/** ecdh_shared_secret = input_hash·b_scan·A (one variable-base multiplication); null if invalid. */
export function receiverSharedSecret(scanKey: Uint8Array, summary: InputSummary, backend: Secp = secp): Uint8Array | null {
  const s = scalar.mul(summary.inputHash, scanKey);
  return s === null ? null : backend.sharedSecretPoint(s, summary.A);
}

/** ecdh_shared_secret = b_scan·(input_hash·A) from tweak data (the light-client path). */
export function receiverSharedSecretFromTweak(scanKey: Uint8Array, tweak: Uint8Array, backend: Secp = secp): Uint8Array | null {
  return backend.sharedSecretPoint(scanKey, tweak);
}

/** An output the receiver found: spend it with private key b_spend + tweak (mod n). */
export interface FoundOutput {
  /** x-only output key as it appears in the transaction. */
  readonly outputKey: Uint8Array;
  /** t_k, plus the label tweak when the output was labeled. */
  readonly tweak: Uint8Array;
  readonly k: number;
  /** The label m, or null for the unlabeled spend key. */
  readonly label: number | null;
}

/**
 * Checks the transaction's taproot output keys (x-only) for outputs to (B_spend, labels),
 * starting with k = 0 and stopping at the first k with no match or at K_MAX.
 * Label m = 0 (change) should always be among `labels`.
 */
export function scanOutputs(
  ecdh: Uint8Array,
  spendKey: Uint8Array,
  outputKeys: readonly Uint8Array[],
  labels: readonly Label[] = [],
  backend: Secp = secp,
): FoundOutput[] {
  const remaining = new Map<string, Uint8Array>();
  for (const o of outputKeys) if (o.length === 32) remaining.set(toHex(o), o);
  const found: FoundOutput[] = [];
  for (let k = 0; k < K_MAX && remaining.size > 0; k++) {
    const t = sharedSecretTweak(ecdh, k);
    const Pk = t === null ? null : backend.pointAddScalar(spendKey, t);
    if (t === null || Pk === null) break;
    const hit = matchOutput(Pk, t, remaining, labels, backend);
    if (hit === null) break;
    remaining.delete(toHex(hit.outputKey));
    found.push({ ...hit, k });
  }
  return found;
}

function matchOutput(
  Pk: Uint8Array,
  t: Uint8Array,
  remaining: Map<string, Uint8Array>,
  labels: readonly Label[],
  backend: Secp,
): Omit<FoundOutput, 'k'> | null {
  const direct = remaining.get(toHex(Pk.subarray(1)));
  if (direct !== undefined) return { outputKey: direct, tweak: t, label: null };
  // output - P_k = label (or -output - P_k = label) is the same as x(P_k + label) = x(output).
  // With few labels, adding each label to P_k costs |labels| additions per k; with many, the
  // BIP's subtraction per output against a label table is cheaper.
  if (labels.length <= remaining.size) {
    for (const label of labels) {
      const P = backend.pointAdd(Pk, label.point);
      const hit = P === null ? undefined : remaining.get(toHex(P.subarray(1)));
      if (hit !== undefined) return { outputKey: hit, tweak: scalar.add(t, label.tweak) as Uint8Array, label: label.m };
    }
    return null;
  }
  const table = new Map(labels.map((l) => [toHex(l.point), l]));
  const negPk = backend.pointNegate(Pk) as Uint8Array;
  for (const output of remaining.values()) {
    const O = backend.liftX(output);
    if (O === null) continue;
    for (const candidate of [backend.pointAdd(O, negPk), backend.pointAdd(backend.pointNegate(O) as Uint8Array, negPk)]) {
      const label = candidate === null ? undefined : table.get(toHex(candidate));
      if (label !== undefined) return { outputKey: output, tweak: scalar.add(t, label.tweak) as Uint8Array, label: label.m };
    }
  }
  return null;
}
