/**
 * WebSocket listener and dialer producing SecureChannels.
 *
 * - permessage-deflate is off (the payload is ciphertext; compression would only add a zip-bomb
 *   surface), and `maxPayload` is one Noise message: a larger WebSocket message drops the peer.
 * - Client frames are masked with a zero key: RFC 6455 masking protects browser-era HTTP proxies
 *   from attacker-chosen plaintext, while every byte we send is already ChaCha20-Poly1305 output;
 *   `ws` skips the XOR for an all-zero mask, which saves a full pass over each payload.
 */
import { WebSocket, WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import type { Agent } from 'node:http';
import { DeaddropError } from '../../util/errors.js';
import { Lifecycle } from '../../util/lifecycle.js';
import { TypedEmitter } from '../events.js';
import type { NodeIdentity } from '../identity.js';
import { NOISE_MAX_MESSAGE, SecureChannel } from './secure-channel.js';
import type { ChannelOptions, CloseReason } from './secure-channel.js';
import { HandshakeSlots, type HandshakeLimits } from './handshake-slots.js';

export interface ListenOptions extends ChannelOptions {
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** Connections beyond this are refused at once (default 256). */
  maxConnections?: number;
  /** Bounds on handshakes in progress, per source and in all (see ./handshake-slots.ts). */
  handshakes?: Partial<HandshakeLimits>;
}

export type ChannelServerEvents = {
  /** A peer finished the handshake. */
  channel: (channel: SecureChannel) => void;
  /** A connection was dropped before its handshake completed. */
  reject: (reason: CloseReason, detail: string) => void;
};

/** A listening WebSocket endpoint. */
export class ChannelServer extends TypedEmitter<ChannelServerEvents> {
  readonly #channels = new Set<SecureChannel>();
  readonly #handshakes: HandshakeSlots;
  readonly #identity: NodeIdentity;
  readonly #opts: ListenOptions;
  #wss: WebSocketServer | undefined;
  readonly #life = new Lifecycle('channel server', { open: () => this.#open(), close: () => this.#shutdown() });

  private constructor(identity: NodeIdentity, opts: ListenOptions) {
    super();
    this.#identity = identity;
    this.#opts = opts;
    this.#handshakes = new HandshakeSlots(opts.handshakes);
  }

  /**
   * Starts listening; resolves once the port is bound. The server exists for its caller only
   * once it listens, so no close can arrive during the open.
   */
  static async listen(identity: NodeIdentity, opts: ListenOptions = {}): Promise<ChannelServer> {
    const server = new ChannelServer(identity, opts);
    await server.#life.ready();
    return server;
  }

  #open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const wss = new WebSocketServer({
        host: this.#opts.host ?? '127.0.0.1',
        port: this.#opts.port ?? 0,
        maxPayload: NOISE_MAX_MESSAGE,
        perMessageDeflate: false,
        clientTracking: false,
      });
      const onError = (err: Error): void => reject(DeaddropError.unreachable('listen address', err.message));
      wss.once('error', onError);
      wss.once('listening', () => {
        wss.off('error', onError);
        this.#wss = wss;
        wss.on('connection', (ws, req) => this.#onConnection(ws, req.socket.remoteAddress ?? ''));
        wss.on('error', () => {
          // errors of individual upgrade attempts; the server keeps running
        });
        resolve();
      });
    });
  }

  /** The listening server (set once `listen` resolved, which is the only way to get an instance). */
  get #server(): WebSocketServer {
    if (!this.#wss) throw DeaddropError.closed('channel server (not listening)');
    return this.#wss;
  }

  /** The bound port. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The endpoint URL peers dial. */
  get url(): string {
    const { address, family } = this.#server.address() as AddressInfo;
    return family === 'IPv6' ? `ws://[${address}]:${this.port}` : `ws://${address}:${this.port}`;
  }

  /** Open channels, handshaking ones included. */
  get size(): number {
    return this.#channels.size;
  }

  #onConnection(ws: WebSocket, source: string): void {
    const max = this.#opts.maxConnections ?? 256;
    if (this.#life.closing || this.#channels.size >= max) {
      ws.terminate();
      return;
    }
    const admitted: { ch?: SecureChannel } = {};
    const evict = (): void => admitted.ch?.close('handshake-timeout', 'evicted: handshake slots full');
    const slot = this.#handshakes.admit(source, this.#opts.handshakeTimeoutMs ?? 10_000, this.#channels.size / max, evict);
    if (!slot) {
      // Refused before any handshake work: counted as a rejection like any failed handshake.
      ws.terminate();
      this.emit('reject', 'handshake-timeout', 'too many handshakes in progress');
      return;
    }
    const ch = new SecureChannel(ws, this.#identity, { initiator: false }, { ...this.#opts, handshakeTimeoutMs: slot.timeoutMs });
    admitted.ch = ch;
    this.#channels.add(ch);
    let opened = false;
    ch.on('open', () => {
      opened = true;
      slot.done();
      this.emit('channel', ch);
    });
    ch.on('close', (reason, detail) => {
      slot.done();
      this.#channels.delete(ch);
      if (!opened) this.emit('reject', reason, detail);
    });
  }

  /** Stops listening and closes every channel (idempotent). */
  close(): Promise<void> {
    return this.#life.close();
  }

  #shutdown(): Promise<void> {
    return new Promise<void>((resolve) => {
      for (const ch of this.#channels) ch.close('local');
      this.#channels.clear();
      if (this.#wss) this.#wss.close(() => resolve());
      else resolve();
    });
  }
}

export interface DialOptions extends ChannelOptions {
  /** Abort unless the responder proves this Ed25519 identity (checked before we reveal ours). */
  expectedRemote?: Uint8Array | null;
  signal?: AbortSignal;
  /** Connects through this agent (Tor's SOCKS port: src/node/tor/socks.ts) instead of directly. */
  agent?: Agent;
}

/** Validates an endpoint URL: ws:// or wss:// only. */
export function parseEndpoint(url: string): URL | null {
  try {
    const u = new URL(url);
    return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.hostname !== '' ? u : null;
  } catch {
    return null;
  }
}

/** Dials an endpoint and completes the Noise handshake. Rejects with DeaddropError. */
export function dial(url: string, identity: NodeIdentity, opts: DialOptions = {}): Promise<SecureChannel> {
  const endpoint = parseEndpoint(url);
  if (!endpoint) return Promise.reject(DeaddropError.badInput('endpoint must be a ws:// or wss:// URL'));
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(endpoint, {
      perMessageDeflate: false,
      maxPayload: NOISE_MAX_MESSAGE,
      handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
      generateMask: (mask: Buffer) => mask.fill(0),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
    let settled = false;
    const settle = (err: Error | null, ch?: SecureChannel): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(ch!);
    };
    const onAbort = (): void => {
      ws.terminate();
      settle(new DeaddropError('TIMEOUT', `dial ${endpoint.host} aborted`));
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort);
    ws.on('error', (err) => settle(DeaddropError.unreachable(endpoint.host, err.message)));
    ws.once('open', () => {
      const ch = new SecureChannel(ws, identity, { initiator: true, expectedRemote: opts.expectedRemote ?? null }, opts);
      ch.once('open', () => settle(null, ch));
      ch.once('close', (reason, detail) => {
        const code = reason === 'handshake-timeout' ? 'TIMEOUT' : 'REJECTED';
        settle(new DeaddropError(code, `handshake with ${endpoint.host} failed: ${reason}${detail ? ` (${detail})` : ''}`));
      });
    });
  });
}
