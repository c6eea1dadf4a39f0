/**
 * Version 2 (adaptor-claim) sales in paypub.db, beside the version 1 tables (store.ts) and never
 * mixed with them: a version 1 service reading `sales` must never see a version 2 manifest.
 *
 * Tables: adaptor_sales (one row per sale, seller or buyer; the seller's sale secret t sealed
 * like every other secret, under "salesecret:<id>"), adaptor_pledges (own pledges of a buyer,
 * announced pledges with their verified pre-signatures for a seller). Chunks go to the shared
 * `chunks` table (keyed by sale id, which is the manifest hash, so versions cannot collide).
 */
import type Database from 'better-sqlite3';
import { decodeAdaptorManifest, encodeAdaptorManifest, type AdaptorManifest } from './adaptor-manifest.js';
import type { Sealer } from './store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS adaptor_sales (
  id TEXT PRIMARY KEY, role TEXT NOT NULL, manifest BLOB NOT NULL, seller_index INTEGER, secret BLOB, url TEXT,
  anchor_txid TEXT, anchor_vout INTEGER, anchor_height INTEGER, anchor_block TEXT, start_height INTEGER NOT NULL,
  beacon_hash TEXT, reveal BLOB, auto_claim INTEGER NOT NULL DEFAULT 1, out_path TEXT, unlocked_path TEXT,
  claim_txid TEXT, claim_fee TEXT, claim_fee_rate REAL, claim_broadcast_height INTEGER, claim_height INTEGER,
  file_name TEXT, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS adaptor_pledges (
  txid TEXT NOT NULL, vout INTEGER NOT NULL, sale_id TEXT NOT NULL, own INTEGER NOT NULL, buyer_key BLOB NOT NULL,
  key_index INTEGER, value TEXT NOT NULL, script BLOB NOT NULL, height INTEGER, presig BLOB NOT NULL,
  announced INTEGER NOT NULL DEFAULT 0, spent_by TEXT, created_at INTEGER NOT NULL, PRIMARY KEY (txid, vout)
);
CREATE INDEX IF NOT EXISTS adaptor_pledges_sale ON adaptor_pledges (sale_id);
`;

export interface AdaptorSaleRow {
  readonly id: string;
  readonly role: 'seller' | 'buyer';
  readonly manifest: AdaptorManifest;
  readonly manifestBytes: Uint8Array;
  readonly sellerIndex: number | null;
  /** Buyer: the seller's base URL (where the pre-signature is announced). */
  readonly url: string | null;
  readonly anchorTxid: string | null;
  readonly anchorVout: number | null;
  readonly anchorHeight: number | null;
  readonly anchorBlock: string | null;
  /** The chain scan for this sale starts here (the tip when the row was made). */
  readonly startHeight: number;
  readonly beaconHash: string | null;
  /** encodeAdaptorReveal bytes. */
  readonly reveal: Uint8Array | null;
  readonly autoClaim: boolean;
  readonly outPath: string | null;
  readonly unlockedPath: string | null;
  readonly claimTxid: string | null;
  /** Seller: fee, rate and broadcast height of its claim (for RBF bumps); the height it confirmed at. */
  readonly claimFee: bigint | null;
  readonly claimFeeRate: number | null;
  readonly claimBroadcastHeight: number | null;
  readonly claimHeight: number | null;
  readonly fileName: string | null;
}

export interface AdaptorPledgeRow {
  readonly txid: string;
  readonly vout: number;
  readonly saleId: string;
  readonly own: boolean;
  readonly buyerKey: Uint8Array;
  readonly keyIndex: number | null;
  readonly value: bigint;
  readonly script: Uint8Array;
  readonly height: number | null;
  readonly presig: Uint8Array;
  readonly announced: boolean;
  readonly spentBy: string | null;
}

type Row = Record<string, unknown>;
const bytes = (v: unknown): Uint8Array => new Uint8Array(v as Buffer);
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** See the module header. Shares the connection of the PaypubStore. */
export class AdaptorStore {
  readonly #db: Database.Database;
  readonly #sealer: Sealer;
  /** Decoded (and signature-checked) manifests by sale id: rows are read on every block. */
  readonly #manifests = new Map<string, AdaptorManifest>();

  constructor(db: Database.Database, sealer: Sealer) {
    this.#db = db;
    this.#sealer = sealer;
    this.#db.exec(SCHEMA);
  }

  insertSale(s: { id: string; role: 'seller' | 'buyer'; manifest: AdaptorManifest; sellerIndex?: number; secret?: Uint8Array; url?: string | null; anchorTxid?: string | null; anchorVout?: number | null; startHeight: number; autoClaim?: boolean; outPath?: string | null; fileName?: string | null }): void {
    this.#db.prepare(`INSERT INTO adaptor_sales (id, role, manifest, seller_index, secret, url, anchor_txid, anchor_vout, start_height, auto_claim, out_path, file_name, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      s.id, s.role, encodeAdaptorManifest(s.manifest), s.sellerIndex ?? null, s.secret ? this.#sealer.seal(s.secret, `salesecret:${s.id}`) : null,
      s.url ?? null, s.anchorTxid ?? null, s.anchorVout ?? null, s.startHeight, s.autoClaim === false ? 0 : 1, s.outPath ?? null, s.fileName ?? null, Date.now(),
    );
  }

  #sale(r: Row): AdaptorSaleRow {
    const manifestBytes = bytes(r.manifest);
    const id = String(r.id);
    let manifest = this.#manifests.get(id);
    if (!manifest) {
      manifest = decodeAdaptorManifest(manifestBytes);
      this.#manifests.set(id, manifest);
    }
    return {
      id, role: r.role as 'seller' | 'buyer', manifest, manifestBytes, sellerIndex: num(r.seller_index),
      url: str(r.url), anchorTxid: str(r.anchor_txid), anchorVout: num(r.anchor_vout), anchorHeight: num(r.anchor_height), anchorBlock: str(r.anchor_block),
      startHeight: Number(r.start_height), beaconHash: str(r.beacon_hash), reveal: r.reveal ? bytes(r.reveal) : null, autoClaim: r.auto_claim === 1,
      outPath: str(r.out_path), unlockedPath: str(r.unlocked_path), claimTxid: str(r.claim_txid),
      claimFee: r.claim_fee === null || r.claim_fee === undefined ? null : BigInt(String(r.claim_fee)), claimFeeRate: num(r.claim_fee_rate),
      claimBroadcastHeight: num(r.claim_broadcast_height), claimHeight: num(r.claim_height), fileName: str(r.file_name),
    };
  }

  sale(id: string): AdaptorSaleRow | undefined {
    const r = this.#db.prepare('SELECT * FROM adaptor_sales WHERE id = ?').get(id) as Row | undefined;
    return r ? this.#sale(r) : undefined;
  }

  sales(): AdaptorSaleRow[] {
    return (this.#db.prepare('SELECT * FROM adaptor_sales ORDER BY created_at').all() as Row[]).map((r) => this.#sale(r));
  }

  deleteSale(id: string): void {
    this.#manifests.delete(id);
    this.#db.prepare('DELETE FROM adaptor_sales WHERE id = ?').run(id);
  }

  /** The seller's sale secret t. Secret: never logged, never in an event. */
  saleSecret(id: string): Uint8Array | undefined {
    const r = this.#db.prepare('SELECT secret FROM adaptor_sales WHERE id = ?').get(id) as { secret: Buffer | null } | undefined;
    return r?.secret ? this.#sealer.open(bytes(r.secret), `salesecret:${id}`) : undefined;
  }

  /** Buyer: t learned from a claim (sealed like the seller's copy). */
  setSaleSecret(id: string, t: Uint8Array): void {
    this.#db.prepare('UPDATE adaptor_sales SET secret = ? WHERE id = ?').run(this.#sealer.seal(t, `salesecret:${id}`), id);
  }

  setAnchor(id: string, txid: string, vout: number): void {
    this.#db.prepare('UPDATE adaptor_sales SET anchor_txid = ?, anchor_vout = ? WHERE id = ?').run(txid, vout, id);
  }

  setAnchorBlock(id: string, height: number, block: string): void {
    this.#db.prepare('UPDATE adaptor_sales SET anchor_height = ?, anchor_block = ? WHERE id = ?').run(height, block, id);
  }

  setReveal(id: string, beaconHash: string, reveal: Uint8Array): void {
    this.#db.prepare('UPDATE adaptor_sales SET beacon_hash = ?, reveal = ? WHERE id = ?').run(beaconHash, reveal, id);
  }

  setClaim(id: string, c: { txid: string; fee: bigint; feeRate: number; broadcastHeight: number }): void {
    this.#db.prepare('UPDATE adaptor_sales SET claim_txid = ?, claim_fee = ?, claim_fee_rate = ?, claim_broadcast_height = ?, claim_height = NULL WHERE id = ?')
      .run(c.txid, c.fee.toString(), c.feeRate, c.broadcastHeight, id);
  }

  setClaimHeight(id: string, height: number): void {
    this.#db.prepare('UPDATE adaptor_sales SET claim_height = ? WHERE id = ?').run(height, id);
  }

  setUnlocked(id: string, path: string): void {
    this.#db.prepare('UPDATE adaptor_sales SET unlocked_path = ? WHERE id = ?').run(path, id);
  }

  insertPledge(p: { txid: string; vout: number; saleId: string; own: boolean; buyerKey: Uint8Array; keyIndex?: number | null; value: bigint; script: Uint8Array; height?: number | null; presig: Uint8Array }): boolean {
    return this.#db.prepare(`INSERT OR IGNORE INTO adaptor_pledges (txid, vout, sale_id, own, buyer_key, key_index, value, script, height, presig, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      p.txid, p.vout, p.saleId, p.own ? 1 : 0, p.buyerKey, p.keyIndex ?? null, p.value.toString(), p.script, p.height ?? null, p.presig, Date.now(),
    ).changes > 0;
  }

  pledges(saleId: string): AdaptorPledgeRow[] {
    return (this.#db.prepare('SELECT * FROM adaptor_pledges WHERE sale_id = ? ORDER BY created_at, txid, vout').all(saleId) as Row[]).map((r) => ({
      txid: String(r.txid), vout: Number(r.vout), saleId: String(r.sale_id), own: r.own === 1, buyerKey: bytes(r.buyer_key), keyIndex: num(r.key_index),
      value: BigInt(String(r.value)), script: bytes(r.script), height: num(r.height), presig: bytes(r.presig), announced: r.announced === 1, spentBy: str(r.spent_by),
    }));
  }

  pledgeCount(saleId: string): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM adaptor_pledges WHERE sale_id = ?').get(saleId) as { n: number }).n;
  }

  deletePledge(txid: string, vout: number): void {
    this.#db.prepare('DELETE FROM adaptor_pledges WHERE txid = ? AND vout = ?').run(txid, vout);
  }

  setPledgeHeight(txid: string, vout: number, height: number): void {
    this.#db.prepare('UPDATE adaptor_pledges SET height = ? WHERE txid = ? AND vout = ?').run(height, txid, vout);
  }

  setAnnounced(txid: string, vout: number): void {
    this.#db.prepare('UPDATE adaptor_pledges SET announced = 1 WHERE txid = ? AND vout = ?').run(txid, vout);
  }

  setPledgeSpent(txid: string, vout: number, by: string): void {
    this.#db.prepare('UPDATE adaptor_pledges SET spent_by = ? WHERE txid = ? AND vout = ?').run(by, txid, vout);
  }
}
