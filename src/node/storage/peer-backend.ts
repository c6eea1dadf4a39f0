/**
 * The `peers` storage backend: files encrypted and erasure-coded here (./immutable.ts), their
 * shares placed by rendezvous hashing on the storage servers this node verified from signed
 * announcements (./announce.ts), over the node's Noise transport (./client.ts).
 *
 * Leases: one lease secret per file, derived from the node identity and the storage index
 * (`identity.derive`), so renewing after a restart needs nothing stored, and no two files (or
 * two nodes) share a secret a server could link.
 */
import type { NodeIdentity } from '../identity.js';
import { DeaddropError } from '../../util/errors.js';
import type { StorageBackend, StorageCheckResult, StorageOpOptions, StoragePutResult } from './backend.js';
import { type FileReader, NotEnoughSharesError, type ProgressFn, type ReadChannel, type ServerInfo, SourceChangedError, StorageClient, type StorageRoute, TooFewServersError, UnhappyPlacementError } from './client.js';
import { parseReadCap, parseVerifyCap, verifyCapOf } from './immutable.js';
import { bytesSource, type FileSource } from './share-upload.js';
import { base32nopad } from '@scure/base';

/**
 * Largest file a put accepts: puts stream (two passes over the source, a few MiB per share in
 * memory), so only capabilities bound it (the size field holds a safe integer). Each server's
 * quota and per-share limit still apply.
 */
export const MAX_FILE_BYTES = Number.MAX_SAFE_INTEGER;

/** Shares needed, servers of happiness, shares total (Tahoe's 3 / 7 / 10). */
export interface ShareParams {
  readonly k: number;
  readonly happy: number;
  readonly n: number;
}

export const DEFAULT_SHARES: ShareParams = { k: 3, happy: 7, n: 10 };

/** Default lease: 31 days (Tahoe's), renewed by the daemon's maintenance long before. */
export const DEFAULT_LEASE_MS = 31 * 24 * 3600_000;

/** Checks k ≤ happy ≤ n ≤ 256; bad values are BAD_INPUT. */
export function checkShareParams(p: ShareParams): ShareParams {
  const ok = [p.k, p.happy, p.n].every((x) => Number.isInteger(x)) && p.k >= 1 && p.k <= p.happy && p.happy <= p.n && p.n <= 256;
  if (!ok) throw DeaddropError.badInput(`shares must satisfy 1 <= needed <= happy <= total <= 256, got ${p.k}/${p.happy}/${p.n}`);
  return p;
}

export interface PeerBackendOptions {
  readonly identity: NodeIdentity;
  /** How to dial a server (the node's route: directly, or through Tor); default directly. */
  readonly route?: StorageRoute;
  /** Reads through another channel (the mixnet, ./mix-client.ts), asked before dialling for reads. */
  readonly reads?: ReadChannel;
  /** Checks and repairs' surveys, lease renewals, puts and repairs' uploads through `reads` too (default false: they dial, see `#client`). */
  readonly surveysThroughReads?: boolean;
  /** The servers to use now (verified announcements, this node's own server among them). */
  readonly servers: () => ServerInfo[];
  readonly shares?: ShareParams;
  readonly leaseMs?: number;
}

/** A read or verify capability, parsed enough to say which; anything else is BAD_INPUT. */
export function classifyCap(cap: string): { kind: 'read' | 'verify'; verifyCap: string; storageIndex: string } {
  try {
    if (cap.startsWith('dd-chk:r:')) {
      parseReadCap(cap);
      const verifyCap = verifyCapOf(cap);
      return { kind: 'read', verifyCap, storageIndex: base32nopad.encode(parseVerifyCap(verifyCap).storageIndex).toLowerCase() };
    }
    if (cap.startsWith('dd-chk:v:')) return { kind: 'verify', verifyCap: cap, storageIndex: base32nopad.encode(parseVerifyCap(cap).storageIndex).toLowerCase() };
  } catch {
    throw DeaddropError.badInput('malformed capability: it does not parse as a dd-chk read (dd-chk:r:…) or verify (dd-chk:v:…) capability');
  }
  throw DeaddropError.badInput('not a capability of this storage: expected dd-chk:r:… (read) or dd-chk:v:… (verify)');
}

/** Maps the client's errors to coded DeaddropErrors with the client's explanation. */
function coded(err: unknown): unknown {
  if (err instanceof TooFewServersError) {
    return new DeaddropError('CONFLICT', `${err.message}: storage servers are those your contacts announce in their signed logs (deaddrop start --storage-server), and this node when it serves`, { known: err.known, needed: err.needed });
  }
  if (err instanceof UnhappyPlacementError) return new DeaddropError('REJECTED', err.message, { happiness: err.happiness, needed: err.needed });
  if (err instanceof NotEnoughSharesError) return DeaddropError.notFound(err.message);
  if (err instanceof SourceChangedError) return new DeaddropError('CONFLICT', err.message);
  return err;
}

/** See the module comment. */
export class PeerStorageBackend implements StorageBackend {
  readonly kind = 'peers' as const;
  readonly #identity: NodeIdentity;
  readonly #route: StorageRoute | undefined;
  readonly #reads: ReadChannel | undefined;
  readonly #surveysThroughReads: boolean;
  readonly #servers: () => ServerInfo[];
  readonly #shares: ShareParams;
  readonly #leaseMs: number;

  constructor(opts: PeerBackendOptions) {
    this.#identity = opts.identity;
    this.#route = opts.route;
    this.#reads = opts.reads;
    this.#surveysThroughReads = opts.surveysThroughReads === true;
    this.#servers = opts.servers;
    this.#shares = checkShareParams(opts.shares ?? DEFAULT_SHARES);
    this.#leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  }

  get shares(): ShareParams {
    return this.#shares;
  }

  /** The lease secret of this node for a storage index (base32). */
  leaseSecret(storageIndex: string): Uint8Array {
    return this.#identity.derive('storage/lease', new TextEncoder().encode(storageIndex));
  }

  /**
   * A client over the verified servers, plus `extra` ones (hints from whoever handed over a cap;
   * reads only). `reads` false: every request dials (checks and repairs: a survey reads every share
   * whole, minutes per 100 MB through the mixnet, of files whose servers saw this node at the put).
   */
  #client(extra: readonly ServerInfo[] = [], reads = true): StorageClient {
    const known = this.#servers();
    const ids = new Set(known.map((s) => base32nopad.encode(s.id)));
    return new StorageClient(this.#identity, [...known, ...extra.filter((s) => !ids.has(base32nopad.encode(s.id)))], {
      ...(this.#route ? { route: this.#route } : {}),
      ...(this.#reads && reads ? { reads: this.#reads, renewsThroughReads: this.#surveysThroughReads, putsThroughReads: this.#surveysThroughReads } : {}),
    });
  }

  /**
   * Encrypts, encodes and places a file, streamed from `source` (bytes, or a file on disk read
   * twice by ranges: ./share-upload.ts) in bounded memory.
   */
  async put(source: Uint8Array | FileSource, options: StorageOpOptions & { shares?: ShareParams } = {}): Promise<StoragePutResult & { verifyCap: string; storageIndex: string; happiness: number; holders: ServerInfo[] }> {
    const { k, happy, n } = checkShareParams(options.shares ?? this.#shares);
    const src = source instanceof Uint8Array ? bytesSource(source) : source;
    const servers = this.#servers().length;
    if (servers < happy) throw coded(new TooFewServersError(servers, happy));
    try {
      const known = this.#servers();
      // Puts dial, unless everything goes through the mixnet (`--storage-reads mixnet`, storage.md §10).
      const client = new StorageClient(this.#identity, known, {
        ...(this.#route ? { route: this.#route } : {}),
        ...(this.#reads && this.#surveysThroughReads ? { reads: this.#reads, putsThroughReads: true } : {}),
      });
      const placed = await client.putStream(src, (si) => this.leaseSecret(si), this.#leaseMs, { k, n, happy, onProgress: progress(options) });
      const urls = new Set(placed.placed.values());
      return {
        readCap: placed.readCap, verifyCap: placed.verifyCap, storageIndex: placed.storageIndex, size: src.size, happiness: placed.happiness,
        holders: known.filter((s) => urls.has(s.url)),
      };
    } catch (err) {
      throw coded(err);
    }
  }

  /** `servers`: servers to ask besides the verified ones (hints that came with the cap; shares are verified all the same). */
  async get(readCap: string, options: StorageOpOptions & { servers?: readonly ServerInfo[] } = {}): Promise<Uint8Array> {
    if (classifyCap(readCap).kind !== 'read') throw DeaddropError.badInput('reading a file needs its read capability (dd-chk:r:…); a verify capability only checks and repairs');
    try {
      // The streamed path reads only k shares' blocks (the survey reads heads and tails only).
      const reader = await this.#client(options.servers).openRead(readCap);
      const out = new Uint8Array(reader.size);
      let at = 0;
      await reader.pipe((chunk) => {
        out.set(chunk, at);
        at += chunk.length;
      }, progress(options));
      return out;
    } catch (err) {
      throw coded(err);
    }
  }

  /** Opens a file for a streamed read in bounded memory (StorageClient.openRead); errors as `get`'s. */
  async openRead(readCap: string, options: { servers?: readonly ServerInfo[] } = {}): Promise<FileReader> {
    if (classifyCap(readCap).kind !== 'read') throw DeaddropError.badInput('reading a file needs its read capability (dd-chk:r:…); a verify capability only checks and repairs');
    try {
      return await this.#client(options.servers).openRead(readCap);
    } catch (err) {
      throw coded(err);
    }
  }

  async check(cap: string, options: { readonly repair?: boolean; readonly renew?: boolean } & StorageOpOptions = {}): Promise<StorageCheckResult> {
    const { verifyCap, storageIndex } = classifyCap(cap);
    const c = parseVerifyCap(verifyCap);
    const client = this.#client([], this.#surveysThroughReads);
    if (!options.repair && !options.renew) {
      const r = await client.check(verifyCap, progress(options));
      return { healthy: r.missing.length === 0, sharesFound: r.healthy.length, sharesNeeded: c.k, sharesTotal: c.n, repaired: 0, problems: problems(r), servers: r.perServer };
    }
    const r = await client.repair(verifyCap, this.leaseSecret(storageIndex), this.#leaseMs, { renew: options.renew === true, onProgress: progress(options) });
    const unrepairable = r.healthy.length < c.k ? [`only ${r.healthy.length} valid shares, ${c.k} needed: cannot regenerate the others`] : [];
    const unplaced = r.missing.filter((m) => !r.repaired.has(m));
    const stillMissing = r.healthy.length >= c.k && unplaced.length > 0 ? [`no fresh reachable server for share${unplaced.length > 1 ? 's' : ''} ${unplaced.join(', ')}`] : [];
    return {
      healthy: unplaced.length === 0, sharesFound: r.healthy.length + r.repaired.size, sharesNeeded: c.k, sharesTotal: c.n, repaired: r.repaired.size,
      problems: [...problems(r), ...unrepairable, ...stillMissing], servers: r.perServer,
    };
  }
}

function progress(options: StorageOpOptions): ProgressFn | undefined {
  const on = options.onProgress;
  return on ? (phase, done, total) => on({ phase, done, total }) : undefined;
}

function problems(r: { missing: number[]; corrupt: string[]; unreachable: string[] }): string[] {
  return [
    ...(r.missing.length ? [`missing or corrupt: share${r.missing.length > 1 ? 's' : ''} ${r.missing.join(', ')}`] : []),
    ...r.corrupt,
    ...r.unreachable.map((u) => `unreachable: ${u}`),
  ];
}
