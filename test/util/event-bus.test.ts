import { describe, it, expect } from 'vitest';
import { EventBus } from '../../src/util/event-bus.js';

describe('EventBus replay history', () => {
  it('keeps drops, PayPub and wallet events when noise and other kinds flood in (per-kind retention)', () => {
    const bus = new EventBus(256);
    bus.publish('drop.confirmed', 'drop:1', {});
    bus.publish('paypub.sale.claimed', 'paypub:1', {});
    bus.publish('wallet.changed', 'wallet:1', {});
    for (let i = 0; i < 5_000; i++) bus.publish('node.peer.rejected', `rej:${i}`, { count: 1 });
    for (let i = 0; i < 5_000; i++) bus.publish('watch.progress', `wp:${i}`, { height: i });
    for (let i = 0; i < 5_000; i++) bus.publish('chain.tip', `tip:${i}`, { height: i });
    const ids = bus.history().map((e) => e.id);
    expect(ids.slice(0, 3)).toEqual(['drop:1', 'paypub:1', 'wallet:1']);
    // Each kind is bounded; noise shares one small history; order is publication order.
    expect(bus.history('chain.').length).toBe(256);
    expect(bus.history('chain.').at(-1)!.id).toBe('tip:4999');
    expect(bus.history('node.peer.rejected').length + bus.history('watch.progress').length).toBeLessThanOrEqual(32);
    expect(bus.history().length).toBeLessThanOrEqual(3 + 256 + 32);
  });

  it('keeps a stored file\'s result when its progress ticks flood in', () => {
    const bus = new EventBus(8);
    bus.publish('storage.put', 'storage:put:1', { si: 'aa' });
    for (let i = 0; i < 1_000; i++) bus.publish('storage.progress', `sp:${i}`, { done: i, total: 1_000 });
    expect(bus.history('storage.').map((e) => e.id).filter((id) => !id.startsWith('sp:'))).toEqual(['storage:put:1']);
    expect(bus.history('storage.progress').length).toBeLessThanOrEqual(32);
  });

  it('keeps the last events of one kind, oldest first', () => {
    const bus = new EventBus(4);
    for (let i = 0; i < 10; i++) bus.publish('drop.pending', `d${i}`, {});
    expect(bus.history('drop.').map((e) => e.id)).toEqual(['d6', 'd7', 'd8', 'd9']);
  });
});
