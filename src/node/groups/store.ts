/**
 * GroupStore: the groups of one node in the node's sqlite file (tables `grp_*`).
 *
 * The node stores no other secret at rest (its secrets are re-derived from the seed), but chain
 * keys cannot be re-derived. So every secret column (own and received chain keys, skipped message
 * keys, read plaintexts) is sealed with XChaCha20-Poly1305 under a key derived from the node
 * identity (`derive("group-store", "")`), with the row's location as associated data, as PayPub's
 * `Sealer` does: a copy of the file alone opens nothing, and a sealed value moved to another row
 * does not open. Ops are public to the group and stored raw.
 */
import { concatBytes, toHex } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { aeadOpen, aeadSeal, utf8, wipe } from '../crypto.js';
import type { SqliteDatabase } from '../db.js';
import type { NodeIdentity } from '../identity.js';
import { type ChainState, MAX_SKIPPED_KEYS, type SkippedKey } from './ratchet.js';

const SEAL_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS grp_groups (grp BLOB PRIMARY KEY, joined_at INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grp_ops (grp BLOB NOT NULL, hash BLOB NOT NULL, raw BLOB NOT NULL, PRIMARY KEY (grp, hash));
CREATE TABLE IF NOT EXISTS grp_own (grp BLOB PRIMARY KEY, generation INTEGER NOT NULL, created_at INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS grp_keys (grp BLOB NOT NULL, sender BLOB NOT NULL, generation INTEGER NOT NULL, sealed BLOB NOT NULL,
  PRIMARY KEY (grp, sender, generation));
CREATE TABLE IF NOT EXISTS grp_skipped (id INTEGER PRIMARY KEY AUTOINCREMENT, grp BLOB NOT NULL, sender BLOB NOT NULL,
  generation INTEGER NOT NULL, idx INTEGER NOT NULL, sealed BLOB NOT NULL, UNIQUE (grp, sender, generation, idx));
CREATE TABLE IF NOT EXISTS grp_invites (token_hash BLOB PRIMARY KEY, grp BLOB NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, used_at INTEGER, used_by BLOB);
CREATE TABLE IF NOT EXISTS grp_cursor (feed BLOB PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS grp_stale (grp BLOB PRIMARY KEY);
CREATE TABLE IF NOT EXISTS grp_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, grp BLOB NOT NULL, sender BLOB NOT NULL,
  generation INTEGER NOT NULL, idx INTEGER NOT NULL, received_at INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS grp_held (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, grp BLOB NOT NULL, raw BLOB NOT NULL,
  UNIQUE (kind, raw));
`;

/**
 * What arrived before what opens it: a group message before its sender key or its sender's add
 * op, a sender key before its group's welcome. Kept as received (a message is ciphertext under a
 * sender key, a key is sealed to this node), so a restart loses none: the transport's cursor has
 * moved past the entries that carried them.
 */
export type HeldKind = 'message' | 'key';

/** Where this node stands in a group. */
export type GroupStatus = 'member' | 'removed' | 'left';

/** Our own sending chain and when its generation began. */
export interface OwnChain extends ChainState {
  readonly createdAt: number;
}

/** A message we read (or wrote). */
export interface StoredMessage {
  readonly id: number;
  readonly sender: Uint8Array;
  readonly generation: number;
  readonly index: number;
  readonly receivedAt: number;
  readonly plaintext: Uint8Array;
}

type Row = Record<string, unknown>;
const u8 = (v: unknown): Uint8Array => new Uint8Array(v as Buffer).slice();

function encodeChain(c: ChainState): Uint8Array {
  const out = new Uint8Array(36);
  new DataView(out.buffer).setUint32(0, c.index);
  out.set(c.chainKey, 4);
  return out;
}

function decodeChain(generation: number, b: Uint8Array): ChainState {
  if (b.length !== 36) throw new DeaddropError('CONFLICT', 'node.sqlite: a sealed group key has the wrong size');
  return { generation, index: new DataView(b.buffer, b.byteOffset, 4).getUint32(0), chainKey: b.slice(4) };
}

/** Seals and opens group secrets at rest; the key never leaves this object. */
class Sealer {
  readonly #key: Uint8Array;
  constructor(identity: NodeIdentity) {
    this.#key = identity.derive('group-store', new Uint8Array(0));
  }
  seal(plain: Uint8Array, where: string): Uint8Array {
    return concatBytes(Uint8Array.of(SEAL_VERSION), aeadSeal(this.#key, plain, utf8(where)));
  }
  open(sealed: Uint8Array, where: string): Uint8Array {
    const out = sealed[0] === SEAL_VERSION ? aeadOpen(this.#key, sealed.subarray(1), utf8(where)) : null;
    if (!out) throw new DeaddropError('CONFLICT', `node.sqlite: a sealed group secret (${where.split(':')[0]}) does not open with this node's key`);
    return out;
  }
  destroy(): void {
    wipe(this.#key);
  }
  toJSON(): string {
    return 'Sealer';
  }
}

/** Synchronous access to the group tables. */
export class GroupStore {
  readonly #db: SqliteDatabase;
  readonly #sealer: Sealer;
  readonly #st;

  constructor(db: SqliteDatabase, identity: NodeIdentity) {
    this.#db = db;
    db.exec(SCHEMA);
    this.#sealer = new Sealer(identity);
    this.#st = {
      groups: db.prepare('SELECT grp, joined_at, status FROM grp_groups ORDER BY joined_at'),
      group: db.prepare('SELECT grp, joined_at, status FROM grp_groups WHERE grp = ?'),
      upsertGroup: db.prepare('INSERT INTO grp_groups (grp, joined_at, status) VALUES (?, ?, ?) ON CONFLICT(grp) DO UPDATE SET status = excluded.status'),
      ops: db.prepare('SELECT raw FROM grp_ops WHERE grp = ?').pluck(),
      addOp: db.prepare('INSERT OR IGNORE INTO grp_ops (grp, hash, raw) VALUES (?, ?, ?)'),
      own: db.prepare('SELECT generation, created_at, sealed FROM grp_own WHERE grp = ?'),
      setOwn: db.prepare(`INSERT INTO grp_own (grp, generation, created_at, sealed) VALUES (?, ?, ?, ?)
        ON CONFLICT(grp) DO UPDATE SET generation = excluded.generation, created_at = excluded.created_at, sealed = excluded.sealed`),
      deleteOwn: db.prepare('DELETE FROM grp_own WHERE grp = ?'),
      isStale: db.prepare('SELECT 1 FROM grp_stale WHERE grp = ?').pluck(),
      markStale: db.prepare('INSERT OR IGNORE INTO grp_stale (grp) VALUES (?)'),
      clearStale: db.prepare('DELETE FROM grp_stale WHERE grp = ?'),
      keys: db.prepare('SELECT generation, sealed FROM grp_keys WHERE grp = ? AND sender = ? ORDER BY generation'),
      setKey: db.prepare('INSERT INTO grp_keys (grp, sender, generation, sealed) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET sealed = excluded.sealed'),
      pruneKeys: db.prepare('DELETE FROM grp_keys WHERE grp = ? AND sender = ? AND generation < ?'),
      deleteSenderKeys: db.prepare('DELETE FROM grp_keys WHERE grp = ? AND sender = ?'),
      skipped: db.prepare('SELECT generation, idx, sealed FROM grp_skipped WHERE grp = ? AND sender = ?'),
      addSkipped: db.prepare('INSERT OR IGNORE INTO grp_skipped (grp, sender, generation, idx, sealed) VALUES (?, ?, ?, ?, ?)'),
      useSkipped: db.prepare('DELETE FROM grp_skipped WHERE grp = ? AND sender = ? AND generation = ? AND idx = ?'),
      evictSkipped: db.prepare(`DELETE FROM grp_skipped WHERE grp = ? AND id NOT IN
        (SELECT id FROM grp_skipped WHERE grp = ? ORDER BY id DESC LIMIT ${MAX_SKIPPED_KEYS})`),
      deleteSenderSkipped: db.prepare('DELETE FROM grp_skipped WHERE grp = ? AND sender = ?'),
      addMessage: db.prepare('INSERT INTO grp_messages (grp, sender, generation, idx, received_at, sealed) VALUES (?, ?, ?, ?, ?, ?)'),
      setMessageSealed: db.prepare('UPDATE grp_messages SET sealed = ? WHERE id = ?'),
      messages: db.prepare('SELECT * FROM grp_messages WHERE grp = ? AND id > ? ORDER BY id LIMIT ?'),
      addInvite: db.prepare('INSERT INTO grp_invites (token_hash, grp, created_at, expires_at) VALUES (?, ?, ?, ?)'),
      useInvite: db.prepare('UPDATE grp_invites SET used_at = ?, used_by = ? WHERE token_hash = ? AND grp = ? AND used_at IS NULL AND expires_at > ?'),
      cursor: db.prepare('SELECT seq FROM grp_cursor WHERE feed = ?').pluck(),
      setCursor: db.prepare('INSERT INTO grp_cursor (feed, seq) VALUES (?, ?) ON CONFLICT(feed) DO UPDATE SET seq = MAX(seq, excluded.seq)'),
      hold: db.prepare('INSERT OR IGNORE INTO grp_held (kind, grp, raw) VALUES (?, ?, ?)'),
      trimHeld: db.prepare('DELETE FROM grp_held WHERE kind = ? AND grp = ? AND id NOT IN (SELECT id FROM grp_held WHERE kind = ? AND grp = ? ORDER BY id DESC LIMIT ?)'),
      held: db.prepare('SELECT raw FROM grp_held WHERE kind = ? AND grp = ? ORDER BY id').pluck(),
      release: db.prepare('DELETE FROM grp_held WHERE kind = ? AND raw = ?'),
    };
  }

  /** Runs fn in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  groups(): { group: Uint8Array; joinedAt: number; status: GroupStatus }[] {
    return (this.#st.groups.all() as Row[]).map((r) => ({ group: u8(r.grp), joinedAt: Number(r.joined_at), status: r.status as GroupStatus }));
  }

  status(group: Uint8Array): GroupStatus | null {
    const r = this.#st.group.get(group) as Row | undefined;
    return r ? (r.status as GroupStatus) : null;
  }

  setStatus(group: Uint8Array, status: GroupStatus, at = Date.now()): void {
    this.#st.upsertGroup.run(group, at, status);
  }

  ops(group: Uint8Array): Uint8Array[] {
    return (this.#st.ops.all(group) as Buffer[]).map(u8);
  }

  addOp(group: Uint8Array, hash: Uint8Array, raw: Uint8Array): void {
    this.#st.addOp.run(group, hash, raw);
  }

  own(group: Uint8Array): OwnChain | null {
    const r = this.#st.own.get(group) as Row | undefined;
    if (!r) return null;
    const generation = Number(r.generation);
    const plain = this.#sealer.open(u8(r.sealed), `own:${toHex(group)}:${generation}`);
    const c = decodeChain(generation, plain);
    wipe(plain);
    return { ...c, createdAt: Number(r.created_at) };
  }

  /** Replaces our sending chain (the old chain key is overwritten in the row). */
  setOwn(group: Uint8Array, c: OwnChain): void {
    const plain = encodeChain(c);
    this.#st.setOwn.run(group, c.generation, c.createdAt, this.#sealer.seal(plain, `own:${toHex(group)}:${c.generation}`));
    wipe(plain);
  }

  deleteOwn(group: Uint8Array): void {
    this.#st.deleteOwn.run(group);
    this.#st.clearStale.run(group);
  }

  /**
   * Whether our sending chain must be replaced before we next send: a member departed since it
   * was made, so the departed member may hold it (lazy rotation, groups.md section 5).
   */
  isStale(group: Uint8Array): boolean {
    return this.#st.isStale.get(group) !== undefined;
  }

  /** Marks our sending chain stale (see isStale); GroupMember clears the mark when it rotates. */
  markStale(group: Uint8Array): void {
    this.#st.markStale.run(group);
  }

  clearStale(group: Uint8Array): void {
    this.#st.clearStale.run(group);
  }

  /** Receiving chains of one sender, oldest generation first. */
  senderChains(group: Uint8Array, sender: Uint8Array): ChainState[] {
    return (this.#st.keys.all(group, sender) as Row[]).map((r) => {
      const g = Number(r.generation);
      const plain = this.#sealer.open(u8(r.sealed), `key:${toHex(group)}:${toHex(sender)}:${g}`);
      const c = decodeChain(g, plain);
      wipe(plain);
      return c;
    });
  }

  /** Stores a receiving chain and forgets the sender's generations older than `keepFrom`. */
  setSenderChain(group: Uint8Array, sender: Uint8Array, c: ChainState, keepFrom: number): void {
    const plain = encodeChain(c);
    this.#st.setKey.run(group, sender, c.generation, this.#sealer.seal(plain, `key:${toHex(group)}:${toHex(sender)}:${c.generation}`));
    wipe(plain);
    this.#st.pruneKeys.run(group, sender, keepFrom);
  }

  /** Forgets every chain and skipped key of a sender (a removed member). */
  forgetSender(group: Uint8Array, sender: Uint8Array): void {
    this.#st.deleteSenderKeys.run(group, sender);
    this.#st.deleteSenderSkipped.run(group, sender);
  }

  skipped(group: Uint8Array, sender: Uint8Array): SkippedKey[] {
    return (this.#st.skipped.all(group, sender) as Row[]).map((r) => {
      const generation = Number(r.generation);
      const index = Number(r.idx);
      return { generation, index, messageKey: this.#sealer.open(u8(r.sealed), `skip:${toHex(group)}:${toHex(sender)}:${generation}:${index}`) };
    });
  }

  /** Remembers skipped keys; the oldest beyond MAX_SKIPPED_KEYS per group are evicted. */
  addSkipped(group: Uint8Array, sender: Uint8Array, keys: readonly SkippedKey[]): void {
    for (const k of keys) {
      this.#st.addSkipped.run(group, sender, k.generation, k.index, this.#sealer.seal(k.messageKey, `skip:${toHex(group)}:${toHex(sender)}:${k.generation}:${k.index}`));
    }
    if (keys.length > 0) this.#st.evictSkipped.run(group, group);
  }

  useSkipped(group: Uint8Array, sender: Uint8Array, k: SkippedKey): void {
    this.#st.useSkipped.run(group, sender, k.generation, k.index);
  }

  addMessage(group: Uint8Array, m: Omit<StoredMessage, 'id'>): number {
    // The id is part of the associated data, so the row is written first, then sealed in place.
    const id = Number(this.#st.addMessage.run(group, m.sender, m.generation, m.index, m.receivedAt, new Uint8Array(0)).lastInsertRowid);
    this.#st.setMessageSealed.run(this.#sealer.seal(m.plaintext, `msg:${toHex(group)}:${id}`), id);
    return id;
  }

  messages(group: Uint8Array, after = 0, limit = 100): StoredMessage[] {
    return (this.#st.messages.all(group, after, limit) as Row[]).map((r) => {
      const id = Number(r.id);
      return {
        id, sender: u8(r.sender), generation: Number(r.generation), index: Number(r.idx), receivedAt: Number(r.received_at),
        plaintext: this.#sealer.open(u8(r.sealed), `msg:${toHex(group)}:${id}`),
      };
    });
  }

  /**
   * Records a single-use group invite by the hash of its token (the token itself is a secret and
   * is not stored: whoever reads the database cannot join with it).
   */
  addInvite(tokenHash: Uint8Array, group: Uint8Array, expiresAt: number, now = Date.now()): void {
    this.#st.addInvite.run(tokenHash, group, now, expiresAt);
  }

  /** Atomically marks an unused, unexpired invite of `group` used by `by`; false otherwise. */
  consumeInvite(tokenHash: Uint8Array, group: Uint8Array, by: Uint8Array, now = Date.now()): boolean {
    return this.#st.useInvite.run(now, by, tokenHash, group, now).changes === 1;
  }

  /** The last entry of `feed` the group transport has read (0 for none). */
  cursor(feed: Uint8Array): number {
    return Number((this.#st.cursor.get(feed) as number | undefined) ?? 0);
  }

  setCursor(feed: Uint8Array, seq: number): void {
    this.#st.setCursor.run(feed, seq);
  }

  /** Keeps `raw` (once) until released; beyond `max` held of this kind for this group (all groups for keys), the oldest go. */
  hold(kind: HeldKind, group: Uint8Array | null, raw: Uint8Array, max: number): void {
    const grp = group ?? new Uint8Array(0);
    this.transaction(() => {
      this.#st.hold.run(kind, grp, raw);
      this.#st.trimHeld.run(kind, grp, kind, grp, max);
    });
  }

  /** What is held of `kind` for `group` (null: the kind's all-groups pool), oldest first. */
  held(kind: HeldKind, group: Uint8Array | null): Uint8Array[] {
    return (this.#st.held.all(kind, group ?? new Uint8Array(0)) as Buffer[]).map(u8);
  }

  /** Forgets a held item (opened, or no longer worth keeping). */
  release(kind: HeldKind, raw: Uint8Array): void {
    this.#st.release.run(kind, raw);
  }

  /** Wipes the sealing key (the database stays open; it belongs to the node). */
  destroy(): void {
    this.#sealer.destroy();
  }
}
