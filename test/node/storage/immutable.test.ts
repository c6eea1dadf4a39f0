import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import {
  BadShareError,
  decodeFile,
  encodeFile,
  parseReadCap,
  parseVerifyCap,
  repairShares,
  verifyCapOf,
  verifyShare,
  checkBlock, checkCrypttextLeaves, decodeSegment, shareLayout, verifyShareTail,
  capsOf, encodeSegmentBlocks, encryptSegment, FileHasher, reencodeSegment, segmentRange, segmentsOf, shareHead,
} from '../../../src/node/storage/immutable.js';
import { ReedSolomon } from '../../../src/node/storage/rs/codec.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);
const pattern = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 255);
const vectorsUrl = (name: string): URL => new URL(`../../vectors/storage/${name}`, import.meta.url);

function pick<T>(xs: readonly T[], count: number): T[] {
  return [...xs].sort(() => Math.random() - 0.5).slice(0, count);
}

describe('committed vectors', () => {
  it('zfec.json: our codec reproduces the shares zfec 1.6.0.0 produced', () => {
    const v = JSON.parse(readFileSync(vectorsUrl('zfec.json'), 'utf8')) as { cases: { k: number; n: number; blocks: string[]; shares: string[] }[] };
    expect(v.cases.length).toBeGreaterThan(0);
    for (const c of v.cases) expect(new ReedSolomon(c.k, c.n).encode(c.blocks.map(fromHex)).map(hex)).toEqual(c.shares);
  });

  it('immutable.json: encodeFile gives the committed caps and shares, and decodes them', () => {
    const v = JSON.parse(readFileSync(vectorsUrl('immutable.json'), 'utf8')) as {
      cases: { size: number; k: number; n: number; segmentSize: number; key: string; readCap: string; verifyCap: string; storageIndex: string; shareSha256: string[]; share0: string }[];
    };
    v.cases.forEach((c, i) => {
      const plaintext = pattern(c.size, i);
      const f = encodeFile(plaintext, { k: c.k, n: c.n, segmentSize: c.segmentSize, key: fromHex(c.key) });
      expect(f.readCap).toBe(c.readCap);
      expect(f.verifyCap).toBe(c.verifyCap);
      expect(f.storageIndex).toBe(c.storageIndex);
      expect(verifyCapOf(c.readCap)).toBe(c.verifyCap);
      expect(f.shares.map((s) => hex(sha256(s)))).toEqual(c.shareSha256);
      expect(hex(f.shares[0] as Uint8Array)).toBe(c.share0);
      expect(eq(decodeFile(c.readCap, pick(f.shares, c.k)), plaintext)).toBe(true);
    });
  });
});

describe('encodeFile / decodeFile', () => {
  it('round-trips from any k shares, across sizes, segment boundaries and parameters', () => {
    for (const [size, k, n, seg] of [[0, 3, 10, 1024], [1, 3, 10, 1024], [1023, 3, 10, 1024], [1024, 3, 10, 1024], [1025, 3, 10, 1024], [300_001, 10, 14, 65_536], [5000, 1, 4, 999], [777, 7, 7, 100], [3000, 2, 256, 512]] as const) {
      const data = new Uint8Array(randomBytes(size));
      const f = encodeFile(data, { k, n, segmentSize: seg });
      expect(f.shares.length).toBe(n);
      for (let t = 0; t < 3; t++) expect(eq(decodeFile(f.readCap, pick(f.shares, k)), data), `size=${size} k=${k} n=${n}`).toBe(true);
    }
  });

  it('uses a fresh key per file: same plaintext gives different caps, storage indexes and shares', () => {
    const data = pattern(5000, 1);
    const a = encodeFile(data);
    const b = encodeFile(data);
    expect(a.readCap).not.toBe(b.readCap);
    expect(a.storageIndex).not.toBe(b.storageIndex);
    expect(eq(a.shares[0] as Uint8Array, b.shares[0] as Uint8Array)).toBe(false);
  });

  it('stores no plaintext: the data shares hold ciphertext', () => {
    const data = new Uint8Array(30_000).fill(0x41);
    const f = encodeFile(data, { k: 3, n: 10 });
    for (const s of f.shares) expect(Buffer.from(s).includes(Buffer.alloc(64, 0x41))).toBe(false);
  });

  it('the verify cap verifies but cannot decrypt, and does not contain the key', () => {
    const f = encodeFile(pattern(4000, 2), { k: 3, n: 10, segmentSize: 1000 });
    const key = parseReadCap(f.readCap).key;
    expect(f.verifyCap).not.toContain(Buffer.from(key).toString('hex'));
    expect(f.verifyCap.split(':')[2]).not.toBe(f.readCap.split(':')[2]);
    expect(() => decodeFile(f.verifyCap, f.shares)).toThrow(/not a read capability/);
    f.shares.forEach((s, r) => expect(verifyShare(f.verifyCap, s, r).num).toBe(r));
    expect(parseVerifyCap(f.verifyCap).storageIndex.length).toBe(16);
  });

  it('rejects malformed capabilities with clear errors', () => {
    const f = encodeFile(pattern(10, 3));
    for (const bad of ['', 'dd-chk:r:zz', f.readCap.replace(':3:10:', ':11:10:'), f.readCap.replace(/:\d+$/, ':99999999999999999'), `${f.readCap}x`, f.readCap.replace('dd-chk:r:', 'dd-chk:r:a')]) {
      expect(() => decodeFile(bad, f.shares), bad).toThrow(RangeError);
    }
  });
});

describe('every bad share is detected', () => {
  const f = encodeFile(pattern(2500, 4), { k: 3, n: 10, segmentSize: 1024 });

  it('a flipped bit anywhere in any share (every byte of every share tried)', () => {
    let tried = 0;
    f.shares.forEach((share, r) => {
      for (let at = 0; at < share.length; at++) {
        const bad = Uint8Array.from(share);
        bad[at] = (bad[at] as number) ^ (1 << ((at + r) % 8));
        expect(() => verifyShare(f.verifyCap, bad), `share ${r} byte ${at}`).toThrow(BadShareError);
        tried++;
      }
    });
    expect(tried).toBeGreaterThan(10 * 1000);
  });

  it('a share relabelled with another number, or delivered under a wrong number', () => {
    f.shares.forEach((share, r) => {
      for (let other = 0; other < 256; other++) {
        if (other === r) continue;
        const bad = Uint8Array.from(share);
        bad[4] = other;
        expect(() => verifyShare(f.verifyCap, bad), `share ${r} as ${other}`).toThrow(BadShareError);
      }
      expect(() => verifyShare(f.verifyCap, share, (r + 1) % 10)).toThrow(/claims number/);
    });
  });

  it('truncated or extended shares', () => {
    const share = f.shares[5] as Uint8Array;
    for (let len = 0; len < share.length; len++) expect(() => verifyShare(f.verifyCap, share.subarray(0, len)), `length ${len}`).toThrow(BadShareError);
    const longer = new Uint8Array(share.length + 1);
    longer.set(share);
    expect(() => verifyShare(f.verifyCap, longer)).toThrow(/expected/);
  });

  it("a valid share of another file with the same parameters", () => {
    const g = encodeFile(pattern(2500, 4), { k: 3, n: 10, segmentSize: 1024 });
    expect(() => verifyShare(f.verifyCap, g.shares[0] as Uint8Array)).toThrow(/UEB does not match/);
  });

  it('decodeFile skips bad shares and uses the good ones; fails clearly with fewer than k good', () => {
    const corrupt = f.shares.map((s, r) => {
      const bad = Uint8Array.from(s);
      bad[100 + r] = (bad[100 + r] as number) ^ 0xff;
      return bad;
    });
    const plaintext = pattern(2500, 4);
    expect(eq(decodeFile(f.readCap, [...corrupt.slice(0, 7), ...f.shares.slice(7)]), plaintext)).toBe(true);
    expect(() => decodeFile(f.readCap, [...corrupt.slice(0, 8), ...f.shares.slice(8)])).toThrow(/need 3 valid shares, have 2 \(rejected: .*corrupt/);
  });
});

describe('repair with the verify cap', () => {
  it('regenerates lost shares byte-identical to the originals, from any k', () => {
    const f = encodeFile(new Uint8Array(randomBytes(70_000)), { k: 3, n: 10, segmentSize: 16_384 });
    const kept = [9, 2, 6];
    const repaired = repairShares(f.verifyCap, kept.map((r) => f.shares[r] as Uint8Array), [0, 1, 3, 4, 5, 7, 8]);
    for (const [r, s] of repaired) {
      expect(eq(s, f.shares[r] as Uint8Array), `share ${r}`).toBe(true);
      expect(verifyShare(f.verifyCap, s, r).num).toBe(r);
    }
    expect(() => repairShares(f.verifyCap, [f.shares[0] as Uint8Array], [1])).toThrow(/need 3 valid shares/);
  });
});

describe('streamed decoding', () => {
  it('decodes a file piece by piece (layout, tail, blocks, segments) for any segment size', () => {
    for (const segmentSize of [1000, 4096, 131072]) {
      const data = new Uint8Array(randomBytes(10_123));
      const f = encodeFile(data, { k: 3, n: 7, segmentSize });
      const cap = parseVerifyCap(f.verifyCap);
      const key = parseReadCap(f.readCap).key;
      const picked = [6, 2, 4].map((num) => {
        const share = f.shares[num] as Uint8Array;
        const layout = shareLayout(cap, share.subarray(0, 86));
        expect(layout.length).toBe(share.length);
        return { num, share, layout, leaves: verifyShareTail(layout, num, share.subarray(layout.blockAt[layout.count])) };
      });
      const { params, count } = picked[0]!.layout;
      const out: Uint8Array[] = [];
      const leaves: Uint8Array[] = [];
      for (let s = 0; s < count; s++) {
        const blocks = picked.map((p) => {
          const block = p.share.subarray(p.layout.blockAt[s], p.layout.blockAt[s + 1]);
          checkBlock(p.leaves, s, block, p.num);
          return { num: p.num, data: block };
        });
        const seg = decodeSegment(key, params, s, blocks);
        out.push(seg.plaintext);
        leaves.push(seg.leaf);
      }
      checkCrypttextLeaves(params, leaves);
      expect(Buffer.concat(out).equals(data), `segment size ${segmentSize}`).toBe(true);
      // A tail of another share, or a flipped block, is refused.
      const p0 = picked[0]!;
      expect(() => verifyShareTail(p0.layout, 5, p0.share.subarray(p0.layout.blockAt[p0.layout.count]))).toThrow(BadShareError);
      const bad = Uint8Array.from(p0.share.subarray(p0.layout.blockAt[0], p0.layout.blockAt[1]));
      bad[0] = (bad[0] as number) ^ 1;
      expect(() => checkBlock(p0.leaves, 0, bad, p0.num)).toThrow(/block 0 of share 6 is corrupt/);
    }
  });
});

describe('streamed encoding', () => {
  it('FileHasher + per-segment encoding give encodeFile\'s shares and caps byte for byte', () => {
    for (const [size, segmentSize, k, n] of [[0, 4096, 3, 10], [1, 4096, 2, 3], [10_123, 1000, 3, 7], [10_123, 100, 1, 1], [300_000, 131072, 3, 10]] as const) {
      const data = new Uint8Array(randomBytes(size));
      const key = new Uint8Array(randomBytes(32));
      const whole = encodeFile(data, { k, n, segmentSize, key });
      const rs = new ReedSolomon(k, n);
      const hasher = new FileHasher(k, n, segmentSize, size);
      const perShare: Uint8Array[][] = Array.from({ length: n }, () => []);
      for (let s = 0; s < segmentsOf(size, segmentSize); s++) {
        const { offset, length } = segmentRange(size, segmentSize, s);
        const ct = encryptSegment(key, segmentSize, s, data.subarray(offset, offset + length));
        const blocks = encodeSegmentBlocks(rs, ct);
        hasher.add(ct, blocks);
        blocks.forEach((b, r) => perShare[r]!.push(b));
      }
      const plan = hasher.finish();
      expect(capsOf(key, plan)).toEqual({ readCap: whole.readCap, verifyCap: whole.verifyCap, storageIndex: whole.storageIndex });
      for (let r = 0; r < n; r++) {
        const share = Buffer.concat([plan.head(r), ...perShare[r]!, plan.tail(r)]);
        expect(share.length).toBe(plan.shareLength);
        expect(share.equals(whole.shares[r]!), `size ${size}, share ${r}`).toBe(true);
      }
      // Repair's path: k blocks of each segment rebuild all n, and hash to the same trees.
      const again = new FileHasher(k, n, segmentSize, size);
      for (let s = 0; s < segmentsOf(size, segmentSize); s++) {
        const src = [n - 1, ...Array.from({ length: k - 1 }, (_, i) => i)].map((num) => ({ num, data: perShare[num]![s]! }));
        const seg = reencodeSegment(plan.params, s, src);
        again.add(seg.ciphertext, seg.blocks);
      }
      expect(eq(again.finish().uebHash, plan.uebHash)).toBe(true);
      expect(eq(shareHead(plan.params, 1), plan.head(1))).toBe(true);
    }
  });
});
