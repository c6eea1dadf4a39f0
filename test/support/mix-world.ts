/**
 * In-process mixnet services whose log entries reach each other as replication would deliver
 * them: each node signs real log entries (createEntry) and every entry is given to every running
 * service's `ingest` (and to services started later).
 *
 * `startRelayedPeer` runs a real PeerNode on one of the world's providers, with its node mixnet
 * client and a FeedRelay, optionally unable to dial anyone (so contacts reach it through the
 * providers only).
 */
import { randomBytes } from 'node:crypto';
import { FeedRelay, type FeedRelayOptions } from '../../src/node/mixnet/feed-relay.js';
import { startNodeMixnet } from '../../src/node/mixnet/node-hook.js';
import { PeerNode } from '../../src/node/node.js';
import { waitUntil } from './wait.js';
import { NodeIdentity } from '../../src/node/identity.js';
import { ZERO_HASH, createEntry } from '../../src/node/log/codec.js';
import type { EntryDraft, LogEntry } from '../../src/node/log/codec.js';
import { MAILBOX_TYPE } from '../../src/node/mixnet/directory.js';
import { MixnetService } from '../../src/node/mixnet/service.js';
import type { MixnetServiceOptions } from '../../src/node/mixnet/service.js';

export class MixWorld {
  readonly entries: LogEntry[] = [];
  readonly services = new Set<MixnetService>();
  readonly #feeds = new Map<string, { seq: number; prev: Uint8Array }>();

  /** Appends `draft` to `identity`'s feed and hands the signed entry to every service. */
  publish(identity: NodeIdentity, draft: EntryDraft): LogEntry {
    const key = Buffer.from(identity.publicKey).toString('hex');
    const f = this.#feeds.get(key) ?? { seq: 0, prev: ZERO_HASH };
    const e = createEntry(identity, { seq: f.seq + 1, prev: f.prev, timestamp: Date.now(), header: draft.header, body: draft.body ?? new Uint8Array(0) });
    this.#feeds.set(key, { seq: e.seq, prev: e.hash });
    this.entries.push(e);
    for (const s of this.services) s.ingest(e);
    return e;
  }

  /** Starts a service for `identity` (a fresh one by default) that sees every entry so far. */
  async start(opts: Partial<MixnetServiceOptions> & { identity?: NodeIdentity } = {}): Promise<MixnetService> {
    const identity = opts.identity ?? NodeIdentity.fromSeed(randomBytes(32));
    const s = new MixnetService({
      isContact: () => true, fetchIntervalMs: 100, meanDelayMs: 5, ...opts, identity,
      publish: (d) => this.publish(identity, d),
    });
    this.services.add(s);
    for (const e of this.entries) s.ingest(e);
    await s.start();
    return s;
  }

  /** True once `node` announced a provider in its log. */
  directoryHasMailbox(node: Uint8Array): boolean {
    return this.entries.some((e) => e.header.type === MAILBOX_TYPE && Buffer.from(e.author).equals(node));
  }

  /**
   * A PeerNode homed at provider `home`, linked once it has the descriptors of every service of
   * the world. `dial: false` gives it a route function that refuses every dial.
   */
  async startRelayedPeer(o: { seed: Uint8Array; dbPath: string; home: MixnetService; dial: boolean; relay?: FeedRelayOptions }): Promise<RelayedPeer> {
    const node = new PeerNode({ seed: o.seed, dbPath: o.dbPath, reconnectMinMs: 100, reconnectMaxMs: 400, ...(o.dial ? {} : { route: () => null }) });
    await node.ready();
    const direct: string[] = [];
    for (const ev of ['peer.connected', 'peer.dialed'] as const) node.on(ev, () => direct.push(ev));
    const mix = await startNodeMixnet(node, { home: o.home.identityKey, homeEndpoint: o.home.url!, fetchIntervalMs: 50, meanDelayMs: 2 }, () => undefined);
    const relay = new FeedRelay(node, mix, { intervalMs: 250, resendAfterMs: 1000, ...o.relay });
    relay.start();
    const services = this.services.size;
    await waitUntil(() => (mix.ownEntries() && mix.directory.descriptors().length === services ? true : undefined), 'the node linked to its provider');
    return { node, mix, relay, direct };
  }

  async stop(s: MixnetService): Promise<void> {
    this.services.delete(s);
    await s.close();
  }

  async close(): Promise<void> {
    await Promise.all([...this.services].map((s) => s.close()));
    this.services.clear();
  }
}

/** A PeerNode with its node mixnet client and feed relay (MixWorld.startRelayedPeer). */
export interface RelayedPeer {
  readonly node: PeerNode;
  readonly mix: MixnetService;
  readonly relay: FeedRelay;
  /** Direct sessions and dials seen (must stay empty once dialing is off). */
  readonly direct: string[];
}

export async function stopRelayedPeer(r: RelayedPeer): Promise<void> {
  r.relay.close();
  await r.mix.close();
  await r.node.close();
}
