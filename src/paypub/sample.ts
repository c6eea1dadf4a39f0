/**
 * The provably fair sample. After the beacon block is final, anyone computes
 *   seed = taggedHash("deaddrop/paypub/sample/v1", manifest hash || beacon block hash)
 * and draws `sampleSize` distinct indices out of `chunkCount` with a partial Fisher-Yates
 * shuffle fed by SHA-256 in counter mode, each draw made unbiased by rejection sampling.
 * The 2014 scheme drew with replacement and anchored nothing before its beacon; here the
 * manifest hash is anchored at least `anchorMargin` blocks before the beacon (manifest.ts).
 *
 * The seller then publishes the sampled keys, signed; buyers check them against the
 * commitments and decrypt those chunks before pledging (`verifyReveal`).
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { blockHashToBytes, Reader, sha256, taggedHash, u32be, Writer } from './bytes.js';
import { checkKey, openChunk } from './content.js';
import type { Manifest } from './manifest.js';
import { KEY_BYTES, PAYPUB_VERSION, TAG, TIMING } from './params.js';
import { equalBytes, toHex } from '../util/bytes.js';

/** Seed of the sample. `beaconHash` is the block hash in display (RPC) order. */
export function sampleSeed(hash: Uint8Array, beaconHash: string): Uint8Array {
  if (hash.length !== 32) throw new TypeError('manifest hash must be 32 bytes');
  return taggedHash(TAG.sample, hash, blockHashToBytes(beaconHash));
}

/** Deterministic stream of 32-bit words: SHA256(seed || u32be(counter)), counter = 0, 1, ... */
export class HashStream {
  #counter = 0;
  #block: Uint8Array = new Uint8Array(0);
  #pos = 0;

  readonly #seed: Uint8Array;

  constructor(seed: Uint8Array) {
    this.#seed = seed;
  }

  nextU32(): number {
    if (this.#pos + 4 > this.#block.length) {
      this.#block = sha256(new Writer().bytes(this.#seed).bytes(u32be(this.#counter++)).finish());
      this.#pos = 0;
    }
    const v = new DataView(this.#block.buffer, this.#block.byteOffset + this.#pos, 4).getUint32(0, false);
    this.#pos += 4;
    return v;
  }

  /** Uniform integer in [0, bound): words at or above the largest multiple of `bound` are rejected. */
  below(bound: number): number {
    if (!Number.isSafeInteger(bound) || bound < 1 || bound > 2 ** 32) throw new RangeError(`bound out of range: ${bound}`);
    const limit = Math.floor(2 ** 32 / bound) * bound;
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % bound;
    }
  }
}

/** `count` distinct indices of 0..n-1 in draw order (partial Fisher-Yates). */
export function drawSample(seed: Uint8Array, n: number, count: number): number[] {
  if (!Number.isSafeInteger(count) || count < 0 || count > n) throw new RangeError(`cannot draw ${count} of ${n}`);
  const a = Array.from({ length: n }, (_, i) => i);
  const stream = new HashStream(seed);
  for (let i = 0; i < count; i++) {
    const j = i + stream.below(n - i);
    [a[i], a[j]] = [a[j] as number, a[i] as number];
  }
  return a.slice(0, count);
}

/** The sampled chunk indices of a manifest, ascending. */
export function sampleIndices(m: Pick<Manifest, 'hash' | 'chunkCount' | 'sampleSize'>, beaconHash: string): number[] {
  return drawSample(sampleSeed(m.hash, beaconHash), m.chunkCount, m.sampleSize).sort((x, y) => x - y);
}

/** Indices not in `sampled`, ascending: the keys the claim leaf hash-locks. */
export function unsampledIndices(chunkCount: number, sampled: readonly number[]): number[] {
  const s = new Set(sampled);
  return Array.from({ length: chunkCount }, (_, i) => i).filter((i) => !s.has(i));
}

export type SampleStatus = 'before-beacon' | 'maturing' | 'final';

/**
 * Whether the beacon block can be used yet. `final` once it has `beaconConfirmations`
 * (the beacon counts as one). A reorg that replaces the beacon before then only means
 * "not final": the caller fetches the new hash at the beacon height and draws again.
 */
export function sampleStatus(beaconHeight: number, tipHeight: number, network: Network): SampleStatus {
  if (tipHeight < beaconHeight) return 'before-beacon';
  return tipHeight - beaconHeight + 1 >= TIMING[network].beaconConfirmations ? 'final' : 'maturing';
}

/** The seller's signed disclosure of the sampled keys. */
export interface SampleReveal {
  readonly manifestHash: Uint8Array;
  /** Beacon block hash, display order. */
  readonly beaconHash: string;
  /** Ascending. */
  readonly indices: readonly number[];
  readonly keys: readonly Uint8Array[];
  readonly signature: Uint8Array;
}

function revealBody(r: Omit<SampleReveal, 'signature'>): Uint8Array {
  const w = new Writer().u8(PAYPUB_VERSION).bytes(r.manifestHash, 32).bytes(blockHashToBytes(r.beaconHash)).u16(r.indices.length);
  r.indices.forEach((idx, i) => w.u16(idx).bytes(r.keys[i] as Uint8Array, KEY_BYTES));
  return w.finish();
}

/** Seller: reveals the sampled keys of `keys` (all chunk keys, by index) and signs them. */
export function createReveal(m: Manifest, beaconHash: string, keys: readonly Uint8Array[], sellerSecretKey: Uint8Array): SampleReveal {
  const indices = sampleIndices(m, beaconHash);
  const body = { manifestHash: m.hash, beaconHash: beaconHash.toLowerCase(), indices, keys: indices.map((i) => keys[i] as Uint8Array) };
  body.keys.forEach((k, j) => {
    if (!checkKey(m, indices[j] as number, k)) throw new TypeError(`key ${indices[j]} does not match its commitment`);
  });
  return { ...body, signature: schnorr.sign(taggedHash(TAG.reveal, revealBody(body)), sellerSecretKey) };
}

/** version || manifest hash || beacon hash (internal order) || u16 count || (u16 index || key)* || sig. */
export function encodeReveal(r: SampleReveal): Uint8Array {
  return new Writer().bytes(revealBody(r)).bytes(r.signature, 64).finish();
}

/** Decodes a reveal from untrusted bytes (layout only; `verifyReveal` checks the rest). Throws PROTOCOL. */
export function decodeReveal(bytes: Uint8Array): SampleReveal {
  const r = new Reader(bytes, 'sample reveal');
  if (r.u8() !== PAYPUB_VERSION) throw DeaddropError.protocol('sample reveal: unsupported version');
  const manifestHash = r.bytes(32);
  const beaconHash = toHex(r.bytes(32).reverse());
  const count = r.u16();
  const indices: number[] = [];
  const keys: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    indices.push(r.u16());
    keys.push(r.bytes(KEY_BYTES));
  }
  const signature = r.bytes(64);
  r.end();
  return { manifestHash, beaconHash, indices, keys, signature };
}

export type RevealFailure =
  | 'wrong-manifest' | 'wrong-beacon' | 'wrong-indices' | 'missing-key' | 'key-mismatch'
  | 'bad-signature' | 'missing-chunk' | 'chunk-failed';
export type RevealCheck =
  | { readonly ok: true; readonly plaintexts: ReadonlyMap<number, Uint8Array> }
  | { readonly ok: false; readonly reason: RevealFailure; readonly index?: number };

/**
 * Buyer: checks a reveal against the manifest and the beacon the buyer fetched itself:
 * the indices are the ones drawn, every key matches its commitment, the seller signed it,
 * and every sampled chunk (from `ciphertexts`, by index) decrypts. Never throws on bad data.
 */
export function verifyReveal(m: Manifest, beaconHash: string, r: SampleReveal, ciphertexts: (index: number) => Uint8Array | undefined): RevealCheck {
  if (!equalBytes(r.manifestHash, m.hash)) return { ok: false, reason: 'wrong-manifest' };
  if (r.beaconHash.toLowerCase() !== beaconHash.toLowerCase()) return { ok: false, reason: 'wrong-beacon' };
  const want = sampleIndices(m, beaconHash);
  if (r.keys.length < want.length) return { ok: false, reason: 'missing-key' };
  if (r.indices.length !== want.length || r.indices.some((x, i) => x !== want[i])) return { ok: false, reason: 'wrong-indices' };
  for (let i = 0; i < want.length; i++) {
    if (!checkKey(m, want[i] as number, r.keys[i] as Uint8Array)) return { ok: false, reason: 'key-mismatch', index: want[i] as number };
  }
  let sigOk = false;
  try {
    sigOk = schnorr.verify(r.signature, taggedHash(TAG.reveal, revealBody(r)), m.sellerKey);
  } catch {
    sigOk = false;
  }
  if (!sigOk) return { ok: false, reason: 'bad-signature' };
  const plaintexts = new Map<number, Uint8Array>();
  for (let i = 0; i < want.length; i++) {
    const idx = want[i] as number;
    const ct = ciphertexts(idx);
    if (!ct) return { ok: false, reason: 'missing-chunk', index: idx };
    const res = openChunk(m, idx, ct, r.keys[i] as Uint8Array);
    if (!res.ok) return { ok: false, reason: 'chunk-failed', index: idx };
    plaintexts.set(idx, res.plaintext);
  }
  return { ok: true, plaintexts };
}

/**
 * Probability that a sample of `s` of `n` chunks (drawn without replacement) misses all
 * `bad` bad chunks: C(n - bad, s) / C(n, s) (hypergeometric, zero successes).
 * sampleOdds(32, 8, 1) = 0.75.
 */
export function sampleOdds(n: number, s: number, bad: number): number {
  for (const [name, v] of [['n', n], ['s', s], ['bad', bad]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer; got ${v}`);
  }
  if (s > n || bad > n) throw new RangeError(`need s <= n and bad <= n; got n=${n} s=${s} bad=${bad}`);
  if (bad + s > n) return 0;
  let p = 1;
  for (let i = 0; i < s; i++) p *= (n - bad - i) / (n - i);
  return p;
}

/** What a sample proves and what it does not, with the odds, for the UI and CLI. */
export function describeSample(n: number, s: number): string {
  const pct = (x: number): string => `${(100 * x).toFixed(x < 0.01 && x > 0 ? 2 : 0)}%`;
  const cases = [1, Math.max(2, Math.round(n / 8)), Math.max(3, Math.round(n / 4))].filter((b, i, a) => b <= n - s && a.indexOf(b) === i);
  const odds = cases.map((b) => `${b} bad chunk${b > 1 ? 's' : ''} escape${b > 1 ? '' : 's'} the sample ${pct(sampleOdds(n, s, b))} of the time`);
  return [
    `The sample opened ${s} of ${n} chunks, chosen by a block mined after the seller committed to the content.`,
    'It proves: those chunks decrypt with the committed keys, and the seller could not pick which chunks were shown.',
    `It does not prove the other ${n - s} chunks are real or useful: ${odds.join('; ')}.`,
    'A seller who committed to many manifests before the beacon could show the luckiest one: trust grows with the sample size, not with the promise.',
    'What is enforced: the seller is paid only by publishing keys that match every commitment, and buyers are refunded if the seller never claims.',
  ].join('\n');
}
