/**
 * Sphinx packets for the deaddrop mixnet (Danezis and Goldberg 2009), as specified in
 * docs/protocol/mixnet.md: creation of forward packets, per-hop processing, single-use reply
 * blocks (SURBs) and the replay tags a mix keeps per epoch.
 *
 * Processing never throws on bad input: a packet of the wrong size, with a small-order group
 * element, a bad header MAC, a replayed tag, an unknown command or (at the exit) a bad payload MAC
 * gives a typed {@link Rejection}.
 */
import { randomBytes } from 'node:crypto';
import {
  ADDRESS_BYTES, ALPHA_BYTES, BETA_BYTES, BODY_BYTES, CMD_DELIVER, CMD_DELIVER_REPLY, CMD_RELAY,
  HEADER_BYTES, HOP_INFO, MAC_BYTES, MAX_HOPS, PACKET_BYTES, PAYLOAD_BYTES, PAYLOAD_TAG_BYTES,
  REPLAY_TAG_BYTES, SLOT_BYTES, SURB_ID_BYTES, SURB_INFO,
} from './params.js';
import { aesCtr, hkdf, hmac, keystream, x25519, x25519Base } from './primitives.js';
import { equalBytes } from '../../util/bytes.js';

/** One hop of a route, as the sender knows it from a verified descriptor. */
export interface RouteHop {
  /** The node's 32-byte address (what the previous hop finds in its slot). */
  readonly address: Uint8Array;
  /** The node's X25519 mix key for the epoch in which the packet reaches it. */
  readonly publicKey: Uint8Array;
  /** How long this hop holds the packet, in milliseconds (drawn by the sender). */
  readonly delayMs: number;
}

/** Why a packet was dropped. */
export type RejectReason = 'size' | 'point' | 'mac' | 'replay' | 'command' | 'payload';

/** A dropped packet. */
export interface Rejection {
  readonly ok: false;
  readonly reason: RejectReason;
}

/** Forward the packet to `next` after `delayMs`. */
export interface Relay {
  readonly ok: true;
  readonly kind: 'relay';
  readonly next: Buffer;
  readonly delayMs: number;
  readonly packet: Buffer;
  /** The replay tag (already recorded in the replay cache). */
  readonly tag: Buffer;
}

/** Final hop of a forward packet: the payload MAC verified; store `body` in `mailbox`. */
export interface Deliver {
  readonly ok: true;
  readonly kind: 'deliver';
  readonly mailbox: Buffer;
  readonly delayMs: number;
  readonly body: Buffer;
  readonly tag: Buffer;
}

/** Final hop of a SURB reply: store the payload (readable only by the SURB's creator) with its id. */
export interface DeliverReply {
  readonly ok: true;
  readonly kind: 'reply';
  readonly mailbox: Buffer;
  readonly delayMs: number;
  readonly surbId: Buffer;
  readonly payload: Buffer;
  readonly tag: Buffer;
}

export type ProcessResult = Relay | Deliver | DeliverReply | Rejection;

/** The replay cache of one epoch key: records `tag` and says whether it was new. */
export interface ReplayGuard {
  /** True when `tag` was not seen before (and is now recorded); false for a replay. */
  admit(tag: Uint8Array): boolean;
}

/** Keys one hop derives from its shared secret (spec, "Per-hop keys"). */
export interface HopKeys {
  readonly rho: Buffer;
  readonly mu: Buffer;
  readonly pi: Buffer;
  readonly tau: Buffer;
  readonly blind: Buffer;
  readonly replay: Buffer;
}

/** HKDF-SHA-256(ikm = shared secret, salt = alpha, info = "deaddrop-mix-v1 hop", 144 bytes). */
export function hopKeys(secret: Uint8Array, alpha: Uint8Array): HopKeys {
  const k = hkdf(secret, alpha, HOP_INFO, 144);
  return {
    rho: k.subarray(0, 16),
    mu: k.subarray(16, 48),
    pi: k.subarray(48, 64),
    tau: k.subarray(64, 96),
    blind: k.subarray(96, 128),
    replay: k.subarray(128, 144),
  };
}

const reject = (reason: RejectReason): Rejection => ({ ok: false, reason });

/**
 * Processes one packet at a hop holding `privateKey` (spec, "Processing"). The replay tag is
 * recorded only after the header MAC verified, so garbage cannot fill the cache.
 */
export function processPacket(packet: Uint8Array, privateKey: Uint8Array, replay: ReplayGuard): ProcessResult {
  if (packet.length !== PACKET_BYTES) return reject('size');
  const alpha = packet.subarray(0, ALPHA_BYTES);
  const beta = packet.subarray(ALPHA_BYTES, ALPHA_BYTES + BETA_BYTES);
  const gamma = packet.subarray(ALPHA_BYTES + BETA_BYTES, HEADER_BYTES);
  const secret = x25519(privateKey, alpha);
  if (secret === undefined) return reject('point');
  const k = hopKeys(secret, alpha);
  if (!equalBytes(hmac(k.mu, MAC_BYTES, alpha, beta), gamma)) return reject('mac');
  const tag = Buffer.from(k.replay);
  if (!replay.admit(tag)) return reject('replay');

  const b = aesCtr(k.rho, Buffer.concat([beta, Buffer.alloc(SLOT_BYTES)]));
  const command = b[0]!;
  const delayMs = b.readUInt32BE(1);
  const address = b.subarray(5, 5 + ADDRESS_BYTES);
  const field = b.subarray(5 + ADDRESS_BYTES, 5 + ADDRESS_BYTES + 16);
  const payload = aesCtr(k.pi, packet.subarray(HEADER_BYTES));

  if (command === CMD_RELAY) {
    const nextAlpha = x25519(k.blind, alpha);
    if (nextAlpha === undefined) return reject('point');
    const out = Buffer.concat([nextAlpha, b.subarray(SLOT_BYTES), field, payload]);
    return { ok: true, kind: 'relay', next: Buffer.from(address), delayMs, packet: out, tag };
  }
  if (command === CMD_DELIVER) {
    const body = payload.subarray(PAYLOAD_TAG_BYTES);
    if (!equalBytes(hmac(k.tau, PAYLOAD_TAG_BYTES, body), payload.subarray(0, PAYLOAD_TAG_BYTES))) return reject('payload');
    return { ok: true, kind: 'deliver', mailbox: Buffer.from(address), delayMs, body: Buffer.from(body), tag };
  }
  if (command === CMD_DELIVER_REPLY) {
    return { ok: true, kind: 'reply', mailbox: Buffer.from(address), delayMs, surbId: Buffer.from(field), payload, tag };
  }
  return reject('command');
}

/** Randomness a packet creator draws; injectable so the committed vectors are reproducible. */
export interface HeaderRandomness {
  /** The ephemeral X25519 scalar (32 bytes). */
  readonly secret: Uint8Array;
  /** Fills the unused part of beta: BETA_BYTES - n * SLOT_BYTES bytes for an n-hop route. */
  readonly padding: Uint8Array;
}

interface BuiltHeader {
  readonly header: Buffer;
  readonly keys: HopKeys[];
}

function checkRoute(route: readonly RouteHop[]): void {
  if (route.length < 1 || route.length > MAX_HOPS) throw new RangeError(`a route has 1 to ${MAX_HOPS} hops, got ${route.length}`);
  for (const h of route) {
    if (h.address.length !== ADDRESS_BYTES) throw new RangeError('a hop address is 32 bytes');
    if (h.publicKey.length !== 32) throw new RangeError('a mix key is 32 bytes');
    if (!Number.isInteger(h.delayMs) || h.delayMs < 0 || h.delayMs > 0xffffffff) throw new RangeError('a delay is a uint32 of milliseconds');
  }
}

function slot(command: number, delayMs: number, address: Uint8Array, field: Uint8Array): Buffer {
  const s = Buffer.alloc(SLOT_BYTES);
  s[0] = command;
  s.writeUInt32BE(delayMs, 1);
  Buffer.from(address).copy(s, 5);
  Buffer.from(field).copy(s, 5 + ADDRESS_BYTES);
  return s;
}

/**
 * Builds a Sphinx header for `route` whose last hop finds `finalSlot` (spec, "Creating a header").
 * Throws RangeError on a malformed route (a caller bug, not network input) and Error when a mix
 * key is a small-order point.
 */
function buildHeader(route: readonly RouteHop[], finalSlot: Buffer, rnd: HeaderRandomness): BuiltHeader {
  checkRoute(route);
  const n = route.length;
  if (rnd.secret.length !== 32) throw new RangeError('the ephemeral secret is 32 bytes');
  if (rnd.padding.length !== BETA_BYTES - n * SLOT_BYTES) throw new RangeError(`padding must be ${BETA_BYTES - n * SLOT_BYTES} bytes`);
  const alphas: Buffer[] = [];
  const keys: HopKeys[] = [];
  const blinds: Buffer[] = [];
  let alpha = x25519Base(rnd.secret);
  for (let i = 0; i < n; i++) {
    let s = x25519(rnd.secret, route[i]!.publicKey);
    for (const bl of blinds) s = s === undefined ? undefined : x25519(bl, s);
    if (s === undefined) throw new Error(`hop ${i}: mix key is a small-order point`);
    const k = hopKeys(s, alpha);
    alphas.push(alpha);
    keys.push(k);
    blinds.push(k.blind);
    if (i < n - 1) {
      const next = x25519(k.blind, alpha);
      if (next === undefined) throw new Error('blinding produced a small-order point');
      alpha = next;
    }
  }
  // Filler: what hops 0..n-2 append and encrypt, so that the MACs of later hops can be computed.
  let filler: Buffer = Buffer.alloc(0);
  for (let i = 1; i < n; i++) {
    const ks = keystream(keys[i - 1]!.rho, BETA_BYTES + SLOT_BYTES);
    const grown = Buffer.concat([filler, Buffer.alloc(SLOT_BYTES)]);
    filler = xor(grown, ks.subarray(BETA_BYTES - (i - 1) * SLOT_BYTES));
  }
  const last = keys[n - 1]!;
  const plain = Buffer.concat([finalSlot, rnd.padding]);
  let beta: Buffer = Buffer.concat([xor(plain, keystream(last.rho, plain.length)), filler]);
  let gamma = hmac(last.mu, MAC_BYTES, alphas[n - 1]!, beta);
  for (let i = n - 2; i >= 0; i--) {
    const s = slot(CMD_RELAY, route[i]!.delayMs, route[i + 1]!.address, gamma);
    beta = aesCtr(keys[i]!.rho, Buffer.concat([s, beta.subarray(0, BETA_BYTES - SLOT_BYTES)]));
    gamma = hmac(keys[i]!.mu, MAC_BYTES, alphas[i]!, beta);
  }
  return { header: Buffer.concat([alphas[0]!, beta, gamma]), keys };
}

function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function freshRandomness(hops: number): HeaderRandomness {
  return { secret: randomBytes(32), padding: randomBytes(BETA_BYTES - hops * SLOT_BYTES) };
}

/** A packet ready to send to `firstHop`. */
export interface OutgoingPacket {
  readonly firstHop: Buffer;
  readonly packet: Buffer;
}

/** Pads `body` with zeros to BODY_BYTES (the application frames its own length). */
function padBody(body: Uint8Array): Buffer {
  if (body.length > BODY_BYTES) throw new RangeError(`a packet body is at most ${BODY_BYTES} bytes, got ${body.length}`);
  const out = Buffer.alloc(BODY_BYTES);
  Buffer.from(body).copy(out);
  return out;
}

/**
 * Creates a forward packet: `route` ends at the exit provider, which verifies the payload MAC and
 * stores `body` (zero-padded to BODY_BYTES) in `mailbox`.
 */
export function createPacket(route: readonly RouteHop[], mailbox: Uint8Array, body: Uint8Array, rnd: HeaderRandomness = freshRandomness(route.length)): OutgoingPacket {
  if (mailbox.length !== ADDRESS_BYTES) throw new RangeError('a mailbox id is 32 bytes');
  const last = route[route.length - 1];
  const { header, keys } = buildHeader(route, slot(CMD_DELIVER, last?.delayMs ?? 0, mailbox, Buffer.alloc(16)), rnd);
  const padded = padBody(body);
  let payload: Buffer = Buffer.concat([hmac(keys[keys.length - 1]!.tau, PAYLOAD_TAG_BYTES, padded), padded]);
  for (let i = keys.length - 1; i >= 0; i--) payload = aesCtr(keys[i]!.pi, payload);
  return { firstHop: Buffer.from(route[0]!.address), packet: Buffer.concat([header, payload]) };
}

/** What the creator gives a correspondent: enough to send one reply, nothing about the route. */
export interface Surb {
  readonly firstHop: Buffer;
  readonly header: Buffer;
  /** The key the replier encrypts the payload with (spec, "Replies"). */
  readonly key: Buffer;
}

/** What the creator keeps to read the reply; find it by `id`. */
export interface SurbSecret {
  readonly id: Buffer;
  readonly key: Buffer;
  /** The payload keys (pi) of every hop, in route order. */
  readonly hopPayloadKeys: readonly Buffer[];
}

/** Randomness of a SURB: header randomness, its id and its payload key. */
export interface SurbRandomness extends HeaderRandomness {
  readonly id: Uint8Array;
  readonly key: Uint8Array;
}

/** Serialized SURB: first hop (32) || header (HEADER_BYTES) || key (32). */
export const SURB_BYTES = ADDRESS_BYTES + HEADER_BYTES + 32;

/**
 * Creates a single-use reply block whose route ends at the creator's own provider, which stores
 * the reply in `mailbox` under the SURB id.
 */
export function createSurb(route: readonly RouteHop[], mailbox: Uint8Array, rnd?: SurbRandomness): { surb: Surb; secret: SurbSecret } {
  if (mailbox.length !== ADDRESS_BYTES) throw new RangeError('a mailbox id is 32 bytes');
  const r: SurbRandomness = rnd ?? { ...freshRandomness(route.length), id: randomBytes(SURB_ID_BYTES), key: randomBytes(32) };
  if (r.id.length !== SURB_ID_BYTES || r.key.length !== 32) throw new RangeError('a SURB id is 16 bytes and its key 32');
  const last = route[route.length - 1];
  const { header, keys } = buildHeader(route, slot(CMD_DELIVER_REPLY, last?.delayMs ?? 0, mailbox, r.id), r);
  return {
    surb: { firstHop: Buffer.from(route[0]!.address), header, key: Buffer.from(r.key) },
    secret: { id: Buffer.from(r.id), key: Buffer.from(r.key), hopPayloadKeys: keys.map((k) => Buffer.from(k.pi)) },
  };
}

function surbPayloadKeys(key: Uint8Array): { pi: Buffer; tau: Buffer } {
  const k = hkdf(key, Buffer.alloc(0), SURB_INFO, 48);
  return { pi: k.subarray(0, 16), tau: k.subarray(16, 48) };
}

/** Sends `body` through `surb` (the replier's side). */
export function useSurb(surb: Surb, body: Uint8Array): OutgoingPacket {
  const { pi, tau } = surbPayloadKeys(surb.key);
  const padded = padBody(body);
  const payload = aesCtr(pi, Buffer.concat([hmac(tau, PAYLOAD_TAG_BYTES, padded), padded]));
  return { firstHop: Buffer.from(surb.firstHop), packet: Buffer.concat([surb.header, payload]) };
}

/** Reads a reply delivered for `secret` (the creator's side); a Rejection when tampered with. */
export function openReply(secret: SurbSecret, payload: Uint8Array): { ok: true; body: Buffer } | Rejection {
  if (payload.length !== PAYLOAD_BYTES) return reject('size');
  let p: Buffer = Buffer.from(payload);
  for (const k of secret.hopPayloadKeys) p = aesCtr(k, p);
  const { pi, tau } = surbPayloadKeys(secret.key);
  p = aesCtr(pi, p);
  const body = p.subarray(PAYLOAD_TAG_BYTES);
  if (!equalBytes(hmac(tau, PAYLOAD_TAG_BYTES, body), p.subarray(0, PAYLOAD_TAG_BYTES))) return reject('payload');
  return { ok: true, body: Buffer.from(body) };
}

/** Serializes a SURB for carrying inside a message body. */
export function encodeSurb(surb: Surb): Buffer {
  return Buffer.concat([surb.firstHop, surb.header, surb.key]);
}

/** Parses a SURB; `undefined` when `bytes` has the wrong length. */
export function decodeSurb(bytes: Uint8Array): Surb | undefined {
  if (bytes.length !== SURB_BYTES) return undefined;
  const b = Buffer.from(bytes);
  return {
    firstHop: b.subarray(0, ADDRESS_BYTES),
    header: b.subarray(ADDRESS_BYTES, ADDRESS_BYTES + HEADER_BYTES),
    key: b.subarray(ADDRESS_BYTES + HEADER_BYTES),
  };
}

export { REPLAY_TAG_BYTES };
