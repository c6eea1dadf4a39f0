import { describe, it, expect } from 'vitest';
import { Transaction, Script } from '@scure/btc-signer';
import { parseTransaction } from '../../../src/chain/block.js';
import { dropOutputs } from '../../../src/deaddrop/watch/candidates.js';

/** A one-input tx with a single OP_RETURN push of `data`. */
function txWithData(data: Uint8Array): Uint8Array {
  const tx = new Transaction({ allowUnknownOutputs: true, allowUnknownInputs: true });
  tx.addOutput({ script: Script.encode(['RETURN', data]), amount: 0n });
  tx.addInput({ txid: new Uint8Array(32).fill(1), index: 0, finalScriptSig: new Uint8Array([0x51]) });
  return tx.toBytes(true, false);
}

describe('drop candidates', () => {
  it('keeps envelopes that happen to start with another protocol prefix (trial decryption filters)', () => {
    for (const prefix of ['omni', 'bbn1', 'SAT+']) {
      const data = new Uint8Array(80).fill(7);
      data.set(new TextEncoder().encode(prefix));
      expect(dropOutputs(parseTransaction(txWithData(data))), prefix).toHaveLength(1);
    }
    const commitment = new Uint8Array(60).fill(9);
    commitment.set([0xaa, 0x21, 0xa9, 0xed]);
    expect(dropOutputs(parseTransaction(txWithData(commitment)))).toHaveLength(1);
  });

  it('ignores pushes shorter than the smallest envelope and Runestones', () => {
    expect(dropOutputs(parseTransaction(txWithData(new Uint8Array(42).fill(3))))).toHaveLength(0);
    const tx = new Transaction({ allowUnknownOutputs: true });
    tx.addOutput({ script: new Uint8Array([0x6a, 0x5d, 0x4c, 60, ...new Uint8Array(60)]), amount: 0n });
    tx.addInput({ txid: new Uint8Array(32).fill(1), index: 0, finalScriptSig: new Uint8Array([0x51]) });
    expect(dropOutputs(parseTransaction(tx.toBytes(true, false)))).toHaveLength(0);
  });
});
