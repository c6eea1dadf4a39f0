/**
 * Counting version 2 pledges (src/paypub/adaptor-pledges.ts) and the pre-signature
 * announcement codec.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { adaptorPledgeOutput, presignPledgeClaim } from '../../src/paypub/adaptor-claim.js';
import { adaptorTerms, createAdaptorManifest, type AdaptorManifest } from '../../src/paypub/adaptor-manifest.js';
import {
  PRESIG_ANNOUNCEMENT_BYTES, decodePresigAnnouncement, encodePresigAnnouncement, evaluateAdaptorPledges, type AdaptorPledgeCandidate,
} from '../../src/paypub/adaptor-pledges.js';
import { deriveChunkKeys, newSaleSecret } from '../../src/paypub/chunk-keys.js';
import { encryptContentWithKeys } from '../../src/paypub/content.js';
import { toHex } from '../../src/util/bytes.js';
import { expectCode } from '../support/errors.js';
import { keypair } from '../support/paypub-fixtures.js';

function manifest(): AdaptorManifest {
  const t = newSaleSecret();
  const contentId = randomBytes(32);
  const content = encryptContentWithKeys(randomBytes(200), deriveChunkKeys(t, contentId, 8), contentId);
  return createAdaptorManifest({
    content, saleSecret: t, network: 'regtest', price: 50_000n, threshold: 100_000n, minPledge: 10_000n, sampleSize: 2, beaconHeight: 110,
    deadlineHeight: 150, sellerSecretKey: schnorr.utils.randomSecretKey(),
  });
}

function candidate(m: AdaptorManifest, value: bigint, height: number): AdaptorPledgeCandidate {
  const b = keypair();
  const p = { txid: toHex(randomBytes(32)), vout: 1, value, buyerKey: b.pk };
  return { ...p, presig: presignPledgeClaim(adaptorTerms(m), p, b.sk), script: adaptorPledgeOutput(adaptorTerms(m), b.pk).script, height };
}

describe('evaluateAdaptorPledges', () => {
  it('counts confirmed pledges with a valid pre-signature; the threshold met exactly counts, one sat short does not', () => {
    const m = manifest();
    const a = candidate(m, 60_000n, 120);
    const b = candidate(m, 40_000n, 121);
    expect(evaluateAdaptorPledges(m, [a, b], 121)).toMatchObject({ total: 100_000n, thresholdMet: true, shortfall: 0n });
    const short = candidate(m, 39_999n, 121);
    expect(evaluateAdaptorPledges(m, [a, short], 121)).toMatchObject({ total: 99_999n, thresholdMet: false, shortfall: 1n });
  });

  it('rejects duplicates, wrong scripts, small, unconfirmed pledges and bad pre-signatures, naming each', () => {
    const m = manifest();
    const good = candidate(m, 20_000n, 120);
    const other = candidate(m, 20_000n, 120);
    const cases: AdaptorPledgeCandidate[] = [
      good, good,
      { ...other, script: candidate(m, 1n, 1).script },
      candidate(m, 9_999n, 120),
      candidate(m, 20_000n, 0),
      { ...other, txid: toHex(randomBytes(32)), presig: good.presig },
    ];
    const ev = evaluateAdaptorPledges(m, cases, 121);
    expect(ev.counted).toEqual([good]);
    expect(ev.rejected.map((r) => r.reason)).toEqual(['duplicate', 'wrong-script', 'below-minimum', 'unconfirmed', 'bad-presig']);
  });
});

describe('pre-signature announcement', () => {
  it('round-trips, and refuses another version, truncation and trailing bytes', () => {
    const m = manifest();
    const c = candidate(m, 20_000n, 120);
    const a = { manifestHash: m.hash, txid: c.txid, vout: c.vout, buyerKey: c.buyerKey, presig: c.presig };
    const bytes = encodePresigAnnouncement(a);
    expect(bytes.length).toBe(PRESIG_ANNOUNCEMENT_BYTES);
    expect(decodePresigAnnouncement(bytes)).toEqual(a);
    expectCode(() => decodePresigAnnouncement(Uint8Array.of(1, ...bytes.subarray(1))), 'PROTOCOL');
    expectCode(() => decodePresigAnnouncement(bytes.subarray(0, 129)), 'PROTOCOL');
    expectCode(() => decodePresigAnnouncement(Uint8Array.of(...bytes, 0)), 'PROTOCOL');
    expect(() => encodePresigAnnouncement({ ...a, txid: 'zz' })).toThrow(TypeError);
  });
});
