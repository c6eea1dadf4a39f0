/**
 * Each event is published once (issue 17.3): over a whole rescan through the daemon's EventBus,
 * every event id appears exactly once, `watch.progress` included.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeChain } from '../../support/fake-chain.js';
import { buildDrop } from '../../../src/deaddrop/scan.js';
import { outpointFromHex } from '../../../src/deaddrop/bip352.js';
import { DropWatcher } from '../../../src/deaddrop/watch/watcher.js';
import { type DaemonEvent, EventBus } from '../../../src/util/event-bus.js';
import { hashToHex, newIdentity, opReturn, payload, taprootTestKey, txidOf } from '../../support/watch.js';
import { rawTx } from '../../support/tx.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Ids seen more than once, with their counts. */
function repeated(events: readonly DaemonEvent[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
  return Object.fromEntries([...counts].filter(([, n]) => n > 1));
}

describe('watcher events over a whole rescan', () => {
  it.each([0, 5])('publishes every event id once (progress interval %i ms)', async (progressIntervalMs) => {
    const dir = mkdtempSync(join(tmpdir(), 'event-once-'));
    dirs.push(dir);
    const chain = new FakeChain();
    const B = newIdentity('B');
    const keys = Array.from({ length: 3 }, () => taprootTestKey());
    const fund = rawTx([{ txid: hashToHex(new Uint8Array(randomBytes(32))), vout: 0 }], keys.map((k) => ({ script: k.script, value: 10_000n })));
    chain.mine(1, { txs: [fund] });
    keys.forEach((k, vout) => {
      const d = buildDrop({ inputs: [{ outpoint: outpointFromHex(txidOf(fund), vout), prevoutScript: k.script, privateKey: k.priv }], recipient: B.address, payload: payload('ws://198.51.100.1:80', `m${vout}`) });
      const tx = rawTx([{ txid: txidOf(fund), vout, witness: [new Uint8Array(64)] }], [{ script: opReturn(d.envelope), value: 0n }, { script: k.script, value: 9_000n }]);
      chain.mine(20, {});
      chain.mine(1, { txs: [tx] });
    });
    chain.mine(40);

    const bus = new EventBus(10_000);
    const seen: DaemonEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    const store = join(dir, 'w.sqlite');
    for (const rescan of [false, true]) {
      const w = new DropWatcher({ source: chain, store, identities: [B.identity], follow: false, birthday: 1, rescan, events: bus, progressIntervalMs });
      await w.catchUp();
      await new Promise((r) => setTimeout(r, 20)); // let queued deliveries run
      await w.close();
      seen.push({ id: '--restart--', type: 'marker', time: 0, data: {} });
    }
    const first = seen.slice(0, seen.findIndex((e) => e.type === 'marker'));
    const byType = (list: readonly DaemonEvent[], t: string): number => list.filter((e) => e.type === t).length;
    expect(byType(first, 'drop.confirmed')).toBe(3);
    expect(byType(first, 'watch.progress')).toBeGreaterThan(0);
    expect(first.filter((e) => e.type === 'watch.progress').at(-1)?.data).toEqual({ height: chain.height, tip: chain.height });
    // Within one pass every id is unique; a rescan re-announces progress, never the drops.
    const second = seen.slice(first.length + 1, -1);
    expect(repeated(first)).toEqual({});
    expect(repeated(second)).toEqual({});
    expect(byType(second, 'drop.confirmed')).toBe(0);
  });
});
