import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox, type OutboxEntry } from '../../src/util/outbox.js';
import { openDatabase, type SqliteDatabase } from '../../src/util/sqlite.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dd-outbox-'));
  dirs.push(dir);
  return join(dir, 'outbox.db');
}

const opts = { table: 'events', cursorTable: 'events_delivery' } as const;

describe('Outbox', () => {
  it('queues rows in the caller transaction: a rollback leaves no row', () => {
    const db = openDatabase(':memory:');
    const outbox = new Outbox(db, opts);
    expect(() => db.transaction(() => {
      outbox.enqueue('a', 'a:1', { n: 1 });
      throw new Error('the state change failed');
    })()).toThrow('the state change failed');
    expect(outbox.lastSeq()).toBe(0);
    db.transaction(() => outbox.enqueue('a', 'a:2', { n: 2 }))();
    expect(outbox.after(0).map((e) => e.id)).toEqual(['a:2']);
    db.close();
  });

  it('keeps one row per stable id', () => {
    const db = openDatabase(':memory:');
    const outbox = new Outbox(db, opts);
    const first = outbox.enqueue('a', 'same', { n: 1 });
    expect(first?.seq).toBe(1);
    expect(outbox.enqueue('a', 'same', { n: 2 })).toBeUndefined();
    expect(outbox.after(0)).toEqual([first]);
    db.close();
  });

  it('delivers in seq order, once per consumer, each consumer with its own cursor', () => {
    const db = openDatabase(':memory:');
    const outbox = new Outbox<'x' | 'y'>(db, { ...opts, now: () => 7 });
    for (let i = 1; i <= 300; i++) outbox.enqueue(i % 2 === 0 ? 'x' : 'y', `e:${i}`, { i });
    const a: OutboxEntry[] = [];
    expect(outbox.deliver('a', (e) => a.push(e))).toBe(300);
    expect(a.map((e) => e.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(a[0]).toEqual({ seq: 1, id: 'e:1', type: 'y', data: { i: 1 }, time: 7 });
    expect(outbox.deliver('a', () => expect.unreachable())).toBe(0);
    expect(outbox.deliveredSeq('b')).toBe(0);
    expect(outbox.deliver('b', () => undefined)).toBe(300);
    db.close();
  });

  it('leaves a row whose consumer throws undelivered, unless told to skip failures', () => {
    const db = openDatabase(':memory:');
    const outbox = new Outbox(db, opts);
    for (const id of ['1', '2', '3']) outbox.enqueue('t', id, {});
    const seen: string[] = [];
    expect(() => outbox.deliver('c', (e) => {
      if (e.id === '2') throw new Error('consumer down');
      seen.push(e.id);
    })).toThrow('consumer down');
    expect(outbox.deliveredSeq('c')).toBe(1);
    outbox.deliver('c', (e) => seen.push(e.id));
    expect(seen).toEqual(['1', '2', '3']);

    const skipped: string[] = [];
    expect(outbox.deliver('d', (e) => {
      if (e.id === '2') throw new Error('consumer down');
      skipped.push(e.id);
    }, { skipFailures: true })).toBe(3);
    expect(skipped).toEqual(['1', '3']);
    db.close();
  });

  it('never moves a cursor backwards', () => {
    const db = openDatabase(':memory:');
    const outbox = new Outbox(db, opts);
    outbox.markDelivered('c', 5);
    outbox.markDelivered('c', 3);
    expect(outbox.deliveredSeq('c')).toBe(5);
    db.close();
  });

  it('survives a restart: rows and cursors are on disk, delivery resumes after the cursor', () => {
    const file = tempFile();
    let db: SqliteDatabase = openDatabase(file);
    let outbox = new Outbox(db, opts);
    for (const id of ['1', '2', '3']) outbox.enqueue('t', id, {});
    // A crash after handing over row 2 but before its cursor moved: row 2 comes again.
    outbox.markDelivered('bus', 1);
    db.close();
    db = openDatabase(file);
    outbox = new Outbox(db, opts);
    const again: string[] = [];
    outbox.deliver('bus', (e) => again.push(e.id));
    expect(again).toEqual(['2', '3']);
    // seq is never reused, even after the newest row is gone.
    db.prepare('DELETE FROM events WHERE seq = 3').run();
    expect(outbox.enqueue('t', '4', {})?.seq).toBe(4);
    db.close();
  });

  it('opens tables written before it existed, with their own id column name', () => {
    const db = openDatabase(':memory:');
    db.exec(`CREATE TABLE dd_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, data TEXT NOT NULL, time INTEGER NOT NULL);
      INSERT INTO dd_outbox (event_id, type, data, time) VALUES ('old', 'drop.pending', '{"k":1}', 5);
      CREATE TABLE dd_delivery (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;`);
    const outbox = new Outbox(db, { table: 'dd_outbox', idColumn: 'event_id', cursorTable: 'dd_delivery' });
    expect(outbox.after(0)).toEqual([{ seq: 1, id: 'old', type: 'drop.pending', data: { k: 1 }, time: 5 }]);
    db.close();
  });

  it('refuses table names that are not plain identifiers', () => {
    const db = openDatabase(':memory:');
    expect(() => new Outbox(db, { table: 'x; DROP TABLE y', cursorTable: 'c' })).toThrow(TypeError);
    db.close();
  });
});
