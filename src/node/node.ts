/**
 * PeerNode: the node that the watcher bootstraps. It listens on a WebSocket port, keeps one
 * authenticated session per connected contact, replicates the feeds it follows, publishes its
 * whereabouts to its contacts, and accepts new contacts through single-use invites.
 *
 * DEV NOTES
 * - One session per contact. When both sides dial at once, both keep the connection initiated by
 *   the node with the smaller key, so they converge without coordination.
 * - A peer that is not a contact may only send INVITE, within `inviteWaitMs`; anything else drops it.
 * - Unreachable contacts are redialed with exponential backoff. A failed dial asks every connected
 *   contact for the target's whereabouts (WHEREABOUTS_REQ); a newer record triggers an immediate dial.
 * - When no contact has been reachable for `beaconAfterMs`, `beacon.needed` fires with our current
 *   bundle: the caller (the daemon) puts it in a beacon drop on chain. `importWhereabouts` takes one
 *   found on chain.
 * - Lifecycle (hypercore style): the constructor starts opening; `ready()` returns that promise,
 *   `close()` is memoized, waits for opening, and leaves no timer or socket behind.
 */
import type { Agent } from 'node:http';
import { DeaddropError } from '../util/errors.js';
import { TypedEmitter } from './events.js';
import { NodeIdentity } from './identity.js';
import { equalBytes, toHex } from './crypto.js';
import { openNodeDatabase } from './db.js';
import type { SqliteDatabase } from './db.js';
import { FeedStore } from './log/feed-store.js';
import type { EntryDraft, LogEntry } from './log/codec.js';
import { encodeForkProof } from './log/fork.js';
import type { ForkProof } from './log/fork.js';
import type { SignedTreeHead } from './log/merkle.js';
import { ContactStore } from './contacts.js';
import type { Contact } from './contacts.js';
import { TOKEN_BYTES, introductionTokenSecrets, issueIntroductionToken, signAccept, tokenProof, verifyAccept } from './introduction-token.js';
import type { Introduction, IssuedIntroductionToken } from './introduction-token.js';
import { Replicator } from './replication.js';
import { ChannelServer, dial, parseEndpoint } from './transport/ws-transport.js';
import type { SecureChannel, ChannelOptions } from './transport/secure-channel.js';
import {
  WhereaboutsStore,
  decodeWhereabouts,
  openWhereabouts,
  sealWhereabouts,
  verifyWhereabouts,
} from './whereabouts.js';
import type { WhereaboutsRecord } from './whereabouts.js';
import {
  MSG,
  REFUSAL,
  TOKEN_ID_BYTES,
  decodeInvite,
  decodeInviteOk,
  decodeNodeId,
  encodeInvite,
  encodeInviteOk,
} from './wire.js';

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

interface Session {
  readonly node: Uint8Array;
  readonly key: string;
  readonly channel: SecureChannel;
  readonly replicator: Replicator;
  /** Key of the node that dialed. */
  readonly initiatorKey: Uint8Array;
}

interface Redial {
  timer: NodeJS.Timeout | null;
  delay: number;
}

const META_WHEREABOUTS = 'whereabouts.bundle';

/**
 * A deaddrop peer node.
 * @example
 * const node = new PeerNode({ seed, dbPath: 'node.sqlite' })
 * await node.ready()
 * const intro = node.createInvite()          // goes into a dead drop
 * await other.bootstrapFromIntroduction(intro)
 * node.append({ header: { type: 'post' }, body: utf8('hi') })
 */
export class PeerNode extends TypedEmitter<PeerNodeEvents> {
  readonly identity: NodeIdentity;
  private readonly opts: PeerNodeOptions;
  private db: SqliteDatabase | null = null;
  private feeds: FeedStore | null = null;
  private contactStore: ContactStore | null = null;
  private places: WhereaboutsStore | null = null;
  private server: ChannelServer | null = null;
  private readonly sessions = new Map<string, Session>();
  private readonly strangers = new Set<SecureChannel>();
  private readonly dialing = new Map<string, Promise<void>>();
  private readonly redials = new Map<string, Redial>();
  private readonly lastAsked = new Map<string, number>();
  private readonly followSet = new Map<string, Uint8Array>();
  private maintenance: NodeJS.Timeout | null = null;
  private lastReachable = Date.now();
  private lastBeacon = 0;
  private readonly abort = new AbortController();
  private readonly opening: Promise<void>;
  private closing: Promise<void> | null = null;

  constructor(opts: PeerNodeOptions) {
    super();
    this.opts = opts;
    this.identity = NodeIdentity.fromSeed(opts.seed);
    this.opening = this.open();
    this.opening.catch(() => {
      // surfaced through ready()
    });
  }

  /** Resolves once the database is open and the port is listening. */
  ready(): Promise<void> {
    return this.opening;
  }

  /** This node's id: its Ed25519 identity key, also its feed id. */
  get id(): Uint8Array {
    return this.identity.publicKey;
  }

  /** Endpoints this node publishes. */
  get endpoints(): string[] {
    const own = this.opts.advertise && this.opts.advertise.length > 0 ? this.opts.advertise.slice() : this.server ? [this.server.url] : [];
    return this.opts.announce ? this.opts.announce(own) : own;
  }

  /** The port the node listens on (null before it listens). */
  get listeningPort(): number | null {
    return this.server ? this.server.port : null;
  }

  /** The feed store (read access for CLI/API: feeds, entries, proofs). */
  get store(): FeedStore {
    return this.live().feeds!;
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  private async open(): Promise<void> {
    const db = openNodeDatabase(this.opts.dbPath);
    this.db = db;
    this.feeds = new FeedStore(db);
    this.contactStore = new ContactStore(db);
    this.places = new WhereaboutsStore(db);
    this.followSet.set(toHex(this.id), this.id);
    for (const c of this.contactStore.list()) this.followSet.set(toHex(c.node), c.node);
    for (const f of this.contactStore.follows()) this.followSet.set(toHex(f), f);
    this.feeds.on('append', (info, entries, local) => this.onAppend(info.author, entries, local));
    this.feeds.on('fork', (proof) => this.onFork(proof));
    this.server = await ChannelServer.listen(this.identity, { ...this.opts.channel, host: this.opts.host, port: this.opts.port });
    this.server.on('channel', (ch) => this.onInbound(ch));
    this.server.on('reject', (reason) => this.emit('peer.rejected', reason));
    if (this.closing) return;
    this.publishWhereabouts();
    const tick = Math.max(20, Math.min(this.whereaboutsTtl() / 4, this.beaconAfter() / 4, 30_000));
    this.maintenance = setInterval(() => this.maintain(), tick);
    for (const c of this.contactStore.list()) this.connectContact(c.node);
  }

  /** Stops everything: sessions, dials, timers, the listener, the database. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.opening.catch(() => undefined);
    this.abort.abort();
    if (this.maintenance) clearInterval(this.maintenance);
    for (const r of this.redials.values()) if (r.timer) clearTimeout(r.timer);
    this.redials.clear();
    for (const s of [...this.sessions.values()]) s.channel.close('local');
    for (const ch of this.strangers) ch.close('local');
    await Promise.allSettled([...this.dialing.values()]);
    await this.server?.close();
    this.db?.close();
    this.identity.destroy();
    this.removeAllListeners();
  }

  private live(): this {
    if (this.closing) throw DeaddropError.closed('peer node');
    if (!this.db) throw new DeaddropError('NOT_INITIALIZED', 'peer node is not ready: await node.ready()');
    return this;
  }

  // ------------------------------------------------------------------------------------------
  // Public API

  /** Appends an entry to our own feed (durable on return); it streams to connected contacts. */
  append(draft: EntryDraft): LogEntry {
    return this.live().feeds!.append(this.identity, draft);
  }

  /** Appends entries in one transaction. */
  appendBatch(drafts: readonly EntryDraft[]): LogEntry[] {
    return this.live().feeds!.appendBatch(this.identity, drafts);
  }

  /** Signed tree head of our feed: one signed root that proves any of our entries. */
  signTreeHead(): SignedTreeHead {
    return this.live().feeds!.signTreeHead(this.identity);
  }

  /** All contacts. */
  contacts(): Contact[] {
    return this.live().contactStore!.list();
  }

  /** Ids of contacts with an open session. */
  connectedPeers(): Uint8Array[] {
    return [...this.sessions.values()].map((s) => s.node);
  }

  /** Also replicate `feed` (someone who is not a contact, e.g. a contact's contact). */
  follow(feed: Uint8Array): void {
    if (!(feed instanceof Uint8Array) || feed.length !== 32) throw new TypeError('feed: expected 32 bytes');
    this.live().contactStore!.follow(feed);
    this.addFollow(feed);
  }

  /**
   * Creates a single-use invite. The result goes into an introduction drop; the node that finds it
   * calls `bootstrapFromIntroduction` with it.
   */
  createInvite(opts: { ttlMs?: number } = {}): IssuedIntroductionToken {
    const ttl = opts.ttlMs ?? this.opts.introductionTokenTtlMs ?? 7 * 24 * 3600_000;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new RangeError('ttlMs: expected a positive number');
    const contacts = this.live().contactStore!;
    return issueIntroductionToken(this.identity, this.endpoints, Date.now() + ttl, (tokenId, expiresAt) => contacts.createInvite(tokenId, expiresAt));
  }

  /**
   * Dials the introduction's endpoints, proves its token, and checks that the node reached owns the
   * announced pairwise key. Both sides then add each other and replication starts.
   * Rejects with DeaddropError REJECTED (refused invite), TIMEOUT or BACKEND_UNREACHABLE.
   */
  async bootstrapFromIntroduction(intro: Introduction): Promise<Contact> {
    await this.ready();
    this.live();
    if (!(intro.pairwiseKey instanceof Uint8Array) || intro.pairwiseKey.length !== 32) throw DeaddropError.badInput('pairwiseKey: expected 32 bytes');
    if (!(intro.token instanceof Uint8Array) || intro.token.length !== TOKEN_BYTES) throw DeaddropError.badInput('token: expected 32 bytes');
    const urls = (intro.endpoints ?? []).filter((u) => typeof u === 'string' && parseEndpoint(u) !== null);
    if (urls.length === 0) throw DeaddropError.badInput('introduction has no usable ws:// endpoint');
    let lastErr: unknown = DeaddropError.unreachable('introduction endpoints');
    for (const url of urls) {
      const route = this.route(url, intro.pairwiseKey);
      if (route === null) {
        lastErr = DeaddropError.unsupported('no endpoint of the introduction can be dialed from here (an onion needs Tor)');
        continue;
      }
      let ch: SecureChannel;
      try {
        ch = await dial(url, this.identity, { ...this.opts.channel, ...route, signal: this.abort.signal });
      } catch (err) {
        lastErr = err;
        continue;
      }
      try {
        const contact = await this.runBootstrap(ch, url, intro);
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

  /** Our current whereabouts record and its encrypted, signed bundle (e.g. for a beacon drop). */
  whereabouts(): { record: WhereaboutsRecord; bundle: Uint8Array } {
    this.live();
    const bundle = this.ownBundle();
    const b = decodeWhereabouts(bundle);
    return { record: { node: b.node, seq: b.seq, expiresAt: b.expiresAt, endpoints: this.endpoints }, bundle };
  }

  /** Takes a whereabouts bundle found elsewhere (a beacon drop). Returns true if it was new. */
  importWhereabouts(bundle: Uint8Array): boolean {
    this.live();
    return this.onWhereabouts(bundle, null) === 'stored';
  }

  // ------------------------------------------------------------------------------------------
  // Sessions

  private onInbound(ch: SecureChannel): void {
    if (this.closing) return ch.close('local');
    if (this.contactStore!.has(ch.remote!)) this.attach(ch);
    else this.awaitInvite(ch);
  }

  private attach(ch: SecureChannel): void {
    const node = ch.remote!;
    const key = toHex(node);
    const initiatorKey = ch.initiator ? this.id : node;
    const existing = this.sessions.get(key);
    if (existing) {
      const preferred = Buffer.compare(this.id, node) < 0 ? this.id : node;
      if (equalBytes(existing.initiatorKey, preferred) || !equalBytes(initiatorKey, preferred)) {
        ch.close('local');
        return;
      }
      this.endSession(existing, 'replaced');
      existing.channel.close('local');
    }
    this.startSession(ch, node, key, initiatorKey);
  }

  private startSession(ch: SecureChannel, node: Uint8Array, key: string, initiatorKey: Uint8Array): void {
    const replicator = new Replicator({
      store: this.feeds!,
      channel: ch,
      follows: () => [...this.followSet.values()],
      isFollowed: (feed) => this.followSet.has(toHex(feed)),
      onViolation: (detail) => this.drop(ch, detail),
      onForkProof: (proof) => this.feeds!.addForkProof(proof),
      onError: (err) => {
        this.emit('peer.rejected', `local error: ${err.message}`);
        ch.close('local');
      },
      batchBytes: this.opts.batchBytes,
    });
    const session: Session = { node, key, channel: ch, replicator, initiatorKey };
    this.sessions.set(key, session);
    this.cancelRedial(key);
    this.lastReachable = Date.now();
    ch.on('frame', (type, payload) => this.onSessionFrame(session, type, payload));
    ch.on('close', (reason) => this.endSession(session, reason));
    this.contactStore!.markSeen(node);
    replicator.start();
    ch.send(MSG.WHEREABOUTS, this.ownBundle());
    for (const c of this.contactStore!.list()) {
      if (!this.sessions.has(toHex(c.node))) ch.send(MSG.WHEREABOUTS_REQ, c.node);
    }
    this.emit('peer.connected', node);
  }

  private endSession(session: Session, reason: string): void {
    if (this.sessions.get(session.key) !== session) return;
    this.sessions.delete(session.key);
    session.replicator.stop();
    if (this.sessions.size === 0) this.lastReachable = Date.now();
    this.emit('peer.disconnected', session.node, reason);
    if (!this.closing && reason !== 'replaced') this.scheduleRedial(session.node);
  }

  private onSessionFrame(session: Session, type: number, payload: Uint8Array): void {
    if (session.replicator.handle(type, payload)) return;
    switch (type) {
      case MSG.WHEREABOUTS:
        this.onWhereabouts(payload, session);
        return;
      case MSG.WHEREABOUTS_REQ:
        return this.onWhereaboutsRequest(session, payload);
      case MSG.INVITE:
        // a contact re-running a bootstrap: answer, keep the session
        this.answerInvite(session.channel, payload);
        return;
      case MSG.INVITE_OK:
      case MSG.REFUSED:
        return;
      default:
        this.drop(session.channel, `unknown message type ${type}`);
    }
  }

  private drop(ch: SecureChannel, detail: string): void {
    this.emit('peer.rejected', `protocol: ${detail}`);
    ch.close('protocol', detail);
  }

  // ------------------------------------------------------------------------------------------
  // Invites

  private awaitInvite(ch: SecureChannel): void {
    this.strangers.add(ch);
    const timer = setTimeout(() => {
      this.emit('peer.rejected', 'no invite');
      ch.close('protocol', 'no invite');
    }, this.opts.inviteWaitMs ?? 10_000);
    const done = (): void => {
      clearTimeout(timer);
      this.strangers.delete(ch);
      ch.off('frame', onFrame);
    };
    const onFrame = (type: number, payload: Uint8Array): void => {
      done();
      if (type !== MSG.INVITE) return this.drop(ch, 'a stranger must send INVITE first');
      if (this.answerInvite(ch, payload)) this.attach(ch);
      else {
        this.emit('peer.rejected', 'invite invalid');
        ch.close('local');
      }
    };
    ch.on('frame', onFrame);
    ch.once('close', () => done());
  }

  /** Checks an INVITE; on success adds the contact and sends INVITE_OK, else sends REFUSED. */
  private answerInvite(ch: SecureChannel, payload: Uint8Array): boolean {
    const contacts = this.contactStore!;
    const joiner = ch.remote!;
    let m;
    try {
      m = decodeInvite(payload);
    } catch {
      ch.send(MSG.REFUSED, Uint8Array.of(REFUSAL.INVITE_INVALID));
      return false;
    }
    const row = contacts.getInvite(m.tokenId);
    const { token, pairwise } = introductionTokenSecrets(this.identity, m.tokenId);
    const ok =
      row !== null &&
      row.usedAt === null &&
      row.expiresAt > Date.now() &&
      equalBytes(tokenProof(token, ch.handshakeHash!), m.mac) &&
      contacts.consumeInvite(m.tokenId, joiner);
    if (!ok) {
      ch.send(MSG.REFUSED, Uint8Array.of(REFUSAL.INVITE_INVALID));
      return false;
    }
    const endpoints = m.endpoints.filter((u) => parseEndpoint(u) !== null);
    const { contact, added } = contacts.add({ node: joiner, pairwiseKey: pairwise.publicKey, endpoints });
    ch.send(MSG.INVITE_OK, encodeInviteOk({ pairwiseKey: pairwise.publicKey, signature: signAccept(pairwise, ch.handshakeHash!, this.id, joiner) }));
    this.onContactAdded(contact, added);
    return true;
  }

  private runBootstrap(ch: SecureChannel, url: string, intro: Introduction): Promise<Contact> {
    return new Promise<Contact>((resolve, reject) => {
      const early: [number, Uint8Array][] = [];
      const finish = (err: Error | null, contact?: Contact): void => {
        clearTimeout(timer);
        ch.off('frame', onFrame);
        ch.off('close', onClose);
        if (err) return reject(err);
        this.attach(ch);
        const s = this.sessions.get(toHex(ch.remote!));
        if (s?.channel === ch) for (const [t, p] of early) this.onSessionFrame(s, t, p);
        resolve(contact!);
      };
      const timer = setTimeout(
        () => finish(new DeaddropError('TIMEOUT', 'no answer to the invite')),
        this.opts.inviteWaitMs ?? 10_000,
      );
      const onClose = (): void => finish(new DeaddropError('REJECTED', 'the inviter closed the connection'));
      const onFrame = (type: number, payload: Uint8Array): void => {
        if (type === MSG.REFUSED) return finish(new DeaddropError('REJECTED', 'invite refused (used, expired or unknown)'));
        if (type !== MSG.INVITE_OK) {
          if (early.length < 64) early.push([type, payload]);
          return;
        }
        let okMsg;
        try {
          okMsg = decodeInviteOk(payload);
        } catch {
          return finish(DeaddropError.protocol('malformed INVITE_OK'));
        }
        const inviter = ch.remote!;
        if (!equalBytes(okMsg.pairwiseKey, intro.pairwiseKey) || !verifyAccept(okMsg.pairwiseKey, okMsg.signature, ch.handshakeHash!, inviter, this.id)) {
          return finish(new DeaddropError('REJECTED', 'the node reached does not own the introduced pairwise key'));
        }
        const endpoints = [url, ...intro.endpoints.filter((u) => u !== url && parseEndpoint(u) !== null)];
        const { contact, added } = this.contactStore!.add({ node: inviter, pairwiseKey: intro.pairwiseKey, endpoints });
        this.onContactAdded(contact, added);
        finish(null, contact);
      };
      ch.on('frame', onFrame);
      ch.on('close', onClose);
      const tokenId = intro.token.subarray(0, TOKEN_ID_BYTES);
      ch.send(MSG.INVITE, encodeInvite({ tokenId, mac: tokenProof(intro.token, ch.handshakeHash!), endpoints: this.endpoints }));
    });
  }

  private onContactAdded(contact: Contact, added: boolean): void {
    this.addFollow(contact.node);
    if (!added) return;
    this.publishWhereabouts(true);
    this.emit('contact.added', contact);
  }

  private addFollow(feed: Uint8Array): void {
    const key = toHex(feed);
    if (this.followSet.has(key)) return;
    this.followSet.set(key, feed);
    for (const s of this.sessions.values()) s.replicator.announce([feed]);
  }

  // ------------------------------------------------------------------------------------------
  // Feeds

  private onAppend(author: Uint8Array, entries: LogEntry[], local: boolean): void {
    for (const s of this.sessions.values()) s.replicator.notify(author);
    const event = local ? 'entry.appended' : 'entry.replicated';
    if (this.listenerCount(event) > 0) for (const e of entries) this.emit(event, e);
  }

  private onFork(proof: ForkProof): void {
    const encoded = encodeForkProof(proof);
    for (const s of this.sessions.values()) s.replicator.sendForkProof(encoded);
    this.emit('fork.detected', proof);
  }

  // ------------------------------------------------------------------------------------------
  // Dialing

  private connectContact(node: Uint8Array): void {
    const key = toHex(node);
    if (this.closing || this.sessions.has(key) || this.dialing.has(key)) return;
    const contact = this.contactStore!.get(node);
    if (!contact) return;
    const attempt = (async (): Promise<boolean> => {
      for (const url of contact.endpoints) {
        if (this.closing) return true;
        const route = this.route(url, node);
        if (route === null) continue;
        try {
          const ch = await dial(url, this.identity, { ...this.opts.channel, ...route, expectedRemote: node, signal: this.abort.signal });
          if (this.closing) {
            ch.close('local');
            return true;
          }
          this.emit('peer.dialed', node, url);
          this.attach(ch);
          return true;
        } catch {
          // try the next endpoint
        }
      }
      return false;
    })();
    const p = attempt.then((ok) => {
      this.dialing.delete(key);
      if (!ok && !this.closing) {
        this.askWhereabouts(node);
        this.scheduleRedial(node);
      }
    });
    this.dialing.set(key, p);
  }

  private route(url: string, peer: Uint8Array): DialRoute | null {
    return (this.opts.route ?? directRoute)(url, peer);
  }

  private scheduleRedial(node: Uint8Array): void {
    const key = toHex(node);
    if (this.closing || this.sessions.has(key)) return;
    const min = this.opts.reconnectMinMs ?? 1000;
    const r = this.redials.get(key) ?? { timer: null, delay: min };
    if (r.timer) return;
    r.timer = setTimeout(() => {
      r.timer = null;
      this.connectContact(node);
    }, r.delay);
    r.delay = Math.min(r.delay * 2, this.opts.reconnectMaxMs ?? 60_000);
    this.redials.set(key, r);
  }

  private cancelRedial(key: string): void {
    const r = this.redials.get(key);
    if (r?.timer) clearTimeout(r.timer);
    this.redials.delete(key);
  }

  // ------------------------------------------------------------------------------------------
  // Whereabouts

  private whereaboutsTtl(): number {
    return this.opts.whereaboutsTtlMs ?? 2 * 3600_000;
  }

  private beaconAfter(): number {
    return this.opts.beaconAfterMs ?? 3600_000;
  }

  private ownBundle(): Uint8Array {
    return this.contactStore!.getMeta(META_WHEREABOUTS) ?? this.publishWhereabouts(true);
  }

  /** Re-seals our bundle when forced, when endpoints changed, or at half-life; sends it to sessions. */
  private publishWhereabouts(force = false): Uint8Array {
    const contacts = this.contactStore!;
    const prevRaw = contacts.getMeta(META_WHEREABOUTS);
    const prev = prevRaw ? decodeWhereabouts(prevRaw) : null;
    const ttl = this.whereaboutsTtl();
    const now = Date.now();
    const mine = prev ? openWhereabouts(this.identity, prev) : null;
    const stale = !prev || prev.expiresAt - now < ttl / 2 || !mine || mine.endpoints.join(' ') !== this.endpoints.join(' ');
    if (!force && !stale && prevRaw) return prevRaw;
    const seq = Math.max((prev?.seq ?? 0) + 1, now);
    // we are a recipient too, so we can read back what we published
    const recipients = [this.id, ...contacts.list().map((c) => c.node)];
    const bundle = sealWhereabouts(this.identity, { seq, expiresAt: now + ttl, endpoints: this.endpoints }, recipients);
    contacts.setMeta(META_WHEREABOUTS, bundle);
    for (const s of this.sessions.values()) s.channel.send(MSG.WHEREABOUTS, bundle);
    return bundle;
  }

  private onWhereabouts(payload: Uint8Array, from: Session | null): string {
    let b;
    try {
      b = decodeWhereabouts(payload);
    } catch {
      if (from) this.drop(from.channel, 'malformed WHEREABOUTS');
      return 'invalid';
    }
    if (equalBytes(b.node, this.id) || !this.contactStore!.has(b.node)) return 'ignored';
    if (!verifyWhereabouts(b)) {
      if (from) this.drop(from.channel, 'bad WHEREABOUTS signature');
      return 'invalid';
    }
    const result = this.places!.put(b);
    if (result === 'equivocation') this.emit('whereabouts.equivocation', b.node, b.seq);
    if (result !== 'stored') return result;
    const rec = openWhereabouts(this.identity, b);
    const contact = this.contactStore!.get(b.node);
    if (rec && contact && rec.seq > contact.whereaboutsSeq) {
      const endpoints = rec.endpoints.filter((u) => parseEndpoint(u) !== null);
      this.contactStore!.setEndpoints(b.node, endpoints, rec.seq);
      this.emit('whereabouts.updated', { ...rec, endpoints });
      const key = toHex(b.node);
      if (!this.sessions.has(key)) {
        this.cancelRedial(key);
        this.connectContact(b.node);
      }
    }
    return result;
  }

  private onWhereaboutsRequest(session: Session, payload: Uint8Array): void {
    let node: Uint8Array;
    try {
      node = decodeNodeId(payload);
    } catch {
      return this.drop(session.channel, 'malformed WHEREABOUTS_REQ');
    }
    const bundle = equalBytes(node, this.id) ? this.ownBundle() : this.places!.get(node);
    if (bundle) session.channel.send(MSG.WHEREABOUTS, bundle);
  }

  /** Asks every connected contact where `node` is (rate-limited per target). */
  private askWhereabouts(node: Uint8Array): void {
    const key = toHex(node);
    const now = Date.now();
    if (now - (this.lastAsked.get(key) ?? 0) < (this.opts.reconnectMinMs ?? 1000)) return;
    this.lastAsked.set(key, now);
    for (const s of this.sessions.values()) if (s.key !== key) s.channel.send(MSG.WHEREABOUTS_REQ, node);
  }

  private maintain(): void {
    if (this.closing) return;
    this.publishWhereabouts();
    this.places!.prune();
    const now = Date.now();
    const hasContacts = this.contactStore!.list().length > 0;
    if (this.sessions.size > 0) this.lastReachable = now;
    else if (hasContacts && now - this.lastReachable >= this.beaconAfter() && now - this.lastBeacon >= this.beaconAfter()) {
      this.lastBeacon = now;
      this.emit('beacon.needed', this.ownBundle());
    }
  }
}
