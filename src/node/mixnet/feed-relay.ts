/**
 * Feed replication and whereabouts between contacts that have no direct session, through the
 * mixnet and their providers' mailboxes (docs/protocol/mixnet.md, "Feeds and whereabouts over
 * the mixnet"). The direct path (../replication.ts) stays preferred: a contact with a session is
 * left to it, and a HAVE from a contact we have a session with is ignored.
 *
 * DEV NOTES
 * - Pull: every `intervalMs`, and soon after each local append, each side sends each such contact
 *   a HAVE (the CLOCK of ../wire.ts for up to 26 feeds, plus the seq of the contact's whereabouts
 *   we hold). The contact answers with the entries we lack, in ENTRIES messages (the ENTRIES frame
 *   of ../wire.ts) packed into PARTs that fit one Sphinx payload; a batch cut short by the budget
 *   carries the `more` flag and the receiver asks again at once, so a long feed streams one budget
 *   per round trip.
 * - Push: a local append also goes at once to every contact whose position in our feed we know,
 *   so a recipient that is offline finds it in its mailbox later even if we are offline by then.
 * - Verification is the direct path's: FeedStore.ingest (decode, signature, seq, link, fork
 *   detection on a conflicting signed entry). Packets reorder (independent routes and delays), so
 *   entries that arrive ahead of a gap wait in a bounded buffer until the gap fills.
 * - Divergence: a HAVE whose head at seq s differs from our entry s gets our entry s back (and a
 *   forked feed gets both entries of its proof), so the peer's ingest makes the fork proof itself.
 * - Whereabouts: our bundle goes to a contact whose HAVE names an older seq of ours, and every
 *   round (once per resend window) to one that has not said it holds the current one, so an
 *   offline contact finds it in its mailbox.
 * - Whereabouts go only to contacts that already know our endpoints: those met directly (we hold
 *   endpoints of theirs, they of ours). A contact met over the mixnet has none and never learns
 *   ours this way (the rule the beacon follows in ../feature.ts).
 * - Bounds: per contact a token bucket of packets, at most `maxEntriesPerRound` entries and
 *   `maxBytesPerRound` bytes per answer, a resend window, bounded reassembly (./feed-relay-parts.ts)
 *   and a bounded reorder buffer. Malformed, unverifiable, unfollowed or strangers' data is dropped
 *   silently and counted in `stats.dropped`.
 */
import { randomBytes } from 'node:crypto';
import { toHex, equalBytes } from '../../util/bytes.js';
import { TokenBucket } from '../../util/token-bucket.js';
import type { Contact } from '../contacts.js';
import { ENTRY_VERSION, LEGACY_ENTRY_VERSION, ZERO_HASH } from '../log/codec.js';
import type { LogEntry } from '../log/codec.js';
import type { PeerNode } from '../node.js';
import { decodeWhereabouts } from '../whereabouts.js';
import type { ClockEntry } from '../wire.js';
import {
  MAX_HAVE_FEEDS, decodeRelay, decodeRelayMessage, encodeEntriesMessage, encodeHave, encodeWhereaboutsMessage,
  groupEntries, splitMessage,
} from './feed-relay-codec.js';
import { sealBody } from './message.js';
import { PartsBuffer, type PartsOptions } from './feed-relay-parts.js';
import type { MixnetService } from './service.js';

export interface FeedRelayOptions {
  /** HAVE round interval (default 30 s). */
  readonly intervalMs?: number;
  /** Most entries sent in answer to one HAVE or pushed per append burst (default 256). */
  readonly maxEntriesPerRound?: number;
  /** Most entry bytes sent in answer to one HAVE (default 256 KiB). */
  readonly maxBytesPerRound?: number;
  /** Per contact packet rate (default 20/s) and burst (default 400). */
  readonly packetsPerSecond?: number;
  readonly packetBurst?: number;
  /** Entries already sent are not sent again within this window (default 2 × intervalMs). */
  readonly resendAfterMs?: number;
  /** Entries waiting for a gap to fill, over all feeds (default 4,096). */
  readonly maxBuffered?: number;
  /** Reassembly bounds. */
  readonly parts?: PartsOptions;
}

/** Counters (for tests, the API and the bench). */
export interface FeedRelayStats {
  haveSent: number;
  haveReceived: number;
  packetsSent: number;
  entriesSent: number;
  entriesStored: number;
  whereaboutsSent: number;
  whereaboutsStored: number;
  dropped: {
    malformed: number;
    unknownSender: number;
    unfollowed: number;
    rejected: number;
    overBudget: number;
    sendFailed: number;
    bufferFull: number;
  };
}

interface PeerState {
  /** Highest seq the peer holds, per feed (from its HAVE). */
  readonly has: Map<string, number>;
  /** What we sent per feed, and when (resend window). */
  readonly sent: Map<string, { upTo: number; at: number }>;
  readonly bucket: TokenBucket;
  whereabouts: { seq: number; at: number };
  /** The seq of our whereabouts the peer said it holds (its last HAVE; 0 before one). */
  theirWseq: number;
  haveQueued: boolean;
}

/** Received entries wait this long to be stored together (one transaction). */
const FLUSH_DELAY_MS = 2;

const DEFAULTS = {
  intervalMs: 30_000, maxEntriesPerRound: 256, maxBytesPerRound: 256 * 1024, packetsPerSecond: 20, packetBurst: 400, maxBuffered: 4096,
};

export class FeedRelay {
  readonly stats: FeedRelayStats = {
    haveSent: 0, haveReceived: 0, packetsSent: 0, entriesSent: 0, entriesStored: 0, whereaboutsSent: 0, whereaboutsStored: 0,
    dropped: { malformed: 0, unknownSender: 0, unfollowed: 0, rejected: 0, overBudget: 0, sendFailed: 0, bufferFull: 0 },
  };
  readonly #node: PeerNode;
  readonly #mix: MixnetService;
  readonly #o: typeof DEFAULTS & { resendAfterMs: number };
  readonly #parts: PartsBuffer;
  readonly #peers = new Map<string, PeerState>();
  /** Out-of-order entries per feed: seq → raw. */
  readonly #buffer = new Map<string, Map<number, { raw: Uint8Array; at: number }>>();
  /** Entries at or below a feed's length (duplicates or conflicts), per feed, for the next flush. */
  readonly #held = new Map<string, Uint8Array[]>();
  #buffered = 0;
  #round = 0;
  #timer: NodeJS.Timeout | null = null;
  #pushTimer: NodeJS.Timeout | null = null;
  #flushTimer: NodeJS.Timeout | null = null;
  /** Feeds with buffered entries not yet offered to the store. */
  readonly #touched = new Set<string>();
  #closed = false;
  readonly #onData = (from: Uint8Array, plain: Uint8Array): void => this.#guard(() => this.#receive(from, plain));
  readonly #onAppend = (e: LogEntry): void => {
    if (equalBytes(e.author, this.#node.id)) this.#schedulePush();
  };

  constructor(node: PeerNode, mix: MixnetService, opts: FeedRelayOptions = {}) {
    this.#node = node;
    this.#mix = mix;
    const o = { ...DEFAULTS, ...opts };
    this.#o = { ...o, resendAfterMs: opts.resendAfterMs ?? 2 * o.intervalMs };
    this.#parts = new PartsBuffer(opts.parts);
  }

  start(): void {
    this.#mix.on('data', this.#onData);
    this.#node.on('entry.appended', this.#onAppend);
    this.#timer = setInterval(() => this.round(), this.#o.intervalMs);
    this.round();
  }

  close(): void {
    this.#closed = true;
    this.#mix.off('data', this.#onData);
    this.#node.off('entry.appended', this.#onAppend);
    if (this.#timer) clearInterval(this.#timer);
    if (this.#pushTimer) clearTimeout(this.#pushTimer);
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#timer = this.#pushTimer = this.#flushTimer = null;
    this.#touched.clear();
    this.#parts.clear();
    this.#buffer.clear();
    this.#held.clear();
    this.#buffered = 0;
  }

  /** Sends a HAVE to every contact reached over the mixnet only. */
  round(): void {
    this.#round++;
    this.#expireBuffered();
    for (const c of this.#relayContacts()) {
      this.#guard(() => this.#sendHave(c.node));
      // A newer bundle goes unasked too (once per resend window), so that a contact offline now
      // finds it in its mailbox even if we are offline when it comes back.
      this.#guard(() => this.#sendWhereabouts(c.node, this.#peer(toHex(c.node)), this.#peer(toHex(c.node)).theirWseq));
    }
  }

  /**
   * Forgets entries that waited for a gap longer than twice the resend window: their sender sends
   * them again anyway, and a contact that sent entries whose gap never fills cannot keep the
   * buffer full for longer than that.
   */
  #expireBuffered(): void {
    const cutoff = Date.now() - 2 * this.#o.resendAfterMs;
    for (const [key, buf] of this.#buffer) {
      for (const [seq, b] of buf) {
        if (b.at > cutoff) continue;
        buf.delete(seq);
        this.#buffered--;
      }
      if (buf.size === 0) this.#buffer.delete(key);
    }
  }

  /** Contacts with no session whose provider we know, while our own provider link is up. */
  #relayContacts(): Contact[] {
    if (this.#closed || !this.#mix.connected) return [];
    const connected = new Set(this.#node.connectedPeers().map(toHex));
    return this.#node.contacts().filter((c) => !connected.has(toHex(c.node)) && this.#mix.directory.providerOf(c.node) !== undefined);
  }

  /**
   * Feeds we replicate (hex): our own, our contacts' and those we follow (a group member who is
   * not a contact: its entries reach us through a contact that follows it, as on the direct path).
   */
  #followed(): Set<string> {
    return new Set([toHex(this.#node.id), ...this.#node.followed().map(toHex)]);
  }

  /** Feeds named in a HAVE to `to`: its own, ours, then the other feeds we follow in turns. */
  #haveFeeds(to: Uint8Array): Uint8Array[] {
    const me = this.#node.id;
    const others = this.#node.followed().filter((n) => !equalBytes(n, to) && !equalBytes(n, me));
    const room = MAX_HAVE_FEEDS - 2;
    const start = others.length > room ? (this.#round * room) % others.length : 0;
    const turn = [...others.slice(start), ...others.slice(0, start)].slice(0, room);
    return [to, this.#node.id, ...turn];
  }

  #sendHave(to: Uint8Array): void {
    const store = this.#node.store;
    const clock: ClockEntry[] = this.#haveFeeds(to).map((feed) => {
      const f = store.feed(feed);
      return { feed, seq: f?.length ?? 0, head: f?.head ?? ZERO_HASH };
    });
    const contact = this.#node.contacts().find((c) => equalBytes(c.node, to));
    if (this.#send(to, [encodeHave(contact?.whereaboutsSeq ?? 0, clock)])) this.stats.haveSent++;
  }

  #peer(key: string): PeerState {
    let p = this.#peers.get(key);
    if (!p) {
      p = { has: new Map(), sent: new Map(), bucket: new TokenBucket(this.#o.packetsPerSecond, this.#o.packetBurst), whereabouts: { seq: 0, at: 0 }, theirWseq: 0, haveQueued: false };
      this.#peers.set(key, p);
    }
    return p;
  }

  /** Seals and sends plaintexts to `to` within its packet budget; false when nothing could go. */
  #send(to: Uint8Array, plains: readonly Uint8Array[]): boolean {
    const p = this.#peer(toHex(to));
    // A message larger than the whole burst (a large entry) goes when the bucket is full and
    // leaves it in debt, so the rate holds on average and no entry is too large to ever go.
    const tokens = p.bucket.available();
    if (tokens < plains.length && tokens < p.bucket.burst) {
      this.stats.dropped.overBudget++;
      return false;
    }
    const exit = this.#mix.directory.providerOf(to);
    if (!exit) return false;
    try {
      for (const plain of plains) {
        this.#mix.sendTo(exit, to, sealBody(this.#node.identity, to, plain));
        p.bucket.spend();
        this.stats.packetsSent++;
      }
      return true;
    } catch {
      // no provider link, or too few mixes: the next round tries again
      this.stats.dropped.sendFailed++;
      return false;
    }
  }

  /** Sends one relay message (split into PARTs). */
  #sendMessage(to: Uint8Array, message: Uint8Array): boolean {
    return this.#send(to, splitMessage(new Uint8Array(randomBytes(8)), message));
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  #receive(from: Uint8Array, plain: Uint8Array): void {
    // 0x20..0x2f are storage reads through the mixnet (src/node/storage/mix-codec.ts): not ours to count.
    if (this.#closed || (plain[0]! & 0xf0) === 0x20) return;
    const r = decodeRelay(plain);
    if (!r) {
      this.stats.dropped.malformed++;
      return;
    }
    if (!this.#node.contacts().some((c) => equalBytes(c.node, from))) {
      this.stats.dropped.unknownSender++;
      return;
    }
    if (r.kind === 'have') {
      this.stats.haveReceived++;
      // The direct session replicates (and greets with whereabouts) on its own.
      if (this.#node.connectedPeers().some((n) => equalBytes(n, from))) return;
      this.#answerHave(from, r.wseq, r.clock);
      return;
    }
    const out = this.#parts.add(from, r);
    if (out === 'malformed') this.stats.dropped.malformed++;
    else if (out === 'over-budget') this.stats.dropped.overBudget++;
    if (typeof out !== 'object') return;
    const m = decodeRelayMessage(out.done);
    if (!m) {
      this.stats.dropped.malformed++;
      return;
    }
    if (m.type === 'whereabouts') {
      if (this.#node.importWhereabouts(m.bundle)) this.stats.whereaboutsStored++;
      return;
    }
    this.#takeEntries(m.raws);
    if (m.more) this.#queueHave(from);
  }

  /** A HAVE in answer to `more`, once per burst of received packets. */
  #queueHave(to: Uint8Array): void {
    const p = this.#peer(toHex(to));
    if (p.haveQueued) return;
    p.haveQueued = true;
    setImmediate(() => {
      p.haveQueued = false;
      if (!this.#closed) this.#guard(() => this.#sendHave(to));
    });
  }

  #takeEntries(raws: Uint8Array[]): void {
    const followed = this.#followed();
    for (const raw of raws) {
      const feedSeq = peekFeedSeq(raw);
      if (!feedSeq) {
        this.stats.dropped.malformed++;
        continue;
      }
      const key = toHex(feedSeq.feed);
      if (!followed.has(key)) {
        this.stats.dropped.unfollowed++;
        continue;
      }
      if (this.#buffered >= this.#o.maxBuffered) {
        this.stats.dropped.bufferFull++;
        continue;
      }
      const length = this.#node.store.feed(feedSeq.feed)?.length ?? 0;
      if (feedSeq.seq <= length) {
        // Not a gap: a duplicate, or a conflicting entry that the store turns into a fork proof.
        // Kept apart from the reorder buffer, where a second entry with the same seq would be lost.
        const list = this.#held.get(key) ?? [];
        list.push(raw);
        this.#held.set(key, list);
        this.#buffered++;
      } else {
        // Only a window ahead of what we hold: entries far ahead could never drain and would
        // only take room from others.
        if (feedSeq.seq > length + this.#o.maxBuffered) {
          this.stats.dropped.bufferFull++;
          continue;
        }
        const buf = this.#buffer.get(key) ?? new Map<number, { raw: Uint8Array; at: number }>();
        if (!buf.has(feedSeq.seq)) {
          buf.set(feedSeq.seq, { raw, at: Date.now() });
          this.#buffered++;
        }
        this.#buffer.set(key, buf);
      }
      this.#touched.add(key);
    }
    // One transaction (one fsync) for everything a mailbox fetch brought, as the direct path does.
    if (!this.#flushTimer && this.#touched.size > 0) {
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = null;
        const keys = [...this.#touched];
        this.#touched.clear();
        this.#guard(() => {
          for (const key of keys) this.#drain(key, this.#node.store);
        });
      }, FLUSH_DELAY_MS);
    }
  }

  /** Ingests a feed's buffered entries that extend it (or conflict with it), in seq order. */
  #drain(key: string, store: PeerNode['store']): void {
    const batch = this.#held.get(key) ?? [];
    this.#held.delete(key);
    this.#buffered -= batch.length;
    const buf = this.#buffer.get(key) ?? new Map<number, { raw: Uint8Array; at: number }>();
    const info = store.feed(Buffer.from(key, 'hex'));
    let next = (info?.length ?? 0) + 1;
    for (const seq of [...buf.keys()].sort((a, b) => a - b)) {
      if (seq > next) break;
      batch.push(buf.get(seq)!.raw);
      buf.delete(seq);
      this.#buffered--;
      if (seq === next) next++;
    }
    if (buf.size === 0) this.#buffer.delete(key);
    if (batch.length === 0) return;
    const result = store.ingest(batch);
    this.stats.entriesStored += result.stored.length;
    this.stats.dropped.rejected += result.rejected.length;
  }

  // ---------------------------------------------------------------------------------------------
  // Sending entries and whereabouts

  #answerHave(from: Uint8Array, wseq: number, clock: ClockEntry[]): void {
    const p = this.#peer(toHex(from));
    for (const c of clock) p.has.set(toHex(c.feed), c.seq);
    p.theirWseq = Math.max(p.theirWseq, wseq);
    let entries = this.#o.maxEntriesPerRound;
    let bytes = this.#o.maxBytesPerRound;
    for (const c of clock) {
      if (entries <= 0 || bytes <= 0) break;
      const sent = this.#sendFeed(from, p, c, entries, bytes);
      entries -= sent.entries;
      bytes -= sent.bytes;
    }
    this.#sendWhereabouts(from, p, wseq);
  }

  /** Entries of one feed for a peer at `c`; returns what went. */
  #sendFeed(to: Uint8Array, p: PeerState, c: ClockEntry, maxEntries: number, maxBytes: number): { entries: number; bytes: number } {
    const store = this.#node.store;
    const info = store.feed(c.feed);
    const none = { entries: 0, bytes: 0 };
    if (!info) return none;
    const key = toHex(c.feed);
    const now = Date.now();
    const sent = p.sent.get(key);
    const recent = sent !== undefined && now - sent.at < this.#o.resendAfterMs;
    if (info.forked) {
      const proof = store.forkProof(c.feed);
      if (!proof || recent) return none;
      p.sent.set(key, { upTo: Number.MAX_SAFE_INTEGER, at: now });
      return this.#sendEntries(to, [proof.a.raw, proof.b.raw], false);
    }
    if (c.seq > 0 && c.seq <= info.length) {
      const ours = store.get(c.feed, c.seq);
      if (ours && !equalBytes(ours.hash, c.head)) {
        if (recent) return none;
        p.sent.set(key, { upTo: Number.MAX_SAFE_INTEGER, at: now }); // never stream a diverged feed
        return this.#sendEntries(to, [ours.raw], false);
      }
    }
    const from = Math.max(c.seq, recent ? sent.upTo : 0) + 1;
    if (from > info.length) return none;
    const raws = store.rangeRaw(c.feed, from, Math.min(info.length, from + maxEntries - 1), maxBytes);
    if (raws.length === 0) return none;
    const out = this.#sendEntries(to, raws, from + raws.length - 1 < info.length);
    if (out.entries > 0) p.sent.set(key, { upTo: from + out.entries - 1, at: now });
    return out;
  }

  #sendEntries(to: Uint8Array, raws: Uint8Array[], more: boolean): { entries: number; bytes: number } {
    const groups = groupEntries(raws);
    let entries = 0;
    let bytes = 0;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (!this.#sendMessage(to, encodeEntriesMessage(g, more && i === groups.length - 1))) break;
      entries += g.length;
      for (const r of g) bytes += r.length;
    }
    this.stats.entriesSent += entries;
    return { entries, bytes };
  }

  /** Our bundle, to a contact that already knows our endpoints and holds an older one. */
  #sendWhereabouts(to: Uint8Array, p: PeerState, wseq: number): void {
    const contact = this.#node.contacts().find((c) => equalBytes(c.node, to));
    if (!contact || contact.endpoints.length === 0) return;
    const bundle = this.#node.whereabouts().bundle;
    const seq = decodeWhereabouts(bundle).seq;
    const now = Date.now();
    if (seq <= wseq || (p.whereabouts.seq === seq && now - p.whereabouts.at < this.#o.resendAfterMs)) return;
    if (this.#sendMessage(to, encodeWhereaboutsMessage(bundle))) {
      p.whereabouts = { seq, at: now };
      this.stats.whereaboutsSent++;
    }
  }

  /** New entries of ours: a HAVE to every relayed contact, and the entries to those whose position we know. */
  #schedulePush(): void {
    if (this.#pushTimer || this.#closed) return;
    this.#pushTimer = setTimeout(() => {
      this.#pushTimer = null;
      this.#guard(() => this.#push());
    }, 10);
  }

  #push(): void {
    const me = this.#node.id;
    const info = this.#node.store.feed(me);
    if (!info) return;
    for (const c of this.#relayContacts()) {
      const p = this.#peer(toHex(c.node));
      const has = p.has.get(toHex(me));
      if (has !== undefined) this.#sendFeed(c.node, p, { feed: me, seq: has, head: has === 0 ? ZERO_HASH : (this.#node.store.get(me, has)?.hash ?? ZERO_HASH) }, this.#o.maxEntriesPerRound, this.#o.maxBytesPerRound);
      this.#sendHave(c.node);
    }
  }

  /** Runs deferred work; a failure (the node closing under us) ends the relay, never the process. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch {
      // the node or the link is closing; the next round (if any) tries again
    }
  }
}

/** Author and seq of an encoded entry, without decoding it (bounds-checked). */
function peekFeedSeq(raw: Uint8Array): { feed: Uint8Array; seq: number } | null {
  if (raw.length < 41 || (raw[0] !== ENTRY_VERSION && raw[0] !== LEGACY_ENTRY_VERSION)) return null;
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const hi = v.getUint32(33);
  if (hi > 0x1fffff) return null;
  const seq = hi * 2 ** 32 + v.getUint32(37);
  return seq >= 1 ? { feed: raw.subarray(1, 33), seq } : null;
}
