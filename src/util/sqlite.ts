/**
 * The one sqlite opener. Every deaddrop database is opened the same way:
 * - the file is created 0600 before sqlite touches it (sqlite gives its `-wal`/`-shm` files the
 *   mode of the database file), so a database never exists readable by others even for a moment,
 *   whatever the process umask;
 * - WAL with `synchronous=FULL`: a committed transaction survives power loss, and readers never
 *   block the writer;
 * - foreign keys on, and one busy timeout for every pair of processes sharing a file (the daemon
 *   and a CLI command).
 * Pass ':memory:' for a database that needs no file.
 */
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { closeSync, openSync } from 'node:fs';

export type { SqliteDatabase };

/** How long a writer waits for another process's write lock before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 10_000;

export interface OpenDatabaseOptions {
  /**
   * Page size for a new file (ignored for an existing one). The node's log uses 16 KiB so that a
   * 64 KiB entry takes 4 overflow pages instead of 16.
   */
  readonly pageSize?: number;
}

export function openDatabase(path: string, opts: OpenDatabaseOptions = {}): SqliteDatabase {
  if (path !== ':memory:') closeSync(openSync(path, 'a', 0o600));
  const db = new Database(path);
  try {
    if (opts.pageSize !== undefined) db.pragma(`page_size = ${opts.pageSize}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
