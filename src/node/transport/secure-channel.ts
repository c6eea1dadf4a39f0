/**
 * An authenticated, encrypted, framed channel over one WebSocket.
 *
 * 1. Noise XX (Noise_XX_25519_ChaChaPoly_BLAKE2b, via the maintained `noise-handshake` package),
 *    one handshake message per WebSocket message, prologue "deaddrop-node/1". The static keys are
 *    the X25519 forms of the nodes' Ed25519 identity keys; each side's encrypted handshake payload
 *    names its Ed25519 key, which must map to the static key the handshake authenticated.
 *    An initiator that expects a particular responder aborts before revealing its own identity.
 * 2. Transport: Noise CipherState (ChaCha20-Poly1305, counter nonces) per direction, one Noise
 *    message (at most 65,535 bytes) per WebSocket message, carrying a length-prefixed frame stream.
 *
 * Anything unexpected from the peer (text messages, bad handshake, failed decryption, oversized or
 * malformed frames, silence past the timeouts) closes the channel with a reason; nothing throws
 * out of this class because of peer input.
 */
import NoiseState from 'noise-handshake';
import CipherState from 'noise-handshake/cipher.js';
import type { WebSocket, RawData } from 'ws';
import { TypedEmitter } from '../events.js';
import { PUBLIC_KEY_BYTES, ed25519PublicToX25519, utf8 } from '../crypto.js';
import type { NodeIdentity } from '../identity.js';
import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, FrameDecoder, encodeFrameHeader } from './frame.js';
import { equalBytes } from '../../util/bytes.js';

export const PROLOGUE: Uint8Array = utf8('deaddrop-node/1');
export const HELLO_VERSION = 1;
/** Largest Noise message, and so largest WebSocket message we accept. */
export const NOISE_MAX_MESSAGE = 65535;
const NOISE_TAG = 16;
const MAX_PLAINTEXT = NOISE_MAX_MESSAGE - NOISE_TAG;
/** noise-handshake writes the nonce as 32 bits: stop well before it could wrap. */
const NONCE_LIMIT = 2 ** 32 - 2;

/** Why a channel closed. */
export type CloseReason =
  | 'local'
  | 'remote'
  | 'bad-handshake'
  | 'unexpected-identity'
  | 'handshake-timeout'
  | 'idle-timeout'
  | 'decrypt-failed'
  | 'text-message'
  | 'frame-too-large'
  | 'empty-frame'
  | 'nonce-exhausted'
  | 'socket-error'
  | 'protocol';

/** Timeouts and limits; every field has a production default. */
export interface ChannelOptions {
  /** Whole handshake must finish within this (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Send a ping after this much silence (default 15 s). */
  keepaliveMs?: number;
  /** Close after this much silence, pongs included (default 45 s). */
  idleTimeoutMs?: number;
  /** Largest frame accepted (default 4 MiB). */
  maxFrameBytes?: number;
  /** `send` returns false above this many unflushed bytes (default 4 MiB). */
  highWaterBytes?: number;
}

export type SecureChannelEvents = {
  /** Handshake complete; `remote` is the peer's Ed25519 identity key. */
  open: (remote: Uint8Array) => void;
  frame: (type: number, payload: Uint8Array) => void;
  /** Unflushed bytes fell below half the high-water mark. */
  drain: () => void;
  /** Fires exactly once. */
  close: (reason: CloseReason, detail: string) => void;
};

type Phase = 'handshake' | 'open' | 'closed';

/**
 * One side of a channel. Create it on a WebSocket that is already OPEN; the initiator sends the
 * first handshake message immediately.
 */
export class SecureChannel extends TypedEmitter<SecureChannelEvents> {
  readonly initiator: boolean;
  /** The peer's Ed25519 identity key, once open. */
  remote: Uint8Array | null = null;
  /** Noise handshake hash, once open: binds application proofs to this session. */
  handshakeHash: Uint8Array | null = null;
  #phase: Phase = 'handshake';
  #noise: NoiseState | null;
  #step = 0;
  #tx: CipherState | null = null;
  #rx: CipherState | null = null;
  readonly #decoder: FrameDecoder;
  #pending = 0;
  #lastSeen = Date.now();
  #timers: NodeJS.Timeout[] = [];
  readonly #opts: Required<ChannelOptions>;
  readonly #expectedRemote: Uint8Array | null;
  readonly #identity: NodeIdentity;

  readonly #ws: WebSocket;

  constructor(
    ws: WebSocket,
    identity: NodeIdentity,
    role: { initiator: boolean; expectedRemote?: Uint8Array | null },
    opts: ChannelOptions = {},
  ) {
    super();
    this.#ws = ws;
    this.#identity = identity;
    this.initiator = role.initiator;
    this.#expectedRemote = role.expectedRemote ?? null;
    this.#opts = {
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      keepaliveMs: opts.keepaliveMs ?? 15_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 45_000,
      maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      highWaterBytes: opts.highWaterBytes ?? 4 * 1024 * 1024,
    };
    this.#decoder = new FrameDecoder(this.#opts.maxFrameBytes);
    this.#noise = new NoiseState('XX', this.initiator, identity.noiseKeyPair());
    this.#noise.initialise(PROLOGUE);
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('close', () => this.#finish('remote', 'socket closed'));
    ws.on('error', (err) => this.#finish('socket-error', err.message));
    ws.on('pong', () => (this.#lastSeen = Date.now()));
    ws.on('ping', () => (this.#lastSeen = Date.now()));
    this.#timers.push(setTimeout(() => this.#fail('handshake-timeout', 'handshake not finished in time'), this.#opts.handshakeTimeoutMs));
    if (this.initiator) this.#sendHandshake(new Uint8Array(0));
  }

  /** True once the handshake is complete and until close. */
  get isOpen(): boolean {
    return this.#phase === 'open';
  }

  /** Bytes handed to the socket but not yet flushed. */
  get bufferedBytes(): number {
    return this.#pending;
  }

  /**
   * Sends one frame. Returns false when the caller should wait for `drain` before sending more
   * (the frame is still queued). Throws only on misuse (not open, frame above the limit).
   */
  send(type: number, payload: Uint8Array): boolean {
    if (this.#phase !== 'open') throw new Error('channel is not open');
    if (payload.length + 1 > this.#opts.maxFrameBytes) throw new RangeError('frame above maxFrameBytes');
    const header = encodeFrameHeader(type, payload.length);
    // cut header+payload into plaintext chunks without concatenating the whole frame
    let off = 0;
    const total = FRAME_HEADER_BYTES + payload.length;
    while (off < total) {
      const n = Math.min(MAX_PLAINTEXT, total - off);
      const chunk = new Uint8Array(n);
      let w = 0;
      if (off < FRAME_HEADER_BYTES) {
        const h = header.subarray(off, Math.min(FRAME_HEADER_BYTES, off + n));
        chunk.set(h, 0);
        w = h.length;
      }
      const pStart = Math.max(0, off + w - FRAME_HEADER_BYTES);
      chunk.set(payload.subarray(pStart, pStart + (n - w)), w);
      this.#sendEncrypted(chunk);
      off += n;
    }
    return this.#pending < this.#opts.highWaterBytes;
  }

  /**
   * Sends several frames in as few Noise messages as they fit (the frame stream may cross message
   * boundaries, see ./frame.ts): one encryption and one WebSocket message per 65,519 bytes instead
   * of one per frame. Same return value and misuse errors as {@link send}; nothing is sent on misuse.
   */
  sendFrames(frames: readonly { readonly type: number; readonly payload: Uint8Array }[]): boolean {
    if (this.#phase !== 'open') throw new Error('channel is not open');
    const parts: Uint8Array[] = [];
    let total = 0;
    for (const f of frames) {
      if (f.payload.length + 1 > this.#opts.maxFrameBytes) throw new RangeError('frame above maxFrameBytes');
      parts.push(encodeFrameHeader(f.type, f.payload.length), f.payload);
      total += FRAME_HEADER_BYTES + f.payload.length;
    }
    let chunk = new Uint8Array(Math.min(MAX_PLAINTEXT, total));
    let w = 0;
    for (const part of parts) {
      let off = 0;
      while (off < part.length) {
        const n = Math.min(chunk.length - w, part.length - off);
        chunk.set(part.subarray(off, off + n), w);
        w += n;
        off += n;
        total -= n;
        if (w === chunk.length) {
          this.#sendEncrypted(chunk);
          if (this.#phase !== 'open') return false;
          chunk = new Uint8Array(Math.min(MAX_PLAINTEXT, total));
          w = 0;
        }
      }
    }
    return this.#pending < this.#opts.highWaterBytes;
  }

  /** Closes the channel (idempotent). */
  close(reason: CloseReason = 'local', detail = ''): void {
    this.#finish(reason, detail);
  }

  #sendEncrypted(plaintext: Uint8Array): void {
    const tx = this.#tx!;
    if (tx.nonce >= NONCE_LIMIT) {
      this.#fail('nonce-exhausted', 'too many messages on one session');
      return;
    }
    const ct = tx.encrypt(plaintext);
    this.#pending += ct.length;
    this.#ws.send(ct, { binary: true }, () => {
      this.#pending -= ct.length;
      if (this.#pending <= this.#opts.highWaterBytes / 2 && this.#phase === 'open') this.emit('drain');
    });
  }

  #sendHandshake(payload: Uint8Array): void {
    const msg = this.#noise!.send(payload);
    this.#ws.send(msg, { binary: true });
    this.#step++;
  }

  #hello(): Uint8Array {
    const out = new Uint8Array(1 + PUBLIC_KEY_BYTES);
    out[0] = HELLO_VERSION;
    out.set(this.#identity.publicKey, 1);
    return out;
  }

  /** Checks the peer's hello payload against the static key Noise authenticated. */
  #checkHello(payload: Uint8Array, rs: Uint8Array | null): Uint8Array | null {
    if (payload.length !== 1 + PUBLIC_KEY_BYTES || payload[0] !== HELLO_VERSION || !rs) return null;
    const ed = payload.slice(1);
    const x = ed25519PublicToX25519(ed);
    return x && equalBytes(x, rs) ? ed : null;
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#phase === 'closed') return;
    this.#lastSeen = Date.now();
    if (!isBinary) return this.#fail('text-message', 'text frames are not allowed');
    const buf = data as Buffer;
    if (this.#phase === 'handshake') this.#onHandshake(buf);
    else this.#onTransport(buf);
  }

  #onHandshake(msg: Uint8Array): void {
    const noise = this.#noise!;
    let payload: Uint8Array;
    try {
      payload = noise.recv(msg);
    } catch {
      return this.#fail('bad-handshake', 'handshake message rejected');
    }
    this.#step++;
    // initiator: got msg2 (responder's identity); responder: got msg1 (nothing yet) or msg3
    if (this.initiator) {
      const remote = this.#checkHello(payload, noise.rs);
      if (!remote) return this.#fail('bad-handshake', 'responder identity does not match its static key');
      if (this.#expectedRemote && !equalBytes(remote, this.#expectedRemote)) {
        return this.#fail('unexpected-identity', 'responder is not the expected node');
      }
      this.#sendHandshake(this.#hello());
      this.remote = remote;
    } else if (this.#step === 1) {
      if (payload.length !== 0) return this.#fail('bad-handshake', 'unexpected payload in message 1');
      return this.#sendHandshake(this.#hello());
    } else {
      const remote = this.#checkHello(payload, noise.rs);
      if (!remote) return this.#fail('bad-handshake', 'initiator identity does not match its static key');
      this.remote = remote;
    }
    if (noise.complete) this.#onComplete(noise);
  }

  #onComplete(noise: NoiseState): void {
    this.#tx = new CipherState(noise.tx!);
    this.#rx = new CipherState(noise.rx!);
    this.handshakeHash = noise.hash!.slice();
    this.#noise = null;
    this.#phase = 'open';
    clearTimeout(this.#timers[0]);
    this.#timers.push(setInterval(() => this.#tick(), Math.max(10, Math.min(this.#opts.keepaliveMs, this.#opts.idleTimeoutMs / 3))));
    this.emit('open', this.remote!);
  }

  #onTransport(msg: Uint8Array): void {
    let plain: Uint8Array;
    try {
      if (this.#rx!.nonce >= NONCE_LIMIT) return this.#fail('nonce-exhausted', 'too many messages on one session');
      plain = this.#rx!.decrypt(msg);
    } catch {
      return this.#fail('decrypt-failed', 'message failed authentication');
    }
    const { frames, error } = this.#decoder.push(plain);
    for (const f of frames) {
      if (this.#phase !== 'open') return;
      this.emit('frame', f.type, f.payload);
    }
    if (error) this.#fail(error, 'bad frame stream');
  }

  #tick(): void {
    const silent = Date.now() - this.#lastSeen;
    if (silent >= this.#opts.idleTimeoutMs) return this.#fail('idle-timeout', `no traffic for ${silent} ms`);
    if (silent >= this.#opts.keepaliveMs) {
      try {
        this.#ws.ping();
      } catch {
        // socket already closing: the close event follows
      }
    }
  }

  #fail(reason: CloseReason, detail: string): void {
    this.#finish(reason, detail);
  }

  #finish(reason: CloseReason, detail: string): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    this.#noise = null;
    this.#tx = null;
    this.#rx = null;
    try {
      if (reason === 'local' || reason === 'remote') {
        // graceful: let queued frames flush, but never wait more than a second
        this.#ws.close(1000);
        setTimeout(() => this.#ws.terminate(), 1000).unref();
      } else {
        // a misbehaving peer learns nothing about why it was dropped
        this.#ws.terminate();
      }
    } catch {
      // already closed
    }
    this.emit('close', reason, detail);
    this.removeAllListeners();
  }
}
