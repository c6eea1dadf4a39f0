/**
 * Adaptor-signature claims on a real regtest node (btcd `--rejectnonstd`; Core too when present):
 * several buyers pledge, each publishes a pre-signature locked to T, the seller claims them all
 * in one transaction, and a third party who paid nothing extracts t from the node's copy of the
 * claim and decrypts every chunk. The seller cannot claim without t, nobody can redirect the
 * completed buyer signatures, and an unclaimed pledge refunds after the CLTV deadline. Every
 * verdict is the node's own mempool acceptance.
 *
 * The version 2 manifest is anchored before the beacon and the version 2 reveal (K_i with DLEQ
 * proofs) is checked by the buyer before pledging. Primitive level only: the seller and buyer
 * services, the offer and the watch do not speak this version yet (docs/protocol/paypub.md §12).
 */
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { RawTx } from '@scure/btc-signer/script.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adaptorPledgeOutput, buildAdaptorClaimTx, buildAdaptorRefundTx, extractSaleSecret, presignPledgeClaim, verifyPledgePresig,
  type AdaptorSaleTerms, type PresignedPledge,
} from '../../src/paypub/adaptor-claim.js';
import {
  adaptorTerms, createAdaptorManifest, createAdaptorReveal, decodeAdaptorManifest, decodeAdaptorReveal, encodeAdaptorManifest, encodeAdaptorReveal,
  verifyAdaptorReveal, type AdaptorManifest,
} from '../../src/paypub/adaptor-manifest.js';
import { decodePresigAnnouncement, encodePresigAnnouncement, evaluateAdaptorPledges } from '../../src/paypub/adaptor-pledges.js';
import { deriveChunkKeys, newSaleSecret } from '../../src/paypub/chunk-keys.js';
import { decryptContent, encryptContentWithKeys, type EncryptedContent } from '../../src/paypub/content.js';
import { anchorScript } from '../../src/paypub/manifest.js';
import { sampleIndices } from '../../src/paypub/sample.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { keypair, someP2trScript } from '../support/paypub-fixtures.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { broadcastRaw, expectAccepted, expectRejected, mineTo, tipHeight } from '../support/regtest-tx.js';

const BAD_SIG = /checksig|schnorr signature|signature/i;
const NON_FINAL = /not finalized|non-final/i;

interface AdaptorSale {
  readonly t: Uint8Array;
  readonly sellerSk: Uint8Array;
  readonly manifest: AdaptorManifest;
  readonly terms: AdaptorSaleTerms;
  readonly content: EncryptedContent;
  readonly plaintext: Uint8Array;
}

function makeAdaptorSale(chunkCount: number, sampleSize: number, beaconHeight: number): AdaptorSale {
  const t = newSaleSecret();
  const seller = keypair();
  const contentId = randomBytes(32);
  const plaintext = randomBytes(chunkCount * 100 + 3);
  const content = encryptContentWithKeys(plaintext, deriveChunkKeys(t, contentId, chunkCount), contentId);
  const manifest = createAdaptorManifest({
    content, saleSecret: t, network: 'regtest', price: 50_000n, threshold: 100_000n, minPledge: 10_000n, sampleSize, beaconHeight,
    deadlineHeight: beaconHeight + 40, sellerSecretKey: seller.sk,
  });
  // A buyer works from the decoded bytes, as it would from an offer.
  const decoded = decodeAdaptorManifest(encodeAdaptorManifest(manifest), 'regtest');
  return { t, sellerSk: seller.sk, manifest: decoded, terms: adaptorTerms(decoded), content, plaintext };
}

describe.each(chainNodes())('PayPub adaptor claims on %s', (kind) => {
  useNodeKind(kind);
  let node: RegtestNode;


  /** Anchors the manifest, waits for the beacon, and returns the sample after a buyer checked the seller's reveal. */
  async function sampleOf(s: AdaptorSale): Promise<number[]> {
    await node.send([{ script: anchorScript(s.manifest), sats: 0n }], { confirm: true });
    await mineTo(node, s.manifest.beaconHeight + 1);
    const beaconHash = await node.rpc<string>('getblockhash', [s.manifest.beaconHeight]);
    const reveal = decodeAdaptorReveal(encodeAdaptorReveal(createAdaptorReveal(s.manifest, beaconHash, s.t, s.sellerSk)));
    const check = verifyAdaptorReveal(s.manifest, beaconHash, reveal, (i) => s.content.ciphertexts[i]);
    expect(check.ok).toBe(true);
    return sampleIndices(s.manifest, beaconHash);
  }

  /** Funds one pledge per buyer in one transaction; each buyer pre-signs its claim and publishes the pre-signature. */
  async function pledge(s: AdaptorSale, n: number, value: bigint): Promise<(PresignedPledge & { sk: Uint8Array })[]> {
    const buyers = Array.from({ length: n }, () => keypair());
    const scripts = buyers.map((b) => adaptorPledgeOutput(s.terms, b.pk).script);
    const txid = await node.send(scripts.map((script) => ({ script, sats: value })), { confirm: true });
    const tx = RawTx.decode(hexToBytes(await node.rpc<string>('getrawtransaction', [txid, 0])));
    return buyers.map((b, i) => {
      const vout = tx.outputs.findIndex((o) => bytesToHex(o.script) === bytesToHex(scripts[i] as Uint8Array));
      const p = { txid, vout, value, buyerKey: b.pk };
      return { ...p, sk: b.sk, presig: presignPledgeClaim(s.terms, p, b.sk) };
    });
  }

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
  });
  afterAll(async () => {
    await node?.stop();
  });

  describe('N = 32, s = 8: five buyers, four claimed in one transaction, one refunded', () => {
    let sale: AdaptorSale;
    let pledges: (PresignedPledge & { sk: Uint8Array })[];
    /** The public board of pre-signature announcements (storage, the seller's API...): here, an array of encoded ones. */
    let board: Uint8Array[];
    const presigsOn = (b: readonly Uint8Array[]): Uint8Array[] => b.map((x) => decodePresigAnnouncement(x).presig);

    beforeAll(async () => {
      sale = makeAdaptorSale(32, 8, (await tipHeight(node)) + 4);
      await sampleOf(sale);
      pledges = await pledge(sale, 5, 40_000n);
      board = pledges.map((p) => encodePresigAnnouncement({ manifestHash: sale.manifest.hash, txid: p.txid, vout: p.vout, buyerKey: p.buyerKey, presig: p.presig }));
    });

    it('the seller counts the announced pledges it finds on chain, pre-signatures checked', async () => {
      const tip = await tipHeight(node);
      const candidates = await Promise.all(board.map(async (bytes) => {
        const a = decodePresigAnnouncement(bytes);
        const out = await node.rpc<{ value: number; scriptPubKey: { hex: string } }>('gettxout', [a.txid, a.vout]);
        const height = tip - (await node.rpc<{ confirmations: number }>('getrawtransaction', [a.txid, 1])).confirmations + 1;
        return { ...a, value: BigInt(Math.round(out.value * 1e8)), script: hexToBytes(out.scriptPubKey.hex), height };
      }));
      const ev = evaluateAdaptorPledges(sale.manifest, candidates, tip);
      expect(ev.rejected).toEqual([]);
      expect(ev.total).toBe(200_000n);
      expect(ev.thresholdMet).toBe(true);
      for (const p of pledges) expect(verifyPledgePresig(sale.terms, p, p.presig)).toBe(true);
    });

    it('rejects a claim completed with a wrong secret: no t, no payment', async () => {
      const wrong = buildAdaptorClaimTx({ terms: sale.terms, saleSecret: newSaleSecret(), sellerSecretKey: sale.sellerSk, pledges: pledges.slice(0, 4), payoutScript: someP2trScript(), feeRate: 2 });
      expectRejected(await broadcastRaw(node, wrong.raw), BAD_SIG);
    });

    it('nobody can redirect a completed buyer signature without the seller key', async () => {
      const claim = buildAdaptorClaimTx({ terms: sale.terms, saleSecret: sale.t, sellerSecretKey: sale.sellerSk, pledges: pledges.slice(0, 1), payoutScript: someP2trScript(), feeRate: 2 });
      const [, buyerSig, leaf, control] = RawTx.decode(claim.raw).witnesses?.[0] as Uint8Array[];
      const p = pledges[0] as PresignedPledge;
      const out = adaptorPledgeOutput(sale.terms, p.buyerKey);
      const thief = keypair();
      const tx = new Transaction({ version: 2, lockTime: 0, allowUnknownOutputs: true });
      tx.addInput({ txid: p.txid, index: p.vout, sequence: 0xfffffffd, witnessUtxo: { script: out.script, amount: p.value } });
      tx.addOutput({ script: someP2trScript(), amount: p.value - 2_000n });
      const msg = tx.preimageWitnessV1(0, [out.script], 0, [p.value], undefined, leaf as Uint8Array, 0xc0);
      tx.updateInput(0, { finalScriptWitness: [schnorr.sign(msg, thief.sk), buyerSig as Uint8Array, leaf as Uint8Array, control as Uint8Array] });
      expectRejected(await broadcastRaw(node, tx.extract()), BAD_SIG);
    });

    it('a refund before the deadline is refused', async () => {
      const p = pledges[4] as PresignedPledge & { sk: Uint8Array };
      expectRejected(await broadcastRaw(node, buildAdaptorRefundTx({ terms: sale.terms, pledge: p, buyerSecretKey: p.sk, destScript: someP2trScript(), feeRate: 2 }).raw), NON_FINAL);
    });

    it('the seller claims four pledges in one transaction and bumps its fee; a third party extracts t and decrypts every chunk', async () => {
      const claim = buildAdaptorClaimTx({ terms: sale.terms, saleSecret: sale.t, sellerSecretKey: sale.sellerSk, pledges: pledges.slice(0, 4), payoutScript: someP2trScript(), feeRate: 2 });
      expectAccepted(await broadcastRaw(node, claim.raw));
      // From the mempool: a watcher that holds only the public board.
      const fromMempool = hexToBytes(await node.rpc<string>('getrawtransaction', [claim.txid, 0]));
      const t = extractSaleSecret(fromMempool, sale.terms, presigsOn(board));
      expect(t && bytesToHex(t)).toBe(bytesToHex(sale.t));
      // A fee bump reuses the same pre-signatures (they commit to no output) and replaces the claim.
      const bumped = buildAdaptorClaimTx({ terms: sale.terms, saleSecret: sale.t, sellerSecretKey: sale.sellerSk, pledges: pledges.slice(0, 4), payoutScript: someP2trScript(), feeRate: 5 });
      expectAccepted(await broadcastRaw(node, bumped.raw));
      const mempool = await node.rpc<string[]>('getrawmempool', [false]);
      expect(mempool).toContain(bumped.txid);
      expect(mempool).not.toContain(claim.txid);
      await node.mine(1);
      expect(await node.rpc<string[]>('getrawmempool', [false])).not.toContain(bumped.txid);
      const confirmed = hexToBytes(await node.rpc<string>('getrawtransaction', [bumped.txid, 0]));
      // Any one pre-signature is enough.
      const t2 = extractSaleSecret(confirmed, sale.terms, presigsOn([board[2] as Uint8Array]));
      expect(t2 && bytesToHex(t2)).toBe(bytesToHex(sale.t));
      const keys = deriveChunkKeys(t2 as Uint8Array, sale.content.contentId, 32);
      expect(decryptContent(sale.content, sale.content.ciphertexts, keys)).toEqual(sale.plaintext);
      const perPledge = claim.vsize / 4;
      expect(perPledge).toBeLessThan(150);
      console.info(`[adaptor claim] N=32 s=8: ${claim.vsize} vB for 4 pledges, ${perPledge} vB per pledge (weight ${claim.weight})`);
    });

    it('the pledge nobody claimed refunds at the deadline (wrong nSequence refused)', async () => {
      const p = pledges[4] as PresignedPledge & { sk: Uint8Array };
      const opts = { terms: sale.terms, pledge: p, buyerSecretKey: p.sk, destScript: someP2trScript(), feeRate: 2 };
      await mineTo(node, sale.terms.deadlineHeight);
      expectRejected(await broadcastRaw(node, buildAdaptorRefundTx({ ...opts, sequence: 0xffffffff }).raw), /locktime|finalized/i);
      expectAccepted(await broadcastRaw(node, buildAdaptorRefundTx(opts).raw));
      await node.mine(1);
    });
  });

  it('N = 128, s = 32: the same claim size per pledge, and every chunk decrypts', async () => {
    const sale = makeAdaptorSale(128, 32, (await tipHeight(node)) + 4);
    await sampleOf(sale);
    const pledges = await pledge(sale, 3, 30_000n);
    const claim = buildAdaptorClaimTx({ terms: sale.terms, saleSecret: sale.t, sellerSecretKey: sale.sellerSk, pledges, payoutScript: someP2trScript(), feeRate: 2 });
    expectAccepted(await broadcastRaw(node, claim.raw));
    await node.mine(1);
    const raw = hexToBytes(await node.rpc<string>('getrawtransaction', [claim.txid, 0]));
    const t = extractSaleSecret(raw, sale.terms, [pledges[1]!.presig]);
    expect(t).not.toBeNull();
    expect(decryptContent(sale.content, sale.content.ciphertexts, deriveChunkKeys(t as Uint8Array, sale.content.contentId, 128))).toEqual(sale.plaintext);
    expect(claim.vsize / 3).toBeLessThan(150);
    console.info(`[adaptor claim] N=128 s=32: ${claim.vsize} vB for 3 pledges, ${(claim.vsize / 3).toFixed(2)} vB per pledge`);
  });
});
