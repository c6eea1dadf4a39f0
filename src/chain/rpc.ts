/**
 * A small JSON-RPC client for bitcoind and btcd over the global `fetch`.
 *
 * - Basic auth from `user`/`pass` (or a provider, so a Core cookie re-read after a node
 *   restart is picked up). Credentials never appear in error messages: errors name only
 *   `host:port`.
 * - Every request carries an `id`: btcd does not answer requests without one.
 * - Batches are matched back to their calls by id, not by position.
 * - Connection failures and timeouts become `DeaddropError` BACKEND_UNREACHABLE; errors the
 *   node returns become {@link RpcError} with the node's numeric code.
 * - Only idempotent reads are retried (with backoff). `sendrawtransaction` and the other
 *   writes are never retried automatically: a resend after a lost answer could double-act
 *   and the caller is the one who knows whether that is safe.
 */
import { DeaddropError } from '../util/errors.js';
import { Backoff, sleep } from '../util/time.js';

/** Credentials for basic auth. */
export interface RpcAuth {
  readonly user: string;
  readonly pass: string;
}

/** Something that can make JSON-RPC calls (an {@link RpcClient}, or a test double in unit tests). */
export interface RpcCaller {
  call<T = unknown>(method: string, params?: readonly unknown[], opts?: RpcCallOptions): Promise<T>;
}

export interface RpcClientOptions {
  /** `http://host:port/` (a path is kept, credentials in the URL are moved to `auth`). */
  readonly url: string;
  /** Fixed credentials, or a function called per request (cookie files change on restart). */
  readonly auth?: RpcAuth | (() => RpcAuth | Promise<RpcAuth>);
  /** Per-request timeout; default 10 s. */
  readonly timeoutMs?: number;
  /** Extra attempts for idempotent reads after a connection failure; default 2. */
  readonly retries?: number;
  /** First backoff delay; doubles per attempt. Default 100 ms. */
  readonly backoffMs?: number;
  /** JSON-RPC version tag to send; default '1.0' (understood by Core and btcd). */
  readonly jsonrpc?: '1.0' | '2.0';
  /** Aborts every request of this client. */
  readonly signal?: AbortSignal;
  /** Injected transport (tests); defaults to the global fetch. */
  readonly fetch?: typeof fetch;
}

export interface RpcCallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Overrides the method-name rule for retrying. Never set it for writes. */
  readonly idempotent?: boolean;
}

/** One call in a batch. */
export interface RpcRequest {
  readonly method: string;
  readonly params?: readonly unknown[];
}

/** One answer in a batch, in the order of the requests. */
export type RpcBatchResult<T = unknown> = { readonly ok: true; readonly result: T } | { readonly ok: false; readonly error: RpcError };

/** An error returned by the node itself (it was reached and answered). */
export class RpcError extends Error {
  /** The node's numeric JSON-RPC error code (e.g. -26 rejected, -5 not found, -32601 no such method). */
  readonly code: number;
  readonly method: string;

  constructor(code: number, message: string, method: string) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.method = method;
  }
}

/** Well-known JSON-RPC error codes shared by Core and btcd. */
export const RPC_CODES = {
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INVALID_ADDRESS_OR_KEY: -5,
  INVALID_PARAMETER: -8,
  MISC: -1,
  WARMUP: -28,
  VERIFY_ERROR: -25,
  VERIFY_REJECTED: -26,
  VERIFY_ALREADY_IN_CHAIN: -27,
  CLIENT_IN_INITIAL_DOWNLOAD: -10,
} as const;

const READ_PREFIXES = ['get', 'estimate', 'list', 'decode', 'validate', 'help', 'uptime', 'ping', 'search', 'version'];
const READ_EXACT = new Set(['testmempoolaccept']);

/** True for methods that only read state, so a retry after a lost answer is harmless. */
export function isIdempotentMethod(method: string): boolean {
  return READ_EXACT.has(method) || READ_PREFIXES.some((p) => method.startsWith(p));
}

interface RawResponse {
  result?: unknown;
  error?: { code?: unknown; message?: unknown } | null;
  id?: unknown;
}

/** A JSON-RPC client bound to one node. */
export class RpcClient implements RpcCaller {
  /** `host:port` of the node; safe to show (no credentials). */
  readonly endpoint: string;
  readonly #url: string;
  readonly #auth: RpcClientOptions['auth'];
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #jsonrpc: '1.0' | '2.0';
  readonly #signal: AbortSignal | undefined;
  readonly #fetchFn: typeof fetch;
  #nextId = 1;

  constructor(opts: RpcClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(opts.url);
    } catch {
      throw DeaddropError.badInput('RPC url is not a valid URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw DeaddropError.badInput(`RPC url must be http(s), got ${parsed.protocol}`);
    }
    let auth = opts.auth;
    if (auth === undefined && parsed.username !== '') {
      auth = { user: decodeURIComponent(parsed.username), pass: decodeURIComponent(parsed.password) };
    }
    parsed.username = '';
    parsed.password = '';
    this.#url = parsed.toString();
    this.endpoint = parsed.host;
    this.#auth = auth;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#retries = opts.retries ?? 2;
    this.#backoffMs = opts.backoffMs ?? 100;
    this.#jsonrpc = opts.jsonrpc ?? '1.0';
    this.#signal = opts.signal;
    this.#fetchFn = opts.fetch ?? globalThis.fetch;
  }

  /** Calls `method` and returns its result, or throws {@link RpcError} / BACKEND_UNREACHABLE. */
  async call<T = unknown>(method: string, params: readonly unknown[] = [], opts: RpcCallOptions = {}): Promise<T> {
    const idempotent = opts.idempotent ?? isIdempotentMethod(method);
    return this.#withRetry(idempotent, async () => {
      const id = this.#nextId++;
      const body = await this.#post({ jsonrpc: this.#jsonrpc, id, method, params }, opts);
      return parseOne(body, id, method) as T;
    });
  }

  /**
   * Sends several calls in one HTTP request. Answers come back in request order; an RPC
   * error in one call does not fail the others. Retried only when every call is a read.
   */
  async batch<T = unknown>(requests: readonly RpcRequest[], opts: RpcCallOptions = {}): Promise<RpcBatchResult<T>[]> {
    if (requests.length === 0) return [];
    const idempotent = opts.idempotent ?? requests.every((r) => isIdempotentMethod(r.method));
    return this.#withRetry(idempotent, async () => {
      const calls = requests.map((r) => ({ jsonrpc: this.#jsonrpc, id: this.#nextId++, method: r.method, params: r.params ?? [] }));
      const body = await this.#post(calls, opts);
      if (!Array.isArray(body)) throw DeaddropError.protocol(`RPC batch from ${this.endpoint}: expected an array`);
      const byId = new Map<unknown, RawResponse>();
      for (const item of body) if (isObject(item)) byId.set(item.id, item as RawResponse);
      return calls.map((c) => {
        const item = byId.get(c.id);
        if (item === undefined) throw DeaddropError.protocol(`RPC batch from ${this.endpoint}: no answer for ${c.method}`);
        try {
          return { ok: true as const, result: parseOne(item, c.id, c.method) as T };
        } catch (err) {
          if (err instanceof RpcError) return { ok: false as const, error: err };
          throw err;
        }
      });
    });
  }

  async #withRetry<T>(idempotent: boolean, fn: () => Promise<T>): Promise<T> {
    const attempts = idempotent ? this.#retries + 1 : 1;
    const initialMs = Math.max(1, this.#backoffMs);
    const backoff = new Backoff({ initialMs, maxMs: initialMs * 2 ** attempts });
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const transient = isTransient(err);
        if (!transient || attempt >= attempts || this.#signal?.aborted) throw err;
        await sleep(backoff.next(), this.#signal);
      }
    }
  }

  async #headers(): Promise<Record<string, string>> {
    const h: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#auth !== undefined) {
      const a = typeof this.#auth === 'function' ? await this.#auth() : this.#auth;
      h.authorization = `Basic ${Buffer.from(`${a.user}:${a.pass}`, 'utf8').toString('base64')}`;
    }
    return h;
  }

  async #post(payload: unknown, opts: RpcCallOptions): Promise<unknown> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (this.#signal) signals.push(this.#signal);
    if (opts.signal) signals.push(opts.signal);
    const signal = AbortSignal.any(signals);
    let res: Response;
    let text: string;
    try {
      res = await this.#fetchFn(this.#url, { method: 'POST', headers: await this.#headers(), body: JSON.stringify(payload), signal });
      text = await res.text();
    } catch (err) {
      throw this.#transportError(err, timeoutMs, opts.signal);
    }
    if (res.status === 401 || res.status === 403) {
      throw new DeaddropError('BACKEND_ERROR', `RPC at ${this.endpoint} rejected the credentials (HTTP ${res.status})`);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Core answers 503 with an empty body while shutting down; treat like a dropped link.
      if (res.status >= 500) throw DeaddropError.unreachable(`RPC at ${this.endpoint}`, `HTTP ${res.status}`);
      throw DeaddropError.protocol(`RPC at ${this.endpoint} answered HTTP ${res.status} without JSON`);
    }
  }

  #transportError(err: unknown, timeoutMs: number, callSignal: AbortSignal | undefined): unknown {
    // A caller's own abort is re-thrown as is: it is not a backend failure.
    if (callSignal?.aborted) return callSignal.reason;
    if (this.#signal?.aborted) return this.#signal.reason;
    if (err instanceof DeaddropError) return err; // e.g. an unreadable cookie file
    const name = err instanceof Error ? err.name : '';
    if (name === 'TimeoutError' || name === 'AbortError') {
      return DeaddropError.unreachable(`RPC at ${this.endpoint}`, `timed out after ${timeoutMs} ms`);
    }
    return DeaddropError.unreachable(`RPC at ${this.endpoint}`, causeCode(err));
  }
}

function parseOne(body: unknown, id: number, method: string): unknown {
  if (!isObject(body)) throw DeaddropError.protocol(`RPC ${method}: answer is not an object`);
  const r = body as RawResponse;
  if (r.error !== undefined && r.error !== null) {
    const code = typeof r.error.code === 'number' ? r.error.code : RPC_CODES.MISC;
    const message = typeof r.error.message === 'string' ? r.error.message : 'unknown RPC error';
    throw new RpcError(code, message, method);
  }
  if (r.id !== id) throw DeaddropError.protocol(`RPC ${method}: answer id does not match`);
  if (!('result' in r)) throw DeaddropError.protocol(`RPC ${method}: answer has no result`);
  return r.result;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Connection-level failures worth retrying for reads (plus Core's warm-up). */
function isTransient(err: unknown): boolean {
  if (err instanceof DeaddropError) return err.code === 'BACKEND_UNREACHABLE';
  return err instanceof RpcError && err.code === RPC_CODES.WARMUP;
}

/** A short, secret-free description of a fetch failure: the errno code when there is one. */
function causeCode(err: unknown): string {
  let cur: unknown = err;
  for (let depth = 0; depth < 4 && cur instanceof Error; depth++) {
    const code = (cur as Error & { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return code;
    cur = (cur as Error & { cause?: unknown }).cause;
  }
  return 'connection failed';
}
