/**
 * Coin reservations, persisted in the wallet database so a restart neither loses nor leaks them.
 *
 * A reservation holds the inputs of one transaction the wallet planned but has not seen
 * broadcast yet. Its id is that transaction's txid (for a PSBT: the txid of the unsigned
 * transaction, which signing does not change because every input is segwit). Kinds:
 *
 * | kind | made by | ends |
 * | --- | --- | --- |
 * | `psbt` | `psbtCreate` (an external signer holds it) | finalize, broadcast, `abandon`, or expiry |
 * | `funded` | `fundTransaction` (a signed tx the caller may broadcast) | `broadcast`, `release`, or expiry |
 * | `broadcast` | every broadcast, written with the signed tx *before* it is sent | the node's answer, or start-up recovery |
 *
 * A `broadcast` row is the crash-safety record: a daemon killed between writing it and
 * recording the node's answer finds it at the next start and asks the node (see
 * `Wallet#settleBroadcasts`): a transaction the node or the chain knows is recorded, one it does
 * not know is broadcast again, one the node refuses is dropped and its coins released. It never
 * expires. A `psbt` or `funded` row without a live transaction only ever holds coins until it
 * expires (default one hour), so no coin stays reserved for good.
 *
 * Tables (in `wallet.db`):
 * - `reservations (id, kind, raw, created_at, expires_at)`: `raw` is the signed transaction
 *   (null for PSBTs), times are Unix milliseconds, `expires_at` null means "no expiry".
 * - `reserved_coins (txid, vout, reservation)`: one row per reserved outpoint; an outpoint belongs
 *   to at most one reservation.
 */
import type Database from 'better-sqlite3';
import { DeaddropError } from '../util/errors.js';

/** Default lifetime of a PSBT or funded-transaction reservation: one hour. */
export const DEFAULT_RESERVATION_TTL_MS = 3_600_000;

export type ReservationKind = 'psbt' | 'funded' | 'broadcast';

/** One reservation as listed by `deaddrop wallet reservations` and `GET /wallet/reservations`. */
export interface Reservation {
  /** txid of the transaction the coins fund. */
  readonly id: string;
  readonly kind: ReservationKind;
  readonly coins: readonly { readonly txid: string; readonly vout: number; readonly value: bigint }[];
  /** Unix ms. */
  readonly createdAt: number;
  /** Unix ms, or null (a broadcast in flight, settled at start-up). */
  readonly expiresAt: number | null;
  /** The signed transaction, when the wallet holds one. */
  readonly raw: Uint8Array | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS reservations (
  id         TEXT    PRIMARY KEY,
  kind       TEXT    NOT NULL CHECK (kind IN ('psbt', 'funded', 'broadcast')),
  raw        BLOB,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS reserved_coins (
  txid        TEXT    NOT NULL,
  vout        INTEGER NOT NULL,
  reservation TEXT    NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
  PRIMARY KEY (txid, vout)
);
CREATE INDEX IF NOT EXISTS reserved_coins_reservation ON reserved_coins (reservation);
`;

interface RawReservation { id: string; kind: ReservationKind; raw: Uint8Array | null; created_at: number; expires_at: number | null }
interface RawCoin { txid: string; vout: number; value: number | null; reservation: string }

/** Typed, synchronous access to the reservation tables of one wallet database. */
export class ReservationStore {
  readonly #db: Database.Database;
  readonly #s;

  constructor(db: Database.Database) {
    this.#db = db;
    db.exec(SCHEMA);
    this.#s = {
      get: db.prepare<[string], RawReservation>('SELECT * FROM reservations WHERE id = ?'),
      all: db.prepare<[], RawReservation>('SELECT * FROM reservations ORDER BY created_at, id'),
      ofKind: db.prepare<[string], RawReservation>('SELECT * FROM reservations WHERE kind = ? ORDER BY created_at, id'),
      insert: db.prepare('INSERT INTO reservations (id, kind, raw, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'),
      update: db.prepare('UPDATE reservations SET kind = ?, raw = ?, expires_at = ? WHERE id = ?'),
      remove: db.prepare('DELETE FROM reservations WHERE id = ?'),
      coinInsert: db.prepare('INSERT INTO reserved_coins (txid, vout, reservation) VALUES (?, ?, ?)'),
      coinHolder: db.prepare<[string, number], { reservation: string }>('SELECT reservation FROM reserved_coins WHERE txid = ? AND vout = ?'),
      coinsOf: db.prepare<[string], RawCoin>(
        `SELECT c.txid, c.vout, c.reservation, u.value FROM reserved_coins c LEFT JOIN utxos u ON u.txid = c.txid AND u.vout = c.vout
         WHERE c.reservation = ? ORDER BY c.txid, c.vout`,
      ),
      allCoins: db.prepare<[], { txid: string; vout: number }>('SELECT txid, vout FROM reserved_coins'),
      expired: db.prepare<[number], { id: string }>('SELECT id FROM reservations WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    };
  }

  /**
   * Reserves `coins` for transaction `id`. CONFLICT when a coin is held by another
   * reservation (another process on the same wallet took it first).
   */
  add(id: string, kind: ReservationKind, coins: readonly { txid: string; vout: number }[], opts: { raw?: Uint8Array | null; now: number; expiresAt: number | null }): void {
    this.#db.transaction(() => {
      if (this.#s.get.get(id)) this.#s.remove.run(id);
      this.#s.insert.run(id, kind, opts.raw ?? null, opts.now, opts.expiresAt);
      for (const c of coins) {
        const holder = this.#s.coinHolder.get(c.txid, c.vout)?.reservation;
        if (holder !== undefined) throw new DeaddropError('CONFLICT', `coin ${c.txid}:${c.vout} is already reserved by ${holder}`);
        this.#s.coinInsert.run(c.txid, c.vout, id);
      }
    }).immediate();
  }

  /** Turns reservation `id` into the record of a broadcast about to happen (signed tx kept, no expiry). */
  markBroadcasting(id: string, raw: Uint8Array): void {
    this.#s.update.run('broadcast', raw, null, id);
  }

  /** Frees the coins of reservation `id`. True when there was one. */
  remove(id: string): boolean {
    return this.#s.remove.run(id).changes > 0;
  }

  get(id: string): Reservation | undefined {
    const r = this.#s.get.get(id);
    return r && this.#toReservation(r);
  }

  list(kind?: ReservationKind): Reservation[] {
    return (kind === undefined ? this.#s.all.all() : this.#s.ofKind.all(kind)).map((r) => this.#toReservation(r));
  }

  /** Outpoints (`txid:vout`) held by any reservation. */
  reservedOutpoints(): Set<string> {
    return new Set(this.#s.allCoins.all().map((c) => `${c.txid}:${c.vout}`));
  }

  /** Deletes every reservation whose expiry is at or before `now`; returns their ids. */
  expire(now: number): string[] {
    const ids = this.#s.expired.all(now).map((r) => r.id);
    if (ids.length > 0) this.#db.transaction(() => ids.forEach((id) => this.#s.remove.run(id))).immediate();
    return ids;
  }

  #toReservation(r: RawReservation): Reservation {
    return {
      id: r.id, kind: r.kind, createdAt: r.created_at, expiresAt: r.expires_at, raw: r.raw === null ? null : new Uint8Array(r.raw),
      coins: this.#s.coinsOf.all(r.id).map((c) => ({ txid: c.txid, vout: c.vout, value: BigInt(c.value ?? 0) })),
    };
  }
}
