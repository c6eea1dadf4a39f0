/**
 * A small client for Tor's control protocol (control-spec.txt): enough for the node to
 * authenticate, read status, publish and remove onion services, and follow bootstrap events.
 *
 * Replies are lines `CODE SEP TEXT` where SEP is '-' (more lines follow), '+' (a data block
 * follows, ended by a line holding only "."), or ' ' (last line). Codes 6xx are asynchronous
 * events; everything else answers the oldest pending command (Tor answers in order).
 * Bad replies (malformed lines, oversize replies, unexpected codes) reject the command with a
 * DeaddropError and never throw out of a socket handler.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { DeaddropError } from '../../util/errors.js';
import { TypedEmitter } from '../events.js';
import { addOnionKeyBlob } from './onion-key.js';

/** One line of a reply: its text, and the data block when the line had '+'. */
export interface ReplyLine {
  readonly code: number;
  readonly text: string;
  readonly data?: string;
}

/** A complete reply (or asynchronous event). */
export interface Reply {
  /** The code of the last line (what says success or failure). */
  readonly code: number;
  readonly lines: readonly ReplyLine[];
}

/** Longest reply the parser accepts (GETINFO ns/all on a small network is well below). */
const MAX_REPLY_BYTES = 8 * 1024 * 1024;
const LINE = /^(\d{3})([ +-])(.*)$/s;

/**
 * Incremental reply parser: feed it bytes, it returns the replies completed so far. Throws
 * DeaddropError PROTOCOL on a malformed line or an oversize reply (the connection is unusable then).
 */
export class ReplyParser {
  #buf = '';
  #lines: ReplyLine[] = [];
  #data: { code: number; text: string; body: string[] } | null = null;
  #size = 0;

  push(chunk: string): Reply[] {
    this.#buf += chunk;
    const out: Reply[] = [];
    for (;;) {
      const nl = this.#buf.indexOf('\n');
      if (nl < 0) break;
      const line = this.#buf.slice(0, nl).replace(/\r$/, '');
      this.#buf = this.#buf.slice(nl + 1);
      this.#size += line.length + 2;
      if (this.#size > MAX_REPLY_BYTES) throw new DeaddropError('PROTOCOL', 'tor control: reply too large');
      const reply = this.#line(line);
      if (reply) {
        out.push(reply);
        this.#size = 0;
      }
    }
    if (this.#buf.length > MAX_REPLY_BYTES) throw new DeaddropError('PROTOCOL', 'tor control: line too long');
    return out;
  }

  #line(line: string): Reply | null {
    if (this.#data) {
      if (line === '.') {
        this.#lines.push({ code: this.#data.code, text: this.#data.text, data: this.#data.body.join('\n') });
        this.#data = null;
      } else {
        // dot-stuffing: a leading "." of a data line is doubled
        this.#data.body.push(line.startsWith('..') ? line.slice(1) : line);
      }
      return null;
    }
    const m = LINE.exec(line);
    if (!m) throw new DeaddropError('PROTOCOL', `tor control: malformed reply line ${JSON.stringify(line.slice(0, 60))}`);
    const code = Number(m[1]);
    const text = m[3] as string;
    if (this.#lines.length > 0 && this.#lines[0]!.code !== code) {
      throw new DeaddropError('PROTOCOL', `tor control: reply mixes codes ${this.#lines[0]!.code} and ${code}`);
    }
    switch (m[2]) {
      case '-':
        this.#lines.push({ code, text });
        return null;
      case '+':
        this.#data = { code, text, body: [] };
        return null;
      default: {
        this.#lines.push({ code, text });
        const reply = { code, lines: this.#lines };
        this.#lines = [];
        return reply;
      }
    }
  }
}

/** Quotes a string as a control-protocol QuotedString. */
export function quoteString(s: string): string {
  if (/[\r\n\0]/.test(s)) throw DeaddropError.badInput('tor control: value contains a line break');
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Reads `KEY=VALUE` pairs (values bare or quoted) from a reply line. */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_/.-]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out[m[1] as string] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] as string);
  }
  return out;
}

/** Bootstrap progress as Tor reports it (status/bootstrap-phase or STATUS_CLIENT BOOTSTRAP). */
export interface BootstrapStatus {
  /** 0..100 */
  readonly progress: number;
  readonly tag: string;
  readonly summary: string;
}

/** Parses `NOTICE BOOTSTRAP PROGRESS=.. TAG=.. SUMMARY=".."`; null when it is not one. */
export function parseBootstrap(text: string): BootstrapStatus | null {
  if (!/\bBOOTSTRAP\b/.test(text)) return null;
  const kv = parseKeyValues(text);
  const progress = Number(kv.PROGRESS);
  if (!Number.isInteger(progress) || progress < 0 || progress > 100) return null;
  return { progress, tag: kv.TAG ?? '', summary: kv.SUMMARY ?? '' };
}

/** A port mapping of an onion service: virtual port -> local target host:port. */
export interface OnionPort {
  readonly virtualPort: number;
  readonly target: string;
}

export type TorControlEvents = {
  /** Bootstrap progress changed (needs {@link TorControl.watchBootstrap}). */
  bootstrap: (status: BootstrapStatus) => void;
  /** Any asynchronous event (code 650), first line text. */
  event: (reply: Reply) => void;
  /** The control connection closed (tor exited or the socket failed). */
  close: () => void;
};

/** Where the control port is: TCP (host, port) or a Unix socket path. */
export type ControlAddress = { host: string; port: number } | { path: string };

/** Parses "host:port", "port" or "unix:/path". */
export function parseControlAddress(text: string): ControlAddress {
  if (text.startsWith('unix:')) return { path: text.slice(5) };
  const m = /^(?:(\[[0-9a-f:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/i.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw DeaddropError.badInput(`tor control address must be host:port or unix:/path, got ${JSON.stringify(text.slice(0, 80))}`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

/** One authenticated control connection. */
export class TorControl extends TypedEmitter<TorControlEvents> {
  #socket: Socket;
  #parser = new ReplyParser();
  #pending: Pending[] = [];
  #closed = false;
  #timeoutMs: number;

  private constructor(socket: Socket, timeoutMs: number) {
    super();
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', () => this.#fail(new DeaddropError('CLOSED', 'tor control connection failed')));
    socket.on('close', () => this.#fail(new DeaddropError('CLOSED', 'tor control connection closed')));
  }

  /** Opens a control connection (not yet authenticated). */
  static connect(addr: ControlAddress, opts: { timeoutMs?: number } = {}): Promise<TorControl> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in addr ? netConnect(addr.path) : netConnect(addr.port, addr.host);
      const where = 'path' in addr ? addr.path : `${addr.host}:${addr.port}`;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new DeaddropError('TIMEOUT', `tor control ${where}: connect timed out`));
      }, opts.timeoutMs ?? 10_000);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(DeaddropError.unreachable(`tor control ${where}`, err.message));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new TorControl(socket, opts.timeoutMs ?? 30_000));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #onData(chunk: string): void {
    let replies: Reply[];
    try {
      replies = this.#parser.push(chunk);
    } catch (err) {
      this.#fail(err as Error);
      this.#socket.destroy();
      return;
    }
    for (const r of replies) {
      if (r.code >= 600 && r.code < 700) {
        this.#onEvent(r);
        continue;
      }
      const p = this.#pending.shift();
      if (!p) {
        this.#fail(new DeaddropError('PROTOCOL', `tor control: unsolicited reply ${r.code}`));
        this.#socket.destroy();
        return;
      }
      p.resolve(r);
    }
  }

  #onEvent(r: Reply): void {
    const first = r.lines[0]?.text ?? '';
    if (first.startsWith('STATUS_CLIENT ')) {
      const b = parseBootstrap(first);
      if (b) this.emit('bootstrap', b);
    }
    this.emit('event', r);
  }

  #fail(err: Error): void {
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) p.reject(err);
    if (!this.#closed) {
      this.#closed = true;
      this.emit('close');
    }
  }

  /**
   * Sends one command line and resolves with its reply; rejects (DeaddropError REJECTED) when
   * the reply code is not 2xx. `redacted` replaces the command in error messages (for secrets).
   */
  command(line: string, redacted?: string): Promise<Reply> {
    if (this.#closed) return Promise.reject(new DeaddropError('CLOSED', 'tor control connection closed'));
    if (/[\r\n]/.test(line)) return Promise.reject(DeaddropError.badInput('tor control: command contains a line break'));
    const name = redacted ?? line.split(' ')[0];
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new DeaddropError('TIMEOUT', `tor control: no reply to ${name}`));
        this.#socket.destroy();
      }, this.#timeoutMs);
      this.#pending.push({
        resolve: (r) => {
          clearTimeout(timer);
          if (r.code >= 200 && r.code < 300) resolve(r);
          else reject(new DeaddropError('REJECTED', `tor refused ${name}: ${r.code} ${r.lines[r.lines.length - 1]?.text ?? ''}`));
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#socket.write(`${line}\r\n`);
    });
  }

  /**
   * Authenticates with a password, or with the cookie file Tor names in PROTOCOLINFO (or
   * `cookieFile`), or with no credentials when Tor allows NULL auth.
   */
  async authenticate(opts: { password?: string; cookieFile?: string } = {}): Promise<void> {
    if (opts.password !== undefined) {
      await this.command(`AUTHENTICATE ${quoteString(opts.password)}`, 'AUTHENTICATE');
      return;
    }
    const info = await this.command('PROTOCOLINFO 1');
    const auth = info.lines.find((l) => l.text.startsWith('AUTH '))?.text ?? '';
    const kv = parseKeyValues(auth);
    const methods = (kv.METHODS ?? '').split(',');
    if (methods.includes('NULL')) {
      await this.command('AUTHENTICATE');
      return;
    }
    const cookieFile = opts.cookieFile ?? kv.COOKIEFILE;
    if (!(methods.includes('COOKIE') || methods.includes('SAFECOOKIE')) || cookieFile === undefined) {
      throw new DeaddropError('REJECTED', `tor control: no usable authentication (tor offers ${methods.join(',') || 'none'}); give a password`);
    }
    let cookie: Buffer;
    try {
      cookie = await readFile(cookieFile);
    } catch (err) {
      throw DeaddropError.unreachable('tor control cookie file', (err as Error).message);
    }
    if (cookie.length !== 32) throw new DeaddropError('PROTOCOL', 'tor control: cookie file is not 32 bytes');
    if (!methods.includes('COOKIE')) throw new DeaddropError('UNSUPPORTED', 'tor control: only SAFECOOKIE offered; give a password');
    await this.command(`AUTHENTICATE ${cookie.toString('hex')}`, 'AUTHENTICATE');
  }

  /** GETINFO for the given keys: key -> value (multi-line values joined with "\n"). */
  async getInfo(...keys: string[]): Promise<Record<string, string>> {
    for (const k of keys) if (!/^[A-Za-z0-9_/.:-]+$/.test(k)) throw DeaddropError.badInput(`tor control: bad GETINFO key ${JSON.stringify(k)}`);
    const r = await this.command(`GETINFO ${keys.join(' ')}`);
    const out: Record<string, string> = {};
    for (const l of r.lines) {
      const eq = l.text.indexOf('=');
      if (eq < 0) continue; // the closing "250 OK"
      const key = l.text.slice(0, eq);
      out[key] = l.data !== undefined ? l.data : l.text.slice(eq + 1);
    }
    for (const k of keys) if (!(k in out)) throw new DeaddropError('PROTOCOL', `tor control: GETINFO reply lacks ${k}`);
    return out;
  }

  /** Current bootstrap status. */
  async bootstrapStatus(): Promise<BootstrapStatus> {
    const v = (await this.getInfo('status/bootstrap-phase'))['status/bootstrap-phase'] as string;
    const b = parseBootstrap(v);
    if (!b) throw new DeaddropError('PROTOCOL', 'tor control: unreadable bootstrap phase');
    return b;
  }

  /** Subscribes to STATUS_CLIENT events, so `bootstrap` events are emitted. */
  async watchBootstrap(): Promise<void> {
    await this.command('SETEVENTS STATUS_CLIENT');
  }

  /**
   * Publishes an onion service whose key is the Ed25519 key of `seed` (Flags=Detach: it stays
   * when this connection closes, until {@link delOnion}). Resolves with the service id (the
   * 56-character onion name). The key never appears in errors.
   */
  async addOnion(seed: Uint8Array, ports: readonly OnionPort[]): Promise<string> {
    if (ports.length === 0) throw DeaddropError.badInput('tor control: an onion service needs a port');
    const portArgs = ports.map((p) => {
      if (!Number.isInteger(p.virtualPort) || p.virtualPort < 1 || p.virtualPort > 65535) throw DeaddropError.badInput('onion virtual port out of range');
      if (!/^[A-Za-z0-9.:[\]-]+$/.test(p.target)) throw DeaddropError.badInput('onion target must be host:port');
      return `Port=${p.virtualPort},${p.target}`;
    });
    const r = await this.command(`ADD_ONION ${addOnionKeyBlob(seed)} Flags=Detach,DiscardPK ${portArgs.join(' ')}`, 'ADD_ONION');
    const id = r.lines.map((l) => /^ServiceID=([a-z2-7]{56})$/.exec(l.text)?.[1]).find((x) => x !== undefined);
    if (!id) throw new DeaddropError('PROTOCOL', 'tor control: ADD_ONION reply lacks a ServiceID');
    return id;
  }

  /** Removes an onion service published with Flags=Detach. */
  async delOnion(serviceId: string): Promise<void> {
    if (!/^[a-z2-7]{56}$/.test(serviceId)) throw DeaddropError.badInput('tor control: bad onion service id');
    await this.command(`DEL_ONION ${serviceId}`);
  }

  /**
   * Makes tor exit when this connection closes (for a tor the node started itself; its
   * `__OwningControllerProcess` setting stays, so it also exits when the node's process dies).
   */
  async takeOwnership(): Promise<void> {
    await this.command('TAKEOWNERSHIP');
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (!this.#closed) this.#socket.end();
    this.#socket.destroy();
  }
}
