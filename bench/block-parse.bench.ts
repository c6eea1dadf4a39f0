/**
 * Raw block parsing and the dead-drop candidate scan, side by side with bitcoinjs-lib (and
 * @scure/btc-signer for single transactions), on generated mainnet-like blocks
 * (test/support/blockgen.ts: ~3,000 txs, ~1.3 MB, 1,200 OP_RETURN outputs).
 *
 * "hot" figures reuse three blocks that stay in cache; "cold" rotates over ~40 MB of block
 * copies (more than the L3 cache), closer to scanning blocks as they arrive.
 */
import { Block as BjsBlock, Transaction as BjsTransaction } from 'bitcoinjs-lib';
import { Transaction as ScureTransaction } from '@scure/btc-signer';
import { parseBlock, parseTransaction, type Tx } from '../src/chain/block.js';
import { opReturnData, scanBlockForCandidates } from '../src/chain/op-return-scan.js';
import { generateBlock } from '../test/support/blockgen.js';
import { compare, round, throughput } from './measure.js';
import type { Emit } from './types.js';

const BJS_PARSE = 'bitcoinjs-lib Block.fromBuffer';

function result(name: string, unit: string, value: number, anchor: string, anchorValue: number) {
  return { name, unit, value: round(value), anchor, anchorValue: round(anchorValue), ratio: round(value / anchorValue) };
}

/** What our scan does, done the bitcoinjs way: parse everything, then look at each output. */
function bitcoinjsScan(raw: Uint8Array): number {
  let hits = 0;
  const txs = BjsBlock.fromBuffer(raw).transactions ?? [];
  for (let t = 1; t < txs.length; t++) {
    for (const out of txs[t]!.outs) {
      const data = out.script[0] === 0x6a ? opReturnData(out.script) : undefined;
      if (data !== undefined && data.length <= 80) hits++;
    }
  }
  return hits;
}

/** Reads every field our parser exposes (views, values, witness items), like bitcoinjs materializes them. */
function touchFields(tx: Tx): number {
  let n = tx.version + tx.locktime;
  for (const i of tx.inputs) {
    n += i.prevTxid.length + i.vout + i.scriptSig.length + i.sequence;
    for (const w of i.witness) n += w.length;
  }
  for (const o of tx.outputs) n += o.script.length + Number(o.value & 1n);
  return n;
}

/** One timed call: `fn` over every block. Results are reduced to a number and dropped, as a consumer would. */
function each(blocks: readonly Uint8Array[], fn: (raw: Uint8Array) => number): () => number {
  return () => {
    let n = 0;
    for (const raw of blocks) n += fn(raw);
    return n;
  };
}

export async function run(emit: Emit): Promise<void> {
  const blocks = [1, 2, 3].map((seed) => generateBlock({ seed }).raw);
  const bytes = blocks.reduce((n, b) => n + b.length, 0);
  const mb = (ms: number) => throughput(bytes, ms, 'MB/s');
  const gb = (ms: number) => throughput(bytes, ms, 'GB/s');

  const parse = compare(
    each(blocks, (raw) => parseBlock(raw).txs.length),
    each(blocks, (raw) => BjsBlock.fromBuffer(raw).transactions!.length),
  );
  emit(result('block.parse', 'MB/s', mb(parse.ours.medianMs), BJS_PARSE, mb(parse.anchor.medianMs)));

  const fields = compare(
    each(blocks, (raw) => parseBlock(raw).txs.reduce((n, tx) => n + touchFields(tx), 0)),
    each(blocks, (raw) => BjsBlock.fromBuffer(raw).transactions!.length),
  );
  emit(result('block.parse-all-fields', 'MB/s', mb(fields.ours.medianMs), BJS_PARSE, mb(fields.anchor.medianMs)));

  const txids = compare(
    each(blocks, (raw) => parseBlock(raw).txs.reduce((n, tx) => n + tx.txidBytes()[0]!, 0)),
    each(blocks, (raw) => BjsBlock.fromBuffer(raw).transactions!.reduce((n, tx) => n + tx.getHash()[0]!, 0)),
  );
  emit(result('block.parse-txids', 'MB/s', mb(txids.ours.medianMs), `${BJS_PARSE} + getHash() per tx`, mb(txids.anchor.medianMs)));

  const scanOptions = { minDataLength: 1, maxDataLength: 80 };
  const scan = compare(
    each(blocks, (raw) => scanBlockForCandidates(raw, scanOptions).length),
    each(blocks, bitcoinjsScan),
  );
  const bjsScanName = `${BJS_PARSE} + OP_RETURN filter`;
  emit(result('block.scan', 'GB/s', gb(scan.ours.medianMs), bjsScanName, gb(scan.anchor.medianMs)));
  emit(result('block.scan-latency', 'ms/block', scan.ours.medianMs / blocks.length, bjsScanName, scan.anchor.medianMs / blocks.length));

  // ~40 MB of distinct copies, visited in turn: the scan reads memory that is not in cache.
  const copies = Array.from({ length: 30 }, (_, i) => blocks[i % blocks.length]!.slice());
  let next = 0;
  const scanNextCopy = () => {
    const found = scanBlockForCandidates(copies[next]!, scanOptions).length;
    next = (next + 1) % copies.length;
    return found;
  };
  const cold = compare(scanNextCopy, each([blocks[0]!], bitcoinjsScan), { warmup: 30 });
  const perBlock = bytes / blocks.length;
  emit(result('block.scan-cold', 'GB/s', throughput(perBlock, cold.ours.medianMs, 'GB/s'), bjsScanName, throughput(blocks[0]!.length, cold.anchor.medianMs, 'GB/s')));

  // Single transactions (the mempool path): parse + txid per tx.
  const txBytes = parseBlock(blocks[0]!)
    .txs.slice(1, 601)
    .map((tx) => tx.bytes.slice());
  const perTx = (ms: number) => txBytes.length / (ms / 1000);
  const ourTx = () => txBytes.reduce((n, b) => n + parseTransaction(b).txidBytes()[0]!, 0);
  const tx = compare(ourTx, () => txBytes.reduce((n, b) => n + BjsTransaction.fromBuffer(b).getHash()[0]!, 0));
  emit(result('tx.parse-txid', 'tx/s', perTx(tx.ours.medianMs), 'bitcoinjs-lib Transaction.fromBuffer + getHash()', perTx(tx.anchor.medianMs)));
  const scureOpts = { allowUnknownOutputs: true, allowUnknownInputs: true, disableScriptCheck: true, allowUnknownVersion: true };
  const scure = compare(ourTx, () => txBytes.reduce((n, b) => n + ScureTransaction.fromRaw(b, scureOpts).id.length, 0), { warmup: 1, rounds: 4 });
  emit(result('tx.parse-txid-vs-scure', 'tx/s', perTx(scure.ours.medianMs), '@scure/btc-signer Transaction.fromRaw + id', perTx(scure.anchor.medianMs)));
}
