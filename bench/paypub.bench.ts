/**
 * PayPub costs: transaction sizes (exact, from real signed transactions) and the buyer's
 * local unlock time (extract keys from the claim, check them, decrypt 1 MB).
 *
 * Size anchors are ordinary taproot transactions of the same shape: a pledge is a P2TR
 * output like any other, and a claim input is a P2TR spend that also carries the keys.
 * The unlock anchor is node:crypto ChaCha20-Poly1305 decrypting the same bytes in the
 * same chunks (OpenSSL: the floor for the AEAD part).
 */
import { createCipheriv, createDecipheriv, randomBytes as nodeRandomBytes } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { p2tr } from '@scure/btc-signer/payment.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { decryptContent, encryptContent } from '../src/paypub/content.js';
import { createManifest, type Manifest } from '../src/paypub/manifest.js';
import { sampleIndices } from '../src/paypub/sample.js';
import { buildClaimTx, buildRefundTx, extractClaimKeys, pledgeOutput, type PledgeUtxo } from '../src/paypub/scripts.js';
import { measure, round } from './measure.js';
import type { Emit } from './types.js';

interface Sale {
  manifest: Manifest;
  keys: readonly Uint8Array[];
  ciphertexts: readonly Uint8Array[];
  plaintext: Uint8Array;
  sellerSk: Uint8Array;
  sampled: number[];
}

function makeSale(chunks: number, sample: number, size: number): Sale {
  const plaintext = new Uint8Array(nodeRandomBytes(size));
  const content = encryptContent(plaintext, chunks);
  const sellerSk = schnorr.utils.randomSecretKey();
  const manifest = createManifest({
    content, network: 'regtest', price: 50_000n, threshold: 100_000n, minPledge: 10_000n,
    sampleSize: sample, beaconHeight: 200, deadlineHeight: 240, sellerSecretKey: sellerSk,
  });
  const sampled = sampleIndices(manifest, bytesToHex(randomBytes(32)));
  return { manifest, keys: content.keys, ciphertexts: content.ciphertexts, plaintext, sellerSk, sampled };
}

const p2trScript = (): Uint8Array => p2tr(schnorr.getPublicKey(schnorr.utils.randomSecretKey())).script;

/** vsize of a 1-input (P2TR key path) payment to `script` with P2TR change: a typical wallet send. */
function walletSendVsize(script: Uint8Array): number {
  const sk = schnorr.utils.randomSecretKey();
  const pk = schnorr.getPublicKey(sk);
  const tx = new Transaction({ allowUnknownOutputs: true });
  tx.addInput({ txid: bytesToHex(randomBytes(32)), index: 0, witnessUtxo: { script: p2tr(pk).script, amount: 1_000_000n }, tapInternalKey: pk });
  tx.addOutput({ script, amount: 40_000n });
  tx.addOutput({ script: p2trScript(), amount: 950_000n });
  tx.sign(sk);
  tx.finalize();
  return tx.vsize;
}

/** vsize of an n-input P2TR key-path sweep to one output. */
function keyPathSweepVsize(n: number): number {
  const tx = new Transaction();
  const sks = Array.from({ length: n }, () => schnorr.utils.randomSecretKey());
  for (const sk of sks) {
    const pk = schnorr.getPublicKey(sk);
    tx.addInput({ txid: bytesToHex(randomBytes(32)), index: 0, witnessUtxo: { script: p2tr(pk).script, amount: 40_000n }, tapInternalKey: pk });
  }
  tx.addOutput({ script: p2trScript(), amount: BigInt(n) * 39_000n });
  sks.forEach((sk, i) => tx.signIdx(sk, i));
  tx.finalize();
  return tx.vsize;
}

function pledges(s: Sale, n: number): (PledgeUtxo & { sk: Uint8Array })[] {
  return Array.from({ length: n }, (_, i) => {
    const sk = schnorr.utils.randomSecretKey();
    return { txid: bytesToHex(randomBytes(32)), vout: i, value: 40_000n, buyerKey: schnorr.getPublicKey(sk), sk };
  });
}

function claimVsize(s: Sale, n: number): { vsize: number; raw: Uint8Array } {
  const c = buildClaimTx({ manifest: s.manifest, sampled: s.sampled, keys: s.keys, sellerSecretKey: s.sellerSk, pledges: pledges(s, n), payoutScript: p2trScript(), feeRate: 1 });
  return { vsize: c.vsize, raw: c.raw };
}

function sizes(emit: Emit, label: string, chunks: number, sample: number): void {
  const s = makeSale(chunks, sample, chunks * 64);
  const n = 10;
  const perPledge = claimVsize(s, n).vsize / n;
  const keyPath = keyPathSweepVsize(n) / n;
  emit({ name: `paypub.claim.vbytes_per_pledge.${label}`, unit: 'vB', value: round(perPledge), anchor: 'P2TR key-path input (10-input sweep, per input)', anchorValue: round(keyPath), ratio: round(perPledge / keyPath) });
  const marginal = claimVsize(s, 2).vsize - claimVsize(s, 1).vsize;
  emit({ name: `paypub.claim.marginal_vbytes_per_pledge.${label}`, unit: 'vB', value: marginal });
}

export async function run(emit: Emit): Promise<void> {
  // Pledge: a wallet send whose output is the pledge; anchor: the same send to a plain P2TR address.
  const s = makeSale(32, 8, 32 * 64);
  const buyer = schnorr.getPublicKey(schnorr.utils.randomSecretKey());
  const pledgeTx = walletSendVsize(pledgeOutput(s.manifest, s.sampled, { buyerKey: buyer }).script);
  const plainTx = walletSendVsize(p2trScript());
  emit({ name: 'paypub.pledge.tx_vbytes', unit: 'vB', value: pledgeTx, anchor: 'same send to a plain P2TR address', anchorValue: plainTx, ratio: round(pledgeTx / plainTx) });

  sizes(emit, 'n32s8', 32, 8);
  sizes(emit, 'n64s16', 64, 16);
  sizes(emit, 'n128s32', 128, 32);

  const [p] = pledges(s, 1);
  const refund = buildRefundTx({ manifest: s.manifest, sampled: s.sampled, pledge: p as PledgeUtxo, buyerSecretKey: (p as { sk: Uint8Array }).sk, destScript: p2trScript(), feeRate: 1 });
  emit({ name: 'paypub.refund.tx_vbytes', unit: 'vB', value: refund.vsize, anchor: 'P2TR key-path 1-in 1-out', anchorValue: keyPathSweepVsize(1), ratio: round(refund.vsize / keyPathSweepVsize(1)) });

  unlock(emit);
}

/** Buyer's local work after seeing the claim: extract + check keys, then decrypt and verify 1 MB. */
function unlock(emit: Emit): void {
  const size = 1 << 20;
  const s = makeSale(32, 8, size);
  const { raw } = claimVsize(s, 3);
  const revealed = new Map(s.sampled.map((i) => [i, s.keys[i] as Uint8Array]));
  const ours = measure(() => {
    const got = extractClaimKeys(raw, s.manifest);
    const keys = s.keys.map((_, i) => got.get(i) ?? (revealed.get(i) as Uint8Array));
    return decryptContent(s.manifest, s.ciphertexts, keys);
  }, { minIterations: 7, minTimeMs: 1500 });
  // anchor: OpenSSL ChaCha20-Poly1305 over the same 32 chunks
  const key = nodeRandomBytes(32);
  const nonce = nodeRandomBytes(12);
  const chunk = size / 32;
  const sealed = Array.from({ length: 32 }, (_, i) => {
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    const ct = Buffer.concat([c.update(s.plaintext.subarray(i * chunk, (i + 1) * chunk)), c.final()]);
    return { ct, tag: c.getAuthTag() };
  });
  const anchor = measure(() => {
    const out = new Uint8Array(size);
    sealed.forEach(({ ct, tag }, i) => {
      const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
      d.setAuthTag(tag);
      out.set(Buffer.concat([d.update(ct), d.final()]), i * chunk);
    });
    return out;
  }, { minIterations: 7, minTimeMs: 500 });
  emit({
    name: 'paypub.unlock.ms_1MB', unit: 'ms', value: round(ours.medianMs),
    anchor: 'node:crypto ChaCha20-Poly1305 decrypt, same 32 chunks', anchorValue: round(anchor.medianMs), ratio: round(ours.medianMs / anchor.medianMs),
  });
  const enc = measure(() => encryptContent(s.plaintext, 32), { minIterations: 5, minTimeMs: 1000 });
  emit({ name: 'paypub.encrypt.ms_1MB', unit: 'ms', value: round(enc.medianMs) });
}
