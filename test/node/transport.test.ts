import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { NodeIdentity } from '../../src/node/identity.js';
import { ChannelServer, dial } from '../../src/node/transport/ws-transport.js';
import { SecureChannel } from '../../src/node/transport/secure-channel.js';
import type { CloseReason } from '../../src/node/transport/secure-channel.js';
import { FrameDecoder, encodeFrameHeader } from '../../src/node/transport/frame.js';
import { randomBytes } from '../../src/node/crypto.js';
import { toHex } from '../../src/util/bytes.js';
import { waitUntil } from '../support/wait.js';
import { expectCode } from '../support/errors.js';

const alice = NodeIdentity.fromSeed(new Uint8Array(32).fill(1));
const bob = NodeIdentity.fromSeed(new Uint8Array(32).fill(2));
const carol = NodeIdentity.fromSeed(new Uint8Array(32).fill(3));

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function server(opts: Parameters<typeof ChannelServer.listen>[1] = {}) {
  const s = await ChannelServer.listen(alice, opts);
  cleanup.push(() => s.close());
  // echo every frame back, type+1
  s.on('channel', (ch) => ch.on('frame', (type, payload) => ch.send(type + 1, payload)));
  return s;
}

function nextReject(s: ChannelServer): Promise<CloseReason> {
  return new Promise((resolve) => s.once('reject', (reason) => resolve(reason)));
}

async function rawClient(url: string, autoPong = true): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, autoPong });
  ws.on('error', () => {});
  cleanup.push(() => ws.terminate());
  await once(ws, 'open');
  return ws;
}

/** Proves the server still serves honest peers. */
async function stillUp(s: ChannelServer): Promise<void> {
  const ch = await dial(s.url, bob);
  const got = new Promise<Uint8Array>((resolve) => ch.once('frame', (_t, p) => resolve(p)));
  ch.send(7, Uint8Array.of(1, 2, 3));
  expect(Array.from(await got)).toEqual([1, 2, 3]);
  ch.close();
}

describe('frame decoder', () => {
  it('reassembles frames split anywhere and rejects oversize announcements before buffering', () => {
    const payload = randomBytes(1000);
    const wire = Buffer.concat([encodeFrameHeader(3, 1000), payload, encodeFrameHeader(4, 0)]);
    for (const cut of [1, 3, 4, 5, 500, 1004, 1005, 1007]) {
      const d = new FrameDecoder(2000);
      const a = d.push(wire.subarray(0, cut));
      const b = d.push(wire.subarray(cut));
      const frames = [...a.frames, ...b.frames];
      expect(frames.map((f) => f.type)).toEqual([3, 4]);
      expect(toHex(frames[0]!.payload)).toBe(toHex(payload));
    }
    const small = new FrameDecoder(100);
    expect(small.push(encodeFrameHeader(1, 100)).error).toBe('frame-too-large');
    expect(small.push(Uint8Array.of(0, 0, 0, 1, 1)).error).toBe('frame-too-large'); // stays failed
    expect(new FrameDecoder().push(Uint8Array.of(0, 0, 0, 0)).error).toBe('empty-frame');
  });
});

describe('secure channel over ws', () => {
  it('authenticates both identities and carries small and multi-message frames both ways', async () => {
    const s = await server();
    const serverSide = new Promise<SecureChannel>((resolve) => s.once('channel', resolve));
    const ch = await dial(s.url, bob, { expectedRemote: alice.publicKey });
    const sc = await serverSide;
    expect(toHex(ch.remote!)).toBe(toHex(alice.publicKey));
    expect(toHex(sc.remote!)).toBe(toHex(bob.publicKey));
    expect(toHex(ch.handshakeHash!)).toBe(toHex(sc.handshakeHash!));
    const big = randomBytes(300_000);
    const got: Uint8Array[] = [];
    const done = new Promise<void>((resolve) =>
      ch.on('frame', (type, p) => {
        expect(type).toBe(11);
        got.push(p);
        if (got.length === 3) resolve();
      }),
    );
    ch.send(10, Uint8Array.of(42));
    ch.send(10, big);
    ch.send(10, new Uint8Array(0));
    await done;
    expect(Array.from(got[0]!)).toEqual([42]);
    expect(toHex(got[1]!)).toBe(toHex(big));
    expect(got[2]!.length).toBe(0);
    ch.close();
  });

  it('sendFrames packs many frames into shared Noise messages and they arrive whole and in order', async () => {
    const s = await server();
    const ch = await dial(s.url, bob, { expectedRemote: alice.publicKey });
    // 100 frames of 2,034 bytes (mailbox items), one larger than a Noise message, one empty.
    const frames = [
      ...Array.from({ length: 100 }, (_, i) => ({ type: 20, payload: randomBytes(2034).fill(i, 0, 1) })),
      { type: 22, payload: randomBytes(150_000) },
      { type: 24, payload: new Uint8Array(0) },
    ];
    const got: { type: number; payload: Uint8Array }[] = [];
    const done = new Promise<void>((resolve) =>
      ch.on('frame', (type, payload) => {
        got.push({ type, payload: payload.slice() });
        if (got.length === frames.length) resolve();
      }),
    );
    expect(ch.sendFrames(frames)).toBe(true);
    await done;
    expect(got.map((f) => f.type)).toEqual(frames.map((f) => f.type + 1));
    expect(got.map((f) => toHex(f.payload))).toEqual(frames.map((f) => toHex(f.payload)));
    expect(() => ch.sendFrames([{ type: 1, payload: new Uint8Array(5 * 1024 * 1024) }])).toThrow(RangeError);
    ch.close();
    expect(() => ch.sendFrames([{ type: 1, payload: new Uint8Array(1) }])).toThrow(/not open/);
  });

  it('refuses a responder that is not the expected identity, without revealing the initiator', async () => {
    const s = await server();
    const rejected = nextReject(s);
    await expectCode(dial(s.url, bob, { expectedRemote: carol.publicKey }), 'REJECTED');
    expect(await rejected).toBe('remote');
    await stillUp(s);
  });

  it('respects backpressure: send() turns false, drain fires, everything arrives in order', async () => {
    const s = await server({ highWaterBytes: 256 * 1024 });
    const ch = await dial(s.url, bob, { highWaterBytes: 256 * 1024 });
    let received = 0;
    const total = 200;
    const arrived = new Promise<void>((resolve) =>
      ch.on('frame', (_t, p) => {
        expect(new DataView(p.buffer, p.byteOffset).getUint32(0)).toBe(received);
        if (++received === total) resolve();
      }),
    );
    let sawFalse = false;
    for (let i = 0; i < total; i++) {
      const p = new Uint8Array(64 * 1024);
      new DataView(p.buffer).setUint32(0, i);
      if (!ch.send(1, p)) {
        sawFalse = true;
        await new Promise<void>((resolve) => ch.once('drain', () => resolve()));
      }
    }
    await arrived;
    expect(sawFalse).toBe(true);
    ch.close();
  });
});

describe('bad peers are dropped; the node stays up', () => {
  it('text message', async () => {
    const s = await server();
    const r = nextReject(s);
    (await rawClient(s.url)).send('hello');
    expect(await r).toBe('text-message');
    await stillUp(s);
  });

  it('binary garbage as a handshake', async () => {
    const s = await server();
    for (const garbage of [randomBytes(7), randomBytes(32 + 20), randomBytes(2000)]) {
      const r = nextReject(s);
      (await rawClient(s.url)).send(garbage);
      expect(await r).toBe('bad-handshake');
    }
    await stillUp(s);
  });

  it('oversized WebSocket message', async () => {
    const s = await server();
    const r = nextReject(s);
    (await rawClient(s.url)).send(randomBytes(70_000));
    expect(['socket-error', 'remote']).toContain(await r);
    await stillUp(s);
  });

  it('silence during the handshake', async () => {
    const s = await server({ handshakeTimeoutMs: 150 });
    const r = nextReject(s);
    await rawClient(s.url);
    const t0 = Date.now();
    expect(await r).toBe('handshake-timeout');
    expect(Date.now() - t0).toBeLessThan(2000);
    await stillUp(s);
  });

  it('garbage after the handshake, and an oversized frame', async () => {
    const s = await server({ maxFrameBytes: 1024 });
    for (const attack of ['garbage', 'oversize'] as const) {
      const serverSide = new Promise<SecureChannel>((resolve) => s.once('channel', resolve));
      const ws = await rawClient(s.url);
      const ch = new SecureChannel(ws, bob, { initiator: true });
      await new Promise((resolve) => ch.once('open', resolve));
      const sc = await serverSide;
      const serverReason = new Promise<CloseReason>((resolve) => sc.once('close', (reason) => resolve(reason)));
      const clientReason = new Promise<CloseReason>((resolve) => ch.once('close', (reason) => resolve(reason)));
      if (attack === 'garbage') ws.send(randomBytes(100));
      else ch.send(1, new Uint8Array(4000));
      expect(await serverReason).toBe(attack === 'garbage' ? 'decrypt-failed' : 'frame-too-large');
      expect(await clientReason).toBe('remote');
    }
    await stillUp(s);
  });

  it('a peer that stops answering pings is dropped after the idle timeout', async () => {
    const s = await server({ keepaliveMs: 50, idleTimeoutMs: 200 });
    const serverSide = new Promise<SecureChannel>((resolve) => s.once('channel', resolve));
    const ws = await rawClient(s.url, false);
    const ch = new SecureChannel(ws, bob, { initiator: true }, { keepaliveMs: 60_000, idleTimeoutMs: 60_000 });
    const sc = await serverSide;
    const reason = new Promise<CloseReason>((resolve) => sc.once('close', (r) => resolve(r)));
    expect(await reason).toBe('idle-timeout');
    ch.close();
    await stillUp(s);
  });

  it('refuses connections beyond maxConnections at once, while the admitted ones stay open', async () => {
    // Every deadline that could also close a connection (the handshake timeout, and the short one
    // used when slots run short) is far beyond this test, so only the cap can close the third client.
    const s = await server({ maxConnections: 2, handshakeTimeoutMs: 60_000, handshakes: { shortTimeoutMs: 60_000 } });
    const rejects: CloseReason[] = [];
    s.on('reject', (reason) => rejects.push(reason));
    const admitted = [await rawClient(s.url), await rawClient(s.url)]; // both hold a slot while handshaking
    await waitUntil(() => s.size === 2, 'both admitted connections to be counted', { timeoutMs: 2_000, intervalMs: 5 });
    const ws = new WebSocket(s.url);
    ws.on('error', () => {});
    const t0 = Date.now();
    const closed = once(ws, 'close').then(() => 'closed');
    const timeout = new Promise((r) => setTimeout(() => r('still open'), 5_000));
    expect(await Promise.race([closed, timeout])).toBe('closed');
    // Refused on arrival, not by a deadline: well under a second, and no failed handshake reported.
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(rejects).toEqual([]);
    expect(s.size).toBe(2);
    for (const a of admitted) expect(a.readyState).toBe(WebSocket.OPEN);
  });
});

describe('ChannelServer lifecycle', () => {
  it('a listen that fails leaves nothing bound; close is idempotent and frees the port', async () => {
    const id = NodeIdentity.fromSeed(randomBytes(32));
    const first = await ChannelServer.listen(id);
    const port = first.port;
    await expectCode(ChannelServer.listen(id, { port }), 'BACKEND_UNREACHABLE');
    await Promise.all([first.close(), first.close()]);
    await first.close();
    const again = await ChannelServer.listen(id, { port });
    expect(again.port).toBe(port);
    await again.close();
  });
});
