/**
 * Storage client: places the n shares of a file on n distinct servers chosen by rendezvous
 * (highest-random-weight) hashing of the storage index, and reads files back from any k
 * verified shares, skipping servers that are gone or that return bad bytes.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from 'node:crypto';
import { NodeIdentity } from '../identity.js';
import type { DialRoute } from '../node.js';
import { BadShareError, checkBlock, checkCrypttextLeaves, decodeFile, decodeSegment, type EncodedFile, expectedShareLength, parseReadCap, parseVerifyCap, repairShares, SHARE_HEAD_BYTES, type ShareLayout, shareLayout, type VerifyCap, verifyCapOf, verifyShare, verifyShareTail } from './immutable.js';
import { base32nopad } from '@scure/base';
import type { ServerHealth } from './backend.js';
import { type StorageChannel, StorageConnection } from './server/storage-service.js';
import { toHex } from '../../util/bytes.js';

/** A storage server as the client knows it: its identity key and endpoint. */
export interface ServerInfo {
  readonly id: Uint8Array;
  readonly url: string;
  /** The mixnet provider keeping the server's mailbox, when it announced one (reads through the mixnet). */
  readonly provider?: Uint8Array;
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
  readonly perServer: ServerHealth[];
}

/**
 * How to reach a storage server, asked before every dial (the node's own route: directly, or
 * through Tor's SOCKS proxy with the server's key as the isolation group), or null: not dialable.
 */
export type StorageRoute = (url: string, server: Uint8Array) => DialRoute | null;

/**
 * Another way to a server for reads (list and ranged get), asked before dialling: the mixnet
 * (./mix-client.ts). A channel to use; null to dial as usual; throws when the server must not
 * be dialled at all (reads through the mixnet only, and this server cannot be reached so).
 */
export type ReadChannel = (server: ServerInfo, reader: NodeIdentity) => StorageChannel | null;

/** See the module comment. */
export class StorageClient {
  readonly #identity: NodeIdentity;
  readonly #servers: readonly ServerInfo[];
  readonly #route: StorageRoute | undefined;
  readonly #reads: ReadChannel | undefined;
  readonly #renewsThroughReads: boolean;
  #readerIdentity: NodeIdentity | undefined;

  /** `renewsThroughReads`: lease renewals also go through `reads` (under the owner's key, which the server checks). */
  constructor(identity: NodeIdentity, servers: readonly ServerInfo[], opts: { route?: StorageRoute; reads?: ReadChannel; renewsThroughReads?: boolean } = {}) {
    this.#identity = identity;
    this.#servers = servers;
    this.#route = opts.route;
    this.#reads = opts.reads;
    this.#renewsThroughReads = opts.renewsThroughReads === true;
  }

  /**
   * `owner`: the node's identity, which puts and renews need (servers store for their contacts).
   * `reader`: a fresh identity for this client's reads only, so that a server (maybe a stranger's,
   * named in an offer) cannot link the files one node reads to each other or to the node.
   */
  async #connect(s: ServerInfo, as: 'owner' | 'reader' | 'renewer' = 'owner'): Promise<StorageChannel> {
    const identity = as === 'reader' ? (this.#readerIdentity ??= NodeIdentity.fromSeed(randomBytes(32))) : this.#identity;
    if ((as === 'reader' || (as === 'renewer' && this.#renewsThroughReads)) && this.#reads) {
      const ch = this.#reads(s, identity);
      if (ch) return ch;
    }
    const route = this.#route ? this.#route(s.url, s.id) : {};
    if (route === null) throw new Error('no route to this server (an onion address without Tor?)');
    return StorageConnection.open(s.url, identity, s.id, route.agent);
  }

  async #putOne(s: ServerInfo, si: string, num: number, share: Uint8Array, leaseSecret: Uint8Array, durationMs: number): Promise<string | null> {
    let conn: StorageChannel | undefined;
    try {
      conn = await this.#connect(s);
      const base = { op: 'put', si, num, leaseSecret: toHex(leaseSecret), durationMs } as const;
      if (share.length <= PART_BYTES) {
        const res = await conn.request(base, share);
        return res.header.ok ? null : `share ${num} on ${s.url}: ${res.header.error ?? res.header.code}`;
      }
      // Larger than a frame: in parts, in order, one in flight (bounded memory on both sides).
      for (let offset = 0; offset < share.length; offset += PART_BYTES) {
        const res = await conn.request({ ...base, offset, total: share.length }, share.subarray(offset, offset + PART_BYTES));
        if (!res.header.ok) return `share ${num} on ${s.url}: ${res.header.error ?? res.header.code}`;
      }
      return null;
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
        let conn: StorageChannel | undefined;
        try {
          conn = await this.#connect(s, 'reader');
          out.reachable.add(s);
          const list = await conn.request({ op: 'list', si: siText });
          for (const r of list.header.nums ?? []) {
            if (opts.enough !== undefined && out.good.size >= opts.enough) break;
            out.holders.set(s, [...(out.holders.get(s) ?? []), r]);
            try {
              const share = await fetchShare(conn, cap, siText, r);
              if (!share) {
                mark(out.bad, s, r);
                out.rejected.push(`${s.url}: listed share ${r} but could not return it`);
                continue;
              }
              verifyShare(cap, share, r);
              mark(out.valid, s, r);
              if (!out.good.has(r)) {
                out.good.set(r, { share, server: s });
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

  /**
   * Opens a file for reading segment by segment, in bounded memory (a few MiB per share read,
   * whatever the file's size). Asks every server for its shares, reads of each share only its
   * head and its hash-tree tail and checks them against the cap; fewer than k valid shares is
   * {@link NotEnoughSharesError} (before any byte is produced). {@link FileReader.pipe} then
   * fetches k shares' blocks in ranges, checks every block before use, and hands the plaintext
   * over in order; a share that fails on the way is replaced by another.
   */
  async openRead(readCap: string): Promise<FileReader> {
    const rc = parseReadCap(readCap);
    const cap = parseVerifyCap(verifyCapOf(readCap));
    const siText = base32nopad.encode(cap.storageIndex).toLowerCase();
    const ranked = rankServers(cap.storageIndex, this.#servers);
    const candidates: Candidate[] = [];
    const rejected: string[] = [];
    const unreachable: string[] = [];
    const conns: StorageChannel[] = [];
    await Promise.all(ranked.map(async (s, rank) => {
      let conn: StorageChannel;
      try {
        conn = await this.#connect(s, 'reader');
        conns.push(conn);
      } catch (e) {
        unreachable.push(`${s.url}: ${(e as Error).message}`);
        return;
      }
      try {
        const list = await conn.request({ op: 'list', si: siText });
        for (const num of list.header.nums ?? []) {
          try {
            const head = await conn.request({ op: 'get', si: siText, num, offset: 0, length: SHARE_HEAD_BYTES });
            if (!head.header.ok) {
              rejected.push(`${s.url}: listed share ${num} but could not return it`);
              continue;
            }
            const layout = shareLayout(cap, head.body);
            if (head.header.size !== layout.length) throw new BadShareError(`share ${num} announced as ${String(head.header.size)} bytes, expected ${layout.length}`);
            const tailAt = layout.blockAt[layout.count] as number;
            const tail = await readRange(conn, siText, num, tailAt, layout.length - tailAt);
            if (!tail) {
              rejected.push(`${s.url}: listed share ${num} but could not return it`);
              continue;
            }
            candidates.push({ server: s, rank, conn, num, layout, leaves: verifyShareTail(layout, num, tail) });
          } catch (e) {
            if (!(e instanceof BadShareError)) throw e;
            rejected.push(`${s.url}: share ${num}: ${e.message}`);
          }
        }
      } catch (e) {
        unreachable.push(`${s.url}: ${(e as Error).message}`);
      }
    }));
    candidates.sort((a, b) => a.rank - b.rank || a.num - b.num);
    // Servers holding nothing usable are done with; the candidates' connections stay open for the read.
    const used = new Set(candidates.map((c) => c.conn));
    for (const c of conns) if (!used.has(c)) c.close();
    const closeAll = (): void => used.forEach((c) => c.close());
    if (new Set(candidates.map((c) => c.num)).size < rc.k) {
      closeAll();
      throw new NotEnoughSharesError(new Set(candidates.map((c) => c.num)).size, rc.k, `rejected: ${rejected.join('; ') || 'none'}; unreachable: ${unreachable.length} of ${ranked.length} servers`);
    }
    return new FileReader(rc.key, siText, candidates, rejected, unreachable, closeAll);
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
        let conn: StorageChannel | undefined;
        try {
          conn = await this.#connect(s, 'renewer');
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

/** Bytes of a share per storage frame when it travels in parts (well under the 4 MiB frame). */
export const PART_BYTES = 2 * 1024 * 1024;

/**
 * Reads share `num` in ranges of {@link PART_BYTES}: the first range carries the UEB, which
 * fixes (through the cap) how long the share must be, so a server announcing another size is
 * refused before anything more is read. Null when the server does not return the share.
 */
async function fetchShare(conn: StorageChannel, cap: VerifyCap, si: string, num: number): Promise<Uint8Array | null> {
  const first = await conn.request({ op: 'get', si, num, offset: 0, length: PART_BYTES });
  if (!first.header.ok) return null;
  if (first.body.length < SHARE_HEAD_BYTES) throw new BadShareError(`share ${num} is too short`);
  const length = expectedShareLength(cap, first.body);
  if (first.header.size !== length) throw new BadShareError(`share ${num} announced as ${String(first.header.size)} bytes, expected ${length}`);
  if (first.body.length > length) throw new BadShareError(`share ${num} is longer than ${length} bytes`);
  if (first.body.length === length) return first.body;
  const share = new Uint8Array(length);
  share.set(first.body);
  for (let at = first.body.length; at < length;) {
    const res = await conn.request({ op: 'get', si, num, offset: at, length: Math.min(PART_BYTES, length - at) });
    if (!res.header.ok) return null;
    if (res.body.length === 0 || at + res.body.length > length) throw new BadShareError(`share ${num}: bad range at ${at}`);
    share.set(res.body, at);
    at += res.body.length;
  }
  return share;
}

/** Reads `length` bytes at `offset` of a share in ranges of at most {@link PART_BYTES}; null when the server does not return them. */
async function readRange(conn: StorageChannel, si: string, num: number, offset: number, length: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(length);
  for (let at = 0; at < length;) {
    const res = await conn.request({ op: 'get', si, num, offset: offset + at, length: Math.min(PART_BYTES, length - at) });
    if (!res.header.ok) return null;
    if (res.body.length === 0 || at + res.body.length > length) throw new BadShareError(`share ${num}: bad range at ${offset + at}`);
    out.set(res.body, at);
    at += res.body.length;
  }
  return out;
}

/** A share whose head and hash-tree tail verified, on an open connection. */
interface Candidate {
  readonly server: ServerInfo;
  readonly rank: number;
  readonly conn: StorageChannel;
  readonly num: number;
  readonly layout: ShareLayout;
  readonly leaves: Uint8Array[];
}

/** A file opened by {@link StorageClient.openRead}. */
export class FileReader {
  readonly #key: Uint8Array;
  readonly #si: string;
  readonly #candidates: Candidate[];
  readonly #close: () => void;
  /** Servers whose shares failed verification (or vanished), so far. */
  readonly rejected: string[];
  readonly unreachable: string[];

  constructor(key: Uint8Array, si: string, candidates: Candidate[], rejected: string[], unreachable: string[], close: () => void) {
    this.#key = key;
    this.#si = si;
    this.#candidates = candidates;
    this.rejected = rejected;
    this.unreachable = unreachable;
    this.#close = close;
  }

  /** The file's size in bytes (from the verified UEB). */
  get size(): number {
    return (this.#candidates[0] as Candidate).layout.params.size;
  }

  /** Closes the connections (also done by `pipe` when it ends). */
  close(): void {
    this.#close();
  }

  /**
   * Call once. Fetches, verifies, decodes and decrypts the file, handing each run of plaintext to `write`
   * in order (awaited: a slow sink slows the fetch). Throws {@link NotEnoughSharesError} when too
   * many shares fail on the way, and BadShareError if the whole does not match the ciphertext
   * tree (then what was written must be discarded; it cannot happen unless k honest-looking
   * shares agree on another file, as every block is checked first).
   */
  async pipe(write: (chunk: Uint8Array) => Promise<void> | void, onProgress?: ProgressFn): Promise<void> {
    try {
      const first = this.#candidates[0] as Candidate;
      const { params, count } = first.layout;
      const pool = [...this.#candidates];
      const chosen: Candidate[] = [];
      const pick = (): void => {
        while (chosen.length < params.k) {
          const next = pool.findIndex((c) => !chosen.some((x) => x.num === c.num));
          if (next < 0) throw new NotEnoughSharesError(new Set(chosen.map((c) => c.num)).size, params.k, `rejected: ${this.rejected.join('; ')}`);
          chosen.push(...pool.splice(next, 1));
        }
      };
      // Segments per round: as many as fit one part of a share (all segments but the last have one block size).
      const perRound = Math.max(1, Math.floor(PART_BYTES / Math.max(1, (first.layout.blockAt[1] as number) - (first.layout.blockAt[0] as number))));
      const leaves: Uint8Array[] = [];
      for (let s0 = 0; s0 < count; s0 += perRound) {
        const s1 = Math.min(count, s0 + perRound);
        let got: Map<Candidate, Uint8Array> | undefined;
        while (!got) {
          pick();
          const round = await Promise.all(chosen.map(async (c) => {
            const at = c.layout.blockAt[s0] as number;
            try {
              const bytes = await readRange(c.conn, this.#si, c.num, at, (c.layout.blockAt[s1] as number) - at);
              if (!bytes) throw new BadShareError(`share ${c.num} vanished`);
              for (let s = s0; s < s1; s++) checkBlock(c.leaves, s, bytes.subarray((c.layout.blockAt[s] as number) - at, (c.layout.blockAt[s + 1] as number) - at), c.num);
              return [c, bytes] as const;
            } catch (e) {
              this.rejected.push(`${c.server.url}: share ${c.num}: ${(e as Error).message}`);
              chosen.splice(chosen.indexOf(c), 1);
              return null;
            }
          }));
          if (round.every((r) => r !== null)) got = new Map(round);
        }
        const ranges = got;
        for (let s = s0; s < s1; s++) {
          const blocks = chosen.map((c) => {
            const at = c.layout.blockAt[s0] as number;
            return { num: c.num, data: (ranges.get(c) as Uint8Array).subarray((c.layout.blockAt[s] as number) - at, (c.layout.blockAt[s + 1] as number) - at) };
          });
          const seg = decodeSegment(this.#key, params, s, blocks);
          leaves.push(seg.leaf);
          if (seg.plaintext.length > 0) await write(seg.plaintext);
        }
        onProgress?.('download', s1, count);
      }
      checkCrypttextLeaves(params, leaves);
    } finally {
      this.#close();
    }
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
