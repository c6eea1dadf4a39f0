/**
 * Parallel scanning against real nodes: valid mainnet-shaped blocks (test/support/chaingen.ts)
 * submitted to btcd and, when present, Bitcoin Core (REST, so the prevouts come from
 * spenttxouts), rescanned on one thread and on the scan pool. Same drops, same order.
 */
import { describe, expect, it } from 'vitest';
import { startRegtestNode } from '../../../src/regtest/harness.js';
import { openBackend } from '../../../src/chain/open.js';
import { DropWatcher, type WatcherEvent } from '../../../src/deaddrop/watch/watcher.js';
import { generateChain, MATURITY } from '../../support/chaingen.js';
import { newIdentity } from '../../support/watch.js';
import { chainNodes } from '../../support/nodes.js';

const BIG = 12;

describe.each(chainNodes())('parallel scanning on %s', (kind) => {
  it('finds the drops of generated blocks in block order, with one thread and with the pool', async () => {
    const node = await startRegtestNode({ kind, initialBlocks: 0 });
    const source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
    try {
      await source.ready();
      const who = newIdentity('me');
      const expected: string[] = [];
      for (const b of generateChain({ count: BIG, txCount: 400, candidates: 20, runestones: 100, dropsPerBlock: 2, recipient: who.address, pad: 60 })) {
        expect(await node.rpc('submitblock', [Buffer.from(b.raw).toString('hex')])).toBeNull();
        expected.push(...b.drops.map((d) => d.txid));
      }
      const found: string[][] = [];
      for (const scanThreads of [1, 2]) {
        const events: WatcherEvent[] = [];
        const w = new DropWatcher({ source, store: ':memory:', identities: [who.identity], birthday: MATURITY + 1, follow: false, scanThreads, prefetch: scanThreads * 4, scanPoolAfterMs: 0, onEvent: (e) => events.push(e) });
        try {
          await w.startScanWorkers();
          await w.catchUp();
          expect(w.stats()).toMatchObject({ candidates: 20 * BIG, unscannable: 0, malformedBlocks: 0 });
          if (scanThreads > 1) expect(w.stats().pooledBlocks).toBeGreaterThan(0);
        } finally {
          await w.close();
        }
        found.push(events.filter((e) => e.type === 'drop.confirmed').map((e) => String(e.data['txid'])));
      }
      expect(found[0]).toEqual(expected);
      expect(found[1]).toEqual(expected);
    } finally {
      await source.close();
      await node.stop();
    }
  }, 240_000);
});
