import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, concatBytes, randomBytes } from '@noble/hashes/utils.js';
import { RawTx, Script } from '@scure/btc-signer/script.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { describe, expect, it } from 'vitest';
import { sha256, taggedHash } from '../../src/paypub/bytes.js';
import { unsampledIndices } from '../../src/paypub/sample.js';
import {
  buildClaimTx, buildRefundTx, claimInputVbytes, claimLeafScript, extractClaimKeys, findHashLockSpends, isNumsInternalKey, NUMS_H,
  parseHashLockLeaf, pledgeDescriptionProblem, pledgeInternalKey, pledgeOutput, refundLeafScript, SEQUENCE_RBF,
  scriptNumBytes, splitAnnex, txidOf, type PledgeUtxo,
} from '../../src/paypub/scripts.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { keypair, makeSale, someP2trScript } from '../support/paypub-fixtures.js';

const Point = schnorr.Point;
const num = (b: Uint8Array): bigint => BigInt('0x' + bytesToHex(b));

/** BIP341 script-path commitment check, written from the BIP (independent of btc-signer). */
function controlBlockCommits(outputKey: Uint8Array, leaf: Uint8Array, control: Uint8Array): boolean {
  const P = control.subarray(1, 33);
  const len = leaf.length < 253 ? Uint8Array.of(leaf.length) : Uint8Array.of(0xfd, leaf.length & 0xff, leaf.length >> 8);
  let k = taggedHash('TapLeaf', concatBytes(Uint8Array.of((control[0] as number) & 0xfe), len, leaf));
  for (let j = 33; j < control.length; j += 32) {
    const e = control.subarray(j, j + 32);
    k = Buffer.compare(k, e) < 0 ? taggedHash('TapBranch', k, e) : taggedHash('TapBranch', e, k);
  }
  const t = num(taggedHash('TapTweak', P, k));
  const Q = schnorr.utils.lift_x(num(P)).add(Point.BASE.multiply(t)).toAffine();
  return bytesToHex(outputKey) === Q.x.toString(16).padStart(64, '0') && Number(Q.y & 1n) === ((control[0] as number) & 1);
}

function pledgeUtxos(count: number, value = 40_000n): (PledgeUtxo & { sk: Uint8Array })[] {
  return Array.from({ length: count }, (_, i) => {
    const { sk, pk } = keypair();
    return { txid: bytesToHex(randomBytes(32)), vout: i, value, buyerKey: pk, sk };
  });
}

describe('pledge output', () => {
  const sale = makeSale();
  const { manifest: m, sampled } = sale;
  const buyer = keypair();

  it('uses the BIP341 NUMS point and refuses any other internal key', () => {
    expect(bytesToHex(pledgeInternalKey())).toBe('50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0');
    expect(isNumsInternalKey(NUMS_H)).toBe(true);
    const r = randomBytes(32);
    const tweaked = pledgeInternalKey(r);
    expect(isNumsInternalKey(tweaked, r)).toBe(true);
    expect(isNumsInternalKey(tweaked)).toBe(false); // without r nobody can tell it from a seller key
    expect(isNumsInternalKey(schnorr.getPublicKey(randomBytes(32)))).toBe(false);
    const out = pledgeOutput(m, sampled, { buyerKey: buyer.pk });
    const sellerKeyPath = { buyerKey: buyer.pk, internalKey: m.sellerKey, script: out.script };
    expect(pledgeDescriptionProblem(m, sampled, sellerKeyPath)).toBe('non-nums-internal-key');
    expect(pledgeDescriptionProblem(m, sampled, { buyerKey: buyer.pk, internalKey: out.internalKey, script: out.script })).toBeNull();
    expect(pledgeDescriptionProblem(m, sampled, { buyerKey: keypair().pk, internalKey: out.internalKey, script: out.script })).toBe('wrong-script');
  });

  it('claim leaf hash-locks exactly the unsampled keys in index order, then the seller signature', () => {
    const leaf = claimLeafScript(m, sampled);
    const unsampled = unsampledIndices(m.chunkCount, sampled);
    expect(leaf.length).toBe(35 * unsampled.length + 34);
    const parsed = parseHashLockLeaf(leaf);
    expect(parsed?.hashes).toEqual(unsampled.map((i) => m.keyCommitments[i]));
    expect(parsed?.signer).toEqual(m.sellerKey);
    const decoded = Script.decode(leaf);
    expect(decoded.slice(0, 3)).toEqual(['SHA256', m.keyCommitments[unsampled[0] as number], 'EQUALVERIFY']);
    expect(decoded.slice(-2)).toEqual([m.sellerKey, 'CHECKSIG']);
  });

  it('refund leaf is <deadline> CLTV DROP <buyer> CHECKSIG', () => {
    expect(Script.decode(refundLeafScript(m.deadlineHeight, buyer.pk))).toEqual([scriptNumBytes(m.deadlineHeight), 'CHECKLOCKTIMEVERIFY', 'DROP', buyer.pk, 'CHECKSIG']);
    expect(scriptNumBytes(150)).toEqual(Uint8Array.of(0x96, 0x00)); // minimal, sign bit clear
    expect(() => refundLeafScript(500_000_000, buyer.pk)).toThrow(RangeError);
  });

  it('control blocks commit both leaves to the output key (checked per BIP341)', () => {
    for (const r of [undefined, randomBytes(32)]) {
      const out = pledgeOutput(m, sampled, { buyerKey: buyer.pk, r });
      expect(out.script.length).toBe(34);
      expect(controlBlockCommits(out.outputKey, out.claim.script, out.claim.controlBlock)).toBe(true);
      expect(controlBlockCommits(out.outputKey, out.refund.script, out.refund.controlBlock)).toBe(true);
      expect(controlBlockCommits(out.outputKey, out.refund.script, out.claim.controlBlock)).toBe(false);
    }
  });

  it('every buyer gets a different output; the same inputs give the same output', () => {
    const a = pledgeOutput(m, sampled, { buyerKey: buyer.pk });
    expect(pledgeOutput(m, sampled, { buyerKey: buyer.pk }).script).toEqual(a.script);
    expect(pledgeOutput(m, sampled, { buyerKey: keypair().pk }).script).not.toEqual(a.script);
  });
});

describe('claim transaction', () => {
  const sale = makeSale();
  const { manifest: m, sampled } = sale;
  const pledges = pledgeUtxos(3);
  const claim = buildClaimTx({
    manifest: m, sampled, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, pledges, payoutScript: someP2trScript(), feeRate: 2,
  });
  const tx = RawTx.decode(claim.raw);
  const unsampled = unsampledIndices(m.chunkCount, sampled);

  it('spends all pledges in one RBF-signalling transaction with the witness layout of the spec', () => {
    expect(tx.inputs).toHaveLength(3);
    expect(tx.outputs).toHaveLength(1);
    expect(tx.outputs[0]?.amount).toBe(120_000n - claim.fee);
    expect(claim.fee).toBe(BigInt(Math.ceil(claim.vsize * 2)));
    tx.inputs.forEach((inp, i) => {
      expect(inp.sequence).toBe(SEQUENCE_RBF);
      const w = tx.witnesses?.[i] as Uint8Array[];
      expect(w).toHaveLength(1 + unsampled.length + 2);
      expect(w[0]).toHaveLength(64);
      // k_first (lowest unsampled index) is the last stack item before the script: top of stack
      expect(w[unsampled.length]).toEqual(sale.content.keys[unsampled[0] as number]);
      expect(w[1]).toEqual(sale.content.keys[unsampled[unsampled.length - 1] as number]);
      expect(w[w.length - 2]).toEqual(claimLeafScript(m, sampled));
    });
    expect(txidOf(claim.raw)).toBe(claim.txid);
  });

  it('signatures verify under the seller key for each input (BIP341 script-path sighash)', () => {
    const t = Transaction.fromRaw(claim.raw, { allowUnknownOutputs: true, allowUnknownInputs: true });
    const prev = pledges.map((p) => pledgeOutput(m, sampled, p).script);
    const leaf = claimLeafScript(m, sampled);
    pledges.forEach((_, i) => {
      const msg = t.preimageWitnessV1(i, prev, 0, pledges.map((p) => p.value), undefined, leaf, 0xc0);
      expect(schnorr.verify(tx.witnesses?.[i]?.[0] as Uint8Array, msg, m.sellerKey)).toBe(true);
    });
  });

  it('claimInputVbytes predicts what one more pledge adds to the claim', () => {
    const one = buildClaimTx({ manifest: m, sampled, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, pledges: pledges.slice(0, 1), payoutScript: someP2trScript(), feeRate: 1 });
    const two = buildClaimTx({ manifest: m, sampled, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, pledges: pledges.slice(0, 2), payoutScript: someP2trScript(), feeRate: 1 });
    expect(claimInputVbytes(unsampled.length)).toBe(491.25);
    expect(two.weight - one.weight).toBe(4 * claimInputVbytes(unsampled.length));
  });

  it('refuses keys that do not match the commitments', () => {
    const keys = sale.content.keys.slice();
    keys[unsampled[0] as number] = randomBytes(32);
    expect(() => buildClaimTx({ manifest: m, sampled, keys, sellerSecretKey: sale.sellerSk, pledges, payoutScript: someP2trScript(), feeRate: 1 })).toThrow(/commitment/);
  });

  it('refuses a claim whose fee would eat the pledges', () => {
    try {
      buildClaimTx({ manifest: m, sampled, keys: sale.content.keys, sellerSecretKey: sale.sellerSk, pledges: pledgeUtxos(1, 500n), payoutScript: someP2trScript(), feeRate: 1 });
      expect.unreachable();
    } catch (err) {
      expect(isDeaddropError(err, 'INSUFFICIENT_FUNDS')).toBe(true);
    }
  });

  describe('key extraction', () => {
    const reencode = (mut: (w: Uint8Array[]) => Uint8Array[]): Uint8Array =>
      RawTx.encode({ ...tx, witnesses: tx.witnesses?.map((w) => mut(w.slice())) });
    const expectAllKeys = (keys: Map<number, Uint8Array>): void => {
      expect([...keys.keys()].sort((a, b) => a - b)).toEqual(unsampled);
      for (const [i, k] of keys) expect(k).toEqual(sale.content.keys[i]);
    };

    it('extracts every unsampled key from the claim', () => {
      expectAllKeys(extractClaimKeys(claim.raw, m));
    });

    it('drops an annex (last item starting 0x50)', () => {
      const withAnnex = reencode((w) => [...w, Uint8Array.of(0x50, 1, 2, 3)]);
      expect(splitAnnex(RawTx.decode(withAnnex).witnesses?.[0] as Uint8Array[]).annex).toEqual(Uint8Array.of(0x50, 1, 2, 3));
      expectAllKeys(extractClaimKeys(withAnnex, m));
      // a single item starting 0x50 is not an annex
      expect(splitAnnex([Uint8Array.of(0x50)]).annex).toBeUndefined();
    });

    it('accepts 64- and 65-byte signatures, ignores other lengths', () => {
      expectAllKeys(extractClaimKeys(reencode((w) => [concatBytes(w[0] as Uint8Array, Uint8Array.of(1)), ...w.slice(1)]), m));
      expect(extractClaimKeys(reencode((w) => [(w[0] as Uint8Array).subarray(1), ...w.slice(1)]), m).size).toBe(0);
    });

    it('ignores wrong preimages, other sellers, unrelated and malformed transactions', () => {
      const wrongKey = reencode((w) => [w[0] as Uint8Array, randomBytes(32), ...w.slice(2)]);
      expect(extractClaimKeys(wrongKey, m).size).toBe(0);
      expect(extractClaimKeys(claim.raw, { ...m, sellerKey: keypair().pk }).size).toBe(0);
      expect(extractClaimKeys(randomBytes(200), m).size).toBe(0);
      expect(extractClaimKeys(new Uint8Array(0), m).size).toBe(0);
      expect(findHashLockSpends(RawTx.encode({ ...tx, witnesses: tx.witnesses?.map(() => [randomBytes(64)]) }))).toEqual([]);
    });
  });
});

describe('refund transaction', () => {
  const sale = makeSale();
  const { manifest: m, sampled } = sale;
  const [pledge] = pledgeUtxos(1);

  it('sets nLockTime to the deadline and a non-final nSequence, witness [sig, leaf, control]', () => {
    const p = pledge as PledgeUtxo & { sk: Uint8Array };
    const r = buildRefundTx({ manifest: m, sampled, pledge: p, buyerSecretKey: p.sk, destScript: someP2trScript(), feeRate: 1 });
    const tx = RawTx.decode(r.raw);
    expect(tx.lockTime).toBe(m.deadlineHeight);
    expect(tx.inputs[0]?.sequence).toBe(SEQUENCE_RBF);
    const w = tx.witnesses?.[0] as Uint8Array[];
    expect(w).toHaveLength(3);
    expect(w[1]).toEqual(refundLeafScript(m.deadlineHeight, p.buyerKey));
    const t = Transaction.fromRaw(r.raw, { allowUnknownOutputs: true, allowUnknownInputs: true });
    const out = pledgeOutput(m, sampled, p);
    const msg = t.preimageWitnessV1(0, [out.script], 0, [p.value], undefined, out.refund.script, 0xc0);
    expect(schnorr.verify(w[0] as Uint8Array, msg, p.buyerKey)).toBe(true);
    // a refund reveals no key
    expect(extractClaimKeys(r.raw, m).size).toBe(0);
    expect(sha256(w[0] as Uint8Array)).not.toEqual(m.keyCommitments[0]);
  });
});
