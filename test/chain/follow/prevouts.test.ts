import { describe, it, expect } from 'vitest';
import { FakeChain } from '../../support/fake-chain.js';
import { outpointKey, PrevoutFetcher } from '../../../src/chain/follow/prevouts.js';
import { DropStore } from '../../../src/deaddrop/watch/drop-store.js';
import type { Prevout } from '../../../src/chain/types.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { txidOf } from '../../support/watch.js';
import { rawTx } from '../../support/tx.js';

function setup() {
  const chain = new FakeChain();
  const prev = rawTx([{ txid: 'aa'.repeat(32), vout: 0 }], [{ script: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(7)), value: 1234n }, { script: Uint8Array.of(0x00, 0x14, ...new Uint8Array(20)), value: 99n }]);
  chain.mine(1, { txs: [prev] });
  let calls = 0;
  const counting = Object.assign(Object.create(chain) as FakeChain, {
    getRawTransaction: async (txid: string) => {
      calls++;
      return chain.getRawTransaction(txid);
    },
  });
  return { chain, counting, prevTxid: txidOf(prev), calls: () => calls };
}

describe('PrevoutFetcher', () => {
  it('fetches each previous tx once, caches through the store, and leaves unknown outpoints out', async () => {
    const { counting, prevTxid, calls } = setup();
    const store = DropStore.open(':memory:');
    try {
      const f = new PrevoutFetcher(counting, store);
      const want = [{ txid: prevTxid, vout: 0 }, { txid: prevTxid, vout: 1 }, { txid: prevTxid, vout: 5 }, { txid: 'bb'.repeat(32), vout: 0 }];
      const first = await f.fetch(want);
      expect(calls()).toBe(2); // one per distinct txid
      expect(first.found.get(outpointKey(prevTxid, 0))?.value).toBe(1234n);
      expect(first.found.get(outpointKey(prevTxid, 1))?.script[0]).toBe(0x00);
      expect(first.found.size).toBe(2);
      expect(first.fresh).toHaveLength(2);
      store.putPrevouts(first.fresh);
      const second = await f.fetch(want.slice(0, 2));
      expect(calls()).toBe(2); // all from the cache
      expect(second.fresh).toEqual([]);
      expect(second.found.get(outpointKey(prevTxid, 0))).toEqual(first.found.get(outpointKey(prevTxid, 0)));
    } finally {
      store.close();
    }
  });

  it('refuses a transaction that does not hash to the txid asked for, and passes other failures on', async () => {
    const { chain, prevTxid } = setup();
    const liar = Object.assign(Object.create(chain) as FakeChain, { getRawTransaction: async () => rawTx([{ txid: 'cc'.repeat(32), vout: 1 }], [{ script: Uint8Array.of(0x51), value: 1n }]) });
    await expect(new PrevoutFetcher(liar, null).fetch([{ txid: prevTxid, vout: 0 }])).rejects.toSatisfy((e) => isDeaddropError(e, 'PROTOCOL'));
    const down = Object.assign(Object.create(chain) as FakeChain, { getRawTransaction: async () => { throw new Error('socket hang up'); } });
    await expect(new PrevoutFetcher(down, null).fetch([{ txid: prevTxid, vout: 0 }])).rejects.toThrow('socket hang up');
  });

  it('uses a backend\'s whole-block prevouts when it offers them', async () => {
    const { chain, prevTxid, calls, counting } = setup();
    const p: Prevout = { script: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32)), value: 5n };
    const bulk = Object.assign(counting, { getBlockPrevouts: async () => new Map([[outpointKey(prevTxid, 0), p]]) });
    const r = await new PrevoutFetcher(bulk, null).fetch([{ txid: prevTxid, vout: 0 }, { txid: prevTxid, vout: 1 }], { blockHash: chain.chain[1]!.hash });
    expect(r.found.get(outpointKey(prevTxid, 0))).toBe(p);
    expect(r.found.get(outpointKey(prevTxid, 1))?.value).toBe(99n); // the rest by getrawtransaction
    expect(calls()).toBe(1);
  });
});
