/**
 * Pure per-candidate steps shared by the watcher (blocks and mempool) and the light client:
 * tweak data from a candidate's inputs and prevouts, and trial decryption of its OP_RETURN
 * envelopes with each local identity's scan key.
 *
 * Everything here is total over chain data: a missing prevout, an input that is not eligible,
 * an invalid curve point or a payload that does not decode yields null or [], never a throw.
 */
import type { Tx } from '../../chain/block.js';
import { summarizeInputs, tweakData, type TxInputView } from '../bip352.js';
import type { DropPayload } from '../codec.js';
import { ENVELOPE_MAX_BYTES, ENVELOPE_MIN_BYTES } from '../envelope.js';
import { openDropWithTweak } from '../scan.js';
import { scalar } from '../../util/secp.js';
import type { Prevout } from '../../chain/types.js';
import type { FoundDrop } from './drop-store.js';
import { outpointKey, type OutpointRef } from '../../chain/follow/prevouts.js';
import { toHex } from '../../util/bytes.js';
import { type CandidateOutput, candidateOutputs } from '../../chain/op-return-scan.js';

/** Scan options for dead-drop candidates: one OP_RETURN push of an envelope's possible size. */
// Envelopes are uniformly random, so one may start with another protocol's prefix: skip none
// by prefix (trial decryption is the filter); Runestones never match, being OP_RETURN OP_13.
export const DROP_SCAN_OPTIONS = Object.freeze({ minDataLength: ENVELOPE_MIN_BYTES, maxDataLength: ENVELOPE_MAX_BYTES, skipProtocols: [] });

/**
 * A local identity the watcher decrypts for: the BIP352 scan private key and the spend public
 * key of one silent-payment address. `label` names it in drops and events (never the keys).
 */
export interface WatchIdentity {
  readonly label: string;
  /** b_scan, 32 bytes. Secret. */
  readonly scanPrivateKey: Uint8Array;
  /** B_spend, 33-byte compressed. */
  readonly spendPublicKey: Uint8Array;
}

/** Checks identities once (TypeError on misuse); labels must be unique. */
export function checkIdentities(ids: readonly WatchIdentity[]): void {
  const labels = new Set<string>();
  for (const id of ids) {
    if (typeof id.label !== 'string' || id.label.length === 0 || id.label.length > 64) throw new TypeError('identity label must be 1..64 characters');
    if (labels.has(id.label)) throw new TypeError(`duplicate identity label ${JSON.stringify(id.label)}`);
    labels.add(id.label);
    if (!(id.scanPrivateKey instanceof Uint8Array) || !scalar.isValid(id.scanPrivateKey)) throw new TypeError(`identity ${id.label}: scan key must be a valid 32-byte private key`);
    if (!(id.spendPublicKey instanceof Uint8Array) || id.spendPublicKey.length !== 33) throw new TypeError(`identity ${id.label}: spend key must be 33 bytes`);
  }
}

/** The outpoints a transaction spends, for prevout lookup. */
export function spentOutpoints(tx: Tx): OutpointRef[] {
  return tx.inputs.map((i) => ({ txid: i.prevTxidHex, vout: i.vout }));
}

/** The candidate outputs of a loose (mempool) transaction; [] for anything else. */
export function dropOutputs(tx: Tx): CandidateOutput[] {
  return candidateOutputs(tx, DROP_SCAN_OPTIONS);
}

/** BIP352 input views of `tx` with their prevouts, or null if any prevout is unknown. */
export function inputViews(tx: Tx, prevouts: ReadonlyMap<string, Prevout>): TxInputView[] | null {
  const views: TxInputView[] = [];
  for (const input of tx.inputs) {
    const prev = prevouts.get(outpointKey(input.prevTxidHex, input.vout));
    if (prev === undefined) return null;
    let witness: Uint8Array[];
    try {
      witness = input.witness;
    } catch {
      return null;
    }
    views.push({ outpoint: { txid: input.prevTxid, vout: input.vout }, scriptSig: input.scriptSig, witness, prevoutScript: prev.script });
  }
  return views;
}

/** Tweak data input_hash·A of `tx` (33 bytes), or null when it has no eligible input or a prevout is missing. */
export function candidateTweak(tx: Tx, prevouts: ReadonlyMap<string, Prevout>): Uint8Array | null {
  const views = inputViews(tx, prevouts);
  if (views === null) return null;
  const summary = summarizeInputs(views);
  return summary === null ? null : tweakData(summary);
}

/** JSON-safe fields of a decrypted payload (bytes as hex). */
export function payloadToJson(p: DropPayload): Record<string, unknown> {
  return {
    version: p.version,
    nodeKey: toHex(p.nodeKey),
    token: toHex(p.token),
    expiresAt: p.expiresAt,
    endpoints: [...p.endpoints],
    message: p.message,
  };
}

/**
 * Trial-decrypts every envelope of one candidate with each identity (src/deaddrop/scan.ts:
 * one ECDH b_scan·tweak, then the envelope check). Standard transactions carry one OP_RETURN,
 * so that is one ECDH per candidate and identity. Returns the drops found.
 */
export function trialDecrypt(
  txid: string,
  tweak: Uint8Array,
  outputs: readonly { readonly vout: number; readonly data: Uint8Array }[],
  identities: readonly WatchIdentity[],
): FoundDrop[] {
  const found: FoundDrop[] = [];
  for (const id of identities) {
    for (const out of outputs) {
      const drop = openDropWithTweak({ scanKey: id.scanPrivateKey }, tweak, out.data);
      if (drop !== null) found.push({ txid, vout: out.vout, identity: id.label, payload: payloadToJson(drop.payload) });
    }
  }
  return found;
}
