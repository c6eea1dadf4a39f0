import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openNodeDatabase } from '../../src/node/db.js';
import type { SqliteDatabase } from '../../src/node/db.js';
import { FeedStore } from '../../src/node/log/feed-store.js';
import { createEntry, decodeEntry, feedLeaf } from '../../src/node/log/codec.js';
import type { LogEntry } from '../../src/node/log/codec.js';
import { decodeForkProof, encodeForkProof, makeForkProof, verifyForkProof } from '../../src/node/log/fork.js';
import type { ForkProof } from '../../src/node/log/fork.js';
import { verifyInclusion, verifyTreeHead } from '../../src/node/log/merkle.js';
import { ed25519FromSeed, signerFromKeyPair, utf8 } from '../../src/node/crypto.js';
import { toHex } from '../../src/util/bytes.js';

const alice = signerFromKeyPair(ed25519FromSeed(new Uint8Array(32).fill(1)));
const bob = signerFromKeyPair(ed25519FromSeed(new Uint8Array(32).fill(2)));

const cleanup: (() => void)[] = [];
afterEach(() => {
  while (cleanup.length) cleanup.pop()!();
});

function tempDb(): { db: SqliteDatabase; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dd-feed-'));
  const path = join(dir, 'node.sqlite');
  const db = openNodeDatabase(path);
  cleanup.push(() => {
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { db, path };
}

const post = (i: number) => ({ header: { type: 'post' }, body: utf8(`message ${i}`) });

describe('FeedStore local appends', () => {
  it('appends, reads back, and survives a reopen (durable)', () => {
    const { db, path } = tempDb();
    const store = new FeedStore(db);
    const e1 = store.append(alice, post(1));
    const batch = store.appendBatch(alice, [post(2), post(3), post(4)]);
    expect(e1.seq).toBe(1);
    expect(batch.map((e) => e.seq)).toEqual([2, 3, 4]);
    expect(toHex(batch[0]!.prev)).toBe(toHex(e1.hash));
    expect(store.feed(alice.publicKey)).toMatchObject({ length: 4, forked: false });
    expect(toHex(store.latest(alice.publicKey)!.hash)).toBe(toHex(batch[2]!.hash));
    expect(store.range(alice.publicKey, 2, 3).map((e) => e.seq)).toEqual([2, 3]);
    expect(store.get(alice.publicKey, 5)).toBeNull();
    const root = store.treeRoot(alice.publicKey);
    db.close();

    const reopened = new FeedStore(openNodeDatabase(path));
    expect(reopened.feed(alice.publicKey)).toMatchObject({ length: 4 });
    expect(toHex(reopened.treeRoot(alice.publicKey))).toBe(toHex(root));
    const e5 = reopened.append(alice, post(5));
    expect(toHex(e5.prev)).toBe(toHex(batch[2]!.hash));
    reopened.db.close();
  });

  it('emits append events after commit', () => {
    const store = new FeedStore(tempDb().db);
    const seen: number[] = [];
    store.on('append', (feed, entries, local) => {
      expect(local).toBe(true);
      expect(feed.length).toBe(entries.at(-1)!.seq);
      seen.push(...entries.map((e) => e.seq));
    });
    store.appendBatch(alice, [post(1), post(2)]);
    expect(seen).toEqual([1, 2]);
  });
});

describe('FeedStore remote entries', () => {
  function source(n: number): LogEntry[] {
    const s = new FeedStore(tempDb().db);
    return s.appendBatch(alice, Array.from({ length: n }, (_, i) => post(i + 1)));
  }

  it('stores verified entries in order, counts duplicates, and mirrors the tree', () => {
    const entries = source(6);
    const store = new FeedStore(tempDb().db);
    const r1 = store.ingest(entries.slice(0, 4).map((e) => e.raw));
    expect(r1.stored.length).toBe(4);
    const r2 = store.ingest(entries.slice(2).map((e) => e.raw));
    expect(r2).toMatchObject({ duplicates: 2, rejected: [], forks: [] });
    expect(r2.stored.map((e) => e.seq)).toEqual([5, 6]);
    expect(store.feed(alice.publicKey)!.length).toBe(6);
  });

  it('rejects bad signatures, gaps, bad links and garbage without storing them', () => {
    const entries = source(3);
    const store = new FeedStore(tempDb().db);
    const forged = entries[0]!.raw.slice();
    forged[forged.length - 1] = forged[forged.length - 1]! ^ 1;
    const r = store.ingest([forged, entries[1]!.raw, utf8('garbage')]);
    expect(r.rejected).toEqual([
      { index: 0, reason: 'bad-signature' },
      { index: 1, reason: 'gap' },
      { index: 2, reason: 'malformed' },
    ]);
    expect(store.feed(alice.publicKey)!.length).toBe(0);
    // an entry 2 signed by alice but linked to something else
    store.ingest([entries[0]!.raw]);
    const badLink = createEntry(alice, { seq: 2, prev: entries[2]!.hash, timestamp: 1, header: { type: 'x' }, body: new Uint8Array() });
    expect(store.ingest([badLink.raw]).rejected).toEqual([{ index: 0, reason: 'bad-link' }]);
    // an entry whose author key did not sign it
    const impostor = createEntry(bob, { seq: 2, prev: entries[0]!.hash, timestamp: 1, header: { type: 'x' }, body: new Uint8Array() }).raw.slice();
    impostor.set(alice.publicKey, 1);
    expect(store.ingest([impostor]).rejected[0]!.reason).toBe('bad-signature');
    expect(store.feed(alice.publicKey)!.length).toBe(1);
  });
});

describe('fork detection', () => {
  function branches(): { left: LogEntry[]; right: LogEntry[] } {
    const a = new FeedStore(tempDb().db);
    const b = new FeedStore(tempDb().db);
    const common = a.appendBatch(alice, [post(1)]);
    b.ingest(common.map((e) => e.raw));
    const left = [...common, ...a.appendBatch(alice, [post(2), post(3)])];
    const right = [...common, ...b.appendBatch(alice, [{ header: { type: 'post' }, body: utf8('other history') }])];
    return { left, right };
  }

  it('detects equivocation, keeps all stored data, and produces a portable proof', () => {
    const { left, right } = branches();
    const store = new FeedStore(tempDb().db);
    const forks: ForkProof[] = [];
    store.on('fork', (p) => forks.push(p));
    store.ingest(left.map((e) => e.raw));
    const r = store.ingest([right[1]!.raw]);
    expect(r.forks.length).toBe(1);
    expect(forks.length).toBe(1);
    const info = store.feed(alice.publicKey)!;
    expect(info).toMatchObject({ forked: true, length: 3 });
    for (const e of left) expect(toHex(store.get(alice.publicKey, e.seq)!.hash)).toBe(toHex(e.hash));
    // nothing more is accepted for a forked feed
    expect(store.ingest([right[1]!.raw]).rejected[0]!.reason).toBe('forked');

    // the proof stands alone: decode from bytes, verify without any store
    const bytes = encodeForkProof(store.forkProof(alice.publicKey)!);
    const proof = decodeForkProof(bytes.slice());
    expect(verifyForkProof(proof)).toBe(true);
    expect(proof.a.seq).toBe(2);

    // another store believes the proof; only once
    const other = new FeedStore(tempDb().db);
    expect(other.addForkProof(bytes)).toBe(true);
    expect(other.addForkProof(bytes)).toBe(false);
    expect(other.feed(alice.publicKey)!.forked).toBe(true);
  });

  it('rejects non-proofs: same entry twice, different authors, different seqs, bad signatures', () => {
    const { left, right } = branches();
    const e2 = left[1]!;
    const same = makeForkProof(e2, decodeEntry(e2.raw.slice()));
    expect(verifyForkProof(same)).toBe(false);
    const bobEntry = createEntry(bob, { seq: 2, prev: left[0]!.hash, timestamp: 1, header: { type: 'x' }, body: new Uint8Array() });
    expect(verifyForkProof(makeForkProof(e2, bobEntry))).toBe(false);
    expect(verifyForkProof(makeForkProof(left[2]!, right[1]!))).toBe(false);
    const forgedRaw = right[1]!.raw.slice();
    forgedRaw[forgedRaw.length - 2] = forgedRaw[forgedRaw.length - 2]! ^ 1;
    expect(verifyForkProof(makeForkProof(e2, decodeEntry(forgedRaw)))).toBe(false);
    const store = new FeedStore(tempDb().db);
    expect(store.addForkProof(makeForkProof(e2, decodeEntry(forgedRaw)))).toBe(false);
    expect(store.addForkProof(utf8('not a proof'))).toBe(false);
    expect(store.feed(alice.publicKey)?.forked ?? false).toBe(false);
  });

  it('an author cannot keep appending to its own forked feed', () => {
    const { left, right } = branches();
    const store = new FeedStore(tempDb().db);
    store.ingest(right.map((e) => e.raw));
    store.ingest([left[1]!.raw]);
    expect(() => store.append(alice, post(9))).toThrow(/forked/);
  });
});

describe('Merkle proofs over a feed', () => {
  it('proves every entry against one signed root, also from a replica and after reopen', () => {
    const { db, path } = tempDb();
    const store = new FeedStore(db);
    const entries = store.appendBatch(alice, Array.from({ length: 37 }, (_, i) => post(i)));
    const sth = store.signTreeHead(alice);
    expect(verifyTreeHead(sth)).toBe(true);
    expect(sth.size).toBe(37);
    for (const e of entries) {
      const proof = store.inclusionProof(alice.publicKey, e.seq);
      expect(verifyInclusion(feedLeaf(e), proof, sth.root)).toBe(true);
      expect(verifyInclusion(feedLeaf(entries[(e.seq % 37)]!), proof, sth.root)).toBe(false);
    }
    // a proof in an older tree
    const p = store.inclusionProof(alice.publicKey, 3, 20);
    expect(verifyInclusion(feedLeaf(entries[2]!), p, store.treeRoot(alice.publicKey, 20))).toBe(true);

    const replica = new FeedStore(tempDb().db);
    replica.ingest(entries.map((e) => e.raw));
    expect(toHex(replica.treeRoot(alice.publicKey))).toBe(toHex(sth.root));
    expect(replica.putTreeHead(sth)).toBe(true);
    expect(replica.putTreeHead({ ...sth, size: 36 })).toBe(false);
    expect(toHex(replica.treeHead(alice.publicKey)!.root)).toBe(toHex(sth.root));
    db.close();
    const again = new FeedStore(openNodeDatabase(path));
    const proof = again.inclusionProof(alice.publicKey, 17);
    expect(verifyInclusion(feedLeaf(entries[16]!), proof, sth.root)).toBe(true);
    again.db.close();
  });

  it('stores the same tree nodes as a replica that adds entries one by one, for batches at any offset', () => {
    // appends take the nodes inside a batch from the batch tree and insert 100 rows per statement:
    // batches of 3, 1,500 (1,024 + 476) and 205 start unaligned and leave partial statements
    const store = new FeedStore(tempDb().db);
    const entries = [3, 1500, 205].flatMap((n) => store.appendBatch(alice, Array.from({ length: n }, (_, i) => post(i))));
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    const replica = new FeedStore(tempDb().db);
    expect(replica.ingest(entries.map((e) => e.raw)).stored).toHaveLength(entries.length);
    for (let size = 1; size <= entries.length; size++) {
      expect(toHex(store.treeRoot(alice.publicKey, size)), `size ${size}`).toBe(toHex(replica.treeRoot(alice.publicKey, size)));
    }
    const root = store.treeRoot(alice.publicKey);
    for (const seq of [1, 3, 4, 100, 1027, 1503, 1504, entries.length]) {
      expect(verifyInclusion(feedLeaf(entries[seq - 1]!), store.inclusionProof(alice.publicKey, seq), root)).toBe(true);
      expect(store.getRaw(alice.publicKey, seq)).toEqual(entries[seq - 1]!.raw);
    }
  });
});
