/** The coinbase-only block builder behind RegtestNode.mineEmpty, checked with the block parser and bitcoinjs-lib. */
import { Block as BjsBlock } from 'bitcoinjs-lib';
import { describe, expect, it } from 'vitest';
import { hashToHex } from '../../src/chain/bytes.js';
import { parseBlock } from '../../src/chain/block.js';
import { EMPTY_BLOCK_VERSION, buildCoinbase, buildEmptyBlock, heightPush, targetFromBits } from '../../src/regtest/empty-block.js';
import { toHex } from '../../src/util/bytes.js';

const PREV = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206'; // regtest genesis

describe('heightPush (BIP34, as Core serializes CScript() << height)', () => {
  it.each([
    [0, '00'], [1, '51'], [16, '60'], [17, '0111'], [127, '017f'], [128, '028000'], [255, '02ff00'],
    [256, '020001'], [32767, '02ff7f'], [32768, '03008000'], [840000, '0340d10c'], [0x7fffffff, '04ffffff7f'],
  ])('height %i -> %s', (h, hex) => {
    expect(toHex(heightPush(h))).toBe(hex);
  });

  it('rejects heights outside 0..2^31-1', () => {
    expect(() => heightPush(-1)).toThrow(RangeError);
    expect(() => heightPush(2 ** 31)).toThrow(RangeError);
    expect(() => heightPush(1.5)).toThrow(RangeError);
  });
});

describe('targetFromBits', () => {
  it('decodes regtest and mainnet genesis bits', () => {
    expect(targetFromBits(0x207fffff)).toBe(0x7fffffn << 232n);
    expect(targetFromBits(0x1d00ffff)).toBe(0xffffn << 208n);
  });
});

describe('buildCoinbase', () => {
  it('is a one-in one-out coinbase with a 2..100 byte scriptSig, 0 sat to OP_RETURN, locktime 0', () => {
    for (const [h, extra] of [[1, new Uint8Array(0)], [300, new Uint8Array(8).fill(7)], [5, new Uint8Array(80)]] as const) {
      const raw = buildCoinbase(h, extra);
      const block = new Uint8Array(81 + raw.length);
      block[80] = 1;
      block.set(raw, 81);
      const tx = parseBlock(block).txs[0]!;
      expect(tx.isCoinbase).toBe(true);
      expect(tx.segwit).toBe(false);
      expect(tx.version).toBe(2);
      expect(tx.locktime).toBe(0);
      expect(tx.inputs).toHaveLength(1);
      const sig = tx.inputs[0]!.scriptSig;
      expect(sig.length).toBeGreaterThanOrEqual(2);
      expect(sig.length).toBeLessThanOrEqual(100);
      expect(toHex(sig.subarray(0, heightPush(h).length))).toBe(toHex(heightPush(h)));
      expect(tx.outputs).toHaveLength(1);
      expect(tx.outputs[0]!.value).toBe(0n);
      expect(toHex(tx.outputs[0]!.script)).toBe('6a');
    }
    expect(() => buildCoinbase(1, new Uint8Array(81))).toThrow(RangeError);
  });
});

describe('buildEmptyBlock', () => {
  const t = { prevHash: PREV, height: 102, time: 1_800_000_000, bits: 0x207fffff, extraNonce: Uint8Array.of(1, 2, 3, 4) };

  it('builds a valid-looking header over the coinbase and meets the target', () => {
    const b = buildEmptyBlock(t);
    const parsed = parseBlock(b.raw);
    expect(parsed.header.hash).toBe(b.hash);
    expect(parsed.header.version).toBe(EMPTY_BLOCK_VERSION);
    expect(hashToHex(parsed.header.prevBlock)).toBe(PREV);
    expect(parsed.header.time).toBe(t.time);
    expect(parsed.header.bits).toBe(t.bits);
    expect(parsed.txs).toHaveLength(1);
    expect(parsed.txs[0]!.txid).toBe(b.coinbaseTxid);
    expect(hashToHex(parsed.header.merkleRoot)).toBe(b.coinbaseTxid); // one tx: the root is its txid
    expect(BigInt(`0x${b.hash}`) <= targetFromBits(t.bits)).toBe(true);
  });

  it('agrees with bitcoinjs-lib on hash, merkle root and proof of work', () => {
    const b = buildEmptyBlock(t);
    const bjs = BjsBlock.fromBuffer(Buffer.from(b.raw));
    expect(bjs.getId()).toBe(b.hash);
    expect(bjs.checkTxRoots()).toBe(true);
    expect(bjs.checkProofOfWork()).toBe(true);
    expect(bjs.transactions?.[0]?.getId()).toBe(b.coinbaseTxid);
  });

  it('is deterministic for a given template; a different extra nonce gives another coinbase', () => {
    expect(buildEmptyBlock(t).hash).toBe(buildEmptyBlock(t).hash);
    expect(buildEmptyBlock({ ...t, extraNonce: Uint8Array.of(9) }).coinbaseTxid).not.toBe(buildEmptyBlock(t).coinbaseTxid);
  });

  it('rejects a time that is not a uint32', () => {
    expect(() => buildEmptyBlock({ ...t, time: -1 })).toThrow(RangeError);
    expect(() => buildEmptyBlock({ ...t, time: 2 ** 32 })).toThrow(RangeError);
  });
});
