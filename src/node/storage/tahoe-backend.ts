/**
 * A StorageBackend on an existing Tahoe-LAFS grid, through a Tahoe client's web API
 * (docs/protocol/storage.md, "Tahoe-LAFS backend"): immutable files go up with `PUT /uri`, come
 * back with `GET /uri/<cap>`, and are checked (and repaired) with
 * `POST /uri/<cap>?t=check&repair=true&output=JSON`.
 *
 * deaddrop encrypts before Tahoe sees anything: a random 32-byte key per file, ChaCha20-Poly1305
 * with a zero nonce (safe because a key seals exactly one file, as in immutable.ts). Tahoe then
 * encrypts that ciphertext again with its own key, which is in the Tahoe cap; the grid and its
 * client node learn the ciphertext's size and when it is read, as a contact storing shares
 * would, never the content. The deaddrop key stays in the read cap and in this process: it is
 * never sent to the Tahoe client, logged or put in an error.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { DeaddropError } from '../../util/errors.js';
import type { StorageBackend, StorageCheckResult, StorageOpOptions, StoragePutResult, StoreProgress } from './backend.js';
import { formatTahoeReadCap, parseTahoeReadCap, TAHOE_KEY_BYTES, tahoeCheckTarget } from './tahoe-cap.js';

/** Binds the ciphertext to this format (ChaCha20-Poly1305 associated data). */
const AAD = new TextEncoder().encode('deaddrop:tahoe:v1');
const NONCE = new Uint8Array(12);
const TAG_BYTES = 16;
const DEFAULT_TIMEOUT_MS = 300_000;

export interface TahoeBackendOptions {
  /** The Tahoe client's web API: `http(s)://host:port[/prefix]`, or a bare loopback `host:port`. */
  readonly url: string;
  /** Injected for tests; defaults to the global fetch. */
  readonly fetch?: typeof fetch;
  /** Per request; default 5 minutes (an upload of a large file to a slow grid takes a while). */
  readonly timeoutMs?: number;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Validates the web API's URL: an explicit http(s) URL without credentials, query or fragment,
 * or a bare `host:port` on loopback (taken as http). Returns it without a trailing slash.
 */
export function parseTahoeUrl(url: string): string {
  const bad = (why: string): DeaddropError => DeaddropError.badInput(`Tahoe web API URL: ${why}`, { reason: 'bad-url' });
  if (typeof url !== 'string' || url.trim() === '') throw bad('empty');
  let text = url.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const host = text.replace(/:\d+(\/.*)?$/, '');
    if (!LOOPBACK.test(host)) throw bad('give an explicit http:// or https:// URL (a bare host:port must be on loopback)');
    text = `http://${text}`;
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw bad('not a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(`unsupported scheme ${u.protocol} (http or https)`);
  if (u.username || u.password) throw bad('credentials in the URL are not supported');
  if (u.search || u.hash) throw bad('no query or fragment allowed');
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** Hides Tahoe caps that Tahoe's error pages may quote (they name the ciphertext on the grid). */
function redact(text: string): string {
  return text.replace(/URI:[A-Za-z0-9:_-]+/g, 'URI:…');
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', '#39': "'", '#x27': "'" };

/**
 * The gist of a Tahoe error page, short and without caps: the exception line of its HTML
 * traceback page (`<div class="error">`), else the page's first text.
 */
export function tahoeReason(body: string): string {
  const errorDiv = /<div class="error">([\s\S]*?)<\/div>/.exec(body)?.[1];
  const text = (errorDiv ?? body.replace(/<(style|script)\b[\s\S]*?<\/\1>/gi, ''))
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(lt|gt|amp|quot|#39|#x27);/g, (_, e: string) => ENTITIES[e] ?? '')
    .replace(/\s+/g, ' ')
    .trim();
  const short = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  return redact(short);
}

/** Maps a failed web API response to a coded error; `details.reason` is stable for callers. */
function responseError(op: string, status: number, body: string): DeaddropError {
  const reason = tahoeReason(body);
  if (/UploadUnhappinessError|NoServersError|NotEnoughSharesError|shares could only be placed|servers of happiness/i.test(body)) {
    return new DeaddropError('BACKEND_ERROR', `Tahoe ${op}: too few storage servers (${reason})`, { reason: 'too-few-servers', status });
  }
  // An upload cannot miss a file: a 404 there means the URL is not a Tahoe web API.
  if (op !== 'upload' && (/NoSharesError|no shares/i.test(body) || status === 410 || status === 404)) {
    // The usual cause for a file someone else put (a PayPub offer): this client joined another grid.
    return new DeaddropError('NOT_FOUND', `Tahoe ${op}: the grid holds no shares of this file; a file put on another grid is found only through a Tahoe client that joined that grid (${reason})`, { reason: 'not-found', status });
  }
  if (status === 400) return new DeaddropError('BAD_INPUT', `Tahoe ${op}: the Tahoe client refused the request (${reason})`, { reason: 'refused', status });
  return new DeaddropError('BACKEND_ERROR', `Tahoe ${op}: HTTP ${status} (${reason})`, { reason: 'tahoe-error', status });
}

/** The JSON of `t=check&output=JSON` (results) that this backend reads. */
interface TahoeCheckResults {
  readonly healthy?: boolean;
  readonly 'count-shares-good'?: number;
  readonly 'count-shares-needed'?: number;
  readonly 'count-shares-expected'?: number;
  readonly 'count-corrupt-shares'?: number;
  readonly 'count-happiness'?: number;
  readonly summary?: string;
}

function validateCheckResults(value: unknown, name: string): TahoeCheckResults {
  if (typeof value !== 'object' || value === null) throw DeaddropError.protocol(`Tahoe check: ${name} is not an object`);
  const r = value as Record<string, unknown>;
  for (const k of ['count-shares-good', 'count-shares-needed', 'count-shares-expected']) {
    if (!Number.isSafeInteger(r[k])) throw DeaddropError.protocol(`Tahoe check: ${name}.${k} is not an integer`);
  }
  if (typeof r['healthy'] !== 'boolean') throw DeaddropError.protocol(`Tahoe check: ${name}.healthy is not a boolean`);
  return r as TahoeCheckResults;
}

/** Turns Tahoe's check (or check-and-repair) JSON into a StorageCheckResult. */
export function parseCheckJson(json: unknown, repair: boolean): StorageCheckResult {
  if (typeof json !== 'object' || json === null) throw DeaddropError.protocol('Tahoe check: the answer is not a JSON object');
  const o = json as Record<string, unknown>;
  if (!repair) {
    const r = validateCheckResults(o['results'], 'results');
    return toResult(r, 0, []);
  }
  const pre = validateCheckResults((o['pre-repair-results'] as Record<string, unknown> | undefined)?.['results'], 'pre-repair-results');
  const attempted = o['repair-attempted'] === true;
  if (!attempted) return toResult(pre, 0, []);
  const post = validateCheckResults((o['post-repair-results'] as Record<string, unknown> | undefined)?.['results'], 'post-repair-results');
  const problems = o['repair-successful'] === true ? [] : ['repair was attempted but did not succeed'];
  const repaired = Math.max(0, (post['count-shares-good'] ?? 0) - (pre['count-shares-good'] ?? 0));
  const before = pre.summary ? [`before repair: ${redact(pre.summary)}`] : [];
  return toResult(post, repaired, [...before, ...problems]);
}

function toResult(r: TahoeCheckResults, repaired: number, extra: readonly string[]): StorageCheckResult {
  const found = r['count-shares-good'] ?? 0;
  const expected = r['count-shares-expected'] ?? 0;
  const problems = [...extra];
  if (found < expected) problems.push(`${expected - found} of ${expected} shares missing`);
  if ((r['count-corrupt-shares'] ?? 0) > 0) problems.push(`${r['count-corrupt-shares']} corrupt shares`);
  return {
    healthy: r.healthy === true,
    sharesFound: found,
    sharesNeeded: r['count-shares-needed'] ?? 0,
    sharesTotal: expected,
    repaired,
    problems,
  };
}

export class TahoeBackend implements StorageBackend {
  readonly kind = 'tahoe' as const;
  readonly #base: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;

  constructor(options: TahoeBackendOptions) {
    this.#base = parseTahoeUrl(options.url);
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The web API's base URL (no secrets in it: credentials are refused). */
  get url(): string {
    return this.#base;
  }

  /** Encrypts, uploads, and returns `dd-tahoe:<Tahoe cap>:<key>`. */
  async put(plaintext: Uint8Array, options: StorageOpOptions = {}): Promise<StoragePutResult> {
    const progress = options.onProgress ?? ((): void => undefined);
    const total = plaintext.length;
    progress({ phase: 'encode', done: 0, total });
    const key = randomBytes(TAHOE_KEY_BYTES);
    const ciphertext = chacha20poly1305(key, NONCE, AAD).encrypt(plaintext);
    progress({ phase: 'encode', done: total, total });
    progress({ phase: 'upload', done: 0, total: ciphertext.length });
    const res = await this.#request('upload', '/uri', { method: 'PUT', body: ciphertext });
    const body = (await res.text()).trim();
    if (!res.ok) throw responseError('upload', res.status, body);
    let readCap: string;
    try {
      readCap = formatTahoeReadCap({ tahoeCap: body, key });
    } catch {
      throw DeaddropError.protocol('Tahoe upload: the Tahoe client did not answer with an immutable file cap');
    }
    progress({ phase: 'upload', done: ciphertext.length, total: ciphertext.length });
    return { readCap, size: total };
  }

  /** Downloads and decrypts; PROTOCOL (reason `authentication-failed`) if the bytes or key are wrong. */
  async get(readCap: string, options: StorageOpOptions = {}): Promise<Uint8Array> {
    const progress = options.onProgress ?? ((): void => undefined);
    const { tahoeCap, key } = parseTahoeReadCap(readCap);
    const res = await this.#request('download', `/uri/${encodeURIComponent(tahoeCap)}`, { method: 'GET' });
    if (!res.ok) throw responseError('download', res.status, await res.text());
    const ciphertext = await this.#readBody(res, progress);
    if (ciphertext.length < TAG_BYTES) throw authFailed();
    progress({ phase: 'verify', done: 0, total: ciphertext.length });
    let plaintext: Uint8Array;
    try {
      plaintext = chacha20poly1305(key, NONCE, AAD).decrypt(ciphertext);
    } catch {
      throw authFailed();
    }
    progress({ phase: 'verify', done: ciphertext.length, total: ciphertext.length });
    return plaintext;
  }

  /** Checks (and with `repair`, repairs) with a read or verify cap; only the Tahoe part is sent. */
  async check(cap: string, options: { readonly repair?: boolean } = {}): Promise<StorageCheckResult> {
    const { tahoeCap } = tahoeCheckTarget(cap);
    if (tahoeCap.startsWith('URI:LIT:')) {
      // Tahoe keeps a literal file inside its cap: there is nothing on the grid to lose.
      return { healthy: true, sharesFound: 0, sharesNeeded: 0, sharesTotal: 0, repaired: 0, problems: [] };
    }
    const repair = options.repair === true;
    const query = `t=check&output=JSON${repair ? '&repair=true' : ''}`;
    const res = await this.#request('check', `/uri/${encodeURIComponent(tahoeCap)}?${query}`, { method: 'POST' });
    const body = await res.text();
    if (!res.ok) throw responseError('check', res.status, body);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw DeaddropError.protocol('Tahoe check: the answer is not JSON');
    }
    return parseCheckJson(json, repair);
  }

  async #request(op: string, path: string, init: RequestInit): Promise<Response> {
    try {
      return await this.#fetch(`${this.#base}${path}`, { ...init, signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      if (e.name === 'TimeoutError') throw new DeaddropError('TIMEOUT', `Tahoe ${op}: no answer from ${this.#base} within ${this.#timeoutMs} ms`);
      throw DeaddropError.unreachable(`the Tahoe-LAFS client at ${this.#base}`, e.cause?.code ?? e.message);
    }
  }

  /** Reads a response body, reporting download progress against Content-Length. */
  async #readBody(res: Response, progress: (p: StoreProgress) => void): Promise<Uint8Array> {
    const declared = Number(res.headers.get('content-length') ?? NaN);
    const total = Number.isSafeInteger(declared) ? declared : 0;
    const reader = res.body?.getReader();
    if (!reader) return new Uint8Array(await res.arrayBuffer());
    const chunks: Uint8Array[] = [];
    let done = 0;
    progress({ phase: 'download', done, total });
    for (;;) {
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await reader.read();
      } catch (err) {
        throw DeaddropError.unreachable(`the Tahoe-LAFS client at ${this.#base}`, `download interrupted: ${(err as Error).message}`);
      }
      if (r.done) break;
      chunks.push(r.value);
      done += r.value.length;
      progress({ phase: 'download', done, total: Math.max(total, done) });
    }
    const out = new Uint8Array(done);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function authFailed(): DeaddropError {
  return new DeaddropError('PROTOCOL', 'Tahoe download: the file failed authentication (wrong key in the capability, or tampered ciphertext)', {
    reason: 'authentication-failed',
  });
}
