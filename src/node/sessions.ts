/**
 * The peer node's sessions: one authenticated, replicating session per connected contact, and
 * the set of feeds the node follows (what every session replicates).
 *
 * One session per contact. When both sides dial at once, both keep the connection initiated by
 * the node with the smaller key, so they converge without coordination. Frames that replication
 * does not handle go to the node (`onFrame`); what happens when a session starts or ends beyond
 * replication (whereabouts, redials) is the node's too (`onStarted`, `onEnded`).
 */
import type { ContactStore } from './contacts.js';
import type { FeedStore } from './log/feed-store.js';
import type { PeerNodeEvents } from './node.js';
import { Replicator } from './replication.js';
import type { SecureChannel } from './transport/secure-channel.js';
import { equalBytes, toHex } from '../util/bytes.js';

/** One connected contact. */
export interface Session {
  readonly node: Uint8Array;
  readonly key: string;
  readonly channel: SecureChannel;
  readonly replicator: Replicator;
  /** Key of the node that dialed. */
  readonly initiatorKey: Uint8Array;
}

/** Emits one of the node's events. */
export type EmitNodeEvent = <K extends keyof PeerNodeEvents & string>(event: K, ...args: Parameters<PeerNodeEvents[K]>) => void;

export interface SessionsOptions {
  /** This node's id. */
  readonly id: Uint8Array;
  readonly feeds: FeedStore;
  readonly contacts: ContactStore;
  readonly batchBytes: number | undefined;
  readonly emit: EmitNodeEvent;
  /** A frame replication did not handle. */
  readonly onFrame: (session: Session, type: number, payload: Uint8Array) => void;
  /** A session just started replicating. */
  readonly onStarted: (session: Session) => void;
  /** A session ended (`reason` 'replaced' when a preferred connection took its place). */
  readonly onEnded: (session: Session, reason: string) => void;
}

/** The sessions of one node, keyed by the contact's node key (hex). */
export class Sessions {
  readonly #opts: SessionsOptions;
  readonly #map = new Map<string, Session>();
  readonly #follows = new Map<string, Uint8Array>();
  #lastReachable = Date.now();

  constructor(opts: SessionsOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#map.size;
  }

  /** When a contact was last connected (now, while one is). */
  get lastReachable(): number {
    return this.#lastReachable;
  }

  markReachable(now: number): void {
    this.#lastReachable = now;
  }

  has(key: string): boolean {
    return this.#map.has(key);
  }

  get(key: string): Session | undefined {
    return this.#map.get(key);
  }

  values(): IterableIterator<Session> {
    return this.#map.values();
  }

  /** Ids of the connected contacts. */
  nodes(): Uint8Array[] {
    return [...this.#map.values()].map((s) => s.node);
  }

  /** The feeds every session replicates. */
  follows(): Uint8Array[] {
    return [...this.#follows.values()];
  }

  /** Follows `feed` and tells the connected contacts. */
  follow(feed: Uint8Array): void {
    const key = toHex(feed);
    if (this.#follows.has(key)) return;
    this.#follows.set(key, feed);
    for (const s of this.#map.values()) s.replicator.announce([feed]);
  }

  /** Follows `feed` without telling anyone (start-up, before any session exists). */
  followQuietly(feed: Uint8Array): void {
    this.#follows.set(toHex(feed), feed);
  }

  /** Turns an authenticated contact connection into a session, unless one is preferred already. */
  attach(ch: SecureChannel): void {
    const id = this.#opts.id;
    const node = ch.remote!;
    const key = toHex(node);
    const initiatorKey = ch.initiator ? id : node;
    const existing = this.#map.get(key);
    if (existing) {
      const preferred = Buffer.compare(id, node) < 0 ? id : node;
      if (equalBytes(existing.initiatorKey, preferred) || !equalBytes(initiatorKey, preferred)) {
        ch.close('local');
        return;
      }
      this.#end(existing, 'replaced');
      existing.channel.close('local');
    }
    this.#start(ch, node, key, initiatorKey);
  }

  /** Handles one frame of `session`: replication first, then the node. */
  deliver(session: Session, type: number, payload: Uint8Array): void {
    if (session.replicator.handle(type, payload)) return;
    this.#opts.onFrame(session, type, payload);
  }

  /** Drops a peer for a protocol violation. */
  drop(ch: SecureChannel, detail: string): void {
    this.#opts.emit('peer.rejected', `protocol: ${detail}`);
    ch.close('protocol', detail);
  }

  /** Closes every session (the node is closing). */
  closeAll(): void {
    for (const s of [...this.#map.values()]) s.channel.close('local');
  }

  #start(ch: SecureChannel, node: Uint8Array, key: string, initiatorKey: Uint8Array): void {
    const { feeds } = this.#opts;
    const replicator = new Replicator({
      store: feeds,
      channel: ch,
      follows: () => this.follows(),
      isFollowed: (feed) => this.#follows.has(toHex(feed)),
      onViolation: (detail) => this.drop(ch, detail),
      onForkProof: (proof) => feeds.addForkProof(proof),
      onError: (err) => {
        this.#opts.emit('peer.rejected', `local error: ${err.message}`);
        ch.close('local');
      },
      batchBytes: this.#opts.batchBytes,
    });
    const session: Session = { node, key, channel: ch, replicator, initiatorKey };
    this.#map.set(key, session);
    this.#lastReachable = Date.now();
    ch.on('frame', (type, payload) => this.deliver(session, type, payload));
    ch.on('close', (reason) => this.#end(session, reason));
    this.#opts.contacts.markSeen(node);
    replicator.start();
    this.#opts.onStarted(session);
    this.#opts.emit('peer.connected', node);
  }

  #end(session: Session, reason: string): void {
    if (this.#map.get(session.key) !== session) return;
    this.#map.delete(session.key);
    session.replicator.stop();
    if (this.#map.size === 0) this.#lastReachable = Date.now();
    this.#opts.emit('peer.disconnected', session.node, reason);
    this.#opts.onEnded(session, reason);
  }
}
