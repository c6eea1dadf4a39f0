/**
 * A storage server's share store: shares kept on disk by storage index and share number, a
 * quota, leases with expiry and renewal, and garbage collection of shares whose every lease
 * has expired. Servers see only storage indexes and opaque share bytes.
 *
 * Layout: <dir>/<storage index>/<share number> for shares and <dir>/<storage index>/leases.json
 * mapping SHA-256(lease secret) to an expiry time (ms since the epoch). Lease secrets themselves
 * are never stored, so a copy of the disk cannot renew or cancel anyone's lease.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes, toHex } from '../../../util/bytes.js';

/** Why a request was refused; `code` is stable for clients, `message` is for people. */
export class StorageRefusal extends Error {
  override readonly name = 'StorageRefusal';
  constructor(
    readonly code: 'too-large' | 'quota-exceeded' | 'bad-request' | 'share-exists' | 'no-lease' | 'not-allowed',
    message: string,
  ) {
    super(message);
  }
}

export interface ShareStoreOptions {
  readonly dir: string;
  /** Total bytes of shares this server accepts. */
  readonly quotaBytes: number;
  /** Largest single share accepted (default: the quota). */
  readonly maxShareBytes?: number;
  /** Clock, injectable for tests. */
  readonly now?: () => number;
}

/** An upload in parts not continued for this long is abandoned (garbage collection removes it). */
const PART_TTL_MS = 3_600_000;
const SI_RE = /^[a-z2-7]{26}$/; // base32 of 16 bytes, as immutable.ts formats it

function readRangeSync(path: string, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const fd = openSync(path, 'r');
  try {
    const got = readSync(fd, out, 0, length, offset);
    return out.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function leaseId(secret: Uint8Array): string {
  if (secret.length !== 32) throw new StorageRefusal('bad-request', 'a lease secret must be 32 bytes');
  return toHex(sha256(secret));
}

/** See the module comment. */
export class ShareStore {
  readonly #dir: string;
  readonly #quota: number;
  readonly #maxShare: number;
  readonly #now: () => number;
  #used = 0;
  /** Shares being put in parts: `.part` path → the share's declared size, reserved against the quota. */
  readonly #parts = new Map<string, number>();

  constructor(options: ShareStoreOptions) {
    this.#dir = options.dir;
    this.#quota = options.quotaBytes;
    this.#maxShare = options.maxShareBytes ?? options.quotaBytes;
    this.#now = options.now ?? Date.now;
    mkdirSync(this.#dir, { recursive: true });
    for (const si of this.storageIndexes()) for (const num of this.list(si)) this.#used += statSync(this.#path(si, num)).size;
  }

  /** Bytes of shares held. */
  get usedBytes(): number {
    return this.#used;
  }

  get quotaBytes(): number {
    return this.#quota;
  }

  /**
   * Stores share `num` of `si` under a lease of `durationMs` for `leaseSecret`. Storing bytes
   * identical to a held share only adds the lease; different bytes are refused (shares are
   * immutable). Refusals: too-large, quota-exceeded, bad-request, share-exists.
   */
  put(si: string, num: number, data: Uint8Array, leaseSecret: Uint8Array, durationMs: number): void {
    this.#check(si, num);
    // Validate everything before writing, so a refused request leaves nothing behind.
    const id = leaseId(leaseSecret);
    if (!Number.isFinite(durationMs) || durationMs <= 0) throw new StorageRefusal('bad-request', 'a lease needs a positive duration');
    if (data.length > this.#maxShare) {
      throw new StorageRefusal('too-large', `share of ${data.length} bytes exceeds this server's limit of ${this.#maxShare} bytes per share`);
    }
    const existing = this.get(si, num);
    if (existing) {
      if (!equalBytes(existing, data)) throw new StorageRefusal('share-exists', `share ${num} of ${si} is already stored with different bytes`);
    } else {
      if (this.#used + data.length > this.#quota) {
        throw new StorageRefusal('quota-exceeded', `share of ${data.length} bytes does not fit: ${this.#quota - this.#used} of ${this.#quota} bytes free`);
      }
      mkdirSync(join(this.#dir, si), { recursive: true });
      const tmp = `${this.#path(si, num)}.tmp`;
      writeFileSync(tmp, data);
      renameSync(tmp, this.#path(si, num));
      this.#used += data.length;
    }
    this.#addLease(si, id, durationMs);
  }

  /**
   * Stores share `num` of `si` in parts, for shares larger than one transport frame: `chunk` is
   * bytes `offset…` of a share of `total` bytes. Parts come in order (offset 0 starts over); the
   * share appears, with its lease, once the last part is written. Before that it is a
   * `<num>.part` file that neither `get` nor `list` sees. A share already held with the same
   * bytes only gains the lease; different bytes are `share-exists`.
   */
  putPart(si: string, num: number, offset: number, total: number, chunk: Uint8Array, leaseSecret: Uint8Array, durationMs: number): { complete: boolean } {
    this.#check(si, num);
    const id = leaseId(leaseSecret);
    if (!Number.isFinite(durationMs) || durationMs <= 0) throw new StorageRefusal('bad-request', 'a lease needs a positive duration');
    if (![offset, total].every(Number.isSafeInteger) || offset < 0 || total < 1 || offset + chunk.length > total || (chunk.length === 0 && offset < total)) {
      throw new StorageRefusal('bad-request', 'a share part needs 0 <= offset < offset + length <= total');
    }
    if (total > this.#maxShare) throw new StorageRefusal('too-large', `share of ${total} bytes exceeds this server's limit of ${this.#maxShare} bytes per share`);
    const complete = offset + chunk.length === total;
    const final = this.#path(si, num);
    if (existsSync(final)) {
      // Immutable: the same bytes again only add a lease (checked part by part).
      if (this.size(si, num) !== total || !equalBytes(this.read(si, num, offset, chunk.length) ?? new Uint8Array(0), chunk)) {
        throw new StorageRefusal('share-exists', `share ${num} of ${si} is already stored with different bytes`);
      }
      if (complete) this.#addLease(si, id, durationMs);
      return { complete };
    }
    const part = `${final}.part`;
    // Parts in progress reserve their whole share, so parallel uploads cannot overrun the quota on disk.
    let reserved = 0;
    for (const [p, size] of this.#parts) if (p !== part) reserved += size;
    if (this.#used + reserved + total > this.#quota) {
      throw new StorageRefusal('quota-exceeded', `share of ${total} bytes does not fit: ${Math.max(0, this.#quota - this.#used - reserved)} of ${this.#quota} bytes free`);
    }
    mkdirSync(join(this.#dir, si), { recursive: true });
    let have = existsSync(part) ? statSync(part).size : 0;
    // After a restart the parts map is empty and the `.part` file is still there: the next part fixes the total again (resume).
    const sameTotal = (this.#parts.get(part) ?? (have > 0 ? total : undefined)) === total;
    if (offset !== 0 && !sameTotal) throw new StorageRefusal('bad-request', 'a share part must keep the total of the first part');
    // Bytes already written, sent again (an answer lost to a broken connection, a restart, or a
    // mixnet packet that came late or twice): acknowledged if identical, the rest written. At
    // offset 0 anything else starts over; elsewhere it is refused.
    let overlap = Math.max(0, Math.min(have, offset + chunk.length) - offset);
    const same = sameTotal && offset <= have && (overlap === 0 || equalBytes(readRangeSync(part, offset, overlap), chunk.subarray(0, overlap)));
    if (offset === 0 && !same) have = overlap = 0;
    else if (offset > have) throw new StorageRefusal('bad-request', `share part at ${offset}, expected ${have}`);
    else if (!same) throw new StorageRefusal('bad-request', `share part at ${offset} differs from the bytes already written`);
    if (have === 0 || offset + chunk.length > have) {
      const fd = openSync(part, have === 0 ? 'w' : 'r+', 0o600);
      try {
        writeSync(fd, chunk, overlap, chunk.length - overlap, offset + overlap);
      } finally {
        closeSync(fd);
      }
    }
    this.#parts.set(part, total);
    if (complete) {
      this.#parts.delete(part);
      renameSync(part, final);
      this.#used += total;
      this.#addLease(si, id, durationMs);
    }
    return { complete };
  }

  /**
   * Bytes of share `num` of `si` written so far by a put in parts (0 when none is under way), or
   * undefined when the share is complete (any part of it is then checked against it).
   */
  partBytes(si: string, num: number): number | undefined {
    this.#check(si, num);
    const final = this.#path(si, num);
    if (existsSync(final)) return undefined;
    return existsSync(`${final}.part`) ? statSync(`${final}.part`).size : 0;
  }

  /** Size in bytes of share `num` of `si`, or undefined. */
  size(si: string, num: number): number | undefined {
    this.#check(si, num);
    const p = this.#path(si, num);
    return existsSync(p) ? statSync(p).size : undefined;
  }

  /** Bytes `offset … offset + length` of share `num` of `si` (shorter at the end), or undefined. */
  read(si: string, num: number, offset: number, length: number): Uint8Array | undefined {
    this.#check(si, num);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw new StorageRefusal('bad-request', 'a range needs offset >= 0 and length >= 0');
    const p = this.#path(si, num);
    if (!existsSync(p)) return undefined;
    const fd = openSync(p, 'r');
    try {
      const buf = new Uint8Array(Math.max(0, Math.min(length, statSync(p).size - offset)));
      let at = 0;
      while (at < buf.length) {
        const got = readSync(fd, buf, at, buf.length - at, offset + at);
        if (got === 0) break;
        at += got;
      }
      return buf.subarray(0, at);
    } finally {
      closeSync(fd);
    }
  }

  /** The bytes of share `num` of `si`, or undefined. */
  get(si: string, num: number): Uint8Array | undefined {
    this.#check(si, num);
    const p = this.#path(si, num);
    return existsSync(p) ? new Uint8Array(readFileSync(p)) : undefined;
  }

  /** Share numbers held for `si`, ascending. */
  list(si: string): number[] {
    if (!SI_RE.test(si)) throw new StorageRefusal('bad-request', 'malformed storage index');
    const d = join(this.#dir, si);
    if (!existsSync(d)) return [];
    return readdirSync(d).filter((f) => /^\d{1,3}$/.test(f)).map(Number).sort((a, b) => a - b);
  }

  /** Storage indexes held. */
  storageIndexes(): string[] {
    return readdirSync(this.#dir).filter((f) => SI_RE.test(f));
  }

  /** Extends the lease of `leaseSecret` on `si` to now + durationMs. Refuses unknown leases. */
  renewLease(si: string, leaseSecret: Uint8Array, durationMs: number): void {
    if (!SI_RE.test(si)) throw new StorageRefusal('bad-request', 'malformed storage index');
    const id = leaseId(leaseSecret);
    if (!(id in this.#leases(si))) throw new StorageRefusal('no-lease', `no lease with that secret on ${si}`);
    this.#addLease(si, id, durationMs);
  }

  /** Latest lease expiry on `si` (ms since the epoch), or undefined if none. */
  leaseExpiry(si: string): number | undefined {
    const all = Object.values(this.#leases(si));
    return all.length ? Math.max(...all) : undefined;
  }

  /** Deletes every storage index whose leases have all expired; returns what was freed. */
  collectGarbage(): { storageIndexes: number; bytes: number } {
    const now = this.#now();
    let count = 0;
    let bytes = 0;
    for (const si of this.storageIndexes()) {
      this.#dropStaleParts(si, now);
      const expiry = this.leaseExpiry(si);
      if (expiry !== undefined && expiry > now) continue;
      if (expiry === undefined && this.#uploading(si, now)) continue;
      for (const num of this.list(si)) bytes += statSync(this.#path(si, num)).size;
      rmSync(join(this.#dir, si), { recursive: true, force: true });
      count++;
    }
    this.#used -= bytes;
    return { storageIndexes: count, bytes };
  }

  /** A share of `si` is being put in parts (a part written within the last hour). */
  #uploading(si: string, now: number): boolean {
    const d = join(this.#dir, si);
    return readdirSync(d).some((f) => f.endsWith('.part') && statSync(join(d, f)).mtimeMs > now - PART_TTL_MS);
  }

  /** Deletes parts of `si` not written to for an hour (abandoned uploads), and their reservations. */
  #dropStaleParts(si: string, now: number): void {
    const d = join(this.#dir, si);
    for (const f of readdirSync(d).filter((x) => x.endsWith('.part'))) {
      const p = join(d, f);
      if (statSync(p).mtimeMs > now - PART_TTL_MS) continue;
      rmSync(p, { force: true });
      this.#parts.delete(p);
    }
  }

  #check(si: string, num: number): void {
    if (!SI_RE.test(si)) throw new StorageRefusal('bad-request', 'malformed storage index');
    if (!Number.isInteger(num) || num < 0 || num > 255) throw new StorageRefusal('bad-request', `share number ${num} is outside 0..255`);
  }

  #path(si: string, num: number): string {
    return join(this.#dir, si, String(num));
  }

  #leases(si: string): Record<string, number> {
    const p = join(this.#dir, si, 'leases.json');
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Record<string, number>) : {};
  }

  #addLease(si: string, id: string, durationMs: number): void {
    if (!Number.isFinite(durationMs) || durationMs <= 0) throw new StorageRefusal('bad-request', 'a lease needs a positive duration');
    const leases = this.#leases(si);
    leases[id] = Math.max(leases[id] ?? 0, this.#now() + durationMs);
    const p = join(this.#dir, si, 'leases.json');
    writeFileSync(`${p}.tmp`, JSON.stringify(leases));
    renameSync(`${p}.tmp`, p);
  }
}
