/**
 * Builds the committed adaptor-claim vector (test/vectors/paypub/adaptor-claim.json): chunk
 * points, key points and keys from a fixed sale secret, a DLEQ proof, the pledge output, the
 * buyer's SIGHASH_NONE|ANYONECANPAY pre-signature, and a two-pledge claim transaction.
 * test/paypub/adaptor-claim.test.ts rebuilds it and compares; regenerate on purpose with
 * `npx tsx test/support/adaptor-claim-vectors.ts`. All nonces use fixed aux bytes.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import {
  buildAdaptorClaimTx, claimInputSighash, adaptorPledgeOutput, presignPledgeClaim, type AdaptorSaleTerms, type PresignedPledge,
} from '../../src/paypub/adaptor-claim.js';
import {
  ADAPTOR_MANIFEST_VERSION, ADAPTOR_TAG, adaptorManifestHash, encodeAdaptorManifest, encodeAdaptorReveal, type AdaptorManifest, type AdaptorManifestFields,
} from '../../src/paypub/adaptor-manifest.js';
import { taggedHash } from '../../src/paypub/bytes.js';
import { chunkKeyFromPoint, chunkKeyPoint, chunkPoint, deriveChunkKeys, dleqContext, dleqProve, proveSampledKeys, salePoint } from '../../src/paypub/chunk-keys.js';
import { encryptContentWithKeys, type EncryptedContent } from '../../src/paypub/content.js';
import { sampleIndices } from '../../src/paypub/sample.js';
import { toHex } from '../../src/util/bytes.js';
import { PAYPUB_VECTOR_DIR, fixed } from './paypub-vectors.js';

const ZERO_AUX = new Uint8Array(32);

export const ADAPTOR_VECTOR = {
  saleSecret: fixed('adaptor sale secret'),
  contentId: fixed('adaptor content id'),
  sellerSecretKey: fixed('adaptor seller secret key'),
  buyerSecretKeys: [fixed('adaptor buyer 0'), fixed('adaptor buyer 1')],
  deadlineHeight: 150,
  pledges: [
    { txid: toHex(fixed('adaptor pledge tx 0')), vout: 0, value: 40_000n },
    { txid: toHex(fixed('adaptor pledge tx 1')), vout: 3, value: 25_000n },
  ],
  payoutScript: Uint8Array.of(0x51, 0x20, ...fixed('adaptor payout key')),
};

export function adaptorVectorTerms(): AdaptorSaleTerms {
  return { network: 'regtest', sellerKey: schnorr.getPublicKey(ADAPTOR_VECTOR.sellerSecretKey), deadlineHeight: ADAPTOR_VECTOR.deadlineHeight, salePoint: salePoint(ADAPTOR_VECTOR.saleSecret) };
}

/** The vector's content: 1,000 fixed bytes in 4 chunks under the keys of the sale secret. */
export function adaptorVectorContent(): EncryptedContent {
  const plaintext = new Uint8Array(1000).map((_, i) => (fixed(`adaptor plaintext ${i >> 5}`)[i & 31] as number));
  return encryptContentWithKeys(plaintext, deriveChunkKeys(ADAPTOR_VECTOR.saleSecret, ADAPTOR_VECTOR.contentId, 4), ADAPTOR_VECTOR.contentId);
}

export const ADAPTOR_BEACON = toHex(fixed('adaptor beacon block hash'));

/** The version 2 manifest and reveal of the vector sale, signed with aux_rand zero. */
export function adaptorVectorManifest(): { manifest: AdaptorManifest; reveal: Uint8Array } {
  const v = ADAPTOR_VECTOR;
  const c = adaptorVectorContent();
  const fields: AdaptorManifestFields = {
    version: ADAPTOR_MANIFEST_VERSION, network: 'regtest', mode: 'public', contentId: v.contentId, fileLength: c.fileLength, chunkSize: c.chunkSize,
    chunkCount: 4, sampleSize: 1, price: 50_000n, threshold: 100_000n, minPledge: 10_000n, beaconHeight: 110, deadlineHeight: v.deadlineHeight,
    sellerKey: schnorr.getPublicKey(v.sellerSecretKey), salePoint: salePoint(v.saleSecret), ciphertextHashes: c.ciphertextHashes,
  };
  const hash = adaptorManifestHash(fields);
  const manifest = { ...fields, hash, signature: schnorr.sign(hash, v.sellerSecretKey, ZERO_AUX) };
  const proofs = proveSampledKeys(v.saleSecret, v.contentId, sampleIndices(manifest, ADAPTOR_BEACON), () => ZERO_AUX);
  const unsigned = encodeAdaptorReveal({ manifestHash: hash, beaconHash: ADAPTOR_BEACON, proofs, signature: new Uint8Array(64) });
  const message = taggedHash(ADAPTOR_TAG.reveal, unsigned.subarray(0, unsigned.length - 64));
  const reveal = encodeAdaptorReveal({ manifestHash: hash, beaconHash: ADAPTOR_BEACON, proofs, signature: schnorr.sign(message, v.sellerSecretKey, ZERO_AUX) });
  return { manifest, reveal };
}

export function adaptorClaimVector(): object {
  const v = ADAPTOR_VECTOR;
  const terms = adaptorVectorTerms();
  const chunks = [0, 1, 2, 3].map((i) => {
    const H = chunkPoint(v.contentId, i);
    const K = chunkKeyPoint(v.saleSecret, v.contentId, i);
    return { index: i, H: toHex(H), K: toHex(K), key: toHex(chunkKeyFromPoint(K)), dleqProof: toHex(dleqProve(v.saleSecret, H, dleqContext(v.contentId, i), ZERO_AUX)) };
  });
  const pledges: PresignedPledge[] = v.pledges.map((p, j) => {
    const sk = v.buyerSecretKeys[j] as Uint8Array;
    const pledge = { ...p, buyerKey: schnorr.getPublicKey(sk) };
    return { ...pledge, presig: presignPledgeClaim(terms, pledge, sk, ZERO_AUX) };
  });
  const mv = adaptorVectorManifest();
  const claim = buildAdaptorClaimTx({
    terms, saleSecret: v.saleSecret, sellerSecretKey: v.sellerSecretKey, pledges, payoutScript: v.payoutScript, feeRate: 2, auxRand: ZERO_AUX,
  });
  return {
    description: 'PayPub adaptor claim (src/paypub/chunk-keys.ts, src/paypub/adaptor-claim.ts): H_i = hash_to_curve(contentId || u32 i) with DST deaddrop/paypub/chunk-point/v2, K_i = t*H_i, k_i = taggedHash("deaddrop/paypub/chunk-key/v2", K_i); DLEQ proofs with aux 32 zero bytes; pledges with leaves [<buyer> CHECKSIGVERIFY <seller> CHECKSIG, <deadline> CLTV DROP <buyer> CHECKSIG] under the NUMS key; buyer pre-signatures (aux zero) over the SIGHASH_NONE|ANYONECANPAY (0x82) claim sighash (version 2, locktime 0, sequence 0xfffffffd); the claim at 2 sat/vB with seller signatures (aux zero); the version 2 manifest (4 chunks, 1 sampled, T instead of key commitments) and reveal (K_i with DLEQ proof) of the same sale, signed with aux zero.',
    inputs: {
      saleSecret: toHex(v.saleSecret), contentId: toHex(v.contentId), sellerSecretKey: toHex(v.sellerSecretKey),
      buyerSecretKeys: v.buyerSecretKeys.map(toHex), deadlineHeight: v.deadlineHeight,
      pledges: v.pledges.map((p) => ({ ...p, value: p.value.toString() })), payoutScript: toHex(v.payoutScript), feeRate: 2,
    },
    expected: {
      salePoint: toHex(terms.salePoint),
      chunks,
      pledges: pledges.map((p) => {
        const out = adaptorPledgeOutput(terms, p.buyerKey);
        return {
          buyerKey: toHex(p.buyerKey), script: toHex(out.script), claimLeaf: toHex(out.claim.script), controlBlock: toHex(out.claim.controlBlock),
          sighash: toHex(claimInputSighash(terms, p)), presig: toHex(p.presig),
        };
      }),
      claim: { tx: toHex(claim.raw), txid: claim.txid, vsize: claim.vsize, weight: claim.weight, fee: claim.fee.toString() },
      manifest: toHex(encodeAdaptorManifest(mv.manifest)),
      manifestHash: toHex(mv.manifest.hash),
      beaconHash: ADAPTOR_BEACON,
      reveal: toHex(mv.reveal),
      ciphertexts: adaptorVectorContent().ciphertexts.map(toHex),
    },
  };
}

export function adaptorClaimVectorText(): string {
  return `${JSON.stringify(adaptorClaimVector(), null, 2)}\n`;
}

export const ADAPTOR_VECTOR_FILE = resolve(PAYPUB_VECTOR_DIR, 'adaptor-claim.json');

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) writeFileSync(ADAPTOR_VECTOR_FILE, adaptorClaimVectorText());
