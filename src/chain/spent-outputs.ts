/**
 * Decoder of Bitcoin Core's REST `/rest/spenttxouts/<hash>.bin` answer (Core 30+): the outputs
 * every transaction of a block spends, read from the node's undo data, in block order.
 *
 * Wire format (serialize.h): CompactSize number of transactions (the coinbase included, with
 * an empty list), then per transaction a CompactSize number of inputs and, per input, a CTxOut:
 * 8-byte little-endian value, CompactSize script length, script.
 *
 * Positional: transaction i of the block, input j spends entry [i][j]. So the prevouts of a few
 * candidate transactions come out of one fetch with no outpoint keys and no per-tx lookups,
 * which is what lets a rescan over full blocks stay I/O-light. The values are the node's word
 * (like `getblock <hash> 3`): they cannot be checked against a txid.
 */
import { csLen, readCS, truncated, view } from './block.js';
import type { Prevout } from './types.js';

/**
 * The prevouts of the transactions at `indexes` (block positions), copied out of `raw`.
 * Throws RangeError when `raw` is malformed or does not have `txCount` transactions; an index
 * at or past the end is simply absent from the result.
 */
export function spentOutputsAt(raw: Uint8Array, txCount: number, indexes: ReadonlySet<number>): Map<number, Prevout[]> {
  const end = raw.length;
  const n = readCS(raw, 0, end, 'spent tx count');
  if (n !== txCount) throw new RangeError(`spent outputs: ${n} transactions, the block has ${txCount}`);
  let pos = csLen(n);
  const out = new Map<number, Prevout[]>();
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let i = 0; i < n; i++) {
    const nIn = readCS(raw, pos, end, 'spent input count');
    pos += csLen(nIn);
    const keep = indexes.has(i);
    const list: Prevout[] = [];
    for (let j = 0; j < nIn; j++) {
      if (end - pos < 9) throw truncated('spent output', 9, pos, end);
      const value = dv.getBigUint64(pos, true);
      pos += 8;
      const len = readCS(raw, pos, end, 'spent script length');
      pos += csLen(len);
      if (len > end - pos) throw truncated('spent script', len, pos, end);
      if (keep) list.push({ value, script: view(raw, pos, pos + len).slice() });
      pos += len;
    }
    if (keep) out.set(i, list);
  }
  if (pos !== end) throw new RangeError(`spent outputs: ${end - pos} trailing bytes`);
  return out;
}
