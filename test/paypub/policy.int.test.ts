/**
 * PayPub scripts against each regtest node (btcd `--rejectnonstd`, Core's default policy): every verdict below is the node's
 * own mempool acceptance (`sendrawtransaction`), not an assertion of ours about scripts.
 */
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { RawTx } from '@scure/btc-signer/script.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectKeys, decryptContent } from '../../src/paypub/content.js';
import { anchorScript, checkAnchorTiming, findAnchorOutput } from '../../src/paypub/manifest.js';
import { evaluatePledges } from '../../src/paypub/pledges.js';
import {
  buildCsvRefundTx, buildHtlcClaimTx, createPrivateSale, extractHtlcSecret, htlcOutput, openWrap,
} from '../../src/paypub/private.js';
import { createReveal, sampleIndices, unsampledIndices } from '../../src/paypub/sample.js';
import {
  buildClaimTx, buildRefundTx, claimStack, extractClaimKeys, pledgeOutput, spendScriptPath, type PledgeUtxo, type ScriptPathInput,
} from '../../src/paypub/scripts.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { keypair, makeSale, someP2trScript, type Sale } from '../support/paypub-fixtures.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { broadcastRaw, expectAccepted, expectRejected, mineTo, tipHeight } from '../support/regtest-tx.js';

describe.each(chainNodes())('PayPub on %s', (kind) => {
  useNodeKind(kind);

  let node: RegtestNode;


  /** Pays each script from the harness wallet in one tx, mines it, returns the outpoints. */
  async function fundScripts(outs: { script: Uint8Array; sats: bigint }[]): Promise<{ txid: string; vout: number; height: number }[]> {
    const txid = await node.send(outs.map((o) => ({ script: o.script, sats: o.sats })), { confirm: true });
    const tx = RawTx.decode(hexToBytes(await node.rpc<string>('getrawtransaction', [txid, 0])));
    const height = await tipHeight(node);
    return outs.map((o) => {
      const vout = tx.outputs.findIndex((x) => bytesToHex(x.script) === bytesToHex(o.script));
      expect(vout).toBeGreaterThanOrEqual(0);
      return { txid, vout, height };
    });
  }

  // Rejection reasons, worded so both btcd and Bitcoin Core match.
  const SCRIPT_HASH = /equalverify/i;
  const BAD_SIG = /checksig|schnorr signature/i;
  const NON_FINAL = /not finalized|non-final/i;
  const CLTV = /locktime requirement not satisfied|input is finalized/i;
  const BIP68 = /sequence locks|non-bip68-final/i;
  const RBF_FEE = /insufficient fee/i;

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
  });

  afterAll(async () => {
    await node?.stop();
  });

  describe('public mode', () => {
    let sale: Sale;
    let sampled: number[];
    let beaconHash: string;
    const buyers = [keypair(), keypair(), keypair(), keypair()];
    let pledges: (PledgeUtxo & { height: number })[];
    const payout = someP2trScript();

    beforeAll(async () => {
      const h0 = await tipHeight(node);
      sale = makeSale({ beaconHeight: h0 + 4, size: 32 * 1000 + 5 });
      // anchor the manifest hash, then let the beacon come and mature
      const [anchor] = await fundScripts([{ script: anchorScript(sale.manifest), sats: 0n }]);
      const anchorRaw = hexToBytes(await node.rpc<string>('getrawtransaction', [anchor?.txid, 0]));
      expect(findAnchorOutput(anchorRaw, sale.manifest.hash)).toBe(anchor?.vout);
      expect(checkAnchorTiming(sale.manifest, anchor?.height as number)).toEqual({ ok: true });
      await mineTo(node, sale.manifest.beaconHeight + 1);
      beaconHash = await node.rpc<string>('getblockhash', [sale.manifest.beaconHeight]);
      sampled = sampleIndices(sale.manifest, beaconHash);
      const value = 40_000n;
      const outs = buyers.map((b) => ({ script: pledgeOutput(sale.manifest, sampled, { buyerKey: b.pk }).script, sats: value }));
      const funded = await fundScripts(outs);
      pledges = funded.map((f, i) => ({ ...f, value, buyerKey: (buyers[i] as { pk: Uint8Array }).pk }));
    });

    /** A claim of pledges[0..2] with a custom stack (and signer), for the rejection cases. */
    function claimVariant(stack: (sig: Uint8Array) => Uint8Array[], secretKey = sale.sellerSk): Uint8Array {
      const inputs: ScriptPathInput[] = pledges.slice(0, 3).map((p) => {
        const out = pledgeOutput(sale.manifest, sampled, p);
        return { txid: p.txid, vout: p.vout, value: p.value, prevScript: out.script, leaf: out.claim, secretKey, stack };
      });
      return spendScriptPath({ inputs, destScript: payout, feeRate: 2 }).raw;
    }

    it('the pledges count toward the threshold as seen on chain', async () => {
      const candidates = pledges.map((p) => ({ ...p, script: pledgeOutput(sale.manifest, sampled, p).script }));
      const ev = evaluatePledges(sale.manifest, sampled, candidates.slice(0, 3), await tipHeight(node));
      expect(ev.thresholdMet).toBe(true);
    });

    it('rejects a claim with a wrong key', async () => {
      const good = claimStack(sale.manifest, sampled, sale.content.keys);
      expectRejected(await broadcastRaw(node, claimVariant((sig) => {
        const s = good(sig);
        s[3] = randomBytes(32);
        return s;
      })), SCRIPT_HASH);
    });

    it('rejects a claim with a missing key', async () => {
      const good = claimStack(sale.manifest, sampled, sale.content.keys);
      expectRejected(await broadcastRaw(node, claimVariant((sig) => good(sig).slice(0, -1))), SCRIPT_HASH);
      expectRejected(await broadcastRaw(node, claimVariant((sig) => [sig, ...good(sig).slice(2)])), SCRIPT_HASH);
    });

    it('rejects a claim with misordered keys', async () => {
      const good = claimStack(sale.manifest, sampled, sale.content.keys);
      expectRejected(await broadcastRaw(node, claimVariant((sig) => {
        const s = good(sig);
        [s[1], s[2]] = [s[2] as Uint8Array, s[1] as Uint8Array];
        return s;
      })), SCRIPT_HASH);
      expectRejected(await broadcastRaw(node, claimVariant((sig) => [sig, ...good(sig).slice(1).reverse()])), SCRIPT_HASH);
    });

    it('rejects a claim by the wrong signer', async () => {
      expectRejected(await broadcastRaw(node, claimVariant(claimStack(sale.manifest, sampled, sale.content.keys), keypair().sk)), BAD_SIG);
    });

    it('rejects a refund before the deadline (non-final nLockTime, or a final one that fails CLTV)', async () => {
      const p = pledges[3] as PledgeUtxo;
      const sk = (buyers[3] as { sk: Uint8Array }).sk;
      const early = buildRefundTx({ manifest: sale.manifest, sampled, pledge: p, buyerSecretKey: sk, destScript: someP2trScript(), feeRate: 2 });
      expectRejected(await broadcastRaw(node, early.raw), NON_FINAL);
      const lowLock = buildRefundTx({
        manifest: sale.manifest, sampled, pledge: p, buyerSecretKey: sk, destScript: someP2trScript(), feeRate: 2, lockTime: await tipHeight(node),
      });
      expectRejected(await broadcastRaw(node, lowLock.raw), CLTV);
    });

    it('accepts a valid claim of three pledges in one RBF transaction, which publishes every key; a fee bump replaces it', async () => {
      const base = { manifest: sale.manifest, sampled, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, pledges: pledges.slice(0, 3), payoutScript: payout };
      const claim = buildClaimTx({ ...base, feeRate: 2 });
      expectAccepted(await broadcastRaw(node, claim.raw));
      // a watcher reads the keys back from the node's mempool copy
      const fromMempool = hexToBytes(await node.rpc<string>('getrawtransaction', [claim.txid, 0]));
      const keys = extractClaimKeys(fromMempool, sale.manifest);
      expect([...keys.keys()].sort((a, b) => a - b)).toEqual(unsampledIndices(32, sampled));
      // with the sampled keys from the seller's reveal, an observer who never paid has them all
      const reveal = createReveal(sale.manifest, beaconHash, sale.content.keys, sale.sellerSk);
      const { keys: all } = collectKeys(sale.manifest, new Map(reveal.indices.map((i, j) => [i, reveal.keys[j] as Uint8Array])), keys);
      expect(decryptContent(sale.manifest, sale.content.ciphertexts, all as Uint8Array[])).toEqual(sale.plaintext);
      const bumped = buildClaimTx({ ...base, feeRate: 5 });
      expect(bumped.txid).not.toBe(claim.txid);
      expectAccepted(await broadcastRaw(node, bumped.raw));
      const mempool = await node.rpc<string[]>('getrawmempool', [false]);
      expect(mempool).toContain(bumped.txid);
      expect(mempool).not.toContain(claim.txid);
      await node.mine(1);
      const confirmed = hexToBytes(await node.rpc<string>('getrawtransaction', [bumped.txid, 0]));
      expect(extractClaimKeys(confirmed, sale.manifest).size).toBe(32 - 8);
    });

    it('refund: wrong nSequence rejected at the deadline, the right one accepted; not one block earlier', async () => {
      const p = pledges[3] as PledgeUtxo;
      const sk = (buyers[3] as { sk: Uint8Array }).sk;
      const opts = { manifest: sale.manifest, sampled, pledge: p, buyerSecretKey: sk, destScript: someP2trScript(), feeRate: 2 };
      await mineTo(node, sale.manifest.deadlineHeight - 1);
      expectRejected(await broadcastRaw(node, buildRefundTx(opts).raw), NON_FINAL);
      await mineTo(node, sale.manifest.deadlineHeight);
      expectRejected(await broadcastRaw(node, buildRefundTx({ ...opts, sequence: 0xffffffff }).raw), CLTV);
      const refund = buildRefundTx(opts);
      expectAccepted(await broadcastRaw(node, refund.raw));
      expect(extractClaimKeys(refund.raw, sale.manifest).size).toBe(0);
    });
  });

  describe('claim/refund race after the deadline', () => {
    it('both orders: whichever the node sees first wins unless the other replaces it by fee; keys seen in a replaced claim stay known', async () => {
      const h0 = await tipHeight(node);
      const sale = makeSale({ beaconHeight: h0 + 3, chunks: 8, sample: 2 });
      await mineTo(node, sale.manifest.beaconHeight + 1);
      const sampled = sampleIndices(sale.manifest, await node.rpc<string>('getblockhash', [sale.manifest.beaconHeight]));
      const [a, b] = [keypair(), keypair()];
      const value = 50_000n;
      const funded = await fundScripts([a, b].map((k) => ({ script: pledgeOutput(sale.manifest, sampled, { buyerKey: k.pk }).script, sats: value })));
      const pa = { ...(funded[0] as { txid: string; vout: number }), value, buyerKey: a.pk };
      const pb = { ...(funded[1] as { txid: string; vout: number }), value, buyerKey: b.pk };
      await mineTo(node, sale.manifest.deadlineHeight);
      const claimOf = (p: PledgeUtxo, feeRate: number) => buildClaimTx({
        manifest: sale.manifest, sampled, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, pledges: [p], payoutScript: someP2trScript(), feeRate,
      });
      const refundOf = (p: PledgeUtxo, sk: Uint8Array, feeRate: number) => buildRefundTx({
        manifest: sale.manifest, sampled, pledge: p, buyerSecretKey: sk, destScript: someP2trScript(), feeRate,
      });
      // claim first: a refund at the same fee cannot replace it; one paying more does, but the keys are out
      const claimA = claimOf(pa, 2);
      expectAccepted(await broadcastRaw(node, claimA.raw));
      expectRejected(await broadcastRaw(node, refundOf(pa, a.sk, 2).raw), RBF_FEE);
      const refundA = refundOf(pa, a.sk, Math.ceil(Number(claimA.fee) / 100) + 5);
      expect(refundA.fee).toBeGreaterThan(claimA.fee);
      expectAccepted(await broadcastRaw(node, refundA.raw));
      expect(extractClaimKeys(claimA.raw, sale.manifest).size).toBe(6);
      // refund first: a claim at the same fee rate cannot replace it
      expectAccepted(await broadcastRaw(node, refundOf(pb, b.sk, 2).raw));
      expectRejected(await broadcastRaw(node, claimOf(pb, 2).raw), RBF_FEE);
      await node.mine(1);
    });
  });

  describe('private mode', () => {
    it('HTLC: wrong secret rejected, right one accepted and read back from the mempool; CSV refund only after the delay', async () => {
      const h0 = await tipHeight(node);
      const sale = makeSale({ mode: 'private', chunks: 16, sample: 4, beaconHeight: h0 + 3 });
      const buyer = keypair();
      const ps1 = createPrivateSale({ manifest: sale.manifest, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, buyerKey: buyer.pk });
      const ps2 = createPrivateSale({ manifest: sale.manifest, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, buyerKey: buyer.pk });
      const price = sale.manifest.price;
      const [f1, f2] = await fundScripts([ps1, ps2].map((ps) => ({ script: htlcOutput(sale.manifest, ps.offer).script, sats: price })));
      const u1 = { txid: f1?.txid as string, vout: f1?.vout as number, value: price };
      const u2 = { txid: f2?.txid as string, vout: f2?.vout as number, value: price };
      const claimOpts = { manifest: sale.manifest, offer: ps1.offer, sellerSecretKey: sale.sellerSk, utxo: u1, payoutScript: someP2trScript(), feeRate: 2 };
      expectRejected(await broadcastRaw(node, buildHtlcClaimTx({ ...claimOpts, secret: randomBytes(32) }).raw), SCRIPT_HASH);
      expectRejected(await broadcastRaw(node, buildHtlcClaimTx({ ...claimOpts, secret: ps1.secret, sellerSecretKey: keypair().sk }).raw), BAD_SIG);
      const claim = buildHtlcClaimTx({ ...claimOpts, secret: ps1.secret });
      expectAccepted(await broadcastRaw(node, claim.raw));
      const seen = hexToBytes(await node.rpc<string>('getrawtransaction', [claim.txid, 0]));
      const s = extractHtlcSecret(seen, ps1.offer, sale.manifest.sellerKey);
      expect(s).toEqual(ps1.secret);
      const opened = openWrap(sale.manifest, ps1.offer, ps1.wrap, s as Uint8Array);
      expect(opened.ok && decryptContent(sale.manifest, sale.content.ciphertexts, opened.keys)).toEqual(sale.plaintext);

      // HTLC 2: refund via CSV. f2 has 1 confirmation now; valid once it has csvDelay (10).
      const refundOpts = { manifest: sale.manifest, offer: ps2.offer, buyerSecretKey: buyer.sk, utxo: u2, destScript: someP2trScript(), feeRate: 2 };
      const confirmations = async (): Promise<number> => (await tipHeight(node)) - (f2?.height as number) + 1;
      await node.mine(ps2.offer.csvDelay - 1 - (await confirmations()));
      expect(await confirmations()).toBe(ps2.offer.csvDelay - 1);
      expectRejected(await broadcastRaw(node, buildCsvRefundTx(refundOpts).raw), BIP68);
      await node.mine(1);
      // a shorter nSequence fails the script's CSV check even though BIP68 is satisfied
      expectRejected(await broadcastRaw(node, buildCsvRefundTx({ ...refundOpts, sequence: 1 }).raw), CLTV);
      expectAccepted(await broadcastRaw(node, buildCsvRefundTx(refundOpts).raw));
    });
  });
});
