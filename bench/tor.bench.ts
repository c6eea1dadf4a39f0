/**
 * The node over Tor, on a private Tor network on loopback (test/support/tor-network.ts); skipped
 * (nothing emitted) when tor is not installed.
 *
 * - tor.onion.publish_to_connect  ms from ADD_ONION (the node's own key) to the first completed
 *                                  Noise channel through SOCKS; anchor: a direct loopback dial
 * - tor.replicate.16k             MB/s, 16 KiB entries from one node to a new contact through the
 *                                  onion; anchor: the same replication over direct loopback
 *                                  WebSocket, in the same run, alternating
 * The network's start (about 15-50 s) is not measured here: see README "The node over Tor".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerNode } from '../src/node/node.js';
import { NodeIdentity } from '../src/node/identity.js';
import { randomBytes } from '../src/node/crypto.js';
import { TorSocksConnector } from '../src/node/tor/socks.js';
import { dial } from '../src/node/transport/ws-transport.js';
import { startTorNetwork, torAvailable } from '../test/support/tor-network.js';
import type { Emit } from './types.js';
import { toHex } from '../src/util/bytes.js';

const N = 200;
const SIZE = 16 * 1024;

async function untilConnected(fn: () => Promise<void>, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Seconds for a new node to bootstrap from `source`'s invite at `endpoint` and hold all N entries. */
async function replicateOnce(dir: string, source: PeerNode, endpoint: string, socks: TorSocksConnector | null): Promise<number> {
  const intro = source.createIntroductionToken();
  const sink = new PeerNode({
    seed: randomBytes(32), dbPath: join(dir, `sink-${toHex(randomBytes(4))}.sqlite`),
    ...(socks ? { route: (_url: string, peer: Uint8Array) => ({ agent: socks.agent(peer) }) } : {}),
    channel: { handshakeTimeoutMs: 60_000 },
  });
  await sink.ready();
  try {
    const t0 = performance.now();
    await sink.bootstrapFromIntroduction({ pairwiseKey: intro.pairwiseKey, endpoints: [endpoint], token: intro.token });
    await new Promise<void>((resolve, reject) => {
      const give = setTimeout(() => reject(new Error('replication over the bench timed out')), 300_000);
      const check = (): void => {
        if (sink.store.feed(source.id)?.length === N) {
          clearTimeout(give);
          resolve();
        } else setTimeout(check, 2);
      };
      check();
    });
    return (performance.now() - t0) / 1000;
  } finally {
    await sink.close();
  }
}

/** Entry point for bin/bench.js. */
export async function run(emit: Emit): Promise<void> {
  if (!torAvailable()) {
    console.error('tor bench skipped: tor is not installed (regtest/install-tor.sh)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'dd-tor-bench-'));
  const net = await startTorNetwork();
  try {
    console.error(`private Tor network ready in ${net.startSeconds.toFixed(1)} s`);
    const host = await net.startClient('host');
    await net.waitReady(host);
    const socks = new TorSocksConnector(net.client.socks!);
    const seed = randomBytes(32);
    const source = new PeerNode({ seed, dbPath: join(dir, 'src.sqlite') });
    await source.ready();
    const body = randomBytes(SIZE);
    for (let i = 0; i < N; i += 50) source.appendBatch(Array.from({ length: 50 }, () => ({ header: { type: 'blob' }, body })));

    const me = NodeIdentity.fromSeed(randomBytes(32));
    const t0 = performance.now();
    const id = await host.control.addOnion(seed, [{ virtualPort: 80, target: `127.0.0.1:${source.listeningPort}` }]);
    const onion = `ws://${id}.onion`;
    await untilConnected(async () => (await dial(onion, me, { agent: socks.agent('bench'), expectedRemote: source.id, handshakeTimeoutMs: 30_000 })).close('local'));
    const publishMs = performance.now() - t0;
    const d0 = performance.now();
    (await dial(source.endpoints[0]!, me, { expectedRemote: source.id })).close('local');
    const directMs = performance.now() - d0;
    emit({ name: 'tor.onion.publish_to_connect', unit: 'ms', value: publishMs, anchor: 'direct loopback dial + Noise handshake', anchorValue: directMs, ratio: publishMs / directMs });
    me.destroy();

    const MB = (N * SIZE) / 1e6;
    const tor: number[] = [];
    const direct: number[] = [];
    for (let round = 0; round < 2; round++) {
      direct.push(MB / (await replicateOnce(dir, source, source.endpoints[0]!, null)));
      tor.push(MB / (await replicateOnce(dir, source, onion, socks)));
    }
    const best = (xs: number[]): number => Math.max(...xs);
    emit({ name: 'tor.replicate.16k', unit: 'MB/s', value: best(tor), anchor: 'same replication over direct loopback WebSocket', anchorValue: best(direct), ratio: best(tor) / best(direct) });
    await host.control.delOnion(id);
    await source.close();
  } finally {
    await net.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
