/**
 * Storage servers announce themselves as mixes do (src/node/mixnet/directory.ts): a descriptor
 * entry in their own signed log, spread by the node's ordinary feed replication.
 *
 *   header { type: "deaddrop/storage-server", app: "deaddrop", endpoint: string (ws:// URL of the
 *            storage listener), quota: uint (bytes), free: uint (bytes at announcement time),
 *            until: uint (ms since the epoch), provider?: hex (32 bytes: the mixnet provider that
 *            keeps the server's mailbox, for reads through the mixnet, docs/protocol/storage.md §10) }
 *   body: empty
 *
 * The author of the entry (its Ed25519 identity key) is the key the client pins when it dials the
 * endpoint over Noise, so an endpoint copied into someone else's announcement reaches nobody.
 * A client places shares only on servers whose entry signature it verified here, newest entry per
 * author, not expired, and not withdrawn (an announcement with quota 0 withdraws).
 */
import { verifyEntry } from '../log/codec.js';
import type { EntryDraft, LogEntry } from '../log/codec.js';
import { fromHex, toHex } from '../../util/bytes.js';
import type { ServerInfo } from './client.js';
import { isAnnouncedEndpoint } from '../transport/announced-endpoint.js';

export const STORAGE_SERVER_TYPE = 'deaddrop/storage-server';

/** What a storage server announces. */
export interface StorageAnnouncement {
  /** Ed25519 identity of the server (the entry's author). */
  readonly id: Uint8Array;
  readonly endpoint: string;
  readonly quota: number;
  readonly free: number;
  /** Not used for placement after this time (ms). */
  readonly until: number;
  /** The mixnet provider keeping the server's mailbox (its Ed25519 key), when it has one. */
  readonly provider?: Uint8Array;
}

/** The log entry of an announcement (signed when appended to the server's own feed). */
export function announcementDraft(a: Omit<StorageAnnouncement, 'id'>): EntryDraft {
  if (!isAnnouncedEndpoint(a.endpoint)) throw new RangeError('endpoint: a ws:// or wss:// URL with a port');
  for (const [k, v] of [['quota', a.quota], ['free', a.free], ['until', a.until]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${k}: a non-negative integer`);
  }
  if (a.provider !== undefined && a.provider.length !== 32) throw new RangeError('provider: a 32-byte key');
  return {
    header: { type: STORAGE_SERVER_TYPE, app: 'deaddrop', endpoint: a.endpoint, quota: a.quota, free: a.free, until: a.until, ...(a.provider ? { provider: toHex(a.provider) } : {}) },
    body: new Uint8Array(0),
  };
}

const uint = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** The announcement in `entry`, or null when it is not a well-formed one. Does not verify the signature. */
export function readAnnouncement(entry: LogEntry): StorageAnnouncement | null {
  const h = entry.header;
  if (h.type !== STORAGE_SERVER_TYPE) return null;
  const { endpoint, quota, free, until, provider } = h;
  if (typeof endpoint !== 'string' || !isAnnouncedEndpoint(endpoint)) return null;
  if (!uint(quota) || !uint(free) || !uint(until) || free > quota) return null;
  if (provider !== undefined && (typeof provider !== 'string' || !/^[0-9a-f]{64}$/.test(provider))) return null;
  return { id: entry.author, endpoint, quota, free, until, ...(typeof provider === 'string' ? { provider: fromHex(provider) } : {}) };
}

/**
 * Verified storage-server announcements, newest per author. Feed it every entry the node holds or
 * receives; it checks each signature itself, so nothing unverified reaches a placement.
 */
export class StorageDirectory {
  readonly #byAuthor = new Map<string, { a: StorageAnnouncement; seq: number }>();
  readonly #now: () => number;
  /** Entries refused (bad signature or malformed). */
  refused = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Considers one log entry; returns true when it changed the directory. */
  add(entry: LogEntry): boolean {
    if (entry.header.type !== STORAGE_SERVER_TYPE) return false;
    const a = readAnnouncement(entry);
    if (!a || !verifyEntry(entry)) {
      this.refused++;
      return false;
    }
    const key = toHex(entry.author);
    const old = this.#byAuthor.get(key);
    if (old && old.seq >= entry.seq) return false;
    this.#byAuthor.set(key, { a, seq: entry.seq });
    return true;
  }

  /** Usable announcements: unexpired, with a quota. */
  announcements(): StorageAnnouncement[] {
    const now = this.#now();
    return [...this.#byAuthor.values()].map((x) => x.a).filter((a) => a.until > now && a.quota > 0);
  }

  /** The newest announcement of `id`, usable or not. */
  get(id: Uint8Array): StorageAnnouncement | undefined {
    return this.#byAuthor.get(toHex(id))?.a;
  }

  /** The servers a client may place shares on. */
  servers(): ServerInfo[] {
    return this.announcements().map((a) => ({ id: a.id, url: a.endpoint, ...(a.provider ? { provider: a.provider } : {}) }));
  }
}
