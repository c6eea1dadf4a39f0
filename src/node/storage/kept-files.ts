/**
 * Files the user asked this node to keep alive (`store put`, or `store keep` for a file put
 * elsewhere), in the node's sqlite file (0600, like the rest of `node.sqlite`), table
 * `dd_storage_files`, one row per file keyed by its storage index.
 *
 * The read capability is a secret: it is stored sealed (XChaCha20-Poly1305) under a key derived
 * from the node identity (`identity.derive`), which itself derives from the wallet seed that is
 * encrypted at rest by the passphrase, the way the node keeps every other secret (derived, never
 * stored in clear). So `store ls` can give the user their caps back while a copy of the database
 * alone cannot read a single file. The verify cap is kept in clear next to it: it cannot decrypt,
 * and it is all the scheduled check, lease renewal and repair need.
 */
import type { SqliteDatabase } from '../db.js';
import type { NodeIdentity } from '../identity.js';
import { aeadOpen, aeadSeal, utf8 } from '../crypto.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS dd_storage_files (
  si TEXT PRIMARY KEY,
  backend TEXT NOT NULL,
  name TEXT,
  size INTEGER NOT NULL,
  cap_kind TEXT NOT NULL CHECK (cap_kind IN ('read', 'verify')),
  sealed_cap BLOB NOT NULL,
  verify_cap TEXT,
  added_at INTEGER NOT NULL,
  checked_at INTEGER,
  healthy INTEGER,
  shares_found INTEGER,
  repaired_total INTEGER NOT NULL DEFAULT 0,
  last_problem TEXT
);
`;

/** One kept file as `store ls` shows it. */
export interface KeptFile {
  readonly storageIndex: string;
  readonly backend: string;
  readonly name: string | null;
  readonly size: number;
  readonly capKind: 'read' | 'verify';
  /** The capability the user gave (read or verify); null if it no longer unseals (another identity). */
  readonly cap: string | null;
  readonly verifyCap: string | null;
  readonly addedAt: number;
  readonly checkedAt: number | null;
  readonly healthy: boolean | null;
  readonly sharesFound: number | null;
  readonly repairedTotal: number;
  readonly lastProblem: string | null;
}

interface Row {
  si: string; backend: string; name: string | null; size: number; cap_kind: 'read' | 'verify'; sealed_cap: Uint8Array; verify_cap: string | null;
  added_at: number; checked_at: number | null; healthy: number | null; shares_found: number | null; repaired_total: number; last_problem: string | null;
}

/** See the module comment. */
export class KeptFiles {
  readonly #db: SqliteDatabase;
  readonly #key: Uint8Array;

  constructor(db: SqliteDatabase, identity: NodeIdentity) {
    this.#db = db;
    db.exec(SCHEMA);
    this.#key = identity.derive('storage/kept-caps', new Uint8Array(0));
  }

  /** Records (or updates the name of) a kept file. */
  keep(f: { storageIndex: string; backend: string; name: string | null; size: number; capKind: 'read' | 'verify'; cap: string; verifyCap: string | null }): void {
    const sealed = aeadSeal(this.#key, utf8(f.cap), utf8(f.storageIndex));
    this.#db.prepare(
      `INSERT INTO dd_storage_files (si, backend, name, size, cap_kind, sealed_cap, verify_cap, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(si) DO UPDATE SET name = COALESCE(excluded.name, name),
         cap_kind = CASE WHEN cap_kind = 'read' THEN cap_kind ELSE excluded.cap_kind END,
         sealed_cap = CASE WHEN cap_kind = 'read' THEN sealed_cap ELSE excluded.sealed_cap END`,
    ).run(f.storageIndex, f.backend, f.name, f.size, f.capKind, sealed, f.verifyCap, Date.now());
  }

  /** Stops keeping a file; true if it was kept. */
  forget(storageIndex: string): boolean {
    return this.#db.prepare('DELETE FROM dd_storage_files WHERE si = ?').run(storageIndex).changes > 0;
  }

  list(): KeptFile[] {
    return this.#db.prepare<[], Row>('SELECT * FROM dd_storage_files ORDER BY added_at, si').all().map((r) => this.#file(r));
  }

  get(storageIndex: string): KeptFile | undefined {
    const r = this.#db.prepare<[string], Row>('SELECT * FROM dd_storage_files WHERE si = ?').get(storageIndex);
    return r ? this.#file(r) : undefined;
  }

  /** Records the outcome of a check (scheduled or asked for). */
  recordCheck(storageIndex: string, r: { healthy: boolean; sharesFound: number; repaired: number; problem: string | null }): void {
    this.#db.prepare('UPDATE dd_storage_files SET checked_at = ?, healthy = ?, shares_found = ?, repaired_total = repaired_total + ?, last_problem = ? WHERE si = ?')
      .run(Date.now(), r.healthy ? 1 : 0, r.sharesFound, r.repaired, r.problem, storageIndex);
  }

  #file(r: Row): KeptFile {
    const opened = aeadOpen(this.#key, r.sealed_cap, utf8(r.si));
    return {
      storageIndex: r.si, backend: r.backend, name: r.name, size: r.size, capKind: r.cap_kind, cap: opened ? new TextDecoder().decode(opened) : null,
      verifyCap: r.verify_cap, addedAt: r.added_at, checkedAt: r.checked_at, healthy: r.healthy === null ? null : r.healthy === 1,
      sharesFound: r.shares_found, repairedTotal: r.repaired_total, lastProblem: r.last_problem,
    };
  }
}
