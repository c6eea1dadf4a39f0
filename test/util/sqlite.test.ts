import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUSY_TIMEOUT_MS, openDatabase } from '../../src/util/sqlite.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('openDatabase', () => {
  it('creates the file 0600 even under a permissive umask, in WAL with the shared busy timeout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dd-sqlite-'));
    dirs.push(dir);
    const old = process.umask(0o022);
    try {
      const db = openDatabase(join(dir, 'x.db'));
      db.exec('CREATE TABLE t (a)');
      expect(statSync(join(dir, 'x.db')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'x.db-wal')).mode & 0o777).toBe(0o600);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('busy_timeout', { simple: true })).toBe(BUSY_TIMEOUT_MS);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      db.close();
    } finally {
      process.umask(old);
    }
  });
});
