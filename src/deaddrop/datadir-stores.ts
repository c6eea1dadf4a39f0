/**
 * Where a datadir keeps its dead-drop state, shared by the daemon and the CLI:
 *
 * - `drops.sqlite`: the watcher store of the wallet's identity (drops found, their event
 *   outbox, the candidate index the wallet's watcher builds). The daemon follows it under the
 *   cursor name {@link DAEMON_WATCHER}, `deaddrop watch` under {@link CLI_WATCHER}; both may run
 *   at once (writes are idempotent per drop and block, each has its own cursor and outbox
 *   consumer, so neither swallows the other's events).
 * - `index.sqlite`: the public index a daemon builds while the wallet is locked (no keys).
 * - `introductions.sqlite`: the introducer's ledger (./introductions.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DropStore, type DropRecord } from './watch/drop-store.js';
import { addressFingerprint } from './publish.js';

export const DROPS_DB = 'drops.sqlite';
export const INDEX_DB = 'index.sqlite';

/** Cursor and outbox-consumer names. */
export const DAEMON_WATCHER = 'drops';
export const CLI_WATCHER = 'cli';

const IDENTITY_KEY = 'wallet_identity';

/**
 * Opens `<datadir>/drops.sqlite` for the wallet whose silent-payment address is `address`.
 * `seedChanged` is true when the store was built for another seed (the datadir was
 * re-initialized): the caller must rescan from the birthday. The fingerprint is then updated.
 */
export function openDropsStore(datadir: string, address: string): { store: DropStore; seedChanged: boolean } {
  const store = DropStore.open(join(datadir, DROPS_DB));
  const fp = addressFingerprint(address);
  const previous = store.getMeta(IDENTITY_KEY);
  if (previous !== fp) store.setMeta(IDENTITY_KEY, fp);
  return { store, seedChanged: previous !== undefined && previous !== fp };
}

/** The drops recorded in a datadir, without unlocking anything ([] when there is no store yet). */
export function listLocalDrops(datadir: string): DropRecord[] {
  const path = join(datadir, DROPS_DB);
  if (!existsSync(path)) return [];
  const store = DropStore.open(path);
  try {
    return store.listDrops();
  } finally {
    store.close();
  }
}

/** A drop as the CLI and API show it. */
export interface DropJson {
  readonly id: string;
  readonly status: string;
  readonly txid: string;
  readonly vout: number;
  readonly height: number | null;
  readonly blockHash: string | null;
  readonly endpoints: readonly string[];
  readonly message: string;
  readonly nodeKey: string;
  readonly token: string;
  readonly expiresAt: number | null;
  readonly firstSeen: number;
  readonly updated: number;
}

export function dropToJson(d: DropRecord): DropJson {
  const p = d.payload;
  return {
    id: d.id, status: d.status, txid: d.txid, vout: d.vout, height: d.height, blockHash: d.blockHash,
    endpoints: Array.isArray(p.endpoints) ? (p.endpoints as string[]) : [],
    message: typeof p.message === 'string' ? p.message : '',
    nodeKey: typeof p.nodeKey === 'string' ? p.nodeKey : '',
    token: typeof p.token === 'string' ? p.token : '',
    expiresAt: typeof p.expiresAt === 'number' ? p.expiresAt : null,
    firstSeen: d.firstSeen, updated: d.updated,
  };
}
