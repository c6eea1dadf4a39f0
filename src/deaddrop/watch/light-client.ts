/**
 * Light client of the public candidate index (`deaddrop watch --index <url>`): downloads whole
 * height ranges of candidates with their tweak data and trial-decrypts them locally, one ECDH
 * per candidate and identity. It never asks about a single transaction, so the index server
 * learns only which heights were fetched, which every client fetches alike.
 *
 * Trust: the index is trusted for completeness (it could withhold a candidate), not for
 * content. A fabricated candidate can only decrypt if someone sealed it to our address, which
 * anyone may do on chain anyway. Every response is validated field by field; a malformed one is
 * a PROTOCOL error, never a crash. The light client does not follow reorgs of the index: a drop
 * seen again in another block is confirmed again (see DropStore.connectBlock).
 */
import { DeaddropError } from '../../util/errors.js';
import { checkIdentities, trialDecrypt, type WatchIdentity } from './candidates.js';
import type { DropStore, FoundDrop, OutboxEvent } from './drop-store.js';
import { MAX_INDEX_RANGE, type CandidateJson, type CandidateRange } from './index-service.js';
import { fromHex } from '../../util/bytes.js';

/** A drop found through the index. */
export interface LightDrop extends FoundDrop {
  readonly height: number;
  readonly blockHash: string;
}

export interface LightClientOptions {
  /** Base URL of the index server (the API root that serves `/index/candidates`). */
  readonly url: string;
  readonly identities: readonly WatchIdentity[];
  /** Bearer token, when the index sits behind the local API's auth. */
  readonly token?: string;
  /** Blocks per request (at most the server's limit). Default MAX_INDEX_RANGE. */
  readonly rangeSize?: number;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly signal?: AbortSignal;
}

/** Index bounds and limit as served by `/index/info`. */
export interface IndexInfo {
  readonly indexedFrom: number | null;
  readonly indexedTip: number | null;
  readonly maxRange: number;
}

/** Result of a scan: drops found and the last height covered. */
export interface LightScanResult {
  readonly found: LightDrop[];
  /** Last height the index covered in this scan (from - 1 when it covered nothing). */
  readonly scannedTo: number;
  readonly candidates: number;
}

const HEX64 = /^[0-9a-f]{64}$/;
const isHeight = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= -1;
const isNullableHeight = (v: unknown): v is number | null => v === null || isHeight(v);

function validateCandidate(v: unknown, from: number, to: number): CandidateJson {
  const c = v as Record<string, unknown> | null;
  const ok =
    c !== null && typeof c === 'object' && Number.isSafeInteger(c.height) && (c.height as number) >= from && (c.height as number) <= to &&
    typeof c.blockHash === 'string' && HEX64.test(c.blockHash) && typeof c.txid === 'string' && HEX64.test(c.txid) &&
    Number.isSafeInteger(c.vout) && (c.vout as number) >= 0 && typeof c.tweak === 'string' && /^[0-9a-f]{66}$/.test(c.tweak) &&
    typeof c.data === 'string' && /^(?:[0-9a-f]{2}){0,80}$/.test(c.data);
  if (!ok) throw DeaddropError.protocol('index served a malformed candidate');
  return c as unknown as CandidateJson;
}

/** Checks a `/index/candidates` response (scure-style `validateX`). PROTOCOL error otherwise. */
export function validateCandidateRange(v: unknown, askedFrom: number, askedTo: number): CandidateRange {
  const r = v as Record<string, unknown> | null;
  if (r === null || typeof r !== 'object' || !isHeight(r.from) || !isHeight(r.to) || !Array.isArray(r.candidates) ||
    !isNullableHeight(r.indexedFrom) || !isNullableHeight(r.indexedTip)) {
    throw DeaddropError.protocol('index served a malformed range response');
  }
  const empty = r.to < r.from;
  if (!empty && (r.from < askedFrom || r.to > askedTo)) throw DeaddropError.protocol('index served a range other than the one asked for');
  const candidates = r.candidates.map((c) => validateCandidate(c, r.from as number, r.to as number));
  if (empty && candidates.length > 0) throw DeaddropError.protocol('index served candidates outside its range');
  return { from: r.from, to: r.to, indexedFrom: r.indexedFrom, indexedTip: r.indexedTip, candidates };
}

/**
 * Downloads candidate ranges from an index and finds the drops of the local identities.
 * @example
 * const lc = new LightClient({ url: 'http://127.0.0.1:8335', identities: [me] });
 * const { found } = await lc.scan(birthday);
 */
export class LightClient {
  readonly #opts: LightClientOptions;
  readonly #base: URL;
  readonly #range: number;

  constructor(opts: LightClientOptions) {
    checkIdentities(opts.identities);
    let base: URL;
    try {
      base = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
    } catch {
      throw DeaddropError.badInput('index url is not a valid URL');
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw DeaddropError.badInput('index url must be http(s)');
    const range = opts.rangeSize ?? MAX_INDEX_RANGE;
    if (!Number.isSafeInteger(range) || range < 1 || range > MAX_INDEX_RANGE) throw new RangeError(`rangeSize must be 1..${MAX_INDEX_RANGE}`);
    this.#opts = opts;
    this.#base = base;
    this.#range = range;
  }

  /** The index's bounds. */
  async info(): Promise<IndexInfo> {
    const v = (await this.#get('index/info')) as Record<string, unknown> | null;
    if (v === null || typeof v !== 'object' || !isNullableHeight(v.indexedFrom) || !isNullableHeight(v.indexedTip) || !Number.isSafeInteger(v.maxRange)) {
      throw DeaddropError.protocol('index served malformed info');
    }
    return { indexedFrom: v.indexedFrom, indexedTip: v.indexedTip, maxRange: v.maxRange as number };
  }

  /** One range request, validated. */
  async fetchRange(from: number, to: number): Promise<CandidateRange> {
    return validateCandidateRange(await this.#get(`index/candidates?from=${from}&to=${to}`), from, to);
  }

  /**
   * Scans heights `from`..`to` (default: the index's tip) in whole ranges and trial-decrypts
   * every candidate. Stops early where the index stops covering. `onProgress(height, tip)`
   * after each range.
   */
  async scan(from: number, to?: number, onProgress?: (height: number, tip: number) => void): Promise<LightScanResult> {
    if (!Number.isSafeInteger(from) || from < 0) throw new RangeError('from must be a non-negative integer');
    const end = to ?? (await this.info()).indexedTip ?? from - 1;
    const found: LightDrop[] = [];
    let next = from;
    let candidates = 0;
    while (next <= end) {
      const r = await this.fetchRange(next, Math.min(end, next + this.#range - 1));
      if (r.to < r.from || r.from !== next) break; // the index does not cover `next`
      candidates += r.candidates.length;
      found.push(...this.#decrypt(r.candidates));
      next = r.to + 1;
      onProgress?.(r.to, Math.min(end, r.indexedTip ?? r.to));
    }
    return { found, scannedTo: next - 1, candidates };
  }

  #decrypt(rows: readonly CandidateJson[]): LightDrop[] {
    const out: LightDrop[] = [];
    const byTx = new Map<string, CandidateJson[]>();
    for (const c of rows) byTx.set(`${c.height}:${c.txid}`, [...(byTx.get(`${c.height}:${c.txid}`) ?? []), c]);
    for (const group of byTx.values()) {
      const first = group[0]!;
      const outputs = group.map((c) => ({ vout: c.vout, data: fromHex(c.data) }));
      for (const f of trialDecrypt(first.txid, fromHex(first.tweak), outputs, this.#opts.identities)) {
        out.push({ ...f, height: first.height, blockHash: first.blockHash });
      }
    }
    return out;
  }

  /**
   * Scans from the store's cursor for this index (or `birthday`) to the index tip, recording
   * drops in `store` (drop.confirmed outbox events, idempotent per block) and the cursor in the
   * same transaction per range. Returns the events written.
   */
  async sync(store: DropStore, birthday: number, onProgress?: (height: number, tip: number) => void): Promise<OutboxEvent[]> {
    const key = `light_cursor:${this.#base.href}`;
    const saved = store.getMeta(key);
    const from = saved === undefined ? birthday : Number(saved) + 1;
    const info = await this.info();
    const tip = info.indexedTip ?? from - 1;
    const events: OutboxEvent[] = [];
    for (let next = from; next <= tip;) {
      const { found, scannedTo } = await this.scan(next, Math.min(tip, next + this.#range - 1), onProgress);
      if (scannedTo < next) break;
      store.transaction(() => {
        for (const d of found) events.push(...store.connectBlock({ height: d.height, hash: d.blockHash }, [], [d], tip));
        store.setMeta(key, String(scannedTo));
      });
      next = scannedTo + 1;
    }
    return events;
  }

  async #get(path: string): Promise<unknown> {
    const f = this.#opts.fetch ?? fetch;
    const signals = [AbortSignal.timeout(this.#opts.timeoutMs ?? 30_000)];
    if (this.#opts.signal) signals.push(this.#opts.signal);
    const url = new URL(path, this.#base);
    let res: Response;
    try {
      res = await f(url, { headers: this.#opts.token ? { authorization: `Bearer ${this.#opts.token}` } : {}, signal: AbortSignal.any(signals) });
    } catch (err) {
      throw DeaddropError.unreachable(`index ${this.#base.host}`, (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message);
    }
    if (!res.ok) throw new DeaddropError('BACKEND_ERROR', `index ${this.#base.host} answered HTTP ${res.status} for ${url.pathname}`);
    try {
      return await res.json();
    } catch {
      throw DeaddropError.protocol(`index ${this.#base.host} served invalid JSON`);
    }
  }
}

