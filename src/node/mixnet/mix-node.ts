/**
 * A mix node and/or provider (Loopix-style), speaking the mixnet link protocol (./wire.ts) over the
 * node's Noise transport. Every link is authenticated: a node's mixnet address is its Ed25519
 * identity key, and a node dials the next hop expecting exactly that identity.
 *
 * - Mix: processes each PACKET frame (./sphinx.ts under the epoch keys of a {@link MixKeyring}),
 *   holds a relayed packet for the delay the sender chose, then forwards it to the next hop.
 * - Provider: additionally stores delivered packets in mailboxes; a mailbox id is the Ed25519
 *   identity of its client, and only a channel authenticated as that identity may FETCH it.
 *
 * Packets due toward the same next hop in one turn of the event loop leave in one PACKETS frame
 * (./batch.ts), so a burst costs one Noise message per batch instead of one per packet.
 *
 * Bounds: frames above one batch close the link; a PACKET frame of the wrong size, a malformed
 * PACKETS frame, a rejected packet, or a packet beyond the per-link token bucket (which counts
 * packets, not frames) is dropped and counted; the delay queue and each mailbox are bounded.
 * Nothing a peer sends can throw out of this class.
 */
import { ChannelServer, dial } from '../transport/ws-transport.js';
import type { SecureChannel } from '../transport/secure-channel.js';
import type { NodeIdentity } from '../identity.js';
import { MixKeyring } from './replay.js';
import type { RejectReason } from './sphinx.js';
import {
  FRAME_ALIAS, FRAME_DESCRIPTOR, FRAME_DIRECTORY_DONE, FRAME_DIRECTORY_REQ, FRAME_FETCH, FRAME_FETCH_DONE, FRAME_ITEM, FRAME_PACKET, FRAME_PACKETS, MAX_BATCH_PACKETS, MAX_DESCRIPTOR_BYTES, MAX_MIX_FRAME_BYTES, decodePackets, encodeItem,
} from './wire.js';
import { PacketBatcher, sendPackets } from './batch.js';
import { AliasTable, decodeAlias } from './alias.js';
import type { MailboxItem } from './wire.js';
import { PACKET_BYTES } from './params.js';
import { toHex } from '../../util/bytes.js';
import { isDropMailbox } from './cover.js';
import { Lifecycle } from '../../util/lifecycle.js';
import { TokenBucket } from '../../util/token-bucket.js';

/** Finds the endpoint of a mixnet address (from verified descriptors; a map in tests). */
export type Resolver = (address: Uint8Array) => string | undefined;

/** What happened to one packet at this node, for instrumented tests and counters. */
export interface PacketEvent {
  /** Identity of the link the packet came in on. */
  readonly from: Buffer;
  /** Next hop (relay), or the mailbox (deliver and reply). */
  readonly to: Buffer;
  readonly kind: 'relay' | 'deliver' | 'reply';
}

export interface MixNodeOptions {
  readonly identity: NodeIdentity;
  readonly keyring: MixKeyring;
  readonly resolve: Resolver;
  /** Keep mailboxes for clients (provider role). */
  readonly provider?: boolean;
  /** Packets per second a link may send (token bucket rate; default 2,000). */
  readonly linkRate?: number;
  /** Token bucket depth (default 200). */
  readonly linkBurst?: number;
  /** Packets held for their delay at once (default 50,000); beyond, new packets are dropped. */
  readonly maxQueued?: number;
  /** Items per mailbox (default 10,000). */
  readonly maxMailbox?: number;
  /** Called once per processed packet (instrumentation; never given secrets). */
  readonly onPacket?: (event: PacketEvent) => void;
  /** A forward packet delivered here: return true to consume it (the node's own loop cover). */
  readonly onDelivery?: (mailbox: Buffer, body: Buffer) => boolean;
  /** Provider: the raw signed descriptor entries it serves to clients that ask (bootstrap). */
  readonly directoryEntries?: () => Uint8Array[];
  /** Most packets per outgoing batch (default and maximum MAX_BATCH_PACKETS; 1 turns batching off). */
  readonly maxBatch?: number;
}

/** Descriptors served in one directory answer. */
export const MAX_SERVED_DESCRIPTORS = 1000;

/** Counters of dropped input, by reason. */
export type DropCounters = Record<RejectReason | 'frame' | 'rate' | 'queue' | 'mailbox' | 'unreachable' | 'fetch' | 'alias' | 'directory', number>;

export class MixNode {
  readonly #o: Required<Omit<MixNodeOptions, 'onPacket' | 'onDelivery' | 'directoryEntries'>> & Pick<MixNodeOptions, 'onPacket' | 'onDelivery' | 'directoryEntries'>;
  #server: ChannelServer | undefined;
  readonly #life = new Lifecycle('mix node', { open: (signal) => this.#open(signal), close: () => this.#close() });
  #listenAt = { host: '127.0.0.1', port: 0 };
  readonly #links = new Map<string, Promise<SecureChannel | undefined>>();
  /** The links of #links whose dial has finished, for a flush that need not wait a microtask. */
  readonly #ready = new Map<string, SecureChannel>();
  readonly #batcher: PacketBatcher;
  readonly #mailboxes = new Map<string, MailboxItem[]>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #accepted = new Set<SecureChannel>();
  readonly #aliases = new AliasTable();
  #queued = 0;
  readonly drops: DropCounters = { size: 0, point: 0, mac: 0, replay: 0, command: 0, payload: 0, frame: 0, rate: 0, queue: 0, mailbox: 0, unreachable: 0, fetch: 0, alias: 0, directory: 0 };
  /** Packets relayed or delivered. */
  processed = 0;
  /** Drop cover discarded at this provider (cover.ts). */
  coverDiscarded = 0;

  constructor(options: MixNodeOptions) {
    this.#o = { provider: false, linkRate: 2000, linkBurst: 200, maxQueued: 50_000, maxMailbox: 10_000, maxBatch: MAX_BATCH_PACKETS, ...options };
    this.#batcher = new PacketBatcher((key, packets) => this.#sendBatch(key, packets), this.#o.maxBatch);
  }

  /** This node's mixnet address: its Ed25519 identity key. */
  get address(): Buffer {
    return Buffer.from(this.#o.identity.publicKey);
  }

  /** The endpoint peers dial (after `listen`). */
  get url(): string {
    if (!this.#server) throw new Error('not listening');
    return this.#server.url;
  }

  /** Starts accepting links on loopback (or `host`). Once: later calls return the same promise. */
  listen(host = '127.0.0.1', port = 0): Promise<void> {
    if (!this.#life.opened && !this.#life.closing) this.#listenAt = { host, port };
    return this.#life.ready();
  }

  async #open(signal: AbortSignal): Promise<void> {
    const { host, port } = this.#listenAt;
    // Kept even when a close arrived meanwhile: the close hook, which runs next, stops it.
    this.#server = await ChannelServer.listen(this.#o.identity, { host, port, maxFrameBytes: MAX_MIX_FRAME_BYTES, maxConnections: 1024 });
    if (signal.aborted) return;
    this.#server.on('channel', (ch) => this.#attach(ch));
  }

  async #close(): Promise<void> {
    await this.#server?.close();
  }

  /** Number of items waiting in `mailbox`. */
  mailboxSize(mailbox: Uint8Array): number {
    return this.#mailboxes.get(toHex(mailbox))?.length ?? 0;
  }

  /**
   * Stops listening, cancels held packets and closes every link. Links dialled out exist without
   * `listen()`, so they are closed here rather than in the lifecycle's close hook (which runs only
   * after a listen).
   */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    // Packets already due leave on links that are open; a graceful close flushes them.
    this.#batcher.flush();
    for (const ch of this.#accepted) ch.close('local');
    for (const link of this.#links.values()) void link.then((ch) => ch?.close('local'));
    this.#links.clear();
    this.#ready.clear();
    await this.#life.close();
  }

  #attach(ch: SecureChannel): void {
    this.#accepted.add(ch);
    const from = Buffer.from(ch.remote ?? new Uint8Array(32));
    const bucket = new TokenBucket(this.#o.linkRate, this.#o.linkBurst);
    ch.on('close', () => this.#accepted.delete(ch));
    ch.on('frame', (type, payload) => {
      if (type === FRAME_PACKET) {
        if (!bucket.take()) this.drops.rate++;
        else if (payload.length !== PACKET_BYTES) this.drops.frame++;
        else this.#onPacket(from, payload);
      } else if (type === FRAME_PACKETS) {
        this.#onBatch(from, bucket, payload);
      } else if (type === FRAME_FETCH && payload.length === 0) {
        this.#onFetch(from, ch);
      } else if (type === FRAME_ALIAS) {
        // Counted against the same bucket as packets: a flood of signatures to verify costs CPU.
        if (!bucket.take()) this.drops.rate++;
        else this.#onAlias(from, payload);
      } else if (type === FRAME_DIRECTORY_REQ && payload.length === 0) {
        // One answer may be 1,000 frames: it costs the link 100 packets' worth of tokens.
        if (!bucket.take(100)) this.drops.rate++;
        else this.#onDirectory(ch);
      } else {
        this.drops.frame++;
      }
    });
  }

  /**
   * A batch: the bucket counts its packets, so a batch gets no more through than the same packets
   * in PACKET frames would (the first ones the bucket allows; the rest are dropped as `rate`).
   * A malformed batch costs one token, as a malformed PACKET frame does, and is dropped whole.
   */
  #onBatch(from: Buffer, bucket: TokenBucket, payload: Uint8Array): void {
    const packets = decodePackets(payload);
    if (!packets) {
      if (!bucket.take()) this.drops.rate++;
      else this.drops.frame++;
      return;
    }
    const granted = bucket.takeUpTo(packets.length);
    this.drops.rate += packets.length - granted;
    for (let i = 0; i < granted; i++) this.#onPacket(from, packets[i]!);
  }

  /** A client registers a mailbox alias (./alias.ts); only providers keep them. */
  #onAlias(from: Buffer, payload: Uint8Array): void {
    const now = Date.now();
    const r = this.#o.provider ? decodeAlias(payload, this.#o.identity.publicKey, from, now) : null;
    if (!r || !this.#aliases.register(from.toString('hex'), Buffer.from(r.alias).toString('hex'), r.expiresAt, now)) this.drops.alias++;
  }

  /** Serves the verified descriptors this provider knows (the client verifies each one again). */
  #onDirectory(ch: SecureChannel): void {
    if (!this.#o.provider || !this.#o.directoryEntries) {
      this.drops.directory++;
      return;
    }
    try {
      const frames = this.#o.directoryEntries().slice(0, MAX_SERVED_DESCRIPTORS)
        .filter((raw) => raw.length <= MAX_DESCRIPTOR_BYTES)
        .map((raw) => ({ type: FRAME_DESCRIPTOR, payload: raw }));
      // The whole answer in as few Noise messages as it fits, not one per descriptor.
      ch.sendFrames([...frames, { type: FRAME_DIRECTORY_DONE, payload: new Uint8Array(0) }]);
    } catch {
      // The link closed mid-answer: the client asks again.
    }
  }

  #onPacket(from: Buffer, packet: Uint8Array): void {
    const r = this.#o.keyring.process(packet);
    if (!r.ok) {
      this.drops[r.reason]++;
      return;
    }
    if (r.kind === 'relay') {
      if (this.#queued >= this.#o.maxQueued) {
        this.drops.queue++;
        return;
      }
      this.processed++;
      this.#o.onPacket?.({ from, to: r.next, kind: 'relay' });
      if (r.delayMs === 0) {
        // No hold: skip the timer (a timer per packet costs more than the unwrap at high rates).
        this.#forward(r.next, r.packet);
        return;
      }
      this.#queued++;
      const t = setTimeout(() => {
        this.#timers.delete(t);
        this.#queued--;
        this.#forward(r.next, r.packet);
      }, r.delayMs);
      this.#timers.add(t);
      return;
    }
    if (r.kind === 'deliver' && this.#o.onDelivery?.(r.mailbox, r.body)) {
      this.processed++;
      return;
    }
    if (!this.#o.provider) {
      this.drops.command++;
      return;
    }
    if (r.kind === 'deliver' && isDropMailbox(r.mailbox)) {
      this.processed++;
      this.coverDiscarded++;
      this.#o.onPacket?.({ from, to: r.mailbox, kind: r.kind });
      return;
    }
    const key = r.mailbox.toString('hex');
    const box = this.#mailboxes.get(key) ?? [];
    if (box.length >= this.#o.maxMailbox) {
      this.drops.mailbox++;
      return;
    }
    box.push(r.kind === 'deliver' ? { kind: 'deliver', body: r.body } : { kind: 'reply', surbId: r.surbId, payload: r.payload });
    this.#mailboxes.set(key, box);
    this.processed++;
    this.#o.onPacket?.({ from, to: r.mailbox, kind: r.kind });
  }

  #onFetch(from: Buffer, ch: SecureChannel): void {
    if (!this.#o.provider) {
      this.drops.fetch++;
      return;
    }
    const key = from.toString('hex');
    const box = this.#mailboxes.get(key) ?? [];
    this.#mailboxes.delete(key);
    // Forward packets addressed to the client's aliases, tagged with the alias they were sent to.
    const aliased: [string, MailboxItem[]][] = [];
    for (const alias of this.#aliases.aliasesOf(key, Date.now())) {
      const items = this.#mailboxes.get(alias);
      if (!items) continue;
      this.#mailboxes.delete(alias);
      aliased.push([alias, items]);
    }
    try {
      const frames: { type: number; payload: Uint8Array }[] = box.map((item) => ({ type: FRAME_ITEM, payload: encodeItem(item) }));
      for (const [alias, items] of aliased) {
        for (const item of items) if (item.kind === 'deliver') frames.push({ type: FRAME_ITEM, payload: encodeItem({ kind: 'alias', alias: Buffer.from(alias, 'hex'), body: item.body }) });
      }
      frames.push({ type: FRAME_FETCH_DONE, payload: new Uint8Array(0) });
      // The delivery batched: about 32 items per Noise message instead of one message per item.
      ch.sendFrames(frames);
    } catch {
      // The link closed mid-fetch: keep the items for the next fetch.
      this.#mailboxes.set(key, box);
      for (const [alias, items] of aliased) this.#mailboxes.set(alias, items);
    }
  }

  /** Sends a packet this node made itself (mix loop cover) to its first hop. */
  inject(next: Uint8Array, packet: Buffer): void {
    this.#forward(Buffer.from(next), packet);
  }

  /**
   * Queues `packet` for `next` (./batch.ts: it leaves at the end of this turn of the event loop,
   * with the other packets due toward `next`), dialing the link on first use.
   */
  #forward(next: Buffer, packet: Buffer): void {
    const key = next.toString('hex');
    if (!this.#links.has(key)) {
      const url = this.#o.resolve(next);
      if (url === undefined) {
        this.drops.unreachable++;
        return;
      }
      this.#links.set(key, dial(url, this.#o.identity, { expectedRemote: next, maxFrameBytes: MAX_MIX_FRAME_BYTES }).then(
        (ch) => {
          this.#ready.set(key, ch);
          ch.on('close', () => {
            this.#links.delete(key);
            this.#ready.delete(key);
          });
          return ch;
        },
        () => {
          this.#links.delete(key);
          return undefined;
        },
      ));
    }
    this.#batcher.push(key, packet);
  }

  /** One flush's packets for one hop: at once on an open link, else once its dial ends. */
  #sendBatch(key: string, packets: Buffer[]): void {
    const ready = this.#ready.get(key);
    if (ready) return this.#sendOn(ready, packets);
    const link = this.#links.get(key);
    if (!link) {
      this.drops.unreachable += packets.length;
      return;
    }
    void link.then((ch) => this.#sendOn(ch, packets));
  }

  #sendOn(ch: SecureChannel | undefined, packets: Buffer[]): void {
    if (!ch?.isOpen) {
      this.drops.unreachable += packets.length;
      return;
    }
    sendPackets(ch, packets);
  }
}
