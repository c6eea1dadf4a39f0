/**
 * A minimal Electrum protocol connection: newline-delimited JSON-RPC 2.0 over TCP or TLS.
 * One instance is one socket; reconnecting (and re-subscribing) is the backend's job.
 *
 * Written instead of using `@mempool/electrum-client` 1.1.9 because that package resolves
 * `msg.result || msg` (a `null` status from `blockchain.scripthash.subscribe` or a `0` result
 * comes back as the whole envelope), throws from its socket handler on a malformed line or an
 * unknown id (an uncaught exception from server data), has no per-request timeout, retries on a
 * fixed period after dropping its own subscription listeners, and ships no types.
 */
import net from 'node:net';
import tls from 'node:tls';
import { DeaddropError } from '../../util/errors.js';

/** Largest line accepted from a server (a big transaction or a long history fits easily). */
const MAX_LINE_BYTES = 32 * 1024 * 1024;

export interface ElectrumConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Per-request timeout in ms. */
  readonly timeoutMs: number;
  /** Verify the server's TLS certificate (default true). */
  readonly tlsRejectUnauthorized?: boolean;
  /** Called for every server notification (a message with `method` and no `id`). */
  readonly onNotification: (method: string, params: unknown[]) => void;
  /** Called once when the socket closes for any reason other than `close()`. */
  readonly onClose: (reason: string) => void;
}

/** An error answer from the server (as opposed to a transport failure). */
export class ElectrumServerError extends DeaddropError {
  readonly rpcCode: number;
  /** The server's own message, unprefixed. */
  readonly serverMessage: string;
  constructor(method: string, rpcCode: number, message: string) {
    super('BACKEND_ERROR', `electrum ${method}: ${message}`, { rpcCode });
    this.rpcCode = rpcCode;
    this.serverMessage = message;
    this.name = 'ElectrumServerError';
  }
}

interface Waiter {
  readonly method: string;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class ElectrumConnection {
  readonly #opts: ElectrumConnectionOptions;
  #socket: net.Socket | undefined;
  #buffer = '';
  #nextId = 1;
  readonly #waiters = new Map<number, Waiter>();
  #closed = false;

  constructor(opts: ElectrumConnectionOptions) {
    this.#opts = opts;
  }

  /** Opens the socket. Rejects with BACKEND_UNREACHABLE when it cannot connect in time. */
  connect(): Promise<void> {
    const { host, port, timeoutMs } = this.#opts;
    const what = `electrum server ${host}:${port}`;
    return new Promise((resolve, reject) => {
      const socket = this.#opts.tls
        ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: this.#opts.tlsRejectUnauthorized ?? true })
        : net.connect({ host, port });
      this.#socket = socket;
      const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        this.#closed = true;
        reject(DeaddropError.unreachable(what, err.message));
      };
      socket.once('error', onError);
      socket.once(this.#opts.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setNoDelay(true);
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => this.#onData(chunk));
        socket.on('error', () => undefined); // 'close' follows and reports it
        socket.on('close', () => this.#onSocketClose('connection closed'));
        resolve();
      });
    });
  }

  /** Sends one request and waits for its answer (or the timeout). */
  request(method: string, params: unknown[] = []): Promise<unknown> {
    const socket = this.#socket;
    if (this.#closed || !socket) return Promise.reject(DeaddropError.unreachable('electrum server', 'not connected'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        reject(new DeaddropError('TIMEOUT', `electrum ${method} timed out after ${this.#opts.timeoutMs} ms`));
      }, this.#opts.timeoutMs);
      this.#waiters.set(id, { method, resolve, reject, timer });
      socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  }

  /** Closes the socket and fails pending requests with CLOSED. Does not call `onClose`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket?.destroy();
    this.#failAll(DeaddropError.closed('electrum connection'));
  }

  #onSocketClose(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket?.destroy();
    this.#failAll(DeaddropError.unreachable('electrum server', reason));
    this.#opts.onClose(reason);
  }

  #failAll(err: Error): void {
    for (const w of this.#waiters.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.#waiters.clear();
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let nl: number;
    while (!this.#closed && (nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line) this.#onLine(line);
    }
    if (this.#buffer.length > MAX_LINE_BYTES) this.#onSocketClose('server sent an over-long line');
  }

  #onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // a malformed line from the server is ignored
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) this.#onMessage(m);
  }

  #onMessage(m: unknown): void {
    if (typeof m !== 'object' || m === null) return;
    const { id, method, params, result, error } = m as Record<string, unknown>;
    if (typeof id === 'number') {
      const w = this.#waiters.get(id);
      if (!w) return;
      this.#waiters.delete(id);
      clearTimeout(w.timer);
      if (error !== undefined && error !== null) {
        const e = error as { code?: unknown; message?: unknown };
        const code = typeof e.code === 'number' ? e.code : 0;
        const message = typeof e.message === 'string' ? e.message : JSON.stringify(error);
        w.reject(new ElectrumServerError(w.method, code, message));
      } else {
        w.resolve(result === undefined ? null : result);
      }
    } else if (typeof method === 'string' && (id === undefined || id === null)) {
      this.#opts.onNotification(method, Array.isArray(params) ? params : []);
    }
  }
}
