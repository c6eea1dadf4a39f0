import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { Transaction } from 'bitcoinjs-lib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  btcPerKvBToSatPerVb, merkleRoot, merkleRootFromBranch, parseHeader, scriptHash, sha256d, txidFromRaw,
  validateHeaderNotification, validateHistory, validateMerkleProof, validateUnspent, verifyMerkleBranch,
} from '../../src/chain/backends/electrum-codec.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { NETWORK_PARAMS } from '../../src/util/network.js';
import { expectCode } from '../support/errors.js';

const MAINNET_GENESIS_HEADER =
  '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c';
const REGTEST_GENESIS_HEADER =
  '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f2002000000';

// Mainnet block 100,000: four transactions and their merkle root (from the block itself).
const BLOCK_100000_TXIDS = [
  '8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87',
  'fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4',
  '6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4',
  'e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d',
];
const BLOCK_100000_MERKLE_ROOT = 'f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766';

/** Builds the branch for `pos` the slow, obvious way: hash whole levels, pick the sibling. */
function branchFor(txids: string[], pos: number): string[] {
  const rev = (h: string): Uint8Array => hexToBytes(h).reverse();
  const disp = (b: Uint8Array): string => bytesToHex(Uint8Array.from(b).reverse());
  let level = txids.map(rev);
  const branch: string[] = [];
  let i = pos;
  while (level.length > 1) {
    if (level.length % 2) level.push(level[level.length - 1] as Uint8Array);
    branch.push(disp(level[i ^ 1] as Uint8Array));
    const next: Uint8Array[] = [];
    for (let j = 0; j < level.length; j += 2) {
      next.push(sha256d(new Uint8Array([...(level[j] as Uint8Array), ...(level[j + 1] as Uint8Array)])));
    }
    level = next;
    i >>= 1;
  }
  return branch;
}

describe('scriptHash', () => {
  it('matches the Electrum protocol documentation example (P2PKH of 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa)', () => {
    const script = hexToBytes('76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac');
    expect(scriptHash(script)).toBe('8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161');
  });
});

describe('parseHeader', () => {
  it('parses the mainnet genesis header', () => {
    const h = parseHeader(MAINNET_GENESIS_HEADER, 0);
    expect(h).toEqual({
      height: 0,
      hash: NETWORK_PARAMS.mainnet.genesisHash,
      prevHash: '00'.repeat(32),
      merkleRoot: '4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b',
      time: 1231006505,
    });
  });

  it('hashes the regtest genesis header to the regtest genesis hash', () => {
    expect(parseHeader(hexToBytes(REGTEST_GENESIS_HEADER), 0).hash).toBe(NETWORK_PARAMS.regtest.genesisHash);
  });

  it('rejects headers that are not 80 bytes or not hex, as PROTOCOL', () => {
    for (const bad of [MAINNET_GENESIS_HEADER.slice(2), `${MAINNET_GENESIS_HEADER}00`, 'zz'.repeat(80), '']) {
      expectCode(() => parseHeader(bad, 0), 'PROTOCOL');
    }
  });
});

describe('merkle branches', () => {
  it('computes the merkle root of mainnet block 100,000', () => {
    expect(merkleRoot(BLOCK_100000_TXIDS)).toBe(BLOCK_100000_MERKLE_ROOT);
  });

  it('verifies every position of block 100,000 against its root', () => {
    BLOCK_100000_TXIDS.forEach((txid, pos) => {
      const branch = branchFor(BLOCK_100000_TXIDS, pos);
      expect(branch).toHaveLength(2);
      expect(merkleRootFromBranch(txid, branch, pos)).toBe(BLOCK_100000_MERKLE_ROOT);
      expect(verifyMerkleBranch(txid, branch, pos, BLOCK_100000_MERKLE_ROOT)).toBe(true);
    });
  });

  it('a single-transaction block has an empty branch and the txid as root', () => {
    const txid = BLOCK_100000_TXIDS[0] as string;
    expect(verifyMerkleBranch(txid, [], 0, txid)).toBe(true);
    expect(verifyMerkleBranch(txid, [], 1, txid)).toBe(false);
  });

  it('rejects tampered proofs: wrong sibling, wrong position, wrong txid, wrong root, malformed input', () => {
    const txid = BLOCK_100000_TXIDS[2] as string;
    const branch = branchFor(BLOCK_100000_TXIDS, 2);
    const flipped = [`${(branch[0] as string).slice(0, 63)}${(branch[0] as string).endsWith('0') ? '1' : '0'}`, branch[1] as string];
    expect(verifyMerkleBranch(txid, flipped, 2, BLOCK_100000_MERKLE_ROOT)).toBe(false);
    expect(verifyMerkleBranch(txid, branch, 3, BLOCK_100000_MERKLE_ROOT)).toBe(false);
    expect(verifyMerkleBranch(txid, branch, 6, BLOCK_100000_MERKLE_ROOT)).toBe(false);
    expect(verifyMerkleBranch(BLOCK_100000_TXIDS[1] as string, branch, 2, BLOCK_100000_MERKLE_ROOT)).toBe(false);
    expect(verifyMerkleBranch(txid, branch, 2, BLOCK_100000_TXIDS[0] as string)).toBe(false);
    expect(verifyMerkleBranch(txid, branch.slice(1), 2, BLOCK_100000_MERKLE_ROOT)).toBe(false);
    expect(verifyMerkleBranch(txid, ['nothex'], 0, BLOCK_100000_MERKLE_ROOT)).toBe(false);
    expect(verifyMerkleBranch('xx', branch, 2, BLOCK_100000_MERKLE_ROOT)).toBe(false);
    expect(verifyMerkleBranch(txid, branch, -1, BLOCK_100000_MERKLE_ROOT)).toBe(false);
  });

  it('round-trips any tree size and position (odd levels duplicate the last hash)', () => {
    const hash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex);
    fc.assert(
      fc.property(fc.array(hash, { minLength: 1, maxLength: 40 }), fc.nat(), (txids, p) => {
        const pos = p % txids.length;
        const root = merkleRoot(txids);
        expect(verifyMerkleBranch(txids[pos] as string, branchFor(txids, pos), pos, root)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe('txidFromRaw', () => {
  const build = (segwit: boolean, inputs: number, outputs: number, seed: number): Transaction => {
    const tx = new Transaction();
    tx.version = 2;
    for (let i = 0; i < inputs; i++) tx.addInput(new Uint8Array(32).fill(seed + i), i, 0xfffffffd, new Uint8Array(seed % 3));
    for (let i = 0; i < outputs; i++) tx.addOutput(new Uint8Array(22 + ((seed + i) % 300)).fill(i), BigInt(1000 + i));
    if (segwit) for (let i = 0; i < inputs; i++) tx.setWitness(i, [new Uint8Array(64).fill(i), new Uint8Array((seed * 7) % 260)]);
    return tx;
  };

  it('agrees with bitcoinjs-lib for legacy and segwit transactions', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 260 }), fc.nat(200), (sw, ni, no, seed) => {
        const tx = build(sw, ni, no, seed);
        expect(txidFromRaw(tx.toBuffer())).toBe(tx.getId());
      }),
      { numRuns: 100 },
    );
  });

  it('rejects truncated or padded segwit transactions as PROTOCOL', () => {
    const raw = build(true, 2, 2, 5).toBuffer();
    for (const bad of [raw.subarray(0, raw.length - 1), new Uint8Array([...raw, 0]), raw.subarray(0, 10)]) {
      try {
        txidFromRaw(bad);
        expect.unreachable();
      } catch (e) {
        expect(isDeaddropError(e, 'PROTOCOL')).toBe(true);
      }
    }
  });
});

describe('validators', () => {
  const txid = BLOCK_100000_TXIDS[0] as string;

  it('map history and unspent answers, keeping mempool heights', () => {
    expect(validateHistory([{ tx_hash: txid, height: 5 }, { tx_hash: txid, height: 0, fee: 200 }, { tx_hash: txid, height: -1 }])).toEqual([
      { txid, height: 5 },
      { txid, height: 0 },
      { txid, height: -1 },
    ]);
    expect(validateUnspent([{ tx_hash: txid, tx_pos: 1, value: 2_100_000_000_000_000, height: 7 }])).toEqual([
      { txid, vout: 1, value: 2_100_000_000_000_000n, height: 7 },
    ]);
  });

  it('reject malformed answers as PROTOCOL', () => {
    const bad: Array<() => unknown> = [
      () => validateHistory({}),
      () => validateHistory([{ tx_hash: 'ab', height: 1 }]),
      () => validateHistory([{ tx_hash: txid, height: 1.5 }]),
      () => validateUnspent([{ tx_hash: txid, tx_pos: -1, value: 1, height: 1 }]),
      () => validateUnspent([{ tx_hash: txid, tx_pos: 0, value: '1', height: 1 }]),
      () => validateHeaderNotification({ hex: MAINNET_GENESIS_HEADER }),
      () => validateHeaderNotification(null),
      () => validateMerkleProof({ block_height: 1, merkle: ['zz'], pos: 0 }),
      () => validateMerkleProof({ block_height: 1, merkle: [], pos: -2 }),
    ];
    for (const f of bad) expectCode(f, 'PROTOCOL');
  });

  it('parse a header notification and a merkle proof', () => {
    expect(validateHeaderNotification({ hex: MAINNET_GENESIS_HEADER, height: 0 }).hash).toBe(NETWORK_PARAMS.mainnet.genesisHash);
    expect(validateMerkleProof({ block_height: 9, merkle: [txid], pos: 1 })).toEqual({ blockHeight: 9, branch: [txid], pos: 1 });
  });

  it('converts BTC/kvB to sat/vB', () => {
    expect(btcPerKvBToSatPerVb(0.00001)).toBeCloseTo(1, 10);
    expect(btcPerKvBToSatPerVb(0.0002)).toBeCloseTo(20, 10);
  });
});
