/**
 * Streaming a share to a storage server as it is produced (docs/protocol/storage.md §4, "Shares
 * in parts"): bytes are written in order, cut into parts of {@link UPLOAD_PART_BYTES}, and sent one part
 * in flight, so memory per share is about two parts whatever the file's size. A share that fits
 * one part goes in the single-frame form. A refusal of the first part (quota, size, not a
 * contact, unreachable) moves the share to the next spare server, as whole-share puts do. A
 * connection lost after that (the server restarting) is retried on the same server for a while:
 * the server keeps the bytes written so far and acknowledges a part it already has, so the upload
 * resumes where it was; a refusal, or no server back in time, loses the share (the caller counts
 * happiness at the end).
 *
 * Also the sources a put reads its plaintext from, twice (./client.ts `putStream`).
 */
import { open } from 'node:fs/promises';
import type { ServerInfo } from './client.js';
import type { StorageChannel } from './server/storage-service.js';
import { toHex } from '../../util/bytes.js';

/**
 * Shares up to this size travel in one frame; larger ones in parts (well under the 4 MiB frame).
 * Readers ask for ranges of this size.
 */
export const PART_BYTES = 2 * 1024 * 1024;

/**
 * Parts of a streamed upload: smaller than a reader's ranges, since every share of a file is under
 * way at once (n parts in flight, each with its frame copies) and the server takes any part size.
 */
export const UPLOAD_PART_BYTES = 1024 * 1024;

/** Plaintext a put reads by ranges (twice: once to hash, once to send). */
export interface FileSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset` (a short read is an error). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A source over bytes in memory. */
export function bytesSource(data: Uint8Array): FileSource {
  return { size: data.length, read: async (offset, length) => data.subarray(offset, offset + length) };
}

/** A source over a file on disk (its size as opened); close it when done. */
export async function openFileSource(path: string): Promise<FileSource & { close(): Promise<void> }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    return {
      size,
      read: async (offset, length) => {
        const out = new Uint8Array(length);
        for (let at = 0; at < length;) {
          const { bytesRead } = await fh.read(out, at, length - at, offset + at);
          if (bytesRead === 0) throw new Error('storage: the file got shorter during the put');
          at += bytesRead;
        }
        return out;
      },
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

export interface ShareUploadOptions {
  /** A Noise connection, or a channel through the mixnet (./mix-client.ts) under the owner's key. */
  readonly connect: (s: ServerInfo) => Promise<StorageChannel>;
  /** Server tried first. */
  readonly server: ServerInfo;
  /** The next server to try when the first part is refused (undefined: none left). */
  readonly spare: () => ServerInfo | undefined;
  readonly si: string;
  readonly num: number;
  /** The share's whole length (fixed by its UEB). */
  readonly total: number;
  readonly leaseSecret: Uint8Array;
  readonly durationMs: number;
  /** How long to keep trying to resume a share cut mid-way on its server (default {@link RESUME_MS}). */
  readonly resumeMs?: number;
}

/** A share cut mid-way is resumed on its server for up to this long (a restart takes seconds). */
export const RESUME_MS = 20_000;

/** One share on its way to a server; see the module comment. */
export class ShareUpload {
  readonly #o: ShareUploadOptions;
  #server: ServerInfo | undefined;
  #conn: StorageChannel | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Bytes handed to the transport so far (the next part's offset). */
  #sent = 0;
  #written = 0;
  #inflight: Promise<void> | undefined;
  #done = false;
  /** Why each server refused (or failed) this share. */
  readonly failures: string[] = [];
  /** Set when the share can no longer be placed. */
  failed = false;

  constructor(o: ShareUploadOptions) {
    this.#o = o;
    this.#server = o.server;
  }

  get num(): number {
    return this.#o.num;
  }

  /** The server taking the share (the one it ended on, once complete); undefined when failed. */
  get server(): ServerInfo | undefined {
    return this.failed ? undefined : this.#server;
  }

  /** True once the last part was accepted. */
  get complete(): boolean {
    return this.#done;
  }

  /** Appends bytes of the share (awaits only while the previous part is still in flight). */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.failed) return;
    this.#written += bytes.length;
    if (this.#written > this.#o.total) throw new RangeError(`storage: share ${this.#o.num} is longer than ${this.#o.total} bytes`);
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    // A share that fits a frame goes whole with end(); the last part of a larger one too.
    if (this.#o.total <= PART_BYTES) return;
    while (this.#pendingBytes > UPLOAD_PART_BYTES && !this.failed) await this.#queue(this.#take(UPLOAD_PART_BYTES));
  }

  /** Sends what remains and waits for the server to take the share. */
  async end(): Promise<void> {
    try {
      if (this.failed) return;
      if (this.#written !== this.#o.total) throw new RangeError(`storage: share ${this.#o.num} has ${this.#written} of ${this.#o.total} bytes`);
      await this.#queue(this.#take(this.#pendingBytes));
      await this.#inflight;
      if (!this.failed) this.#done = true;
    } finally {
      this.abort();
    }
  }

  /** Closes the connection (a share left in parts is collected by the server after an hour). */
  abort(): void {
    this.#conn?.close();
    this.#conn = undefined;
  }

  #take(count: number): Uint8Array {
    const out = new Uint8Array(count);
    let at = 0;
    while (at < count) {
      const head = this.#pending[0] as Uint8Array;
      const n = Math.min(head.length, count - at);
      out.set(head.subarray(0, n), at);
      at += n;
      if (n === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(n);
    }
    this.#pendingBytes -= count;
    return out;
  }

  async #queue(part: Uint8Array): Promise<void> {
    await this.#inflight;
    if (this.failed) return;
    const at = this.#sent;
    this.#sent += part.length;
    this.#inflight = this.#send(part, at);
    // The first part decides the server (spares are tried in turn): wait for it before going on.
    if (at === 0) await this.#inflight;
  }

  async #send(part: Uint8Array, offset: number): Promise<void> {
    const o = this.#o;
    const base = { op: 'put', si: o.si, num: o.num, leaseSecret: toHex(o.leaseSecret), durationMs: o.durationMs } as const;
    const single = o.total <= PART_BYTES;
    const giveUpAt = Date.now() + (o.resumeMs ?? RESUME_MS);
    let delay = 250;
    for (;;) {
      const s = this.#server as ServerInfo;
      try {
        this.#conn ??= await o.connect(s);
        const res = await this.#conn.request(single ? base : { ...base, offset, total: o.total }, part);
        if (res.header.ok) return;
        this.failures.push(`share ${o.num} on ${s.url}: ${res.header.error ?? res.header.code}`);
      } catch (e) {
        this.abort();
        // Cut mid-share (connection lost, server restarting): resume on the same server, which keeps
        // what it wrote and acknowledges a part it already has. Only this part is still in hand.
        if (offset > 0 && Date.now() + delay < giveUpAt) {
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 4000);
          continue;
        }
        this.failures.push(`share ${o.num} on ${s.url}: ${(e as Error).message}`);
      }
      this.abort();
      // Only the first part can move: later parts of the share are not kept to send again.
      this.#server = offset === 0 ? o.spare() : undefined;
      if (!this.#server) {
        this.failed = true;
        this.#pending = [];
        this.#pendingBytes = 0;
        return;
      }
    }
  }
}
