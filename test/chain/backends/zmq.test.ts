/**
 * Bitcoin Core ZMQ feed against local stand-ins: a real zeromq Publisher sending Core-format
 * multipart messages ([topic, body, 4-byte LE counter], sequence bodies as in Core's
 * zmqpublishnotifier.cpp) and a small JSON-RPC server answering like Core. No bitcoind here.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Publisher } from 'zeromq';
import { BitcoindSource } from '../../../src/chain/backends/bitcoind.js';
import { Listeners } from '../../../src/chain/backends/poll.js';
import { ZmqFeed } from '../../../src/chain/backends/zmq.js';
import {
  counterFollows, endpointsFromNotifications, mempoolSeqFollows, parseSequenceBody, parseZmqEndpoint, parseZmqMessage,
  type ZmqEndpoints,
} from '../../../src/chain/backends/zmq-wire.js';
import { parseTransaction } from '../../../src/chain/block.js';
import { openBackend, parseBackendUrl } from '../../../src/chain/open.js';
import type { ChainEvent, ChainSource, ChainTip } from '../../../src/chain/types.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { NETWORK_PARAMS } from '../../../src/util/network.js';
import { fromHex } from '../../../src/util/bytes.js';
import { rawTx } from '../../support/tx.js';
import { waitUntil } from '../../support/wait.js';
import { expectCode } from '../../support/errors.js';

const hash = (n: number): string => n.toString(16).padStart(64, '0');
const tipAt = (height: number): ChainTip => ({ height, hash: hash(0xb000 + height) });

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A minimal valid transaction (one input, one OP_RETURN output); `tag` makes the txid unique. */
function makeTx(tag: number): { raw: Uint8Array; txid: string } {
  const script = Uint8Array.from([0x6a, 4, ...fromHex(tag.toString(16).padStart(8, '0'))]);
  const raw = rawTx([{ txid: hash(tag), vout: 0, sequence: 0xffffffff }], [{ script, value: 0n }]);
  return { raw, txid: parseTransaction(raw).txid };
}

// -- Core stand-ins ---------------------------------------------------------------------------------

interface FakeCore {
  readonly url: string;
  readonly port: number;
  tip: ChainTip;
  mempool: string[];
  /** `getzmqnotifications` answer, or undefined for a node built without ZMQ (-32601). */
  zmq: unknown[] | undefined;
  up: boolean;
  readonly calls: string[];
  close(): Promise<void>;
}

async function fakeCore(): Promise<FakeCore> {
  const core = { tip: tipAt(100), mempool: [] as string[], zmq: undefined as unknown[] | undefined, up: true, calls: [] as string[] };
  const answer = (method: string, params: unknown[]): { result?: unknown; error?: { code: number; message: string } } => {
    switch (method) {
      case 'getblockhash':
        return params[0] === 0 ? { result: NETWORK_PARAMS.regtest.genesisHash } : { error: { code: -8, message: 'Block height out of range' } };
      case 'getblockchaininfo':
        return { result: { chain: 'regtest', blocks: core.tip.height, headers: core.tip.height, bestblockhash: core.tip.hash, initialblockdownload: false, pruned: false } };
      case 'getindexinfo':
        return { result: {} };
      case 'getrawmempool':
        return { result: [...core.mempool] };
      case 'getzmqnotifications':
        return core.zmq ? { result: core.zmq } : { error: { code: -32601, message: 'Method not found' } };
      default:
        return { error: { code: -32601, message: 'Method not found' } };
    }
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (!core.up) return void res.socket?.destroy();
      const { id, method, params } = JSON.parse(body) as { id: number; method: string; params: unknown[] };
      core.calls.push(method);
      const a = answer(method, params);
      res.writeHead(a.error ? (a.error.code === -32601 ? 404 : 500) : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ result: a.result ?? null, error: a.error ?? null, id }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(core, {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  });
}

/** A Core-like ZMQ publisher: per-topic counters, sequence bodies with display-order hashes. */
class CorePub {
  readonly counters = { sequence: 0, rawtx: 0 };
  readonly accepted: string[] = [];
  readonly disconnected: string[] = [];
  endpoint = '';

  private constructor(readonly pub: Publisher) {
    pub.events.on('accept', (e) => this.accepted.push(e.address));
    pub.events.on('disconnect', (e) => this.disconnected.push(e.address));
  }

  static async bind(endpoint = 'tcp://127.0.0.1:0'): Promise<CorePub> {
    const p = new CorePub(new Publisher({ linger: 0 }));
    await p.pub.bind(endpoint);
    p.endpoint = p.pub.lastEndpoint ?? endpoint;
    return p;
  }

  private counter(topic: 'sequence' | 'rawtx'): Buffer {
    const c = Buffer.alloc(4);
    c.writeUInt32LE(this.counters[topic] >>> 0);
    this.counters[topic] = (this.counters[topic] + 1) >>> 0;
    return c;
  }

  /** Pretends `n` messages of `topic` were published and lost. */
  drop(topic: 'sequence' | 'rawtx', n: number): void {
    this.counters[topic] += n;
  }

  async seq(hashHex: string, label: 'C' | 'D' | 'A' | 'R', mempoolSeq?: bigint): Promise<void> {
    const body = Buffer.alloc(mempoolSeq === undefined ? 33 : 41);
    Buffer.from(hashHex, 'hex').copy(body, 0);
    body[32] = label.charCodeAt(0);
    if (mempoolSeq !== undefined) body.writeBigUInt64LE(mempoolSeq, 33);
    await this.pub.send([Buffer.from('sequence'), body, this.counter('sequence')]);
  }

  async rawtx(raw: Uint8Array): Promise<void> {
    await this.pub.send([Buffer.from('rawtx'), Buffer.from(raw), this.counter('rawtx')]);
  }

  async frames(frames: (string | Buffer)[]): Promise<void> {
    await this.pub.send(frames);
  }

  close(): void {
    this.pub.close();
  }
}

// -- harness -------------------------------------------------------------------------------------

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  core: FakeCore;
  pub: CorePub;
  src: BitcoindSource;
  events: ChainEvent[];
}

async function setup(opts: { zmq?: ZmqEndpoints | false | 'pub'; watchdogMs?: number; maxBackoffMs?: number; pub?: CorePub } = {}): Promise<Setup> {
  const core = await fakeCore();
  cleanups.push(() => core.close());
  const pub = opts.pub ?? (await CorePub.bind());
  cleanups.push(() => pub.close());
  const zmq = opts.zmq === 'pub' || !('zmq' in opts) ? { sequence: pub.endpoint } : opts.zmq;
  const src = new BitcoindSource(
    { url: core.url, auth: { user: 'u', pass: 'p' }, rest: false, zmq, zmqTuning: { settleMs: 50, watchdogMs: opts.watchdogMs ?? 60_000, maxBackoffMs: opts.maxBackoffMs ?? 200 } },
    { expectedNetwork: 'regtest', pollIntervalMs: 40, timeoutMs: 2_000 },
  );
  cleanups.push(() => src.close());
  const events: ChainEvent[] = [];
  src.subscribe((e) => events.push(e));
  await src.ready();
  return { core, pub, src, events };
}

const mempoolTxids = (events: ChainEvent[]): string[] => events.flatMap((e) => (e.type === 'mempool-tx' ? [e.txid] : []));
const count = (events: ChainEvent[], type: ChainEvent['type']): number => events.filter((e) => e.type === type).length;
const live = (src: ChainSource) => () => src.capabilities.push;

// -- codec ---------------------------------------------------------------------------------------

describe('ZMQ codec', () => {
  const le32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    return b;
  };
  const ascii = (s: string) => new TextEncoder().encode(s);

  it('reads [topic, body, LE counter] and rejects every other shape', () => {
    const body = new Uint8Array([1, 2, 3]);
    expect(parseZmqMessage([ascii('sequence'), body, le32(0x01020304)])).toEqual({ topic: 'sequence', body, counter: 0x01020304 });
    expect(parseZmqMessage([ascii('rawtx'), body, le32(0xffffffff)])?.counter).toBe(0xffffffff);
    expect(parseZmqMessage([ascii('hashtx'), body, le32(1)])).toBeUndefined();
    expect(parseZmqMessage([ascii('rawtxlock'), body, le32(1)])).toBeUndefined();
    expect(parseZmqMessage([ascii('sequence'), body])).toBeUndefined();
    expect(parseZmqMessage([ascii('sequence'), body, le32(1), body])).toBeUndefined();
    expect(parseZmqMessage([ascii('sequence'), body, new Uint8Array(3)])).toBeUndefined();
  });

  it('reads sequence bodies: C/D are 33 bytes, A/R 41 with an LE u64 mempool sequence', () => {
    const h = 'ab'.repeat(30) + '0001';
    const body = (label: string, seq?: bigint) => {
      const b = Buffer.alloc(seq === undefined ? 33 : 41);
      Buffer.from(h, 'hex').copy(b);
      b[32] = label.charCodeAt(0);
      if (seq !== undefined) b.writeBigUInt64LE(seq, 33);
      return new Uint8Array(b);
    };
    expect(parseSequenceBody(body('C'))).toEqual({ label: 'C', hash: h });
    expect(parseSequenceBody(body('D'))).toEqual({ label: 'D', hash: h });
    expect(parseSequenceBody(body('A', 2n ** 40n + 5n))).toEqual({ label: 'A', hash: h, mempoolSeq: 2n ** 40n + 5n });
    expect(parseSequenceBody(body('R', 7n))).toEqual({ label: 'R', hash: h, mempoolSeq: 7n });
    expect(parseSequenceBody(body('A'))).toBeUndefined(); // A without its sequence
    expect(parseSequenceBody(body('C', 1n))).toBeUndefined(); // C with one
    expect(parseSequenceBody(body('X'))).toBeUndefined();
    expect(parseSequenceBody(new Uint8Array(20))).toBeUndefined();
    expect(parseSequenceBody(body('A', 1n).subarray(1))).toBeUndefined();
  });

  it('finds gaps in the counter (wrapping at 2^32) and in the mempool sequence, allowing the jump after a block', () => {
    expect(counterFollows(undefined, 17)).toBe(true);
    expect(counterFollows(4, 5)).toBe(true);
    expect(counterFollows(4, 6)).toBe(false);
    expect(counterFollows(4, 4)).toBe(false);
    expect(counterFollows(0xffffffff, 0)).toBe(true);
    expect(counterFollows(5, 0)).toBe(false); // the node restarted
    expect(mempoolSeqFollows(undefined, 9n, false)).toBe(true);
    expect(mempoolSeqFollows(9n, 10n, false)).toBe(true);
    expect(mempoolSeqFollows(9n, 12n, false)).toBe(false);
    expect(mempoolSeqFollows(9n, 40n, true)).toBe(true); // block-inclusion removals are counted silently
    expect(mempoolSeqFollows(9n, 9n, true)).toBe(false);
    expect(mempoolSeqFollows(9n, 3n, true)).toBe(false);
  });

  it('validates endpoints and takes them from getzmqnotifications, replacing wildcard hosts', () => {
    expect(parseZmqEndpoint('tcp://127.0.0.1:28332')).toBe('tcp://127.0.0.1:28332');
    expect(parseZmqEndpoint('tcp://[::1]:28332')).toBe('tcp://[::1]:28332');
    expect(parseZmqEndpoint('tcp://node.lan:28332')).toBe('tcp://node.lan:28332');
    expect(parseZmqEndpoint('ipc:///tmp/bitcoind.sock')).toBe('ipc:///tmp/bitcoind.sock');
    for (const bad of ['', 'tcp://host', 'tcp://host:0', 'tcp://host:70000', 'http://host:1', 'tcp://a b:1', 'ipc://']) {
      expect(parseZmqEndpoint(bad)).toBeUndefined();
    }
    const notes = [
      { type: 'pubhashblock', address: 'tcp://0.0.0.0:28330', hwm: 1000 },
      { type: 'pubsequence', address: 'tcp://0.0.0.0:28332', hwm: 1000 },
      { type: 'pubrawtx', address: 'tcp://192.168.1.5:28333', hwm: 1000 },
    ];
    expect(endpointsFromNotifications(notes, 'node.lan')).toEqual({ sequence: 'tcp://node.lan:28332', rawTx: 'tcp://192.168.1.5:28333' });
    expect(endpointsFromNotifications([{ type: 'pubsequence', address: 'tcp://[::]:28332' }], '[::1]')).toEqual({ sequence: 'tcp://[::1]:28332' });
    expect(endpointsFromNotifications([{ type: 'pubsequence', address: 'tcp://*:28332' }], '10.0.0.2')).toEqual({ sequence: 'tcp://10.0.0.2:28332' });
    expect(endpointsFromNotifications([{ type: 'pubrawtx', address: 'tcp://127.0.0.1:1' }], 'h')).toBeUndefined();
    expect(endpointsFromNotifications([], 'h')).toBeUndefined();
    expect(endpointsFromNotifications({ nope: 1 }, 'h')).toBeUndefined();
    expect(endpointsFromNotifications([null, 3, { type: 'pubsequence', address: 'garbage' }], 'h')).toBeUndefined();
  });

  it('reads zmq= and zmqrawtx= from bitcoind URLs', () => {
    expect(parseBackendUrl('bitcoind://u:p@127.0.0.1:18443?zmq=tcp://127.0.0.1:28332')).toMatchObject({ zmq: { sequence: 'tcp://127.0.0.1:28332' } });
    expect(parseBackendUrl('bitcoind://u:p@127.0.0.1:18443?zmq=tcp://127.0.0.1:28332&zmqrawtx=tcp://127.0.0.1:28333')).toMatchObject({
      zmq: { sequence: 'tcp://127.0.0.1:28332', rawTx: 'tcp://127.0.0.1:28333' },
    });
    expect(parseBackendUrl('bitcoind://u:p@127.0.0.1:18443?zmq=0')).toMatchObject({ zmq: false });
    expect(parseBackendUrl('bitcoind://u:p@127.0.0.1:18443')).not.toHaveProperty('zmq');
    for (const url of ['bitcoind://u:SECRETPW@h:1?zmq=http://x:1', 'bitcoind://u:SECRETPW@h:1?zmqrawtx=tcp://x:1', 'bitcoind://u:SECRETPW@h:1?zmq=tcp://x:1&zmqrawtx=nope']) {
      let err: unknown;
      try {
        parseBackendUrl(url);
      } catch (e) {
        err = e;
      }
      expect(isDeaddropError(err, 'BAD_INPUT')).toBe(true);
      expect((err as Error).message).not.toContain('SECRETPW');
    }
  });
});

// -- the feed against the stand-ins --------------------------------------------------------------

describe('BitcoindSource with ZMQ', () => {
  it('goes live after the handshake; A → mempool-tx (with raw bytes when rawtx came first), C/D → tip from RPC, R ignored', async () => {
    const { core, pub, src, events } = await setup();
    expect(src.capabilities.push).toBe(false); // polling until the handshake
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    const t1 = makeTx(1);
    const t2 = makeTx(2);
    // Neither is in the node's mempool: only ZMQ can report them.
    await pub.rawtx(t1.raw);
    await pub.seq(t1.txid, 'A', 1n);
    await pub.seq(t2.txid, 'A', 2n);
    await waitUntil(() => mempoolTxids(events).length === 2, 'two mempool-tx events', { timeoutMs: 5_000, intervalMs: 5 });
    const [e1, e2] = events.filter((e) => e.type === 'mempool-tx');
    expect(e1).toEqual({ type: 'mempool-tx', txid: t1.txid, raw: t1.raw });
    expect(e2).toEqual({ type: 'mempool-tx', txid: t2.txid });

    core.tip = tipAt(101);
    await pub.seq(core.tip.hash, 'C');
    await waitUntil(() => events.some((e) => e.type === 'tip'), 'tip event', { timeoutMs: 5_000, intervalMs: 5 });
    expect(events.find((e) => e.type === 'tip')).toEqual({ type: 'tip', tip: tipAt(101) });

    await pub.seq(t2.txid, 'R', 3n);
    core.tip = tipAt(100);
    await pub.seq(tipAt(101).hash, 'D');
    await waitUntil(() => count(events, 'tip') === 2, 'second tip event', { timeoutMs: 5_000, intervalMs: 5 });
    expect(events.filter((e) => e.type === 'tip').at(-1)).toEqual({ type: 'tip', tip: tipAt(100) });
    expect(mempoolTxids(events)).toEqual([t1.txid, t2.txid]);
    expect(count(events, 'reconnected')).toBe(0);
    expect(src.capabilities.push).toBe(true);
  });

  it('ignores malformed messages without losing its place', async () => {
    const { pub, src, events } = await setup();
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    await pub.frames(['sequence']);
    await pub.frames(['sequence', Buffer.alloc(33), Buffer.alloc(4), Buffer.alloc(1)]);
    await pub.frames(['sequence', Buffer.alloc(33), Buffer.alloc(3)]);
    await pub.frames(['sequencex', Buffer.alloc(33), Buffer.alloc(4)]);
    // Well-formed envelopes with unreadable bodies, counters in order.
    await pub.frames(['sequence', Buffer.alloc(20), Buffer.from([0, 0, 0, 0])]);
    await pub.frames(['sequence', Buffer.concat([Buffer.alloc(32), Buffer.from('X')]), Buffer.from([1, 0, 0, 0])]);
    await pub.frames(['rawtx', Buffer.from('not a transaction'), Buffer.from([0, 0, 0, 0])]);
    pub.drop('sequence', 2);
    pub.drop('rawtx', 1);
    const t = makeTx(3);
    await pub.seq(t.txid, 'A', 1n);
    await waitUntil(() => mempoolTxids(events).length === 1, 'the valid message', { timeoutMs: 5_000, intervalMs: 5 });
    expect(mempoolTxids(events)).toEqual([t.txid]);
    expect(count(events, 'reconnected')).toBe(0);
    expect(src.capabilities.push).toBe(true);
  });

  it('a counter gap triggers a resync and no mempool tx is lost when messages are dropped', async () => {
    const { core, pub, src, events } = await setup();
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    const [t1, t2, t3, t4] = [makeTx(11), makeTx(12), makeTx(13), makeTx(14)];
    core.mempool = [t1.txid];
    await pub.seq(t1.txid, 'A', 1n);
    await waitUntil(() => mempoolTxids(events).length === 1, 't1', { timeoutMs: 5_000, intervalMs: 5 });
    // t2 and t3 enter the mempool but their messages are lost (e.g. a full high-water mark).
    core.mempool = [t1.txid, t2.txid, t3.txid, t4.txid];
    pub.drop('sequence', 2);
    await pub.seq(t4.txid, 'A', 4n);
    await waitUntil(() => mempoolTxids(events).length === 4, 'all four txs', { timeoutMs: 5_000, intervalMs: 5 });
    expect(new Set(mempoolTxids(events))).toEqual(new Set([t1.txid, t2.txid, t3.txid, t4.txid]));
    expect(mempoolTxids(events)).toHaveLength(4); // none twice
    expect(count(events, 'reconnected')).toBe(1);
    const at = events.findIndex((e) => e.type === 'reconnected');
    expect(events[at + 1]).toEqual({ type: 'tip', tip: core.tip }); // then the tip, so followers catch up
    await pause(150);
    expect(mempoolTxids(events)).toHaveLength(4);
  });

  it('a gap in the mempool sequence resyncs too, but the jump after a block does not', async () => {
    const { core, pub, src, events } = await setup();
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    const [t1, t2, t3, t4] = [makeTx(21), makeTx(22), makeTx(23), makeTx(24)];
    await pub.seq(t1.txid, 'A', 10n);
    core.tip = tipAt(101);
    await pub.seq(core.tip.hash, 'C'); // t1 mined: Core counts its removal without a message
    await pub.seq(t2.txid, 'A', 12n);
    await waitUntil(() => mempoolTxids(events).length === 2 && count(events, 'tip') === 1, 't1, the block and t2', { timeoutMs: 5_000, intervalMs: 5 });
    expect(count(events, 'reconnected')).toBe(0);
    // Counters in order but the mempool sequence skips 13: the A for t3 was never sent.
    core.mempool = [t2.txid, t3.txid, t4.txid];
    await pub.seq(t4.txid, 'A', 14n);
    await waitUntil(() => mempoolTxids(events).length === 4, 't3 from the resync', { timeoutMs: 5_000, intervalMs: 5 });
    expect(count(events, 'reconnected')).toBe(1);
    expect(mempoolTxids(events).sort()).toEqual([t1.txid, t2.txid, t3.txid, t4.txid].sort());
  });

  it('falls back to polling when the publisher goes away, and goes live again when it is back', async () => {
    const { core, pub, src, events } = await setup();
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    const t4 = makeTx(4);
    core.mempool = [t4.txid];
    await pub.seq(t4.txid, 'A', 1n); // counter 0
    await waitUntil(() => mempoolTxids(events).includes(t4.txid), 't4', { timeoutMs: 5_000, intervalMs: 5 });
    pub.close();
    await waitUntil(() => !src.capabilities.push, 'fallback to polling', { timeoutMs: 5_000, intervalMs: 5 });
    const t5 = makeTx(5);
    core.mempool = [t4.txid, t5.txid];
    core.tip = tipAt(102);
    await waitUntil(() => mempoolTxids(events).includes(t5.txid) && events.some((e) => e.type === 'tip'), 'polled tx and tip', { timeoutMs: 5_000, intervalMs: 5 });
    // The node comes back (a restart: counters start at 0 again).
    const again = await CorePub.bind(pub.endpoint);
    cleanups.push(() => again.close());
    await waitUntil(live(src), 'ZMQ live again', { timeoutMs: 8_000, intervalMs: 5 });
    // Live means not polling: a tx that only the mempool shows is not reported...
    const t6 = makeTx(6);
    core.mempool = [t4.txid, t5.txid, t6.txid];
    await pause(300);
    expect(mempoolTxids(events)).not.toContain(t6.txid);
    // ...until ZMQ says so. The counter restarted (0 again), so this also resyncs: t6 still comes once.
    await again.seq(t6.txid, 'A', 1n);
    await waitUntil(() => mempoolTxids(events).includes(t6.txid), 't6', { timeoutMs: 5_000, intervalMs: 5 });
    await pause(100);
    expect(mempoolTxids(events).filter((id) => id === t6.txid)).toHaveLength(1);
    expect(mempoolTxids(events).filter((id) => id === t5.txid)).toHaveLength(1);
    expect(mempoolTxids(events).filter((id) => id === t4.txid)).toHaveLength(1);
    // The closed connection is an outage (reconnected once polling works), and the restarted
    // counter a resync (reconnected again).
    expect(count(events, 'disconnected')).toBe(1);
    expect(count(events, 'reconnected')).toBe(2);
  });

  it('notices silence (the RPC tip moved, ZMQ said nothing), polls, and goes live on the next message', async () => {
    const { core, pub, src, events } = await setup({ watchdogMs: 100 });
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    core.tip = tipAt(103); // no C message
    await waitUntil(() => !src.capabilities.push, 'fallback after silence', { timeoutMs: 5_000, intervalMs: 5 });
    await waitUntil(() => events.some((e) => e.type === 'tip' && e.tip.hash === tipAt(103).hash), 'the polled tip', { timeoutMs: 5_000, intervalMs: 5 });
    core.tip = tipAt(104);
    await pub.seq(core.tip.hash, 'C');
    await waitUntil(live(src), 'live again after a message', { timeoutMs: 5_000, intervalMs: 5 });
    await waitUntil(() => events.some((e) => e.type === 'tip' && e.tip.hash === tipAt(104).hash), 'tip 104', { timeoutMs: 5_000, intervalMs: 5 });
  });

  it('keeps going through an RPC outage: disconnected, reconnected, then live again', async () => {
    const { core, pub, src, events } = await setup();
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    core.up = false;
    core.tip = tipAt(105);
    await pub.seq(core.tip.hash, 'C'); // the tip fetch fails
    await waitUntil(() => count(events, 'disconnected') === 1, 'disconnected', { timeoutMs: 5_000, intervalMs: 5 });
    expect(src.capabilities.push).toBe(false);
    core.up = true;
    await waitUntil(() => count(events, 'reconnected') === 1, 'reconnected', { timeoutMs: 5_000, intervalMs: 5 });
    await waitUntil(() => events.some((e) => e.type === 'tip' && e.tip.hash === tipAt(105).hash), 'tip 105', { timeoutMs: 5_000, intervalMs: 5 });
    await waitUntil(live(src), 'live again', { timeoutMs: 5_000, intervalMs: 5 });
  });

  it('an outage that ends with a ZMQ message before the next poll: disconnected, then reconnected, then the tip', async () => {
    // Bitcoin Core restarted: the poller reported the outage and is backing off; the first sign of
    // the node coming back is ZMQ (a message, or the handshake of the new publisher).
    const { core, pub, src, events } = await setup({ maxBackoffMs: 5_000 });
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    core.up = false;
    core.tip = tipAt(106);
    await pub.seq(core.tip.hash, 'C'); // the tip fetch fails: polling, disconnected
    await waitUntil(() => count(events, 'disconnected') === 1, 'disconnected', { timeoutMs: 5_000, intervalMs: 5 });
    await pause(400); // the poller's next attempt is now several hundred ms away
    core.up = true;
    core.tip = tipAt(107);
    await pub.seq(core.tip.hash, 'C');
    await waitUntil(live(src), 'live again', { timeoutMs: 5_000, intervalMs: 5 });
    await waitUntil(() => events.some((e) => e.type === 'tip' && e.tip.hash === tipAt(107).hash), 'tip 107', { timeoutMs: 5_000, intervalMs: 5 });
    const kinds = events.map((e) => e.type);
    const down = kinds.indexOf('disconnected');
    const up = kinds.indexOf('reconnected');
    expect(up, 'reconnected after disconnected').toBeGreaterThan(down);
    expect(events.findIndex((e) => e.type === 'tip' && e.tip.hash === tipAt(107).hash)).toBeGreaterThan(up);
    expect(count(events, 'reconnected')).toBe(1);
  });

  it('a restart quicker than the RPC retries: the closed ZMQ connection is the outage, reconnected follows, then the tip', async () => {
    // The RPC client retries reads through a short outage, so polling alone may never see one.
    const { core, pub, src, events } = await setup();
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    pub.close();
    await waitUntil(() => count(events, 'disconnected') === 1, 'disconnected when the publisher closed the connection', { timeoutMs: 5_000, intervalMs: 5 });
    core.tip = tipAt(108);
    const again = await CorePub.bind(pub.endpoint);
    cleanups.push(() => again.close());
    await waitUntil(live(src), 'live again', { timeoutMs: 8_000, intervalMs: 5 });
    await waitUntil(() => events.some((e) => e.type === 'tip' && e.tip.hash === tipAt(108).hash), 'tip 108', { timeoutMs: 5_000, intervalMs: 5 });
    const kinds = events.map((e) => e.type);
    expect(kinds.indexOf('reconnected')).toBeGreaterThan(kinds.indexOf('disconnected'));
    expect(events.findLastIndex((e) => e.type === 'tip' && e.tip.hash === tipAt(108).hash)).toBeGreaterThan(kinds.indexOf('reconnected'));
    expect(count(events, 'disconnected')).toBe(1);
    expect(count(events, 'reconnected')).toBe(1);
  });

  it('asks the node for its endpoints (getzmqnotifications), wildcard host and all', async () => {
    const pub = await CorePub.bind();
    const port = pub.endpoint.split(':').at(-1);
    const core = await fakeCore();
    cleanups.push(() => core.close(), () => pub.close());
    core.zmq = [
      { type: 'pubsequence', address: `tcp://0.0.0.0:${port}`, hwm: 1000 },
      { type: 'pubrawtx', address: `tcp://0.0.0.0:${port}`, hwm: 1000 },
    ];
    const src = new BitcoindSource({ url: core.url, auth: { user: 'u', pass: 'p' }, rest: false, zmqTuning: { settleMs: 50 } }, { expectedNetwork: 'regtest', pollIntervalMs: 40 });
    cleanups.push(() => src.close());
    const events: ChainEvent[] = [];
    src.subscribe((e) => events.push(e));
    await src.ready();
    await waitUntil(live(src), 'ZMQ live from discovery', { timeoutMs: 5_000, intervalMs: 5 });
    const t = makeTx(7);
    await pub.rawtx(t.raw);
    await pub.seq(t.txid, 'A', 1n);
    await waitUntil(() => events.length > 0, 'the tx', { timeoutMs: 5_000, intervalMs: 5 });
    expect(events).toEqual([{ type: 'mempool-tx', txid: t.txid, raw: t.raw }]);
    expect(core.calls).toContain('getzmqnotifications');
  });

  it('polls a node without ZMQ, and zmq=false never asks', async () => {
    for (const zmq of [undefined, false] as const) {
      const { core, src, events } = await setup({ zmq });
      const t = makeTx(8);
      core.mempool = [t.txid];
      await waitUntil(() => mempoolTxids(events).includes(t.txid), 'polled tx', { timeoutMs: 5_000, intervalMs: 5 });
      expect(src.capabilities.push).toBe(false);
      expect(core.calls.includes('getzmqnotifications')).toBe(zmq === undefined);
    }
  });

  it('reads rawtx from its own endpoint when zmqrawtx is separate', async () => {
    const rawPub = await CorePub.bind();
    cleanups.push(() => rawPub.close());
    const seqPub = await CorePub.bind();
    const { src, events } = await setup({ pub: seqPub, zmq: { sequence: seqPub.endpoint, rawTx: rawPub.endpoint } });
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    await waitUntil(() => rawPub.accepted.length === 1, 'rawtx subscriber connected', { timeoutMs: 5_000, intervalMs: 5 });
    await pause(100); // its subscription reaches the publisher
    const t = makeTx(9);
    await rawPub.rawtx(t.raw);
    await pause(50); // two sockets: no ordering between them
    await seqPub.seq(t.txid, 'A', 1n);
    await waitUntil(() => events.length > 0, 'the tx', { timeoutMs: 5_000, intervalMs: 5 });
    expect(events).toEqual([{ type: 'mempool-tx', txid: t.txid, raw: t.raw }]);
  });

  it('opens from a backend URL with zmq=', async () => {
    const pub = await CorePub.bind();
    const core = await fakeCore();
    cleanups.push(() => core.close(), () => pub.close());
    const src = await openBackend(`bitcoind://u:p@127.0.0.1:${core.port}?rest=0&zmq=${pub.endpoint}`, { expectedNetwork: 'regtest', pollIntervalMs: 40 });
    cleanups.push(() => src.close());
    await src.ready();
    await waitUntil(live(src), 'ZMQ live', { timeoutMs: 5_000, intervalMs: 5 });
    expect(core.calls).not.toContain('getzmqnotifications');
  });

  it('close() closes the sockets and leaves nothing running', async () => {
    const { core, pub, src, events } = await setup();
    await waitUntil(live(src), 'ZMQ to go live', { timeoutMs: 5_000, intervalMs: 5 });
    expect(pub.accepted).toHaveLength(1);
    await src.close();
    await waitUntil(() => pub.disconnected.length === 1, 'the subscriber to disconnect', { timeoutMs: 5_000, intervalMs: 5 });
    expect(src.capabilities.push).toBe(false);
    const calls = core.calls.length;
    const seen = events.length;
    core.tip = tipAt(110);
    core.mempool = [makeTx(10).txid];
    await pub.seq(core.tip.hash, 'C');
    await pause(250);
    expect(core.calls.length).toBe(calls); // no poller, no watchdog, no tip fetch
    expect(events.length).toBe(seen);
    expect(pub.accepted).toHaveLength(1); // and no reconnection
    expect(() => src.subscribe(() => undefined)).toThrow(/closed/);
  });
});

describe('ZmqFeed lifecycle', () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  it('close during open resolves and leaves no socket, poller or timer', async () => {
    const pub = await CorePub.bind();
    cleanups.push(() => pub.close());
    let tipCalls = 0;
    const events: ChainEvent[] = [];
    const listeners = new Listeners();
    listeners.add((e) => events.push(e));
    const feed = new ZmqFeed({
      endpoints: { sequence: pub.endpoint },
      listeners,
      getTip: async () => {
        tipCalls++;
        return tipAt(100);
      },
      getMempool: async () => [],
      pollIntervalMs: 20,
      settleMs: 10,
    });
    const idle = timers();
    feed.start(tipAt(100), []);
    const opening = feed.ready();
    // The open is still at its first await (loading zeromq): close now.
    await feed.close();
    await expectCode(opening, 'CLOSED');
    const calls = tipCalls;
    await pause(300);
    expect(pub.accepted).toHaveLength(0); // no socket ever connected
    expect(tipCalls).toBe(calls); // no poller
    expect(timers()).toBeLessThanOrEqual(idle); // no timer
    expect(feed.live).toBe(false);
    expect(events).toEqual([]);
    feed.start(tipAt(101), []); // a closed feed does not come back
    await pause(100);
    expect(pub.accepted).toHaveLength(0);
  });
});
