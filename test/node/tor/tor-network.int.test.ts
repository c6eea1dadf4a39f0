/**
 * The Tor layer against a private Tor network on loopback (test/support/tor-network.ts): an
 * onion published with the node's own Ed25519 key has exactly the address the drop's 3-byte hint
 * names, and a Noise channel reaches it through Tor's SOCKS port.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onionAddress } from '../../../src/deaddrop/endpoint.js';
import { NodeIdentity } from '../../../src/node/identity.js';
import { onionOfSeed } from '../../../src/node/tor/onion-key.js';
import { TorSocksConnector } from '../../../src/node/tor/socks.js';
import type { TorProcess } from '../../../src/node/tor/process.js';
import { ChannelServer, dial } from '../../../src/node/transport/ws-transport.js';
import type { SecureChannel } from '../../../src/node/transport/secure-channel.js';
import { startTorNetwork, torAvailable } from '../../support/tor-network.js';
import type { TorNetwork } from '../../support/tor-network.js';
import { waitUntil } from '../../support/wait.js';
import { expectCode } from '../../support/errors.js';

const HAVE_TOR = torAvailable();

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Dials until the onion answers (a fresh descriptor takes a few seconds to be fetchable). */
async function dialOnion(url: string, me: NodeIdentity, socks: TorSocksConnector, expected: Uint8Array, timeoutMs = 90_000): Promise<SecureChannel> {
  return waitUntil(() => dial(url, me, { agent: socks.agent(expected), expectedRemote: expected, handshakeTimeoutMs: 30_000 }), `the onion ${url} to answer`, {
    timeoutMs,
    intervalMs: 500,
    retryOnError: true,
  });
}

describe.skipIf(!HAVE_TOR)('onions on a private Tor network', () => {
  let net: TorNetwork;
  let host: TorProcess;

  beforeAll(async () => {
    net = await startTorNetwork();
    host = await net.startClient('host');
    await net.waitReady(host);
    console.log(`private Tor network ready in ${net.startSeconds.toFixed(1)} s (${net.relays.length} relays)`);
  }, 180_000);

  afterAll(async () => {
    const pids = [net?.client.pid, host?.pid];
    await net?.stop();
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('publishes an onion whose address is the onion of the node key, and a Noise channel reaches it through SOCKS', async () => {
    const seed = randomBytes(32);
    const server = NodeIdentity.fromSeed(seed);
    const client = NodeIdentity.fromSeed(randomBytes(32));
    const listener = await ChannelServer.listen(server, { host: '127.0.0.1', port: 0 });
    const accepted: SecureChannel[] = [];
    listener.on('channel', (ch) => accepted.push(ch));
    try {
      const t0 = Date.now();
      const id = await host.control.addOnion(seed, [{ virtualPort: 80, target: `127.0.0.1:${listener.port}` }]);
      // Tor's own ServiceID equals our address of the public key (so hint 0x05 names it)
      expect(id).toBe(onionAddress(server.publicKey));
      expect(id).toBe(onionOfSeed(seed));
      const detached = (await host.control.getInfo('onions/detached'))['onions/detached'];
      expect(detached?.split('\n')).toContain(id);

      const socks = new TorSocksConnector(net.client.socks!);
      const ch = await dialOnion(`ws://${id}.onion:80`, client, socks, server.publicKey);
      console.log(`onion published to first Noise channel: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      expect(Buffer.from(ch.remote!).equals(Buffer.from(server.publicKey))).toBe(true);
      await waitUntil(() => (accepted.length === 1 ? true : undefined), 'the onion side to accept the channel', 10_000);
      expect(Buffer.from(accepted[0]!.remote!).equals(Buffer.from(client.publicKey))).toBe(true);
      ch.close('local');

      await host.control.delOnion(id);
      const after = (await host.control.getInfo('onions/detached'))['onions/detached'] ?? '';
      expect(after.split('\n')).not.toContain(id);
    } finally {
      await listener.close();
      server.destroy();
      client.destroy();
    }
  });

  it('refuses a second onion with the same key and a bad DEL_ONION with clear errors', async () => {
    const seed = randomBytes(32);
    const id = await host.control.addOnion(seed, [{ virtualPort: 80, target: '127.0.0.1:9' }]);
    await expectCode(host.control.addOnion(seed, [{ virtualPort: 80, target: '127.0.0.1:9' }]), 'REJECTED');
    await host.control.delOnion(id);
    await expect(host.control.delOnion(id)).rejects.toThrow(/tor refused DEL_ONION: 552/);
  });
});
