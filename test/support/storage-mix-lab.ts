/**
 * Storage servers behind mixnet providers, for the storage-over-mixnet tests
 * (test/node/storage/mixnet-read.int.test.ts, mixnet-put.int.test.ts): the loopback mixnet of
 * mix-world.ts (providers A and B, one mix per layer, real sockets, Sphinx packets), storage
 * servers whose mailboxes are at provider B and whose listeners record every connection, and
 * one client node homed at provider A.
 */
import { join } from 'node:path';
import type { NodeIdentity } from '../../src/node/identity.js';
import type { MixnetService } from '../../src/node/mixnet/service.js';
import { StorageClient, type ServerInfo } from '../../src/node/storage/client.js';
import { MixStorageReads } from '../../src/node/storage/mix-client.js';
import { STORE_REQUEST } from '../../src/node/storage/mix-codec.js';
import { MixStorageServer } from '../../src/node/storage/server/mix-server.js';
import { ShareStore } from '../../src/node/storage/server/share-store.js';
import { StorageServer } from '../../src/node/storage/server/storage-service.js';
import type { ChannelServer } from '../../src/node/transport/ws-transport.js';
import { toHex } from '../../src/util/bytes.js';
import { MixWorld } from './mix-world.js';
import { waitUntil } from './wait.js';

/** Records every channel opened to it (with the peer's key) and every refused handshake. */
export class RecordingServer extends StorageServer {
  readonly seen: string[] = [];
  constructor(server: ChannelServer, store: ShareStore) {
    super(server, store);
    server.on('channel', (ch) => this.seen.push(ch.remote ? toHex(ch.remote) : '?'));
    server.on('reject', (reason) => this.seen.push(`rejected:${reason}`));
  }
}

/** One storage server of the lab: its listener, its mixnet node, what serves through it, and who sealed each request. */
export interface LabServer {
  readonly srv: RecordingServer;
  readonly mix: MixnetService;
  readonly mixServer: MixStorageServer;
  readonly sealedBy: string[];
}

export interface StorageMixLabOptions {
  /** Shares go under `<root>/srv<i>`. */
  readonly root: string;
  /** One identity per server. */
  readonly serverIds: readonly NodeIdentity[];
  /** The i-th server's quota and share limit (default 64 MiB, no share limit). */
  readonly store?: (i: number) => { quotaBytes: number; maxShareBytes?: number };
  /** Whom every server stores for (default: the mix server's own default). */
  readonly mayStore?: (sender: Uint8Array) => boolean;
  /** The client node, homed at provider A. */
  readonly client: NodeIdentity;
}

export class StorageMixLab {
  readonly world = new MixWorld();
  readonly servers: LabServer[] = [];
  #client: MixnetService | undefined;
  #reads: MixStorageReads | undefined;
  #providerB: Uint8Array | undefined;

  /** The client's mixnet node. */
  get client(): MixnetService {
    if (!this.#client) throw new Error('lab not started');
    return this.#client;
  }

  /** The client's reads (and puts) through the mixnet. */
  get reads(): MixStorageReads {
    if (!this.#reads) throw new Error('lab not started');
    return this.#reads;
  }

  /** What the servers announce: key, listener, and provider B, where their mailboxes are. */
  get infos(): ServerInfo[] {
    const provider = this.#providerB;
    if (!provider) throw new Error('lab not started');
    return this.servers.map((s) => ({ id: s.mix.identityKey, url: s.srv.url, provider }));
  }

  async start(o: StorageMixLabOptions): Promise<void> {
    const pa = await this.world.start({ provider: true, meanDelayMs: 0 });
    const pb = await this.world.start({ provider: true, meanDelayMs: 0 });
    for (const layer of [1, 2, 3]) await this.world.start({ layer, meanDelayMs: 0 });
    for (const [i, id] of o.serverIds.entries()) {
      const store = new ShareStore({ dir: join(o.root, `srv${i}`), ...(o.store?.(i) ?? { quotaBytes: 1 << 26 }) });
      const srv = await RecordingServer.start(id, store);
      const mix = await this.world.start({ identity: id, home: pb.identityKey, homeEndpoint: pb.url!, meanDelayMs: 0 });
      const mixServer = new MixStorageServer(mix, store);
      if (o.mayStore) mixServer.mayStore = o.mayStore;
      mixServer.start();
      const sealedBy: string[] = [];
      mix.on('data', (from, plain) => {
        if (plain[0] === STORE_REQUEST) sealedBy.push(toHex(from));
      });
      this.servers.push({ srv, mix, mixServer, sealedBy });
    }
    this.#client = await this.world.start({ identity: o.client, home: pa.identityKey, homeEndpoint: pa.url!, meanDelayMs: 0 });
    // Two providers and three mixes publish descriptors.
    const client = this.#client;
    await waitUntil(() => [client, ...this.servers.map((s) => s.mix)].every((m) => m.connected && m.directory.descriptors().length === 5) || undefined, 'every node linked to its provider with the whole directory');
    this.#reads = new MixStorageReads(client);
    this.#providerB = pb.identityKey;
  }

  /**
   * A client of `who` that reaches `to` only through the mixnet: every dial is refused.
   * `through`: what else goes through it besides reads (renewals, puts).
   */
  mixOnly(who: NodeIdentity, to: ServerInfo[], through: { renewsThroughReads?: boolean; putsThroughReads?: boolean } = {}): StorageClient {
    return new StorageClient(who, to, {
      route: () => null,
      reads: (s, as) => {
        const ch = this.reads.open(s, as);
        if (!ch) throw new Error('no mixnet route to this server');
        return ch;
      },
      ...through,
    });
  }

  async close(): Promise<void> {
    this.#reads?.close();
    for (const s of this.servers) {
      s.mixServer.close();
      await s.srv.close();
    }
    await this.world.close();
  }
}
