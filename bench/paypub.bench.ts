/**
 * PayPub costs: transaction sizes (exact, from real signed transactions) and the buyer's
 * local unlock time (extract keys from the claim, check them, decrypt 1 MB).
 *
 * Size anchors are ordinary taproot transactions of the same shape: a pledge is a P2TR
 * output like any other, and a claim input is a P2TR spend that also carries the keys.
 * The unlock anchor is node:crypto ChaCha20-Poly1305 decrypting the same bytes in the
 * same chunks (OpenSSL: the floor for the AEAD part).
 *
 * On regtest (btcd): the time from a claim's broadcast to the decrypted 1 MB file written by a
 * following PaypubService (the daemon's code path: 'mempool-tx' event, fetch, extract, check,
 * decrypt, write). Anchor: the same broadcast until the txid shows in `getrawmempool`, polled
 * every 5 ms (how soon the node itself can tell).
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
import { buildAdaptorClaimTx, presignPledgeClaim, type AdaptorSaleTerms } from '../src/paypub/adaptor-claim.js';
import { newSaleSecret, salePoint } from '../src/paypub/chunk-keys.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackend } from '../src/chain/open.js';
import { saleId } from '../src/paypub/link.js';
import { createReveal } from '../src/paypub/sample.js';
import { PaypubService } from '../src/paypub/service.js';
import { startRegtestNode, type RegtestNode } from '../src/regtest/harness.js';
import { WalletKeys, newMnemonic } from '../src/wallet/keys.js';
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

/**
 * The adaptor-signature claim (docs/protocol/paypub.md §12): real signed claims of 1 and 10
 * pledges. Its witness holds two signatures whatever N and s, so the figure is the same at
 * every size; it is emitted per size so it sits beside the hash-lock figure it replaces.
 */
function adaptorSizes(emit: Emit, label: string): void {
  const t = newSaleSecret();
  const sellerSk = schnorr.utils.randomSecretKey();
  const terms: AdaptorSaleTerms = { network: 'regtest', sellerKey: schnorr.getPublicKey(sellerSk), deadlineHeight: 240, salePoint: salePoint(t) };
  const pledged = Array.from({ length: 10 }, (_, i) => {
    const sk = schnorr.utils.randomSecretKey();
    const p = { txid: bytesToHex(randomBytes(32)), vout: i, value: 40_000n, buyerKey: schnorr.getPublicKey(sk) };
    return { ...p, presig: presignPledgeClaim(terms, p, sk) };
  });
  const claim = (n: number): number =>
    buildAdaptorClaimTx({ terms, saleSecret: t, sellerSecretKey: sellerSk, pledges: pledged.slice(0, n), payoutScript: p2trScript(), feeRate: 1 }).vsize;
  const perPledge = claim(10) / 10;
  const keyPath = keyPathSweepVsize(10) / 10;
  emit({ name: `paypub.claim.adaptor.vbytes_per_pledge.${label}`, unit: 'vB', value: round(perPledge), anchor: 'P2TR key-path input (10-input sweep, per input)', anchorValue: round(keyPath), ratio: round(perPledge / keyPath) });
  emit({ name: `paypub.claim.adaptor.marginal_vbytes_per_pledge.${label}`, unit: 'vB', value: claim(2) - claim(1), anchor: 'P2TR key-path input (marginal)', anchorValue: keyPathSweepVsize(2) - keyPathSweepVsize(1), ratio: round((claim(2) - claim(1)) / (keyPathSweepVsize(2) - keyPathSweepVsize(1))) });
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
  adaptorSizes(emit, 'n32s8');
  adaptorSizes(emit, 'n128s32');

  const [p] = pledges(s, 1);
  const refund = buildRefundTx({ manifest: s.manifest, sampled: s.sampled, pledge: p as PledgeUtxo, buyerSecretKey: (p as { sk: Uint8Array }).sk, destScript: p2trScript(), feeRate: 1 });
  emit({ name: 'paypub.refund.tx_vbytes', unit: 'vB', value: refund.vsize, anchor: 'P2TR key-path 1-in 1-out', anchorValue: keyPathSweepVsize(1), ratio: round(refund.vsize / keyPathSweepVsize(1)) });

  unlock(emit);
  await claimToFile(emit);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

/** A sale on regtest whose two pledges are funded and confirmed; returns the claim, not broadcast. */
async function fundedClaim(node: RegtestNode, size: number): Promise<{ sale: Sale; beaconHash: string; claimRaw: Uint8Array; claimTxid: string }> {
  const tip = await node.rpc<number>('getblockcount');
  const plaintext = new Uint8Array(nodeRandomBytes(size));
  const content = encryptContent(plaintext, 32);
  const sellerSk = schnorr.utils.randomSecretKey();
  const manifest = createManifest({
    content, network: 'regtest', price: 50_000n, threshold: 100_000n, minPledge: 10_000n, sampleSize: 8, beaconHeight: tip, deadlineHeight: tip + 60, sellerSecretKey: sellerSk,
  });
  const beaconHash = await node.rpc<string>('getblockhash', [tip]);
  const sale: Sale = { manifest, keys: content.keys, ciphertexts: content.ciphertexts, plaintext, sellerSk, sampled: sampleIndices(manifest, beaconHash) };
  const buyers = [0, 1].map(() => schnorr.getPublicKey(schnorr.utils.randomSecretKey()));
  const scripts = buyers.map((b) => pledgeOutput(manifest, sale.sampled, { buyerKey: b }).script);
  const txid = await node.send(scripts.map((script) => ({ script, sats: 60_000n })), { confirm: true });
  const funding = Transaction.fromRaw(Buffer.from(await node.rpc<string>('getrawtransaction', [txid, 0]), 'hex'), { allowUnknownOutputs: true });
  const pledges = buyers.map((buyerKey, i) => {
    const vout = [...Array(funding.outputsLength).keys()].find((o) => Buffer.compare(Buffer.from(funding.getOutput(o).script ?? []), Buffer.from(scripts[i] as Uint8Array)) === 0);
    if (vout === undefined) throw new Error('pledge output missing');
    return { txid, vout, value: 60_000n, buyerKey };
  });
  const claim = buildClaimTx({ manifest, sampled: sale.sampled, keys: sale.keys, sellerSecretKey: sellerSk, pledges, payoutScript: p2trScript(), feeRate: 2 });
  return { sale, beaconHash, claimRaw: claim.raw, claimTxid: claim.txid };
}

/** Regtest: claim broadcast -> decrypted 1 MB file, through a following PaypubService (see the header). */
async function claimToFile(emit: Emit): Promise<void> {
  let node: RegtestNode;
  try {
    node = await startRegtestNode({ kind: 'btcd' });
  } catch (err) {
    console.error(`paypub: no regtest node (${err instanceof Error ? err.message : String(err)}); skipping the claim-to-file bench`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'dd-bench-paypub-'));
  const chain = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
  const unlocked = new Map<string, number>();
  const service = new PaypubService({
    chain, wallet: undefined, keys: WalletKeys.fromMnemonic(newMnemonic(), 'regtest'), datadir: dir, network: 'regtest', auto: true,
    publish: (type, _id, data) => {
      if (type === 'paypub.unlocked') unlocked.set(String(data.id), Number(data.at));
    },
  });
  const ours: number[] = [];
  const seen: number[] = [];
  try {
    await service.ready();
    for (let i = 0; i < 5; i++) {
      const { sale, beaconHash, claimRaw, claimTxid } = await fundedClaim(node, 1 << 20);
      const id = saleId(sale.manifest);
      // an observer that already holds the manifest, the chunks and the verified sample
      const reveal = createReveal(sale.manifest, beaconHash, sale.keys, sale.sellerSk);
      service.store.insertSale({ id, role: 'buyer', manifest: sale.manifest, url: 'http://127.0.0.1:9', outPath: join(dir, `${id}.bin`) });
      service.store.putChunks(id, sale.ciphertexts);
      service.store.setReveal(id, beaconHash, reveal);
      service.store.addKeys(id, new Map(reveal.indices.map((i, j) => [i, reveal.keys[j] as Uint8Array])), 'reveal');
      await new Promise((r) => setTimeout(r, 300)); // let the watch pick the sale up
      const t0 = Date.now();
      const res = await chain.broadcast(claimRaw);
      if (!res.accepted) throw new Error(`claim rejected: ${res.reason}`);
      let inPool = 0;
      while (!unlocked.has(id)) {
        if (!inPool && (await node.rpc<string[]>('getrawmempool')).includes(claimTxid)) inPool = Date.now();
        if (Date.now() - t0 > 10_000) throw new Error('no unlock within 10 s');
        await new Promise((r) => setTimeout(r, 5));
      }
      if (Buffer.compare(readFileSync(join(dir, `${id}.bin`)), Buffer.from(sale.plaintext)) !== 0) throw new Error('decrypted file differs');
      ours.push((unlocked.get(id) as number) - t0);
      seen.push((inPool || Date.now()) - t0);
      await node.mine(1);
    }
  } finally {
    await service.close();
    await chain.close();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const v = median(ours);
  const a = Math.max(1, median(seen));
  emit({ name: 'paypub.unlock.claim_to_file_ms_1MB', unit: 'ms', value: v, anchor: 'claim txid visible in btcd getrawmempool (5 ms polling)', anchorValue: a, ratio: round(v / a) });
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
