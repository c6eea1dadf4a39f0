/**
 * Capabilities of the Tahoe-LAFS storage backend (docs/protocol/storage.md, "Tahoe-LAFS
 * backend"). Pure functions, no I/O.
 *
 * - Read cap `dd-tahoe:<Tahoe cap>:<base32 key>`: the Tahoe immutable cap of the ciphertext
 *   (`URI:CHK:…`, or `URI:LIT:…` for a ciphertext short enough that Tahoe keeps it in the cap
 *   itself) and deaddrop's own 32-byte file key. The Tahoe cap alone yields only ciphertext.
 * - Verify cap `dd-tahoe-v:<Tahoe cap>`: the read cap without deaddrop's key. It checks and
 *   repairs through the web API and yields only ciphertext. (Tahoe's own `URI:CHK-Verifier:` cap
 *   would be narrower, but Tahoe 1.20's web API answers 405 to `t=check` on it: a verifier node is
 *   not a file node there.)
 *
 * base32 is RFC 4648, lowercase, no padding (Tahoe's own alphabet).
 */
import { base32nopad } from '@scure/base';
import { DeaddropError } from '../../util/errors.js';

export const TAHOE_READ_PREFIX = 'dd-tahoe:';
export const TAHOE_VERIFY_PREFIX = 'dd-tahoe-v:';
export const TAHOE_KEY_BYTES = 32;

const B32 = '[a-z2-7]';
const CHK_RE = new RegExp(`^URI:CHK:(${B32}{26}):(${B32}{52}):(\\d{1,3}):(\\d{1,3}):(\\d{1,16})$`);
const LIT_RE = new RegExp(`^URI:LIT:(${B32}*)$`);

export interface TahoeReadCap {
  /** The Tahoe immutable read cap of the ciphertext (`URI:CHK:…` or `URI:LIT:…`). */
  readonly tahoeCap: string;
  /** deaddrop's file key (ChaCha20-Poly1305); never leaves this machine. */
  readonly key: Uint8Array;
}

export interface TahoeVerifyCap {
  /** The Tahoe immutable cap of the ciphertext (`URI:CHK:…` or `URI:LIT:…`). */
  readonly tahoeCap: string;
}

/** Shares needed and total and the ciphertext's size, from a CHK cap (undefined for LIT). */
export interface TahoeShareParams {
  readonly needed: number;
  readonly total: number;
  readonly size: number;
}

const b32 = {
  enc: (b: Uint8Array): string => base32nopad.encode(b).toLowerCase(),
  dec: (s: string): Uint8Array => base32nopad.decode(s.toUpperCase()),
};

function malformed(why: string): DeaddropError {
  // The input itself is never echoed: a read cap holds the file key.
  return DeaddropError.badInput(`malformed Tahoe capability: ${why}`, { reason: 'malformed-cap' });
}

/** Checks a Tahoe immutable cap's syntax and share parameters (1 ≤ k ≤ n ≤ 256). */
function checkTahoeCap(cap: string, re: RegExp, what: string): TahoeShareParams | undefined {
  const m = re.exec(cap);
  if (!m) throw malformed(`not a ${what}`);
  if (m.length < 6) {
    try {
      b32.dec(m[1] as string);
    } catch {
      throw malformed(`bad base32 in the ${what}`);
    }
    return undefined;
  }
  const [needed, total, size] = [Number(m[3]), Number(m[4]), Number(m[5])];
  if (needed < 1 || total < needed || total > 256 || !Number.isSafeInteger(size)) throw malformed(`share parameters out of range in the ${what}`);
  try {
    b32.dec(m[1] as string);
    b32.dec(m[2] as string);
  } catch {
    throw malformed(`bad base32 in the ${what}`);
  }
  return { needed, total, size };
}

/** Formats a read cap; the Tahoe cap must be an immutable CHK or LIT cap. */
export function formatTahoeReadCap(c: TahoeReadCap): string {
  if (c.key.length !== TAHOE_KEY_BYTES) throw new RangeError(`tahoe: the file key must be ${TAHOE_KEY_BYTES} bytes`);
  checkTahoeCap(c.tahoeCap, c.tahoeCap.startsWith('URI:LIT:') ? LIT_RE : CHK_RE, 'Tahoe CHK or LIT cap');
  return `${TAHOE_READ_PREFIX}${c.tahoeCap}:${b32.enc(c.key)}`;
}

/** Parses `dd-tahoe:<URI:CHK:…|URI:LIT:…>:<base32 key>`; BAD_INPUT (reason `malformed-cap`) otherwise. */
export function parseTahoeReadCap(cap: string): TahoeReadCap {
  if (typeof cap !== 'string' || !cap.startsWith(TAHOE_READ_PREFIX)) throw malformed(`a read capability starts with "${TAHOE_READ_PREFIX}"`);
  const rest = cap.slice(TAHOE_READ_PREFIX.length);
  const cut = rest.lastIndexOf(':');
  if (cut < 0) throw malformed('no file key');
  const tahoeCap = rest.slice(0, cut);
  const keyText = rest.slice(cut + 1);
  checkTahoeCap(tahoeCap, tahoeCap.startsWith('URI:LIT:') ? LIT_RE : CHK_RE, 'Tahoe CHK or LIT cap');
  let key: Uint8Array;
  try {
    if (!/^[a-z2-7]+$/.test(keyText)) throw new Error('alphabet');
    key = b32.dec(keyText);
  } catch {
    throw malformed('the file key is not lowercase base32');
  }
  if (key.length !== TAHOE_KEY_BYTES || b32.enc(key) !== keyText) throw malformed(`the file key must be ${TAHOE_KEY_BYTES} bytes`);
  return { tahoeCap, key };
}

/** Parses `dd-tahoe-v:<URI:CHK:…|URI:LIT:…>`; BAD_INPUT (reason `malformed-cap`) otherwise. */
export function parseTahoeVerifyCap(cap: string): TahoeVerifyCap {
  if (typeof cap !== 'string' || !cap.startsWith(TAHOE_VERIFY_PREFIX)) throw malformed(`a verify capability starts with "${TAHOE_VERIFY_PREFIX}"`);
  const tahoeCap = cap.slice(TAHOE_VERIFY_PREFIX.length);
  checkTahoeCap(tahoeCap, tahoeCap.startsWith('URI:LIT:') ? LIT_RE : CHK_RE, 'Tahoe CHK or LIT cap');
  return { tahoeCap };
}

/** The verify cap of a read cap: the same Tahoe cap, without deaddrop's key. */
export function tahoeVerifyCapOf(readCap: string): string {
  return `${TAHOE_VERIFY_PREFIX}${parseTahoeReadCap(readCap).tahoeCap}`;
}

/**
 * The Tahoe cap to ask the grid about, from a read or a verify cap (the key stays here), and its
 * share parameters (undefined for a literal file).
 */
export function tahoeCheckTarget(cap: string): { readonly tahoeCap: string; readonly params: TahoeShareParams | undefined } {
  const { tahoeCap } = typeof cap === 'string' && cap.startsWith(TAHOE_VERIFY_PREFIX) ? parseTahoeVerifyCap(cap) : parseTahoeReadCap(cap);
  return { tahoeCap, params: tahoeCap.startsWith('URI:LIT:') ? undefined : checkTahoeCap(tahoeCap, CHK_RE, 'Tahoe CHK cap') };
}
