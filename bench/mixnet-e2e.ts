/**
 * End-to-end mixnet benchmarks (issue 11), called from bench/mixnet.bench.ts: the 7-node network of
 * the tests on loopback (two providers, one mix per layer, two clients; real sockets, Noise links,
 * all nodes in this process, so on one core). Alice's client sends 5-hop packets through her
 * provider, mix 1, 2, 3 to Bob's provider; a message counts as arrived when Bob's provider has
 * verified it and would store it in Bob's mailbox (the fetch interval of Bob's client is a setting,
 * not a cost of the network). Packet creation by the sender is included.
 *
 * - mixnet.e2e.rate     messages/s with zero delays, 1,000 messages sent as fast as the sender can
 *                       build them. Anchor: raw X25519/s ÷ 29, the X25519 operations one message
 *                       costs end to end (19 to create it, 2 at each of 5 hops), measured in the
 *                       same run: the single-core ceiling of this network.
 * - mixnet.e2e.latency  median ms from send to arrival with zero delays, at a paced 100 messages/s.
 * - mixnet.e2e.delayed.median / .p99  the same with the default Poisson delays (mean 50 ms per mix
 *                       hop, drawn per message as a real sender does). Anchor: the median and 99th
 *                       percentile of the drawn delay sums themselves (the mixing floor); the ratio
 *                       above 1 is what the network adds to the delays.
 */
import { randomBytes } from 'node:crypto';
import { NodeIdentity } from '../src/node/identity.js';
import { MixClient } from '../src/node/mixnet/client.js';
import { routeDelaysMs } from '../src/node/mixnet/delays.js';
import { MixNode } from '../src/node/mixnet/mix-node.js';
import { x25519, x25519Base } from '../src/node/mixnet/primitives.js';
import { MixKeyring } from '../src/node/mixnet/replay.js';
import { createPacket } from '../src/node/mixnet/sphinx.js';
import type { RouteHop } from '../src/node/mixnet/sphinx.js';
import { toHex } from '../src/util/bytes.js';
import { sleep } from '../src/util/time.js';
import { measure, round } from './measure.js';
import type { Emit } from './types.js';

const DEFAULT_MEAN_DELAY_MS = 50;

interface Net {
  readonly route: (delays: readonly number[]) => RouteHop[];
  readonly alice: MixClient;
  readonly bob: Uint8Array;
  /** Arrival time per message index. */
  readonly arrived: Map<number, number>;
  close(): Promise<void>;
}

async function network(): Promise<Net> {
  const directory = new Map<string, string>();
  const nodes: { node: MixNode; mixPublic: Buffer }[] = [];
  const arrived = new Map<number, number>();
  const bob = NodeIdentity.fromSeed(randomBytes(32)).publicKey;
  for (let i = 0; i < 5; i++) {
    const key = randomBytes(32);
    const exit = i === 4;
    const node = new MixNode({
      identity: NodeIdentity.fromSeed(randomBytes(32)), keyring: new MixKeyring({ epoch: 1, privateKey: key }), provider: i === 0 || exit,
      resolve: (a) => directory.get(toHex(a)), linkRate: 1e9, linkBurst: 1e9, maxQueued: 1e6,
      // Bob's provider: note the arrival and consume it (the mailbox would only grow here).
      ...(exit ? { onDelivery: (_m: Buffer, body: Buffer) => (arrived.set(body.readUInt32BE(0), performance.now()), true) } : {}),
    });
    await node.listen();
    directory.set(toHex(node.address), node.url);
    nodes.push({ node, mixPublic: x25519Base(key) });
  }
  const alice = await MixClient.connect(NodeIdentity.fromSeed(randomBytes(32)), nodes[0]!.node.url, nodes[0]!.node.address);
  return {
    route: (delays) => nodes.map((n, i) => ({ address: n.node.address, publicKey: n.mixPublic, delayMs: delays[i] ?? 0 })),
    alice, bob, arrived,
    close: async () => {
      alice.close();
      await Promise.all(nodes.map((n) => n.node.close()));
    },
  };
}

function body(i: number): Buffer {
  const b = randomBytes(1000);
  b.writeUInt32BE(i, 0);
  return b;
}

const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function waitArrived(net: Net, n: number, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (net.arrived.size < n) {
    if (performance.now() > until) throw new Error(`mixnet e2e: ${net.arrived.size} of ${n} messages arrived`);
    await sleep(5);
  }
}

/** Sends `n` messages as fast as they can be built (yielding every 20 so the network runs too). */
async function flood(net: Net, n: number): Promise<number> {
  net.arrived.clear();
  const route = net.route([0, 0, 0, 0, 0]);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    net.alice.send(createPacket(route, net.bob, body(i)));
    if (i % 20 === 19) await new Promise((r) => setImmediate(r));
  }
  await waitArrived(net, n, 120_000);
  return n / ((Math.max(...net.arrived.values()) - t0) / 1000);
}

/** Sends `n` messages at `rate`/s with delays drawn at `meanMs`; latencies and drawn delay sums. */
async function paced(net: Net, n: number, rate: number, meanMs: number): Promise<{ latencies: number[]; floors: number[] }> {
  net.arrived.clear();
  const sentAt: number[] = [];
  const floors: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const delays = routeDelaysMs(5, meanMs);
    floors.push(delays.reduce((a, b) => a + b, 0));
    sentAt.push(performance.now());
    net.alice.send(createPacket(net.route(delays), net.bob, body(i)));
  }
  await waitArrived(net, n, 60_000);
  return { latencies: sentAt.map((t, i) => net.arrived.get(i)! - t), floors };
}

export async function benchEndToEnd(emit: Emit): Promise<void> {
  const net = await network();
  try {
    await flood(net, 100); // warm-up: links dialed, JIT
    const rate = await flood(net, 1000);
    const scalar = randomBytes(32);
    const point = x25519Base(randomBytes(32));
    const raw = 1000 / measure(() => x25519(scalar, point), { minTimeMs: 300, maxIterations: 100_000 }).medianMs;
    emit({ name: 'mixnet.e2e.rate', unit: 'messages/s', value: round(rate), anchor: 'raw X25519/s ÷ 29 (X25519 operations per message end to end, one core)', anchorValue: round(raw / 29), ratio: round(rate / (raw / 29)) });

    const zero = await paced(net, 200, 100, 0);
    emit({ name: 'mixnet.e2e.latency', unit: 'ms', value: round(quantile(zero.latencies, 0.5)) });

    const delayed = await paced(net, 400, 100, DEFAULT_MEAN_DELAY_MS);
    const med = quantile(delayed.latencies, 0.5);
    const p99 = quantile(delayed.latencies, 0.99);
    const floorMed = quantile(delayed.floors, 0.5);
    const floorP99 = quantile(delayed.floors, 0.99);
    const anchor = `the drawn Poisson delays alone (mean ${DEFAULT_MEAN_DELAY_MS} ms per mix hop, 3 mixes)`;
    emit({ name: 'mixnet.e2e.delayed.median', unit: 'ms', value: round(med), anchor, anchorValue: round(floorMed), ratio: round(med / floorMed) });
    emit({ name: 'mixnet.e2e.delayed.p99', unit: 'ms', value: round(p99), anchor, anchorValue: round(floorP99), ratio: round(p99 / floorP99) });
  } finally {
    await net.close();
  }
}
