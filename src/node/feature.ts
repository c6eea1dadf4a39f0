/**
 * The daemon's peer-node feature: runs the PeerNode with the wallet's node identity, turns
 * introductions found on chain into contacts, sends beacon drops, and serves `/node/*`.
 *
 * DEV NOTES
 * - Identity: `nodeSeed(walletKeys)` (./drop-introduction.ts). Without an unlocked wallet there is no
 *   node (its routes answer NOT_INITIALIZED).
 * - Listening: `host` (default 127.0.0.1), `port` (default: the port of the last run, else any),
 *   `advertise` (default the listening URL). `deaddrop start` takes them from DEADDROP_NODE_HOST,
 *   DEADDROP_NODE_PORT and DEADDROP_NODE_ADVERTISE (comma-separated URLs).
 * - Bootstrap: every `drop.pending` / `drop.confirmed` on the EventBus (and, at start, every drop
 *   the watcher recorded earlier) whose payload is a usable introduction is dialed with the token
 *   proven (`bootstrapFromIntroduction`). Transient failures are retried with backoff until the
 *   token expires; a refusal is final. State per pairwise key in `dd_intros` (./reachability-store.ts).
 * - Contact cards (./contact-card.ts): on every new contact we append a card with our
 *   silent-payment address sealed to it; cards from contacts are read as they replicate.
 * - Beacon (`beacon.needed`: no contact reachable for `beaconAfterMs`): a whereabouts bundle is
 *   far larger than the 72 bytes a v0 drop carries, so the beacon drop is a fresh introduction of
 *   this node at its current endpoints, addressed to each contact whose silent-payment address we
 *   know and that has not seen these endpoints (neither on a session nor in an earlier beacon).
 *   The contact's watcher finds it, its node dials and proves the token, and our signed
 *   whereabouts bundle reaches it on that session (what `importWhereabouts` would have done).
 * - Events: node.* on the EventBus (hence the API websocket), ids stable per fact.
 */
import { routeGroup, type ApiRoutePlugin } from '../feature/routes.js';
import type { DaemonEvent } from '../util/event-bus.js';
import { EventSummary } from '../util/event-summary.js';
import type { DaemonFeature, FeatureContext, RunningFeature } from '../feature/contract.js';
import { DeaddropError, isDeaddropError } from '../util/errors.js';
import type { Wallet } from '../wallet/wallet.js';
import { decodeAddress } from '../deaddrop/bip352.js';
import { listLocalDrops } from '../deaddrop/datadir-stores.js';
import { checkIntroduction, walletSilentAddress } from '../deaddrop/publish.js';
import { sendDrop } from '../deaddrop/send.js';
import { CONTACT_CARD_TYPE, contactCardDraft, readContactCard } from './contact-card.js';
import type { Contact } from './contacts.js';
import { wipe } from './crypto.js';
import { openNodeDatabase } from './db.js';
import { carriedExpiry, introductionFromDrop, introductionTokenTtlMs, nodeDbPath, nodeSeed } from './drop-introduction.js';
import type { DropIntroduction } from './drop-introduction.js';
import { ReachabilityStore } from './reachability-store.js';
import type { LogEntry } from './log/codec.js';
import { PeerNode } from './node.js';
import type { PeerNodeOptions } from './node.js';
import { nodeRoutes, type NodeService } from './routes.js';
import { NodeIdentity } from './identity.js';
import { NodeTor, type NodeTorOptions } from './tor/node-tor.js';
import { torRoutes, torStatusReport } from './tor/routes.js';
import { startNodeMixnet } from './mixnet/node-hook.js';
import type { MixnetOptions } from './mixnet/options.js';
import { mixnetRoutes } from './mixnet/routes.js';
import { groupRoutes } from './groups/routes.js';
import { GroupService } from './groups/service.js';
import type { MixnetService } from './mixnet/service.js';
import { NodeStorage } from './storage/service.js';
import { serverOnNodeHost, type StorageOptions } from './storage/options.js';
import { storageRoutes } from './storage/routes.js';
import { nodeContentStore } from './storage/content-store.js';
import type { ContentStore } from '../feature/content-store.js';
import { MixIntroductions } from './mixnet/introductions.js';
import { FeedRelay } from './mixnet/feed-relay.js';
import { attachMixnetMail } from './mixnet/mail-channel.js';
import type { MailHub } from '../feature/mail.js';
import { equalBytes, toHex } from '../util/bytes.js';
import { Backoff } from '../util/time.js';
import { join } from 'node:path';

/** Options of the node feature (tests set short timings; `deaddrop start` reads the environment). */
export interface NodeFeatureOptions {
  readonly host?: string;
  /** Listening port; default the last run's, else any free one. */
  readonly port?: number;
  readonly advertise?: readonly string[];
  readonly beaconAfterMs?: number;
  readonly whereaboutsTtlMs?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly inviteWaitMs?: number;
  /** Lifetime of a beacon's invite (default 30 days). */
  readonly beaconTtlMs?: number;
  /** Backoff when bootstrapping a found introduction fails for a transient reason (default 2 s .. 5 min). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** At most one `node.peer.rejected` summary per this many ms (default 10 s). */
  readonly rejectionSummaryMs?: number;
  /** Reach and be reached through Tor (src/node/tor/node-tor.ts); off when absent. */
  readonly tor?: NodeTorOptions;
  /** Mixnet roles and placement (src/node/mixnet/options.ts); every node is a mixnet client. */
  readonly mixnet?: MixnetOptions;
  /** Storage server role, backend and schedule (src/node/storage/options.ts); every node can store. */
  readonly storage?: StorageOptions;
  /** Told the node's storage as a content store once it runs, and null when it stops (PayPub publishes into it). */
  readonly onContentStore?: (store: ContentStore | null) => void;
  /** The daemon's mail hub (src/feature/mail.ts): the node's mixnet carries it while it runs (PayPub announcements). */
  readonly mail?: MailHub;
}

const DAY_MS = 24 * 3600_000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sameList(a: readonly string[] | null, b: readonly string[]): boolean {
  return a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
}

function short(node: Uint8Array): string {
  return toHex(node).slice(0, 12);
}

/** Options from DEADDROP_NODE_HOST / DEADDROP_NODE_PORT / DEADDROP_NODE_ADVERTISE. */
export function nodeOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): NodeFeatureOptions {
  const out: { host?: string; port?: number; advertise?: string[] } = {};
  if (env.DEADDROP_NODE_HOST) out.host = env.DEADDROP_NODE_HOST;
  if (env.DEADDROP_NODE_PORT) {
    const port = Number(env.DEADDROP_NODE_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw DeaddropError.badInput('DEADDROP_NODE_PORT must be a port number 0..65535');
    out.port = port;
  }
  if (env.DEADDROP_NODE_ADVERTISE) out.advertise = env.DEADDROP_NODE_ADVERTISE.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return out;
}

/** Starts a PeerNode on the wanted port; a remembered port that is taken falls back to any port. */
async function openNode(base: PeerNodeOptions, remembered: number | null, explicit: number | undefined): Promise<PeerNode> {
  const port = explicit ?? remembered ?? 0;
  const node = new PeerNode({ ...base, port });
  try {
    await node.ready();
    return node;
  } catch (err) {
    await node.close();
    if (explicit !== undefined || port === 0) throw err;
  }
  const fallback = new PeerNode({ ...base, port: 0 });
  try {
    await fallback.ready();
    return fallback;
  } catch (err) {
    await fallback.close();
    throw err;
  }
}

interface Retry {
  timer: NodeJS.Timeout | null;
  readonly backoff: Backoff;
}

/** The running node of one daemon. */
class NodeRuntime implements NodeService {
  readonly #address: string;
  readonly #retries = new Map<string, Retry>();
  readonly #inflight = new Map<string, Promise<void>>();
  #beacons: Promise<void> = Promise.resolve();
  #unsubscribe: () => void = () => undefined;
  #closed = false;
  readonly #rejections: EventSummary;
  /** The node's mixnet side (client, and mix/provider when it opted in). */
  mixnet: MixnetService | null = null;
  /** Detaches the mixnet from the daemon's mail hub. */
  detachMail: (() => void) | null = null;
  /** The node's storage side (client, and server when it opted in). */
  storage: NodeStorage | null = null;
  /** Groups carried over the node's feeds (src/node/groups/service.ts). */
  groups: GroupService | null = null;
  /** Introductions answered over the mixnet (drops with a mixnet hint), both sides. */
  mixIntros: MixIntroductions | null = null;
  /** Feeds and whereabouts over the mixnet for contacts with no session (./mixnet/feed-relay.ts). */
  feedRelay: FeedRelay | null = null;

  readonly #ctx: FeatureContext;
  readonly #wallet: Wallet;
  readonly #opts: NodeFeatureOptions;
  readonly #port: number;

  constructor(
    readonly node: PeerNode,
    readonly extras: ReachabilityStore,
    ctx: FeatureContext,
    wallet: Wallet,
    opts: NodeFeatureOptions,
    port: number,
    readonly tor: NodeTor | null = null,
  ) {
    this.#ctx = ctx;
    this.#wallet = wallet;
    this.#opts = opts;
    this.#port = port;
    this.#address = walletSilentAddress(wallet.keys);
    this.#rejections = new EventSummary(ctx.events, { type: 'node.peer.rejected', intervalMs: opts.rejectionSummaryMs });
  }

  start(): void {
    const node = this.node;
    this.extras.setListening(this.#port, node.endpoints);
    this.#bridgeEvents();
    node.on('contact.added', (c) => this.#sendCard(c.node));
    node.on('entry.replicated', (e) => this.#readCard(e));
    node.on('peer.connected', (n) => this.extras.setKnownEndpoints(n, node.endpoints));
    node.on('beacon.needed', () => this.#queueBeacons());
    node.on('peer.dialed', (n, url) => this.tor?.noteDialed(n, url));
    node.on('peer.disconnected', (n) => this.tor?.noteDisconnected(n));
    for (const c of node.contacts()) {
      this.#sendCard(c.node);
      if (this.extras.peer(c.node).spAddress === null) this.#scanCards(c.node);
    }
    this.#unsubscribe = this.#ctx.events.subscribe((ev) => this.#onBusEvent(ev));
    for (const d of listLocalDrops(this.#ctx.datadir)) {
      if (d.status === 'pending' || d.status === 'confirmed') this.#considerDrop(d.id, d.payload);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    this.#rejections.close();
    await this.storage?.close();
    this.feedRelay?.close();
    this.mixIntros?.close();
    this.detachMail?.();
    this.detachMail = null;
    await this.mixnet?.close();
    this.groups?.close();
    for (const r of this.#retries.values()) if (r.timer) clearTimeout(r.timer);
    this.#retries.clear();
    await this.node.close();
    await Promise.allSettled([...this.#inflight.values(), this.#beacons]);
    await this.tor?.close();
  }

  #publish(type: string, id: string, data: Record<string, unknown>): void {
    this.#ctx.events.publish(type, id, data);
  }

  #bridgeEvents(): void {
    const node = this.node;
    const entry = (e: LogEntry): Record<string, unknown> => ({ author: toHex(e.author), seq: e.seq, hash: toHex(e.hash), type: e.header.type });
    node.on('entry.appended', (e) => this.#publish('node.entry.appended', `node.entry:${toHex(e.author)}:${e.seq}`, entry(e)));
    node.on('entry.replicated', (e) => this.#publish('node.entry.replicated', `node.entry:${toHex(e.author)}:${e.seq}`, entry(e)));
    node.on('contact.added', (c) => this.#publish('node.contact.added', `node.contact:${toHex(c.node)}`, { node: toHex(c.node), endpoints: c.endpoints }));
    node.on('fork.detected', (p) => this.#publish('node.fork.detected', `node.fork:${toHex(p.a.author)}`, { author: toHex(p.a.author), seq: p.a.seq }));
    node.on('whereabouts.updated', (r) =>
      this.#publish('node.whereabouts.updated', `node.whereabouts:${toHex(r.node)}:${r.seq}`, { node: toHex(r.node), seq: r.seq, endpoints: r.endpoints }));
    node.on('peer.connected', (n) => this.#publish('node.peer.connected', `node.peer.connected:${toHex(n)}:${Date.now()}`, { node: toHex(n) }));
    node.on('peer.disconnected', (n, reason) =>
      this.#publish('node.peer.disconnected', `node.peer.disconnected:${toHex(n)}:${Date.now()}`, { node: toHex(n), reason }));
    // Strangers cause rejections at will: counted, and summarized at most once per interval.
    node.on('peer.rejected', (reason) => this.#rejections.add(reason));
  }

  // ------------------------------------------------------------------------------------------
  // Contact cards

  #sendCard(contact: Uint8Array): void {
    if (this.#closed || this.extras.peer(contact).cardSentAt !== null) return;
    const draft = contactCardDraft(this.node.identity, contact, this.#address);
    if (!draft) return;
    this.node.append(draft);
    this.extras.markCardSent(contact);
  }

  #readCard(e: LogEntry): void {
    if (e.header.type !== CONTACT_CARD_TYPE || !this.node.contacts().some((c) => equalBytes(c.node, e.author))) return;
    const address = readContactCard(this.node.identity, e);
    if (address === null) return;
    try {
      decodeAddress(address, this.#ctx.network);
    } catch {
      return;
    }
    if (this.extras.peer(e.author).spAddress === address) return;
    this.extras.setAddress(e.author, address);
    this.#publish('node.contact.address', `node.contact.address:${toHex(e.author)}:${e.seq}`, { node: toHex(e.author) });
  }

  #scanCards(contact: Uint8Array): void {
    const length = this.node.store.feed(contact)?.length ?? 0;
    for (let from = 1; from <= length; from += 256) {
      for (const e of this.node.store.range(contact, from, Math.min(length, from + 255))) this.#readCard(e);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Introductions found on chain

  #onBusEvent(ev: DaemonEvent): void {
    if (ev.type !== 'drop.pending' && ev.type !== 'drop.confirmed') return;
    const payload = ev.data.payload;
    if (payload === null || typeof payload !== 'object') return;
    const dropId = typeof ev.data.dropId === 'string' ? ev.data.dropId : ev.id;
    this.#considerDrop(dropId, payload as Record<string, unknown>);
  }

  #considerDrop(dropId: string, payload: Record<string, unknown>): void {
    if (this.#closed) return;
    const found = introductionFromDrop(payload, { onion: this.tor !== null });
    if (!found) return;
    const key = toHex(found.introduction.pairwiseKey);
    if (this.#inflight.has(key) || this.#retries.has(key)) return;
    const state = this.extras.intro(key);
    if (state && state.status !== 'pending') return;
    const mine = this.node.endpoints;
    if (found.introduction.endpoints.some((e) => mine.includes(e) || this.tor?.publishes(e) === true)) return; // a drop we sent ourselves
    if (this.mixIntros?.isOwn(found.introduction.pairwiseKey)) return;
    const known = this.node.contacts().find((c) => c.pairwiseKey !== null && equalBytes(c.pairwiseKey, found.introduction.pairwiseKey));
    if (known) return this.extras.setIntro(key, dropId, 'done', { contact: known.node });
    this.#attempt(key, dropId, found);
  }

  #attempt(key: string, dropId: string, found: DropIntroduction): void {
    if (this.#closed) return;
    if (found.expiresAt !== null && found.expiresAt * 1000 <= Date.now()) {
      this.#retries.delete(key);
      this.extras.setIntro(key, dropId, 'expired');
      this.#publish('node.introduction.expired', `node.introduction.expired:${dropId}`, { dropId });
      return;
    }
    // A mixnet hint is answered over the mixnet (never dialing, so the introducer never learns our
    // address), even when the drop also names an endpoint.
    const intros = this.mixIntros;
    const join = found.mixnetProvider !== null && intros
      ? intros.join({ pairwiseKey: found.introduction.pairwiseKey, token: found.introduction.token, providerId: found.mixnetProvider })
      : found.introduction.endpoints.length > 0
        ? this.node.bootstrapFromIntroduction(found.introduction)
        : Promise.reject(DeaddropError.unreachable('the mixnet (not started yet)'));
    const run = join.then(
      (contact: Contact) => {
        this.#retries.delete(key);
        this.extras.setIntro(key, dropId, 'done', { contact: contact.node });
        this.#publish('node.introduction.accepted', `node.introduction.accepted:${dropId}`, { dropId, node: toHex(contact.node) });
        this.#ctx.log('peer node: an introduction was accepted; contact added');
      },
      (err: unknown) => {
        if (this.#closed) return;
        if (isDeaddropError(err, 'REJECTED')) {
          this.#retries.delete(key);
          this.extras.setIntro(key, dropId, 'rejected', { error: message(err) });
          this.#publish('node.introduction.rejected', `node.introduction.rejected:${dropId}`, { dropId, reason: message(err) });
          this.#ctx.log(`peer node: an introduction was refused: ${message(err)}`);
          return;
        }
        this.extras.setIntro(key, dropId, 'pending', { error: message(err) });
        this.#scheduleRetry(key, dropId, found);
      },
    );
    const tracked = run.finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, tracked);
  }

  #scheduleRetry(key: string, dropId: string, found: DropIntroduction): void {
    const r = this.#retries.get(key) ?? { timer: null, backoff: new Backoff({ initialMs: this.#opts.retryMinMs ?? 2000, maxMs: this.#opts.retryMaxMs ?? 300_000 }) };
    r.timer = setTimeout(() => {
      r.timer = null;
      this.#attempt(key, dropId, found);
    }, r.backoff.next());
    this.#retries.set(key, r);
  }

  // ------------------------------------------------------------------------------------------
  // Beacons

  #queueBeacons(): void {
    this.#beacons = this.#beacons.then(() => this.#sendBeacons()).catch((err: unknown) => this.#ctx.log(`peer node: beacon: ${message(err)}`));
  }

  async #sendBeacons(): Promise<void> {
    const endpoints = this.node.endpoints;
    let hints: string[];
    try {
      hints = checkIntroduction({ endpoints }).endpoints;
    } catch (err) {
      this.#ctx.log(`peer node: cannot send a beacon: ${message(err)}`);
      return;
    }
    const connected = new Set(this.node.connectedPeers().map(toHex));
    for (const c of this.node.contacts()) {
      if (this.#closed) return;
      const st = this.extras.peer(c.node);
      if (connected.has(toHex(c.node)) || sameList(st.knownEndpoints, endpoints) || sameList(st.beaconEndpoints, endpoints)) continue;
      // A contact met over the mixnet never learns our endpoints, not from a beacon either.
      if (c.endpoints.length === 0) continue;
      if (st.spAddress === null) {
        this.#ctx.log('peer node: a contact has no known silent-payment address; no beacon for it');
        continue;
      }
      await this.#sendBeacon(c.node, st.spAddress, hints, endpoints);
    }
  }

  async #sendBeacon(contact: Uint8Array, recipient: string, hints: string[], endpoints: string[]): Promise<void> {
    const carried = carriedExpiry(Math.floor((Date.now() + (this.#opts.beaconTtlMs ?? 30 * DAY_MS)) / 1000));
    const invite = this.node.createIntroductionToken({ ttlMs: introductionTokenTtlMs(carried) });
    try {
      const sent = await sendDrop(this.#wallet, {
        recipient, payload: { nodeKey: invite.pairwiseKey, token: invite.dropToken, expiresAt: carried, endpoints: hints }, feeRate: await this.#ctx.defaultFeeRate(),
      });
      this.extras.recordBeacon(contact, endpoints, sent.txid);
      this.#publish('node.beacon.sent', `node.beacon:${sent.txid}`, { node: toHex(contact), txid: sent.txid });
      this.#ctx.log('peer node: beacon drop sent');
    } catch (err) {
      this.#publish('node.beacon.failed', `node.beacon.failed:${toHex(contact)}:${Date.now()}`, { node: toHex(contact), reason: message(err) });
      this.#ctx.log(`peer node: a beacon drop failed: ${message(err)}`);
    } finally {
      wipe(invite.token);
    }
  }

  // ------------------------------------------------------------------------------------------
  // NodeService (API)

  contactInfo(c: Contact, connected: Set<string>): Record<string, unknown> {
    const st = this.extras.peer(c.node);
    return {
      node: toHex(c.node), pairwiseKey: c.pairwiseKey ? toHex(c.pairwiseKey) : null, label: c.label, endpoints: c.endpoints,
      whereaboutsSeq: c.whereaboutsSeq, addedAt: c.addedAt, lastSeen: c.lastSeen, connected: connected.has(toHex(c.node)),
      spAddress: st.spAddress, beaconTxid: st.beaconTxid,
    };
  }

  introductions(): Record<string, unknown>[] {
    return this.extras.intros().map((i) => ({ ...i }));
  }
}

/** The node feature with explicit options. */
export function createNodeFeature(opts: NodeFeatureOptions = {}, env?: () => NodeFeatureOptions): DaemonFeature {
  return {
    name: 'node',
    async start(ctx: FeatureContext): Promise<RunningFeature> {
      const options = { ...(env?.() ?? {}), ...opts };
      const keys = ctx.walletKeys;
      const wallet = ctx.wallet;
      let runtime: NodeRuntime | null = null;
      if (keys && wallet) runtime = await startRuntime(ctx, wallet, options);
      if (runtime?.storage) options.onContentStore?.(nodeContentStore(runtime.storage));
      if (!runtime) ctx.log('peer node off: no unlocked wallet (its identity derives from the wallet seed)');
      const routes: ApiRoutePlugin[] = [
        routeGroup('/node', nodeRoutes, { service: () => runtime ?? undefined }),
        routeGroup('/node', mixnetRoutes, {
          service: () => runtime?.mixnet ?? undefined,
          isContact: (n: Uint8Array) => runtime?.node.contacts().some((c) => equalBytes(c.node, n)) === true,
          relay: () => runtime?.feedRelay?.stats ?? null,
        }),
        routeGroup('/storage', storageRoutes, { service: () => runtime?.storage ?? undefined }),
        routeGroup('/node/groups', groupRoutes, { service: () => runtime?.groups ?? undefined }),
        routeGroup('/node/tor', torRoutes, { status: () => runtime?.tor?.status(runtime.node.connectedPeers()) ?? null }),
      ];
      return {
        routes,
        tor: () => (runtime?.tor ? torStatusReport(runtime.tor.status(runtime.node.connectedPeers())) : null),
        async close() {
          options.onContentStore?.(null);
          await runtime?.close();
          runtime = null;
        },
      };
    },
  };
}

async function startRuntime(ctx: FeatureContext, wallet: Wallet, options: NodeFeatureOptions): Promise<NodeRuntime> {
  const dbPath = nodeDbPath(ctx.datadir);
  const probe = openNodeDatabase(dbPath);
  const remembered = (() => {
    try {
      return new ReachabilityStore(probe).port();
    } finally {
      probe.close();
    }
  })();
  const seed = nodeSeed(wallet.keys);
  let node: PeerNode;
  let tor: NodeTor | null = null;
  try {
    tor = options.tor ? await NodeTor.open(options.tor, ctx.datadir, (line) => ctx.log(line)) : null;
    const torHooks = tor ? torNodeHooks(tor, seed) : {};
    node = await openNode(
      {
        seed, dbPath, host: options.host ?? '127.0.0.1', ...torHooks,
        ...(options.advertise && options.advertise.length > 0 ? { advertise: [...options.advertise] } : {}),
        ...(options.beaconAfterMs !== undefined ? { beaconAfterMs: options.beaconAfterMs } : {}),
        ...(options.whereaboutsTtlMs !== undefined ? { whereaboutsTtlMs: options.whereaboutsTtlMs } : {}),
        ...(options.reconnectMinMs !== undefined ? { reconnectMinMs: options.reconnectMinMs } : {}),
        ...(options.reconnectMaxMs !== undefined ? { reconnectMaxMs: options.reconnectMaxMs } : {}),
        ...(options.inviteWaitMs !== undefined ? { inviteWaitMs: options.inviteWaitMs } : {}),
      },
      remembered,
      options.port,
    );
    if (tor) {
      try {
        await publishNodeOnions(tor, node, seed);
      } catch (err) {
        await node.close();
        throw err;
      }
    }
  } catch (err) {
    await tor?.close();
    throw err;
  } finally {
    wipe(seed);
  }
  const listening = options.advertise?.length || tor ? (node.listeningPort ?? options.port ?? remembered ?? 0) : Number(new URL(node.endpoints[0]!).port);
  const runtime = new NodeRuntime(node, new ReachabilityStore(node.store.db), ctx, wallet, options, listening, tor);
  try {
    runtime.start();
    runtime.groups = new GroupService(node, (type, id, data) => ctx.events.publish(type, id, data), () => runtime.storage);
    runtime.groups.start();
  } catch (err) {
    await runtime.close();
    throw err;
  }
  try {
    runtime.mixnet = await startNodeMixnet(node, options.mixnet ?? {}, (m) =>
      ctx.events.publish('node.message.received', `node.message:${m.id}`, { id: m.id, contact: m.contact, text: m.text, inReplyTo: m.inReplyTo, canReply: m.canReply }));
    runtime.mixIntros = new MixIntroductions(node, runtime.mixnet);
    runtime.mixIntros.start();
    runtime.feedRelay = new FeedRelay(node, runtime.mixnet);
    runtime.feedRelay.start();
    if (options.mail) runtime.detachMail = attachMixnetMail(runtime.mixnet, options.mail, node.identity);
  } catch (err) {
    await runtime.close();
    throw err;
  }
  try {
    runtime.storage = await NodeStorage.start(node, {
      ...serverOnNodeHost(options.storage ?? {}, options.host), dir: join(ctx.datadir, 'storage'), log: (line) => ctx.log(line), mixnet: runtime.mixnet,
      publish: (type, id, data) => ctx.events.publish(type, id, data),
    });
  } catch (err) {
    await runtime.close();
    throw err;
  }
  ctx.log(`peer node ${short(node.id)} listening on ${node.endpoints.join(' ')}${runtime.mixnet.url ? `; mixnet listener on ${runtime.mixnet.url}` : ''}`);
  return runtime;
}

/** The route and announce hooks of a node that uses Tor (its own onion first, or only it). */
function torNodeHooks(tor: NodeTor, seed: Uint8Array): Pick<PeerNodeOptions, 'route' | 'announce'> {
  const id = NodeIdentity.fromSeed(seed);
  const onion = tor.endpointOf(id.publicKey);
  id.destroy();
  return { route: (url, peer) => tor.route(url, peer), announce: (endpoints) => tor.announceable([onion, ...endpoints]) };
}

/** Publishes the node's own onion and keeps one up per live invite, all to the node's port. */
async function publishNodeOnions(tor: NodeTor, node: PeerNode, seed: Uint8Array): Promise<void> {
  const target = `127.0.0.1:${node.listeningPort}`;
  await tor.publish(seed, target, 'node');
  tor.watchInvites(node.store.db, node.identity, target);
}

/** The node feature of `deaddrop start` (listening options from the environment). */
export const nodeFeature: DaemonFeature = createNodeFeature({}, () => nodeOptionsFromEnv());
