/**
 * The encrypted keystore: one JSON file, `<datadir>/keystore.json`, holding the BIP39 mnemonic
 * encrypted under a passphrase. scrypt (parameters and salt stored in the file) turns the
 * passphrase into a 32-byte key; XChaCha20-Poly1305 with a random 24-byte nonce encrypts the
 * mnemonic. The clear header (version, network, KDF parameters) is the AEAD's associated data,
 * so editing it makes decryption fail. The birthday height is clear metadata outside the AAD:
 * it only tells the wallet where to start scanning.
 *
 * The file is written to a temporary file (mode 0600, fsynced) and hard-linked into place, so a
 * crash never leaves a half-written keystore and a second `create` can never overwrite one.
 */
import { mkdir, open, readFile, stat, link, unlink, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hex, utf8 } from '@scure/base';
import { DeaddropError } from '../util/errors.js';
import { NETWORKS, type Network } from '../util/network.js';
import { isValidMnemonic, newMnemonic, normalizeMnemonic } from './keys.js';

export { readPassphrase, PASSPHRASE_ENV, type ReadPassphraseOptions } from './passphrase.js';

export const KEYSTORE_FILE = 'keystore.json';
export const KEYSTORE_VERSION = 1;

/** scrypt cost parameters. N must be a power of two. */
export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** Production default: N = 2^17, r = 8, p = 1 (about 128 MiB and a few hundred ms). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

/** The clear (unencrypted) part of the keystore. */
export interface KeystoreMeta {
  readonly version: number;
  readonly network: Network;
  /** First block height that can hold wallet transactions; scanning starts here. */
  readonly birthdayHeight: number;
  /** ISO-8601 creation time. */
  readonly createdAt: string;
}

interface KeystoreFile extends KeystoreMeta {
  readonly kdf: { readonly name: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string };
  readonly cipher: { readonly name: 'xchacha20-poly1305'; readonly nonce: string };
  readonly ciphertext: string;
}

export interface CreateKeystoreOptions {
  readonly passphrase: string;
  readonly network: Network;
  readonly birthdayHeight?: number;
  /** Restore from an existing phrase instead of generating a new 24-word one. */
  readonly mnemonic?: string;
  /** Lower costs for tests only; production uses DEFAULT_SCRYPT. */
  readonly scrypt?: ScryptParams;
}

/** An unlocked keystore. `mnemonic` is the wallet's root secret: never log it. */
export interface UnlockedKeystore {
  readonly meta: KeystoreMeta;
  readonly mnemonic: string;
}

/** Path of the keystore file inside `datadir`. */
export function keystorePath(datadir: string): string {
  return join(datadir, KEYSTORE_FILE);
}

/** True when `datadir` already holds a keystore. */
export async function keystoreExists(datadir: string): Promise<boolean> {
  try {
    await stat(keystorePath(datadir));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Creates the keystore. Fails with ALREADY_INITIALIZED (changing nothing) when one exists.
 * Returns the mnemonic so the caller can show it once for backup.
 */
export async function createKeystore(datadir: string, opts: CreateKeystoreOptions): Promise<UnlockedKeystore> {
  if (typeof opts.passphrase !== 'string' || opts.passphrase.length === 0) throw DeaddropError.badInput('passphrase must not be empty');
  if (!NETWORKS.includes(opts.network)) throw new TypeError(`unknown network ${String(opts.network)}`);
  const birthdayHeight = opts.birthdayHeight ?? 0;
  if (!Number.isSafeInteger(birthdayHeight) || birthdayHeight < 0) throw new RangeError('birthdayHeight must be a non-negative integer');
  const params = opts.scrypt ?? DEFAULT_SCRYPT;
  checkScrypt(params);
  const mnemonic = opts.mnemonic === undefined ? newMnemonic() : normalizeMnemonic(opts.mnemonic);
  if (!isValidMnemonic(mnemonic)) throw DeaddropError.badInput('invalid BIP39 mnemonic (wrong word or checksum)');
  if (await keystoreExists(datadir)) throw alreadyInitialized(datadir);

  const meta: KeystoreMeta = { version: KEYSTORE_VERSION, network: opts.network, birthdayHeight, createdAt: new Date().toISOString() };
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const kdf = { name: 'scrypt' as const, N: params.N, r: params.r, p: params.p, salt: hex.encode(salt) };
  const key = await scryptAsync(utf8.decode(opts.passphrase), salt, { ...params, dkLen: 32, maxmem: 1024 ** 3 + 1024 });
  const ad = associatedData(meta.version, meta.network, kdf);
  const ciphertext = xchacha20poly1305(key, nonce, ad).encrypt(utf8.decode(mnemonic));
  key.fill(0);
  const file: KeystoreFile = { ...meta, kdf, cipher: { name: 'xchacha20-poly1305', nonce: hex.encode(nonce) }, ciphertext: hex.encode(ciphertext) };
  await ensureDatadir(datadir);
  await writeNew(keystorePath(datadir), JSON.stringify(file, null, 2) + '\n', datadir);
  return { meta, mnemonic };
}

/** Decrypts the keystore. WRONG_PASSPHRASE when the passphrase (or the header) does not match. */
export async function openKeystore(datadir: string, passphrase: string): Promise<UnlockedKeystore> {
  const file = await readKeystoreFile(datadir);
  const key = await scryptAsync(utf8.decode(passphrase), hex.decode(file.kdf.salt), {
    N: file.kdf.N, r: file.kdf.r, p: file.kdf.p, dkLen: 32, maxmem: 1024 ** 3 + 1024,
  });
  let plain: Uint8Array;
  try {
    plain = xchacha20poly1305(key, hex.decode(file.cipher.nonce), associatedData(file.version, file.network, file.kdf))
      .decrypt(hex.decode(file.ciphertext));
  } catch {
    throw DeaddropError.wrongPassphrase();
  } finally {
    key.fill(0);
  }
  const mnemonic = utf8.encode(plain);
  plain.fill(0);
  if (!isValidMnemonic(mnemonic)) throw DeaddropError.protocol('keystore decrypted to an invalid mnemonic');
  return { meta: metaOf(file), mnemonic };
}

/** The clear metadata (network, birthday), readable without the passphrase. */
export async function readKeystoreMeta(datadir: string): Promise<KeystoreMeta> {
  return metaOf(await readKeystoreFile(datadir));
}

function metaOf(file: KeystoreFile): KeystoreMeta {
  return { version: file.version, network: file.network, birthdayHeight: file.birthdayHeight, createdAt: file.createdAt };
}

function associatedData(version: number, network: Network, kdf: KeystoreFile['kdf']): Uint8Array {
  return utf8.decode(JSON.stringify(['deaddrop-keystore', version, network, kdf.name, kdf.N, kdf.r, kdf.p, kdf.salt]));
}

function alreadyInitialized(datadir: string): DeaddropError {
  return new DeaddropError('ALREADY_INITIALIZED', `a keystore already exists in ${datadir}`, { datadir });
}

function checkScrypt(p: ScryptParams): void {
  const pow2 = Number.isSafeInteger(p.N) && p.N >= 2 && (p.N & (p.N - 1)) === 0;
  if (!pow2 || p.N > 2 ** 22) throw new RangeError(`scrypt N must be a power of two in [2, 2^22]; got ${p.N}`);
  if (!Number.isSafeInteger(p.r) || p.r < 1 || p.r > 64) throw new RangeError(`scrypt r out of range: ${p.r}`);
  if (!Number.isSafeInteger(p.p) || p.p < 1 || p.p > 16) throw new RangeError(`scrypt p out of range: ${p.p}`);
}

async function readKeystoreFile(datadir: string): Promise<KeystoreFile> {
  let text: string;
  try {
    text = await readFile(keystorePath(datadir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DeaddropError('NOT_INITIALIZED', `no keystore in ${datadir}: run \`deaddrop init\` first`, { datadir });
    }
    throw err;
  }
  return validateKeystoreFile(JSON.parse(text) as unknown);
}

const HEX = /^(?:[0-9a-f]{2})+$/;

/** Checks the shape of a parsed keystore file. */
export function validateKeystoreFile(value: unknown): KeystoreFile {
  const bad = (what: string): never => {
    throw DeaddropError.protocol(`keystore file is malformed: ${what}`);
  };
  if (typeof value !== 'object' || value === null) return bad('not an object');
  const v = value as Record<string, unknown>;
  if (v.version !== KEYSTORE_VERSION) bad(`unsupported version ${String(v.version)}`);
  if (typeof v.network !== 'string' || !NETWORKS.includes(v.network as Network)) bad('network');
  if (!Number.isSafeInteger(v.birthdayHeight) || (v.birthdayHeight as number) < 0) bad('birthdayHeight');
  if (typeof v.createdAt !== 'string') bad('createdAt');
  const kdf = v.kdf as Record<string, unknown> | undefined;
  if (!kdf || kdf.name !== 'scrypt' || typeof kdf.salt !== 'string' || !HEX.test(kdf.salt)) bad('kdf');
  try {
    checkScrypt({ N: kdf!.N as number, r: kdf!.r as number, p: kdf!.p as number });
  } catch {
    bad('kdf parameters');
  }
  const cipher = v.cipher as Record<string, unknown> | undefined;
  if (!cipher || cipher.name !== 'xchacha20-poly1305' || typeof cipher.nonce !== 'string' || !/^[0-9a-f]{48}$/.test(cipher.nonce)) bad('cipher');
  if (typeof v.ciphertext !== 'string' || !HEX.test(v.ciphertext) || v.ciphertext.length < 34) bad('ciphertext');
  return v as unknown as KeystoreFile;
}

/** Creates `datadir` (and parents) with mode 0700 and tightens an existing one. */
export async function ensureDatadir(datadir: string): Promise<void> {
  await mkdir(datadir, { recursive: true, mode: 0o700 });
  await chmod(datadir, 0o700);
}

/** Writes `text` to a fresh file at `path` atomically; EEXIST becomes ALREADY_INITIALIZED. */
async function writeNew(path: string, text: string, datadir: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyInitialized(datadir);
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const dir = await open(datadir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
