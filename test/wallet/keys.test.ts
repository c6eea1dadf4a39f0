import { describe, it, expect } from 'vitest';
import { inspect } from 'node:util';
import { hex } from '@scure/base';
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import {
  WalletKeys, RECEIVE, CHANGE, HARDENED, bip86Path, silentScanPath, silentSpendPath, nodeKeyPath, pairwiseNodeKeyPath, parsePath,
  taprootKeyFromXpub, isValidMnemonic, newMnemonic,
} from '../../src/wallet/keys.js';
import { isDeaddropError } from '../../src/util/errors.js';

const ABANDON = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';

describe('BIP86 (official test vectors)', () => {
  const keys = WalletKeys.fromMnemonic(ABANDON, 'mainnet');

  it('derives the account keys', () => {
    expect(keys.accountXpub()).toBe('xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ');
    expect(keys.fingerprintHex()).toBe('73c5da0a');
  });

  it("m/86'/0'/0'/0/0", () => {
    const k = keys.taprootKey(RECEIVE, 0);
    expect(k.path).toBe("m/86'/0'/0'/0/0");
    expect(hex.encode(k.internalKey)).toBe('cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115');
    expect(hex.encode(k.script)).toBe('5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c');
    expect(k.address).toBe('bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr');
  });

  it("m/86'/0'/0'/0/1 and m/86'/0'/0'/1/0", () => {
    expect(keys.taprootKey(RECEIVE, 1).address).toBe('bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh');
    expect(keys.taprootKey(CHANGE, 0).address).toBe('bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7');
  });

  it('watch-only derivation from the account xpub gives the same keys', () => {
    const fromXpub = taprootKeyFromXpub(keys.accountXpub(), 'mainnet', CHANGE, 0);
    expect(fromXpub.address).toBe(keys.taprootKey(CHANGE, 0).address);
  });

  it('private keys match the public ones', () => {
    const root = HDKey.fromMasterSeed(mnemonicToSeedSync(ABANDON));
    expect(hex.encode(keys.taprootPrivateKey(RECEIVE, 0))).toBe(hex.encode(root.derive("m/86'/0'/0'/0/0").privateKey!));
  });
});

describe('paths per network', () => {
  it('uses coin type 1 on test networks', () => {
    expect(bip86Path('regtest', RECEIVE, 3)).toBe("m/86'/1'/0'/0/3");
    expect(bip86Path('mainnet', CHANGE, 3, 2)).toBe("m/86'/0'/2'/1/3");
    const k = WalletKeys.fromMnemonic(ABANDON, 'regtest');
    expect(k.taprootKey(RECEIVE, 0).address).toMatch(/^bcrt1p/);
    expect(k.accountXpub()).toMatch(/^tpub/);
    expect(WalletKeys.fromMnemonic(ABANDON, 'signet').taprootKey(RECEIVE, 0).address).toMatch(/^tb1p/);
  });

  it('uses the BIP352 scan and spend paths', () => {
    expect(silentScanPath('mainnet')).toBe("m/352'/0'/0'/1'/0");
    expect(silentSpendPath('mainnet')).toBe("m/352'/0'/0'/0'/0");
    expect(silentScanPath('regtest')).toBe("m/352'/1'/0'/1'/0");
    const keys = WalletKeys.fromMnemonic(ABANDON, 'mainnet');
    const sp = keys.silentPaymentKeys();
    const root = HDKey.fromMasterSeed(mnemonicToSeedSync(ABANDON));
    expect(hex.encode(sp.scan.privateKey)).toBe(hex.encode(root.derive("m/352'/0'/0'/1'/0").privateKey!));
    expect(hex.encode(sp.spend.privateKey)).toBe(hex.encode(root.derive("m/352'/0'/0'/0'/0").privateKey!));
    expect(hex.encode(sp.spend.publicKey)).toBe(hex.encode(root.derive("m/352'/0'/0'/0'/0").publicKey!));
  });

  it('derives hardened node and pairwise keys, distinct per index', () => {
    expect(nodeKeyPath('mainnet')).toBe("m/1046'/0'/0'/0'");
    expect(pairwiseNodeKeyPath('regtest', 7)).toBe("m/1046'/1'/0'/1'/7'");
    const keys = WalletKeys.fromMnemonic(ABANDON, 'regtest');
    const node = keys.nodeKey();
    const pw = [0, 1, 2].map((i) => hex.encode(keys.pairwiseNodeKey(i).publicKey));
    expect(new Set([hex.encode(node.publicKey), ...pw]).size).toBe(4);
    expect(hex.encode(keys.pairwiseNodeKey(1).privateKey)).toBe(hex.encode(WalletKeys.fromMnemonic(ABANDON, 'regtest').pairwiseNodeKey(1).privateKey));
    expect(node.xOnly).toEqual(node.publicKey.slice(1));
    expect(() => keys.pairwiseNodeKey(HARDENED)).toThrow(RangeError);
    expect(() => keys.pairwiseNodeKey(-1)).toThrow(RangeError);
  });

  it('parses paths', () => {
    expect(parsePath("m/86'/1'/0'/0/5")).toEqual([86 + HARDENED, 1 + HARDENED, HARDENED, 0, 5]);
    expect(() => parsePath('86/1')).toThrow(TypeError);
  });
});

describe('mnemonics and secrets', () => {
  it('makes valid 24-word phrases', () => {
    const m = newMnemonic();
    expect(m.split(' ')).toHaveLength(24);
    expect(isValidMnemonic(m)).toBe(true);
    expect(isValidMnemonic(`  ${m.toUpperCase()} `)).toBe(true);
    expect(isValidMnemonic(ABANDON.replace('about', 'abandon'))).toBe(false);
  });

  it('rejects a bad phrase without echoing it', () => {
    const bad = ABANDON.replace('about', 'zoo');
    try {
      WalletKeys.fromMnemonic(bad, 'regtest');
      expect.unreachable();
    } catch (err) {
      expect(isDeaddropError(err, 'BAD_INPUT')).toBe(true);
      expect(String((err as Error).message)).not.toContain('abandon');
    }
  });

  it('never shows key material through toString, JSON or inspect', () => {
    const keys = WalletKeys.fromMnemonic(ABANDON, 'mainnet');
    const root = HDKey.fromMasterSeed(mnemonicToSeedSync(ABANDON));
    const secrets = [root.privateExtendedKey, hex.encode(root.privateKey!), hex.encode(keys.taprootPrivateKey(RECEIVE, 0)), keys.accountXpub()];
    for (const shown of [String(keys), JSON.stringify(keys), inspect(keys, { showHidden: true, depth: 10 }), JSON.stringify({ keys })]) {
      for (const s of secrets) expect(shown).not.toContain(s);
      expect(shown).toContain('73c5da0a');
    }
  });
});
