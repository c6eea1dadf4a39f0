/**
 * Whereabouts gossip: this node's sealed, signed whereabouts bundle (republished when forced,
 * when its endpoints change, or at half-life) goes to every session; contacts' bundles are
 * verified, stored, and a newer record of an unconnected contact triggers an immediate dial.
 * A failed dial asks the connected contacts for the target's bundle (WHEREABOUTS_REQ). When no
 * contact has been reachable for `beaconAfterMs`, `beacon.needed` fires with our bundle.
 */
import type { ContactStore } from './contacts.js';
import type { Dialer } from './dialer.js';
import type { NodeIdentity } from './identity.js';
import type { EmitNodeEvent, Session, Sessions } from './sessions.js';
import { parseEndpoint } from './transport/ws-transport.js';
import { decodeWhereabouts, openWhereabouts, sealWhereabouts, verifyWhereabouts, type WhereaboutsStore } from './whereabouts.js';
import { MSG, decodeNodeId } from './wire.js';
import { equalBytes, toHex } from '../util/bytes.js';

const META_WHEREABOUTS = 'whereabouts.bundle';

export interface WhereaboutsGossipOptions {
  readonly identity: NodeIdentity;
  readonly contacts: ContactStore;
  readonly places: WhereaboutsStore;
  readonly sessions: Sessions;
  readonly dialer: Dialer;
  /** The endpoints this node publishes. */
  readonly endpoints: () => string[];
  readonly ttlMs: number;
  readonly beaconAfterMs: number;
  /** Minimum interval between two requests for the same node's whereabouts. */
  readonly askIntervalMs: number;
  readonly emit: EmitNodeEvent;
}

/** What became of a received bundle. */
export type WhereaboutsOutcome = ReturnType<WhereaboutsStore['put']> | 'invalid' | 'ignored';

/** This node's whereabouts, and its contacts'. */
export class WhereaboutsGossip {
  readonly #opts: WhereaboutsGossipOptions;
  readonly #lastAsked = new Map<string, number>();
  #lastBeacon = 0;

  constructor(opts: WhereaboutsGossipOptions) {
    this.#opts = opts;
  }

  get #id(): Uint8Array {
    return this.#opts.identity.publicKey;
  }

  /** Our current bundle (sealed now if there is none yet). */
  ownBundle(): Uint8Array {
    return this.#opts.contacts.getMeta(META_WHEREABOUTS) ?? this.publish(true);
  }

  /** Re-seals our bundle when forced, when endpoints changed, or at half-life; sends it to sessions. */
  publish(force = false): Uint8Array {
    const { contacts, identity, sessions } = this.#opts;
    const endpoints = this.#opts.endpoints();
    const prevRaw = contacts.getMeta(META_WHEREABOUTS);
    const prev = prevRaw ? decodeWhereabouts(prevRaw) : null;
    const ttl = this.#opts.ttlMs;
    const now = Date.now();
    const mine = prev ? openWhereabouts(identity, prev) : null;
    const stale = !prev || prev.expiresAt - now < ttl / 2 || !mine || mine.endpoints.join(' ') !== endpoints.join(' ');
    if (!force && !stale && prevRaw) return prevRaw;
    const seq = Math.max((prev?.seq ?? 0) + 1, now);
    // we are a recipient too, so we can read back what we published
    const recipients = [this.#id, ...contacts.list().map((c) => c.node)];
    const bundle = sealWhereabouts(identity, { seq, expiresAt: now + ttl, endpoints }, recipients);
    contacts.setMeta(META_WHEREABOUTS, bundle);
    for (const s of sessions.values()) s.channel.send(MSG.WHEREABOUTS, bundle);
    return bundle;
  }

  /** A new session: our bundle, and requests for every contact not connected. */
  greet(session: Session): void {
    const { contacts, sessions } = this.#opts;
    session.channel.send(MSG.WHEREABOUTS, this.ownBundle());
    for (const c of contacts.list()) {
      if (!sessions.has(toHex(c.node))) session.channel.send(MSG.WHEREABOUTS_REQ, c.node);
    }
  }

  /** A bundle from a session (`from`) or found elsewhere (null: a beacon drop). */
  receive(payload: Uint8Array, from: Session | null): WhereaboutsOutcome {
    const { contacts, places, sessions, dialer, emit, identity } = this.#opts;
    let b;
    try {
      b = decodeWhereabouts(payload);
    } catch {
      if (from) sessions.drop(from.channel, 'malformed WHEREABOUTS');
      return 'invalid';
    }
    if (equalBytes(b.node, this.#id) || !contacts.has(b.node)) return 'ignored';
    if (!verifyWhereabouts(b)) {
      if (from) sessions.drop(from.channel, 'bad WHEREABOUTS signature');
      return 'invalid';
    }
    const result = places.put(b);
    if (result === 'equivocation') emit('whereabouts.equivocation', b.node, b.seq);
    if (result !== 'stored') return result;
    const rec = openWhereabouts(identity, b);
    const contact = contacts.get(b.node);
    if (rec && contact && rec.seq > contact.whereaboutsSeq) {
      const endpoints = rec.endpoints.filter((u) => parseEndpoint(u) !== null);
      contacts.setEndpoints(b.node, endpoints, rec.seq);
      emit('whereabouts.updated', { ...rec, endpoints });
      const key = toHex(b.node);
      if (!sessions.has(key)) {
        dialer.cancelRedial(key);
        dialer.connect(b.node);
      }
    }
    return result;
  }

  /** Answers a WHEREABOUTS_REQ with the bundle we hold for that node, if any. */
  answerRequest(session: Session, payload: Uint8Array): void {
    let node: Uint8Array;
    try {
      node = decodeNodeId(payload);
    } catch {
      return this.#opts.sessions.drop(session.channel, 'malformed WHEREABOUTS_REQ');
    }
    const bundle = equalBytes(node, this.#id) ? this.ownBundle() : this.#opts.places.get(node);
    if (bundle) session.channel.send(MSG.WHEREABOUTS, bundle);
  }

  /** Asks every connected contact where `node` is (rate-limited per target). */
  ask(node: Uint8Array): void {
    const key = toHex(node);
    const now = Date.now();
    if (now - (this.#lastAsked.get(key) ?? 0) < this.#opts.askIntervalMs) return;
    this.#lastAsked.set(key, now);
    for (const s of this.#opts.sessions.values()) if (s.key !== key) s.channel.send(MSG.WHEREABOUTS_REQ, node);
  }

  /** Periodic work: republish at half-life, prune expired bundles, ask for a beacon when alone too long. */
  maintain(): void {
    const { contacts, places, sessions } = this.#opts;
    this.publish();
    places.prune();
    const now = Date.now();
    const hasContacts = contacts.list().length > 0;
    const after = this.#opts.beaconAfterMs;
    if (sessions.size > 0) sessions.markReachable(now);
    else if (hasContacts && now - sessions.lastReachable >= after && now - this.#lastBeacon >= after) {
      this.#lastBeacon = now;
      this.#opts.emit('beacon.needed', this.ownBundle());
    }
  }
}
