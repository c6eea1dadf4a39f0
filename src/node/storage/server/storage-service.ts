/**
 * The storage protocol over the node's Noise transport (SecureChannel frames): a server side
 * that answers put/get/list/renew requests from a ShareStore, and a request helper for clients.
 *
 * Frame payload (both directions): u32 request id ‖ u16 header length ‖ JSON header ‖ body.
 * Requests use frame type 0x40, responses 0x41. Response header: {ok: true, ...} or
 * {ok: false, code, error}. Bad input from a peer gets an error response or closes that
 * channel; it never throws out of the server.
 */
import type { Agent } from 'node:http';
import type { NodeIdentity } from '../../identity.js';
import type { SecureChannel } from '../../transport/secure-channel.js';
import { ChannelServer, dial } from '../../transport/ws-transport.js';
import { ShareStore, StorageRefusal } from './share-store.js';
import { fromHex } from '../../../util/bytes.js';

export const FRAME_REQUEST = 0x40;
export const FRAME_RESPONSE = 0x41;

/**
 * Requests. A share larger than one frame travels in parts: `put` with `offset` and `total` (the
 * parts in order), `get` with `offset` and `length` (the answer carries the share's `size`).
 */
export type StorageRequest =
  | { op: 'put'; si: string; num: number; leaseSecret: string; durationMs: number; offset?: number; total?: number }
  | { op: 'get'; si: string; num: number; offset?: number; length?: number }
  | { op: 'list'; si: string }
  | { op: 'renew'; si: string; leaseSecret: string; durationMs: number };

export interface StorageResponse {
  readonly ok: boolean;
  readonly code?: string;
  readonly error?: string;
  readonly nums?: number[];
  /** `get` of a range: the whole share's length. */
  readonly size?: number;
}

/** Largest body a storage frame carries: the transport's 4 MiB frame less room for the header. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024 - 4096;

/** Packs id, header and body into one frame payload. */
export function packMessage(id: number, header: object, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(6 + h.length + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, id);
  v.setUint16(4, h.length);
  out.set(h, 6);
  out.set(body, 6 + h.length);
  return out;
}

/** Unpacks a frame payload; throws on malformed input. */
export function unpackMessage(p: Uint8Array): { id: number; header: Record<string, unknown>; body: Uint8Array } {
  if (p.length < 6) throw new RangeError('storage: short message');
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const hl = v.getUint16(4);
  if (6 + hl > p.length) throw new RangeError('storage: truncated header');
  const header = JSON.parse(new TextDecoder().decode(p.subarray(6, 6 + hl))) as unknown;
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new RangeError('storage: header is not an object');
  return { id: v.getUint32(0), header: header as Record<string, unknown>, body: p.subarray(6 + hl) };
}

const hexSecret = (s: unknown): Uint8Array => {
  if (typeof s !== 'string' || !/^[0-9a-f]{64}$/.test(s)) throw new StorageRefusal('bad-request', 'a lease secret must be 32 bytes of hex');
  return fromHex(s);
};
const str = (x: unknown): string => (typeof x === 'string' ? x : '');
const num = (x: unknown): number => (typeof x === 'number' ? x : NaN);

/** A storage server listening on loopback (or the given host) for Noise channels. */
export class StorageServer {
  readonly #server: ChannelServer;
  readonly store: ShareStore;
  /**
   * Who may store and renew (default everyone). Reads stay open to any Noise peer: shares are
   * ciphertext named by an unguessable storage index, and readers need not be the server's contacts.
   */
  mayStore: (remote: Uint8Array) => boolean = () => true;

  /** Use `start()`; public only so that subclasses (test doubles) can be started by it. */
  constructor(server: ChannelServer, store: ShareStore) {
    this.#server = server;
    this.store = store;
    server.on('channel', (ch) => ch.on('frame', (type, payload) => void this.#onFrame(ch, type, payload)));
  }

  /** Listens (default 127.0.0.1, any free port) and serves `store`. */
  static async start<T extends StorageServer>(
    this: new (server: ChannelServer, store: ShareStore) => T,
    identity: NodeIdentity,
    store: ShareStore,
    opts: { host?: string; port?: number } = {},
  ): Promise<T> {
    return new this(await ChannelServer.listen(identity, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 }), store);
  }

  get url(): string {
    return this.#server.url;
  }

  close(): Promise<void> {
    return this.#server.close();
  }

  /** Answers one request. Overridable (sync or async) so tests can build lying or slow servers. */
  protected handle(req: Record<string, unknown>, body: Uint8Array): { header: StorageResponse; body?: Uint8Array } | Promise<{ header: StorageResponse; body?: Uint8Array }> {
    const si = str(req.si);
    switch (req.op) {
      case 'put':
        if (req.offset !== undefined || req.total !== undefined) {
          this.store.putPart(si, num(req.num), num(req.offset), num(req.total), body, hexSecret(req.leaseSecret), num(req.durationMs));
        } else {
          this.store.put(si, num(req.num), body, hexSecret(req.leaseSecret), num(req.durationMs));
        }
        return { header: { ok: true } };
      case 'get': {
        if (req.offset !== undefined || req.length !== undefined) {
          const size = this.store.size(si, num(req.num));
          const data = size === undefined ? undefined : this.store.read(si, num(req.num), num(req.offset), Math.min(num(req.length), MAX_BODY_BYTES));
          return data ? { header: { ok: true, size }, body: data } : { header: { ok: false, code: 'not-found', error: 'no such share' } };
        }
        if ((this.store.size(si, num(req.num)) ?? 0) > MAX_BODY_BYTES) throw new StorageRefusal('too-large', 'share larger than a frame: read it in ranges (offset, length)');
        const data = this.store.get(si, num(req.num));
        return data ? { header: { ok: true }, body: data } : { header: { ok: false, code: 'not-found', error: 'no such share' } };
      }
      case 'list':
        return { header: { ok: true, nums: this.store.list(si) } };
      case 'renew':
        this.store.renewLease(si, hexSecret(req.leaseSecret), num(req.durationMs));
        return { header: { ok: true } };
      default:
        throw new StorageRefusal('bad-request', 'unknown operation');
    }
  }

  async #onFrame(ch: SecureChannel, type: number, payload: Uint8Array): Promise<void> {
    if (type !== FRAME_REQUEST) return;
    let msg: ReturnType<typeof unpackMessage>;
    try {
      msg = unpackMessage(payload);
    } catch {
      ch.close('protocol', 'malformed storage request');
      return;
    }
    let out: { header: StorageResponse; body?: Uint8Array };
    try {
      if ((msg.header.op === 'put' || msg.header.op === 'renew') && !(ch.remote && this.mayStore(ch.remote))) {
        throw new StorageRefusal('not-allowed', 'this server stores only for its operator\'s contacts');
      }
      out = await this.handle(msg.header, msg.body);
    } catch (e) {
      out = e instanceof StorageRefusal ? { header: { ok: false, code: e.code, error: e.message } } : { header: { ok: false, code: 'internal', error: 'request failed' } };
    }
    if (ch.isOpen) ch.send(FRAME_RESPONSE, packMessage(msg.id, out.header, out.body));
  }
}

/**
 * What the storage client needs of a way to one server: requests and answers, then close. A Noise
 * connection ({@link StorageConnection}) is one; reads through the mixnet (../mix-client.ts) another.
 */
export interface StorageChannel {
  request(req: StorageRequest, body?: Uint8Array, timeoutMs?: number): Promise<{ header: StorageResponse; body: Uint8Array }>;
  close(): void;
}

/** A client connection to one storage server. */
export class StorageConnection implements StorageChannel {
  readonly #ch: SecureChannel;
  readonly #pending = new Map<number, { resolve: (r: { header: StorageResponse; body: Uint8Array }) => void; reject: (e: Error) => void }>();
  #next = 1;

  private constructor(ch: SecureChannel) {
    this.#ch = ch;
    ch.on('frame', (type, payload) => {
      if (type !== FRAME_RESPONSE) return;
      try {
        const m = unpackMessage(payload);
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        p?.resolve({ header: m.header as unknown as StorageResponse, body: Uint8Array.from(m.body) });
      } catch {
        ch.close('protocol', 'malformed storage response');
      }
    });
    ch.on('close', (reason) => {
      for (const p of this.#pending.values()) p.reject(new Error(`storage server connection closed (${reason})`));
      this.#pending.clear();
    });
  }

  /** Dials a server; `expectedRemote` pins its identity key; `agent` routes the dial (Tor's SOCKS). */
  static async open(url: string, identity: NodeIdentity, expectedRemote?: Uint8Array, agent?: Agent): Promise<StorageConnection> {
    return new StorageConnection(await dial(url, identity, { expectedRemote: expectedRemote ?? null, handshakeTimeoutMs: 5_000, ...(agent ? { agent } : {}) }));
  }

  request(req: StorageRequest, body?: Uint8Array, timeoutMs = 30_000): Promise<{ header: StorageResponse; body: Uint8Array }> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error('storage request timed out'));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      if (!this.#ch.isOpen) {
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(new Error('storage server connection is closed'));
        return;
      }
      this.#ch.send(FRAME_REQUEST, packMessage(id, req, body));
    });
  }

  close(): void {
    this.#ch.close('local');
  }
}
