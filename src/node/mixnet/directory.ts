/**
 * The mixnet directory without a central server (docs/protocol/mixnet.md, "Directory"): mixes and
 * providers publish signed descriptors as entries of their own signed log, clients publish which
 * provider keeps their mailbox, and the entries spread by the node's ordinary feed replication.
 *
 * A descriptor is an ordinary log entry (signed by its author, the node's identity key):
 *
 *   header { type: "deaddrop/mix-descriptor", app: "deaddrop", layer: uint 0..3 (0 = no mix role),
 *            provider: uint 0|1, epoch: uint, mixkey: bytes(32) X25519, endpoint: string (ws:// URL),
 *            until: uint (ms since the epoch) }   body: empty
 *   header { type: "deaddrop/mix-mailbox", app: "deaddrop", provider: bytes(32) }   body: empty
 *
 * A client chooses routes only from descriptors whose entry signature it verified here, that have
 * not expired, and whose epoch is the newest the author published. With fewer than one usable mix
 * in any layer it sends nothing ({@link TooFewMixes}); a shorter route would stand out.
 */
import { randomInt } from 'node:crypto';
import { verifyEntry } from '../log/codec.js';
import type { EntryDraft, LogEntry } from '../log/codec.js';
import { ADDRESS_BYTES } from './params.js';
import type { RouteHop } from './sphinx.js';
import { equalBytes, toHex } from '../../util/bytes.js';
import { mixProviderId } from '../../deaddrop/endpoint.js';
import { isAnnouncedEndpoint } from '../transport/announced-endpoint.js';

export const DESCRIPTOR_TYPE = 'deaddrop/mix-descriptor';
export const MAILBOX_TYPE = 'deaddrop/mix-mailbox';
/** Mix layers of the stratified topology. */
export const MIX_LAYERS = 3;
/** Default epoch length: one hour. */
export const DEFAULT_EPOCH_MS = 3600_000;

/** What a mix or provider announces for one epoch. */
export interface MixDescriptor {
  /** Ed25519 identity of the node: its mixnet address. */
  readonly address: Uint8Array;
  /** 1..3 for a mix, 0 when the node is only a provider. */
  readonly layer: number;
  readonly provider: boolean;
  readonly epoch: number;
  /** X25519 mix key of `epoch`. */
  readonly mixKey: Uint8Array;
  /** Where the node's mixnet listener is dialed. */
  readonly endpoint: string;
  /** Not used for routes after this time (ms). */
  readonly until: number;
}

/** Thrown when a route cannot be built from verified descriptors. */
export class TooFewMixes extends Error {
  constructor(readonly missing: string) {
    super(`mixnet: too few verified mixes to build a route (${missing}); nothing was sent`);
    this.name = 'TooFewMixes';
  }
}

/** The log entry of a descriptor (signed when appended to the author's own feed). */
export function descriptorDraft(d: Omit<MixDescriptor, 'address'>): EntryDraft {
  if (!Number.isInteger(d.layer) || d.layer < 0 || d.layer > MIX_LAYERS) throw new RangeError('layer: 0..3');
  if (d.layer === 0 && !d.provider) throw new RangeError('a descriptor announces a mix layer, a provider, or both');
  if (d.mixKey.length !== 32) throw new RangeError('mixKey: 32 bytes');
  return {
    header: { type: DESCRIPTOR_TYPE, app: 'deaddrop', layer: d.layer, provider: d.provider ? 1 : 0, epoch: d.epoch, mixkey: d.mixKey, endpoint: d.endpoint, until: d.until },
    body: new Uint8Array(0),
  };
}

/** The log entry naming the provider that keeps this node's mailbox. */
export function mailboxDraft(provider: Uint8Array): EntryDraft {
  if (provider.length !== ADDRESS_BYTES) throw new RangeError('provider: 32 bytes');
  return { header: { type: MAILBOX_TYPE, app: 'deaddrop', provider }, body: new Uint8Array(0) };
}

/** The descriptor in `entry`, or null when it is not a well-formed descriptor. Does not verify the signature. */
export function readDescriptor(entry: LogEntry): MixDescriptor | null {
  const h = entry.header;
  if (h.type !== DESCRIPTOR_TYPE) return null;
  const { layer, provider, epoch, mixkey, endpoint, until } = h;
  if (typeof layer !== 'number' || layer > MIX_LAYERS) return null;
  if (provider !== 0 && provider !== 1) return null;
  if (layer === 0 && provider === 0) return null;
  if (typeof epoch !== 'number' || typeof until !== 'number') return null;
  if (!(mixkey instanceof Uint8Array) || mixkey.length !== 32) return null;
  if (typeof endpoint !== 'string' || !isAnnouncedEndpoint(endpoint)) return null;
  return { address: entry.author, layer, provider: provider === 1, epoch, mixKey: mixkey, endpoint, until };
}


/**
 * Verified descriptors and mailbox announcements, newest per author. Feed it every entry the node
 * holds or receives; it checks each entry's signature itself, so a caller's mistake cannot let an
 * unverified descriptor into a route.
 */
export class MixDirectory {
  readonly #descriptors = new Map<string, { d: MixDescriptor; seq: number; raw: Uint8Array }>();
  readonly #mailboxes = new Map<string, { provider: Uint8Array; seq: number; raw: Uint8Array }>();
  readonly #now: () => number;
  /** Entries refused (bad signature or malformed). */
  refused = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Considers one log entry; returns true when it changed the directory. */
  add(entry: LogEntry): boolean {
    const type = entry.header.type;
    if (type !== DESCRIPTOR_TYPE && type !== MAILBOX_TYPE) return false;
    if (!verifyEntry(entry)) {
      this.refused++;
      return false;
    }
    const key = toHex(entry.author);
    if (type === MAILBOX_TYPE) {
      const p = entry.header.provider;
      if (!(p instanceof Uint8Array) || p.length !== ADDRESS_BYTES) {
        this.refused++;
        return false;
      }
      const old = this.#mailboxes.get(key);
      if (old && old.seq >= entry.seq) return false;
      this.#mailboxes.set(key, { provider: p, seq: entry.seq, raw: entry.raw });
      return true;
    }
    const d = readDescriptor(entry);
    if (!d) {
      this.refused++;
      return false;
    }
    const old = this.#descriptors.get(key);
    if (old && (old.d.epoch > d.epoch || (old.d.epoch === d.epoch && old.seq >= entry.seq))) return false;
    this.#descriptors.set(key, { d, seq: entry.seq, raw: entry.raw });
    return true;
  }

  /** Usable (unexpired) descriptors. */
  descriptors(): MixDescriptor[] {
    const now = this.#now();
    return [...this.#descriptors.values()].map((x) => x.d).filter((d) => d.until > now);
  }

  /** The signed entries of the usable descriptors, as a provider serves them to its clients. */
  entries(): Uint8Array[] {
    const now = this.#now();
    return [...this.#descriptors.values()].filter((x) => x.d.until > now).map((x) => x.raw);
  }

  /** The usable descriptor of `address`, if any. */
  get(address: Uint8Array): MixDescriptor | undefined {
    const d = this.#descriptors.get(toHex(address))?.d;
    return d && d.until > this.#now() ? d : undefined;
  }

  /** Endpoint of a verified node (the resolver of a MixNode). */
  resolve(address: Uint8Array): string | undefined {
    return this.get(address)?.endpoint;
  }

  /** The provider that keeps `node`'s mailbox, from its newest verified announcement. */
  providerOf(node: Uint8Array): Uint8Array | undefined {
    return this.#mailboxes.get(toHex(node))?.provider;
  }

  /** Usable providers. */
  providers(): MixDescriptor[] {
    return this.descriptors().filter((d) => d.provider);
  }

  /** The signed entry of `node`'s newest mailbox announcement (carried in mixnet introductions). */
  mailboxEntry(node: Uint8Array): Uint8Array | undefined {
    return this.#mailboxes.get(toHex(node))?.raw;
  }

  /** The signed entry of `address`'s usable descriptor. */
  descriptorEntry(address: Uint8Array): Uint8Array | undefined {
    const x = this.#descriptors.get(toHex(address));
    return x && x.d.until > this.#now() ? x.raw : undefined;
  }

  /** Usable providers whose 8-byte id (a drop's mixnet hint) is `id`: normally one, more only on a collision. */
  providersById(id: Uint8Array): MixDescriptor[] {
    return this.providers().filter((d) => equalBytes(mixProviderId(d.address), id));
  }

  /** Usable mixes of `layer` (1..3). */
  layer(layer: number): MixDescriptor[] {
    return this.descriptors().filter((d) => d.layer === layer);
  }

  /**
   * A 5-hop route: `from` provider, one random mix per layer, `to` provider; `delays` gives each
   * hop's delay in ms. `pick`, when given, narrows each layer's mixes before the random choice
   * (the service passes the mixes its loops found healthy). Throws {@link TooFewMixes} when a
   * provider or a layer is missing.
   */
  route(from: Uint8Array, to: Uint8Array, delays: readonly number[], pick?: (layer: MixDescriptor[]) => MixDescriptor[]): RouteHop[] {
    const entry = this.get(from);
    const exit = this.get(to);
    if (!entry?.provider) throw new TooFewMixes('no verified descriptor of the entry provider');
    if (!exit?.provider) throw new TooFewMixes('no verified descriptor of the exit provider');
    const mixes: MixDescriptor[] = [];
    for (let l = 1; l <= MIX_LAYERS; l++) {
      const all = this.layer(l);
      if (all.length === 0) throw new TooFewMixes(`no mix in layer ${l}`);
      const narrowed = pick ? pick(all) : all;
      const choices = narrowed.length === 0 ? all : narrowed;
      mixes.push(choices[randomInt(choices.length)]!);
    }
    return [entry, ...mixes, exit].map((d, i) => ({ address: d.address, publicKey: d.mixKey, delayMs: delays[i] ?? 0 }));
  }
}
