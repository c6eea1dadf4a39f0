import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { RawTx, Script } from '@scure/btc-signer/script.js';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/paypub/bytes.js';
import { decryptContent } from '../../src/paypub/content.js';
import { encodeManifest } from '../../src/paypub/manifest.js';
import {
  buildCsvRefundTx, buildHtlcClaimTx, checkFraudProof, createPrivateSale, decodeFraudProof, decodeOffer, encodeFraudProof,
  encodeOffer, extractHtlcSecret, htlcOutput, openWrap, sealWrap, signOffer, verifyFraudProof, verifyOffer, type FraudProof,
} from '../../src/paypub/private.js';
import { extractClaimKeys } from '../../src/paypub/scripts.js';
import { keypair, makeSale, someP2trScript } from '../support/paypub-fixtures.js';

const sale = makeSale({ mode: 'private', chunks: 16, sample: 4 });
const { manifest: m, content } = sale;
const buyer = keypair();
const utxo = { txid: bytesToHex(randomBytes(32)), vout: 0, value: m.price };

function claimWith(secret: Uint8Array, offer = createPrivateSale({ manifest: m, keys: content.keys, sellerSecretKey: sale.sellerSk, buyerKey: buyer.pk }).offer): Uint8Array {
  return buildHtlcClaimTx({ manifest: m, offer, secret, sellerSecretKey: sale.sellerSk, utxo, payoutScript: someP2trScript(), feeRate: 1 }).raw;
}

describe('private offer', () => {
  const ps = createPrivateSale({ manifest: m, keys: content.keys, sellerSecretKey: sale.sellerSk, buyerKey: buyer.pk });

  it('is signed by the seller, round-trips, and commits to the wrap and SHA256(s_B)', () => {
    expect(verifyOffer(ps.offer, m.sellerKey)).toBe(true);
    expect(verifyOffer(ps.offer, buyer.pk)).toBe(false);
    expect(verifyOffer({ ...ps.offer, amount: ps.offer.amount + 1n }, m.sellerKey)).toBe(false);
    expect(decodeOffer(encodeOffer(ps.offer))).toEqual(ps.offer);
    expect(ps.offer.paymentHash).toEqual(sha256(ps.secret));
    expect(ps.offer.wrapHash).toEqual(sha256(ps.wrap));
    expect(ps.offer.csvDelay).toBe(10);
    expect(() => decodeOffer(encodeOffer(ps.offer).subarray(1))).toThrow();
  });

  it('refuses a public-mode manifest', () => {
    const pub = makeSale();
    expect(() => createPrivateSale({ manifest: pub.manifest, keys: pub.content.keys, sellerSecretKey: pub.sellerSk, buyerKey: buyer.pk })).toThrow(/private/);
  });

  it('HTLC output: NUMS internal key, leaves [hashlock+seller, CSV+buyer]', () => {
    const out = htlcOutput(m, ps.offer);
    expect(bytesToHex(out.internalKey)).toBe('50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0');
    expect(Script.decode(out.claim.script)).toEqual(['SHA256', ps.offer.paymentHash, 'EQUALVERIFY', m.sellerKey, 'CHECKSIG']);
    expect(Script.decode(out.refund.script).slice(1)).toEqual(['CHECKSEQUENCEVERIFY', 'DROP', buyer.pk, 'CHECKSIG']);
  });

  it('the claim reveals s_B to the buyer, which opens the wrap and decrypts the file; nobody learns chunk keys from the chain', () => {
    const raw = buildHtlcClaimTx({ manifest: m, offer: ps.offer, secret: ps.secret, sellerSecretKey: sale.sellerSk, utxo, payoutScript: someP2trScript(), feeRate: 1 }).raw;
    const tx = RawTx.decode(raw);
    expect(tx.inputs[0]?.sequence).toBe(0xfffffffd);
    const s = extractHtlcSecret(raw, ps.offer, m.sellerKey);
    expect(s).toEqual(ps.secret);
    const opened = openWrap(m, ps.offer, ps.wrap, s as Uint8Array);
    expect(opened.ok).toBe(true);
    if (opened.ok) expect(decryptContent(m, content.ciphertexts, opened.keys)).toEqual(sale.plaintext);
    expect(extractClaimKeys(raw, m).size).toBe(0);
    expect(extractHtlcSecret(raw, { paymentHash: sha256(randomBytes(32)) }, m.sellerKey)).toBeNull();
  });

  it('CSV refund sets nSequence to the delay and version 2', () => {
    const r = buildCsvRefundTx({ manifest: m, offer: ps.offer, buyerSecretKey: buyer.sk, utxo, destScript: someP2trScript(), feeRate: 1 });
    const tx = RawTx.decode(r.raw);
    expect(tx.version).toBe(2);
    expect(tx.inputs[0]?.sequence).toBe(10);
    expect(extractHtlcSecret(r.raw, ps.offer, m.sellerKey)).toBeNull();
  });

  it('openWrap rejects a wrong secret and a swapped wrap', () => {
    expect(openWrap(m, ps.offer, ps.wrap, randomBytes(32))).toMatchObject({ ok: false, reason: 'bad-secret' });
    const other = createPrivateSale({ manifest: m, keys: content.keys, sellerSecretKey: sale.sellerSk, buyerKey: buyer.pk });
    expect(openWrap(m, ps.offer, other.wrap, ps.secret)).toMatchObject({ ok: false, reason: 'wrap-hash-mismatch' });
  });
});

describe('fraud proof', () => {
  /** A dishonest seller: a wrap made from `keys`, with an offer that commits to it. */
  function dishonest(keys: readonly Uint8Array[], wrapOverride?: (w: Uint8Array) => Uint8Array): FraudProof {
    const secret = randomBytes(32);
    const paymentHash = sha256(secret);
    const wrap = (wrapOverride ?? ((w) => w))(sealWrap(secret, keys, m.hash, paymentHash));
    const offer = signOffer({ manifestHash: m.hash, buyerKey: buyer.pk, paymentHash, amount: m.price, csvDelay: 10, wrapHash: sha256(wrap) }, sale.sellerSk);
    return { manifest: encodeManifest(m), offer: encodeOffer(offer), wrap, claimTx: claimWith(secret, offer) };
  }

  it('a wrap with one wrong key convicts the seller, verifiable from the proof alone', () => {
    const keys = content.keys.slice();
    keys[9] = randomBytes(32);
    const proof = dishonest(keys);
    const res = checkFraudProof(proof);
    expect(res).toMatchObject({ fraud: true, reason: 'key-mismatch' });
    expect(verifyFraudProof(proof)).toBe(true);
    // the third party gets it as bytes
    expect(verifyFraudProof(decodeFraudProof(encodeFraudProof(proof)))).toBe(true);
    if (res.fraud) expect(res.claimTxid).toHaveLength(64);
  });

  it('an undecryptable wrap or one with too few keys convicts too', () => {
    expect(checkFraudProof(dishonest(content.keys, (w) => Uint8Array.from(w, (x, i) => (i === w.length - 1 ? x ^ 1 : x))))).toMatchObject({ fraud: true, reason: 'aead-failed' });
    expect(checkFraudProof(dishonest(content.keys.slice(0, -1)))).toMatchObject({ fraud: true, reason: 'bad-format' });
  });

  it('a good wrap yields no proof', () => {
    const ps = createPrivateSale({ manifest: m, keys: content.keys, sellerSecretKey: sale.sellerSk, buyerKey: buyer.pk });
    const proof = { manifest: encodeManifest(m), offer: encodeOffer(ps.offer), wrap: ps.wrap, claimTx: claimWith(ps.secret, ps.offer) };
    expect(checkFraudProof(proof)).toMatchObject({ fraud: false, reason: 'wrap opens to the committed keys' });
  });

  it('a buyer cannot frame an honest seller', () => {
    const keys = content.keys.slice();
    keys[0] = randomBytes(32);
    const bad = dishonest(keys);
    const ps = createPrivateSale({ manifest: m, keys: content.keys, sellerSecretKey: sale.sellerSk, buyerKey: buyer.pk });
    const honestClaim = claimWith(ps.secret, ps.offer);
    // a bad wrap the seller never signed
    expect(verifyFraudProof({ ...bad, offer: encodeOffer(ps.offer), claimTx: honestClaim })).toBe(false);
    // an offer signed by someone else
    const forged = signOffer({ ...decodeOffer(bad.offer) }, keypair().sk);
    expect(verifyFraudProof({ ...bad, offer: encodeOffer(forged) })).toBe(false);
    // no claim on chain revealing s_B (the seller was never paid)
    expect(verifyFraudProof({ ...bad, claimTx: honestClaim })).toBe(false);
    // an offer for another manifest
    const other = makeSale({ mode: 'private', chunks: 16, sample: 4, sellerSk: sale.sellerSk });
    expect(verifyFraudProof({ ...bad, manifest: encodeManifest(other.manifest) })).toBe(false);
    // garbage
    expect(verifyFraudProof({ manifest: randomBytes(10), offer: randomBytes(10), wrap: randomBytes(10), claimTx: randomBytes(10) })).toBe(false);
  });
});
