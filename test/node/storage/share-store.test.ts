import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFile, verifyShare } from '../../../src/node/storage/immutable.js';
import { ShareStore, StorageRefusal } from '../../../src/node/storage/server/share-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(quotaBytes: number, maxShareBytes?: number): { store: ShareStore; clock: { t: number }; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dd-shares-'));
  dirs.push(dir);
  const clock = { t: 1_000_000 };
  const store = new ShareStore({ dir, quotaBytes, maxShareBytes, now: () => clock.t });
  return { store, clock, dir };
}

const secret = (): Uint8Array => new Uint8Array(randomBytes(32));
const HOUR = 3_600_000;

function refusal(fn: () => unknown): StorageRefusal {
  try {
    fn();
  } catch (e) {
    if (e instanceof StorageRefusal) return e;
    throw e;
  }
  throw new Error('expected a StorageRefusal');
}

describe('ShareStore', () => {
  it('stores and returns shares by storage index and number, and they still verify', () => {
    const { store } = setup(1 << 20);
    const f = encodeFile(new Uint8Array(randomBytes(5000)), { k: 3, n: 10 });
    const s = secret();
    f.shares.forEach((share, r) => store.put(f.storageIndex, r, share, s, HOUR));
    expect(store.list(f.storageIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let r = 0; r < 10; r++) expect(verifyShare(f.verifyCap, store.get(f.storageIndex, r) as Uint8Array, r).num).toBe(r);
    expect(store.usedBytes).toBe(f.shares.reduce((a, x) => a + x.length, 0));
  });

  it('refuses an oversized share and a share beyond the quota with clear errors, storing nothing', () => {
    const { store } = setup(10_000, 4_000);
    const si = encodeFile(new Uint8Array(10)).storageIndex;
    const big = refusal(() => store.put(si, 0, new Uint8Array(4_001), secret(), HOUR));
    expect(big.code).toBe('too-large');
    expect(big.message).toMatch(/4001 bytes exceeds this server's limit of 4000 bytes per share/);
    store.put(si, 0, new Uint8Array(4_000), secret(), HOUR);
    store.put(si, 1, new Uint8Array(4_000), secret(), HOUR);
    const full = refusal(() => store.put(si, 2, new Uint8Array(3_000), secret(), HOUR));
    expect(full.code).toBe('quota-exceeded');
    expect(full.message).toMatch(/2000 of 10000 bytes free/);
    expect(store.list(si)).toEqual([0, 1]);
    expect(store.usedBytes).toBe(8_000);
  });

  it('keeps shares immutable and rejects malformed requests', () => {
    const { store } = setup(1 << 20);
    const si = encodeFile(new Uint8Array(10)).storageIndex;
    store.put(si, 3, Uint8Array.of(1, 2, 3), secret(), HOUR);
    store.put(si, 3, Uint8Array.of(1, 2, 3), secret(), HOUR); // same bytes: only a new lease
    expect(refusal(() => store.put(si, 3, Uint8Array.of(9), secret(), HOUR)).code).toBe('share-exists');
    expect(refusal(() => store.put('../etc', 0, Uint8Array.of(1), secret(), HOUR)).code).toBe('bad-request');
    expect(refusal(() => store.put(si, 256, Uint8Array.of(1), secret(), HOUR)).code).toBe('bad-request');
    expect(refusal(() => store.put(si, 0, Uint8Array.of(1), new Uint8Array(5), HOUR)).code).toBe('bad-request');
    expect(refusal(() => store.put(si, 0, Uint8Array.of(1), secret(), 0)).code).toBe('bad-request');
    expect(store.usedBytes).toBe(3);
  });

  it('collects shares whose leases expired, keeps renewed ones, and frees the quota', () => {
    const { store, clock, dir } = setup(1 << 20);
    const a = encodeFile(new Uint8Array(100));
    const b = encodeFile(new Uint8Array(100));
    const sa = secret();
    const sb = secret();
    a.shares.forEach((s, r) => store.put(a.storageIndex, r, s, sa, HOUR));
    b.shares.forEach((s, r) => store.put(b.storageIndex, r, s, sb, HOUR));
    const bBytes = b.shares.reduce((x, s) => x + s.length, 0);
    clock.t += HOUR / 2;
    store.renewLease(a.storageIndex, sa, HOUR);
    expect(refusal(() => store.renewLease(a.storageIndex, sb, HOUR)).code).toBe('no-lease');
    expect(store.collectGarbage()).toEqual({ storageIndexes: 0, bytes: 0 });
    clock.t += HOUR / 2 + 1; // b's lease has expired, a's was renewed until now + HOUR/2
    const before = store.usedBytes;
    expect(store.collectGarbage()).toEqual({ storageIndexes: 1, bytes: bBytes });
    expect(store.usedBytes).toBe(before - bBytes);
    expect(store.list(b.storageIndex)).toEqual([]);
    expect(store.list(a.storageIndex).length).toBe(10);
    clock.t += HOUR;
    expect(store.collectGarbage().storageIndexes).toBe(1);
    expect(store.usedBytes).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('stores only hashes of lease secrets, and reopens with the same usage', () => {
    const { store, dir } = setup(1 << 20);
    const f = encodeFile(new Uint8Array(100));
    const s = secret();
    store.put(f.storageIndex, 0, f.shares[0] as Uint8Array, s, HOUR);
    const leases = readFileSync(join(dir, f.storageIndex, 'leases.json'), 'utf8');
    expect(leases).not.toContain(Buffer.from(s).toString('hex'));
    expect(new ShareStore({ dir, quotaBytes: 1 << 20 }).usedBytes).toBe(store.usedBytes);
  });
  it('resumes a share in parts after a restart, acknowledging a part it already wrote', () => {
    const { store, dir } = setup(1 << 20);
    const f = encodeFile(new Uint8Array(randomBytes(30_000)), { k: 3, n: 10 });
    const share = f.shares[3] as Uint8Array;
    const s = secret();
    const [a, b] = [share.length / 3, (2 * share.length) / 3].map(Math.floor) as [number, number];
    store.putPart(f.storageIndex, 3, 0, share.length, share.subarray(0, a), s, HOUR);
    store.putPart(f.storageIndex, 3, a, share.length, share.subarray(a, b), s, HOUR);
    // A restart: a fresh store over the same directory knows nothing of the part but its file.
    const again = new ShareStore({ dir, quotaBytes: 1 << 20 });
    expect(again.putPart(f.storageIndex, 3, a, share.length, share.subarray(a, b), s, HOUR).complete).toBe(false);
    const other = Uint8Array.from(share.subarray(a, b));
    other[0] = (other[0] as number) ^ 1;
    expect(refusal(() => again.putPart(f.storageIndex, 3, a, share.length, other, s, HOUR)).code).toBe('bad-request');
    expect(refusal(() => again.putPart(f.storageIndex, 3, b, share.length + 1, share.subarray(b), s, HOUR)).code).toBe('bad-request');
    expect(again.putPart(f.storageIndex, 3, b, share.length, share.subarray(b), s, HOUR).complete).toBe(true);
    expect(Buffer.from(again.get(f.storageIndex, 3) as Uint8Array).equals(share)).toBe(true);
  });
  it('acknowledges bytes sent again (late or twice, as through the mixnet), at 0 too, and writes only what is new', () => {
    const { store } = setup(1 << 20);
    const f = encodeFile(new Uint8Array(randomBytes(30_000)), { k: 3, n: 10 });
    const share = f.shares[3] as Uint8Array;
    const s = secret();
    const [a, b] = [1000, 2500];
    store.putPart(f.storageIndex, 3, 0, share.length, share.subarray(0, a), s, HOUR);
    store.putPart(f.storageIndex, 3, a, share.length, share.subarray(a, b), s, HOUR);
    // The first chunk again (a packet that came late): acknowledged, the part is not started over.
    expect(store.putPart(f.storageIndex, 3, 0, share.length, share.subarray(0, a), s, HOUR).complete).toBe(false);
    // A part that overlaps what is written: the overlap must match, the rest is written.
    store.putPart(f.storageIndex, 3, 2000, share.length, share.subarray(2000, 4000), s, HOUR);
    const changed = Uint8Array.from(share.subarray(3000, 5000));
    changed[10] = (changed[10] as number) ^ 1;
    expect(refusal(() => store.putPart(f.storageIndex, 3, 3000, share.length, changed, s, HOUR)).code).toBe('bad-request');
    expect(refusal(() => store.putPart(f.storageIndex, 3, 4001, share.length, share.subarray(4001), s, HOUR)).code).toBe('bad-request');
    expect(store.putPart(f.storageIndex, 3, 4000, share.length, share.subarray(4000), s, HOUR).complete).toBe(true);
    expect(Buffer.from(store.get(f.storageIndex, 3) as Uint8Array).equals(share)).toBe(true);
    // Different bytes at 0 still start a part over (the direct path's restart).
    const g = f.shares[4] as Uint8Array;
    store.putPart(f.storageIndex, 4, 0, g.length, g.subarray(0, a), s, HOUR);
    const other = Uint8Array.from(g.subarray(0, 500));
    other[0] = (other[0] as number) ^ 1;
    store.putPart(f.storageIndex, 4, 0, g.length, other, s, HOUR);
    expect(refusal(() => store.putPart(f.storageIndex, 4, a, g.length, g.subarray(a), s, HOUR)).code).toBe('bad-request');
  });
  it('stores a share in parts, hides it until complete, reads ranges, and keeps it immutable', () => {
    const { store, dir } = setup(1 << 20);
    const f = encodeFile(new Uint8Array(randomBytes(30_000)), { k: 3, n: 10 });
    const share = f.shares[3] as Uint8Array;
    const s = secret();
    const half = share.length >> 1;
    expect(store.putPart(f.storageIndex, 3, 0, share.length, share.subarray(0, half), s, HOUR).complete).toBe(false);
    expect(store.list(f.storageIndex)).toEqual([]);
    expect(store.get(f.storageIndex, 3)).toBeUndefined();
    expect(store.usedBytes).toBe(0);
    // Out of order is refused; the part in progress survives garbage collection.
    expect(refusal(() => store.putPart(f.storageIndex, 3, half + 1, share.length, share.subarray(half + 1), s, HOUR)).code).toBe('bad-request');
    expect(store.collectGarbage().storageIndexes).toBe(0);
    expect(store.putPart(f.storageIndex, 3, half, share.length, share.subarray(half), s, HOUR).complete).toBe(true);
    expect(store.list(f.storageIndex)).toEqual([3]);
    expect(readdirSync(join(dir, f.storageIndex)).sort()).toEqual(['3', 'leases.json']);
    expect(store.usedBytes).toBe(share.length);
    expect(store.size(f.storageIndex, 3)).toBe(share.length);
    expect(Buffer.from(store.read(f.storageIndex, 3, 100, 50) as Uint8Array).equals(share.subarray(100, 150))).toBe(true);
    expect(store.read(f.storageIndex, 3, share.length - 10, 100)?.length).toBe(10);
    expect(verifyShare(f.verifyCap, store.get(f.storageIndex, 3) as Uint8Array, 3).num).toBe(3);
    // The same bytes again add a lease; other bytes are refused.
    const s2 = secret();
    store.putPart(f.storageIndex, 3, 0, share.length, share.subarray(0, half), s2, HOUR);
    store.putPart(f.storageIndex, 3, half, share.length, share.subarray(half), s2, 2 * HOUR);
    expect(store.leaseExpiry(f.storageIndex)).toBe(1_000_000 + 2 * HOUR);
    const other = Uint8Array.from(share);
    other[half] = (other[half] as number) ^ 1;
    expect(refusal(() => store.putPart(f.storageIndex, 3, half, share.length, other.subarray(half), s2, HOUR)).code).toBe('share-exists');
    // Bounds and quota are checked on the first part.
    expect(refusal(() => store.putPart(f.storageIndex, 4, 0, 10, new Uint8Array(11), s, HOUR)).code).toBe('bad-request');
    expect(refusal(() => store.putPart(f.storageIndex, 4, 0, 2 << 20, new Uint8Array(10), s, HOUR)).code).toBe('too-large');
  });
  it('reserves the quota for shares in progress, and collects abandoned parts after an hour', () => {
    const { store, clock, dir } = setup(10_000);
    clock.t = Date.now(); // part files age by the real clock
    const f = encodeFile(new Uint8Array(randomBytes(3000)), { k: 1, n: 2 });
    const [a, b] = [f.shares[0] as Uint8Array, f.shares[1] as Uint8Array];
    const s = secret();
    store.putPart(f.storageIndex, 0, 0, a.length, a.subarray(0, 100), s, HOUR);
    // Two shares of about 3.2 kB each in progress, a third of 4 kB no longer fits 10 kB.
    store.putPart(f.storageIndex, 1, 0, b.length, b.subarray(0, 100), s, HOUR);
    expect(refusal(() => store.putPart(f.storageIndex, 2, 0, 4000, new Uint8Array(100), s, HOUR)).code).toBe('quota-exceeded');
    expect(refusal(() => store.putPart(f.storageIndex, 0, 100, a.length + 1, a.subarray(100), s, HOUR)).code).toBe('bad-request');
    store.putPart(f.storageIndex, 0, 100, a.length, a.subarray(100), s, HOUR);
    expect(store.list(f.storageIndex)).toEqual([0]);
    // Share 1 is abandoned: an hour later its part goes, with its reservation.
    const old = (Date.now() - 2 * HOUR) / 1000;
    utimesSync(join(dir, f.storageIndex, '1.part'), old, old);
    store.collectGarbage();
    expect(readdirSync(join(dir, f.storageIndex)).sort()).toEqual(['0', 'leases.json']);
    store.putPart(f.storageIndex, 2, 0, 4000, new Uint8Array(4000), s, HOUR);
    expect(store.list(f.storageIndex)).toEqual([0, 2]);
  });
});
