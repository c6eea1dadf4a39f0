import { describe, expect, it } from 'vitest';
import { Listeners, Poller } from '../../../src/chain/backends/poll.js';
import type { ChainEvent, ChainTip } from '../../../src/chain/types.js';
import { DeaddropError } from '../../../src/util/errors.js';
import { waitUntil } from '../../support/wait.js';

const tip = (height: number): ChainTip => ({ height, hash: height.toString(16).padStart(64, '0') });

/** A scripted node: tip, mempool and whether it answers. */
function fakeNode() {
  return { tip: tip(1), mempool: [] as string[], up: true, calls: 0 };
}

function poller(n: ReturnType<typeof fakeNode>, listeners: Listeners, extra?: () => Promise<void>): Poller {
  const guard = () => {
    n.calls++;
    if (!n.up) throw DeaddropError.unreachable('fake node', 'ECONNREFUSED');
  };
  return new Poller({
    intervalMs: 5,
    maxBackoffMs: 20,
    listeners,
    getTip: async () => (guard(), n.tip),
    getMempool: async () => (guard(), [...n.mempool]),
    extra,
  });
}

describe('Poller', () => {
  it('emits each new tip once and new mempool txids once, starting from the baseline', async () => {
    const n = fakeNode();
    n.mempool = ['a'];
    const l = new Listeners();
    const events: ChainEvent[] = [];
    l.add((e) => events.push(e));
    const p = poller(n, l);
    p.start(n.tip, n.mempool);
    n.mempool = ['a', 'b'];
    await waitUntil(() => events.some((e) => e.type === 'mempool-tx'), `events.some((e) => e.type === 'mempool-tx')`, { timeoutMs: 3_000, intervalMs: 5 });
    n.tip = tip(2);
    await waitUntil(() => events.some((e) => e.type === 'tip'), `events.some((e) => e.type === 'tip')`, { timeoutMs: 3_000, intervalMs: 5 });
    await new Promise((r) => setTimeout(r, 50));
    await p.stop();
    expect(events).toEqual([{ type: 'mempool-tx', txid: 'b' }, { type: 'tip', tip: tip(2) }]);
  });

  it('outage: one disconnected, then reconnected followed by the current tip; mempool diff kept across', async () => {
    const n = fakeNode();
    const l = new Listeners();
    const events: ChainEvent[] = [];
    l.add((e) => events.push(e));
    const p = poller(n, l);
    p.start(n.tip, []);
    n.up = false;
    await waitUntil(() => n.calls > 6, 'n.calls > 6', { timeoutMs: 3_000, intervalMs: 5 }); // several failed rounds, with backoff
    expect(events).toEqual([{ type: 'disconnected', reason: 'cannot reach fake node: ECONNREFUSED' }]);
    expect(p.disconnected).toBe(true);
    n.mempool = ['x'];
    n.up = true;
    await waitUntil(() => events.length >= 4, 'events.length >= 4', { timeoutMs: 3_000, intervalMs: 5 });
    await p.stop();
    // The tip is re-sent even though it did not change, so followers re-check their cursor.
    expect(events.slice(1)).toEqual([{ type: 'reconnected' }, { type: 'tip', tip: tip(1) }, { type: 'mempool-tx', txid: 'x' }]);
  });

  it('a throwing listener does not stop the others', async () => {
    const n = fakeNode();
    const l = new Listeners();
    const seen: ChainEvent[] = [];
    l.add(() => {
      throw new Error('buggy listener');
    });
    l.add((e) => seen.push(e));
    const p = poller(n, l);
    p.start(n.tip, []);
    n.tip = tip(5);
    await waitUntil(() => seen.length > 0, 'seen.length > 0', { timeoutMs: 3_000, intervalMs: 5 });
    await p.stop();
    expect(seen[0]).toEqual({ type: 'tip', tip: tip(5) });
  });

  it('stop() waits for the running round and nothing runs afterwards', async () => {
    const n = fakeNode();
    let rounds = 0;
    const p = poller(n, new Listeners(), async () => {
      rounds++;
      await new Promise((r) => setTimeout(r, 30));
    });
    p.start(n.tip);
    await waitUntil(() => rounds > 0, 'rounds > 0', { timeoutMs: 3_000, intervalMs: 5 });
    await p.stop();
    const after = n.calls;
    await new Promise((r) => setTimeout(r, 60));
    expect(n.calls).toBe(after);
  });
});
