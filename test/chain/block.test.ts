import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Block as BjsBlock, Transaction as BjsTransaction } from 'bitcoinjs-lib';
import { Transaction as ScureTransaction } from '@scure/btc-signer';
import { blockHash, parseBlock, parseBlockHeader, parseTransaction, type Tx } from '../../src/chain/block.js';
import {
  KNOWN_DATA_PROTOCOLS,
  candidateOutputs,
  isRunestone,
  knownDataProtocol,
  opReturnData,
  scanBlockForCandidates,
} from '../../src/chain/op-return-scan.js';
import { hashToHex, sha256d } from '../../src/chain/bytes.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { NETWORK_PARAMS } from '../../src/util/network.js';
import { MAINNET_GENESIS_HEX, generateBlock, type GeneratedBlock, type OpReturnKind } from '../support/blockgen.js';

const big = generateBlock({ seed: 1 });
const big2 = generateBlock({ seed: 2 });
const small = generateBlock({ seed: 7, txCount: 40 });
const genesis = fromHex(MAINNET_GENESIS_HEX);

/** A tx as plain, comparable values (hex strings and numbers). */
function describeOurs(tx: Tx) {
  return {
    version: tx.version,
    locktime: tx.locktime,
    ins: tx.inputs.map((i) => ({
      hash: toHex(i.prevTxid),
      index: i.vout,
      script: toHex(i.scriptSig),
      sequence: i.sequence,
      witness: i.witness.map(toHex),
    })),
    outs: tx.outputs.map((o) => ({ value: o.value.toString(), script: toHex(o.script) })),
    txid: tx.txid,
    wtxid: tx.wtxid,
    size: tx.size,
    weight: tx.weight,
    vsize: tx.vsize,
    segwit: tx.segwit,
  };
}

function describeBitcoinjs(tx: BjsTransaction) {
  return {
    version: tx.version,
    locktime: tx.locktime,
    ins: tx.ins.map((i) => ({
      hash: toHex(i.hash),
      index: i.index,
      script: toHex(i.script),
      sequence: i.sequence,
      witness: i.witness.map(toHex),
    })),
    outs: tx.outs.map((o) => ({ value: o.value.toString(), script: toHex(o.script) })),
    txid: tx.getId(),
    // bitcoinjs reports a coinbase's wtxid as zero (its BIP141 merkle-tree value): hash the bytes instead.
    wtxid: tx.isCoinbase() ? hashToHex(sha256d(tx.toBuffer())) : hashToHex(tx.getHash(true)),
    size: tx.byteLength(),
    weight: tx.weight(),
    vsize: tx.virtualSize(),
    segwit: tx.hasWitnesses(),
  };
}

/** Candidates the generator says a scan with this range must find (tx index, vout). */
function expectedCandidates(g: GeneratedBlock, min: number, max: number): string[] {
  const matching: OpReturnKind[] = ['data', 'data-pushdata1', 'hash'];
  return g.opReturns
    .filter((o) => matching.includes(o.kind) && o.dataLength >= min && o.dataLength <= max)
    .map((o) => `${o.tx}:${o.vout}`);
}

function found(raw: Uint8Array, options?: Parameters<typeof scanBlockForCandidates>[1]): string[] {
  return scanBlockForCandidates(raw, options).flatMap((c) => c.outputs.map((o) => `${c.index}:${o.vout}`));
}

/** Parses, reads every field and hashes; returns 'ok' or the error's class name. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof RangeError ? 'RangeError' : `${(err as Error).name}: ${(err as Error).message}`;
  }
}

function touchAll(raw: Uint8Array): void {
  for (const tx of parseBlock(raw).txs) describeOurs(tx);
}

const cs = (hex: string): Uint8Array => fromHex(hex);
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));

describe('mainnet genesis block', () => {
  it('parses header, hash and coinbase', () => {
    const block = parseBlock(genesis);
    expect(block.header.hash).toBe('000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f');
    expect(block.header.hash).toBe(NETWORK_PARAMS.mainnet.genesisHash);
    expect(blockHash(genesis.subarray(0, 80))).toBe(block.header.hash);
    expect(block.header).toMatchObject({ version: 1, time: 1231006505, bits: 0x1d00ffff, nonce: 2083236893 });
    expect(toHex(block.header.prevBlock)).toBe('00'.repeat(32));
    expect(hashToHex(block.header.merkleRoot)).toBe('4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b');
    expect(block.txs).toHaveLength(1);
    const cb = block.txs[0]!;
    expect(cb.txid).toBe(hashToHex(block.header.merkleRoot));
    expect(cb.wtxid).toBe(cb.txid);
    expect(cb.isCoinbase).toBe(true);
    expect(cb.segwit).toBe(false);
    expect(cb.size).toBe(204);
    expect(cb.outputs[0]!.value).toBe(5_000_000_000n);
    expect(cb.outputs[0]!.valueNumber).toBe(5_000_000_000);
    expect(Buffer.from(cb.inputs[0]!.scriptSig).toString('latin1')).toContain('The Times 03/Jan/2009 Chancellor on brink of second bailout for banks');
    expect(scanBlockForCandidates(genesis)).toEqual([]);
  });

  it('parses from a pooled Buffer (non-zero byteOffset) with correct views', () => {
    const pooled = Buffer.from(MAINNET_GENESIS_HEX, 'hex');
    const padded = new Uint8Array(genesis.length + 13).subarray(13);
    padded.set(genesis);
    for (const raw of [pooled, padded]) {
      const block = parseBlock(raw);
      expect(block.header.hash).toBe(NETWORK_PARAMS.mainnet.genesisHash);
      const cb = block.txs[0]!;
      expect(cb.txid).toBe('4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b');
      expect(toHex(cb.bytes)).toBe(MAINNET_GENESIS_HEX.slice(162));
      expect(toHex(cb.outputs[0]!.script)).toBe(MAINNET_GENESIS_HEX.slice(-142, -8));
    }
  });

  it('matches bitcoinjs-lib and parses as a lone transaction', () => {
    const bjs = BjsBlock.fromBuffer(genesis);
    expect(bjs.getId()).toBe(blockHash(genesis));
    const tx = parseTransaction(genesis.subarray(81));
    expect(describeOurs(tx)).toEqual(describeBitcoinjs(bjs.transactions![0]!));
  });
});

describe('generated mainnet-like blocks', () => {
  it('have the intended shape', () => {
    for (const g of [big, big2]) {
      expect(g.raw.length).toBeGreaterThan(1_000_000);
      expect(g.txs).toHaveLength(3000);
      const kinds = g.opReturns.map((o) => o.kind);
      expect(kinds.length).toBeGreaterThanOrEqual(1200);
      expect(kinds.filter((k) => k === 'runestone').length).toBe(1120);
      const long = g.opReturns.filter((o) => o.kind !== 'bare' && o.dataLength >= 43 && o.dataLength <= 80);
      expect(long.length).toBe(50);
      const block = parseBlock(g.raw);
      const weight = block.txs.reduce((w, tx) => w + tx.weight, 320);
      expect(weight).toBeLessThanOrEqual(4_000_000);
      expect(block.txs.filter((tx) => !tx.segwit).length).toBeGreaterThan(100);
      // Every CompactSize width that fits in a block shows up: 0xfd counts, scripts and witness items.
      expect(block.txs.some((tx) => tx.outputs.length > 252)).toBe(true);
      expect(block.txs.some((tx) => tx.inputs.some((i) => i.scriptLength > 252))).toBe(true);
      const witnessItems = block.txs.flatMap((tx) => tx.inputs.flatMap((i) => i.witness.map((w) => w.length)));
      expect(witnessItems.some((n) => n > 252 && n <= 0xffff)).toBe(true);
      expect(witnessItems.some((n) => n > 0xffff)).toBe(true);
    }
  });

  it('parse to the generator’s txids, wtxids, hash and merkle root', () => {
    for (const g of [big, big2, small]) {
      const block = parseBlock(g.raw);
      expect(block.header.hash).toBe(g.hash);
      expect(block.txs.map((tx) => tx.txid)).toEqual(g.txids);
      expect(block.txs.map((tx) => tx.wtxid)).toEqual(g.wtxids);
      let level = block.txs.map((tx) => tx.txidBytes());
      while (level.length > 1) {
        const next: Uint8Array[] = [];
        for (let i = 0; i < level.length; i += 2) next.push(sha256d(concat(level[i]!, level[i + 1] ?? level[i]!)));
        level = next;
      }
      expect(toHex(level[0]!)).toBe(toHex(block.header.merkleRoot));
    }
  });

  it('match bitcoinjs-lib Block.fromBuffer field by field', () => {
    for (const g of [big, big2]) {
      const ours = parseBlock(g.raw);
      const bjs = BjsBlock.fromBuffer(g.raw);
      expect(bjs.checkTxRoots()).toBe(true);
      const h = ours.header;
      expect({ v: h.version, p: toHex(h.prevBlock), m: toHex(h.merkleRoot), t: h.time, b: h.bits, n: h.nonce, id: h.hash }).toEqual({
        v: bjs.version,
        p: toHex(bjs.prevHash!),
        m: toHex(bjs.merkleRoot!),
        t: bjs.timestamp,
        b: bjs.bits,
        n: bjs.nonce,
        id: bjs.getId(),
      });
      const theirs = bjs.transactions!;
      expect(ours.txs).toHaveLength(theirs.length);
      const mismatched = ours.txs.findIndex((tx, i) => JSON.stringify(describeOurs(tx)) !== JSON.stringify(describeBitcoinjs(theirs[i]!)));
      if (mismatched >= 0) expect(describeOurs(ours.txs[mismatched]!)).toEqual(describeBitcoinjs(theirs[mismatched]!));
      expect(mismatched).toBe(-1);
    }
  });

  it('match @scure/btc-signer Transaction.fromRaw for every tx', () => {
    const opts = { allowUnknownOutputs: true, allowUnknownInputs: true, disableScriptCheck: true, allowUnknownVersion: true };
    const mismatches: number[] = [];
    for (const [i, tx] of parseBlock(big.raw).txs.entries()) {
      const s = ScureTransaction.fromRaw(tx.bytes, opts);
      const theirs = {
        id: s.id,
        version: s.version,
        locktime: s.lockTime,
        weight: s.weight,
        vsize: s.vsize,
        ins: Array.from({ length: s.inputsLength }, (_, k) => {
          const input = s.getInput(k);
          return [toHex(input.txid!), input.index, toHex(input.finalScriptSig ?? new Uint8Array()), input.sequence, (input.finalScriptWitness ?? []).map(toHex)];
        }),
        outs: Array.from({ length: s.outputsLength }, (_, k) => [s.getOutput(k).amount!.toString(), toHex(s.getOutput(k).script!)]),
      };
      const ours = {
        id: tx.txid,
        version: tx.version,
        locktime: tx.locktime,
        weight: tx.weight,
        vsize: tx.vsize,
        ins: tx.inputs.map((input) => [input.prevTxidHex, input.vout, toHex(input.scriptSig), input.sequence, input.witness.map(toHex)]),
        outs: tx.outputs.map((o) => [o.value.toString(), toHex(o.script)]),
      };
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) mismatches.push(i);
    }
    expect(mismatches).toEqual([]);
  });

  it('parseTransaction reads each tx alone, with the same txid', () => {
    const block = parseBlock(small.raw);
    for (const tx of block.txs) {
      const copy = tx.bytes.slice();
      const alone = parseTransaction(copy);
      expect(describeOurs(alone)).toEqual(describeOurs(tx));
      expect(alone.start).toBe(0);
      expect(alone.end).toBe(copy.length);
      expect(alone.inputsOffset - alone.start).toBe(tx.inputsOffset - tx.start);
      expect(alone.locktimeOffset - alone.start).toBe(tx.locktimeOffset - tx.start);
    }
  });

  it('hands out views into the block buffer, not copies', () => {
    const block = parseBlock(big.raw);
    const tx = block.txs.find((t) => t.segwit && t.inputs.length > 0)!;
    const w = tx.inputs[0]!.witness[0]!;
    expect(w.buffer).toBe(big.raw.buffer);
    expect(tx.outputs[0]!.script.buffer).toBe(big.raw.buffer);
    expect(tx.inputs[0]!.prevTxid.buffer).toBe(big.raw.buffer);
    // Offsets describe the layout: version, (marker, flag), inputs, outputs, witness, locktime.
    expect(tx.inputsOffset).toBe(tx.start + 6);
    expect(tx.outputsOffset).toBeGreaterThan(tx.inputsOffset);
    expect(tx.witnessOffset).toBeGreaterThan(tx.outputsOffset);
    expect(tx.locktimeOffset).toBe(tx.end - 4);
    const legacy = block.txs.find((t) => !t.segwit)!;
    expect(legacy.inputsOffset).toBe(legacy.start + 4);
    expect(legacy.witnessOffset).toBe(legacy.locktimeOffset);
    expect(legacy.inputs[0]!.witness).toEqual([]);
  });
});

describe('candidate scan', () => {
  it('finds exactly the generator’s data outputs, for several ranges', () => {
    for (const g of [big, big2, small]) {
      expect(found(g.raw)).toEqual(expectedCandidates(g, 1, 80));
      expect(found(g.raw, { minDataLength: 43, maxDataLength: 80 })).toEqual(expectedCandidates(g, 43, 80));
      expect(found(g.raw, { minDataLength: 33, maxDataLength: 60 })).toEqual(expectedCandidates(g, 33, 60));
    }
    expect(expectedCandidates(big, 43, 80)).toHaveLength(36);
  });

  it('never returns Runestones, known protocols, multi-push, bare OP_RETURN or the coinbase', () => {
    const skipped = new Set(big.opReturns.filter((o) => !['data', 'data-pushdata1', 'hash'].includes(o.kind)).map((o) => `${o.tx}:${o.vout}`));
    const all = found(big.raw, { minDataLength: 1, maxDataLength: 100_000 });
    expect(all.filter((k) => skipped.has(k))).toEqual([]);
    // Without the protocol list, Omni/Babylon/CoreDAO come back; the coinbase commitment still does not.
    const kept = new Set(found(big.raw, { skipProtocols: [] }));
    for (const o of big.opReturns) {
      const key = `${o.tx}:${o.vout}`;
      if (o.kind === 'omni' || o.kind === 'babylon' || o.kind === 'coredao') expect(kept.has(key)).toBe(true);
      if (o.kind === 'witness-commitment' || o.kind === 'runestone') expect(kept.has(key)).toBe(false);
    }
  });

  it('returns the candidate tx, its data views and its inputs for prevout lookup', () => {
    const cands = scanBlockForCandidates(big.raw, { minDataLength: 43 });
    const block = parseBlock(big.raw);
    for (const c of cands) {
      const tx = block.txs[c.index]!;
      expect(c.tx.txid).toBe(big.txids[c.index]);
      expect(c.inputs.map((i) => `${i.prevTxidHex}:${i.vout}`)).toEqual(tx.inputs.map((i) => `${i.prevTxidHex}:${i.vout}`));
      for (const o of c.outputs) {
        expect(toHex(o.data)).toBe(toHex(opReturnData(tx.outputs[o.vout]!.script)!));
        expect(o.data.buffer).toBe(big.raw.buffer);
      }
      expect(candidateOutputs(tx, { minDataLength: 43 })).toEqual(c.outputs);
    }
  });

  it('reads under 5% of the block’s bytes (lengths, and two bytes of in-range scripts)', () => {
    const touched = new Set<number>();
    const spy = new Proxy(big.raw, {
      get(target, key) {
        if (typeof key === 'string' && /^\d+$/.test(key)) touched.add(Number(key));
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    expect(scanBlockForCandidates(spy)).toHaveLength(expectedCandidates(big, 1, 80).length);
    expect(touched.size).toBeGreaterThan(1000);
    expect(touched.size / big.raw.length).toBeLessThan(0.05);
  });

  it('agrees with a parse-everything reference scan', () => {
    const block = parseBlock(big2.raw);
    const reference = block.txs.flatMap((tx, index) => candidateOutputs(tx).map((o) => `${index}:${o.vout}`));
    expect(found(big2.raw)).toEqual(reference);
  });

  it('applies a predicate, given alone or in options', () => {
    const even = (data: Uint8Array) => data.length % 2 === 0;
    const expected = big.opReturns.filter((o) => ['data', 'data-pushdata1', 'hash'].includes(o.kind) && o.dataLength % 2 === 0).map((o) => `${o.tx}:${o.vout}`);
    expect(found(big.raw, even)).toEqual(expected);
    expect(found(big.raw, { predicate: even })).toEqual(expected);
    expect(found(big.raw, () => false)).toEqual([]);
  });

  it('rejects a nonsensical range', () => {
    expect(() => scanBlockForCandidates(big.raw, { minDataLength: 0 })).toThrow(RangeError);
    expect(() => scanBlockForCandidates(big.raw, { minDataLength: 50, maxDataLength: 49 })).toThrow(RangeError);
    expect(() => scanBlockForCandidates(big.raw, { maxDataLength: 1.5 })).toThrow(RangeError);
  });
});

describe('OP_RETURN helpers', () => {
  it('read single pushes of every encoding and nothing else', () => {
    const d = Uint8Array.from({ length: 80 }, (_, i) => i + 1);
    const d75 = d.subarray(0, 75);
    expect(toHex(opReturnData(concat(cs('6a4b'), d75))!)).toBe(toHex(d75));
    expect(opReturnData(concat(cs('6a50'), d))).toBeUndefined(); // 0x50 is OP_RESERVED, not a push
    expect(toHex(opReturnData(concat(cs('6a4c50'), d))!)).toBe(toHex(d));
    expect(toHex(opReturnData(concat(cs('6a4d5000'), d))!)).toBe(toHex(d));
    expect(toHex(opReturnData(concat(cs('6a4e50000000'), d))!)).toBe(toHex(d));
    expect(opReturnData(cs('6a'))).toBeUndefined();
    expect(opReturnData(cs('6a00'))).toBeUndefined();
    expect(opReturnData(cs('6a5d0401020304'))).toBeUndefined(); // Runestone
    expect(opReturnData(cs('6a0201020103'))).toBeUndefined(); // two pushes
    expect(opReturnData(cs('6a03010203ff'))).toBeUndefined(); // trailing opcode
    expect(opReturnData(cs('6a0401020304').subarray(0, 5))).toBeUndefined(); // short push
    expect(opReturnData(cs('6a4c'))).toBeUndefined();
    expect(opReturnData(cs('6a4d05'))).toBeUndefined();
    expect(opReturnData(cs('0014' + '11'.repeat(20)))).toBeUndefined();
    expect(isRunestone(cs('6a5d0401020304'))).toBe(true);
    expect(isRunestone(cs('6a0401020304'))).toBe(false);
  });

  it('know the documented protocol prefixes', () => {
    expect(KNOWN_DATA_PROTOCOLS.map((p) => p.name)).toEqual(['omni', 'babylon', 'coredao', 'witness-commitment']);
    expect(knownDataProtocol(cs('6f6d6e690000'))?.name).toBe('omni');
    expect(knownDataProtocol(cs('62626e3100'))?.name).toBe('babylon');
    expect(knownDataProtocol(cs('5341542b01'))?.name).toBe('coredao');
    expect(knownDataProtocol(cs('aa21a9ed' + '00'.repeat(32)))?.name).toBe('witness-commitment');
    expect(knownDataProtocol(cs('6f6d6e'))).toBeUndefined();
    expect(knownDataProtocol(cs('01' + '6f6d6e69'))).toBeUndefined();
  });
});

describe('malformed input', () => {
  // A legacy tx: version 1, one input, one output, locktime 0.
  const legacyTx = cs('01000000' + '01' + 'aa'.repeat(32) + '00000000' + '00' + 'ffffffff' + '01' + '0000000000000000' + '016a' + '00000000');
  const header = genesis.subarray(0, 80);

  it('rejects every truncation of the genesis block and of a tx', () => {
    for (let n = 0; n < genesis.length; n++) {
      expect(() => parseBlock(genesis.subarray(0, n)), `length ${n}`).toThrow(RangeError);
      expect(() => scanBlockForCandidates(genesis.subarray(0, n)), `length ${n}`).toThrow(RangeError);
    }
    for (let n = 0; n < legacyTx.length; n++) expect(() => parseTransaction(legacyTx.subarray(0, n))).toThrow(RangeError);
    expect(parseTransaction(legacyTx).outputs[0]!.scriptLength).toBe(1);
  });

  it('rejects trailing bytes', () => {
    expect(() => parseBlock(concat(genesis, cs('00')))).toThrow(/trailing/);
    expect(() => scanBlockForCandidates(concat(genesis, cs('00')))).toThrow(/trailing/);
    expect(() => parseTransaction(concat(legacyTx, cs('00')))).toThrow(/trailing/);
  });

  it('rejects absurd and non-canonical CompactSizes quickly', () => {
    const cases = [
      concat(header, cs('ff' + 'ff'.repeat(8))), // 2^64-1 txs
      concat(header, cs('ff0000000001000000')), // 2^32 txs
      concat(header, cs('ffffffffff00000000')), // 9-byte form of a 32-bit value (non-canonical)
      concat(header, cs('feffffffff'), new Uint8Array(100)), // 4 billion txs in 100 bytes
      concat(header, cs('fd0100'), genesis.subarray(81)), // 1 tx written as 0xfd 0x0001 (non-canonical)
      concat(header, cs('01')), // 1 tx, no bytes
    ];
    for (const raw of cases) {
      const t0 = performance.now();
      expect(() => parseBlock(raw)).toThrow(RangeError);
      expect(() => scanBlockForCandidates(raw)).toThrow(RangeError);
      expect(performance.now() - t0).toBeLessThan(50);
    }
    const txCases = [
      cs('01000000' + 'feffffffff' + '00'.repeat(60)), // 4 billion inputs
      cs('01000000' + '01' + 'aa'.repeat(36) + 'fdffff' + '00'.repeat(20)), // scriptSig of 65535 bytes
      cs('01000000' + '01' + 'aa'.repeat(36) + '00ffffffff' + 'ffffffffffffffffff' + '00'.repeat(20)), // absurd output count
      cs('01000000' + '01' + 'aa'.repeat(36) + '00ffffffff' + '01' + '00'.repeat(8) + 'fe00000100' + '00'.repeat(10)), // 16 MB script
      cs('01000000' + '01' + 'aa'.repeat(36) + '00ffffffff' + '01' + '00'.repeat(8) + 'fd0500' + '00'.repeat(20)), // non-canonical script length
    ];
    for (const raw of txCases) expect(() => parseTransaction(raw)).toThrow(RangeError);
  });

  it('rejects bad witness data and unknown flags like Bitcoin Core', () => {
    const body = '01' + 'aa'.repeat(32) + '00000000' + '00' + 'ffffffff' + '01' + '0000000000000000' + '016a';
    const witnessTx = cs('02000000' + '0001' + body + '01' + '01' + '07' + '00000000');
    expect(parseTransaction(witnessTx).inputs[0]!.witness.map(toHex)).toEqual(['07']);
    expect(() => parseTransaction(cs('02000000' + '0001' + body + '00' + '00000000'))).toThrow(/superfluous witness/);
    expect(() => parseTransaction(cs('02000000' + '0002' + body + '00000000'))).toThrow(/flag/);
    expect(() => parseTransaction(cs('02000000' + '0001' + body + 'ffffffffffffffffff' + '00000000'))).toThrow(RangeError);
    expect(() => parseTransaction(cs('02000000' + '0001' + body + '01' + 'fd1000' + '00000000'))).toThrow(RangeError);
    // The same rules hold inside a block, for the full parse and the scan alike.
    for (const bad of ['0001' + body + '00', '0002' + body]) {
      const block = concat(genesis.subarray(0, 81), genesis.subarray(81), cs('02000000' + bad + '00000000'));
      block[80] = 2;
      expect(() => parseBlock(block)).toThrow(RangeError);
      expect(() => scanBlockForCandidates(block)).toThrow(RangeError);
      expect(() => scanBlockForCandidates(block)).toThrow(/witness|flag/);
    }
    // Empty vin then flag 0: Core reads "no inputs, no outputs".
    const empty = parseTransaction(cs('02000000' + '0000' + '00000000'));
    expect([empty.inputs.length, empty.outputs.length, empty.segwit]).toEqual([0, 0, false]);
  });

  it('rejects things that are not bytes with TypeError', () => {
    expect(() => parseBlock('00' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => parseTransaction(null as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => scanBlockForCandidates([1, 2] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => blockHash(new Uint8Array(79))).toThrow(RangeError);
    expect(parseBlockHeader(genesis).hash).toBe(NETWORK_PARAMS.mainnet.genesisHash);
  });
});

describe('fuzzing', () => {
  it('truncated blocks only ever throw RangeError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: small.raw.length - 1 }), (n) => {
        const cut = small.raw.subarray(0, n);
        return outcome(() => touchAll(cut)) === 'RangeError' && outcome(() => scanBlockForCandidates(cut)) === 'RangeError';
      }),
      { numRuns: 300 },
    );
    const bigCut = fc.integer({ min: 81, max: big.raw.length - 1 });
    fc.assert(fc.property(bigCut, (n) => outcome(() => scanBlockForCandidates(big.raw.subarray(0, n))) === 'RangeError'), { numRuns: 100 });
  });

  it('byte flips give a parse or a RangeError, and scan and parse agree', () => {
    const flips = fc.array(fc.record({ at: fc.integer({ min: 0, max: small.raw.length - 1 }), value: fc.integer({ min: 0, max: 255 }) }), {
      minLength: 1,
      maxLength: 4,
    });
    fc.assert(
      fc.property(flips, (changes) => {
        const raw = small.raw.slice();
        for (const c of changes) raw[c.at] = c.value;
        const parsed = outcome(() => touchAll(raw));
        const scanned = outcome(() => scanBlockForCandidates(raw));
        expect(parsed === 'ok' || parsed === 'RangeError', parsed).toBe(true);
        expect(scanned).toBe(parsed);
      }),
      { numRuns: 1500 },
    );
  });

  it('flips aimed at length fields (0xfd-0xff bytes) are rejected fast', () => {
    const block = parseBlock(small.raw);
    // Offsets of CompactSize fields: input/output counts of every tx.
    const fields = block.txs.flatMap((tx) => [tx.inputsOffset, tx.outputsOffset]);
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.constantFrom(0xfd, 0xfe, 0xff), fc.uint8Array({ minLength: 8, maxLength: 8 }), (at, tag, rest) => {
        const raw = small.raw.slice();
        raw[at] = tag;
        raw.set(rest.subarray(0, Math.min(8, raw.length - at - 1)), at + 1);
        const t0 = performance.now();
        const result = [outcome(() => touchAll(raw)), outcome(() => scanBlockForCandidates(raw))];
        expect(performance.now() - t0).toBeLessThan(100);
        expect(result[0] === 'ok' || result[0] === 'RangeError').toBe(true);
        expect(result[1]).toBe(result[0]);
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes after a valid header are rejected or parsed, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (tail) => {
        const raw = concat(header80(), tail);
        const parsed = outcome(() => touchAll(raw));
        return (parsed === 'ok' || parsed === 'RangeError') && outcome(() => scanBlockForCandidates(raw)) === parsed;
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
        const r = outcome(() => describeOurs(parseTransaction(bytes)));
        return r === 'ok' || r === 'RangeError';
      }),
      { numRuns: 500 },
    );
  });
});

function header80(): Uint8Array {
  return genesis.subarray(0, 80);
}
