/**
 * The node's sqlite file, opened by the one opener (`util/sqlite.ts`: 0600, WAL,
 * `synchronous=FULL`, the shared busy timeout) with 16 KiB pages.
 */
import { openDatabase, type SqliteDatabase } from '../util/sqlite.js';

export type { SqliteDatabase };

/**
 * 16 KiB pages: 64 KiB entries take 4 overflow pages instead of 16, which about doubles blob
 * throughput; only takes effect on a new file (before WAL is enabled).
 */
const NODE_PAGE_SIZE = 16_384;

/**
 * Opens (creating if needed) the node's sqlite file. Pass ':memory:' for tests that do not need
 * a file.
 */
export function openNodeDatabase(path: string): SqliteDatabase {
  return openDatabase(path, { pageSize: NODE_PAGE_SIZE });
}
