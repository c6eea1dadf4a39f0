/**
 * PaypubStore: the seller's and the buyer's PayPub state in `<datadir>/paypub.db` (sqlite, WAL).
 *
 * Tables: sales (one row per manifest, as seller or as buyer/observer), chunks (ciphertexts),
 * keys (chunk keys, sealed), pledges (pledges and private-mode HTLC outputs, own or announced),
 * claims, refunds, private_offers, fraud_proofs, outbox (events, delivered after commit) and
 * meta (key-index counters, the follower's birthday, the outbox cursor). The chain follower's
 * cursor lives in the same file (follower_blocks), so block effects and cursor commit together.
 *
 * At rest, every chunk key and every private-mode secret is sealed with XChaCha20-Poly1305 under
 * a key derived from the wallet seed (keys.ts, role PAYPUB_STORAGE), with the table, sale and
 * index as associated data, so a row cannot be moved to another place. Keys are secrets until a
 * claim publishes them; the store does not try to tell which ones already are.
 *
 * All methods are synchronous (better-sqlite3); the chain follower calls them inside its
 * transactions.
 */
import type Database from 'better-sqlite3';
import { openDatabase } from '../util/sqlite.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { DeaddropError } from '../util/errors.js';
import { taggedHash } from './bytes.js';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.js';
import { NONCE_BYTES } from './params.js';
import { decodeOffer, encodeOffer, type Offer } from './private.js';
import { decodeReveal, encodeReveal, type SampleReveal } from './sample.js';
import { fromHex, toHex } from '../util/bytes.js';
import type { StorageServerHint } from '../feature/content-store.js';
import { Outbox, type OutboxEntry } from '../util/outbox.js';

export const PAYPUB_DB_FILE = 'paypub.db';
const SCHEMA_VERSION = 1;
/** Where the bus's outbox cursor lived before `util/outbox.ts` (a `meta` key). */
const LEGACY_OUTBOX_CURSOR = 'outbox_delivered';
const SEAL_VERSION = 1;
/** `meta` key prefix of a sale's storage capability. */
const STORAGE_CAP_KEY = 'storage_cap:';
/** `meta` key prefix of the servers holding a sale's bundle (JSON). */
const STORAGE_SERVERS_KEY = 'storage_servers:';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sales (
  id TEXT PRIMARY KEY, role TEXT NOT NULL, manifest BLOB NOT NULL, seller_index INTEGER, url TEXT,
  anchor_txid TEXT, anchor_vout INTEGER, anchor_height INTEGER, anchor_block TEXT,
  beacon_hash TEXT, reveal BLOB, auto_claim INTEGER NOT NULL DEFAULT 1,
  out_path TEXT, unlocked_path TEXT, unlocked_at INTEGER, file_name TEXT, payout_script BLOB,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (sale_id TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (sale_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (sale_id TEXT NOT NULL, idx INTEGER NOT NULL, sealed BLOB NOT NULL, source TEXT NOT NULL, PRIMARY KEY (sale_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pledges (
  txid TEXT NOT NULL, vout INTEGER NOT NULL, sale_id TEXT NOT NULL, kind TEXT NOT NULL, own INTEGER NOT NULL,
  buyer_key BLOB NOT NULL, r BLOB, key_index INTEGER, payment_hash TEXT, script BLOB NOT NULL, value TEXT NOT NULL,
  height INTEGER, block_hash TEXT, spent_by TEXT, spent_kind TEXT, spent_height INTEGER, spent_block TEXT,
  announced INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
  PRIMARY KEY (txid, vout)
);
CREATE INDEX IF NOT EXISTS pledges_sale ON pledges (sale_id);
CREATE TABLE IF NOT EXISTS claims (
  txid TEXT PRIMARY KEY, sale_id TEXT NOT NULL, raw BLOB NOT NULL, own INTEGER NOT NULL, fee TEXT, fee_rate REAL,
  inputs TEXT NOT NULL, status TEXT NOT NULL, height INTEGER, block_hash TEXT, seen_at INTEGER NOT NULL,
  broadcast_height INTEGER, replaced_by TEXT, payout_script BLOB
);
CREATE INDEX IF NOT EXISTS claims_sale ON claims (sale_id);
CREATE TABLE IF NOT EXISTS refunds (
  txid TEXT PRIMARY KEY, sale_id TEXT NOT NULL, pledge TEXT NOT NULL, raw BLOB NOT NULL, own INTEGER NOT NULL, fee TEXT,
  status TEXT NOT NULL, height INTEGER, block_hash TEXT, seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS private_offers (
  payment_hash TEXT PRIMARY KEY, sale_id TEXT NOT NULL, role TEXT NOT NULL, buyer_key BLOB NOT NULL, key_index INTEGER,
  offer BLOB NOT NULL, wrap BLOB NOT NULL, secret BLOB, script BLOB NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fraud_proofs (
  claim_txid TEXT PRIMARY KEY, sale_id TEXT NOT NULL, proof BLOB NOT NULL, reason TEXT NOT NULL, created_at INTEGER NOT NULL
);
`;

export type SaleRole = 'seller' | 'buyer';
export type TxStatus = 'mempool' | 'confirmed' | 'replaced';
export type SpendKind = 'claim' | 'refund' | 'other';

/** One sale, as seller or as buyer (an observer is a buyer without pledges). */
export interface SaleRow {
  readonly id: string;
  readonly role: SaleRole;
  readonly manifest: Manifest;
  readonly manifestBytes: Uint8Array;
  /** Seller: derivation index of the seller key (keys.ts PAYPUB_SELLER). */
  readonly sellerIndex: number | null;
  /** Buyer: the seller's base URL. */
  readonly url: string | null;
  readonly anchorTxid: string | null;
  readonly anchorVout: number | null;
  readonly anchorHeight: number | null;
  readonly anchorBlock: string | null;
  /** The beacon block hash the reveal was made (seller) or checked (buyer) against. */
  readonly beaconHash: string | null;
  readonly reveal: SampleReveal | null;
  readonly autoClaim: boolean;
  /** Buyer: where the daemon writes the file once every key is known. */
  readonly outPath: string | null;
  readonly unlockedPath: string | null;
  readonly unlockedAt: number | null;
  readonly fileName: string | null;
  readonly payoutScript: Uint8Array | null;
  readonly createdAt: number;
}

export interface PledgeRow {
  readonly txid: string;
  readonly vout: number;
  readonly saleId: string;
  /** 'pledge' (public mode) or 'htlc' (private mode). */
  readonly kind: 'pledge' | 'htlc';
  /** Made by this wallet (we hold the refund key). */
  readonly own: boolean;
  readonly buyerKey: Uint8Array;
  readonly r: Uint8Array | null;
  readonly keyIndex: number | null;
  readonly paymentHash: string | null;
  readonly script: Uint8Array;
  readonly value: bigint;
  readonly height: number | null;
  readonly blockHash: string | null;
  readonly spentBy: string | null;
  readonly spentKind: SpendKind | null;
  readonly spentHeight: number | null;
  readonly spentBlock: string | null;
  readonly announced: boolean;
  readonly createdAt: number;
}

export interface ClaimRow {
  readonly txid: string;
  readonly saleId: string;
  readonly raw: Uint8Array;
  /** Broadcast by this seller. */
  readonly own: boolean;
  readonly fee: bigint | null;
  readonly feeRate: number | null;
  /** Outpoints spent, "txid:vout". */
  readonly inputs: readonly string[];
  readonly status: TxStatus;
  readonly height: number | null;
  readonly blockHash: string | null;
  /** When this node first saw it (own claims: just before the broadcast), ms. */
  readonly seenAt: number;
  readonly broadcastHeight: number | null;
  readonly replacedBy: string | null;
  readonly payoutScript: Uint8Array | null;
}

export interface RefundRow {
  readonly txid: string;
  readonly saleId: string;
  readonly pledge: string;
  readonly raw: Uint8Array;
  readonly own: boolean;
  readonly fee: bigint | null;
  readonly status: TxStatus;
  readonly height: number | null;
  readonly blockHash: string | null;
  readonly seenAt: number;
}

export interface PrivateOfferRow {
  readonly paymentHash: string;
  readonly saleId: string;
  readonly role: SaleRole;
  readonly buyerKey: Uint8Array;
  readonly keyIndex: number | null;
  readonly offer: Offer;
  readonly offerBytes: Uint8Array;
  readonly wrap: Uint8Array;
  /** The HTLC output script. */
  readonly script: Uint8Array;
  readonly createdAt: number;
}

export interface FraudRow {
  readonly claimTxid: string;
  readonly saleId: string;
  readonly proof: Uint8Array;
  readonly reason: string;
  readonly createdAt: number;
}

export type OutboxRow = OutboxEntry;

/** The outbox consumer that publishes PayPub's events on the daemon's bus. */
export const BUS_CONSUMER = 'bus';

type Row = Record<string, unknown>;
const buf = (v: unknown): Uint8Array => new Uint8Array(v as Buffer);
const bufOrNull = (v: unknown): Uint8Array | null => (v === null || v === undefined ? null : buf(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Opens (creating if needed) the PayPub database with the shared opener, then checks its schema version. */
export function openPaypubDb(path: string): Database.Database {
  const db = openDatabase(path);
  try {
    db.exec(SCHEMA);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    else if (version !== SCHEMA_VERSION) throw new DeaddropError('CONFLICT', `paypub.db has schema ${version}; this build knows ${SCHEMA_VERSION}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Seals and opens secrets at rest. The key comes from the wallet seed; it never leaves this object. */
export class Sealer {
  readonly #key: Uint8Array;

  /** `secret`: 32 bytes from keys.ts (PAYPUB_STORAGE); hashed with a tag of its own. */
  constructor(secret: Uint8Array) {
    if (!(secret instanceof Uint8Array) || secret.length !== 32) throw new TypeError('storage secret must be 32 bytes');
    this.#key = taggedHash('deaddrop/paypub/storage/v1', secret);
  }

  seal(plain: Uint8Array, where: string): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const ct = xchacha20poly1305(this.#key, nonce, new TextEncoder().encode(where)).encrypt(plain);
    const out = new Uint8Array(1 + NONCE_BYTES + ct.length);
    out[0] = SEAL_VERSION;
    out.set(nonce, 1);
    out.set(ct, 1 + NONCE_BYTES);
    return out;
  }

  /** Throws CONFLICT when the row was sealed under another seed or moved: the wallet does not match this database. */
  open(sealed: Uint8Array, where: string): Uint8Array {
    try {
      if (sealed[0] !== SEAL_VERSION) throw new Error('version');
      return xchacha20poly1305(this.#key, sealed.subarray(1, 1 + NONCE_BYTES), new TextEncoder().encode(where)).decrypt(sealed.subarray(1 + NONCE_BYTES));
    } catch {
      throw new DeaddropError('CONFLICT', `paypub.db: a sealed secret (${where.split(':')[0]}) does not open with this wallet's seed`);
    }
  }

  toJSON(): string {
    return 'Sealer';
  }
}

/** Synchronous access to paypub.db. */
export class PaypubStore {
  readonly db: Database.Database;
  readonly #sealer: Sealer;
  readonly #manifests = new Map<string, Manifest>();
  readonly #ownDb: boolean;
  /** Bumped on every local write that can change what the chain watcher looks for. */
  generation = 0;

  /** Events, written in the transaction of the change they describe (`util/outbox.ts`). */
  readonly outbox: Outbox;

  constructor(db: Database.Database | string, sealer: Sealer) {
    this.#ownDb = typeof db === 'string';
    this.db = typeof db === 'string' ? openPaypubDb(db) : db;
    this.#sealer = sealer;
    if (typeof db !== 'string') this.db.exec(SCHEMA);
    this.outbox = new Outbox(this.db, { table: 'outbox', cursorTable: 'outbox_delivery' });
    this.#migrateOutboxCursor();
  }

  /** Databases written before `util/outbox.ts` kept the bus's cursor in `meta`: move it once. */
  #migrateOutboxCursor(): void {
    const legacy = this.meta(LEGACY_OUTBOX_CURSOR);
    if (legacy === undefined) return;
    this.db.transaction(() => {
      this.outbox.markDelivered(BUS_CONSUMER, Number(legacy));
      this.db.prepare('DELETE FROM meta WHERE k = ?').run(LEGACY_OUTBOX_CURSOR);
    })();
  }

  close(): void {
    if (this.#ownDb && this.db.open) this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Changes when another connection (the CLI next to the daemon) committed. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  // -------------------------------------------------------------------------------------------
  // meta

  meta(k: string): string | undefined {
    return (this.db.prepare('SELECT v FROM meta WHERE k = ?').get(k) as { v: string } | undefined)?.v;
  }

  setMeta(k: string, v: string): void {
    this.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v').run(k, v);
  }

  /** The next unused derivation index of a key role; never hands out the same index twice. */
  allocIndex(role: 'seller' | 'buyer'): number {
    return this.transaction(() => {
      const k = `next_${role}_index`;
      const n = Number(this.meta(k) ?? '0');
      this.setMeta(k, String(n + 1));
      return n;
    });
  }

  // -------------------------------------------------------------------------------------------
  // sales

  insertSale(s: {
    id: string; role: SaleRole; manifest: Manifest; sellerIndex?: number | null; url?: string | null; anchorTxid?: string | null;
    anchorVout?: number | null; autoClaim?: boolean; outPath?: string | null; fileName?: string | null;
  }): void {
    this.db.prepare(`INSERT INTO sales (id, role, manifest, seller_index, url, anchor_txid, anchor_vout, auto_claim, out_path, file_name, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      s.id, s.role, encodeManifest(s.manifest), s.sellerIndex ?? null, s.url ?? null, s.anchorTxid ?? null, s.anchorVout ?? null,
      s.autoClaim === false ? 0 : 1, s.outPath ?? null, s.fileName ?? null, Date.now(),
    );
    this.generation++;
  }

  #sale(r: Row): SaleRow {
    const id = String(r.id);
    let manifest = this.#manifests.get(id);
    if (!manifest) {
      manifest = decodeManifest(buf(r.manifest));
      this.#manifests.set(id, manifest);
    }
    return {
      id, role: r.role as SaleRole, manifest, manifestBytes: buf(r.manifest), sellerIndex: numOrNull(r.seller_index), url: strOrNull(r.url),
      anchorTxid: strOrNull(r.anchor_txid), anchorVout: numOrNull(r.anchor_vout), anchorHeight: numOrNull(r.anchor_height),
      anchorBlock: strOrNull(r.anchor_block), beaconHash: strOrNull(r.beacon_hash), reveal: r.reveal ? decodeReveal(buf(r.reveal)) : null,
      autoClaim: r.auto_claim === 1, outPath: strOrNull(r.out_path), unlockedPath: strOrNull(r.unlocked_path), unlockedAt: numOrNull(r.unlocked_at),
      fileName: strOrNull(r.file_name), payoutScript: bufOrNull(r.payout_script), createdAt: Number(r.created_at),
    };
  }

  sale(id: string): SaleRow | undefined {
    const r = this.db.prepare('SELECT * FROM sales WHERE id = ?').get(id) as Row | undefined;
    return r ? this.#sale(r) : undefined;
  }

  /** Resolves a full id or a unique prefix of at least 8 hex characters. NOT_FOUND / BAD_INPUT otherwise. */
  resolveId(idOrPrefix: string): string {
    const p = idOrPrefix.toLowerCase();
    if (!/^[0-9a-f]{8,64}$/.test(p)) throw DeaddropError.badInput('a sale id is 8 to 64 hex characters (the manifest hash or a prefix of it)');
    const rows = this.db.prepare("SELECT id FROM sales WHERE id LIKE ? || '%' LIMIT 2").all(p) as { id: string }[];
    if (rows.length === 0) throw DeaddropError.notFound(`no PayPub sale ${p} in this datadir`);
    if (rows.length > 1) throw DeaddropError.badInput(`sale id prefix ${p} is ambiguous: give more characters`);
    return (rows[0] as { id: string }).id;
  }

  sales(): SaleRow[] {
    return (this.db.prepare('SELECT * FROM sales ORDER BY created_at, id').all() as Row[]).map((r) => this.#sale(r));
  }

  /** Forgets a sale and everything about it (a publish whose anchor could not be sent). */
  deleteSale(id: string): void {
    this.transaction(() => {
      for (const t of ['chunks', 'keys', 'pledges', 'claims', 'refunds', 'private_offers', 'fraud_proofs']) this.db.prepare(`DELETE FROM ${t} WHERE sale_id = ?`).run(id);
      this.db.prepare('DELETE FROM sales WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM meta WHERE k IN (?, ?)').run(STORAGE_CAP_KEY + id, STORAGE_SERVERS_KEY + id);
    });
    this.#manifests.delete(id);
    this.generation++;
  }

  setAnchor(id: string, a: { txid: string; vout: number }): void {
    this.db.prepare('UPDATE sales SET anchor_txid = ?, anchor_vout = ? WHERE id = ?').run(a.txid, a.vout, id);
    this.generation++;
  }

  setAnchorBlock(id: string, height: number | null, block: string | null): void {
    this.db.prepare('UPDATE sales SET anchor_height = ?, anchor_block = ? WHERE id = ?').run(height, block, id);
  }

  setReveal(id: string, beaconHash: string, reveal: SampleReveal): void {
    this.db.prepare('UPDATE sales SET beacon_hash = ?, reveal = ? WHERE id = ?').run(beaconHash, encodeReveal(reveal), id);
    this.generation++;
  }

  /**
   * The read capability of a sale's storage bundle (bundle.ts), or null. Kept in clear: it reads
   * only the manifest and ciphertexts, which every offer gives away anyway. (In `meta`, so no
   * schema change.)
   */
  storageCap(id: string): string | null {
    return this.meta(STORAGE_CAP_KEY + id) ?? null;
  }

  /** `servers`: where the bundle's shares went (peers backend), for offers to name. */
  setStorageCap(id: string, cap: string, servers: readonly StorageServerHint[] = []): void {
    this.setMeta(STORAGE_CAP_KEY + id, cap);
    if (servers.length > 0) this.setMeta(STORAGE_SERVERS_KEY + id, JSON.stringify(servers.map((x) => ({ id: toHex(x.id), url: x.url, ...(x.provider ? { provider: toHex(x.provider) } : {}) }))));
  }

  /** The storage servers recorded with a sale's capability (written by this process, so trusted). */
  storageServers(id: string): StorageServerHint[] {
    const v = this.meta(STORAGE_SERVERS_KEY + id);
    return v ? (JSON.parse(v) as { id: string; url: string; provider?: string }[]).map((x) => ({ id: fromHex(x.id), url: x.url, ...(x.provider ? { provider: fromHex(x.provider) } : {}) })) : [];
  }

  setUrl(id: string, url: string): void {
    this.db.prepare('UPDATE sales SET url = ? WHERE id = ?').run(url, id);
  }

  setOutPath(id: string, path: string): void {
    this.db.prepare('UPDATE sales SET out_path = ? WHERE id = ?').run(path, id);
  }

  setUnlocked(id: string, path: string, at: number): void {
    this.db.prepare('UPDATE sales SET unlocked_path = ?, unlocked_at = ? WHERE id = ?').run(path, at, id);
  }

  setPayoutScript(id: string, script: Uint8Array): void {
    this.db.prepare('UPDATE sales SET payout_script = ? WHERE id = ?').run(script, id);
  }

  /** Sales whose anchor is not confirmed in a block we have seen. */
  salesWithUnconfirmedAnchor(): SaleRow[] {
    return (this.db.prepare('SELECT * FROM sales WHERE anchor_txid IS NOT NULL AND anchor_height IS NULL').all() as Row[]).map((r) => this.#sale(r));
  }

  // -------------------------------------------------------------------------------------------
  // chunks and keys

  putChunks(id: string, chunks: readonly Uint8Array[]): void {
    const st = this.db.prepare('INSERT OR REPLACE INTO chunks (sale_id, idx, data) VALUES (?, ?, ?)');
    this.transaction(() => chunks.forEach((c, i) => st.run(id, i, c)));
  }

  chunk(id: string, index: number): Uint8Array | undefined {
    const r = this.db.prepare('SELECT data FROM chunks WHERE sale_id = ? AND idx = ?').get(id, index) as { data: Buffer } | undefined;
    return r ? buf(r.data) : undefined;
  }

  chunks(id: string): Uint8Array[] {
    return (this.db.prepare('SELECT data FROM chunks WHERE sale_id = ? ORDER BY idx').all(id) as { data: Buffer }[]).map((r) => buf(r.data));
  }

  /** Stores keys not stored yet (sealed). Returns how many were new. Callers check them against the commitments first. */
  addKeys(id: string, keys: ReadonlyMap<number, Uint8Array>, source: string): number {
    const st = this.db.prepare('INSERT OR IGNORE INTO keys (sale_id, idx, sealed, source) VALUES (?, ?, ?, ?)');
    let added = 0;
    for (const [i, k] of keys) added += st.run(id, i, this.#sealer.seal(k, `key:${id}:${i}`), source).changes;
    return added;
  }

  keys(id: string): Map<number, Uint8Array> {
    const rows = this.db.prepare('SELECT idx, sealed FROM keys WHERE sale_id = ? ORDER BY idx').all(id) as { idx: number; sealed: Buffer }[];
    return new Map(rows.map((r) => [r.idx, this.#sealer.open(buf(r.sealed), `key:${id}:${r.idx}`)]));
  }

  keyCount(id: string, sourcePrefix?: string): number {
    const r = sourcePrefix === undefined
      ? this.db.prepare('SELECT count(*) AS n FROM keys WHERE sale_id = ?').get(id)
      : this.db.prepare("SELECT count(*) AS n FROM keys WHERE sale_id = ? AND source LIKE ? || '%'").get(id, sourcePrefix);
    return Number((r as { n: number }).n);
  }

  // -------------------------------------------------------------------------------------------
  // pledges (and HTLC outputs)

  /** Inserts a pledge or HTLC output; false when the outpoint is already known. */
  insertPledge(p: {
    txid: string; vout: number; saleId: string; kind: 'pledge' | 'htlc'; own: boolean; buyerKey: Uint8Array; r?: Uint8Array | null;
    keyIndex?: number | null; paymentHash?: string | null; script: Uint8Array; value: bigint; height?: number | null; blockHash?: string | null; announced?: boolean;
  }): boolean {
    const res = this.db.prepare(`INSERT OR IGNORE INTO pledges (txid, vout, sale_id, kind, own, buyer_key, r, key_index, payment_hash, script, value, height, block_hash, announced, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      p.txid, p.vout, p.saleId, p.kind, p.own ? 1 : 0, p.buyerKey, p.r ?? null, p.keyIndex ?? null, p.paymentHash ?? null, p.script,
      p.value.toString(), p.height ?? null, p.blockHash ?? null, p.announced ? 1 : 0, Date.now(),
    );
    if (res.changes > 0) this.generation++;
    return res.changes > 0;
  }

  #pledge(r: Row): PledgeRow {
    return {
      txid: String(r.txid), vout: Number(r.vout), saleId: String(r.sale_id), kind: r.kind as 'pledge' | 'htlc', own: r.own === 1,
      buyerKey: buf(r.buyer_key), r: bufOrNull(r.r), keyIndex: numOrNull(r.key_index), paymentHash: strOrNull(r.payment_hash),
      script: buf(r.script), value: BigInt(String(r.value)), height: numOrNull(r.height), blockHash: strOrNull(r.block_hash),
      spentBy: strOrNull(r.spent_by), spentKind: strOrNull(r.spent_kind) as SpendKind | null, spentHeight: numOrNull(r.spent_height),
      spentBlock: strOrNull(r.spent_block), announced: r.announced === 1, createdAt: Number(r.created_at),
    };
  }

  pledge(txid: string, vout: number): PledgeRow | undefined {
    const r = this.db.prepare('SELECT * FROM pledges WHERE txid = ? AND vout = ?').get(txid, vout) as Row | undefined;
    return r ? this.#pledge(r) : undefined;
  }

  pledges(saleId?: string): PledgeRow[] {
    const rows = saleId === undefined
      ? this.db.prepare('SELECT * FROM pledges ORDER BY created_at, txid, vout').all()
      : this.db.prepare('SELECT * FROM pledges WHERE sale_id = ? ORDER BY created_at, txid, vout').all(saleId);
    return (rows as Row[]).map((r) => this.#pledge(r));
  }

  pledgeCount(saleId: string): number {
    return Number((this.db.prepare('SELECT count(*) AS n FROM pledges WHERE sale_id = ?').get(saleId) as { n: number }).n);
  }

  pledgesOfTx(txid: string): PledgeRow[] {
    return (this.db.prepare('SELECT * FROM pledges WHERE txid = ?').all(txid) as Row[]).map((r) => this.#pledge(r));
  }

  setPledgeBlock(txid: string, vout: number, height: number | null, block: string | null): void {
    this.db.prepare('UPDATE pledges SET height = ?, block_hash = ? WHERE txid = ? AND vout = ?').run(height, block, txid, vout);
  }

  setSpent(txid: string, vout: number, s: { by: string | null; kind: SpendKind | null; height: number | null; block: string | null }): void {
    this.db.prepare('UPDATE pledges SET spent_by = ?, spent_kind = ?, spent_height = ?, spent_block = ? WHERE txid = ? AND vout = ?')
      .run(s.by, s.kind, s.height, s.block, txid, vout);
    this.generation++;
  }

  setAnnounced(txid: string, vout: number): void {
    this.db.prepare('UPDATE pledges SET announced = 1 WHERE txid = ? AND vout = ?').run(txid, vout);
  }

  // -------------------------------------------------------------------------------------------
  // claims and refunds

  /** Records a claim; false when already known (an own claim still takes over a row a chain watch wrote first). */
  insertClaim(c: {
    txid: string; saleId: string; raw: Uint8Array; own: boolean; fee?: bigint | null; feeRate?: number | null; inputs: readonly string[];
    status: TxStatus; height?: number | null; blockHash?: string | null; seenAt: number; broadcastHeight?: number | null; payoutScript?: Uint8Array | null;
  }): boolean {
    // The seller's command writes its own claim after broadcasting it; a chain watch in another
    // process (the daemon, told by Core's ZMQ within milliseconds) may have recorded the same tx
    // first, as a claim of unknown origin. The command's row then makes it own and adds what only
    // the command knows (fee, rate, broadcast height, payout), keeping the status the watch saw.
    // Otherwise the watch's row stays as it is.
    const res = this.db.prepare(`INSERT INTO claims (txid, sale_id, raw, own, fee, fee_rate, inputs, status, height, block_hash, seen_at, broadcast_height, payout_script)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (txid) DO UPDATE SET own = 1, fee = excluded.fee, fee_rate = excluded.fee_rate, broadcast_height = excluded.broadcast_height,
        payout_script = COALESCE(excluded.payout_script, payout_script)
      WHERE excluded.own = 1 AND own = 0`).run(
      c.txid, c.saleId, c.raw, c.own ? 1 : 0, c.fee?.toString() ?? null, c.feeRate ?? null, JSON.stringify(c.inputs), c.status,
      c.height ?? null, c.blockHash ?? null, c.seenAt, c.broadcastHeight ?? null, c.payoutScript ?? null,
    );
    return res.changes > 0;
  }

  #claim(r: Row): ClaimRow {
    return {
      txid: String(r.txid), saleId: String(r.sale_id), raw: buf(r.raw), own: r.own === 1, fee: r.fee === null ? null : BigInt(String(r.fee)),
      feeRate: numOrNull(r.fee_rate), inputs: JSON.parse(String(r.inputs)) as string[], status: r.status as TxStatus, height: numOrNull(r.height),
      blockHash: strOrNull(r.block_hash), seenAt: Number(r.seen_at), broadcastHeight: numOrNull(r.broadcast_height), replacedBy: strOrNull(r.replaced_by),
      payoutScript: bufOrNull(r.payout_script),
    };
  }

  claim(txid: string): ClaimRow | undefined {
    const r = this.db.prepare('SELECT * FROM claims WHERE txid = ?').get(txid) as Row | undefined;
    return r ? this.#claim(r) : undefined;
  }

  claims(saleId: string): ClaimRow[] {
    return (this.db.prepare('SELECT * FROM claims WHERE sale_id = ? ORDER BY seen_at, txid').all(saleId) as Row[]).map((r) => this.#claim(r));
  }

  setClaimStatus(txid: string, s: { status: TxStatus; height?: number | null; blockHash?: string | null; replacedBy?: string | null }): void {
    this.db.prepare('UPDATE claims SET status = ?, height = ?, block_hash = ?, replaced_by = ? WHERE txid = ?')
      .run(s.status, s.height ?? null, s.blockHash ?? null, s.replacedBy ?? null, txid);
  }

  insertRefund(r: { txid: string; saleId: string; pledge: string; raw: Uint8Array; own: boolean; fee?: bigint | null; status: TxStatus; height?: number | null; blockHash?: string | null; seenAt: number }): boolean {
    const res = this.db.prepare(`INSERT OR IGNORE INTO refunds (txid, sale_id, pledge, raw, own, fee, status, height, block_hash, seen_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(r.txid, r.saleId, r.pledge, r.raw, r.own ? 1 : 0, r.fee?.toString() ?? null, r.status, r.height ?? null, r.blockHash ?? null, r.seenAt);
    return res.changes > 0;
  }

  #refund(r: Row): RefundRow {
    return {
      txid: String(r.txid), saleId: String(r.sale_id), pledge: String(r.pledge), raw: buf(r.raw), own: r.own === 1,
      fee: r.fee === null ? null : BigInt(String(r.fee)), status: r.status as TxStatus, height: numOrNull(r.height), blockHash: strOrNull(r.block_hash), seenAt: Number(r.seen_at),
    };
  }

  refund(txid: string): RefundRow | undefined {
    const r = this.db.prepare('SELECT * FROM refunds WHERE txid = ?').get(txid) as Row | undefined;
    return r ? this.#refund(r) : undefined;
  }

  refunds(saleId: string): RefundRow[] {
    return (this.db.prepare('SELECT * FROM refunds WHERE sale_id = ? ORDER BY seen_at').all(saleId) as Row[]).map((r) => this.#refund(r));
  }

  setRefundStatus(txid: string, status: TxStatus, height: number | null, block: string | null): void {
    this.db.prepare('UPDATE refunds SET status = ?, height = ?, block_hash = ? WHERE txid = ?').run(status, height, block, txid);
  }

  /** Undoes one disconnected block: anchors, pledge confirmations, spends, claims and refunds mined in it. */
  disconnectBlock(hash: string): { claims: ClaimRow[]; refunds: RefundRow[] } {
    const claims = (this.db.prepare('SELECT * FROM claims WHERE block_hash = ?').all(hash) as Row[]).map((r) => this.#claim(r));
    const refunds = (this.db.prepare('SELECT * FROM refunds WHERE block_hash = ?').all(hash) as Row[]).map((r) => this.#refund(r));
    this.db.prepare('UPDATE sales SET anchor_height = NULL, anchor_block = NULL WHERE anchor_block = ?').run(hash);
    this.db.prepare('UPDATE pledges SET height = NULL, block_hash = NULL WHERE block_hash = ?').run(hash);
    this.db.prepare('UPDATE pledges SET spent_height = NULL, spent_block = NULL WHERE spent_block = ?').run(hash);
    this.db.prepare("UPDATE claims SET status = 'mempool', height = NULL, block_hash = NULL WHERE block_hash = ?").run(hash);
    this.db.prepare("UPDATE refunds SET status = 'mempool', height = NULL, block_hash = NULL WHERE block_hash = ?").run(hash);
    this.generation++;
    return { claims, refunds };
  }

  // -------------------------------------------------------------------------------------------
  // private mode

  insertPrivateOffer(o: { saleId: string; role: SaleRole; buyerKey: Uint8Array; keyIndex?: number | null; offer: Offer; wrap: Uint8Array; secret?: Uint8Array; script: Uint8Array }): void {
    const ph = toHex(o.offer.paymentHash);
    this.db.prepare(`INSERT INTO private_offers (payment_hash, sale_id, role, buyer_key, key_index, offer, wrap, secret, script, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      ph, o.saleId, o.role, o.buyerKey, o.keyIndex ?? null, encodeOffer(o.offer), o.wrap,
      o.secret ? this.#sealer.seal(o.secret, `secret:${o.saleId}:${ph}`) : null, o.script, Date.now(),
    );
    this.generation++;
  }

  #privateOffer(r: Row): PrivateOfferRow {
    return {
      paymentHash: String(r.payment_hash), saleId: String(r.sale_id), role: r.role as SaleRole, buyerKey: buf(r.buyer_key), keyIndex: numOrNull(r.key_index),
      offer: decodeOffer(buf(r.offer)), offerBytes: buf(r.offer), wrap: buf(r.wrap), script: buf(r.script), createdAt: Number(r.created_at),
    };
  }

  privateOffer(paymentHash: string): PrivateOfferRow | undefined {
    const r = this.db.prepare('SELECT * FROM private_offers WHERE payment_hash = ?').get(paymentHash) as Row | undefined;
    return r ? this.#privateOffer(r) : undefined;
  }

  privateOffers(saleId?: string): PrivateOfferRow[] {
    const rows = saleId === undefined
      ? this.db.prepare('SELECT * FROM private_offers ORDER BY created_at').all()
      : this.db.prepare('SELECT * FROM private_offers WHERE sale_id = ? ORDER BY created_at').all(saleId);
    return (rows as Row[]).map((r) => this.#privateOffer(r));
  }

  privateOfferCount(saleId: string): number {
    return Number((this.db.prepare('SELECT count(*) AS n FROM private_offers WHERE sale_id = ?').get(saleId) as { n: number }).n);
  }

  /** A seller's offers no pledge row pays yet (no HTLC seen on chain, in the mempool or announced): hash and age. */
  pendingPrivateOffers(saleId: string): { paymentHash: string; createdAt: number }[] {
    const rows = this.db.prepare(`SELECT payment_hash, created_at FROM private_offers o WHERE sale_id = ? AND role = 'seller'
      AND NOT EXISTS (SELECT 1 FROM pledges p WHERE p.payment_hash = o.payment_hash) ORDER BY created_at`).all(saleId) as Row[];
    return rows.map((r) => ({ paymentHash: String(r.payment_hash), createdAt: Number(r.created_at) }));
  }

  /**
   * Forgets a seller's offer that nothing pays yet (its secret goes with it). Returns false, and
   * keeps it, when a pledge row pays it.
   */
  deletePendingPrivateOffer(paymentHash: string): boolean {
    const n = this.db.prepare(`DELETE FROM private_offers WHERE payment_hash = ? AND role = 'seller'
      AND NOT EXISTS (SELECT 1 FROM pledges p WHERE p.payment_hash = ?)`).run(paymentHash, paymentHash).changes;
    if (n > 0) this.generation++;
    return n > 0;
  }

  /** The seller's s_B of an offer. Secret. */
  privateSecret(paymentHash: string): Uint8Array | undefined {
    const r = this.db.prepare('SELECT sale_id, secret FROM private_offers WHERE payment_hash = ?').get(paymentHash) as { sale_id: string; secret: Buffer | null } | undefined;
    return r?.secret ? this.#sealer.open(buf(r.secret), `secret:${r.sale_id}:${paymentHash}`) : undefined;
  }

  insertFraud(f: { claimTxid: string; saleId: string; proof: Uint8Array; reason: string }): boolean {
    return this.db.prepare('INSERT OR IGNORE INTO fraud_proofs (claim_txid, sale_id, proof, reason, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(f.claimTxid, f.saleId, f.proof, f.reason, Date.now()).changes > 0;
  }

  frauds(saleId: string): FraudRow[] {
    return (this.db.prepare('SELECT * FROM fraud_proofs WHERE sale_id = ? ORDER BY created_at').all(saleId) as Row[]).map((r) => ({
      claimTxid: String(r.claim_txid), saleId: String(r.sale_id), proof: buf(r.proof), reason: String(r.reason), createdAt: Number(r.created_at),
    }));
  }

  // -------------------------------------------------------------------------------------------
  // outbox

  /** Queues an event; the same stable id is kept once. */
  event(type: string, id: string, data: Record<string, unknown>): void {
    this.outbox.enqueue(type, id, data);
  }

  eventsAfter(seq: number, limit = 500): OutboxRow[] {
    return this.outbox.after(seq, limit);
  }

  lastEventSeq(): number {
    return this.outbox.lastSeq();
  }
}
