/**
 * Distribution, buyer side: fetches a sale's material from the seller's API over HTTP and checks
 * every byte against the signed manifest before anything else sees it. A sale whose offer names a
 * storage capability is read from the storage layer first (bundle.ts, buyer.ts `fetchChunks`);
 * this client is the fallback, and the only way to private-mode terms.
 *
 * Routes (served by src/paypub/routes.ts, public: no API token):
 *   GET  <url>/paypub/content/<id>/manifest      the signed manifest (binary)
 *   GET  <url>/paypub/content/<id>/chunks/<i>    ciphertext i (binary)
 *   GET  <url>/paypub/content/<id>/reveal        the signed sample reveal (binary; 404 before the beacon)
 *   GET  <url>/paypub/content/<id>/anchor        {txid, vout, blockHash}
 *   GET  <url>/paypub/content/<id>/pledges       announced pledges and the sum counted so far
 *   POST <url>/paypub/content/<id>/pledges       announce a pledge {tx, vout, buyerKey, r?, blockHash?}
 *   POST <url>/paypub/content/<id>/private       private-mode terms for a buyer key {buyerKey} -> {offer, wrap}
 *
 * Nothing a seller serves is trusted: the manifest must be byte-identical to the one in the
 * offer string, each chunk must hash to its committed ciphertext hash and have its exact length,
 * and the reveal and anchor are checked by the caller against its own chain view.
 */
import { DeaddropError } from '../util/errors.js';
import { checkCiphertext } from './content.js';
import type { Manifest } from './manifest.js';
import { decodeOffer, type Offer } from './private.js';
import { decodeReveal, type SampleReveal } from './sample.js';
import { equalBytes, fromHex, toHex } from '../util/bytes.js';

/** Largest body accepted for one response (a chunk of a 256 MB file in 256 chunks, plus slack). */
const MAX_BODY = 2 * 1024 * 1024;
const TIMEOUT_MS = 30_000;
const CONCURRENCY = 4;

export interface SellerClientOptions {
  /** Injected transport (tests); default global fetch. */
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
}

/** A client for one seller's content routes. */
export class SellerClient {
  readonly #base: string;
  readonly #fetch: typeof fetch;
  readonly #timeout: number;

  /** `url`: the seller's base URL (normalized, see link.ts); `id`: the sale id (manifest hash hex). */
  constructor(url: string, readonly id: string, opts: SellerClientOptions = {}) {
    this.#base = `${url}/paypub/content/${id}`;
    this.#fetch = opts.fetch ?? fetch;
    this.#timeout = opts.timeoutMs ?? TIMEOUT_MS;
  }

  async #request(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await this.#fetch(this.#base + path, { ...init, signal: AbortSignal.timeout(this.#timeout), redirect: 'error' });
    } catch (err) {
      throw DeaddropError.unreachable('the seller', err instanceof Error ? err.message : String(err));
    }
  }

  async #bytes(path: string, notFoundOk = false): Promise<Uint8Array | null> {
    const res = await this.#request(path);
    if (res.status === 404 && notFoundOk) return null;
    if (res.status !== 200) throw DeaddropError.protocol(`seller answered ${res.status} for ${path}`);
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_BODY) throw DeaddropError.protocol(`seller response for ${path} is too large`);
    const body = new Uint8Array(await res.arrayBuffer());
    if (body.length > MAX_BODY) throw DeaddropError.protocol(`seller response for ${path} is too large`);
    return body;
  }

  async #json(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await this.#request(path, init);
    const text = await res.text();
    if (text.length > MAX_BODY) throw DeaddropError.protocol(`seller response for ${path} is too large`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw DeaddropError.protocol(`seller answered ${path} with something that is not JSON`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw DeaddropError.protocol(`seller answered ${path} with a non-object`);
    return { status: res.status, body: body as Record<string, unknown> };
  }

  /** The served manifest; PROTOCOL unless it is byte-identical to `expected`. */
  async manifest(expected: Uint8Array): Promise<void> {
    const got = await this.#bytes('/manifest');
    if (!got || !equalBytes(got, expected)) throw DeaddropError.protocol('the seller serves another manifest than the one in the offer');
  }

  /** Every ciphertext, each checked against the manifest (hash and exact length). */
  async chunks(m: Manifest): Promise<Uint8Array[]> {
    const out = new Array<Uint8Array>(m.chunkCount);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < m.chunkCount) {
        const i = next++;
        const c = await this.#bytes(`/chunks/${i}`);
        if (!c || !checkCiphertext(m, i, c)) throw DeaddropError.protocol(`chunk ${i} served by the seller does not match the manifest`);
        out[i] = c;
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, m.chunkCount) }, worker));
    return out;
  }

  /** The seller's sample reveal, or null before it is published. Layout only: the caller verifies it. */
  async reveal(): Promise<SampleReveal | null> {
    const b = await this.#bytes('/reveal', true);
    return b ? decodeReveal(b) : null;
  }

  /** Where the seller says the anchor is. A hint: the caller checks it on its own chain. */
  async anchor(): Promise<{ txid: string; vout: number; blockHash: string | null }> {
    const { status, body } = await this.#json('/anchor');
    if (status !== 200) throw DeaddropError.protocol(`seller answered ${status} for /anchor`);
    const { txid, vout, blockHash } = body;
    if (typeof txid !== 'string' || !/^[0-9a-f]{64}$/.test(txid) || !Number.isSafeInteger(vout)) throw DeaddropError.protocol('seller sent a malformed anchor location');
    if (blockHash !== null && (typeof blockHash !== 'string' || !/^[0-9a-f]{64}$/.test(blockHash))) throw DeaddropError.protocol('seller sent a malformed anchor block hash');
    return { txid, vout: vout as number, blockHash: blockHash as string | null };
  }

  /** Announces a pledge (or a funded HTLC) so the seller can count it. Returns the seller's verdict. */
  async announce(a: { tx: Uint8Array; vout: number; buyerKey?: Uint8Array; r?: Uint8Array; blockHash?: string }): Promise<{ accepted: boolean; reason: string }> {
    const payload: Record<string, unknown> = { tx: toHex(a.tx), vout: a.vout };
    if (a.buyerKey) payload.buyerKey = toHex(a.buyerKey);
    if (a.r) payload.r = toHex(a.r);
    if (a.blockHash) payload.blockHash = a.blockHash;
    const { status, body } = await this.#json('/pledges', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    if (status === 200) return { accepted: true, reason: 'accepted' };
    return { accepted: false, reason: typeof body.message === 'string' ? body.message.slice(0, 200) : `status ${status}` };
  }

  /** Private-mode terms (signed offer and wrap) for `buyerKey`. Layout only: the caller verifies them. */
  async privateTerms(buyerKey: Uint8Array): Promise<{ offer: Offer; wrap: Uint8Array }> {
    const { status, body } = await this.#json('/private', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ buyerKey: toHex(buyerKey) }),
    });
    if (status !== 200) throw DeaddropError.protocol(`seller refused private terms: ${typeof body.message === 'string' ? body.message.slice(0, 200) : status}`);
    const { offer, wrap } = body;
    if (typeof offer !== 'string' || typeof wrap !== 'string' || !/^([0-9a-f]{2})+$/.test(offer) || !/^([0-9a-f]{2})+$/.test(wrap)) {
      throw DeaddropError.protocol('seller sent malformed private terms');
    }
    return { offer: decodeOffer(fromHex(offer)), wrap: fromHex(wrap) };
  }
}
