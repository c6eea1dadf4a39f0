/**
 * The watcher's sqlite state (better-sqlite3, WAL): drops found, the public candidate index,
 * the prevout cache and the event outbox.
 *
 * Exactly-once events (DEV DOCS):
 * - Every state change of a drop and the event row describing it are written by the same
 *   synchronous method, which the caller runs inside ONE sqlite transaction together with the
 *   follower cursor update (block connect/disconnect) or on its own (mempool discovery). After
 *   `kill -9` either the cursor, the state and the event are all there, or none of them is, so
 *   replaying a block can neither lose nor duplicate an event.
 * - Events are derived from committed state only: an outbox row (`util/outbox.ts`) carries a
 *   monotonic `seq` (sqlite AUTOINCREMENT, never reused) and a stable `id` built from the drop
 *   id, the kind of change and the drop's generation counter (bumped by every change).
 * - Delivery is a separate step: a consumer reads rows with `seq` above its persisted cursor,
 *   hands them on and persists the new cursor. A crash between the two re-delivers the rows
 *   (at least once); consumers drop duplicates by id, so each state change is seen once.
 *
 * Rollback: candidate rows and confirmations carry the block hash, so disconnecting a block
 * deletes its index rows and turns its confirmed drops into `reorged` with one event each.
 *
 * Eviction: a `pending` drop whose transaction left the mempool without being mined (replaced
 * by a double spend, expired, evicted) becomes `evicted` with one `drop.evicted` event; the
 * watcher decides when (after catching up with the blocks). Seeing it again in the mempool or
 * in a block starts a new generation like after a reorg.
 *
 * Schema: databases created before `evicted` existed carry a CHECK on `status` without it;
 * opening one rebuilds `dd_drops` once (same rows) in one transaction.
 */
import type Database from 'better-sqlite3';
import { openDatabase } from '../../util/sqlite.js';
import { Outbox, type OutboxEntry } from '../../util/outbox.js';
import { createHash } from 'node:crypto';
import type { Prevout } from '../../chain/types.js';

/** Lifecycle of a drop: seen in the mempool, mined, retracted by a reorg, or gone from the mempool unmined. */
export type DropStatus = 'pending' | 'confirmed' | 'reorged' | 'evicted';

/** Event types written to the outbox. */
export type DropEventType = 'drop.pending' | 'drop.confirmed' | 'drop.reorged' | 'drop.evicted';

/** A block as the store records it. */
export interface StoredBlockRef {
  readonly height: number;
  readonly hash: string;
}

/** One public index row: a candidate OP_RETURN with its tweak data. Only on-chain data. */
export interface IndexedCandidate {
  readonly height: number;
  readonly blockHash: string;
  readonly txid: string;
  readonly vout: number;
  /** 33-byte compressed point input_hash·A. */
  readonly tweak: Uint8Array;
  /** The OP_RETURN's pushed data. */
  readonly data: Uint8Array;
}

/** A drop decrypted by one of the local identities, as handed to the store. */
export interface FoundDrop {
  readonly txid: string;
  /** Output index of the OP_RETURN carrying the envelope. */
  readonly vout: number;
  /** Which local identity decrypted it (its label). */
  readonly identity: string;
  /** The decrypted payload as JSON-safe fields (bytes as hex). */
  readonly payload: Record<string, unknown>;
}

/** A drop as stored. */
export interface DropRecord extends FoundDrop {
  /** Stable id: {@link dropId} of txid and vout. */
  readonly id: string;
  readonly status: DropStatus;
  /** Block height and hash while confirmed (the last ones for a reorged drop), else null. */
  readonly height: number | null;
  readonly blockHash: string | null;
  /** Number of state changes so far (1 after discovery); part of every event id. */
  readonly generation: number;
  readonly firstSeen: number;
  readonly updated: number;
}

/** One outbox row. */
export type OutboxEvent = OutboxEntry<DropEventType>;


const SCHEMA = `
CREATE TABLE IF NOT EXISTS dd_candidates (
  height     INTEGER NOT NULL,
  txid       TEXT    NOT NULL,
  vout       INTEGER NOT NULL,
  block_hash TEXT    NOT NULL,
  tweak      BLOB    NOT NULL,
  data       BLOB    NOT NULL,
  PRIMARY KEY (height, txid, vout)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dd_drops (
  id         TEXT    PRIMARY KEY,
  identity   TEXT    NOT NULL,
  txid       TEXT    NOT NULL,
  vout       INTEGER NOT NULL,
  status     TEXT    NOT NULL CHECK (status IN ('pending', 'confirmed', 'reorged', 'evicted')),
  height     INTEGER,
  block_hash TEXT,
  generation INTEGER NOT NULL,
  payload    TEXT    NOT NULL,
  first_seen INTEGER NOT NULL,
  updated    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dd_drops_block ON dd_drops (block_hash);
CREATE TABLE IF NOT EXISTS dd_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dd_prevouts (
  txid   TEXT    NOT NULL,
  vout   INTEGER NOT NULL,
  script BLOB    NOT NULL,
  value  INTEGER NOT NULL,
  UNIQUE (txid, vout)
);
`;

/**
 * The stable id of the drop in output `vout` of `txid`: the first 16 bytes of
 * SHA-256("deaddrop/drop" || txid || ":" || vout), hex. It names the same drop in the
 * mempool, in any block and after any reorg.
 */
export function dropId(txid: string, vout: number): string {
  return createHash('sha256').update(`deaddrop/drop\x00${txid.toLowerCase()}:${vout}`).digest('hex').slice(0, 32);
}

/** Event id of the `generation`-th state change of a drop: unique per change, stable on replay. */
export function eventId(type: DropEventType, id: string, generation: number): string {
  return `${type}:${id}:${generation}`;
}

interface DropRow {
  id: string;
  identity: string;
  txid: string;
  vout: number;
  status: DropStatus;
  height: number | null;
  block_hash: string | null;
  generation: number;
  payload: string;
  first_seen: number;
  updated: number;
}

function toRecord(r: DropRow): DropRecord {
  return {
    id: r.id,
    identity: r.identity,
    txid: r.txid,
    vout: r.vout,
    status: r.status,
    height: r.height,
    blockHash: r.block_hash,
    generation: r.generation,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    firstSeen: r.first_seen,
    updated: r.updated,
  };
}

/** Options of {@link DropStore.open}. */
export interface DropStoreOptions {
  /** Clock for `time` fields (tests). Default Date.now. */
  readonly now?: () => number;
}

/**
 * The watcher database. Methods are synchronous; the ones that change state are meant to be
 * called inside {@link DropStore.transaction} (or a follower transaction on {@link DropStore.db}).
 *
 * @example
 * const store = DropStore.open(path.join(datadir, 'watcher.sqlite'));
 * store.transaction(() => store.recordPending(found));
 */
export class DropStore {
  readonly db: Database.Database;
  readonly #now: () => number;
  readonly #s: ReturnType<typeof prepare>;
  readonly #outbox: Outbox<DropEventType>;

  private constructor(db: Database.Database, opts: DropStoreOptions) {
    this.db = db;
    this.#now = opts.now ?? Date.now;
    createSchema(db);
    this.#s = prepare(db);
    this.#outbox = new Outbox(db, { table: 'dd_outbox', idColumn: 'event_id', cursorTable: 'dd_delivery', now: this.#now });
  }

  /** Opens (creating if needed) the database at `file` in WAL mode. `':memory:'` for tests. */
  static open(file: string, opts: DropStoreOptions = {}): DropStore {
    const db = openDatabase(file);
    try {
      return new DropStore(db, opts);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Runs `fn` in one sqlite transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // -- Block connect / disconnect (call inside the follower's transaction) ----------------

  /**
   * Records a connected block: its candidate rows and the drops found in it. A drop not yet
   * confirmed in this block becomes `confirmed` with one `drop.confirmed` event carrying
   * `confirmations` = `tipHeight - height + 1` (at least 1). Returns the events written.
   */
  connectBlock(block: StoredBlockRef, candidates: readonly IndexedCandidate[], found: readonly FoundDrop[], tipHeight: number): OutboxEvent[] {
    for (const c of candidates) {
      this.#s.insertCandidate.run(block.height, c.txid, c.vout, block.hash, c.tweak, c.data);
    }
    const events: OutboxEvent[] = [];
    const confirmations = Math.max(1, tipHeight - block.height + 1);
    for (const f of found) {
      const prev = this.getDrop(dropId(f.txid, f.vout));
      if (prev?.status === 'confirmed' && prev.blockHash === block.hash) continue;
      const rec = this.#upsert(f, 'confirmed', block, prev);
      events.push(this.#emit('drop.confirmed', rec, { confirmations }));
    }
    return events;
  }

  /**
   * Rolls back a disconnected block: deletes its candidate rows and turns every drop confirmed
   * in it into `reorged`, with one `drop.reorged` event each. Returns the events written.
   */
  disconnectBlock(block: StoredBlockRef): OutboxEvent[] {
    this.#s.deleteCandidates.run(block.height);
    const events: OutboxEvent[] = [];
    for (const row of this.#s.confirmedIn.all(block.hash)) {
      const prev = toRecord(row);
      const rec = this.#upsert(prev, 'reorged', { height: prev.height!, hash: prev.blockHash! }, prev);
      events.push(this.#emit('drop.reorged', rec, {}));
    }
    return events;
  }

  // -- Mempool ------------------------------------------------------------------------------

  /**
   * Records a drop seen in the mempool. Only a new drop, or one retracted by a reorg or an
   * eviction, becomes `pending` (with a `drop.pending` event); a drop already pending or
   * confirmed is left alone, so seeing the same mempool tx again is a no-op. Returns the event
   * written, if any.
   */
  recordPending(found: FoundDrop): OutboxEvent | undefined {
    const prev = this.getDrop(dropId(found.txid, found.vout));
    if (prev !== undefined && prev.status !== 'reorged' && prev.status !== 'evicted') return undefined;
    const rec = this.#upsert(found, 'pending', undefined, prev);
    return this.#emit('drop.pending', rec, {});
  }

  /**
   * Records that the transaction of pending drop `id` left the mempool unmined: the drop becomes
   * `evicted` with one `drop.evicted` event. Any other state (or an unknown id) is left alone, so
   * a repeat is a no-op. Returns the event written, if any.
   */
  recordEvicted(id: string): OutboxEvent | undefined {
    const prev = this.getDrop(id);
    if (prev?.status !== 'pending') return undefined;
    const rec = this.#upsert(prev, 'evicted', undefined, prev);
    return this.#emit('drop.evicted', rec, {});
  }

  #upsert(f: FoundDrop, status: DropStatus, block: StoredBlockRef | undefined, prev: DropRecord | undefined): DropRecord {
    const now = this.#now();
    const id = dropId(f.txid, f.vout);
    const generation = (prev?.generation ?? 0) + 1;
    const height = block?.height ?? prev?.height ?? null;
    const hash = block?.hash ?? prev?.blockHash ?? null;
    this.#s.upsertDrop.run({
      id, identity: f.identity, txid: f.txid, vout: f.vout, status, height, block_hash: hash, generation,
      payload: JSON.stringify(f.payload), first_seen: prev?.firstSeen ?? now, updated: now,
    });
    return this.getDrop(id)!;
  }

  #emit(type: DropEventType, rec: DropRecord, extra: Record<string, unknown>): OutboxEvent {
    const data: Record<string, unknown> = {
      dropId: rec.id, txid: rec.txid, vout: rec.vout, identity: rec.identity, status: rec.status,
      ...(rec.status === 'pending' || rec.status === 'evicted' ? {} : { height: rec.height, blockHash: rec.blockHash }),
      ...extra,
      payload: rec.payload,
    };
    const id = eventId(type, rec.id, rec.generation);
    const row = this.#outbox.enqueue(type, id, data);
    // Every change bumps the generation, so its event id is new: a duplicate is a bug.
    if (row === undefined) throw new Error(`drop store: event ${id} is already queued`);
    return row;
  }

  // -- Reads ----------------------------------------------------------------------------------

  getDrop(id: string): DropRecord | undefined {
    const row = this.#s.getDrop.get(id);
    return row === undefined ? undefined : toRecord(row);
  }

  /** All drops, oldest discovery first. */
  listDrops(): DropRecord[] {
    return this.#s.listDrops.all().map(toRecord);
  }

  /** Drops in state `pending` (seen in the mempool, not mined). */
  pendingDrops(): DropRecord[] {
    return this.#s.pendingDrops.all().map(toRecord);
  }

  /** Index rows with `from <= height <= to`, in chain order, at most `limit`. */
  candidatesInRange(from: number, to: number, limit: number): IndexedCandidate[] {
    return this.#s.range.all(from, to, limit).map((r) => ({
      height: r.height, blockHash: r.block_hash, txid: r.txid, vout: r.vout, tweak: new Uint8Array(r.tweak), data: new Uint8Array(r.data),
    }));
  }

  /** Deletes index rows at or above `height` (a rescan rewrites them). */
  deleteCandidatesFrom(height: number): void {
    this.#s.deleteCandidatesFrom.run(height);
  }

  /** Number of index rows (tests, status). */
  candidateCount(): number {
    return this.#s.countCandidates.get()!.n;
  }

  // -- Outbox -----------------------------------------------------------------------------------

  /** Outbox rows with `seq > after`, oldest first, at most `limit`. */
  eventsAfter(after: number, limit = 1000): OutboxEvent[] {
    return this.#outbox.after(after, limit);
  }

  /** The last seq delivered to `consumer` (0 before the first). */
  deliveredSeq(consumer: string): number {
    return this.#outbox.deliveredSeq(consumer);
  }

  /**
   * Hands every row after `consumer`'s cursor to `fn`, persisting the cursor after each row.
   * A crash between the two re-delivers that row on the next call (at least once; consumers
   * dedupe by id). Returns how many rows were delivered. If `fn` throws, the row stays undelivered.
   */
  deliver(consumer: string, fn: (event: OutboxEvent) => void): number {
    return this.#outbox.deliver(consumer, fn);
  }

  /** Persists that `consumer` has handled every row up to `seq`. Never moves backwards. */
  markDelivered(consumer: string, seq: number): void {
    this.#outbox.markDelivered(consumer, seq);
  }

  // -- Meta -------------------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    return this.#s.getMeta.get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.#s.setMeta.run(key, value);
  }

  // -- Prevout cache ------------------------------------------------------------------------------

  getPrevout(txid: string, vout: number): Prevout | undefined {
    const r = this.#s.getPrevout.get(txid, vout);
    return r === undefined ? undefined : { script: new Uint8Array(r.script), value: BigInt(r.value) };
  }

  /** Caches prevouts (idempotent). Values above 2^63 cannot occur on chain and are rejected. */
  putPrevouts(rows: readonly { txid: string; vout: number; prevout: Prevout }[]): void {
    this.transaction(() => {
      for (const r of rows) this.#s.putPrevout.run(r.txid, r.vout, r.prevout.script, r.prevout.value);
    });
  }

  /** Drops the oldest-inserted cache rows beyond `keep` (the cache is only a speed-up). */
  prunePrevouts(keep: number): void {
    this.#s.prunePrevouts.run(keep);
  }
}

const DROP_COLUMNS = 'id, identity, txid, vout, status, height, block_hash, generation, payload, first_seen, updated';

/** Creates the tables; rebuilds a `dd_drops` whose status CHECK predates `evicted`. */
function createSchema(db: Database.Database): void {
  const old = db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'dd_drops'").get();
  const legacy = old !== undefined && !old.sql.includes("'evicted'");
  db.transaction(() => {
    if (legacy) db.exec('DROP INDEX IF EXISTS dd_drops_block; ALTER TABLE dd_drops RENAME TO dd_drops_v0;');
    db.exec(SCHEMA);
    if (legacy) db.exec(`INSERT INTO dd_drops (${DROP_COLUMNS}) SELECT ${DROP_COLUMNS} FROM dd_drops_v0; DROP TABLE dd_drops_v0;`);
  })();
}

function prepare(db: Database.Database) {
  return {
    insertCandidate: db.prepare<[number, string, number, string, Uint8Array, Uint8Array]>(
      'INSERT OR REPLACE INTO dd_candidates (height, txid, vout, block_hash, tweak, data) VALUES (?, ?, ?, ?, ?, ?)'),
    // One block per height is connected at a time, so the height names the disconnected block's rows.
    deleteCandidates: db.prepare<[number]>('DELETE FROM dd_candidates WHERE height = ?'),
    deleteCandidatesFrom: db.prepare<[number]>('DELETE FROM dd_candidates WHERE height >= ?'),
    range: db.prepare<[number, number, number], { height: number; txid: string; vout: number; block_hash: string; tweak: Buffer; data: Buffer }>(
      'SELECT height, txid, vout, block_hash, tweak, data FROM dd_candidates WHERE height BETWEEN ? AND ? ORDER BY height, txid, vout LIMIT ?'),
    countCandidates: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM dd_candidates'),
    getDrop: db.prepare<[string], DropRow>('SELECT * FROM dd_drops WHERE id = ?'),
    listDrops: db.prepare<[], DropRow>('SELECT * FROM dd_drops ORDER BY first_seen, id'),
    pendingDrops: db.prepare<[], DropRow>("SELECT * FROM dd_drops WHERE status = 'pending' ORDER BY first_seen, id"),
    confirmedIn: db.prepare<[string], DropRow>("SELECT * FROM dd_drops WHERE block_hash = ? AND status = 'confirmed' ORDER BY id"),
    upsertDrop: db.prepare(
      `INSERT INTO dd_drops (id, identity, txid, vout, status, height, block_hash, generation, payload, first_seen, updated)
       VALUES (@id, @identity, @txid, @vout, @status, @height, @block_hash, @generation, @payload, @first_seen, @updated)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, height = excluded.height, block_hash = excluded.block_hash,
         generation = excluded.generation, payload = excluded.payload, updated = excluded.updated`),
    getMeta: db.prepare<[string], { value: string }>('SELECT value FROM dd_meta WHERE key = ?'),
    setMeta: db.prepare<[string, string]>('INSERT OR REPLACE INTO dd_meta (key, value) VALUES (?, ?)'),
    getPrevout: db.prepare<[string, number], { script: Buffer; value: number | bigint }>('SELECT script, value FROM dd_prevouts WHERE txid = ? AND vout = ?'),
    putPrevout: db.prepare<[string, number, Uint8Array, bigint]>('INSERT OR IGNORE INTO dd_prevouts (txid, vout, script, value) VALUES (?, ?, ?, ?)'),
    prunePrevouts: db.prepare<[number]>(
      'DELETE FROM dd_prevouts WHERE rowid <= (SELECT max(rowid) FROM dd_prevouts) - ?'),
  };
}
