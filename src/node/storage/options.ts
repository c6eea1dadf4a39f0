/**
 * Storage options of `deaddrop start`:
 * - `--storage-server` serves shares for others (and this node) with `--storage-quota <size>`
 *   (default 1 GiB; `500M`, `20G`, `1.5GiB` or bytes), announced in the node's signed log;
 *   DEADDROP_STORAGE_HOST / DEADDROP_STORAGE_PORT / DEADDROP_STORAGE_ADVERTISE place its listener
 *   (the host defaults to the peer node's, DEADDROP_NODE_HOST: {@link serverOnNodeHost}).
 * - `--storage tahoe:<url>` keeps this node's files on a Tahoe-LAFS grid (the web API of a Tahoe
 *   client) instead of on peers; `--storage peers` is the default.
 * - `--storage-check-every <duration>` (default 1d; `90s`, `30m`, `6h`, `2d`): how often the daemon
 *   renews the leases of the files it keeps and checks and repairs them.
 * - DEADDROP_STORAGE_SHARES=`k/happy/n` (default 3/7/10): shares needed, servers of happiness, total.
 * - DEADDROP_STORAGE_LEASE_DAYS (default 31): lease length asked of servers.
 * - `--storage-reads auto|mixnet|direct` (or DEADDROP_STORAGE_READS; default auto): how reads reach
 *   storage servers (docs/protocol/storage.md §10). `auto`: through the mixnet when the node has no
 *   Tor, its provider link is up and the server announced a provider, else the node's route;
 *   `mixnet`: everything only through the mixnet: reads, checks and repairs' surveys, lease
 *   renewals, puts and repairs' uploads (a server it cannot reach so is unreachable, never dialled);
 *   `direct`: the node's route always (faster, and the server sees the reader's IP without Tor).
 */
import { DeaddropError } from '../../util/errors.js';
import { checkShareParams, type ShareParams } from './peer-backend.js';

export type StorageBackendChoice = { readonly kind: 'peers' } | { readonly kind: 'tahoe'; readonly url: string };

/** What the node feature passes to the storage service. */
export interface StorageOptions {
  /** Serve shares (absent: this node only stores elsewhere). */
  readonly server?: { readonly quotaBytes: number; readonly host?: string; readonly port?: number; readonly advertise?: string };
  readonly backend?: StorageBackendChoice;
  readonly shares?: ShareParams;
  readonly leaseMs?: number;
  /** Renew, check and repair the kept files this often (default 1 day). */
  readonly checkIntervalMs?: number;
  /** Validity of a server announcement; it is renewed at half-life (default 1 day). */
  readonly announceTtlMs?: number;
  /** Collect expired shares this often (default 1 hour). */
  readonly gcIntervalMs?: number;
  /** How reads reach servers (see the module comment; default auto). */
  readonly reads?: StorageReads;
}

export type StorageReads = 'auto' | 'mixnet' | 'direct';

/** `auto`, `mixnet` or `direct`; BAD_INPUT otherwise. */
export function parseReads(value: string, what: string): StorageReads {
  const v = value.trim();
  if (v === 'auto' || v === 'mixnet' || v === 'direct') return v;
  throw DeaddropError.badInput(`${what} must be auto, mixnet or direct, got ${JSON.stringify(value)}`);
}

export const DEFAULT_QUOTA_BYTES = 1024 ** 3;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3, t: 1e12, tb: 1e12, tib: 1024 ** 4 };

/** A size like `500M`, `20G`, `1.5GiB` or `1048576` in bytes; BAD_INPUT otherwise. */
export function parseSize(value: string, what: string): number {
  const m = /^\s*(\d{1,15}(?:\.\d{1,6})?)\s*([a-z]{0,3})\s*$/i.exec(value);
  const unit = m ? UNITS[(m[2] as string).toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw DeaddropError.badInput(`${what} must be a size such as 500M, 20G or 1.5GiB, got ${JSON.stringify(value)}`);
  return bytes;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** A duration like `90s`, `30m`, `6h`, `2d` (or milliseconds) in ms; BAD_INPUT otherwise. */
export function parseDuration(value: string, what: string, minMs: number): number {
  const m = /^\s*(\d{1,9})\s*(ms|s|m|h|d)?\s*$/.exec(value);
  const ms = m ? Number(m[1]) * (DURATION_UNITS[m[2] ?? 'ms'] as number) : NaN;
  if (!Number.isSafeInteger(ms) || ms < minMs) throw DeaddropError.badInput(`${what} must be a duration of at least ${minMs} ms such as 90s, 30m, 6h or 2d, got ${JSON.stringify(value)}`);
  return ms;
}

function port(value: string, what: string): number {
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value.trim()) || n > 65_535) throw DeaddropError.badInput(`${what} must be a port number 0..65535`);
  return n;
}

/**
 * The storage options with the server's listener on the peer node's host when none is given. A
 * node that listens on a reachable address (DEADDROP_NODE_HOST) serves shares there too: the
 * endpoint it announces, and that sellers' offers name as hints, is then one that its contacts
 * and buyers on other machines can dial, not a loopback address only the same machine reaches.
 */
export function serverOnNodeHost(o: StorageOptions, nodeHost: string | undefined): StorageOptions {
  if (!o.server || o.server.host !== undefined || nodeHost === undefined) return o;
  return { ...o, server: { ...o.server, host: nodeHost } };
}

/** `--storage peers` or `--storage tahoe:<http(s) url>`. */
export function parseBackendChoice(value: string): StorageBackendChoice {
  if (value === 'peers') return { kind: 'peers' };
  if (value.startsWith('tahoe:')) {
    const url = value.slice('tahoe:'.length);
    try {
      const u = new URL(url);
      if (u.protocol === 'http:' || u.protocol === 'https:') return { kind: 'tahoe', url: url.replace(/\/+$/, '') };
    } catch {
      // falls through to the error below
    }
    throw DeaddropError.badInput('--storage tahoe:<url> needs the http(s) URL of a Tahoe-LAFS client\'s web API, e.g. tahoe:http://127.0.0.1:3456');
  }
  throw DeaddropError.badInput(`--storage must be "peers" or "tahoe:<url>", got ${JSON.stringify(value)}`);
}

/** `k/happy/n`, e.g. `3/7/10`. */
export function parseShares(value: string, what: string): ShareParams {
  const m = /^(\d{1,3})\/(\d{1,3})\/(\d{1,3})$/.exec(value.trim());
  if (!m) throw DeaddropError.badInput(`${what} must be needed/happy/total, e.g. 3/7/10`);
  return checkShareParams({ k: Number(m[1]), happy: Number(m[2]), n: Number(m[3]) });
}

/** Storage options from the start flags and the environment; bad values give BAD_INPUT. */
export function storageOptions(
  flags: { storageServer?: boolean; storageQuota?: string; storage?: string; storageCheckEvery?: string; storageReads?: string },
  env: NodeJS.ProcessEnv = process.env,
): StorageOptions {
  const o: { -readonly [K in keyof StorageOptions]: StorageOptions[K] } = {};
  if (flags.storageQuota !== undefined && !flags.storageServer) throw DeaddropError.badInput('--storage-quota goes with --storage-server');
  if (flags.storageServer) {
    const advertise = env.DEADDROP_STORAGE_ADVERTISE?.trim();
    if (advertise && !/^wss?:\/\/[^\s/]+:\d+$/.test(advertise)) throw DeaddropError.badInput('DEADDROP_STORAGE_ADVERTISE must be ws://host:port');
    o.server = {
      quotaBytes: flags.storageQuota === undefined ? DEFAULT_QUOTA_BYTES : parseSize(flags.storageQuota, '--storage-quota'),
      ...(env.DEADDROP_STORAGE_HOST ? { host: env.DEADDROP_STORAGE_HOST } : {}),
      ...(env.DEADDROP_STORAGE_PORT ? { port: port(env.DEADDROP_STORAGE_PORT, 'DEADDROP_STORAGE_PORT') } : {}),
      ...(advertise ? { advertise } : {}),
    };
  }
  if (flags.storage !== undefined) o.backend = parseBackendChoice(flags.storage);
  if (flags.storageCheckEvery !== undefined) o.checkIntervalMs = parseDuration(flags.storageCheckEvery, '--storage-check-every', 1000);
  const reads = flags.storageReads ?? env.DEADDROP_STORAGE_READS;
  if (reads !== undefined && reads !== '') o.reads = parseReads(reads, flags.storageReads !== undefined ? '--storage-reads' : 'DEADDROP_STORAGE_READS');
  if (env.DEADDROP_STORAGE_SHARES) o.shares = parseShares(env.DEADDROP_STORAGE_SHARES, 'DEADDROP_STORAGE_SHARES');
  if (env.DEADDROP_STORAGE_LEASE_DAYS) {
    const d = Number(env.DEADDROP_STORAGE_LEASE_DAYS);
    if (!/^\d{1,4}$/.test(env.DEADDROP_STORAGE_LEASE_DAYS) || d < 1) throw DeaddropError.badInput('DEADDROP_STORAGE_LEASE_DAYS must be a whole number of days, at least 1');
    o.leaseMs = d * 86_400_000;
  }
  return o;
}
