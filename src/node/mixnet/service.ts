/**
 * The mixnet in a node: its mix and/or provider role, its client side (one outbound link to its
 * provider, mailbox fetches) and messages between contacts (docs/protocol/mixnet.md, "Directory"
 * and "Messages").
 *
 * - Roles: with `layer` 1..3 and/or `provider`, the node runs a {@link MixNode} and publishes a
 *   signed descriptor for every epoch (a new random X25519 mix key each epoch and each start; the
 *   previous key is accepted for a grace period after a change).
 * - Directory: every log entry the node holds or receives goes through `ingest`; only verified
 *   descriptors are used (./directory.ts).
 * - Client: the home provider is `home`, else the node itself when it is a provider, else the
 *   first verified provider by address. The node announces its home in its log so that contacts
 *   can address it, keeps one link to it and fetches its mailbox every `fetchIntervalMs`.
 * - Messages: sealed end to end to the contact (./message.ts), sent on a 5-hop route with a SURB
 *   back to the sender; the recipient may answer once through that SURB.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { NodeIdentity } from '../identity.js';
import { decodeEntry } from '../log/codec.js';
import type { EntryDraft, LogEntry } from '../log/codec.js';
import type { Signer } from '../crypto.js';
import { encodeAlias } from './alias.js';
import { MixClient } from './client.js';
import { DEFAULT_EPOCH_MS, DESCRIPTOR_TYPE, MixDirectory, descriptorDraft, mailboxDraft, type MixDescriptor } from './directory.js';
import { healthyMixes } from './loop-monitor.js';
import { MixNode } from './mix-node.js';
import type { PacketEvent } from './mix-node.js';
import { MixKeyring } from './replay.js';
import { x25519Base } from './primitives.js';
import { routeDelaysMs } from './delays.js';
import { createPacket, createSurb, decodeSurb, encodeSurb, openReply, useSurb } from './sphinx.js';
import type { SurbSecret } from './sphinx.js';
import { decodePlain, encodePlain, openBody, sealMessage } from './message.js';
import type { MailboxItem } from './wire.js';
import { toHex } from '../../util/bytes.js';
import { type CoverSettings, type CoverStatus, CoverTraffic } from './cover.js';
import { Lifecycle } from '../../util/lifecycle.js';

export interface MixnetServiceOptions {
  readonly identity: NodeIdentity;
  /** Appends a draft to the node's own signed log (which replicates it). */
  readonly publish: (draft: EntryDraft) => void;
  /** True for a node whose messages we accept (a contact). */
  readonly isContact: (node: Uint8Array) => boolean;
  /** Mix layer 1..3, or 0/absent for none. */
  readonly layer?: number;
  readonly provider?: boolean;
  /** Listening host of the mix/provider listener (default 127.0.0.1) and port (default any). */
  readonly host?: string;
  readonly port?: number;
  /** Endpoint published in descriptors (default the listening URL). */
  readonly advertise?: string;
  /** Provider to use as home (default: see the module comment). */
  readonly home?: Uint8Array;
  /**
   * Where to dial `home` before its descriptor is known (bootstrap of a node that knows no
   * directory yet): the link is authenticated as `home` all the same.
   */
  readonly homeEndpoint?: string;
  readonly epochMs?: number;
  /** Mean Poisson delay per mix hop (default 50 ms). */
  readonly meanDelayMs?: number;
  /** Mailbox fetch interval (default 1 s). */
  readonly fetchIntervalMs?: number;
  readonly now?: () => number;
  /** Cover traffic rates and the loop-loss timeout (./cover.ts); all rates 0 (off) by default. */
  readonly cover?: CoverSettings;
  /** Instrumentation of the mix/provider role: called once per packet it processes (tests). */
  readonly onPacket?: (event: PacketEvent) => void;
}

/** A message sent or received. */
export interface MixMessage {
  readonly id: string;
  readonly direction: 'in' | 'out';
  /** The contact: sender of an incoming message, recipient of an outgoing one. */
  readonly contact: string;
  readonly text: string;
  readonly at: number;
  /** Incoming: whether a reply is still possible through the sender's SURB. */
  readonly canReply: boolean;
  /** The message this one answers, if it is a reply. */
  readonly inReplyTo: string | null;
}

const MAX_KEPT = 1000;
const MAX_SURBS = 10_000;

export class MixnetService extends EventEmitter<{
  message: [MixMessage];
  error: [Error];
  alias: [alias: Buffer, body: Buffer];
  /** The link to the home provider came up (again): aliases are registered anew. */
  linked: [home: Uint8Array];
  /** An authenticated body that is not a text message (feed relay, ./feed-relay.ts): sender and plaintext. */
  data: [from: Uint8Array, plain: Uint8Array];
}> {
  readonly #o: MixnetServiceOptions;
  readonly directory: MixDirectory;
  #node: MixNode | null = null;
  #keyring: MixKeyring | null = null;
  #epoch = 0;
  #client: MixClient | null = null;
  #connecting: Promise<void> | null = null;
  #home: Uint8Array | null = null;
  #announcedHome: string | null = null;
  readonly #timers = new Set<NodeJS.Timeout>();
  #fetchTimer: NodeJS.Timeout | null = null;
  #fetching = false;
  readonly #life = new Lifecycle('mixnet', { open: (signal) => this.#open(signal), close: () => this.#close() });
  readonly #messages: MixMessage[] = [];
  readonly #surbs = new Map<string, { secret: SurbSecret; contact: string; messageId: string; handler?: (body: Buffer) => void }>();
  readonly #inbound = new Map<string, Uint8Array>();
  #cover: CoverTraffic | null = null;

  constructor(options: MixnetServiceOptions) {
    super();
    this.#o = options;
    this.directory = new MixDirectory(options.now);
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  get #epochMs(): number {
    return this.#o.epochMs ?? DEFAULT_EPOCH_MS;
  }

  /** Mix layer (0 for none). */
  get layer(): number {
    return this.#o.layer ?? 0;
  }

  /** True when the node keeps mailboxes for clients. */
  get provider(): boolean {
    return this.#o.provider === true;
  }

  /** This node's mixnet address and mailbox id (its identity key). */
  get identityKey(): Uint8Array {
    return this.#o.identity.publicKey;
  }

  /** The mix/provider listener's URL, when the node has a role. */
  get url(): string | null {
    return this.#node?.url ?? null;
  }

  /** The mix node (counters, mailbox sizes), when the node has a role. */
  get mixNode(): MixNode | null {
    return this.#node;
  }

  /** The provider that keeps this node's mailbox, once chosen. */
  get home(): Uint8Array | null {
    return this.#home;
  }

  /** True while the link to the home provider is up. */
  get connected(): boolean {
    return this.#client !== null;
  }

  /** Starts the mix/provider role (if any) and publishes its descriptor. Memoized. */
  start(): Promise<void> {
    return this.#life.ready();
  }

  async #open(signal: AbortSignal): Promise<void> {
    const layer = this.#o.layer ?? 0;
    if (layer !== 0 || this.#o.provider) {
      this.#epoch = Math.floor(this.#now() / this.#epochMs);
      const key = randomBytes(32);
      this.#keyring = new MixKeyring({ epoch: this.#epoch, privateKey: key });
      this.#node = new MixNode({
        identity: this.#o.identity, keyring: this.#keyring, provider: this.#o.provider === true,
        resolve: (a) => this.directory.resolve(a), directoryEntries: () => this.directory.entries(), onDelivery: (m, b) => this.#cover?.takeOwnDelivery(m, b) ?? false,
        ...(this.#o.onPacket ? { onPacket: this.#o.onPacket } : {}),
      });
      await this.#node.listen(this.#o.host ?? '127.0.0.1', this.#o.port ?? 0);
      if (signal.aborted) return;
      // The keyring keeps `key` (not a copy) until the epoch after next: never wipe it here.
      this.#publishDescriptor(x25519Base(key));
      this.#scheduleRotation();
    }
    this.#tryConnect();
    this.#fetchTimer = setInterval(() => void this.fetchNow(), this.#o.fetchIntervalMs ?? 1000);
    this.#startCover();
  }

  #startCover(): void {
    this.#cover = CoverTraffic.forService(this.#o.cover ?? {}, {
      identity: this.#o.identity, directory: this.directory, layer: this.layer, provider: this.provider,
      meanDelayMs: this.#o.meanDelayMs ?? 50, fetchIntervalMs: this.#o.fetchIntervalMs ?? 1000, ...(this.#o.now ? { now: this.#o.now } : {}),
      home: () => (this.#client ? this.#home : null),
      sendClient: (out) => {
        this.#client?.send(out);
        return this.#client !== null;
      },
      sendMix: (out) => this.#node?.inject(out.firstHop, out.packet),
    });
    this.#cover.start();
  }

  /** Cover traffic (rates, packets sent) and the loop-loss report per route and per hop. */
  coverStatus(): CoverStatus | null {
    return this.#cover?.status() ?? null;
  }

  /** The cover traffic generator (after start). */
  get cover(): CoverTraffic | null {
    return this.#cover;
  }

  #publishDescriptor(mixKey: Uint8Array): void {
    const until = (this.#epoch + 2) * this.#epochMs;
    this.#o.publish(descriptorDraft({
      layer: this.#o.layer ?? 0, provider: this.#o.provider === true, epoch: this.#epoch, mixKey,
      endpoint: this.#o.advertise ?? this.#node!.url, until,
    }));
  }

  #scheduleRotation(): void {
    const next = (this.#epoch + 1) * this.#epochMs - this.#now();
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (this.#life.closing || !this.#keyring) return;
      this.#epoch++;
      const key = randomBytes(32);
      this.#keyring.rotate({ epoch: this.#epoch, privateKey: key });
      // The keyring keeps `key` (not a copy) until the epoch after next: never wipe it here.
      this.#publishDescriptor(x25519Base(key));
      // Grace: packets built for the previous key may still be in flight.
      const g = setTimeout(() => {
        this.#timers.delete(g);
        this.#keyring?.dropPrevious();
      }, Math.max(1000, this.#epochMs / 4));
      this.#timers.add(g);
      this.#scheduleRotation();
    }, Math.max(0, next));
    this.#timers.add(t);
  }

  /** Considers one log entry (own or replicated) for the directory. */
  ingest(entry: LogEntry): void {
    if (this.directory.add(entry)) this.#tryConnect();
  }

  #chooseHome(): Uint8Array | null {
    if (this.#o.home) return this.directory.get(this.#o.home)?.provider || this.#o.homeEndpoint ? this.#o.home : null;
    if (this.#o.provider && this.directory.get(this.#o.identity.publicKey)) return this.#o.identity.publicKey;
    const ps = this.directory.providers().sort((a, b) => Buffer.compare(a.address, b.address));
    return ps[0]?.address ?? null;
  }

  #tryConnect(): void {
    if (this.#life.closing || this.#client || this.#connecting) return;
    const home = this.#chooseHome();
    if (!home) return;
    const url = this.directory.resolve(home) ?? this.#o.homeEndpoint!;
    this.#connecting = MixClient.connect(this.#o.identity, url, home).then(
      (client) => {
        this.#connecting = null;
        if (this.#life.closing) return client.close();
        this.#client = client;
        this.#home = home;
        client.onClose(() => {
          if (this.#client === client) this.#client = null;
          if (!this.#life.closing) this.#retryLater();
        });
        if (this.#announcedHome !== toHex(home)) {
          this.#o.publish(mailboxDraft(home));
          this.#announcedHome = toHex(home);
        }
        // A node bootstrapped from an endpoint knows no descriptor yet: ask its provider for them.
        if (!this.directory.get(home)) void this.refreshDirectory().catch(() => undefined);
        void this.fetchNow();
        // The provider keeps aliases per link: whoever registered some registers them again now.
        this.emit('linked', home);
      },
      () => {
        this.#connecting = null;
        this.#retryLater();
      },
    );
  }

  #retryLater(): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      this.#tryConnect();
    }, 1000);
    this.#timers.add(t);
  }

  /**
   * Asks the home provider for the descriptors it knows and adds those whose signature verifies
   * (bootstrap of a node that replicates no mix's feed). Returns how many changed the directory.
   */
  async refreshDirectory(): Promise<number> {
    const client = this.#client;
    if (!client) throw new Error('mixnet: no link to a provider yet');
    let changed = 0;
    for (const raw of await client.fetchDirectory()) {
      let entry: LogEntry;
      try {
        entry = decodeEntry(raw);
      } catch {
        this.directory.refused++;
        continue;
      }
      if (entry.header.type === DESCRIPTOR_TYPE && this.directory.add(entry)) changed++;
    }
    return changed;
  }

  /** Registers `aliasKey`'s public key as a mailbox alias of this node at its home provider until `expiresAt` (ms). */
  registerAlias(aliasKey: Signer, expiresAt: number): void {
    const client = this.#client;
    const home = this.#home;
    if (!client || !home) throw new Error('mixnet: no link to a provider yet');
    client.registerAlias(encodeAlias(aliasKey, home, this.#o.identity.publicKey, expiresAt));
  }

  /** Fetches the mailbox now (also runs on a timer). */
  async fetchNow(): Promise<void> {
    const client = this.#client;
    if (!client || this.#fetching || this.#life.closing) return;
    this.#fetching = true;
    try {
      for (const item of await client.fetch()) this.#onItem(item);
    } catch {
      // The link closed or the provider did not answer: the next round tries again.
    } finally {
      this.#fetching = false;
    }
  }

  #keep(m: MixMessage): void {
    this.#messages.push(m);
    if (this.#messages.length > MAX_KEPT) this.#messages.shift();
    this.emit('message', m);
  }

  #onItem(item: MailboxItem): void {
    if (item.kind === 'alias') {
      // A forward packet for one of our aliases (an introduction's pairwise key): its owner opens it.
      this.emit('alias', item.alias, item.body);
      return;
    }
    if (item.kind === 'deliver') {
      const o = openBody(this.#o.identity, item.body);
      if (!o) return;
      const d = decodePlain(o.plain);
      if (!d) {
        // Other kinds (feed relay) go to whoever listens; it checks the sender itself and counts strangers.
        this.emit('data', o.from, o.plain);
        return;
      }
      const opened = { from: o.from, text: d.text, surb: d.surb };
      if (this.#cover?.takeOpened(opened) || !this.#o.isContact(opened.from)) return;
      const id = randomBytes(16).toString('hex');
      if (opened.surb) {
        this.#inbound.set(id, opened.surb);
        if (this.#inbound.size > MAX_SURBS) this.#inbound.delete(this.#inbound.keys().next().value!);
      }
      this.#keep({ id, direction: 'in', contact: toHex(opened.from), text: opened.text, at: this.#now(), canReply: opened.surb !== null, inReplyTo: null });
      return;
    }
    const key = item.surbId.toString('hex');
    const s = this.#surbs.get(key);
    if (!s) return;
    const r = openReply(s.secret, item.payload);
    if (!r.ok) return;
    if (s.handler) {
      this.#surbs.delete(key); // single use
      s.handler(r.body);
      return;
    }
    const plain = decodePlain(r.body);
    if (!plain) return;
    this.#surbs.delete(key); // single use
    this.#keep({ id: randomBytes(16).toString('hex'), direction: 'in', contact: s.contact, text: plain.text, at: this.#now(), canReply: false, inReplyTo: s.messageId });
  }

  readonly #healthy = (layer: MixDescriptor[]): MixDescriptor[] => {
    const monitor = this.#cover?.monitor;
    return monitor ? healthyMixes(layer, (a) => monitor.hopLoss(a)) : layer;
  };

  #delays(): number[] {
    return routeDelaysMs(5, this.#o.meanDelayMs ?? 50);
  }

  /**
   * Sends `text` to `contact` through the mixnet (with a SURB for one reply). Throws when the node
   * has no provider link yet, the contact announced no provider, or too few mixes are known
   * ({@link TooFewMixes}).
   */
  send(contact: Uint8Array, text: string): MixMessage {
    const client = this.#client;
    const home = this.#home;
    if (!client || !home) throw new Error('mixnet: no link to a provider yet');
    const exit = this.directory.providerOf(contact);
    if (!exit) throw new Error('mixnet: the contact has announced no provider');
    // Real messages and their SURBs avoid mixes the loops caught dropping traffic.
    const route = this.directory.route(home, exit, this.#delays(), this.#healthy);
    const back = this.directory.route(exit, home, this.#delays(), this.#healthy);
    const { surb, secret } = createSurb(back, this.#o.identity.publicKey);
    const id = randomBytes(16).toString('hex');
    const body = sealMessage(this.#o.identity, contact, text, encodeSurb(surb));
    client.send(createPacket(route, contact, body));
    this.#surbs.set(secret.id.toString('hex'), { secret, contact: toHex(contact), messageId: id });
    if (this.#surbs.size > MAX_SURBS) this.#surbs.delete(this.#surbs.keys().next().value!);
    const m: MixMessage = { id, direction: 'out', contact: toHex(contact), text, at: this.#now(), canReply: false, inReplyTo: null };
    this.#messages.push(m);
    if (this.#messages.length > MAX_KEPT) this.#messages.shift();
    return m;
  }

  /**
   * Sends one sealed body to `mailbox` at provider `exit` on a 5-hop route (used for introductions,
   * whose mailbox is the introducer's pairwise key). Throws like {@link send}.
   */
  sendTo(exit: Uint8Array, mailbox: Uint8Array, body: Uint8Array): void {
    const client = this.#client;
    const home = this.#home;
    if (!client || !home) throw new Error('mixnet: no link to a provider yet');
    client.send(createPacket(this.directory.route(home, exit, this.#delays(), this.#healthy), mailbox, body));
  }

  /**
   * A SURB from provider `from` back to this node's mailbox; `onReply` hears the (authenticated,
   * decrypted) reply body once. Used by introductions, whose answer is not a contact's message.
   */
  createReplyBlock(from: Uint8Array, onReply: (body: Buffer) => void): Uint8Array {
    const home = this.#home;
    if (!home) throw new Error('mixnet: no link to a provider yet');
    const { surb, secret } = createSurb(this.directory.route(from, home, this.#delays(), this.#healthy), this.#o.identity.publicKey);
    this.#surbs.set(secret.id.toString('hex'), { secret, contact: '', messageId: '', handler: onReply });
    if (this.#surbs.size > MAX_SURBS) this.#surbs.delete(this.#surbs.keys().next().value!);
    return encodeSurb(surb);
  }

  /** Sends `body` through a SURB someone gave us (an introduction's answer). */
  answerThrough(surbBytes: Uint8Array, body: Uint8Array): void {
    const client = this.#client;
    const surb = decodeSurb(surbBytes);
    if (!client) throw new Error('mixnet: no link to a provider yet');
    if (!surb) throw new RangeError('not a SURB');
    client.send(useSurb(surb, body));
  }

  /** This node's signed mailbox announcement and its provider's descriptor, once both are known. */
  ownEntries(): { mailbox: Uint8Array; provider: Uint8Array } | null {
    const home = this.#home;
    const mailbox = this.directory.mailboxEntry(this.#o.identity.publicKey);
    const provider = home ? this.directory.descriptorEntry(home) : undefined;
    return mailbox && provider ? { mailbox, provider } : null;
  }

  /** Answers incoming message `id` once, through its sender's SURB. */
  reply(id: string, text: string): MixMessage {
    const client = this.#client;
    if (!client) throw new Error('mixnet: no link to a provider yet');
    const raw = this.#inbound.get(id);
    const original = this.#messages.find((m) => m.id === id && m.direction === 'in');
    const surb = raw ? decodeSurb(raw) : undefined;
    if (!surb || !original) throw new Error('mixnet: no reply block for that message (unknown, or already answered)');
    client.send(useSurb(surb, encodePlain(text, null)));
    this.#inbound.delete(id);
    const m: MixMessage = { id: randomBytes(16).toString('hex'), direction: 'out', contact: original.contact, text, at: this.#now(), canReply: false, inReplyTo: id };
    this.#messages.push(m);
    return m;
  }

  /**
   * Messages kept in memory, oldest first. `canReply` holds only while the message's reply block
   * is still kept: once answered (or its SURB dropped) it reads false, so nobody offers a reply
   * that would fail.
   */
  messages(): MixMessage[] {
    return this.#messages.map((m) => (m.canReply && !this.#inbound.has(m.id) ? { ...m, canReply: false } : m));
  }

  /** Stops the role, the link to the home provider and every timer. Idempotent. */
  close(): Promise<void> {
    return this.#life.close();
  }

  async #close(): Promise<void> {
    this.#cover?.stop();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    if (this.#fetchTimer) clearInterval(this.#fetchTimer);
    this.#client?.close();
    this.#client = null;
    await this.#connecting?.catch(() => undefined);
    await this.#node?.close();
  }
}
