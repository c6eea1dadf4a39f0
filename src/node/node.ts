/**
 * PeerNode: the node that the watcher bootstraps. It listens on a WebSocket port, keeps one
 * authenticated session per connected contact, replicates the feeds it follows, publishes its
 * whereabouts to its contacts, and accepts new contacts through single-use invites.
 *
 * DEV NOTES
 * - This class holds the stores and wires the parts together: sessions.ts (one session per
 *   contact, the followed feeds), invite-handshake.ts (a stranger may only send INVITE),
 *   dialer.ts (dials and backed-off redials) and whereabouts-gossip.ts (our bundle, contacts'
 *   bundles, the beacon).
 * - When no contact has been reachable for `beaconAfterMs`, `beacon.needed` fires with our current
 *   bundle: the caller (the daemon) puts it in a beacon drop on chain. `importWhereabouts` takes one
 *   found on chain.
 * - The stores are opened once, in the constructor; the port is opened by `ready()`.
 * - Lifecycle (util/lifecycle.ts): the constructor starts opening; `ready()` returns that promise,
 *   `close()` is memoized, waits for opening, and leaves no timer or socket behind.
 */
import type { Agent } from 'node:http';
import { DeaddropError } from '../util/errors.js';
import { Lifecycle } from '../util/lifecycle.js';
import type { Contact } from './contacts.js';
import { ContactStore } from './contacts.js';
import type { Ed25519KeyPair } from './crypto.js';
import { openNodeDatabase, type SqliteDatabase } from './db.js';
import { Dialer } from './dialer.js';
import { TypedEmitter } from './events.js';
import { NodeIdentity } from './identity.js';
import { InviteHandshake } from './invite-handshake.js';
import { type Introduction, type IssuedIntroductionToken, issueIntroductionToken, TOKEN_BYTES } from './introduction-token.js';
import type { EntryDraft, LogEntry } from './log/codec.js';
import { FeedStore } from './log/feed-store.js';
import { encodeForkProof, type ForkProof } from './log/fork.js';
import type { SignedTreeHead } from './log/merkle.js';
import { type Session, Sessions } from './sessions.js';
import type { ChannelOptions, SecureChannel } from './transport/secure-channel.js';
import { ChannelServer, dial, parseEndpoint } from './transport/ws-transport.js';
import { decodeWhereabouts, WhereaboutsStore, type WhereaboutsRecord } from './whereabouts.js';
import { WhereaboutsGossip } from './whereabouts-gossip.js';
import { MSG } from './wire.js';

/** Options of a PeerNode. Durations in milliseconds. */
export interface PeerNodeOptions {
  /** 32-byte identity seed (the wallet derives it; the node never sees the mnemonic). */
  seed: Uint8Array;
  /** sqlite file of this node (created if missing). */
  dbPath: string;
  /** Listen address (default 127.0.0.1) and port (default 0 = any). */
  host?: string;
  port?: number;
  /** Endpoints to publish (default: the listening URL). */
  advertise?: string[];
  /** Rewrites the endpoints to publish (Tor: the node's onion first, or only it). */
  announce?: (endpoints: string[]) => string[];
  /** Transport timeouts and limits. */
  channel?: ChannelOptions;
  /** Redial backoff bounds (default 1 s .. 60 s). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Default invite lifetime (default 7 days). */
  introductionTokenTtlMs?: number;
  /** How long a stranger has to present an invite, and a joiner waits for the answer (default 10 s). */
  inviteWaitMs?: number;
  /** Whereabouts record lifetime (default 2 h, republished at half-life). */
  whereaboutsTtlMs?: number;
  /** Fire `beacon.needed` after this long with no reachable contact (default 1 h). */
  beaconAfterMs?: number;
  /** Target ENTRIES frame size (default 1 MiB). */
  batchBytes?: number;
  /**
   * How to reach an endpoint, asked before every dial with the peer's key (the pairwise key of an
   * introduction, else the contact's node key) for stream isolation: extra dial options (Tor's
   * SOCKS agent, src/node/tor/), or null to never dial it. Default: directly, `.onion` never.
   */
  route?: (url: string, peer: Uint8Array) => DialRoute | null;
}

/** What {@link PeerNodeOptions.route} returns for an endpoint it lets the node dial. */
export interface DialRoute {
  readonly agent?: Agent;
}

function directRoute(url: string): DialRoute | null {
  return parseEndpoint(url)?.hostname.endsWith('.onion') ? null : {};
}

/** Events of a PeerNode. */
export type PeerNodeEvents = {
  'entry.appended': (entry: LogEntry) => void;
  'entry.replicated': (entry: LogEntry) => void;
  'contact.added': (contact: Contact) => void;
  'fork.detected': (proof: ForkProof) => void;
  /** A contact's endpoints changed through a newer whereabouts record. */
  'whereabouts.updated': (record: WhereaboutsRecord) => void;
  /** A node signed two different whereabouts bundles with the same seq. */
  'whereabouts.equivocation': (node: Uint8Array, seq: number) => void;
  'peer.connected': (node: Uint8Array) => void;
  /** We dialed this node at `url` and the handshake succeeded (how a peer was reached). */
  'peer.dialed': (node: Uint8Array, url: string) => void;
  'peer.disconnected': (node: Uint8Array, reason: string) => void;
  /** A connection was refused (bad handshake, no or invalid invite, protocol violation). */
  'peer.rejected': (reason: string) => void;
  /** No contact reachable for `beaconAfterMs`: publish this bundle in a beacon drop. */
  'beacon.needed': (bundle: Uint8Array) => void;
};

/**
 * A deaddrop peer node.
 * @example
 * const node = new PeerNode({ seed, dbPath: 'node.sqlite' })
 * await node.ready()
 * const intro = node.createIntroductionToken()          // goes into a dead drop
 * await other.bootstrapFromIntroduction(intro)
 * node.append({ header: { type: 'post' }, body: utf8('hi') })
 */
export class PeerNode extends TypedEmitter<PeerNodeEvents> {
  readonly identity: NodeIdentity;
  readonly #opts: PeerNodeOptions;
  readonly #life = new Lifecycle('peer node', { open: (signal) => this.#open(signal), close: () => this.#close() });
  readonly #db: SqliteDatabase;
  readonly #feeds: FeedStore;
  readonly #contacts: ContactStore;
  readonly #places: WhereaboutsStore;
  readonly #sessions: Sessions;
  readonly #invites: InviteHandshake;
  readonly #dialer: Dialer;
  readonly #gossip: WhereaboutsGossip;
  #server: ChannelServer | null = null;
  #maintenance: NodeJS.Timeout | null = null;

  constructor(opts: PeerNodeOptions) {
    super();
    this.#opts = opts;
    this.identity = NodeIdentity.fromSeed(opts.seed);
    const db = openNodeDatabase(opts.dbPath);
    this.#db = db;
    this.#feeds = new FeedStore(db);
    this.#contacts = new ContactStore(db);
    this.#places = new WhereaboutsStore(db);
    const emit = this.emit.bind(this);
    const endpoints = (): string[] => this.endpoints;
    this.#sessions = new Sessions({
      id: this.id, feeds: this.#feeds, contacts: this.#contacts, batchBytes: opts.batchBytes, emit,
      onFrame: (session, type, payload) => this.#onSessionFrame(session, type, payload),
      onStarted: (session) => {
        this.#dialer.cancelRedial(session.key);
        this.#gossip.greet(session);
      },
      onEnded: (session, reason) => {
        if (!this.#life.closing && reason !== 'replaced') this.#dialer.scheduleRedial(session.node);
      },
    });
    this.#invites = new InviteHandshake({
      identity: this.identity, contacts: this.#contacts, sessions: this.#sessions, inviteWaitMs: opts.inviteWaitMs ?? 10_000,
      endpoints, emit, onContactAdded: (contact, added) => this.#onContactAdded(contact, added),
    });
    this.#dialer = new Dialer({
      identity: this.identity, contacts: this.#contacts, sessions: this.#sessions, channel: opts.channel,
      route: (url, peer) => this.#route(url, peer),
      reconnectMinMs: opts.reconnectMinMs ?? 1000, reconnectMaxMs: opts.reconnectMaxMs ?? 60_000,
      signal: this.#life.signal, emit, onUnreachable: (node) => this.#gossip.ask(node),
    });
    this.#gossip = new WhereaboutsGossip({
      identity: this.identity, contacts: this.#contacts, places: this.#places, sessions: this.#sessions, dialer: this.#dialer,
      endpoints, ttlMs: this.#whereaboutsTtl(), beaconAfterMs: this.#beaconAfter(), askIntervalMs: opts.reconnectMinMs ?? 1000, emit,
    });
    // Opening starts at once (hypercore style), so a node that is closed before anyone awaited
    // ready() still closes its database.
    this.#life.ready().catch(() => {
      // surfaced through ready()
    });
  }

  /** Resolves once the port is listening and the contacts are being dialed. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  /** This node's id: its Ed25519 identity key, also its feed id. */
  get id(): Uint8Array {
    return this.identity.publicKey;
  }

  /** Endpoints this node publishes. */
  get endpoints(): string[] {
    const own = this.#opts.advertise && this.#opts.advertise.length > 0 ? this.#opts.advertise.slice() : this.#server ? [this.#server.url] : [];
    return this.#opts.announce ? this.#opts.announce(own) : own;
  }

  /** The port the node listens on (null before it listens). */
  get listeningPort(): number | null {
    return this.#server ? this.#server.port : null;
  }

  /** The feed store (read access for CLI/API: feeds, entries, proofs). */
  get store(): FeedStore {
    this.#live();
    return this.#feeds;
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  async #open(signal: AbortSignal): Promise<void> {
    this.#sessions.followQuietly(this.id);
    for (const c of this.#contacts.list()) this.#sessions.followQuietly(c.node);
    for (const f of this.#contacts.follows()) this.#sessions.followQuietly(f);
    this.#feeds.on('append', (info, entries, local) => this.#onAppend(info.author, entries, local));
    this.#feeds.on('fork', (proof) => this.#onFork(proof));
    this.#server = await ChannelServer.listen(this.identity, { ...this.#opts.channel, host: this.#opts.host, port: this.#opts.port });
    this.#server.on('channel', (ch) => this.#onInbound(ch));
    this.#server.on('reject', (reason) => this.emit('peer.rejected', reason));
    // Closed while the port was opening: start no timer and no dial (#close closes the server).
    if (signal.aborted) return;
    this.#gossip.publish();
    const tick = Math.max(20, Math.min(this.#whereaboutsTtl() / 4, this.#beaconAfter() / 4, 30_000));
    this.#maintenance = setInterval(() => this.#maintain(), tick);
    for (const c of this.#contacts.list()) this.#dialer.connect(c.node);
  }

  /** Stops everything: sessions, dials, timers, the listener, the database. Idempotent. */
  close(): Promise<void> {
    return this.#life.close();
  }

  async #close(): Promise<void> {
    if (this.#maintenance) clearInterval(this.#maintenance);
    this.#dialer.cancelAll();
    this.#sessions.closeAll();
    this.#invites.closeAll();
    await this.#dialer.settled();
    await this.#server?.close();
    this.#db.close();
    this.identity.destroy();
    this.removeAllListeners();
  }

  /** Throws once the node is closing. The stores are open from the constructor on. */
  #live(): void {
    if (this.#life.closing) throw DeaddropError.closed('peer node');
  }

  // ------------------------------------------------------------------------------------------
  // Public API

  /** Appends an entry to our own feed (durable on return); it streams to connected contacts. */
  append(draft: EntryDraft): LogEntry {
    this.#live();
    return this.#feeds.append(this.identity, draft);
  }

  /** Appends entries in one transaction. */
  appendBatch(drafts: readonly EntryDraft[]): LogEntry[] {
    this.#live();
    return this.#feeds.appendBatch(this.identity, drafts);
  }

  /** Signed tree head of our feed: one signed root that proves any of our entries. */
  signTreeHead(): SignedTreeHead {
    this.#live();
    return this.#feeds.signTreeHead(this.identity);
  }

  /** All contacts. */
  contacts(): Contact[] {
    this.#live();
    return this.#contacts.list();
  }

  /** Ids of contacts with an open session. */
  connectedPeers(): Uint8Array[] {
    return this.#sessions.nodes();
  }

  /** Every feed the node replicates: its own, its contacts' and those it follows. */
  followed(): Uint8Array[] {
    this.#live();
    return this.#sessions.follows();
  }

  /** Also replicate `feed` (someone who is not a contact, e.g. a contact's contact). */
  follow(feed: Uint8Array): void {
    if (!(feed instanceof Uint8Array) || feed.length !== 32) throw new TypeError('feed: expected 32 bytes');
    this.#live();
    this.#contacts.follow(feed);
    this.#sessions.follow(feed);
  }

  /**
   * Creates a single-use invite. The result goes into an introduction drop; the node that finds it
   * calls `bootstrapFromIntroduction` with it.
   */
  createIntroductionToken(opts: { ttlMs?: number } = {}): IssuedIntroductionToken {
    const ttl = opts.ttlMs ?? this.#opts.introductionTokenTtlMs ?? 7 * 24 * 3600_000;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new RangeError('ttlMs: expected a positive number');
    this.#live();
    const contacts = this.#contacts;
    return issueIntroductionToken(this.identity, this.endpoints, Date.now() + ttl, (tokenId, expiresAt) => contacts.createIntroductionToken(tokenId, expiresAt));
  }

  /**
   * Dials the introduction's endpoints, proves its token, and checks that the node reached owns the
   * announced pairwise key. Both sides then add each other and replication starts.
   * Rejects with DeaddropError REJECTED (refused invite), TIMEOUT or BACKEND_UNREACHABLE.
   */
  async bootstrapFromIntroduction(intro: Introduction): Promise<Contact> {
    await this.ready();
    this.#live();
    if (!(intro.pairwiseKey instanceof Uint8Array) || intro.pairwiseKey.length !== 32) throw DeaddropError.badInput('pairwiseKey: expected 32 bytes');
    if (!(intro.token instanceof Uint8Array) || intro.token.length !== TOKEN_BYTES) throw DeaddropError.badInput('token: expected 32 bytes');
    const urls = (intro.endpoints ?? []).filter((u) => typeof u === 'string' && parseEndpoint(u) !== null);
    if (urls.length === 0) throw DeaddropError.badInput('introduction has no usable ws:// endpoint');
    let lastErr: unknown = DeaddropError.unreachable('introduction endpoints');
    for (const url of urls) {
      const route = this.#route(url, intro.pairwiseKey);
      if (route === null) {
        lastErr = DeaddropError.unsupported('no endpoint of the introduction can be dialed from here (an onion needs Tor)');
        continue;
      }
      let ch: SecureChannel;
      try {
        ch = await dial(url, this.identity, { ...this.#opts.channel, ...route, signal: this.#life.signal });
      } catch (err) {
        lastErr = err;
        continue;
      }
      try {
        const contact = await this.#invites.join(ch, url, intro);
        this.emit('peer.dialed', contact.node, url);
        return contact;
      } catch (err) {
        ch.close('local');
        if (err instanceof DeaddropError && err.code === 'REJECTED') throw err;
        lastErr = err;
      }
    }
    throw lastErr;
  }

  /** Inviter side of an invite that came over the mixnet (./invite-handshake.ts `answerMixnet`). */
  answerMixnetInvite(joiner: Uint8Array, tokenId: Uint8Array, nonce: Uint8Array, mac: Uint8Array): Ed25519KeyPair | null {
    this.#live();
    return this.#invites.answerMixnet(joiner, tokenId, nonce, mac);
  }

  /** Joiner side: adds an inviter whose mixnet answer verified, as a contact with no endpoint. */
  addMixnetContact(inviter: Uint8Array, pairwiseKey: Uint8Array): Contact {
    this.#live();
    return this.#invites.addMixnetInviter(inviter, pairwiseKey);
  }

  /** Our current whereabouts record and its encrypted, signed bundle (e.g. for a beacon drop). */
  whereabouts(): { record: WhereaboutsRecord; bundle: Uint8Array } {
    this.#live();
    const bundle = this.#gossip.ownBundle();
    const b = decodeWhereabouts(bundle);
    return { record: { node: b.node, seq: b.seq, expiresAt: b.expiresAt, endpoints: this.endpoints }, bundle };
  }

  /** Takes a whereabouts bundle found elsewhere (a beacon drop). Returns true if it was new. */
  importWhereabouts(bundle: Uint8Array): boolean {
    this.#live();
    return this.#gossip.receive(bundle, null) === 'stored';
  }

  // ------------------------------------------------------------------------------------------
  // Wiring

  #onInbound(ch: SecureChannel): void {
    if (this.#life.closing) return ch.close('local');
    if (this.#contacts.has(ch.remote!)) this.#sessions.attach(ch);
    else this.#invites.awaitInvite(ch);
  }

  #onSessionFrame(session: Session, type: number, payload: Uint8Array): void {
    switch (type) {
      case MSG.WHEREABOUTS:
        this.#gossip.receive(payload, session);
        return;
      case MSG.WHEREABOUTS_REQ:
        return this.#gossip.answerRequest(session, payload);
      case MSG.INVITE:
        // a contact re-running a bootstrap: answer, keep the session
        this.#invites.answer(session.channel, payload);
        return;
      case MSG.INVITE_OK:
      case MSG.REFUSED:
        return;
      default:
        this.#sessions.drop(session.channel, `unknown message type ${type}`);
    }
  }

  #onContactAdded(contact: Contact, added: boolean): void {
    this.#sessions.follow(contact.node);
    if (!added) return;
    this.#gossip.publish(true);
    this.emit('contact.added', contact);
  }

  #onAppend(author: Uint8Array, entries: LogEntry[], local: boolean): void {
    for (const s of this.#sessions.values()) s.replicator.notify(author);
    const event = local ? 'entry.appended' : 'entry.replicated';
    if (this.listenerCount(event) > 0) for (const e of entries) this.emit(event, e);
  }

  #onFork(proof: ForkProof): void {
    const encoded = encodeForkProof(proof);
    for (const s of this.#sessions.values()) s.replicator.sendForkProof(encoded);
    this.emit('fork.detected', proof);
  }

  /**
   * How this node dials `url` (for `peer`'s stream isolation): directly, through Tor, or not at all
   * (null). Other parts of the node that dial (storage) go the same way as the node's sessions.
   */
  dialRoute(url: string, peer: Uint8Array): DialRoute | null {
    return this.#route(url, peer);
  }

  #route(url: string, peer: Uint8Array): DialRoute | null {
    return (this.#opts.route ?? directRoute)(url, peer);
  }

  #whereaboutsTtl(): number {
    return this.#opts.whereaboutsTtlMs ?? 2 * 3600_000;
  }

  #beaconAfter(): number {
    return this.#opts.beaconAfterMs ?? 3600_000;
  }

  #maintain(): void {
    if (this.#life.closing) return;
    this.#gossip.maintain();
  }
}
