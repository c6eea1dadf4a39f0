/**
 * The introducer's ledger: which pairwise node key and which invite token went into which
 * drop. `deaddrop drop send` reserves a row before it builds the transaction, so
 *
 * - every introduction gets a pairwise key index never used before (the next index is
 *   persisted in the same transaction that reserves it; a failed send burns its index rather
 *   than reuse it, so no key ever appears in two introductions), and
 * - the token and its expiry are stored where the peer node can check them later
 *   ({@link IntroductionLedger.redeem}: once, before expiry, only for a drop that may be out).
 *
 * File: `<datadir>/introductions.sqlite`, mode 0600 (it holds live tokens), sqlite with a
 * rollback journal (sqlite gives the journal the database file's mode). Table `introductions`:
 *
 * | column | meaning |
 * | --- | --- |
 * | pairwise_index | index i of the pairwise key m/1046'/coin'/0'/1'/i' (primary key, never reused) |
 * | node_key | the Ed25519 public key carried in the drop (hex) |
 * | token | the 8-byte invite token (hex, unique) |
 * | expires_at | Unix seconds as carried (rounded up to the hour), null = never |
 * | recipient, label | the silent-payment address and invite label the drop went to |
 * | endpoints | JSON array of the endpoint hints sent |
 * | status | reserved (built, maybe broadcast), sent (accepted by the node), failed (never broadcast) |
 * | txid, vout | the drop transaction and its OP_RETURN output, once sent |
 * | created_at, sent_at, used_at | Unix milliseconds; used_at is set when the token is redeemed |
 *
 * The Ed25519 node key of index i is derived from the wallet's secp256k1 pairwise key i
 * through HKDF-SHA256 (salt "deaddrop/pairwise-ed25519/v0"), as src/wallet/keys.ts asks of a
 * layer needing another curve; the private key is never stored.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from '../chain/bytes.js';
import { DeaddropError } from '../util/errors.js';
import type { WalletKeys } from '../wallet/keys.js';
import { newToken } from './codec.js';

/** File name of the ledger in the datadir. */
export const INTRODUCTIONS_DB = 'introductions.sqlite';

const ED25519_SALT = new TextEncoder().encode('deaddrop/pairwise-ed25519/v0');

export type IntroductionStatus = 'reserved' | 'sent' | 'failed';

/** One introduction as recorded. */
export interface IntroductionRecord {
  readonly pairwiseIndex: number;
  /** Ed25519 public key carried in the drop, hex. */
  readonly nodeKey: string;
  /** Invite token, hex. Secret between the introducer and the recipient. */
  readonly token: string;
  readonly expiresAt: number | null;
  readonly recipient: string;
  readonly label: string | null;
  readonly endpoints: readonly string[];
  readonly status: IntroductionStatus;
  readonly txid: string | null;
  readonly vout: number | null;
  readonly createdAt: number;
  readonly sentAt: number | null;
  readonly usedAt: number | null;
}

/** What {@link IntroductionLedger.reserve} hands to the sender. */
export interface ReservedIntroduction {
  readonly pairwiseIndex: number;
  /** 32-byte Ed25519 public key for the payload. */
  readonly nodeKey: Uint8Array;
  /** 8-byte token for the payload. */
  readonly token: Uint8Array;
  /** As carried in the payload (rounded up to the hour), or null. */
  readonly expiresAt: number | null;
}

/** Fields of a new introduction. */
export interface ReserveParams {
  readonly recipient: string;
  readonly label?: string | null;
  readonly endpoints: readonly string[];
  /** Unix seconds, or null for a token that never expires. */
  readonly expiresAt: number | null;
}

/**
 * The Ed25519 key pair of pairwise index `index`: HKDF-SHA256 over the secp256k1 pairwise
 * private key. Deterministic, so the peer node can re-derive the secret key from the seed.
 * Secret in `secretKey`.
 */
export function pairwiseEd25519(keys: WalletKeys, index: number): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const pair = keys.pairwiseNodeKey(index);
  try {
    const secretKey = hkdf(sha256, pair.privateKey, ED25519_SALT, undefined, 32);
    return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
  } finally {
    pair.privateKey.fill(0);
  }
}

/** Rounds an expiry up to the whole hour, as the payload carries it. */
export function carriedExpiry(expiresAt: number | null): number | null {
  return expiresAt === null ? null : Math.ceil(expiresAt / 3600) * 3600;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS intro_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS introductions (
  pairwise_index INTEGER PRIMARY KEY,
  node_key       TEXT    NOT NULL,
  token          TEXT    NOT NULL UNIQUE,
  expires_at     INTEGER,
  recipient      TEXT    NOT NULL,
  label          TEXT,
  endpoints      TEXT    NOT NULL,
  status         TEXT    NOT NULL CHECK (status IN ('reserved', 'sent', 'failed')),
  txid           TEXT,
  vout           INTEGER,
  created_at     INTEGER NOT NULL,
  sent_at        INTEGER,
  used_at        INTEGER
);
`;

const NEXT_INDEX = 'next_pairwise_index';

interface Row {
  pairwise_index: number;
  node_key: string;
  token: string;
  expires_at: number | null;
  recipient: string;
  label: string | null;
  endpoints: string;
  status: IntroductionStatus;
  txid: string | null;
  vout: number | null;
  created_at: number;
  sent_at: number | null;
  used_at: number | null;
}

function toRecord(r: Row): IntroductionRecord {
  return {
    pairwiseIndex: r.pairwise_index, nodeKey: r.node_key, token: r.token, expiresAt: r.expires_at, recipient: r.recipient,
    label: r.label, endpoints: JSON.parse(r.endpoints) as string[], status: r.status, txid: r.txid, vout: r.vout,
    createdAt: r.created_at, sentAt: r.sent_at, usedAt: r.used_at,
  };
}

/** Creates `path` with mode 0600 if missing, and tightens it if it exists. */
function privateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
}

/**
 * The ledger. Methods are synchronous; several processes (daemon, CLI) may share the file,
 * and `reserve` takes sqlite's write lock so two of them never hand out the same index.
 * @example
 * const ledger = IntroductionLedger.open(datadir);
 * const r = ledger.reserve(keys, { recipient, endpoints, expiresAt });
 * // ... build and broadcast the drop with r.nodeKey and r.token ...
 * ledger.markSent(r.pairwiseIndex, txid, vout);
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
    const db = new Database(path);
    try {
      db.pragma('busy_timeout = 5000');
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

  /** The index the next introduction will use. */
  nextIndex(): number {
    const db = this.#live();
    const meta = db.prepare<[string], { value: string }>('SELECT value FROM intro_meta WHERE key = ?').get(NEXT_INDEX);
    const max = db.prepare<[], { m: number | null }>('SELECT max(pairwise_index) AS m FROM introductions').get()!.m;
    return Math.max(meta === undefined ? 0 : Number(meta.value), max === null ? 0 : max + 1);
  }

  /**
   * Takes the next pairwise index, derives its node key, draws a fresh token and records them
   * (status `reserved`) in one write transaction.
   */
  reserve(keys: WalletKeys, params: ReserveParams): ReservedIntroduction {
    const db = this.#live();
    const expiresAt = carriedExpiry(params.expiresAt);
    const run = db.transaction((): ReservedIntroduction => {
      const index = this.nextIndex();
      const { secretKey, publicKey } = pairwiseEd25519(keys, index);
      secretKey.fill(0);
      let token = newToken();
      while (db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM introductions WHERE token = ?').get(toHex(token))!.n > 0) token = newToken();
      db.prepare(
        `INSERT INTO introductions (pairwise_index, node_key, token, expires_at, recipient, label, endpoints, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'reserved', ?)`,
      ).run(index, toHex(publicKey), toHex(token), expiresAt, params.recipient, params.label ?? null, JSON.stringify(params.endpoints), this.#now());
      db.prepare('INSERT OR REPLACE INTO intro_meta (key, value) VALUES (?, ?)').run(NEXT_INDEX, String(index + 1));
      return { pairwiseIndex: index, nodeKey: publicKey, token, expiresAt };
    });
    return run.immediate();
  }

  /** Records that the drop carrying introduction `index` was accepted by the node. */
  markSent(index: number, txid: string, vout: number): void {
    this.#live().prepare("UPDATE introductions SET status = 'sent', txid = ?, vout = ?, sent_at = ? WHERE pairwise_index = ?")
      .run(txid, vout, this.#now(), index);
  }

  /** Records that introduction `index` was never broadcast: its token is never accepted. The index stays burnt. */
  markFailed(index: number): void {
    this.#live().prepare("UPDATE introductions SET status = 'failed' WHERE pairwise_index = ? AND status = 'reserved'").run(index);
  }

  get(index: number): IntroductionRecord | undefined {
    const row = this.#live().prepare<[number], Row>('SELECT * FROM introductions WHERE pairwise_index = ?').get(index);
    return row === undefined ? undefined : toRecord(row);
  }

  /** Every introduction, oldest first. */
  list(): IntroductionRecord[] {
    return this.#live().prepare<[], Row>('SELECT * FROM introductions ORDER BY pairwise_index').all().map(toRecord);
  }

  /**
   * For the peer node: accepts `token` once, if it belongs to an introduction that may be on
   * chain (sent, or reserved: a crash may have hidden the broadcast), is unused and unexpired
   * at `nowSeconds`. Marks it used and returns the record, or returns null. Never throws on a
   * stranger's token.
   */
  redeem(token: Uint8Array, nowSeconds = Math.floor(this.#now() / 1000)): IntroductionRecord | null {
    if (!(token instanceof Uint8Array) || token.length !== 8) return null;
    const db = this.#live();
    const run = db.transaction((): IntroductionRecord | null => {
      const row = db.prepare<[string], Row>('SELECT * FROM introductions WHERE token = ?').get(toHex(token));
      if (row === undefined || row.status === 'failed' || row.used_at !== null) return null;
      if (row.expires_at !== null && nowSeconds >= row.expires_at) return null;
      db.prepare('UPDATE introductions SET used_at = ? WHERE pairwise_index = ?').run(this.#now(), row.pairwise_index);
      return toRecord({ ...row, used_at: this.#now() });
    });
    return run.immediate();
  }
}
