/**
 * Every key deaddrop uses comes from one BIP39 seed, and every derivation lives in this file.
 *
 * Paths (coin = NETWORK_PARAMS[network].coinType: 0 on mainnet, 1 on test networks):
 * - Wallet (BIP86 taproot, key path only):  m/86'/coin'/account'/chain/index,
 *   chain 0 = receive, chain 1 = change.
 * - Silent payments (BIP352):  scan  m/352'/coin'/account'/1'/0,  spend  m/352'/coin'/account'/0'/0.
 * - Node identity (deaddrop's own purpose 1046', chosen so it collides with no BIP):
 *   node key  m/1046'/coin'/0'/0',  pairwise keys  m/1046'/coin'/0'/1'/index'.
 *   A pairwise key is a fresh identity for one relationship (index = relationship number, kept
 *   by the caller), so two peers cannot link each other's relationships by key. Every step is
 *   hardened: leaking one pairwise private key reveals nothing about the others or the node key.
 *   The 32 bytes are a valid secp256k1 scalar; a layer needing another curve (x25519 for Noise)
 *   should feed them through a KDF with its own label rather than reuse them directly.
 * - PayPub (same purpose, branch 1'):  m/1046'/coin'/1'/role'/index'.  role 0' = seller keys
 *   (one per published sale: signs the manifest, the sample reveal and the claims), role 1' =
 *   buyer keys (one per pledge or HTLC: the refund key), role 2' = the at-rest storage secret
 *   (index 0', fed through a KDF by src/paypub/store.ts). Indexes are allocated by the PayPub
 *   store and never reused, so no two sales or pledges share a key.
 *
 * Secrets stay inside `WalletKeys` private fields: `toString`, `toJSON` and `util.inspect` show
 * only the network and the master fingerprint (a scure HDKey would otherwise JSON-serialize its xprv).
 */
import { HDKey, type Versions } from '@scure/bip32';
import { mnemonicToSeedSync, validateMnemonic, generateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { p2tr, type Transaction } from '@scure/btc-signer';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hex } from '@scure/base';
import { NETWORK_PARAMS, btcSignerNetwork, type Network } from '../util/network.js';
import { DeaddropError } from '../util/errors.js';

/** BIP32 hardened offset. */
export const HARDENED = 0x8000_0000;
/** BIP86 purpose. */
export const BIP86_PURPOSE = 86;
/** BIP352 purpose. */
export const BIP352_PURPOSE = 352;
/** deaddrop's node-identity purpose (not registered in any BIP; chosen to collide with none). */
export const NODE_PURPOSE = 1046;

/** Wallet chains: 0 receive (external), 1 change (internal). */
export type KeyChain = 0 | 1;
export const RECEIVE: KeyChain = 0;
export const CHANGE: KeyChain = 1;

/** Public data of one BIP86 wallet key. Holds no secret. */
export interface TaprootKeyInfo {
  readonly chain: KeyChain;
  readonly index: number;
  /** Derivation path string, e.g. m/86'/1'/0'/0/5. */
  readonly path: string;
  /** Path as BIP32 child numbers (hardened ones have HARDENED added). */
  readonly pathIndexes: readonly number[];
  /** x-only internal key (BIP86: the output key is this key tweaked with an empty script tree). */
  readonly internalKey: Uint8Array;
  /** P2TR output script (OP_1 <32-byte output key>). */
  readonly script: Uint8Array;
  readonly address: string;
}

/** A secp256k1 key pair. `privateKey` is secret. */
export interface KeyPair {
  readonly privateKey: Uint8Array;
  /** 33-byte compressed public key. */
  readonly publicKey: Uint8Array;
  /** 32-byte x-only public key (BIP340). */
  readonly xOnly: Uint8Array;
}

/** BIP352 receiver keys. Both private keys are secret; the scan key is needed to scan blocks. */
export interface SilentPaymentKeys {
  readonly scan: KeyPair;
  readonly spend: KeyPair;
}

/** A fresh 24-word English BIP39 mnemonic (256 bits of entropy). */
export function newMnemonic(): string {
  return generateMnemonic(wordlist, 256);
}

/** True when `mnemonic` is a valid English BIP39 phrase (checksum included). */
export function isValidMnemonic(mnemonic: string): boolean {
  return validateMnemonic(normalizeMnemonic(mnemonic), wordlist);
}

/** Lower-cases and collapses whitespace, so pasted phrases validate. */
export function normalizeMnemonic(mnemonic: string): string {
  return mnemonic.normalize('NFKD').trim().toLowerCase().split(/\s+/).join(' ');
}

function coinType(network: Network): number {
  return NETWORK_PARAMS[network].coinType;
}

/** BIP32 extended-key version bytes: xprv/xpub on mainnet, tprv/tpub on test networks. */
export function bip32Versions(network: Network): Versions {
  return network === 'mainnet'
    ? { private: 0x0488ade4, public: 0x0488b21e }
    : { private: 0x04358394, public: 0x043587cf };
}

/** m/86'/coin'/account' */
export function bip86AccountPath(network: Network, account = 0): string {
  checkIndex(account, 'account');
  return `m/${BIP86_PURPOSE}'/${coinType(network)}'/${account}'`;
}

/** m/86'/coin'/account'/chain/index */
export function bip86Path(network: Network, chain: KeyChain, index: number, account = 0): string {
  checkChain(chain);
  checkIndex(index, 'index');
  return `${bip86AccountPath(network, account)}/${chain}/${index}`;
}

/** BIP352 scan key path m/352'/coin'/account'/1'/0. */
export function silentScanPath(network: Network, account = 0): string {
  checkIndex(account, 'account');
  return `m/${BIP352_PURPOSE}'/${coinType(network)}'/${account}'/1'/0`;
}

/** BIP352 spend key path m/352'/coin'/account'/0'/0. */
export function silentSpendPath(network: Network, account = 0): string {
  checkIndex(account, 'account');
  return `m/${BIP352_PURPOSE}'/${coinType(network)}'/${account}'/0'/0`;
}

/** Node identity key path m/1046'/coin'/0'/0'. */
export function nodeKeyPath(network: Network): string {
  return `m/${NODE_PURPOSE}'/${coinType(network)}'/0'/0'`;
}

/** PayPub key roles (the `role'` step of m/1046'/coin'/1'/role'/index'). */
export const PAYPUB_SELLER = 0;
export const PAYPUB_BUYER = 1;
export const PAYPUB_STORAGE = 2;
export type PaypubRole = typeof PAYPUB_SELLER | typeof PAYPUB_BUYER | typeof PAYPUB_STORAGE;

/** PayPub key path m/1046'/coin'/1'/role'/index' (every step hardened). */
export function paypubKeyPath(network: Network, role: PaypubRole, index: number): string {
  if (role !== PAYPUB_SELLER && role !== PAYPUB_BUYER && role !== PAYPUB_STORAGE) throw new RangeError(`paypub role must be 0, 1 or 2; got ${String(role)}`);
  checkIndex(index, 'index');
  return `m/${NODE_PURPOSE}'/${coinType(network)}'/1'/${role}'/${index}'`;
}

/** Pairwise (per-relationship) node key path m/1046'/coin'/0'/1'/index'. */
export function pairwiseNodeKeyPath(network: Network, index: number): string {
  checkIndex(index, 'index');
  return `m/${NODE_PURPOSE}'/${coinType(network)}'/0'/1'/${index}'`;
}

/** Parses "m/86'/1'/0'/0/5" into child numbers. */
export function parsePath(path: string): number[] {
  if (!/^m(\/\d+'?)*$/.test(path)) throw new TypeError(`path must look like m/86'/0'/0'; got ${JSON.stringify(path)}`);
  return path.split('/').slice(1).map((part) => {
    const hard = part.endsWith("'");
    const n = Number(hard ? part.slice(0, -1) : part);
    if (!Number.isSafeInteger(n) || n >= HARDENED) throw new RangeError(`path element out of range in ${path}`);
    return hard ? n + HARDENED : n;
  });
}

/** The P2TR output (script and address) for a BIP86 x-only internal key. */
export function taprootOutput(internalKey: Uint8Array, network: Network): { script: Uint8Array; address: string } {
  const pay = p2tr(internalKey, undefined, btcSignerNetwork(network));
  if (!pay.address) throw new Error('p2tr produced no address');
  return { script: pay.script, address: pay.address };
}

function keyPair(node: HDKey): KeyPair {
  const priv = node.privateKey;
  if (!priv) throw new Error('derived node has no private key');
  const publicKey = secp256k1.getPublicKey(priv, true);
  return { privateKey: Uint8Array.from(priv), publicKey, xOnly: publicKey.slice(1) };
}

function checkChain(chain: number): asserts chain is KeyChain {
  if (chain !== 0 && chain !== 1) throw new RangeError(`chain must be 0 (receive) or 1 (change); got ${chain}`);
}

function checkIndex(index: number, name: string): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= HARDENED) {
    throw new RangeError(`${name} must be an integer in [0, 2^31); got ${index}`);
  }
}

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * The wallet's key material, derived from one BIP39 seed. Derivations are pure and cached
 * per account node; nothing is written anywhere.
 *
 * @example
 * const keys = WalletKeys.fromMnemonic(mnemonic, 'regtest');
 * keys.taprootKey(RECEIVE, 0).address; // bcrt1p...
 */
export class WalletKeys {
  readonly network: Network;
  readonly account: number;
  /** Master key fingerprint (BIP32), as used in PSBT derivation records. */
  readonly fingerprint: number;
  readonly #master: HDKey;
  readonly #account: HDKey;
  readonly #chains: [HDKey, HDKey];

  private constructor(master: HDKey, network: Network, account: number) {
    this.network = network;
    this.account = account;
    this.#master = master;
    this.fingerprint = master.fingerprint;
    this.#account = master.derive(bip86AccountPath(network, account));
    this.#chains = [this.#account.deriveChild(0), this.#account.deriveChild(1)];
  }

  /** Keys from a BIP39 phrase (checksum checked; the optional BIP39 passphrase is not used by deaddrop). */
  static fromMnemonic(mnemonic: string, network: Network, account = 0): WalletKeys {
    const norm = normalizeMnemonic(mnemonic);
    if (!validateMnemonic(norm, wordlist)) throw DeaddropError.badInput('invalid BIP39 mnemonic (wrong word or checksum)');
    return WalletKeys.fromSeed(mnemonicToSeedSync(norm), network, account);
  }

  /** Keys from a 64-byte BIP39 seed. */
  static fromSeed(seed: Uint8Array, network: Network, account = 0): WalletKeys {
    if (!(seed instanceof Uint8Array) || seed.length < 16 || seed.length > 64) {
      throw new TypeError('seed must be a Uint8Array of 16..64 bytes');
    }
    checkIndex(account, 'account');
    return new WalletKeys(HDKey.fromMasterSeed(seed, bip32Versions(network)), network, account);
  }

  /** Account-level extended public key (tpub on test networks), for watch-only use. */
  accountXpub(): string {
    return this.#account.publicExtendedKey;
  }

  /** Public information of the BIP86 key at chain/index. */
  taprootKey(chain: KeyChain, index: number): TaprootKeyInfo {
    checkChain(chain);
    checkIndex(index, 'index');
    const node = this.#chains[chain].deriveChild(index);
    const internalKey = node.publicKey!.slice(1);
    const path = bip86Path(this.network, chain, index, this.account);
    return { chain, index, path, pathIndexes: parsePath(path), internalKey, ...taprootOutput(internalKey, this.network) };
  }

  /** Untweaked private key of the BIP86 key at chain/index (the signer applies the BIP86 tweak). Secret. */
  taprootPrivateKey(chain: KeyChain, index: number): Uint8Array {
    checkChain(chain);
    checkIndex(index, 'index');
    return keyPair(this.#chains[chain].deriveChild(index)).privateKey;
  }

  /** BIP352 scan and spend key pairs. Secret. */
  silentPaymentKeys(): SilentPaymentKeys {
    return {
      scan: keyPair(this.#master.derive(silentScanPath(this.network, this.account))),
      spend: keyPair(this.#master.derive(silentSpendPath(this.network, this.account))),
    };
  }

  /** The node identity key pair (m/1046'/coin'/0'/0'). Secret. */
  nodeKey(): KeyPair {
    return keyPair(this.#master.derive(nodeKeyPath(this.network)));
  }

  /** The pairwise node key for relationship `index` (m/1046'/coin'/0'/1'/index'). Secret. */
  pairwiseNodeKey(index: number): KeyPair {
    return keyPair(this.#master.derive(pairwiseNodeKeyPath(this.network, index)));
  }

  /**
   * A PayPub key pair (m/1046'/coin'/1'/role'/index'): a sale's seller key, a pledge's refund
   * key, or (role PAYPUB_STORAGE, index 0) the secret the PayPub store derives its at-rest key from. Secret.
   */
  paypubKey(role: PaypubRole, index: number): KeyPair {
    return keyPair(this.#master.derive(paypubKeyPath(this.network, role, index)));
  }

  /**
   * Signs every input of a scure `Transaction` (parsed PSBT) whose tap_bip32/bip32 records name
   * this master fingerprint, deriving the keys they list. Returns the number of inputs signed.
   * The master key never leaves this object.
   */
  signPsbtTransaction(tx: Transaction): number {
    let signed = 0;
    for (let i = 0; i < tx.inputsLength; i++) {
      const input = tx.getInput(i);
      const ours = [...(input.tapBip32Derivation ?? []).map(([, v]) => v.der), ...(input.bip32Derivation ?? []).map(([, v]) => v)]
        .some((d) => d.fingerprint === this.fingerprint);
      if (ours && tx.signIdx(this.#master as unknown as Parameters<Transaction['signIdx']>[0], i)) signed++;
    }
    return signed;
  }

  /** Fingerprint as 8 hex characters (PSBT/descriptor notation). */
  fingerprintHex(): string {
    return hex.encode(Uint8Array.of(this.fingerprint >>> 24, (this.fingerprint >>> 16) & 255, (this.fingerprint >>> 8) & 255, this.fingerprint & 255));
  }

  toString(): string {
    return `WalletKeys(${this.network}, fingerprint ${this.fingerprintHex()})`;
  }

  toJSON(): { network: Network; fingerprint: string } {
    return { network: this.network, fingerprint: this.fingerprintHex() };
  }

  [INSPECT](): string {
    return this.toString();
  }
}

/** BIP86 taproot key info for a watch-only account xpub (no private keys). Pure. */
export function taprootKeyFromXpub(xpub: string, network: Network, chain: KeyChain, index: number, account = 0): TaprootKeyInfo {
  checkChain(chain);
  checkIndex(index, 'index');
  const node = HDKey.fromExtendedKey(xpub, bip32Versions(network)).deriveChild(chain).deriveChild(index);
  const internalKey = node.publicKey!.slice(1);
  const path = bip86Path(network, chain, index, account);
  return { chain, index, path, pathIndexes: parsePath(path), internalKey, ...taprootOutput(internalKey, network) };
}
