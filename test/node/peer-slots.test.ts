/**
 * Issue 9.6: half-open handshakes cannot lock real peers out of the node. Persistent attackers
 * (a separate process holding hundreds of websocket upgrades that never start the Noise
 * handshake, and reopening every one the server drops) face a per-source and a total bound on
 * handshakes in progress; a real peer still dials and completes its handshake.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../src/node/identity.js';
import { ChannelServer, dial } from '../../src/node/transport/ws-transport.js';
import { HandshakeSlots } from '../../src/node/transport/handshake-slots.js';
import type { SecureChannel } from '../../src/node/transport/secure-channel.js';
import { startSlowClients } from '../support/slow-clients.js';
import { waitUntil } from '../support/wait.js';

const alice = NodeIdentity.fromSeed(new Uint8Array(32).fill(1));
const bob = NodeIdentity.fromSeed(new Uint8Array(32).fill(2));

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function listen(): Promise<ChannelServer> {
  const s = await ChannelServer.listen(alice, {});
  cleanup.push(() => s.close());
  s.on('channel', (ch) => ch.on('frame', (type, payload) => ch.send(type + 1, payload)));
  return s;
}

/** Dials until a handshake completes (an honest peer retries); returns the channel and the attempts. */
async function dialWithRetry(url: string, withinMs: number): Promise<{ ch: SecureChannel; attempts: number; ms: number }> {
  const t0 = performance.now();
  for (let attempts = 1; ; attempts++) {
    try {
      const ch = await dial(url, bob, { expectedRemote: alice.publicKey });
      return { ch, attempts, ms: performance.now() - t0 };
    } catch (err) {
      if (performance.now() - t0 > withinMs) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Samples the connections the server holds (handshaking or open) every 20 ms until stopped; returns the maximum. */
function sampleHandshakes(s: ChannelServer): () => number {
  let max = 0;
  const t = setInterval(() => (max = Math.max(max, s.size)), 20);
  return () => {
    clearInterval(t);
    return max;
  };
}

describe('peer connection slots under half-open floods', () => {
  it('one client holding 300 half-open connections cannot keep a real peer out', { timeout: 60_000 }, async () => {
    const s = await listen();
    const attacker = await startSlowClients('half-open', s.url, 300, { source: '127.0.0.2' });
    cleanup.push(() => attacker.stop());
    const stop = sampleHandshakes(s);
    const { ch, ms } = await dialWithRetry(s.url, 3_000);
    const got = new Promise<Uint8Array>((resolve) => ch.once('frame', (_t, p) => resolve(p)));
    ch.send(7, Uint8Array.of(1, 2, 3));
    expect(Array.from(await got)).toEqual([1, 2, 3]);
    ch.close();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(stop()).toBeLessThanOrEqual(8 + 1); // the per-source bound, plus the real peer mid-handshake
    expect(ms).toBeLessThan(3_000);
  });

  it('many sources: handshakes stay bounded in all, and a real peer still completes its handshake', { timeout: 60_000 }, async () => {
    const s = await listen();
    const stop = sampleHandshakes(s);
    const attackers = await Promise.all(Array.from({ length: 12 }, (_, i) => startSlowClients('half-open', s.url, 30, { source: `127.0.0.${i + 2}` })));
    for (const a of attackers) cleanup.push(() => a.stop());
    // The attackers reopen what is dropped; let the short deadlines and evictions run a while.
    await waitUntil(() => (attackers.reduce((n, a) => n + a.closed, 0) > 50 ? true : undefined), 'the server to drop attackers', 20_000);
    const { ch } = await dialWithRetry(s.url, 15_000);
    expect(ch.isOpen).toBe(true);
    ch.close();
    expect(stop()).toBeLessThanOrEqual(64 + 1); // the total bound on handshakes, plus the real peer's open channel
  });
});

describe('HandshakeSlots', () => {
  it('bounds per source and in all, shortens the deadline when slots run short, evicts only handshakes past it', async () => {
    const slots = new HandshakeSlots({ perSource: 2, total: 4, shortTimeoutMs: 50 });
    const evicted: string[] = [];
    const admit = (src: string, pressure = 0): number | null => {
      // Like the server: evicting closes the channel, whose close releases the slot.
      const slot = slots.admit(src, 10_000, pressure, () => {
        evicted.push(src);
        slot!.done();
      });
      return slot ? slot.timeoutMs : null;
    };
    expect(admit('a')).toBe(10_000);
    expect(admit('a')).toBe(10_000);
    expect(admit('a')).toBeNull(); // per source
    expect(admit('b')).toBe(50); // half of the handshake slots taken: short deadline
    expect(admit('c')).toBe(50);
    expect(admit('d')).toBeNull(); // all taken, none past its short deadline
    await new Promise((r) => setTimeout(r, 60));
    expect(admit('d')).toBe(50); // the oldest ('a') was evicted for it
    expect(evicted).toEqual(['a']);
    expect(slots.size).toBe(4);
    const fresh = new HandshakeSlots({ perSource: 2, total: 4, shortTimeoutMs: 50 });
    expect(fresh.admit('x', 10_000, 0.8, () => undefined)!.timeoutMs).toBe(50); // connection slots short
  });
});
