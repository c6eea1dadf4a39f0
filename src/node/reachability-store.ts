/**
 * How to reach contacts and be reached: what the daemon's node feature keeps next to the node's
 * own tables in `node.sqlite` (tables prefixed `dd_`, so the node's schema stays its own):
 *
 * - `dd_peers`, one row per contact: its silent-payment address (learned from its contact card,
 *   see ./contact-card.ts; needed to address a beacon drop to it), whether we sent it our card,
 *   the endpoints it last saw us at (on a session our whereabouts reach it), and the endpoints of
 *   the last beacon drop we sent it.
 * - `dd_intros`, one row per introduction found on chain (key: the pairwise key): bootstrap
 *   status `pending` | `done` | `rejected` | `expired`, attempts and the last error.
 * - `dd_meta`: the node's current endpoints and listening port (for `deaddrop drop send` and restarts).
 *
 * Nothing secret is stored here.
 */
import type { SqliteDatabase } from './db.js';
import { toHex } from '../util/bytes.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS dd_peers (
  node BLOB PRIMARY KEY,
  sp_address TEXT,
  card_sent_at INTEGER,
  known_endpoints TEXT,
  beacon_endpoints TEXT,
  beacon_txid TEXT,
  beacon_at INTEGER
);
CREATE TABLE IF NOT EXISTS dd_intros (
  node_key TEXT PRIMARY KEY,
  drop_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'rejected', 'expired')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  contact TEXT,
  updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dd_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/** Per-contact state of the node feature. */
export interface PeerState {
  readonly spAddress: string | null;
  readonly cardSentAt: number | null;
  readonly knownEndpoints: string[] | null;
  readonly beaconEndpoints: string[] | null;
  readonly beaconTxid: string | null;
  readonly beaconAt: number | null;
}

export type IntroStatus = 'pending' | 'done' | 'rejected' | 'expired';

/** Bootstrap state of one introduction found on chain. */
export interface IntroState {
  readonly nodeKey: string;
  readonly dropId: string;
  readonly status: IntroStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly contact: string | null;
}

interface PeerRow {
  sp_address: string | null;
  card_sent_at: number | null;
  known_endpoints: string | null;
  beacon_endpoints: string | null;
  beacon_txid: string | null;
  beacon_at: number | null;
}

interface IntroRow {
  node_key: string;
  drop_id: string;
  status: IntroStatus;
  attempts: number;
  last_error: string | null;
  contact: string | null;
}

function list(json: string | null): string[] | null {
  if (json === null) return null;
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null;
  } catch {
    return null;
  }
}

const EMPTY: PeerState = { spAddress: null, cardSentAt: null, knownEndpoints: null, beaconEndpoints: null, beaconTxid: null, beaconAt: null };

/** Table access; synchronous, on the node's own database connection or a short-lived one. */
export class ReachabilityStore {
  readonly #db: SqliteDatabase;

  constructor(db: SqliteDatabase) {
    this.#db = db;
    db.exec(SCHEMA);
  }

  peer(node: Uint8Array): PeerState {
    const r = this.#db.prepare<[Uint8Array], PeerRow>('SELECT * FROM dd_peers WHERE node = ?').get(node);
    if (!r) return EMPTY;
    return {
      spAddress: r.sp_address, cardSentAt: r.card_sent_at, knownEndpoints: list(r.known_endpoints),
      beaconEndpoints: list(r.beacon_endpoints), beaconTxid: r.beacon_txid, beaconAt: r.beacon_at,
    };
  }

  #setPeer(node: Uint8Array, column: string, value: string | number | null): void {
    this.#db.prepare(`INSERT INTO dd_peers (node, ${column}) VALUES (?, ?) ON CONFLICT(node) DO UPDATE SET ${column} = excluded.${column}`).run(node, value);
  }

  setAddress(node: Uint8Array, spAddress: string): void {
    this.#setPeer(node, 'sp_address', spAddress);
  }

  markCardSent(node: Uint8Array, at = Date.now()): void {
    this.#setPeer(node, 'card_sent_at', at);
  }

  /** The endpoints `node` saw us at (our whereabouts reach it on every session). */
  setKnownEndpoints(node: Uint8Array, endpoints: readonly string[]): void {
    this.#setPeer(node, 'known_endpoints', JSON.stringify(endpoints));
  }

  recordBeacon(node: Uint8Array, endpoints: readonly string[], txid: string, at = Date.now()): void {
    this.#db.prepare(
      `INSERT INTO dd_peers (node, beacon_endpoints, beacon_txid, beacon_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(node) DO UPDATE SET beacon_endpoints = excluded.beacon_endpoints, beacon_txid = excluded.beacon_txid, beacon_at = excluded.beacon_at`,
    ).run(node, JSON.stringify(endpoints), txid, at);
  }

  intro(nodeKey: string): IntroState | null {
    const r = this.#db.prepare<[string], IntroRow>('SELECT * FROM dd_intros WHERE node_key = ?').get(nodeKey);
    return r ? { nodeKey: r.node_key, dropId: r.drop_id, status: r.status, attempts: r.attempts, lastError: r.last_error, contact: r.contact } : null;
  }

  /** Records an attempt's outcome (attempts + 1 unless `status` is expired). */
  setIntro(nodeKey: string, dropId: string, status: IntroStatus, detail: { error?: string; contact?: Uint8Array } = {}): void {
    this.#db.prepare(
      `INSERT INTO dd_intros (node_key, drop_id, status, attempts, last_error, contact, updated) VALUES (@k, @d, @s, @a, @e, @c, @u)
       ON CONFLICT(node_key) DO UPDATE SET status = excluded.status, attempts = dd_intros.attempts + excluded.attempts,
         last_error = excluded.last_error, contact = COALESCE(excluded.contact, dd_intros.contact), updated = excluded.updated`,
    ).run({
      k: nodeKey, d: dropId, s: status, a: status === 'expired' ? 0 : 1, e: detail.error ?? null,
      c: detail.contact ? toHex(detail.contact) : null, u: Date.now(),
    });
  }

  intros(): IntroState[] {
    return this.#db.prepare<[], IntroRow>('SELECT * FROM dd_intros ORDER BY updated').all()
      .map((r) => ({ nodeKey: r.node_key, dropId: r.drop_id, status: r.status, attempts: r.attempts, lastError: r.last_error, contact: r.contact }));
  }

  #meta(key: string): string | null {
    return this.#db.prepare<[string], { value: string }>('SELECT value FROM dd_meta WHERE key = ?').get(key)?.value ?? null;
  }

  #setMeta(key: string, value: string): void {
    this.#db.prepare('INSERT INTO dd_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** The endpoints the node last published ([] if it never ran). */
  endpoints(): string[] {
    return list(this.#meta('endpoints')) ?? [];
  }

  /** The port the node last listened on, or null. */
  port(): number | null {
    const v = Number(this.#meta('port'));
    return Number.isInteger(v) && v > 0 && v < 65_536 ? v : null;
  }

  setListening(port: number, endpoints: readonly string[]): void {
    this.#setMeta('port', String(port));
    this.#setMeta('endpoints', JSON.stringify(endpoints));
  }
}
