/**
 * Whereabouts: where a node can currently be reached, told only to its contacts.
 *
 * A bundle is BEP44-like (Ed25519-signed by the node, monotonic `seq`, `expiresAt`), but its value
 * is encrypted separately to each contact, so the contacts that store and re-serve it learn nothing
 * but the node id, the seq, the expiry and the number of recipients.
 *
 * Bundle (v1, big-endian):
 *   version:u8 = 1 | node(32) | seq:u64 | expiresAt:u64 (ms) | count:u16 (≤ 1024)
 *   | count × (tag(16) | len:u16 | sealed) | signature(64)
 * signature = Ed25519(node, "deaddrop/whereabouts/v1\0" || everything before the signature).
 *
 * Per recipient R: K = HKDF-SHA256(X25519(node, R), salt "deaddrop/whereabouts-key/v1",
 * info = the two Ed25519 keys in sorted order) — both sides derive the same K from their own secret.
 * tag = HMAC-SHA256(K, "tag" || seq)[0..16) (recipients find their envelope; tags of different seqs
 * are unlinkable). sealed = XChaCha20-Poly1305(K, random nonce, endpoints,
 * ad = node || seq || expiresAt || tag), endpoints encoded as in wire.ts.
 *
 * Rules for whoever stores bundles: keep the highest seq per node, drop expired ones; the same seq
 * with different bytes is equivocation (both signed bundles are the proof), and the first is kept.
 */
import { DeaddropError } from '../util/errors.js';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, aeadOpen, aeadSeal, ed25519Verify, hkdf, hmacSha256, utf8 } from './crypto.js';
import type { SqliteDatabase } from './db.js';
import type { NodeIdentity } from './identity.js';
import { Reader, encodeEndpoints, readEndpoints } from './wire.js';
import { concatBytes, equalBytes } from '../util/bytes.js';

export const WHEREABOUTS_VERSION = 1;
export const MAX_RECIPIENTS = 1024;
export const MAX_BUNDLE_BYTES = 64 * 1024;
const CONTEXT = utf8('deaddrop/whereabouts/v1\0');
const KEY_SALT = utf8('deaddrop/whereabouts-key/v1');

/** A decrypted whereabouts record. */
export interface WhereaboutsRecord {
  readonly node: Uint8Array;
  readonly seq: number;
  readonly expiresAt: number;
  readonly endpoints: string[];
}

/** A decoded (still encrypted) bundle. */
export interface WhereaboutsBundle {
  readonly node: Uint8Array;
  readonly seq: number;
  readonly expiresAt: number;
  readonly envelopes: readonly { tag: Uint8Array; sealed: Uint8Array }[];
  readonly signature: Uint8Array;
  readonly raw: Uint8Array;
}

function pairKey(identity: NodeIdentity, peer: Uint8Array): Uint8Array | null {
  const shared = identity.sharedSecret(peer);
  if (!shared) return null;
  const [a, b] = Buffer.compare(identity.publicKey, peer) <= 0 ? [identity.publicKey, peer] : [peer, identity.publicKey];
  return hkdf(shared, KEY_SALT, concatBytes(a, b), 32);
}

function seqBytes(seq: number): Uint8Array {
  const out = new Uint8Array(8);
  const v = new DataView(out.buffer);
  v.setUint32(0, Math.floor(seq / 2 ** 32));
  v.setUint32(4, seq >>> 0);
  return out;
}

function tagFor(key: Uint8Array, seq: number): Uint8Array {
  return hmacSha256(key, utf8('tag'), seqBytes(seq)).subarray(0, 16);
}

function adFor(node: Uint8Array, seq: number, expiresAt: number, tag: Uint8Array): Uint8Array {
  return concatBytes(node, seqBytes(seq), seqBytes(expiresAt), tag);
}

/** Builds and signs a bundle of `endpoints` for `recipients` (Ed25519 node keys). */
export function sealWhereabouts(
  identity: NodeIdentity,
  record: { seq: number; expiresAt: number; endpoints: readonly string[] },
  recipients: readonly Uint8Array[],
): Uint8Array {
  const { seq, expiresAt } = record;
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError('seq: expected a positive safe integer');
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) throw new RangeError('expiresAt: expected a safe integer');
  if (recipients.length > MAX_RECIPIENTS) throw new RangeError(`at most ${MAX_RECIPIENTS} recipients`);
  const plain = encodeEndpoints(record.endpoints);
  const parts: Uint8Array[] = [Uint8Array.of(WHEREABOUTS_VERSION), identity.publicKey, seqBytes(seq), seqBytes(expiresAt)];
  const envs: Uint8Array[] = [];
  for (const r of recipients) {
    const key = pairKey(identity, r);
    if (!key) continue;
    const tag = tagFor(key, seq);
    const sealed = aeadSeal(key, plain, adFor(identity.publicKey, seq, expiresAt, tag));
    envs.push(tag, Uint8Array.of(sealed.length >>> 8, sealed.length & 0xff), sealed);
  }
  const count = envs.length / 3;
  parts.push(Uint8Array.of(count >>> 8, count & 0xff), ...envs);
  const body = concatBytes(...parts);
  const out = concatBytes(body, identity.sign(concatBytes(CONTEXT, body)));
  if (out.length > MAX_BUNDLE_BYTES) throw new RangeError('bundle too large');
  return out;
}

/** Decodes a bundle (structure only). Throws DeaddropError PROTOCOL. */
export function decodeWhereabouts(raw: Uint8Array): WhereaboutsBundle {
  if (raw.length > MAX_BUNDLE_BYTES) throw DeaddropError.protocol('whereabouts: too large');
  const r = new Reader(raw, 'whereabouts');
  if (r.u8() !== WHEREABOUTS_VERSION) throw DeaddropError.protocol('whereabouts: unknown version');
  const node = r.bytes(PUBLIC_KEY_BYTES).slice();
  const seq = r.u64();
  const expiresAt = r.u64();
  const count = r.u16();
  if (count > MAX_RECIPIENTS || seq < 1) throw DeaddropError.protocol('malformed whereabouts');
  const envelopes: { tag: Uint8Array; sealed: Uint8Array }[] = [];
  for (let i = 0; i < count; i++) envelopes.push({ tag: r.bytes(16), sealed: r.bytes(r.u16()) });
  const signature = r.bytes(SIGNATURE_BYTES);
  r.end();
  return { node, seq, expiresAt, envelopes, signature, raw };
}

/** Checks the node's signature. Never throws. */
export function verifyWhereabouts(b: WhereaboutsBundle): boolean {
  const body = b.raw.subarray(0, b.raw.length - SIGNATURE_BYTES);
  return ed25519Verify(b.signature, concatBytes(CONTEXT, body), b.node);
}

/** Opens our envelope of a verified bundle; null when there is none for us or it fails. */
export function openWhereabouts(identity: NodeIdentity, b: WhereaboutsBundle): WhereaboutsRecord | null {
  const key = pairKey(identity, b.node);
  if (!key) return null;
  const tag = tagFor(key, b.seq);
  const env = b.envelopes.find((e) => equalBytes(e.tag, tag));
  if (!env) return null;
  const plain = aeadOpen(key, env.sealed, adFor(b.node, b.seq, b.expiresAt, tag));
  if (!plain) return null;
  try {
    const r = new Reader(plain, 'endpoints');
    const endpoints = readEndpoints(r);
    r.end();
    return { node: b.node, seq: b.seq, expiresAt: b.expiresAt, endpoints };
  } catch {
    return null;
  }
}

/** Result of offering a bundle to the store. */
export type PutResult = 'stored' | 'stale' | 'duplicate' | 'expired' | 'equivocation';

/** sqlite table of the latest verified bundle per node, re-served to contacts who ask. */
export class WhereaboutsStore {
  readonly #st;

  constructor(db: SqliteDatabase) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS whereabouts (
        node BLOB PRIMARY KEY, seq INTEGER NOT NULL, expires_at INTEGER NOT NULL, bundle BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS whereabouts_equivocations (
        node BLOB NOT NULL, seq INTEGER NOT NULL, first BLOB NOT NULL, second BLOB NOT NULL,
        PRIMARY KEY (node, seq));
    `);
    this.#st = {
      get: db.prepare('SELECT seq, expires_at, bundle FROM whereabouts WHERE node = ?'),
      upsert: db.prepare(
        'INSERT INTO whereabouts (node, seq, expires_at, bundle) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT(node) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at, bundle = excluded.bundle',
      ),
      equivocation: db.prepare('INSERT OR IGNORE INTO whereabouts_equivocations (node, seq, first, second) VALUES (?, ?, ?, ?)'),
      prune: db.prepare('DELETE FROM whereabouts WHERE expires_at <= ?'),
    };
  }

  /** Offers a bundle whose signature the caller has verified. */
  put(b: WhereaboutsBundle, now = Date.now()): PutResult {
    if (b.expiresAt <= now) return 'expired';
    const row = this.#st.get.get(b.node) as { seq: number; expires_at: number; bundle: Buffer } | undefined;
    if (row && row.expires_at > now) {
      if (b.seq < row.seq) return 'stale';
      if (b.seq === row.seq) {
        if (equalBytes(row.bundle, b.raw)) return 'duplicate';
        this.#st.equivocation.run(b.node, b.seq, row.bundle, b.raw);
        return 'equivocation';
      }
    }
    this.#st.upsert.run(b.node, b.seq, b.expiresAt, b.raw);
    return 'stored';
  }

  /** The stored, unexpired bundle of a node, or null. */
  get(node: Uint8Array, now = Date.now()): Uint8Array | null {
    const row = this.#st.get.get(node) as { expires_at: number; bundle: Buffer } | undefined;
    return row && row.expires_at > now ? new Uint8Array(row.bundle) : null;
  }

  /** Deletes expired bundles. */
  prune(now = Date.now()): number {
    return this.#st.prune.run(now).changes;
  }
}
