import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT,
  MerkleFrontier,
  decodeTreeHead,
  encodeTreeHead,
  inclusionPath,
  leafHash,
  peakPositions,
  rootOfLeaves,
  signTreeHead,
  treeLevels,
  treeWithPaths,
  verifyInclusion,
  verifyTreeHead,
  writeAuditPaths,
} from '../../src/node/log/merkle.js';
import { ed25519FromSeed, sha256, signerFromKeyPair, utf8 } from '../../src/node/crypto.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

// Certificate Transparency's reference test data (RFC 6962 reference implementation tests).
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex);
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const CT_PATHS: { m: number; n: number; path: string[] }[] = [
  {
    m: 0,
    n: 8,
    path: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    m: 5,
    n: 8,
    path: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { m: 2, n: 3, path: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    m: 1,
    n: 5,
    path: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

function lookupOver(leaves: Uint8Array[]) {
  return (level: number, index: number): Uint8Array => {
    const w = 2 ** level;
    if ((index + 1) * w > leaves.length) throw new Error('not a full node');
    return rootOfLeaves(leaves.slice(index * w, (index + 1) * w));
  };
}

describe('RFC 6962 Merkle tree', () => {
  const leaves = CT_LEAVES.map(leafHash);

  it('matches the CT reference roots', () => {
    expect(toHex(rootOfLeaves([]))).toBe(toHex(EMPTY_ROOT));
    expect(toHex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    for (let n = 1; n <= 8; n++) expect(toHex(rootOfLeaves(leaves.slice(0, n)))).toBe(CT_ROOTS[n - 1]);
  });

  it('matches the CT reference audit paths, and they verify', () => {
    for (const { m, n, path } of CT_PATHS) {
      const got = inclusionPath(m, n, lookupOver(leaves.slice(0, n)));
      expect(got.map(toHex)).toEqual(path);
      expect(verifyInclusion(leaves[m]!, { leafIndex: m, treeSize: n, path: got }, fromHex(CT_ROOTS[n - 1]!))).toBe(true);
    }
  });

  it('every leaf of every tree up to 40 has a verifying proof; wrong ones fail', () => {
    const many = Array.from({ length: 40 }, (_, i) => leafHash(sha256(utf8(`leaf ${i}`))));
    for (let n = 1; n <= many.length; n++) {
      const tree = many.slice(0, n);
      const root = rootOfLeaves(tree);
      const look = lookupOver(tree);
      for (let m = 0; m < n; m++) {
        const path = inclusionPath(m, n, look);
        expect(verifyInclusion(tree[m]!, { leafIndex: m, treeSize: n, path }, root)).toBe(true);
        const other = tree[(m + 1) % n]!;
        if (n > 1) expect(verifyInclusion(other, { leafIndex: m, treeSize: n, path }, root)).toBe(false);
        if (n > 1) expect(verifyInclusion(tree[m]!, { leafIndex: (m + 1) % n, treeSize: n, path }, root)).toBe(false);
        if (path.length > 0) {
          const bad = path.map((p) => p.slice());
          bad[0]![0] = bad[0]![0]! ^ 1;
          expect(verifyInclusion(tree[m]!, { leafIndex: m, treeSize: n, path: bad }, root)).toBe(false);
          expect(verifyInclusion(tree[m]!, { leafIndex: m, treeSize: n, path: path.slice(1) }, root)).toBe(false);
        }
      }
    }
    expect(verifyInclusion(many[0]!, { leafIndex: 3, treeSize: 3, path: [] }, many[0]!)).toBe(false);
  });

  it('the frontier gives the same root as the reference at every size, and peaks are the full nodes', () => {
    const f = new MerkleFrontier();
    const entryHashes = Array.from({ length: 70 }, (_, i) => sha256(utf8(`e${i}`)));
    const stored: Uint8Array[][] = [];
    expect(toHex(f.root())).toBe(toHex(EMPTY_ROOT));
    entryHashes.forEach((h, i) => {
      stored.push(f.append(h));
      expect(toHex(f.root())).toBe(toHex(rootOfLeaves(entryHashes.slice(0, i + 1).map(leafHash))));
      // node (level, index) completes at leaf (index+1)*2^level - 1
      for (const { level, index } of peakPositions(i + 1)) {
        const node = stored[(index + 1) * 2 ** level - 1]![level]!;
        expect(toHex(node)).toBe(toHex(lookupOver(entryHashes.slice(0, i + 1).map(leafHash))(level, index)));
      }
    });
  });

  it('treeLevels + writeAuditPaths give the recursive tree and paths (treeWithPaths) for every size to 70 and some larger', () => {
    const sizes = [...Array.from({ length: 70 }, (_, i) => i + 1), 127, 128, 129, 255, 1000, 1023, 1024];
    const all = Array.from({ length: 1024 }, (_, i) => sha256(utf8(`leaf${i}`)));
    for (const n of sizes) {
      const leaves = all.slice(0, n);
      const ref = treeWithPaths(leaves);
      expect(toHex(rootOfLeaves(leaves))).toBe(toHex(ref.root));
      // paths written into one shared buffer at offsets, as the batch arena and the verifier do
      const at: number[] = [];
      let total = 7;
      for (const p of ref.paths) {
        at.push(total);
        total += p.length + 3;
      }
      const buf = new Uint8Array(total);
      const root = writeAuditPaths(treeLevels(leaves), leaves.map(() => buf), at);
      expect(toHex(root)).toBe(toHex(ref.root));
      ref.paths.forEach((p, m) => expect(toHex(buf.subarray(at[m]!, at[m]! + p.length)), `n=${n} m=${m}`).toBe(toHex(p)));
      const gaps = at.map((o, m) => buf.subarray(o + ref.paths[m]!.length, o + ref.paths[m]!.length + 3));
      expect(gaps.every((g) => g.every((b) => b === 0))).toBe(true);
    }
  });

  it('appendTree stores the same nodes as appendLeaf one by one, whatever the batch start', () => {
    const hashes = Array.from({ length: 600 }, (_, i) => sha256(utf8(`e${i}`)));
    for (const start of [0, 1, 3, 8, 24, 64, 100, 257]) {
      for (const n of [1, 2, 5, 8, 33, 300]) {
        const one = new MerkleFrontier();
        const batch = new MerkleFrontier();
        for (let i = 0; i < start; i++) batch.appendLeaf(one.appendLeaf(hashes[i]!)[0]!);
        const expected = hashes.slice(start, start + n).map((h) => one.appendLeaf(h).map(toHex));
        const got = batch.appendTree(treeLevels(hashes.slice(start, start + n))).map((ns) => ns.map(toHex));
        expect(got, `start=${start} n=${n}`).toEqual(expected);
        expect(toHex(batch.root())).toBe(toHex(one.root()));
        expect(batch.size).toBe(start + n);
      }
    }
  });
});

describe('signed tree head', () => {
  const signer = signerFromKeyPair(ed25519FromSeed(new Uint8Array(32).fill(3)));

  it('signs, encodes and verifies; any change breaks it', () => {
    const h = signTreeHead(signer, 12, sha256(utf8('root')), 1_700_000_000_000);
    expect(verifyTreeHead(h)).toBe(true);
    const enc = encodeTreeHead(h);
    const d = decodeTreeHead(enc);
    expect(verifyTreeHead(d)).toBe(true);
    expect(d.size).toBe(12);
    expect(verifyTreeHead({ ...d, size: 13 })).toBe(false);
    expect(verifyTreeHead({ ...d, root: sha256(utf8('other')) })).toBe(false);
    const bad = enc.slice();
    bad[0] = 2;
    expect(() => decodeTreeHead(bad)).toThrow(/unknown version/);
  });
});
