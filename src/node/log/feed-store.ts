/**
 * sqlite storage of feeds: local appends (signed here), remote entries (verified before they are
 * stored), the Merkle tree of every feed, and fork proofs.
 *
 * Invariants, per feed:
 * - entries 1..length are stored, each hash-linked to the one before and validly signed;
 * - `head` is the hash of entry `length`;
 * - once forked, the feed accepts no new entries, keeps every entry it had, and keeps the proof.
 *
 * All writes of one call happen in one transaction; in-memory state (lengths, heads, Merkle
 * frontiers) is updated only after the commit, so a failed write leaves memory and disk agreeing.
 */
import { DeaddropError } from '../../util/errors.js';
import { TypedEmitter } from '../events.js';
import { HASH_BYTES } from '../crypto.js';
import type { Signer } from '../crypto.js';
import type { SqliteDatabase } from '../db.js';
import { MAX_BATCH_ENTRIES, ZERO_HASH, decodeEntry, feedLeaf, sameSignedContent, signBatch } from './codec.js';
import { verifyEntries } from './batch-verify.js';
import type { EntryDraft, LogEntry } from './codec.js';
import { decodeForkProof, encodeForkProof, makeForkProof, verifyForkProof } from './fork.js';
import type { ForkProof } from './fork.js';
import {
  EMPTY_ROOT,
  MerkleFrontier,
  decodeTreeHead,
  encodeTreeHead,
  inclusionPath,
  peakPositions,
  rangeHash,
  signTreeHead,
  verifyTreeHead,
} from './merkle.js';
import type { InclusionProof, SignedTreeHead } from './merkle.js';
import { equalBytes, toHex } from '../../util/bytes.js';

/** Public view of one feed. */
export interface FeedInfo {
  readonly author: Uint8Array;
  readonly length: number;
  /** Hash of entry `length`, or null for an empty feed. */
  readonly head: Uint8Array | null;
  readonly forked: boolean;
}

/** Outcome of ingesting remote entries. */
export interface IngestResult {
  readonly stored: LogEntry[];
  duplicates: number;
  readonly forks: ForkProof[];
  /** Entries refused, with the reason; the caller decides whether the sender misbehaved. */
  readonly rejected: { index: number; reason: IngestRejection }[];
}

export type IngestRejection = 'malformed' | 'bad-signature' | 'bad-link' | 'gap' | 'forked';

/** Events of the store. */
export type FeedStoreEvents = {
  /** Entries committed to a feed, in order; `local` for our own appends. */
  append: (info: FeedInfo, entries: LogEntry[], local: boolean) => void;
  /** A feed became forked (first proof only). */
  fork: (proof: ForkProof) => void;
};

interface FeedState {
  id: number;
  author: Uint8Array;
  length: number;
  head: Uint8Array | null;
  forked: boolean;
  frontier: MerkleFrontier | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS feeds (
  id INTEGER PRIMARY KEY,
  author BLOB NOT NULL UNIQUE,
  length INTEGER NOT NULL DEFAULT 0,
  head BLOB,
  forked INTEGER NOT NULL DEFAULT 0,
  tree_head BLOB
);
CREATE TABLE IF NOT EXISTS entries (
  feed INTEGER NOT NULL REFERENCES feeds(id),
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  nodes BLOB NOT NULL,
  raw BLOB NOT NULL,
  PRIMARY KEY (feed, seq)
);
CREATE TABLE IF NOT EXISTS fork_proofs (
  feed INTEGER PRIMARY KEY REFERENCES feeds(id),
  seq INTEGER NOT NULL,
  proof BLOB NOT NULL,
  detected_at INTEGER NOT NULL
);
`;

type Row = Record<string, unknown>;

/** Rows per multi-row INSERT of local appends (100 × 5 parameters, far below sqlite's 32,766). */
const INSERT_ROWS = 100;

/** A feed's state inside an ingest transaction, applied to FeedState after the commit. */
interface Touched {
  length: number;
  head: Uint8Array;
  frontier: MerkleFrontier;
  entries: LogEntry[];
}

/** The tree nodes an entry completes, as the one blob stored with it. */
function concatNodes(nodes: Uint8Array[]): Uint8Array {
  if (nodes.length === 1) return nodes[0]!;
  const out = new Uint8Array(nodes.length * HASH_BYTES);
  nodes.forEach((n, i) => out.set(n, i * HASH_BYTES));
  return out;
}

function bytes(v: unknown): Uint8Array {
  const b = v as Buffer;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function info(s: FeedState): FeedInfo {
  return { author: s.author, length: s.length, head: s.head, forked: s.forked };
}

/**
 * Feeds in a sqlite database (opened by the caller with `openNodeDatabase`).
 * @example
 * const store = new FeedStore(openNodeDatabase(path))
 * store.append(identity, { header: { type: 'post' }, body: utf8('hi') })
 */
export class FeedStore extends TypedEmitter<FeedStoreEvents> {
  readonly db: SqliteDatabase;
  readonly #states = new Map<string, FeedState>();
  readonly #st;

  constructor(db: SqliteDatabase) {
    super();
    this.db = db;
    db.exec(SCHEMA);
    this.#st = {
      feedByAuthor: db.prepare('SELECT id, author, length, head, forked FROM feeds WHERE author = ?'),
      allFeeds: db.prepare('SELECT author FROM feeds ORDER BY id'),
      insertFeed: db.prepare('INSERT INTO feeds (author) VALUES (?)'),
      updateFeed: db.prepare('UPDATE feeds SET length = ?, head = ? WHERE id = ?'),
      markForked: db.prepare('UPDATE feeds SET forked = 1 WHERE id = ?'),
      insertEntry: db.prepare('INSERT INTO entries (feed, seq, hash, nodes, raw) VALUES (?, ?, ?, ?, ?)'),
      insertEntries: db.prepare(`INSERT INTO entries (feed, seq, hash, nodes, raw) VALUES ${Array<string>(INSERT_ROWS).fill('(?, ?, ?, ?, ?)').join(', ')}`),
      getRaw: db.prepare('SELECT raw FROM entries WHERE feed = ? AND seq = ?').pluck(),
      getHash: db.prepare('SELECT hash FROM entries WHERE feed = ? AND seq = ?').pluck(),
      getNodes: db.prepare('SELECT nodes FROM entries WHERE feed = ? AND seq = ?').pluck(),
      range: db.prepare('SELECT raw FROM entries WHERE feed = ? AND seq >= ? AND seq <= ? ORDER BY seq').pluck(),
      insertProof: db.prepare('INSERT OR IGNORE INTO fork_proofs (feed, seq, proof, detected_at) VALUES (?, ?, ?, ?)'),
      getProof: db.prepare('SELECT proof FROM fork_proofs WHERE feed = ?').pluck(),
      setTreeHead: db.prepare('UPDATE feeds SET tree_head = ? WHERE id = ?'),
      getTreeHead: db.prepare('SELECT tree_head FROM feeds WHERE id = ?').pluck(),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Reads

  /** The feed of `author`, or null if nothing is known about it. */
  feed(author: Uint8Array): FeedInfo | null {
    const s = this.#state(author, false);
    return s ? info(s) : null;
  }

  /** Every known feed. */
  feeds(): FeedInfo[] {
    return (this.#st.allFeeds.all() as Row[]).map((r) => info(this.#state(bytes(r.author), false)!));
  }

  /** Encoded entry `seq` of `author`, or null. */
  getRaw(author: Uint8Array, seq: number): Uint8Array | null {
    const s = this.#state(author, false);
    if (!s || seq < 1 || seq > s.length) return null;
    return bytes(this.#st.getRaw.get(s.id, seq));
  }

  /** Entry `seq` of `author`, or null. Stored entries were verified on the way in. */
  get(author: Uint8Array, seq: number): LogEntry | null {
    const raw = this.getRaw(author, seq);
    return raw ? decodeEntry(raw) : null;
  }

  /** The latest entry of `author`, or null. */
  latest(author: Uint8Array): LogEntry | null {
    const s = this.#state(author, false);
    return s && s.length > 0 ? this.get(author, s.length) : null;
  }

  /**
   * Encoded entries `from..to` (inclusive) of `author`, stopping before the total would exceed
   * `maxBytes` (at least one entry is returned when any exists).
   */
  rangeRaw(author: Uint8Array, from: number, to: number, maxBytes = Infinity): Uint8Array[] {
    const s = this.#state(author, false);
    if (!s) return [];
    const out: Uint8Array[] = [];
    let total = 0;
    for (const raw of this.#st.range.iterate(s.id, Math.max(1, from), Math.min(to, s.length)) as Iterable<Buffer>) {
      if (out.length > 0 && total + raw.length > maxBytes) break;
      out.push(bytes(raw));
      total += raw.length;
    }
    return out;
  }

  /** Decoded entries `from..to` (inclusive). */
  range(author: Uint8Array, from: number, to: number): LogEntry[] {
    return this.rangeRaw(author, from, to).map(decodeEntry);
  }

  /** The fork proof of a forked feed, or null. */
  forkProof(author: Uint8Array): ForkProof | null {
    const s = this.#state(author, false);
    if (!s?.forked) return null;
    const raw = this.#st.getProof.get(s.id) as Buffer | undefined;
    return raw ? decodeForkProof(bytes(raw)) : null;
  }

  /** Encoded fork proof of a forked feed, or null. */
  forkProofRaw(author: Uint8Array): Uint8Array | null {
    const s = this.#state(author, false);
    const raw = s?.forked ? (this.#st.getProof.get(s.id) as Buffer | undefined) : undefined;
    return raw ? bytes(raw) : null;
  }

  // ------------------------------------------------------------------------------------------
  // Local appends

  /** Signs and durably appends one entry to the signer's own feed. */
  append(signer: Signer, draft: EntryDraft): LogEntry {
    return this.appendBatch(signer, [draft])[0]!;
  }

  /**
   * Signs and appends entries in one transaction (one fsync), one signature per batch of up to
   * MAX_BATCH_ENTRIES entries.
   */
  appendBatch(signer: Signer, drafts: readonly EntryDraft[]): LogEntry[] {
    if (drafts.length === 0) return [];
    const s = this.#state(signer.publicKey, true)!;
    if (s.forked) throw new DeaddropError('CONFLICT', 'this feed is forked: the same key wrote two histories');
    const frontier = this.#frontier(s).clone();
    let length = s.length;
    let head = s.head ?? ZERO_HASH;
    const now = Date.now();
    const entries: LogEntry[] = [];
    const empty = new Uint8Array(0);
    this.#tx(() => {
      for (let from = 0; from < drafts.length; from += MAX_BATCH_ENTRIES) {
        const items = drafts.slice(from, from + MAX_BATCH_ENTRIES).map((d) => ({ header: d.header, body: d.body ?? empty, timestamp: d.timestamp ?? now }));
        const { entries: batch, levels } = signBatch(signer, { firstSeq: length + 1, prev: head, items });
        // a v2 entry's feed leaf is its hash, the batch tree's leaf (feedLeaf)
        const nodes = frontier.appendTree(levels);
        this.#insertEntries(s.id, batch, nodes);
        for (const e of batch) entries.push(e);
        const last = batch.at(-1)!;
        length = last.seq;
        head = last.hash;
      }
      this.#st.updateFeed.run(length, head, s.id);
    });
    Object.assign(s, { length, head, frontier });
    this.emit('append', info(s), entries, true);
    return entries;
  }

  /**
   * Inserts `batch` with the tree nodes each entry completes, INSERT_ROWS rows per statement
   * execution where it can: each execution costs about as much as the b-tree work of a row.
   */
  #insertEntries(feedId: number, batch: readonly LogEntry[], nodes: readonly Uint8Array[][]): void {
    const params: unknown[] = new Array<unknown>(INSERT_ROWS * 5);
    let i = 0;
    for (; i + INSERT_ROWS <= batch.length; i += INSERT_ROWS) {
      for (let r = 0; r < INSERT_ROWS; r++) {
        const e = batch[i + r]!;
        const p = r * 5;
        params[p] = feedId;
        params[p + 1] = e.seq;
        params[p + 2] = e.hash;
        params[p + 3] = concatNodes(nodes[i + r]!);
        params[p + 4] = e.raw;
      }
      this.#st.insertEntries.run(params);
    }
    for (; i < batch.length; i++) {
      const e = batch[i]!;
      this.#st.insertEntry.run(feedId, e.seq, e.hash, concatNodes(nodes[i]!), e.raw);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Remote entries

  /**
   * Verifies and stores entries received from a peer, in order, in one transaction. An entry is
   * stored only if it is well formed, validly signed, and extends its feed by exactly one
   * (seq = length + 1, prev = head). A validly signed entry that conflicts with a stored one
   * produces a fork proof and marks the feed forked; nothing stored is removed.
   */
  ingest(raws: readonly Uint8Array[]): IngestResult {
    const result: IngestResult = { stored: [], duplicates: 0, forks: [], rejected: [] };
    const touched = new Map<FeedState, Touched>();
    const newForks: { s: FeedState; proof: ForkProof }[] = [];
    const decoded: (LogEntry | null)[] = raws.map((raw) => {
      try {
        return decodeEntry(raw);
      } catch {
        return null;
      }
    });
    // one signature check per run of one signed batch, before the per-entry rules below
    const present = decoded.filter((e): e is LogEntry => e !== null);
    const flags = verifyEntries(present);
    const valid = new Map<LogEntry, boolean>(present.map((e, i) => [e, flags[i]!]));
    this.#tx(() => {
      decoded.forEach((e, index) => {
        const reason = e ? this.#ingestOne(e, valid.get(e)!, touched, newForks, result) : 'malformed';
        if (reason) result.rejected.push({ index, reason });
      });
      for (const [s, t] of touched) this.#st.updateFeed.run(t.length, t.head, s.id);
    });
    for (const [s, t] of touched) {
      Object.assign(s, { length: t.length, head: t.head, frontier: t.frontier });
    }
    for (const { s } of newForks) s.forked = true;
    for (const [s, t] of touched) if (t.entries.length > 0) this.emit('append', info(s), t.entries, false);
    for (const { proof } of newForks) this.emit('fork', proof);
    return result;
  }

  #ingestOne(
    e: LogEntry,
    signed: boolean,
    touched: Map<FeedState, Touched>,
    newForks: { s: FeedState; proof: ForkProof }[],
    result: IngestResult,
  ): IngestRejection | null {
    const s = this.#state(e.author, true)!;
    if (s.forked || newForks.some((f) => f.s === s)) return 'forked';
    let t = touched.get(s);
    if (!t) {
      t = { length: s.length, head: s.head ?? ZERO_HASH, frontier: this.#frontier(s).clone(), entries: [] };
      touched.set(s, t);
    }
    if (e.seq <= t.length) return this.#conflictCheck(s, e, signed, newForks, result);
    if (e.seq > t.length + 1) return 'gap';
    if (!equalBytes(e.prev, t.head)) return 'bad-link';
    if (!signed) return 'bad-signature';
    this.#st.insertEntry.run(s.id, e.seq, e.hash, concatNodes(t.frontier.appendLeaf(feedLeaf(e))), e.raw);
    t.length = e.seq;
    t.head = e.hash;
    t.entries.push(e);
    result.stored.push(e);
    return null;
  }

  #conflictCheck(
    s: FeedState,
    e: LogEntry,
    signed: boolean,
    newForks: { s: FeedState; proof: ForkProof }[],
    result: IngestResult,
  ): IngestRejection | null {
    const storedHash = bytes(this.#st.getHash.get(s.id, e.seq));
    if (equalBytes(storedHash, e.hash)) {
      result.duplicates++;
      return null;
    }
    if (!signed) return 'bad-signature';
    const stored = decodeEntry(bytes(this.#st.getRaw.get(s.id, e.seq)));
    if (sameSignedContent(stored, e)) {
      result.duplicates++;
      return null;
    }
    const proof = makeForkProof(stored, decodeEntry(e.raw.slice()));
    this.#st.markForked.run(s.id);
    this.#st.insertProof.run(s.id, e.seq, encodeForkProof(proof), Date.now());
    newForks.push({ s, proof });
    result.forks.push(proof);
    return null;
  }

  /**
   * Records a fork proof received from someone else. Returns true when it is valid and new for
   * this store (the feed is then marked forked and a `fork` event fires); false otherwise.
   */
  addForkProof(proof: ForkProof | Uint8Array): boolean {
    let p: ForkProof;
    try {
      p = proof instanceof Uint8Array ? decodeForkProof(proof) : proof;
    } catch {
      return false;
    }
    if (!verifyForkProof(p)) return false;
    const s = this.#state(p.a.author, true)!;
    if (s.forked) return false;
    this.#tx(() => {
      this.#st.markForked.run(s.id);
      this.#st.insertProof.run(s.id, p.a.seq, encodeForkProof(p), Date.now());
    });
    s.forked = true;
    this.emit('fork', p);
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Merkle tree

  /** Root of the feed's tree at `size` (default: the whole feed). */
  treeRoot(author: Uint8Array, size?: number): Uint8Array {
    const s = this.#state(author, false);
    const n = size ?? s?.length ?? 0;
    if (!s || n > s.length || n < 0 || !Number.isSafeInteger(n)) throw new RangeError('size beyond the feed length');
    if (n === 0) return EMPTY_ROOT;
    if (n === s.length) return this.#frontier(s).root();
    return rangeHash(0, n, this.#lookup(s));
  }

  /** Inclusion proof of entry `seq` in the tree of `size` entries (default: whole feed). */
  inclusionProof(author: Uint8Array, seq: number, size?: number): InclusionProof {
    const s = this.#state(author, false);
    const n = size ?? s?.length ?? 0;
    if (!s || n > s.length || seq < 1 || seq > n) throw new RangeError('seq/size beyond the feed length');
    return { leafIndex: seq - 1, treeSize: n, path: inclusionPath(seq - 1, n, this.#lookup(s)) };
  }

  /** Signs the current tree head of the signer's own feed and remembers it. */
  signTreeHead(signer: Signer): SignedTreeHead {
    const s = this.#state(signer.publicKey, true)!;
    const head = signTreeHead(signer, s.length, this.treeRoot(signer.publicKey));
    this.#st.setTreeHead.run(encodeTreeHead(head), s.id);
    return head;
  }

  /**
   * Keeps a tree head signed by a feed's author if it is valid, no older than the one kept, and
   * matches our own tree at that size. Returns true when stored.
   */
  putTreeHead(head: SignedTreeHead): boolean {
    if (!verifyTreeHead(head)) return false;
    const s = this.#state(head.author, false);
    if (!s || head.size > s.length) return false;
    const prev = this.treeHead(head.author);
    if (prev && prev.size > head.size) return false;
    if (!equalBytes(this.treeRoot(head.author, head.size), head.root)) return false;
    this.#st.setTreeHead.run(encodeTreeHead(head), s.id);
    return true;
  }

  /** The latest signed tree head kept for a feed, or null. */
  treeHead(author: Uint8Array): SignedTreeHead | null {
    const s = this.#state(author, false);
    const raw = s ? (this.#st.getTreeHead.get(s.id) as Buffer | null) : null;
    return raw ? decodeTreeHead(bytes(raw)) : null;
  }

  // ------------------------------------------------------------------------------------------
  // Internals

  /** Runs `fn` in a transaction; on failure, forgets cached state that may name rolled-back rows. */
  #tx(fn: () => void): void {
    try {
      this.db.transaction(fn)();
    } catch (err) {
      this.#states.clear();
      throw err;
    }
  }

  #lookup(s: FeedState): (level: number, index: number) => Uint8Array {
    return (level, index) => {
      const seq = (index + 1) * 2 ** level;
      const nodes = this.#st.getNodes.get(s.id, seq) as Buffer | undefined;
      if (!nodes || nodes.length < (level + 1) * HASH_BYTES) throw new Error(`missing tree node ${level}/${index}`);
      return bytes(nodes).subarray(level * HASH_BYTES, (level + 1) * HASH_BYTES);
    };
  }

  #frontier(s: FeedState): MerkleFrontier {
    if (!s.frontier) {
      const look = this.#lookup(s);
      const peaks = peakPositions(s.length).map(({ level, index }) => ({ level, hash: look(level, index) }));
      s.frontier = new MerkleFrontier(s.length, peaks);
    }
    return s.frontier;
  }

  #state(author: Uint8Array, create: boolean): FeedState | null {
    const key = toHex(author);
    const cached = this.#states.get(key);
    if (cached) return cached;
    let row = this.#st.feedByAuthor.get(author) as Row | undefined;
    if (!row) {
      if (!create) return null;
      if (author.length !== 32) throw new TypeError('author: expected 32 bytes');
      this.#st.insertFeed.run(author);
      row = this.#st.feedByAuthor.get(author) as Row;
    }
    const s: FeedState = {
      id: Number(row.id),
      author: bytes(row.author),
      length: Number(row.length),
      head: row.head ? bytes(row.head) : null,
      forked: Number(row.forked) === 1,
      frontier: null,
    };
    this.#states.set(key, s);
    return s;
  }
}
