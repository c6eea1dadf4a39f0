/**
 * The one transactional event outbox, used by the drop watcher (`dd_outbox`) and by PayPub
 * (`outbox`).
 *
 * Exactly-once events, in two steps (DEV DOCS):
 * - `enqueue` writes the event row with the state change it describes: the caller runs it
 *   inside its own sqlite transaction, so after `kill -9` either the change and its event are
 *   both there or neither is. A row carries a monotonic `seq` (AUTOINCREMENT, never reused) and
 *   a stable `id` the caller builds from the change, so replaying the same change cannot queue a
 *   second row.
 * - `deliver` hands the rows after a consumer's persisted cursor to the consumer in `seq` order,
 *   moving the cursor after each row. A crash between the two re-delivers that row (at least
 *   once); consumers drop duplicates by `id`, so each change is seen once.
 *
 * Table and column names are parameters so that databases written before this module existed
 * open unchanged (the watcher's rows name their id column `event_id`, PayPub's `id`).
 */
import type { Database, Statement } from 'better-sqlite3';

/** One outbox row. */
export interface OutboxEntry<T extends string = string> {
  readonly seq: number;
  readonly id: string;
  readonly type: T;
  readonly data: Record<string, unknown>;
  readonly time: number;
}

export interface OutboxOptions {
  /** Table of event rows (created if missing). */
  readonly table: string;
  /** Name of the stable-id column in `table`. Default 'id'. */
  readonly idColumn?: string;
  /** Table of per-consumer cursors (created if missing). */
  readonly cursorTable: string;
  /** Clock for `time` (tests). Default Date.now. */
  readonly now?: () => number;
}

export interface DeliverOptions {
  /**
   * True: a consumer that throws is skipped for that row (its cursor still moves), so one
   * failing listener cannot stop delivery. False (default): the throw propagates and the row
   * stays undelivered, to be handed over again on the next call.
   */
  readonly skipFailures?: boolean;
}

interface RawRow {
  seq: number;
  id: string;
  type: string;
  data: string;
  time: number;
}

const NAME = /^[a-z_][a-z0-9_]*$/;

function checkName(name: string, what: string): string {
  // Names are spliced into SQL: only plain identifiers are accepted.
  if (!NAME.test(name)) throw new TypeError(`outbox: ${what} must be a plain sqlite identifier, got ${JSON.stringify(name)}`);
  return name;
}

/**
 * A transactional outbox over one sqlite database.
 * @example
 * const outbox = new Outbox(db, { table: 'outbox', cursorTable: 'outbox_delivery' });
 * db.transaction(() => { saveState(); outbox.enqueue('sale.published', `sale.published:${id}`, { id }); })();
 * outbox.deliver('bus', (e) => bus.publish(e.type, e.data));
 */
export class Outbox<T extends string = string> {
  readonly #now: () => number;
  readonly #insert: Statement<[string, string, string, number]>;
  readonly #after: Statement<[number, number], RawRow>;
  readonly #last: Statement<[], { n: number }>;
  readonly #getCursor: Statement<[string], { seq: number }>;
  readonly #setCursor: Statement<[string, number]>;

  constructor(db: Database, opts: OutboxOptions) {
    const table = checkName(opts.table, 'table');
    const idColumn = checkName(opts.idColumn ?? 'id', 'idColumn');
    const cursors = checkName(opts.cursorTable, 'cursorTable');
    this.#now = opts.now ?? Date.now;
    db.exec(`
CREATE TABLE IF NOT EXISTS ${table} (
  seq  INTEGER PRIMARY KEY AUTOINCREMENT,
  ${idColumn} TEXT NOT NULL UNIQUE,
  type TEXT    NOT NULL,
  data TEXT    NOT NULL,
  time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ${cursors} (
  consumer TEXT    PRIMARY KEY,
  seq      INTEGER NOT NULL
) WITHOUT ROWID;`);
    this.#insert = db.prepare(`INSERT OR IGNORE INTO ${table} (${idColumn}, type, data, time) VALUES (?, ?, ?, ?)`);
    this.#after = db.prepare(`SELECT seq, ${idColumn} AS id, type, data, time FROM ${table} WHERE seq > ? ORDER BY seq LIMIT ?`);
    this.#last = db.prepare(`SELECT coalesce(max(seq), 0) AS n FROM ${table}`);
    this.#getCursor = db.prepare(`SELECT seq FROM ${cursors} WHERE consumer = ?`);
    this.#setCursor = db.prepare(
      `INSERT INTO ${cursors} (consumer, seq) VALUES (?, ?) ON CONFLICT (consumer) DO UPDATE SET seq = max(seq, excluded.seq)`);
  }

  /**
   * Queues an event. Run it inside the transaction that makes the change it describes. Returns
   * the row, or undefined when a row with this `id` is already queued (a replayed change).
   */
  enqueue(type: T, id: string, data: Record<string, unknown>): OutboxEntry<T> | undefined {
    const time = this.#now();
    const r = this.#insert.run(id, type, JSON.stringify(data), time);
    if (r.changes === 0) return undefined;
    return { seq: Number(r.lastInsertRowid), id, type, data, time };
  }

  /** Rows with `seq > after`, oldest first, at most `limit`. */
  after(after: number, limit = 1000): OutboxEntry<T>[] {
    return this.#after.all(after, limit).map((r) => ({
      seq: r.seq, id: r.id, type: r.type as T, data: JSON.parse(r.data) as Record<string, unknown>, time: r.time,
    }));
  }

  /** The highest `seq` queued so far (0 for an empty outbox). */
  lastSeq(): number {
    return Number(this.#last.get()?.n ?? 0);
  }

  /** The last `seq` delivered to `consumer` (0 before the first). */
  deliveredSeq(consumer: string): number {
    return this.#getCursor.get(consumer)?.seq ?? 0;
  }

  /** Persists that `consumer` has handled every row up to `seq`. Never moves backwards. */
  markDelivered(consumer: string, seq: number): void {
    this.#setCursor.run(consumer, seq);
  }

  /**
   * Hands every row after `consumer`'s cursor to `fn` in `seq` order, persisting the cursor after
   * each row. Returns how many rows were handed over.
   */
  deliver(consumer: string, fn: (entry: OutboxEntry<T>) => void, opts: DeliverOptions = {}): number {
    let n = 0;
    for (;;) {
      const rows = this.after(this.deliveredSeq(consumer), 256);
      if (rows.length === 0) return n;
      for (const row of rows) {
        try {
          fn(row);
        } catch (err) {
          if (opts.skipFailures !== true) throw err;
        }
        this.markDelivered(consumer, row.seq);
        n++;
      }
    }
  }
}
