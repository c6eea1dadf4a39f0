/**
 * Persistent state of a ChainFollower: the hashes of the last REORG_SAFETY_DEPTH connected
 * blocks, per follower name, in the consumer's own sqlite database. The highest row is the
 * cursor. Every write happens inside the transaction that also holds the consumer's changes
 * for that block, so the cursor and the consumer's state can never disagree after a crash.
 */
import type Database from 'better-sqlite3';

/** A block the follower has connected (or the base it started from). */
export interface FollowedBlock {
  readonly height: number;
  readonly hash: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS follower_blocks (
  name   TEXT    NOT NULL,
  height INTEGER NOT NULL,
  hash   TEXT    NOT NULL,
  PRIMARY KEY (name, height)
) WITHOUT ROWID;
`;

/** Creates the follower table if missing. Safe to call on every open. */
export function migrateFollowerStore(db: Database.Database): void {
  db.exec(SCHEMA);
}

/** Cursor and recent-hash window of one named follower. All methods are synchronous. */
export class FollowerStore {
  readonly name: string;
  readonly #db: Database.Database;
  readonly #tip: Database.Statement<[string], FollowedBlock>;
  readonly #at: Database.Statement<[string, number], { hash: string }>;
  readonly #recent: Database.Statement<[string, number], FollowedBlock>;
  readonly #insert: Database.Statement<[string, number, string]>;
  readonly #delete: Database.Statement<[string, number]>;
  readonly #prune: Database.Statement<[string, number]>;
  readonly #clear: Database.Statement<[string]>;

  constructor(db: Database.Database, name: string) {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('follower name must be a non-empty string');
    migrateFollowerStore(db);
    this.#db = db;
    this.name = name;
    this.#tip = db.prepare('SELECT height, hash FROM follower_blocks WHERE name = ? ORDER BY height DESC LIMIT 1');
    this.#at = db.prepare('SELECT hash FROM follower_blocks WHERE name = ? AND height = ?');
    this.#recent = db.prepare('SELECT height, hash FROM follower_blocks WHERE name = ? AND height <= ? ORDER BY height DESC');
    this.#insert = db.prepare('INSERT OR REPLACE INTO follower_blocks (name, height, hash) VALUES (?, ?, ?)');
    this.#delete = db.prepare('DELETE FROM follower_blocks WHERE name = ? AND height = ?');
    this.#prune = db.prepare('DELETE FROM follower_blocks WHERE name = ? AND height < ?');
    this.#clear = db.prepare('DELETE FROM follower_blocks WHERE name = ?');
  }

  get db(): Database.Database {
    return this.#db;
  }

  /** The last connected block, or null before the first one. */
  cursor(): FollowedBlock | null {
    return this.#tip.get(this.name) ?? null;
  }

  /** Stored hash at `height`, if still in the window. */
  hashAt(height: number): string | undefined {
    return this.#at.get(this.name, height)?.hash;
  }

  /** Stored blocks at or below `height`, newest first. */
  recentAtOrBelow(height: number): FollowedBlock[] {
    return this.#recent.all(this.name, height);
  }

  /** Records `block` as the new cursor and forgets hashes more than `keep` blocks below it. */
  connect(block: FollowedBlock, keep: number): void {
    this.#insert.run(this.name, block.height, block.hash);
    this.#prune.run(this.name, block.height - keep + 1);
  }

  /** Forgets the block at `height` (it was disconnected). */
  disconnect(height: number): void {
    this.#delete.run(this.name, height);
  }

  /** Forgets everything (tests, rescans). */
  clear(): void {
    this.#clear.run(this.name);
  }
}
