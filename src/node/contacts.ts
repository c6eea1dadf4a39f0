/**
 * Contacts, invites, follows and small node metadata, in the node's sqlite file.
 * Nothing secret is stored: invite tokens and pairwise keys are re-derived from the identity.
 */
import type { SqliteDatabase } from './db.js';
import { toHex } from '../util/bytes.js';

/** A node we replicate with. */
export interface Contact {
  /** Ed25519 identity key (also its feed id). */
  readonly node: Uint8Array;
  /** The per-relationship key announced in the introduction (ours if we invited, theirs otherwise). */
  readonly pairwiseKey: Uint8Array | null;
  readonly label: string | null;
  /** Last known endpoints, best first. */
  readonly endpoints: string[];
  /** Seq of the whereabouts record those endpoints came from (0 if none). */
  readonly whereaboutsSeq: number;
  readonly addedAt: number;
  readonly lastSeen: number | null;
}

/** A pending or used invite. */
export interface IntroductionTokenRow {
  readonly tokenId: Uint8Array;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS contacts (
  node BLOB PRIMARY KEY,
  pairwise_key BLOB,
  label TEXT,
  endpoints TEXT NOT NULL DEFAULT '[]',
  whereabouts_seq INTEGER NOT NULL DEFAULT 0,
  added_at INTEGER NOT NULL,
  last_seen INTEGER
);
CREATE TABLE IF NOT EXISTS invites (
  token_id BLOB PRIMARY KEY,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  used_by BLOB
);
CREATE TABLE IF NOT EXISTS follows (feed BLOB PRIMARY KEY);
CREATE TABLE IF NOT EXISTS node_meta (key TEXT PRIMARY KEY, value BLOB);
`;

type Row = Record<string, unknown>;

function u8(v: unknown): Uint8Array {
  const b = v as Buffer;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
}

function toContact(r: Row): Contact {
  let endpoints: string[] = [];
  try {
    const parsed: unknown = JSON.parse(String(r.endpoints));
    if (Array.isArray(parsed)) endpoints = parsed.filter((e): e is string => typeof e === 'string');
  } catch {
    endpoints = [];
  }
  return {
    node: u8(r.node),
    pairwiseKey: r.pairwise_key ? u8(r.pairwise_key) : null,
    label: (r.label as string | null) ?? null,
    endpoints,
    whereaboutsSeq: Number(r.whereabouts_seq),
    addedAt: Number(r.added_at),
    lastSeen: r.last_seen === null ? null : Number(r.last_seen),
  };
}

/** Table access for contacts, invites, follows and metadata. */
export class ContactStore {
  readonly #st;
  readonly #cache = new Map<string, Contact>();

  readonly #db: SqliteDatabase;

  constructor(db: SqliteDatabase) {
    this.#db = db;
    db.exec(SCHEMA);
    this.#st = {
      all: db.prepare('SELECT * FROM contacts ORDER BY added_at'),
      one: db.prepare('SELECT * FROM contacts WHERE node = ?'),
      upsert: db.prepare(
        `INSERT INTO contacts (node, pairwise_key, label, endpoints, added_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(node) DO UPDATE SET pairwise_key = COALESCE(excluded.pairwise_key, pairwise_key),
           label = COALESCE(excluded.label, label), endpoints = excluded.endpoints`,
      ),
      setEndpoints: db.prepare('UPDATE contacts SET endpoints = ?, whereabouts_seq = ? WHERE node = ?'),
      seen: db.prepare('UPDATE contacts SET last_seen = ? WHERE node = ?'),
      insertInvite: db.prepare('INSERT INTO invites (token_id, created_at, expires_at) VALUES (?, ?, ?)'),
      getIntroductionToken: db.prepare('SELECT * FROM invites WHERE token_id = ?'),
      useInvite: db.prepare('UPDATE invites SET used_at = ?, used_by = ? WHERE token_id = ? AND used_at IS NULL AND expires_at > ?'),
      follows: db.prepare('SELECT feed FROM follows').pluck(),
      follow: db.prepare('INSERT OR IGNORE INTO follows (feed) VALUES (?)'),
      getMeta: db.prepare('SELECT value FROM node_meta WHERE key = ?').pluck(),
      setMeta: db.prepare('INSERT INTO node_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    };
    for (const r of this.#st.all.all() as Row[]) {
      const c = toContact(r);
      this.#cache.set(toHex(c.node), c);
    }
  }

  /** All contacts, oldest first. */
  list(): Contact[] {
    return [...this.#cache.values()];
  }

  get(node: Uint8Array): Contact | null {
    return this.#cache.get(toHex(node)) ?? null;
  }

  has(node: Uint8Array): boolean {
    return this.#cache.has(toHex(node));
  }

  /** Adds or updates a contact; returns it and whether it is new. */
  add(c: { node: Uint8Array; pairwiseKey?: Uint8Array | null; label?: string | null; endpoints: string[] }): { contact: Contact; added: boolean } {
    const existing = this.get(c.node);
    const endpoints = [...new Set([...c.endpoints, ...(existing?.endpoints ?? [])])].slice(0, 8);
    this.#st.upsert.run(c.node, c.pairwiseKey ?? null, c.label ?? null, JSON.stringify(endpoints), Date.now());
    const contact = toContact(this.#st.one.get(c.node) as Row);
    this.#cache.set(toHex(c.node), contact);
    return { contact, added: existing === null };
  }

  /** Replaces a contact's endpoints with those of a newer whereabouts record. */
  setEndpoints(node: Uint8Array, endpoints: string[], whereaboutsSeq: number): void {
    const c = this.get(node);
    if (!c) return;
    this.#st.setEndpoints.run(JSON.stringify(endpoints), whereaboutsSeq, node);
    this.#cache.set(toHex(node), { ...c, endpoints, whereaboutsSeq });
  }

  markSeen(node: Uint8Array, at = Date.now()): void {
    const c = this.get(node);
    if (!c) return;
    this.#st.seen.run(at, node);
    this.#cache.set(toHex(node), { ...c, lastSeen: at });
  }

  createIntroductionToken(tokenId: Uint8Array, expiresAt: number): void {
    this.#st.insertInvite.run(tokenId, Date.now(), expiresAt);
  }

  getIntroductionToken(tokenId: Uint8Array): IntroductionTokenRow | null {
    const r = this.#st.getIntroductionToken.get(tokenId) as Row | undefined;
    if (!r) return null;
    return {
      tokenId: u8(r.token_id),
      createdAt: Number(r.created_at),
      expiresAt: Number(r.expires_at),
      usedAt: r.used_at === null ? null : Number(r.used_at),
    };
  }

  /** Atomically marks an unused, unexpired invite used. False if it was used or expired meanwhile. */
  consumeIntroductionToken(tokenId: Uint8Array, by: Uint8Array, now = Date.now()): boolean {
    return this.#st.useInvite.run(now, by, tokenId, now).changes === 1;
  }

  follows(): Uint8Array[] {
    return (this.#st.follows.all() as Buffer[]).map(u8);
  }

  follow(feed: Uint8Array): void {
    this.#st.follow.run(feed);
  }

  getMeta(key: string): Uint8Array | null {
    const v = this.#st.getMeta.get(key) as Buffer | undefined;
    return v ? u8(v) : null;
  }

  setMeta(key: string, value: Uint8Array): void {
    this.#st.setMeta.run(key, value);
  }

  /** Runs fn in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }
}
