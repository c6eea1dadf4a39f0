import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { hex } from '@scure/base';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { WalletKeys, RECEIVE, CHANGE, HARDENED } from '../../src/wallet/keys.js';
import { planTx, buildUnsigned, dataOutput, type SpendableCoin } from '../../src/wallet/tx.js';
import { psbtToBase64, psbtSign, psbtFinalize, psbtFromBase64 } from '../../src/wallet/psbt.js';
import { parseTransaction } from '../../src/chain/block.js';
import { expectCode } from '../support/errors.js';

bitcoin.initEccLib(ecc);

const MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
const keys = WalletKeys.fromMnemonic(MNEMONIC, 'regtest');

function coin(index: number, value: bigint): SpendableCoin {
  return { txid: hex.encode(randomBytes(32)), vout: 1, value, script: keys.taprootKey(RECEIVE, index).script, chain: RECEIVE, index };
}

function unsignedPsbt(feeRate = 2): { psbt: string; coins: SpendableCoin[]; fee: bigint; vsize: number } {
  const coins = [coin(0, 60_000n), coin(3, 25_000n)];
  const plan = planTx({
    candidates: coins, outputs: [{ script: keys.taprootKey(RECEIVE, 7).script, amount: 70_000n }, dataOutput(new Uint8Array(20).fill(7))],
    feeRate, maxFeeRate: 1000, change: keys.taprootKey(CHANGE, 0), changePosition: 'last',
  });
  return { psbt: psbtToBase64(buildUnsigned(plan, keys)), coins: [...plan.inputs], fee: plan.fee, vsize: plan.vsize };
}

/** BIP86 key-path signer for bitcoinjs: the private key tweaked with the untweaked key's TapTweak. */
function tweakedSigner(priv: Uint8Array): bitcoin.Signer {
  const pub = ecc.pointFromScalar(priv, true)!;
  const d = pub[0] === 3 ? ecc.privateNegate(priv) : priv;
  const tweak = bitcoin.crypto.taggedHash('TapTweak', pub.slice(1));
  const tweaked = ecc.privateAdd(d, tweak)!;
  return {
    publicKey: ecc.pointFromScalar(tweaked, true)!,
    sign: () => {
      throw new Error('ECDSA not used');
    },
    signSchnorr: (h: Uint8Array) => ecc.signSchnorr(h, tweaked, randomBytes(32)),
  };
}

describe('PSBT round trip', () => {
  it('records BIP371 derivation (fingerprint + path) readable by bitcoinjs', () => {
    const { psbt } = unsignedPsbt();
    const p = bitcoin.Psbt.fromBase64(psbt);
    const der = p.data.inputs[0]!.tapBip32Derivation![0]!;
    expect(hex.encode(der.masterFingerprint)).toBe(keys.fingerprintHex());
    expect(der.path).toBe("m/86'/1'/0'/0/0");
    expect(hex.encode(p.data.inputs[0]!.tapInternalKey!)).toBe(hex.encode(keys.taprootKey(RECEIVE, 0).internalKey));
    expect(p.data.outputs[2]!.tapBip32Derivation![0]!.path).toBe("m/86'/1'/0'/1/0");
    expect(p.txInputs.every((i) => i.sequence === 0xfffffffd)).toBe(true);
  });

  it('create → sign externally (bitcoinjs + BIP32 from the seed) → finalize', () => {
    const { psbt, fee, vsize } = unsignedPsbt();
    const p = bitcoin.Psbt.fromBase64(psbt);
    const root = HDKey.fromMasterSeed(mnemonicToSeedSync(MNEMONIC));
    p.data.inputs.forEach((input, i) => {
      const path = input.tapBip32Derivation![0]!.path;
      p.signInput(i, tweakedSigner(root.derive(path).privateKey!));
    });
    const fin = psbtFinalize(p.toBase64(), { maxFeeRate: 1000 });
    expect(fin.fee).toBe(fee);
    expect(fin.vsize).toBe(vsize);
    const tx = parseTransaction(fin.raw);
    expect(tx.txid).toBe(fin.txid);
    expect(tx.inputs.every((i) => i.witness.length === 1 && i.witness[0]!.length === 64)).toBe(true);
    // bitcoinjs agrees the signatures are valid.
    const check = bitcoin.Psbt.fromBase64(p.toBase64());
    expect(check.validateSignaturesOfAllInputs((pub, msg, sig) => ecc.verifySchnorr(msg, pub, sig))).toBe(true);
  });

  it('signs with the wallet keys from another process (same seed) and finalizes', () => {
    const { psbt, fee } = unsignedPsbt(5);
    const signer = WalletKeys.fromMnemonic(MNEMONIC, 'regtest');
    const signed = psbtSign(psbt, signer);
    expect(signed.signed).toBe(2);
    const fin = psbtFinalize(signed.psbt, { maxFeeRate: 1000 });
    expect(fin.fee).toBe(fee);
    const check = bitcoin.Psbt.fromBase64(signed.psbt);
    expect(check.validateSignaturesOfAllInputs((pub, msg, sig) => ecc.verifySchnorr(msg, pub, sig))).toBe(true);
  });

  it('does not sign inputs of another seed', () => {
    const { psbt } = unsignedPsbt();
    const stranger = WalletKeys.fromMnemonic('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'regtest');
    expect(psbtSign(psbt, stranger).signed).toBe(0);
  });

  it('refuses to finalize unsigned PSBTs, garbage, and fee rates above the cap', () => {
    const { psbt } = unsignedPsbt(50);
    expectCode(() => psbtFinalize(psbt, { maxFeeRate: 1000 }), 'BAD_INPUT');
    expectCode(() => psbtFromBase64('not base64 at all!'), 'BAD_INPUT');
    expectCode(() => psbtFromBase64('aGVsbG8='), 'BAD_INPUT');
    const signed = psbtSign(psbt, keys).psbt;
    const rate = psbtFinalize(signed, { maxFeeRate: 1000 }).feeRate;
    expect(rate).toBeGreaterThanOrEqual(50);
    expectCode(() => psbtFinalize(signed, { maxFeeRate: Math.floor(rate) - 1 }), 'FEE_TOO_HIGH');
    expect(() => psbtFinalize(signed, { maxFeeRate: Math.ceil(rate) })).not.toThrow();
  });

  it('uses hardened path elements as BIP32 expects', () => {
    const { psbt } = unsignedPsbt();
    const tx = psbtFromBase64(psbt);
    const der = tx.getInput(0).tapBip32Derivation![0]![1].der;
    expect(der.path.slice(0, 3)).toEqual([86 + HARDENED, 1 + HARDENED, HARDENED]);
  });
});
