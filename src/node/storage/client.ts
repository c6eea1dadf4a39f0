/**
 * Storage client: places the n shares of a file on n distinct servers chosen by rendezvous
 * (highest-random-weight) hashing of the storage index, and reads files back from any k
 * verified shares, skipping servers that are gone or that return bad bytes.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { NodeIdentity } from '../identity.js';
import { BadShareError, decodeFile, type EncodedFile, parseReadCap, parseVerifyCap, repairShares, type VerifyCap, verifyCapOf, verifyShare } from './immutable.js';
import { base32nopad } from '@scure/base';
import { StorageConnection } from './server/storage-service.js';
import { toHex } from '../../util/bytes.js';

/** A storage server as the client knows it: its identity key and endpoint. */
export interface ServerInfo {
  readonly id: Uint8Array;
  readonly url: string;
}

/** Servers ranked for a storage index: descending SHA-256(si ‖ server id). */
export function rankServers(si: Uint8Array, servers: readonly ServerInfo[]): ServerInfo[] {
  const score = new Map(servers.map((s) => [s, Buffer.from(sha256(Uint8Array.from([...si, ...s.id])))]));
  return [...servers].sort((a, b) => Buffer.compare(score.get(b) as Buffer, score.get(a) as Buffer));
}

export interface PutResult {
  /** share number → server url that accepted it. */
  readonly placed: Map<number, string>;
  /** Distinct servers holding at least one share (each holds different shares, so this is Tahoe's happiness). */
  readonly happiness: number;
  readonly failures: string[];
}

/** Progress of one operation: `done` of `total` units (shares) of `phase`. */
export type ProgressFn = (phase: 'upload' | 'download' | 'verify' | 'repair', done: number, total: number) => void;

export interface PutOptions {
  /** Servers of happiness: fail unless at least this many distinct servers hold a share (default n). */
  readonly happy?: number;
  readonly onProgress?: ProgressFn;
}

/** Fewer storage servers are known than a placement needs. */
export class TooFewServersError extends Error {
  override readonly name = 'TooFewServersError';
  constructor(readonly known: number, readonly needed: number) {
    super(`storage: ${known} storage server${known === 1 ? '' : 's'} known, need at least ${needed} (servers of happiness)`);
  }
}

/** Placement did not reach the happiness threshold; `failures` say why each share was refused. */
export class UnhappyPlacementError extends Error {
  override readonly name = 'UnhappyPlacementError';
  constructor(readonly happiness: number, readonly needed: number, readonly failures: readonly string[]) {
    super(`storage: placed shares on ${happiness} servers, need ${needed}: ${failures.join('; ')}`);
  }
}

/** What a check found (see {@link StorageClient.check}). */
export interface CheckReport {
  /** Share numbers that verified, ascending. */
  readonly healthy: number[];
  /** Share numbers with no valid copy, ascending. */
  readonly missing: number[];
  readonly corrupt: string[];
  readonly unreachable: string[];
  /** Distinct servers holding a valid share. */
  readonly servers: number;
  /** Every server asked, in rank order: which shares it holds that verify, which fail, whether it answered. */
  readonly perServer: ServerShareHealth[];
}

/** What one server holds of a file (share numbers), as a check found it. */
export interface ServerShareHealth {
  /** The server's identity key (hex), as its signed announcement names it. */
  readonly id: string;
  readonly url: string;
  readonly reachable: boolean;
  /** Share numbers that verified. */
  readonly valid: number[];
  /** Share numbers it listed that failed verification or that it could not return. */
  readonly bad: number[];
  /** Share numbers a repair just placed on it. */
  readonly repaired: number[];
}

/** See the module comment. */
export class StorageClient {
  readonly #identity: NodeIdentity;
  readonly #servers: readonly ServerInfo[];

  constructor(identity: NodeIdentity, servers: readonly ServerInfo[]) {
    this.#identity = identity;
    this.#servers = servers;
  }

  async #connect(s: ServerInfo): Promise<StorageConnection> {
    return StorageConnection.open(s.url, this.#identity, s.id);
  }

  async #putOne(s: ServerInfo, si: string, num: number, share: Uint8Array, leaseSecret: Uint8Array, durationMs: number): Promise<string | null> {
    let conn: StorageConnection | undefined;
    try {
      conn = await this.#connect(s);
      const res = await conn.request({ op: 'put', si, num, leaseSecret: toHex(leaseSecret), durationMs }, share);
      return res.header.ok ? null : `share ${num} on ${s.url}: ${res.header.error ?? res.header.code}`;
    } catch (e) {
      return `share ${num} on ${s.url}: ${(e as Error).message}`;
    } finally {
      conn?.close();
    }
  }

  /**
   * Uploads share r to the r-th ranked server (n distinct servers when at least n are known; with
   * fewer, the shares wrap around the ranking). A share refused by its server goes to the next
   * ranked server that holds nothing of this file yet. Throws {@link TooFewServersError} when fewer
   * than `happy` servers are known and {@link UnhappyPlacementError} unless at least `happy`
   * distinct servers accepted a share (Tahoe's servers-of-happiness; default n).
   */
  async put(file: EncodedFile, leaseSecret: Uint8Array, durationMs: number, options: PutOptions = {}): Promise<PutResult> {
    const n = file.shares.length;
    const happy = options.happy ?? n;
    const si = base32nopad.decode(file.storageIndex.toUpperCase());
    const ranked = rankServers(si, this.#servers);
    if (ranked.length < happy) throw new TooFewServersError(ranked.length, happy);
    const width = Math.min(n, ranked.length);
    const spares = ranked.slice(width);
    const placed = new Map<number, string>();
    const failures: string[] = [];
    let done = 0;
    await Promise.all(
      file.shares.map(async (share, r) => {
        for (let s: ServerInfo | undefined = ranked[r % width]; s; s = spares.shift()) {
          const failure = await this.#putOne(s, file.storageIndex, r, share, leaseSecret, durationMs);
          if (failure === null) {
            placed.set(r, s.url);
            break;
          }
          failures.push(failure);
        }
        options.onProgress?.('upload', ++done, n);
      }),
    );
    const happiness = new Set(placed.values()).size;
    if (happiness < happy) throw new UnhappyPlacementError(happiness, happy, failures);
    return { placed, happiness, failures };
  }

  /**
   * Asks every server (ranked order, in parallel) for its shares of the file and verifies each
   * one with the verify cap before keeping it. With `enough`, a server stops fetching once that
   * many valid shares are in hand (reading needs only k).
   */
  async #survey(cap: VerifyCap, opts: { enough?: number; onShare?: (count: number) => void } = {}): Promise<Survey> {
    const siText = base32nopad.encode(cap.storageIndex).toLowerCase();
    const ranked = rankServers(cap.storageIndex, this.#servers);
    const out: Survey = { ranked, good: new Map(), holders: new Map(), reachable: new Set(), rejected: [], unreachable: [], valid: new Map(), bad: new Map() };
    const mark = (m: Map<ServerInfo, number[]>, s: ServerInfo, r: number): void => {
      m.set(s, [...(m.get(s) ?? []), r]);
    };
    await Promise.all(
      ranked.map(async (s) => {
        let conn: StorageConnection | undefined;
        try {
          conn = await this.#connect(s);
          out.reachable.add(s);
          const list = await conn.request({ op: 'list', si: siText });
          for (const r of list.header.nums ?? []) {
            if (opts.enough !== undefined && out.good.size >= opts.enough) break;
            out.holders.set(s, [...(out.holders.get(s) ?? []), r]);
            const res = await conn.request({ op: 'get', si: siText, num: r });
            if (!res.header.ok) {
              mark(out.bad, s, r);
              out.rejected.push(`${s.url}: listed share ${r} but could not return it`);
              continue;
            }
            try {
              verifyShare(cap, res.body, r);
              mark(out.valid, s, r);
              if (!out.good.has(r)) {
                out.good.set(r, { share: res.body, server: s });
                opts.onShare?.(out.good.size);
              }
            } catch (e) {
              if (!(e instanceof BadShareError)) throw e;
              mark(out.bad, s, r);
              out.rejected.push(`${s.url}: share ${r}: ${e.message}`);
            }
          }
        } catch (e) {
          out.unreachable.push(`${s.url}: ${(e as Error).message}`);
        } finally {
          conn?.close();
        }
      }),
    );
    return out;
  }

  /**
   * Reads a file: asks every server for its shares of the storage index, verifies each share
   * before use, and decodes from the first k valid ones. `rejected` lists servers whose shares
   * failed verification (or that listed a share they could not return).
   */
  async get(readCap: string, onProgress?: ProgressFn): Promise<{ data: Uint8Array; rejected: string[]; unreachable: string[] }> {
    const rc = parseReadCap(readCap);
    const cap = parseVerifyCap(verifyCapOf(readCap));
    const found = await this.#survey(cap, { enough: rc.k, onShare: (c) => onProgress?.('download', Math.min(c, rc.k), rc.k) });
    if (found.good.size < rc.k) {
      throw new NotEnoughSharesError(found.good.size, rc.k, `rejected: ${found.rejected.join('; ') || 'none'}; unreachable: ${found.unreachable.length} of ${found.ranked.length} servers`);
    }
    return { data: decodeFile(readCap, [...found.good.values()].map((g) => g.share)), rejected: found.rejected, unreachable: found.unreachable };
  }

  /** Checks a file with its verify cap: which shares exist and verify, on how many servers. Never sees plaintext. */
  async check(verifyCap: string, onProgress?: ProgressFn): Promise<CheckReport> {
    const cap = parseVerifyCap(verifyCap);
    const found = await this.#survey(cap, { onShare: (c) => onProgress?.('verify', c, cap.n) });
    return report(cap, found);
  }

  /**
   * Checks a file with its verify cap and repairs it: every server is asked for its shares,
   * each share is verified; missing or corrupt share numbers are regenerated from k valid ones
   * and put on the best-ranked reachable servers that hold no share of this file. With `renew`,
   * the lease of `leaseSecret` is extended on every server holding a valid share (servers where
   * this secret has no lease, because someone else placed the share, refuse and are skipped).
   * Never sees plaintext. Returns what was found and where repaired shares went.
   */
  async repair(verifyCap: string, leaseSecret: Uint8Array, durationMs: number, opts: { renew?: boolean; onProgress?: ProgressFn } = {}): Promise<CheckReport & { repaired: Map<number, string>; renewed: number }> {
    const cap = parseVerifyCap(verifyCap);
    const siText = base32nopad.encode(cap.storageIndex).toLowerCase();
    const found = await this.#survey(cap, { onShare: (c) => opts.onProgress?.('verify', c, cap.n) });
    const before = report(cap, found);
    let renewed = 0;
    if (opts.renew) {
      const holders = new Set([...found.good.values()].map((g) => g.server));
      await Promise.all([...holders].map(async (s) => {
        let conn: StorageConnection | undefined;
        try {
          conn = await this.#connect(s);
          if ((await conn.request({ op: 'renew', si: siText, leaseSecret: toHex(leaseSecret), durationMs })).header.ok) renewed++;
        } catch {
          // gone since the survey: the next round finds its shares missing
        } finally {
          conn?.close();
        }
      }));
    }
    const repaired = new Map<number, string>();
    const withRepairs = (): CheckReport => ({
      ...before,
      perServer: before.perServer.map((p) => ({ ...p, repaired: [...repaired].filter(([, url]) => url === p.url).map(([r]) => r) })),
    });
    if (before.missing.length === 0 || found.good.size < cap.k) return { ...withRepairs(), repaired, renewed };
    const fresh = repairShares(verifyCap, [...found.good.values()].map((g) => g.share), before.missing);
    const targets = found.ranked.filter((s) => found.reachable.has(s) && !found.holders.has(s));
    let done = 0;
    for (const r of before.missing) {
      const share = fresh.get(r) as Uint8Array;
      for (let s = targets.shift(); s; s = targets.shift()) {
        if ((await this.#putOne(s, siText, r, share, leaseSecret, durationMs)) === null) {
          repaired.set(r, s.url);
          break;
        }
      }
      opts.onProgress?.('repair', ++done, before.missing.length);
    }
    return { ...withRepairs(), repaired, renewed };
  }
}

interface Survey {
  readonly ranked: ServerInfo[];
  readonly good: Map<number, { share: Uint8Array; server: ServerInfo }>;
  /** Servers that listed shares of the file (valid or not), with the numbers they listed. */
  readonly holders: Map<ServerInfo, number[]>;
  readonly reachable: Set<ServerInfo>;
  readonly rejected: string[];
  readonly unreachable: string[];
  /** Per server: share numbers that verified, and those that did not. */
  readonly valid: Map<ServerInfo, number[]>;
  readonly bad: Map<ServerInfo, number[]>;
}

function report(cap: VerifyCap, found: Survey): CheckReport {
  const healthy = [...found.good.keys()].sort((a, b) => a - b);
  return {
    healthy,
    missing: Array.from({ length: cap.n }, (_, r) => r).filter((r) => !found.good.has(r)),
    corrupt: found.rejected,
    unreachable: found.unreachable,
    servers: new Set([...found.good.values()].map((g) => g.server)).size,
    perServer: found.ranked.map((s) => ({
      id: toHex(s.id), url: s.url, reachable: found.reachable.has(s),
      valid: [...(found.valid.get(s) ?? [])].sort((a, b) => a - b), bad: [...(found.bad.get(s) ?? [])].sort((a, b) => a - b), repaired: [],
    })),
  };
}

/** Fewer than k valid shares could be found. */
export class NotEnoughSharesError extends Error {
  override readonly name = 'NotEnoughSharesError';
  constructor(readonly found: number, readonly needed: number, detail: string) {
    super(`storage: found ${found} valid shares, need ${needed} (${detail})`);
  }
}
