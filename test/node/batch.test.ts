/**
 * The batch-signed entry format (log entry v2): one signature per batch, each entry verifiable on
 * its own, verification per batch run, and what the store makes of bad signatures, truncated and
 * reordered batches, forks, and feeds that began as legacy v1.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openNodeDatabase } from '../../src/node/db.js';
import { FeedStore } from '../../src/node/log/feed-store.js';
import {
  MAX_BATCH_ENTRIES,
  ZERO_HASH,
  createBatch,
  createEntry,
  createLegacyEntry,
  decodeEntry,
  decodeHeader,
  encodeHeader,
  feedLeaf,
  openEntry,
  verifyEntry,
} from '../../src/node/log/codec.js';
import type { LogEntry } from '../../src/node/log/codec.js';
import { verifyEntries } from '../../src/node/log/batch-verify.js';
import { leafHash, verifyInclusion } from '../../src/node/log/merkle.js';
import { decodeForkProof, encodeForkProof, verifyForkProof } from '../../src/node/log/fork.js';
import { ed25519FromSeed, signerFromKeyPair, utf8 } from '../../src/node/crypto.js';
import { toHex } from '../../src/util/bytes.js';

const alice = signerFromKeyPair(ed25519FromSeed(new Uint8Array(32).fill(1)));
const items = (n: number, tag = 'm') => Array.from({ length: n }, (_, i) => ({ timestamp: i, header: { type: 'post' }, body: utf8(`${tag} ${i}`) }));

/** Decodes a copy of `raw` with byte `at` (from the end when negative) flipped. */
function flipped(raw: Uint8Array, at: number): LogEntry {
  const out = raw.slice();
  const i = at < 0 ? out.length + at : at;
  out[i] = out[i]! ^ 0x01;
  return decodeEntry(out);
}

const fresh = (raws: readonly Uint8Array[]) => raws.map((r) => decodeEntry(r.slice()));

describe('batch-signed entries (v2)', () => {
  it('one signature for the batch; every entry verifies on its own and per batch', () => {
    const batch = createBatch(alice, { firstSeq: 1, prev: ZERO_HASH, items: items(7) });
    expect(new Set(batch.map((e) => toHex(e.signature))).size).toBe(1);
    batch.forEach((e, i) => {
      expect(e.batch).toMatchObject({ firstSeq: 1, size: 7, index: i });
      expect(verifyEntry(e)).toBe(true);
      expect(openEntry(e.raw.slice()).seq).toBe(i + 1);
      if (i > 0) expect(toHex(e.prev)).toBe(toHex(batch[i - 1]!.hash));
    });
    expect(verifyEntries(fresh(batch.map((e) => e.raw)))).toEqual(Array(7).fill(true));
  });

  it('a bad signature fails every entry that carries it, and only those', () => {
    const raws = createBatch(alice, { firstSeq: 1, prev: ZERO_HASH, items: items(5) }).map((e) => e.raw);
    const entries = fresh(raws);
    entries[2] = flipped(raws[2]!, -1);
    expect(verifyEntry(entries[2]!)).toBe(false);
    expect(verifyEntries(entries)).toEqual([true, true, false, true, true]);
    const allBad = raws.map((r) => flipped(r, -1));
    expect(verifyEntries(allBad)).toEqual(Array(5).fill(false));
  });

  it('tampered content or path fails that entry; the rest of the whole batch still verifies', () => {
    const raws = createBatch(alice, { firstSeq: 1, prev: ZERO_HASH, items: items(6) }).map((e) => e.raw);
    const body = fresh(raws);
    body[3] = flipped(raws[3]!, -(64 + body[3]!.batch!.path.length + 4 + 1)); // the body's last byte
    expect(verifyEntries(body)).toEqual([true, true, true, false, true, true]);
    const path = fresh(raws);
    const e = path[4]!;
    path[4] = flipped(raws[4]!, e.raw.length - 64 - e.batch!.path.length); // first path byte
    expect(verifyEntry(path[4]!)).toBe(false);
    expect(verifyEntries(path)).toEqual([true, true, true, true, false, true]);
  });

  it('whole batches of every shape: each carried path is checked hash by hash against the rebuilt tree', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 40 }), fc.nat(), fc.nat(), (n, pick, byte) => {
        const raws = createBatch(alice, { firstSeq: 5, prev: new Uint8Array(32).fill(9), items: items(n) }).map((e) => e.raw);
        expect(verifyEntries(fresh(raws))).toEqual(Array(n).fill(true));
        const k = pick % n;
        const entries = fresh(raws);
        const path = entries[k]!.batch!.path;
        entries[k] = flipped(raws[k]!, entries[k]!.raw.length - 64 - path.length + (byte % path.length));
        expect(verifyEntry(entries[k]!)).toBe(false);
        expect(verifyEntries(entries)).toEqual(Array.from({ length: n }, (_, i) => i !== k));
      }),
      { numRuns: 60 },
    );
  });

  it('truncated batches: any part of a batch verifies without the rest; a cut entry does not decode', () => {
    const raws = createBatch(alice, { firstSeq: 1, prev: ZERO_HASH, items: items(9) }).map((e) => e.raw);
    for (const [from, to] of [[0, 3], [4, 9], [8, 9], [2, 7]] as const) {
      expect(verifyEntries(fresh(raws.slice(from, to))), `${from}..${to}`).toEqual(Array(to - from).fill(true));
    }
    for (const cut of [1, 64, 65, 70, 80]) expect(() => decodeEntry(raws[3]!.subarray(0, raws[3]!.length - cut))).toThrow(/invalid log entry/);
  });

  it('reordering: an entry cannot claim another position, and the store refuses out-of-order entries', () => {
    const batch = createBatch(alice, { firstSeq: 1, prev: ZERO_HASH, items: items(4) });
    // index 1 → 2 keeps the path length (both 2 hashes in a tree of 4) but moves firstSeq: refused
    const moved = batch[1]!.raw.slice();
    const at = moved.length - 64 - batch[1]!.batch!.path.length - 2;
    moved[at + 1] = 2;
    let ok = true;
    try {
      ok = verifyEntry(decodeEntry(moved));
    } catch {
      ok = false;
    }
    expect(ok).toBe(false);
    // swapped entries still verify one by one, but they do not extend the feed in that order
    const swapped = [batch[0]!, batch[2]!, batch[1]!, batch[3]!].map((e) => e.raw);
    expect(verifyEntries(fresh(swapped))).toEqual([true, true, true, true]);
    const store = new FeedStore(openNodeDatabase(':memory:'));
    const r = store.ingest(swapped);
    expect(r.stored.map((e) => e.seq)).toEqual([1, 2]);
    expect(r.rejected).toEqual([{ index: 1, reason: 'gap' }, { index: 3, reason: 'gap' }]);
    expect(store.feed(alice.publicKey)!.length).toBe(2);
    store.db.close();
  });

  it('the store appends big batches under one signature per 1,024 entries and a replica ingests them', () => {
    const source = new FeedStore(openNodeDatabase(':memory:'));
    const n = MAX_BATCH_ENTRIES * 2 + 5;
    const entries = source.appendBatch(alice, items(n).map(({ header, body }) => ({ header, body })));
    expect(new Set(entries.map((e) => toHex(e.signature))).size).toBe(3);
    expect(entries.map((e) => e.batch!.size)).toContain(5);
    const replica = new FeedStore(openNodeDatabase(':memory:'));
    // in frames that cut the batches anywhere, as replication does
    for (let i = 0; i < n; i += 700) expect(replica.ingest(source.rangeRaw(alice.publicKey, i + 1, i + 700)).rejected).toEqual([]);
    expect(replica.feed(alice.publicKey)!.length).toBe(n);
    expect(toHex(replica.treeRoot(alice.publicKey))).toBe(toHex(source.treeRoot(alice.publicKey)));
    source.db.close();
    replica.db.close();
  });

  it('a store refuses an entry whose path was mangled, as a bad signature', () => {
    const raws: Uint8Array[] = createBatch(alice, { firstSeq: 1, prev: ZERO_HASH, items: items(4) }).map((e) => e.raw.slice());
    const e = decodeEntry(raws[2]!);
    raws[2] = flipped(raws[2]!, raws[2]!.length - 64 - e.batch!.path.length).raw;
    const store = new FeedStore(openNodeDatabase(':memory:'));
    const r = store.ingest(raws);
    expect(r.rejected).toEqual([{ index: 2, reason: 'bad-signature' }, { index: 3, reason: 'gap' }]);
    expect(store.feed(alice.publicKey)!.length).toBe(2);
    store.db.close();
  });

  it('forks: two signed batches at the same seq are a portable proof', () => {
    const left = createBatch(alice, { firstSeq: 1, prev: ZERO_HASH, items: items(3, 'left') });
    const right = createBatch(alice, { firstSeq: 1, prev: ZERO_HASH, items: items(5, 'right') });
    const store = new FeedStore(openNodeDatabase(':memory:'));
    store.ingest(left.map((e) => e.raw));
    const r = store.ingest(right.map((e) => e.raw));
    expect(r.forks).toHaveLength(1);
    expect(store.feed(alice.publicKey)).toMatchObject({ length: 3, forked: true });
    const proof = decodeForkProof(encodeForkProof(r.forks[0]!));
    expect(proof.a.seq).toBe(1);
    expect(verifyForkProof(proof)).toBe(true);
    // the same content under another seal (another batch) is not a fork
    const again = new FeedStore(openNodeDatabase(':memory:'));
    again.ingest(left.map((e) => e.raw));
    const single = createEntry(alice, { seq: 1, prev: ZERO_HASH, ...items(3, 'left')[0]! });
    expect(toHex(single.hash)).toBe(toHex(left[0]!.hash));
    const dup = again.ingest([single.raw]);
    expect({ forks: dup.forks.length, duplicates: dup.duplicates }).toEqual({ forks: 0, duplicates: 1 });
    store.db.close();
    again.db.close();
  });

  it('legacy v1 feeds keep their entries and continue in v2; a v1/v2 pair at one seq is a fork', () => {
    const v1 = [createLegacyEntry(alice, { seq: 1, prev: ZERO_HASH, timestamp: 1, header: { type: 'post' }, body: utf8('old') })];
    v1.push(createLegacyEntry(alice, { seq: 2, prev: v1[0]!.hash, timestamp: 2, header: { type: 'post' }, body: utf8('old 2') }));
    const store = new FeedStore(openNodeDatabase(':memory:'));
    expect(store.ingest(v1.map((e) => e.raw)).stored).toHaveLength(2);
    const next = store.appendBatch(alice, [{ header: { type: 'post' }, body: utf8('new') }]);
    expect(next[0]!.version).toBe(2);
    expect(toHex(next[0]!.prev)).toBe(toHex(v1[1]!.hash));
    const replica = new FeedStore(openNodeDatabase(':memory:'));
    expect(replica.ingest(store.rangeRaw(alice.publicKey, 1, 3)).stored).toHaveLength(3);
    // the feed tree mixes v1 leaves (SHA-256(0x00 || hash)) and v2 leaves (the hash) and proves both
    const root = store.treeRoot(alice.publicKey);
    expect(toHex(replica.treeRoot(alice.publicKey))).toBe(toHex(root));
    for (const seq of [1, 2, 3]) {
      expect(verifyInclusion(feedLeaf(store.get(alice.publicKey, seq)!), replica.inclusionProof(alice.publicKey, seq), root)).toBe(true);
    }
    expect(toHex(feedLeaf(v1[0]!))).toBe(toHex(leafHash(v1[0]!.hash)));
    expect(toHex(feedLeaf(next[0]!))).toBe(toHex(next[0]!.hash));
    const other = createEntry(alice, { seq: 2, prev: v1[0]!.hash, timestamp: 2, header: { type: 'post' }, body: utf8('old 2') });
    const r = replica.ingest([other.raw]);
    expect(r.forks).toHaveLength(1);
    expect(verifyForkProof(r.forks[0]!)).toBe(true);
    store.db.close();
    replica.db.close();
  });

  it('the allocation-free header check agrees with decodeHeader (property)', () => {
    const base = encodeHeader({ type: 'post', app: 'chat', refs: [new Uint8Array(32)], n: 5, s: 'ü', b: Uint8Array.of(1) });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: base.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const header = base.slice();
        header[at] = value;
        const entry = createEntry(alice, { seq: 1, prev: ZERO_HASH, timestamp: 1, header: { type: 'x' }, body: new Uint8Array() });
        // splice the mutated header into an entry's content
        const h0 = new DataView(entry.raw.buffer, entry.raw.byteOffset).getUint16(81);
        const raw = new Uint8Array(entry.raw.length - h0 + header.length);
        raw.set(entry.raw.subarray(0, 81));
        new DataView(raw.buffer).setUint16(81, header.length);
        raw.set(header, 83);
        raw.set(entry.raw.subarray(83 + h0), 83 + header.length);
        let decoded = true;
        try {
          decodeHeader(header);
        } catch {
          decoded = false;
        }
        let entryDecoded = true;
        try {
          decodeEntry(raw);
        } catch {
          entryDecoded = false;
        }
        expect(entryDecoded).toBe(decoded);
      }),
      { numRuns: 2000 },
    );
  });
});
