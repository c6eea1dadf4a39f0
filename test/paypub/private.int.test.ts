/**
 * PayPub private mode end to end on each regtest node: a buyer's daemon gets signed terms from the
 * seller's daemon over HTTP, funds the HTLC, the seller's daemon claims it with the secret, and
 * the buyer's daemon opens the wrap and decrypts; an observer learns nothing from the claim.
 * Then a malicious seller hands over a bad wrap: the buyer's watcher turns the claim into a
 * fraud proof, which a third party (library and CLI) verifies against the chain.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../../src/chain/open.js';
import type { ChainSource } from '../../src/chain/types.js';
import { sha256 } from '../../src/paypub/bytes.js';
import { decodeOfferLink } from '../../src/paypub/link.js';
import type { Manifest } from '../../src/paypub/manifest.js';
import { buildHtlcClaimTx, checkFraudProof, decodeFraudProof, sealWrap, signOffer, type Offer } from '../../src/paypub/private.js';
import { PaypubService } from '../../src/paypub/service.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { createKeystore } from '../../src/wallet/keystore.js';
import { PAYPUB_SELLER, WalletKeys } from '../../src/wallet/keys.js';
import { Wallet } from '../../src/wallet/wallet.js';
import { runCliJson } from '../support/cli.js';
import { FAST_SCRYPT, PASS, fundParty, removeParty, startParty, type Party, outboxPath, unlockedPath } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('PayPub on %s', (kind) => {
  useNodeKind(kind);

  let node: RegtestNode;
  let seller: Party;
  let buyer: Party;
  let observer: Party;
  let offer = '';
  let id = '';
  const file = new Uint8Array(randomBytes(64 * 1024 + 3));

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
    seller = await startParty('seller', node);
    buyer = await startParty('buyer', node);
    observer = await startParty('observer', node);
    for (const p of [seller, buyer]) await fundParty(node, p, 1_000_000n);
  const path = outboxPath(seller, 'secret.bin');
    writeFileSync(path, file);
    const pub = await seller.ok<{ id: string; beaconHeight: number; mode: string }>('POST', '/paypub/publish', {
      path, mode: 'private', price: '80000', chunks: 16, sample: 4, beaconIn: 3, deadlineIn: 14, feeRate: 2,
    });
    expect(pub.mode).toBe('private');
    id = pub.id;
    await node.mine(1);
    await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
    await mineTo(node, pub.beaconHeight + 1);
    await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
    offer = (await seller.ok<{ offer: string }>('GET', `/paypub/sales/${id}/offer`)).offer;
  });

  afterAll(async () => {
    for (const p of [seller, buyer, observer]) await p?.stop().catch(() => undefined);
    await node?.stop();
    for (const p of [seller, buyer, observer]) removeParty(p);
  });

  describe('private mode', () => {
    it('end to end: terms over HTTP, HTLC funded, claimed by the seller\'s daemon, opened by the buyer\'s', async () => {
      expect((await observer.ok<{ ok: boolean }>('POST', '/paypub/verify', { offer })).ok).toBe(true);
      const bought = await buyer.ok<{ txid: string; vout: number; value: string; csvDelay: number; announced: boolean }>('POST', '/paypub/buy', {
      offer, feeRate: 2, out: 'secret.bin',
      });
      expect(bought.value).toBe('80000');
      expect(bought.csvDelay).toBe(10);
      expect(bought.announced).toBe(true);
      await node.mine(1);
      const claim = await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id);
      const unlocked = await buyer.waitFor('paypub.unlocked', (e) => e.data.id === id, 10_000);
      expect((unlocked.data.at as number) - (claim.data.broadcastAt as number)).toBeLessThan(1000);
    expect(Buffer.compare(readFileSync(unlockedPath(buyer, 'secret.bin')), Buffer.from(file))).toBe(0);
      await node.mine(1);
      await waitUntil(async () => (await buyer.ok<{ phase: string }>('GET', `/paypub/sales/${id}`)).phase === 'claimed', 'buyer sees the claim mined', 30_000);
      // the secret is public now, but only the wrap's holder can use it
      const seen = await observer.ok<{ keys: { known: number } }>('GET', `/paypub/sales/${id}`);
      expect(seen.keys.known).toBe(4);
      expect((await buyer.ok<{ frauds: unknown[] }>('GET', `/paypub/sales/${id}`)).frauds).toHaveLength(0);
    });

    describe('a dishonest seller (terms handed over out of band)', () => {
      // The buyer here is a library-level service that acts on its own like the daemon's; the
      // seller signs whatever it likes with its own key.
      const dir = mkdtempSync(join(tmpdir(), 'dd-paypub-victim-'));
      let chain: ChainSource | undefined;
      let wallet: Wallet | undefined;
      let service: PaypubService | undefined;
      const events: { type: string; data: Record<string, unknown> }[] = [];
      let m: Manifest;
      let sellerSk: Uint8Array;

      /** Terms whose wrap holds random keys; the secret comes back to the caller. */
      const badTerms = (secret: Uint8Array, keep: (o: Offer) => void) => async (buyerKey: Uint8Array) => {
        const paymentHash = sha256(secret);
        const wrap = sealWrap(secret, Array.from({ length: m.chunkCount }, () => new Uint8Array(randomBytes(32))), m.hash, paymentHash);
        const o = signOffer({ manifestHash: m.hash, buyerKey, paymentHash, amount: m.price, csvDelay: 10, wrapHash: sha256(wrap) }, sellerSk);
        keep(o);
        return { offer: o, wrap };
      };

      beforeAll(async () => {
        const { mnemonic } = await createKeystore(dir, { passphrase: PASS, network: 'regtest', scrypt: FAST_SCRYPT, birthdayHeight: await node.rpc<number>('getblockcount') });
        const keys = WalletKeys.fromMnemonic(mnemonic, 'regtest');
        chain = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
        await chain.ready();
        wallet = new Wallet({ keys, source: chain, db: join(dir, 'wallet.db'), follow: true, pollIntervalMs: 500 });
        await wallet.ready();
        service = new PaypubService({ chain, wallet, keys, datadir: dir, network: 'regtest', auto: true, pollIntervalMs: 500, publish: (type, _id, data) => events.push({ type, data }) });
        await service.ready();
        await node.fund(await wallet.newReceiveAddress(), 500_000n, { confirm: true });
        await waitUntil(async () => (await wallet!.sync(), (await wallet!.balance()).confirmed === 500_000n), 'victim funded', 30_000);
        m = decodeOfferLink(offer, 'regtest').manifest;
        sellerSk = WalletKeys.fromMnemonic(seller.mnemonic, 'regtest').paypubKey(PAYPUB_SELLER, 0).privateKey;
      });

      afterAll(async () => {
        await service?.close();
        await wallet?.close();
        await chain?.close();
        rmSync(dir, { recursive: true, force: true });
      });

      it('a bad wrap yields a fraud proof that a third party verifies', async () => {
        const secret = new Uint8Array(randomBytes(32));
        let badOffer: Offer | undefined;
        const bought = await service!.buy(offer, { feeRate: 2, terms: badTerms(secret, (o) => (badOffer = o)) });
        await node.mine(1);
        const claim = buildHtlcClaimTx({
          manifest: m, offer: badOffer!, secret, sellerSecretKey: sellerSk, utxo: { txid: bought.txid, vout: bought.vout, value: bought.value },
          payoutScript: Uint8Array.of(0x51, 0x20, ...m.sellerKey), feeRate: 2,
        });
        expect((await chain!.broadcast(claim.raw)).accepted).toBe(true);
        await waitUntil(() => events.some((e) => e.type === 'paypub.fraud'), 'the victim\'s watcher convicts the seller', 10_000);
        const st = await service!.status(id);
        expect(st.keys.known).toBe(4); // nothing but the sample
        const proofHex = st.frauds[0]?.proof as string;
        await node.mine(1);

        // A third party: the proof convicts, and the claim it names is confirmed on its own node.
        const verdict = checkFraudProof(decodeFraudProof(new Uint8Array(Buffer.from(proofHex, 'hex'))));
        expect(verdict).toMatchObject({ fraud: true, claimTxid: claim.txid });
        const onChain = await node.rpc<{ confirmations?: number }>('getrawtransaction', [claim.txid, 1]);
        expect(onChain.confirmations).toBeGreaterThanOrEqual(1);
        const cli = await runCliJson<{ fraud: boolean; claimTxid: string }>(['paypub', 'check-fraud', proofHex]);
        expect(cli).toMatchObject({ fraud: true, claimTxid: claim.txid });
        // a proof whose wrap was swapped convicts nobody
        const parts = decodeFraudProof(new Uint8Array(Buffer.from(proofHex, 'hex')));
        expect(checkFraudProof({ ...parts, wrap: sealWrap(secret, [], m.hash, sha256(secret)) }).fraud).toBe(false);
      });

      it('an HTLC the seller never claims is refunded on its own once it has csvDelay confirmations', async () => {
        const bought = await service!.buy(offer, { feeRate: 2, terms: badTerms(new Uint8Array(randomBytes(32)), () => undefined) });
        await node.mine(1);
        const funded = await node.rpc<number>('getblockcount');
        await mineTo(node, funded + 8); // 9 confirmations: one short
        await new Promise((r) => setTimeout(r, 1500));
        expect(events.some((e) => e.type === 'paypub.refund.broadcast' && e.data.pledge === `${bought.txid}:${bought.vout}`)).toBe(false);
        await node.mine(1);
        await waitUntil(() => events.some((e) => e.type === 'paypub.refund.broadcast' && e.data.pledge === `${bought.txid}:${bought.vout}`), 'the CSV refund', 15_000);
        const refund = events.find((e) => e.type === 'paypub.refund.broadcast' && e.data.pledge === `${bought.txid}:${bought.vout}`)!;
        expect(BigInt(refund.data.value as string) + BigInt(refund.data.fee as string)).toBe(80_000n);
        await node.mine(1);
        await waitUntil(async () => (await service!.status(id)).refunds.some((r) => r.txid === refund.data.txid && r.status === 'confirmed'), 'refund confirmed', 30_000);
      });
    });
  });
});
