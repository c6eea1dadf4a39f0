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
import { opReturnData, parseBlock, parseTransaction, scanBlockForCandidates, type Tx } from '../src/chain/block.js';
import { generateBlock } from '../test/support/blockgen.js';
import { measure, round, throughput } from './measure.js';
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
  const slow = { minIterations: 7, minTimeMs: 1000 };
  const fast = { minIterations: 50, minTimeMs: 500, warmup: 20 };

  const ourParse = measure(each(blocks, (raw) => parseBlock(raw).txs.length), fast);
  const bjsParse = measure(each(blocks, (raw) => BjsBlock.fromBuffer(raw).transactions!.length), slow);
  emit(result('block.parse', 'MB/s', mb(ourParse.medianMs), BJS_PARSE, mb(bjsParse.medianMs)));

  const ourFields = measure(each(blocks, (raw) => parseBlock(raw).txs.reduce((n, tx) => n + touchFields(tx), 0)), fast);
  emit(result('block.parse-all-fields', 'MB/s', mb(ourFields.medianMs), BJS_PARSE, mb(bjsParse.medianMs)));

  const ourTxids = measure(each(blocks, (raw) => parseBlock(raw).txs.reduce((n, tx) => n + tx.txidBytes()[0]!, 0)), slow);
  const bjsTxids = measure(each(blocks, (raw) => BjsBlock.fromBuffer(raw).transactions!.reduce((n, tx) => n + tx.getHash()[0]!, 0)), slow);
  emit(result('block.parse-txids', 'MB/s', mb(ourTxids.medianMs), `${BJS_PARSE} + getHash() per tx`, mb(bjsTxids.medianMs)));

  const scanOptions = { minDataLength: 1, maxDataLength: 80 };
  const ourScan = measure(each(blocks, (raw) => scanBlockForCandidates(raw, scanOptions).length), { ...fast, minIterations: 200 });
  const bjsScan = measure(each(blocks, bitcoinjsScan), slow);
  const bjsScanName = `${BJS_PARSE} + OP_RETURN filter`;
  emit(result('block.scan', 'GB/s', gb(ourScan.medianMs), bjsScanName, gb(bjsScan.medianMs)));
  emit(result('block.scan-latency', 'ms/block', ourScan.medianMs / blocks.length, bjsScanName, bjsScan.medianMs / blocks.length));

  // ~40 MB of distinct copies, visited in turn: the scan reads memory that is not in cache.
  const copies = Array.from({ length: 30 }, (_, i) => blocks[i % blocks.length]!.slice());
  let next = 0;
  const coldOne = measure(
    () => {
      const found = scanBlockForCandidates(copies[next]!, scanOptions).length;
      next = (next + 1) % copies.length;
      return found;
    },
    { warmup: 30, minIterations: 300, minTimeMs: 300 },
  );
  const perBlockBytes = bytes / blocks.length;
  emit(result('block.scan-cold', 'GB/s', throughput(perBlockBytes, coldOne.medianMs, 'GB/s'), bjsScanName, gb(bjsScan.medianMs)));

  // Single transactions (the mempool path): parse + txid per tx.
  const txBytes = parseBlock(blocks[0]!)
    .txs.slice(1, 601)
    .map((tx) => tx.bytes.slice());
  const perTx = (ms: number) => txBytes.length / (ms / 1000);
  const ourTx = measure(() => txBytes.reduce((n, b) => n + parseTransaction(b).txidBytes()[0]!, 0), { minIterations: 20, minTimeMs: 500 });
  const bjsTx = measure(() => txBytes.reduce((n, b) => n + BjsTransaction.fromBuffer(b).getHash()[0]!, 0), { minIterations: 7, minTimeMs: 800 });
  emit(result('tx.parse-txid', 'tx/s', perTx(ourTx.medianMs), 'bitcoinjs-lib Transaction.fromBuffer + getHash()', perTx(bjsTx.medianMs)));
  const scureOpts = { allowUnknownOutputs: true, allowUnknownInputs: true, disableScriptCheck: true, allowUnknownVersion: true };
  const scureTx = measure(() => txBytes.reduce((n, b) => n + ScureTransaction.fromRaw(b, scureOpts).id.length, 0), { minIterations: 5, minTimeMs: 800, warmup: 1 });
  emit(result('tx.parse-txid-vs-scure', 'tx/s', perTx(ourTx.medianMs), '@scure/btc-signer Transaction.fromRaw + id', perTx(scureTx.medianMs)));
}
