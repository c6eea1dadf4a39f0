/**
 * Where the peer node meets dead drops: the one integration point used by the daemon's node
 * feature and by `deaddrop drop send` (CLI or API).
 *
 * - {@link nodeSeed}: the node's 32-byte identity seed, from the wallet's node key
 *   m/1046'/coin'/0'/0' (src/wallet/keys.ts) through HKDF, as keys.ts asks of a layer on another
 *   curve. One wallet seed, one node identity.
 * - {@link issueNodeIntroduction}: a single-use invite of this datadir's node, shaped for a drop payload
 *   (pairwise key, 8-byte token, expiry on a whole hour). It is recorded in the node's database
 *   (`<datadir>/node.sqlite`), so the node accepts the recipient when it dials in, whether the
 *   daemon runs right now or starts later.
 * - {@link introductionFromDrop}: the Introduction that a drop found by the watcher carries.
 */
import { join } from 'node:path';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { WalletKeys } from '../wallet/keys.js';
import type { IntroductionIssuer, NodeIssuerFactory } from '../deaddrop/publish.js';
import { DeaddropError } from '../util/errors.js';
import { ContactStore } from './contacts.js';
import { wipe } from './crypto.js';
import { openNodeDatabase } from './db.js';
import { NodeIdentity } from './identity.js';
import { DROP_TOKEN_BYTES, expandDropToken, issueIntroductionToken } from './introduction-token.js';
import type { Introduction } from './introduction-token.js';
import { ReachabilityStore } from './reachability-store.js';
import { parseEndpoint } from './transport/ws-transport.js';
import { fromHex } from '../util/bytes.js';
import { mixnetEndpoint, mixnetProviderId, mixProviderId } from '../deaddrop/endpoint.js';
import { HOME_META_KEY } from './mixnet/introductions.js';

/** The node's database in a datadir. */
export const NODE_DB = 'node.sqlite';

/** Largest expiry a drop payload carries: 2^24 - 1 hours after the epoch (seconds). */
const MAX_DROP_EXPIRY_SECONDS = (2 ** 24 - 1) * 3600;
const SEED_SALT = new TextEncoder().encode('deaddrop/node-seed/v1');

export function nodeDbPath(datadir: string): string {
  return join(datadir, NODE_DB);
}

/** The node identity seed of a wallet (32 bytes, secret: wipe it after use). */
export function nodeSeed(keys: WalletKeys): Uint8Array {
  const pair = keys.nodeKey();
  try {
    return hkdf(sha256, pair.privateKey, SEED_SALT, undefined, 32);
  } finally {
    pair.privateKey.fill(0);
  }
}

/** A node introduction: what a drop payload carries so that its reader can dial this node (an introduction token, shaped for the payload). */
export interface NodeIntroduction {
  /** The pairwise Ed25519 key (payload `nodeKey`). */
  readonly nodeKey: Uint8Array;
  /** The 8-byte drop token (payload `token`). Secret until redeemed. */
  readonly token: Uint8Array;
  /** Unix seconds on a whole hour, as the payload carries it; null = never. */
  readonly expiresAt: number | null;
  /** The node's endpoints to announce. */
  readonly endpoints: string[];
}

/** Rounds Unix seconds up to the whole hour (what the payload can carry); null stays null. */
export function carriedExpiry(expiresAt: number | null): number | null {
  if (expiresAt === null) return null;
  if (!Number.isFinite(expiresAt) || expiresAt <= 0) throw DeaddropError.badInput('expiry must be a positive Unix time');
  return Math.min(Math.ceil(expiresAt / 3600) * 3600, MAX_DROP_EXPIRY_SECONDS);
}

/** Node-side expiry (ms) of an invite whose drop carries `carried` (seconds or null). */
function nodeExpiryMs(carried: number | null): number {
  return (carried ?? MAX_DROP_EXPIRY_SECONDS) * 1000;
}

export interface IssueNodeIntroductionOptions {
  /** The node identity seed ({@link nodeSeed}). */
  readonly seed: Uint8Array;
  /** The node database ({@link nodeDbPath}). */
  readonly dbPath: string;
  /** Unix seconds (rounded up to the hour), or null for never. */
  readonly expiresAt: number | null;
  /** Endpoints to announce; default the ones the node last listened on (none if it never ran). */
  readonly endpoints?: readonly string[];
}

/**
 * Issues a single-use invite of the node whose database is `dbPath` and returns what goes into
 * the drop. Safe while the daemon runs (sqlite WAL; the node reads invites from the database).
 * @example
 * const inv = issueNodeIntroduction({ seed: nodeSeed(keys), dbPath: nodeDbPath(datadir), expiresAt: now + 30 * 86400 })
 * // payload: { nodeKey: inv.nodeKey, token: inv.token, expiresAt: inv.expiresAt, endpoints: inv.endpoints }
 */
export function issueNodeIntroduction(opts: IssueNodeIntroductionOptions): NodeIntroduction {
  const carried = carriedExpiry(opts.expiresAt);
  if (carried !== null && carried * 1000 <= Date.now()) throw DeaddropError.badInput('the invite would already be expired');
  const identity = NodeIdentity.fromSeed(opts.seed);
  const db = openNodeDatabase(opts.dbPath);
  try {
    const contacts = new ContactStore(db);
    const endpoints = opts.endpoints ?? new ReachabilityStore(db).endpoints();
    const issued = issueIntroductionToken(identity, endpoints, nodeExpiryMs(carried), (id, exp) => contacts.createIntroductionToken(id, exp));
    wipe(issued.token);
    return { nodeKey: issued.pairwiseKey, token: issued.dropToken, expiresAt: carried, endpoints: [...endpoints] };
  } finally {
    db.close();
    identity.destroy();
  }
}

/** Node-side lifetime (ms from now) for an invite whose drop carries `carried`. */
export function introductionTokenTtlMs(carried: number | null, now = Date.now()): number {
  return Math.max(1, nodeExpiryMs(carried) - now);
}

/**
 * The mixnet hint (`mixnet:<provider id>`) for this datadir's node, when it has linked to a mixnet
 * provider (recorded by the running node); null otherwise. Drops carry it by default.
 */
export function mixnetHintOf(datadir: string): string | null {
  const db = openNodeDatabase(nodeDbPath(datadir));
  try {
    const home = new ContactStore(db).getMeta(HOME_META_KEY);
    return home && home.length === 32 ? mixnetEndpoint(mixProviderId(home)) : null;
  } finally {
    db.close();
  }
}

/** An introduction read from a drop. */
export interface DropIntroduction {
  readonly introduction: Introduction;
  /** The provider id of a mixnet hint (answer over the mixnet, never dial), or null. */
  readonly mixnetProvider: Uint8Array | null;
  /** Unix seconds, or null for never. */
  readonly expiresAt: number | null;
  readonly message: string;
}

function hexBytes(v: unknown, length: number): Uint8Array | null {
  if (typeof v !== 'string' || v.length !== length * 2 || !/^[0-9a-f]+$/.test(v)) return null;
  return fromHex(v);
}

/**
 * The introduction in a drop payload as the watcher reports it (`nodeKey`, `token` hex,
 * `endpoints`, `expiresAt` seconds or null, `message`). Null when it is not usable (no ws:// or
 * wss:// endpoint this node can dial and no mixnet hint, wrong sizes). `.onion` endpoints count only with
 * `onion: true` (the node runs with Tor). Never throws on chain data.
 */
export function introductionFromDrop(payload: Record<string, unknown>, opts: { onion?: boolean } = {}): DropIntroduction | null {
  const pairwiseKey = hexBytes(payload.nodeKey, 32);
  const dropToken = hexBytes(payload.token, DROP_TOKEN_BYTES);
  if (!pairwiseKey || !dropToken) return null;
  const usable = (e: unknown): e is string => {
    const url = typeof e === 'string' ? parseEndpoint(e) : null;
    return url !== null && (opts.onion === true || !url.hostname.endsWith('.onion'));
  };
  const endpoints = Array.isArray(payload.endpoints) ? payload.endpoints.filter(usable) : [];
  const mixnetProvider = Array.isArray(payload.endpoints) ? payload.endpoints.map(mixnetProviderId).find((x) => x !== null) ?? null : null;
  if (endpoints.length === 0 && mixnetProvider === null) return null;
  const expiresAt = typeof payload.expiresAt === 'number' && Number.isFinite(payload.expiresAt) ? payload.expiresAt : null;
  const message = typeof payload.message === 'string' ? payload.message : '';
  return { introduction: { pairwiseKey, endpoints, token: expandDropToken(dropToken, pairwiseKey) }, mixnetProvider, expiresAt, message };
}

/**
 * The issuer of the datadir's peer node, injected into the drop feature (see
 * {@link NodeIssuerFactory}): a pairwise key derived from the node identity (itself from the
 * wallet seed) and a random token id, the id and expiry recorded in `<datadir>/node.sqlite`, so
 * the node accepts the recipient once, before expiry, whether the daemon runs now or starts later.
 */
export const nodeIssuer: NodeIssuerFactory = (keys: WalletKeys, datadir: string): IntroductionIssuer => {
  return (expiresAt) => {
    const seed = nodeSeed(keys);
    try {
      const inv = issueNodeIntroduction({ seed, dbPath: nodeDbPath(datadir), expiresAt, endpoints: [] });
      return { nodeKey: inv.nodeKey, token: inv.token, expiresAt: inv.expiresAt };
    } finally {
      seed.fill(0);
    }
  };
};
