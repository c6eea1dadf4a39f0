/**
 * The introducer's ledger: which pairwise node key went into which drop, to whom, until when.
 *
 * The key and the token themselves come from the peer node (src/node/drop-introduction.ts,
 * `issueNodeIntroduction`): a pairwise Ed25519 key derived from the node identity and a random token
 * id, fresh for every introduction, with the token's id and expiry stored in the node's database
 * (`node.sqlite`) so the node accepts the recipient exactly once, before expiry, when they dial
 * in. This ledger is the introducer's own record next to it: `deaddrop drops sent`,
 * `GET /drops/sent`. It holds no secret (the token stays in the drop and, hashed, in the node).
 *
 * File: `<datadir>/introductions.sqlite`, mode 0600 (who you introduced yourself to is private),
 * sqlite with a rollback journal (sqlite gives the journal the database file's mode).
 * Table `introductions`:
 *
 * | column | meaning |
 * | --- | --- |
 * | number | sequence number of the introduction (primary key, never reused) |
 * | node_key | the pairwise Ed25519 public key carried in the drop (hex, unique) |
 * | expires_at | the token's expiry as carried (Unix seconds on a whole hour), null = never |
 * | recipient, label | the silent-payment address and invite label the drop went to |
 * | endpoints | JSON array of the endpoint hints sent |
 * | status | reserved (being sent), sent (accepted by the node), failed (never broadcast) |
 * | txid, vout | the drop transaction and its OP_RETURN output, recorded once signed, before it is broadcast |
 * | created_at, sent_at | Unix milliseconds |
 */
import type Database from 'better-sqlite3';
import { openDatabase } from '../util/sqlite.js';
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DeaddropError } from '../util/errors.js';
import { toHex } from '../util/bytes.js';

/** File name of the ledger in the datadir. */
export const INTRODUCTIONS_DB = 'introductions.sqlite';

export type IntroductionStatus = 'reserved' | 'sent' | 'failed';

/** One introduction as recorded. */
export interface IntroductionRecord {
  readonly number: number;
  /** Pairwise Ed25519 public key carried in the drop, hex. */
  readonly nodeKey: string;
  readonly expiresAt: number | null;
  readonly recipient: string;
  readonly label: string | null;
  readonly endpoints: readonly string[];
  readonly status: IntroductionStatus;
  readonly txid: string | null;
  readonly vout: number | null;
  readonly createdAt: number;
  readonly sentAt: number | null;
}

/** Fields of a new introduction. */
export interface ReserveParams {
  /** The pairwise key the node issued for this introduction (32 bytes). */
  readonly nodeKey: Uint8Array;
  /** As carried (whole hour), or null. */
  readonly expiresAt: number | null;
  readonly recipient: string;
  readonly label?: string | null;
  readonly endpoints: readonly string[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS introductions (
  number     INTEGER PRIMARY KEY AUTOINCREMENT,
  node_key   TEXT    NOT NULL UNIQUE,
  expires_at INTEGER,
  recipient  TEXT    NOT NULL,
  label      TEXT,
  endpoints  TEXT    NOT NULL,
  status     TEXT    NOT NULL CHECK (status IN ('reserved', 'sent', 'failed')),
  txid       TEXT,
  vout       INTEGER,
  created_at INTEGER NOT NULL,
  sent_at    INTEGER
);
`;

interface Row {
  number: number;
  node_key: string;
  expires_at: number | null;
  recipient: string;
  label: string | null;
  endpoints: string;
  status: IntroductionStatus;
  txid: string | null;
  vout: number | null;
  created_at: number;
  sent_at: number | null;
}

function toRecord(r: Row): IntroductionRecord {
  return {
    number: r.number, nodeKey: r.node_key, expiresAt: r.expires_at, recipient: r.recipient, label: r.label,
    endpoints: JSON.parse(r.endpoints) as string[], status: r.status, txid: r.txid, vout: r.vout, createdAt: r.created_at, sentAt: r.sent_at,
  };
}

/** Creates `path` with mode 0600 if missing, and tightens it if it exists. */
function privateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
}

/**
 * The ledger. Methods are synchronous; the daemon and the CLI may share the file. A pairwise
 * key can be recorded once only (UNIQUE), so a key handed out twice would fail loudly.
 * @example
 * const ledger = IntroductionLedger.open(datadir);
 * const n = ledger.reserve({ nodeKey, expiresAt, recipient, endpoints });
 * // ... build and broadcast the drop ...
 * ledger.markSent(n, txid, vout);
 */
export class IntroductionLedger {
  readonly #db: Database.Database;
  readonly #now: () => number;

  private constructor(db: Database.Database, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  /** Opens (creating, mode 0600) `<datadir>/introductions.sqlite`. */
  static open(datadir: string, opts: { now?: () => number } = {}): IntroductionLedger {
    const path = join(datadir, INTRODUCTIONS_DB);
    privateFile(path);
    const db = openDatabase(path);
    try {
      db.exec(SCHEMA);
      return new IntroductionLedger(db, opts.now ?? Date.now);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #live(): Database.Database {
    if (!this.#db.open) throw DeaddropError.closed('introduction ledger');
    return this.#db;
  }

  /** Records an introduction about to be sent (status `reserved`); returns its number. */
  reserve(params: ReserveParams): number {
    if (!(params.nodeKey instanceof Uint8Array) || params.nodeKey.length !== 32) throw new TypeError('nodeKey must be 32 bytes');
    const info = this.#live().prepare(
      `INSERT INTO introductions (node_key, expires_at, recipient, label, endpoints, status, created_at)
       VALUES (?, ?, ?, ?, ?, 'reserved', ?)`,
    ).run(toHex(params.nodeKey), params.expiresAt, params.recipient, params.label ?? null, JSON.stringify(params.endpoints), this.#now());
    return Number(info.lastInsertRowid);
  }

  /**
   * Records the signed drop of introduction `n` before it is broadcast, so an interrupted send
   * can be settled from the wallet's record of that transaction (see ./settle.ts).
   */
  markBuilt(n: number, txid: string, vout: number): void {
    this.#live().prepare("UPDATE introductions SET txid = ?, vout = ? WHERE number = ? AND status = 'reserved'").run(txid, vout, n);
  }

  /** Records that introduction `n`'s drop was accepted by the node. */
  markSent(n: number, txid: string, vout: number): void {
    this.#live().prepare("UPDATE introductions SET status = 'sent', txid = ?, vout = ?, sent_at = ? WHERE number = ?").run(txid, vout, this.#now(), n);
  }

  /** Records that introduction `n` was never broadcast. */
  markFailed(n: number): void {
    this.#live().prepare("UPDATE introductions SET status = 'failed' WHERE number = ? AND status = 'reserved'").run(n);
  }

  get(n: number): IntroductionRecord | undefined {
    const row = this.#live().prepare<[number], Row>('SELECT * FROM introductions WHERE number = ?').get(n);
    return row === undefined ? undefined : toRecord(row);
  }

  /** Every introduction, oldest first. */
  list(): IntroductionRecord[] {
    return this.#live().prepare<[], Row>('SELECT * FROM introductions ORDER BY number').all().map(toRecord);
  }
}
