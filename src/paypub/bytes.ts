/**
 * Byte helpers shared by the PayPub codecs: a fixed-width big-endian writer/reader (so every
 * value has exactly one encoding), and the tagged hash.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { DeaddropError } from '../util/errors.js';

export { taggedHash } from '../util/hash.js';
export { sha256 };

export function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** Append-only writer of fixed-width big-endian fields. */
export class Writer {
  readonly #parts: Uint8Array[] = [];
  #len = 0;

  bytes(b: Uint8Array, expectedLength?: number): this {
    if (expectedLength !== undefined && b.length !== expectedLength) {
      throw new RangeError(`expected ${expectedLength} bytes, got ${b.length}`);
    }
    this.#parts.push(b);
    this.#len += b.length;
    return this;
  }
  u8(n: number): this {
    checkUint(n, 0xff, 'u8');
    return this.bytes(Uint8Array.of(n));
  }
  u16(n: number): this {
    checkUint(n, 0xffff, 'u16');
    return this.bytes(Uint8Array.of(n >>> 8, n & 0xff));
  }
  u32(n: number): this {
    checkUint(n, 0xffffffff, 'u32');
    return this.bytes(u32be(n));
  }
  u64(n: bigint): this {
    if (typeof n !== 'bigint' || n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${String(n)}`);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, n, false);
    return this.bytes(out);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.#len);
    let off = 0;
    for (const p of this.#parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

function checkUint(n: number, max: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new RangeError(`${what} out of range: ${n}`);
}

/** Reader over untrusted bytes: every overrun is a PROTOCOL error, never an exception of another kind. */
export class Reader {
  #off = 0;
  readonly #buf: Uint8Array;
  readonly #what: string;

  constructor(buf: Uint8Array, what: string) {
    this.#buf = buf;
    this.#what = what;
  }

  bytes(n: number): Uint8Array {
    if (n < 0 || this.#off + n > this.#buf.length) throw DeaddropError.protocol(`${this.#what}: truncated`);
    const out = this.#buf.slice(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }
  u8(): number {
    return this.bytes(1)[0] as number;
  }
  u16(): number {
    const b = this.bytes(2);
    return ((b[0] as number) << 8) | (b[1] as number);
  }
  // byteOffset matters when the input is a Buffer: Buffer#slice is a view into a shared pool.
  u32(): number {
    const b = this.bytes(4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false);
  }
  u64(): bigint {
    const b = this.bytes(8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, false);
  }
  get remaining(): number {
    return this.#buf.length - this.#off;
  }
  /** Rejects trailing bytes: a canonical encoding has exactly one length. */
  end(): void {
    if (this.#off !== this.#buf.length) throw DeaddropError.protocol(`${this.#what}: ${this.remaining} trailing bytes`);
  }
}

/** Display-order block hash (as RPCs print it) to the 32 internal-order bytes that were hashed. */
export function blockHashToBytes(displayHex: string): Uint8Array {
  if (typeof displayHex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(displayHex)) {
    throw new TypeError(`block hash must be 64 hex characters; got ${JSON.stringify(displayHex)}`);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[31 - i] = parseInt(displayHex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
