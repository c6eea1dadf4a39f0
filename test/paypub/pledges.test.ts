import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { TIMING } from '../../src/paypub/params.js';
import {
  claimCutoff, claimDecision, evaluatePledges, pledgeDecision, refundDecision, type PledgeCandidate,
} from '../../src/paypub/pledges.js';
import { pledgeOutput } from '../../src/paypub/scripts.js';
import { keypair, makeSale } from '../support/paypub-fixtures.js';

// threshold 100_000, minimum pledge 10_000, beacon 110, deadline 150 (regtest: claim margin 5)
const sale = makeSale();
const { manifest: m, sampled } = sale;
const TIP = 120;

function pledge(value: bigint, o: Partial<PledgeCandidate> = {}): PledgeCandidate {
  const buyerKey = o.buyerKey ?? keypair().pk;
  return {
    txid: bytesToHex(randomBytes(32)), vout: 0, value, buyerKey, height: 115,
    script: o.script ?? pledgeOutput(m, sampled, { buyerKey, r: o.r }).script, ...o,
  };
}

describe('evaluatePledges', () => {
  it('threshold exactly met counts; one sat short does not', () => {
    const exact = evaluatePledges(m, sampled, [pledge(60_000n), pledge(40_000n)], TIP);
    expect(exact).toMatchObject({ total: 100_000n, thresholdMet: true, shortfall: 0n });
    expect(exact.counted).toHaveLength(2);
    const short = evaluatePledges(m, sampled, [pledge(60_000n), pledge(39_999n)], TIP);
    expect(short).toMatchObject({ total: 99_999n, thresholdMet: false, shortfall: 1n });
  });

  it('a pledge to the wrong script does not count', () => {
    const other = makeSale();
    const buyerKey = keypair().pk;
    const wrong = [
      pledge(50_000n, { script: pledgeOutput(other.manifest, other.sampled, { buyerKey }).script, buyerKey }), // another sale
      pledge(50_000n, { script: pledgeOutput(m, [0, 1, 2, 3, 4, 5, 6, 7], { buyerKey }).script, buyerKey }), // another sample
      pledge(50_000n, { buyerKey: keypair().pk, script: pledgeOutput(m, sampled, { buyerKey }).script }), // stated key does not match
      pledge(50_000n, { buyerKey: new Uint8Array(32).fill(0xff), script: new Uint8Array(34) }), // not a valid key at all
    ];
    const ev = evaluatePledges(m, sampled, [...wrong, pledge(60_000n)], TIP);
    expect(ev.rejected.map((r) => r.reason)).toEqual(['wrong-script', 'wrong-script', 'wrong-script', 'wrong-script']);
    expect(ev.total).toBe(60_000n);
  });

  it('a pledge with a tweaked NUMS key counts when r is stated, not otherwise', () => {
    const r = randomBytes(32);
    const p = pledge(100_000n, { r });
    expect(evaluatePledges(m, sampled, [p], TIP).thresholdMet).toBe(true);
    expect(evaluatePledges(m, sampled, [{ ...p, r: undefined }], TIP).rejected[0]?.reason).toBe('wrong-script');
  });

  it('below the minimum does not count (the minimum itself does)', () => {
    const ev = evaluatePledges(m, sampled, [pledge(9_999n), pledge(10_000n)], TIP);
    expect(ev.rejected.map((r) => r.reason)).toEqual(['below-minimum']);
    expect(ev.total).toBe(10_000n);
  });

  it('unconfirmed (or not yet deep enough) does not count', () => {
    const ev = evaluatePledges(m, sampled, [pledge(50_000n, { height: 0 }), pledge(50_000n, { height: TIP + 1 }), pledge(50_000n, { height: TIP })], TIP);
    expect(ev.rejected.map((r) => r.reason)).toEqual(['unconfirmed', 'unconfirmed']);
    expect(evaluatePledges(m, sampled, [pledge(50_000n, { height: TIP })], TIP, 2).rejected[0]?.reason).toBe('unconfirmed');
    expect(evaluatePledges(m, sampled, [pledge(50_000n, { height: TIP - 1 })], TIP, 2).counted).toHaveLength(1);
  });

  it('the same outpoint twice counts once', () => {
    const p = pledge(60_000n);
    const ev = evaluatePledges(m, sampled, [p, { ...p, txid: p.txid.toUpperCase() }, pledge(40_000n)], TIP);
    expect(ev.rejected.map((r) => r.reason)).toEqual(['duplicate']);
    expect(ev.total).toBe(100_000n);
    // two outputs of one buyer are two pledges
    const again = { ...p, vout: 1 };
    expect(evaluatePledges(m, sampled, [p, again], TIP).total).toBe(120_000n);
  });
});

describe('decisions', () => {
  const met = evaluatePledges(m, sampled, [pledge(100_000n)], TIP);
  const unmet = evaluatePledges(m, sampled, [pledge(99_999n)], TIP);

  it('claim only with the threshold met and before deadline - margin', () => {
    const cutoff = claimCutoff(m);
    expect(cutoff).toBe(m.deadlineHeight - TIMING.regtest.claimMargin - 1);
    expect(claimDecision(m, met, cutoff)).toEqual({ ok: true });
    expect(claimDecision(m, met, cutoff + 1)).toEqual({ ok: false, reason: 'too-late' });
    expect(claimDecision(m, unmet, TIP)).toEqual({ ok: false, reason: 'threshold-not-met' });
  });

  it('refuses new pledges once keys are public, before the sample is final, or too close to the cutoff', () => {
    expect(pledgeDecision(m, { tipHeight: TIP, keysPublic: false })).toEqual({ ok: true });
    expect(pledgeDecision(m, { tipHeight: TIP, keysPublic: true })).toEqual({ ok: false, reason: 'keys-public' });
    expect(pledgeDecision(m, { tipHeight: m.beaconHeight, keysPublic: false })).toEqual({ ok: false, reason: 'sample-not-final' });
    expect(pledgeDecision(m, { tipHeight: TIP, keysPublic: false, beaconFinal: false })).toEqual({ ok: false, reason: 'sample-not-final' });
    const last = claimCutoff(m) - TIMING.regtest.pledgeConfirmations;
    expect(pledgeDecision(m, { tipHeight: last, keysPublic: false })).toEqual({ ok: true });
    expect(pledgeDecision(m, { tipHeight: last + 1, keysPublic: false })).toEqual({ ok: false, reason: 'too-late' });
  });

  it('refund once the tip reaches the deadline', () => {
    expect(refundDecision(m, m.deadlineHeight - 1)).toEqual({ ok: false, reason: 'before-deadline' });
    expect(refundDecision(m, m.deadlineHeight)).toEqual({ ok: true });
  });
});
