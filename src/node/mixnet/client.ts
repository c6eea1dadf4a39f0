/**
 * A mixnet client: keeps one outbound, authenticated link to its provider, sends packets through
 * it (the provider is the first hop of every route the client builds) and fetches its mailbox.
 * Packets sent in one turn of the event loop (a burst of feed-relay parts, say) leave in one
 * PACKETS frame (./batch.ts).
 */
import { dial } from '../transport/ws-transport.js';
import type { SecureChannel } from '../transport/secure-channel.js';
import type { NodeIdentity } from '../identity.js';
import {
  FRAME_ALIAS, FRAME_DESCRIPTOR, FRAME_DIRECTORY_DONE, FRAME_DIRECTORY_REQ, FRAME_FETCH, FRAME_FETCH_DONE, FRAME_ITEM, MAX_DESCRIPTOR_BYTES, MAX_MIX_FRAME_BYTES, decodeItem,
} from './wire.js';
import { PacketBatcher, sendPackets } from './batch.js';
import { MAX_SERVED_DESCRIPTORS } from './mix-node.js';
import type { MailboxItem } from './wire.js';
import type { OutgoingPacket } from './sphinx.js';

export class MixClient {
  readonly #identity: NodeIdentity;
  readonly #channel: SecureChannel;
  readonly #batcher = new PacketBatcher((_key, packets) => {
    // The link may have closed since the packets were queued: they are lost like packets in flight.
    if (this.#channel.isOpen) sendPackets(this.#channel, packets);
  });
  #pending: { items: MailboxItem[]; resolve: (items: MailboxItem[]) => void; reject: (e: Error) => void } | undefined;
  #directory: { entries: Uint8Array[]; resolve: (entries: Uint8Array[]) => void; reject: (e: Error) => void } | undefined;

  private constructor(identity: NodeIdentity, channel: SecureChannel) {
    this.#identity = identity;
    this.#channel = channel;
    channel.on('frame', (type, payload) => this.#onFrame(type, payload));
    channel.on('close', () => {
      this.#batcher.clear();
      this.#pending?.reject(new Error('provider link closed'));
      this.#pending = undefined;
      this.#directory?.reject(new Error('provider link closed'));
      this.#directory = undefined;
    });
  }

  /** Connects to the provider at `url`, which must prove identity `provider`. */
  static async connect(identity: NodeIdentity, url: string, provider: Uint8Array): Promise<MixClient> {
    const ch = await dial(url, identity, { expectedRemote: provider, maxFrameBytes: MAX_MIX_FRAME_BYTES });
    return new MixClient(identity, ch);
  }

  /** The client's mailbox id at its provider: its Ed25519 identity key. */
  get mailbox(): Buffer {
    return Buffer.from(this.#identity.publicKey);
  }

  /**
   * Sends a packet whose first hop is this client's provider, at the end of this turn of the event
   * loop with the others sent in it. Throws when the link is closed, as a direct send would.
   */
  send(out: OutgoingPacket): void {
    if (!this.#channel.isOpen) throw new Error('channel is not open');
    this.#batcher.push('', out.packet);
  }

  /**
   * Fetches (and so empties) the mailbox. Rejects after `timeoutMs` when the peer never ends the
   * fetch (e.g. it is a mix, not a provider, and drops FETCH frames).
   */
  fetch(timeoutMs = 10_000): Promise<MailboxItem[]> {
    if (this.#pending) return Promise.reject(new Error('a fetch is already running'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = undefined;
        reject(new Error('mailbox fetch timed out'));
      }, timeoutMs);
      this.#pending = {
        items: [],
        resolve: (items) => {
          clearTimeout(timer);
          resolve(items);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#channel.send(FRAME_FETCH, new Uint8Array(0));
    });
  }

  /** Registers a mailbox alias at the provider (an ALIAS payload from ./alias.ts). Fire and forget. */
  registerAlias(payload: Uint8Array): void {
    this.#channel.send(FRAME_ALIAS, payload);
  }

  /**
   * Asks the provider for the descriptor entries it knows: raw entry bytes, NOT verified here
   * (the caller's directory verifies every signature). At most {@link MAX_SERVED_DESCRIPTORS}.
   */
  fetchDirectory(timeoutMs = 10_000): Promise<Uint8Array[]> {
    if (this.#directory) return Promise.reject(new Error('a directory fetch is already running'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#directory = undefined;
        reject(new Error('directory fetch timed out'));
      }, timeoutMs);
      this.#directory = {
        entries: [],
        resolve: (entries) => {
          clearTimeout(timer);
          resolve(entries);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#channel.send(FRAME_DIRECTORY_REQ, new Uint8Array(0));
    });
  }

  /** Calls `fn` once when the link to the provider closes. */
  onClose(fn: () => void): void {
    this.#channel.once('close', fn);
  }

  close(): void {
    // What was sent in this turn still leaves: a graceful close flushes the socket.
    if (this.#channel.isOpen) this.#batcher.flush();
    this.#channel.close('local');
  }

  #onFrame(type: number, payload: Uint8Array): void {
    const d = this.#directory;
    if (d && type === FRAME_DESCRIPTOR) {
      if (d.entries.length < MAX_SERVED_DESCRIPTORS && payload.length <= MAX_DESCRIPTOR_BYTES) d.entries.push(payload.slice());
      return;
    }
    if (d && type === FRAME_DIRECTORY_DONE) {
      this.#directory = undefined;
      d.resolve(d.entries);
      return;
    }
    const p = this.#pending;
    if (!p) return;
    if (type === FRAME_ITEM) {
      const item = decodeItem(payload);
      if (item) p.items.push(item);
    } else if (type === FRAME_FETCH_DONE) {
      this.#pending = undefined;
      p.resolve(p.items);
    }
  }
}
