/**
 * Watcher latency and rescan speed on a real regtest node (btcd, or bitcoind when BITCOIND is
 * set), with the backend's default polling (250 ms on regtest; btcd has no push channel).
 *
 * 1. Broadcast → `drop.pending`: median over several drops sent from a taproot wallet to a
 *    watched identity. Target (issue 3): at most 1 s when polling btcd. Anchor, measured side by
 *    side for the same drops: when the transaction is first visible in the node's mempool to a
 *    tight 10 ms `getrawmempool` loop (the floor any mempool watcher has).
 * 2. Block mined → `drop.confirmed`: median over the same drops.
 * 3. Rescan: blocks per second of a watcher catching up over the chain (candidate scan, prevouts,
 *    tweak data, index rows, one sqlite transaction per block), against the bare RPC fetch of the
 *    same blocks (getblockhash + getblock) in the same run.
 */
import { randomBytes } from 'node:crypto';
import { startRegtestNode } from '../src/regtest/harness.js';
import { openBackend } from '../src/chain/open.js';
import { sendDrop } from '../src/deaddrop/send.js';
import { DropWatcher, type WatcherEvent } from '../src/deaddrop/watch/watcher.js';
import { TestSender, newIdentity } from '../test/support/watch.js';
import type { Emit } from './types.js';

const DROPS = 9;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number): number => Math.round(x * 10) / 10;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with the time an event matching `pred` arrives (performance.now()). */
function when(events: { e: WatcherEvent; t: number }[], pred: (e: WatcherEvent) => boolean, timeoutMs = 10_000): Promise<number> {
  const until = performance.now() + timeoutMs;
  return new Promise((res, rej) => {
    const tick = (): void => {
      const hit = events.find((x) => pred(x.e));
      if (hit) res(hit.t);
      else if (performance.now() > until) rej(new Error('bench: event did not arrive'));
      else setTimeout(tick, 2);
    };
    tick();
  });
}

export async function run(emit: Emit): Promise<void> {
  const node = await startRegtestNode({ initialBlocks: 101 });
  const source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
  const probe = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
  let watcher: DropWatcher | undefined;
  try {
    await source.ready();
    await probe.ready();
    const B = newIdentity('B');
    const sender = new TestSender(node, source);
    await sender.fund(DROPS + 1, 50_000n);
    await node.mine(1);
    const events: { e: WatcherEvent; t: number }[] = [];
    watcher = new DropWatcher({
      source, store: ':memory:', identities: [B.identity], birthday: (await source.getTip()).height,
      onEvent: (e) => events.push({ e, t: performance.now() }),
    });
    await watcher.ready();
    await watcher.catchUp();

    const pending: number[] = [];
    const visible: number[] = [];
    const confirmed: number[] = [];
    for (let i = 0; i < DROPS; i++) {
      await sleep(50 + Math.floor(Math.random() * 250)); // spread sends over the poll phase
      const t0 = performance.now();
      const sent = sendDrop(sender, { recipient: B.address, payload: { nodeKey: new Uint8Array(randomBytes(32)), token: new Uint8Array(8), message: `b${i}` }, feeRate: 2 });
      const txid = (await sent).txid;
      const seen = (async () => {
        for (;;) {
          if ((await probe.getMempoolTxids()).includes(txid)) return performance.now();
          await sleep(10);
        }
      })();
      const tPending = await when(events, (e) => e.type === 'drop.pending' && e.data['txid'] === txid);
      visible.push((await seen) - t0);
      pending.push(tPending - t0);
      const t1 = performance.now();
      await node.mine(1);
      confirmed.push((await when(events, (e) => e.type === 'drop.confirmed' && e.data['txid'] === txid)) - t1);
    }
    const p = median(pending);
    const v = median(visible);
    console.error(`watcher: broadcast -> drop.pending median ${round(p)} ms (target <= 1000 ms with ${node.kind} polling)`);
    emit({ name: `watcher.broadcast_to_pending.${node.kind}`, unit: 'ms', value: round(p), anchor: 'tx visible in the node mempool (10 ms getrawmempool loop)', anchorValue: round(v), ratio: round(p / v) });
    emit({ name: `watcher.mined_to_confirmed.${node.kind}`, unit: 'ms', value: round(median(confirmed)) });

    // Rescan speed over the whole chain, against fetching the same blocks bare (before and after, averaged).
    const tip = (await source.getTip()).height;
    const fetchAll = async (): Promise<number> => {
      const f0 = performance.now();
      for (let h = 1; h <= tip; h++) await probe.getRawBlock(await probe.getBlockHash(h));
      return performance.now() - f0;
    };
    const before = await fetchAll();
    const rescan = new DropWatcher({ source, store: ':memory:', identities: [B.identity], birthday: 1, follow: false });
    await rescan.ready();
    const r0 = performance.now();
    await rescan.catchUp();
    const rescanMs = performance.now() - r0;
    await rescan.close();
    const fetchMs = (before + (await fetchAll())) / 2;
    emit({ name: `watcher.rescan.${node.kind}`, unit: 'blocks/s', value: round((tip * 1000) / rescanMs), anchor: 'getblockhash + getblock of the same blocks', anchorValue: round((tip * 1000) / fetchMs), ratio: round(fetchMs / rescanMs) });
  } finally {
    await watcher?.close();
    await source.close();
    await probe.close();
    await node.stop();
  }
}
