/**
 * Storage client: places the n shares of a file on n distinct servers chosen by rendezvous
 * (highest-random-weight) hashing of the storage index, and reads files back from any k
 * verified shares, skipping servers that are gone or that return bad bytes.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from 'node:crypto';
import { NodeIdentity } from '../identity.js';
import type { DialRoute } from '../node.js';
import {
  BadShareError, capsOf, checkBlock, checkCrypttextLeaves, checkEncodeParams, decodeFile, decodeSegment, DEFAULT_SEGMENT_SIZE, type EncodedFile, encodeSegmentBlocks, encryptSegment,
  expectedShareLength, FileHasher, newFileKey, parseReadCap, parseVerifyCap, reencodeSegment, segmentRange, segmentsOf, SHARE_HEAD_BYTES, shareHead, type ShareLayout, shareLayout,
  storageIndexOf, type VerifyCap, verifyCapOf, verifyShare, verifyShareTail,
} from './immutable.js';
import { taggedHash } from './hash-tree.js';
import { ReedSolomon } from './rs/codec.js';
import { type FileSource, PART_BYTES, ShareUpload } from './share-upload.js';
import { base32nopad } from '@scure/base';
import type { ServerHealth } from './backend.js';
import { type StorageChannel, StorageConnection } from './server/storage-service.js';
import { equalBytes, toHex } from '../../util/bytes.js';

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

/** Progress of one operation: `done` of `total` units (shares or segments) of `phase`. */
export type ProgressFn = (phase: 'encode' | 'upload' | 'download' | 'verify' | 'repair', done: number, total: number) => void;

export interface PutOptions {
  /** Servers of happiness: fail unless at least this many distinct servers hold a share (default n). */
  readonly happy?: number;
  readonly onProgress?: ProgressFn;
}

export interface StreamPutOptions {
  readonly k: number;
  readonly n: number;
  /** Servers of happiness (default n). */
  readonly happy?: number;
  readonly segmentSize?: number;
  /** The file key; random unless given (fixed keys are for tests only). */
  readonly key?: Uint8Array;
  readonly onProgress?: ProgressFn;
}

export interface StreamPutResult extends PutResult {
  readonly readCap: string;
  readonly verifyCap: string;
  readonly storageIndex: string;
}

/** The placement of finished uploads, or {@link UnhappyPlacementError} below `happy` distinct servers. */
function placedOrThrow(uploads: readonly ShareUpload[], happy: number): PutResult {
  const placed = new Map(uploads.filter((u) => u.complete).map((u) => [u.num, (u.server as ServerInfo).url]));
  const failures = uploads.flatMap((u) => u.failures);
  const happiness = new Set(placed.values()).size;
  if (happiness < happy) throw new UnhappyPlacementError(happiness, happy, failures);
  return { placed, happiness, failures };
}

/** The source of a streamed put read differently the second time (the file changed meanwhile). */
export class SourceChangedError extends Error {
  override readonly name = 'SourceChangedError';
  constructor() {
    super('storage: the file changed while it was being put; nothing was stored (put it again)');
  }
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
  readonly #putsThroughReads: boolean;
  #readerIdentity: NodeIdentity | undefined;

  /**
   * `renewsThroughReads`: lease renewals also go through `reads` (under the owner's key, which the
   * server checks); `putsThroughReads`: puts and repairs' uploads too (storage.md §10).
   */
  constructor(identity: NodeIdentity, servers: readonly ServerInfo[], opts: { route?: StorageRoute; reads?: ReadChannel; renewsThroughReads?: boolean; putsThroughReads?: boolean } = {}) {
    this.#identity = identity;
    this.#servers = servers;
    this.#route = opts.route;
    this.#reads = opts.reads;
    this.#renewsThroughReads = opts.renewsThroughReads === true;
    this.#putsThroughReads = opts.putsThroughReads === true;
  }

  /**
   * `owner`: the node's identity, which puts and renews need (servers store for their contacts).
   * `reader`: a fresh identity for this client's reads only, so that a server (maybe a stranger's,
   * named in an offer) cannot link the files one node reads to each other or to the node.
   */
  async #connect(s: ServerInfo, as: 'owner' | 'reader' | 'renewer' = 'owner'): Promise<StorageChannel> {
    const identity = as === 'reader' ? (this.#readerIdentity ??= NodeIdentity.fromSeed(randomBytes(32))) : this.#identity;
    const through = as === 'reader' || (as === 'renewer' && this.#renewsThroughReads) || (as === 'owner' && this.#putsThroughReads);
    if (through && this.#reads) {
      const ch = this.#reads(s, identity);
      if (ch) return ch;
    }
    return this.#dial(s, identity);
  }

  /** A Noise connection to the server. */
  async #dial(s: ServerInfo, identity: NodeIdentity = this.#identity): Promise<StorageConnection> {
    const route = this.#route ? this.#route(s.url, s.id) : {};
    if (route === null) throw new Error('no route to this server (an onion address without Tor?)');
    return StorageConnection.open(s.url, identity, s.id, route.agent);
  }

  /** A share upload to `server` (then to `spare()`s if its first part is refused). */
  #upload(si: string, num: number, total: number, server: ServerInfo, spare: () => ServerInfo | undefined, leaseSecret: Uint8Array, durationMs: number): ShareUpload {
    return new ShareUpload({ connect: (s) => this.#connect(s, 'owner'), server, spare, si, num, total, leaseSecret, durationMs });
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
    const { ranked, width, spares } = this.#placement(base32nopad.decode(file.storageIndex.toUpperCase()), options.happy ?? n, n);
    let done = 0;
    const uploads = await Promise.all(file.shares.map(async (share, r) => {
      const u = this.#upload(file.storageIndex, r, share.length, ranked[r % width] as ServerInfo, () => spares.shift(), leaseSecret, durationMs);
      await u.write(share);
      await u.end();
      options.onProgress?.('upload', ++done, n);
      return u;
    }));
    return placedOrThrow(uploads, options.happy ?? n);
  }

  #placement(si: Uint8Array, happy: number, n: number): { ranked: ServerInfo[]; width: number; spares: ServerInfo[] } {
    const ranked = rankServers(si, this.#servers);
    if (ranked.length < happy) throw new TooFewServersError(ranked.length, happy);
    const width = Math.min(n, ranked.length);
    return { ranked, width, spares: ranked.slice(width) };
  }

  /**
   * Encrypts, encodes and places a file read from `source`, in bounded memory (a few MiB per
   * share, whatever the file's size). Two passes over the source: the first hashes every segment
   * (the UEB at the head of every share commits to the hash-tree roots), the second encodes each
   * segment again and streams its blocks to the n servers as it goes, checking each segment
   * against the first pass (a source that changed in between fails the put). Placement and
   * errors as {@link put}'s. `leaseSecret` is derived from the storage index, known only once the
   * key is.
   */
  async putStream(source: FileSource, leaseSecret: (storageIndex: string) => Uint8Array, durationMs: number, options: StreamPutOptions): Promise<StreamPutResult> {
    const { k, n, segmentSize = DEFAULT_SEGMENT_SIZE, key = newFileKey() } = options;
    const happy = options.happy ?? n;
    checkEncodeParams(k, n, segmentSize, key);
    const { ranked, width, spares } = this.#placement(storageIndexOf(key), happy, n);
    const rs = new ReedSolomon(k, n);
    const count = segmentsOf(source.size, segmentSize);
    const segment = async (s: number): Promise<{ ciphertext: Uint8Array; blocks: Uint8Array[] }> => {
      const { offset, length } = segmentRange(source.size, segmentSize, s);
      const ciphertext = encryptSegment(key, segmentSize, s, await source.read(offset, length));
      return { ciphertext, blocks: encodeSegmentBlocks(rs, ciphertext) };
    };
    const hasher = new FileHasher(k, n, segmentSize, source.size);
    for (let s = 0; s < count; s++) {
      const seg = await segment(s);
      hasher.add(seg.ciphertext, seg.blocks);
      options.onProgress?.('encode', s + 1, count);
    }
    const plan = hasher.finish();
    const caps = capsOf(key, plan);
    const secret = leaseSecret(caps.storageIndex);
    const uploads = Array.from({ length: n }, (_, r) => this.#upload(caps.storageIndex, r, plan.shareLength, ranked[r % width] as ServerInfo, () => spares.shift(), secret, durationMs));
    try {
      await Promise.all(uploads.map((u, r) => u.write(plan.head(r))));
      for (let s = 0; s < count; s++) {
        const seg = await segment(s);
        if (!equalBytes(taggedHash('crypttext-segment', seg.ciphertext), plan.crypttextLeaves[s] as Uint8Array)) {
          throw new SourceChangedError();
        }
        await Promise.all(uploads.map((u, r) => u.write(seg.blocks[r] as Uint8Array)));
        // Stop early once the shares still under way cannot reach happiness.
        const live = new Set(uploads.filter((u) => !u.failed).map((u) => u.server?.url));
        if (live.size < happy) break;
        options.onProgress?.('upload', s + 1, count);
      }
      if (new Set(uploads.filter((u) => !u.failed).map((u) => u.server?.url)).size >= happy) {
        await Promise.all(uploads.map(async (u, r) => {
          await u.write(plan.tail(r));
          await u.end();
        }));
      }
    } finally {
      uploads.forEach((u) => u.abort());
    }
    return { ...caps, ...placedOrThrow(uploads, happy) };
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
    return { data: decodeFile(readCap, [...found.good.values()].flatMap((g) => (g.share ? [g.share] : []))), rejected: found.rejected, unreachable: found.unreachable };
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
    const found = await this.#openShares(cap);
    // Servers holding nothing usable are done with; the candidates' connections stay open for the read.
    const used = found.release();
    const nums = new Set(found.candidates.map((c) => c.num)).size;
    if (nums < rc.k) {
      closeConns(used);
      throw new NotEnoughSharesError(nums, rc.k, `rejected: ${found.rejected.join('; ') || 'none'}; unreachable: ${found.unreachable.length} of ${found.ranked.length} servers`);
    }
    return new FileReader(rc.key, found.si, found.candidates, found.rejected, found.unreachable, () => closeConns(used));
  }

  /**
   * Asks every server for its shares of the file and reads of each listed share only its head
   * (UEB, checked against the cap: it fixes the share's layout) and its hash-tree tail (checked
   * against the share root). Connections stay open for the blocks; `release` closes those of
   * servers holding no candidate and returns the others.
   */
  async #openShares(cap: VerifyCap): Promise<OpenShares> {
    const si = base32nopad.encode(cap.storageIndex).toLowerCase();
    const ranked = rankServers(cap.storageIndex, this.#servers);
    const out: OpenShares = { si, ranked, candidates: [], rejected: [], unreachable: [], reachable: new Set(), holders: new Map(), bad: new Map(), release: () => new Set() };
    const conns: StorageChannel[] = [];
    await Promise.all(ranked.map(async (s, rank) => {
      let conn: StorageChannel;
      try {
        conn = await this.#connect(s, 'reader');
        conns.push(conn);
        out.reachable.add(s);
      } catch (e) {
        out.unreachable.push(`${s.url}: ${(e as Error).message}`);
        return;
      }
      try {
        const list = await conn.request({ op: 'list', si });
        for (const num of list.header.nums ?? []) {
          out.holders.set(s, [...(out.holders.get(s) ?? []), num]);
          const bad = (why: string): void => {
            out.bad.set(s, [...(out.bad.get(s) ?? []), num]);
            out.rejected.push(`${s.url}: ${why}`);
          };
          try {
            const head = await conn.request({ op: 'get', si, num, offset: 0, length: SHARE_HEAD_BYTES });
            if (!head.header.ok) {
              bad(`listed share ${num} but could not return it`);
              continue;
            }
            const layout = shareLayout(cap, head.body);
            if (head.header.size !== layout.length) throw new BadShareError(`share ${num} announced as ${String(head.header.size)} bytes, expected ${layout.length}`);
            const tailAt = layout.blockAt[layout.count] as number;
            const tail = await readRange(conn, si, num, tailAt, layout.length - tailAt);
            if (!tail) {
              bad(`listed share ${num} but could not return it`);
              continue;
            }
            out.candidates.push({ server: s, rank, conn, num, layout, leaves: verifyShareTail(layout, num, tail) });
          } catch (e) {
            if (!(e instanceof BadShareError)) throw e;
            bad(`share ${num}: ${e.message}`);
          }
        }
      } catch (e) {
        out.unreachable.push(`${s.url}: ${(e as Error).message}`);
      }
    }));
    out.candidates.sort((a, b) => a.rank - b.rank || a.num - b.num);
    out.release = () => {
      const used = new Set(out.candidates.map((c) => c.conn));
      for (const c of conns) if (!used.has(c)) c.close();
      return used;
    };
    return out;
  }

  /**
   * Opens every share (head and tail) and checks every block of every candidate, one range of at
   * most a part at a time per share (memory: a part per share being checked, whatever the size).
   */
  async #verifyAll(cap: VerifyCap, onProgress?: ProgressFn): Promise<{ found: OpenShares; survey: Survey; valid: Candidate[]; conns: Set<StorageChannel> }> {
    const found = await this.#openShares(cap);
    const conns = found.release();
    const survey: Survey = { ranked: found.ranked, good: new Map(), holders: found.holders, reachable: found.reachable, rejected: found.rejected, unreachable: found.unreachable, valid: new Map(), bad: found.bad };
    const valid: Candidate[] = [];
    let checked = 0;
    try {
      // A few shares at a time: each holds a range of up to a part in flight.
      await eachLimited(found.candidates, VERIFY_AT_ONCE, async (c) => {
        const why = await verifyBlocks(found.si, c);
        if (why === null) {
          valid.push(c);
          survey.valid.set(c.server, [...(survey.valid.get(c.server) ?? []), c.num]);
          if (!survey.good.has(c.num)) survey.good.set(c.num, { server: c.server });
        } else {
          survey.bad.set(c.server, [...(survey.bad.get(c.server) ?? []), c.num]);
          survey.rejected.push(`${c.server.url}: share ${c.num}: ${why}`);
        }
        onProgress?.('verify', ++checked, found.candidates.length);
      });
    } catch (e) {
      closeConns(conns);
      throw e;
    }
    valid.sort((a, b) => a.rank - b.rank || a.num - b.num);
    return { found, survey, valid, conns };
  }

  /**
   * Checks a file with its verify cap: which shares exist and verify (every block of every
   * share, in ranges), on how many servers. Never sees plaintext; memory is bounded.
   */
  async check(verifyCap: string, onProgress?: ProgressFn): Promise<CheckReport> {
    const cap = parseVerifyCap(verifyCap);
    const { survey, conns } = await this.#verifyAll(cap, onProgress);
    closeConns(conns);
    return report(cap, survey);
  }

  /**
   * Checks a file with its verify cap and repairs it: every server is asked for its shares,
   * every block of each is verified; missing or corrupt share numbers are regenerated segment by
   * segment from k valid ones and streamed to the best-ranked reachable servers that hold no
   * share of this file (bounded memory, whatever the size). With `renew`, the lease of
   * `leaseSecret` is extended on every server holding a valid share (servers where this secret
   * has no lease, because someone else placed the share, refuse and are skipped). Never sees
   * plaintext. Returns what was found and where repaired shares went.
   */
  async repair(verifyCap: string, leaseSecret: Uint8Array, durationMs: number, opts: { renew?: boolean; onProgress?: ProgressFn } = {}): Promise<CheckReport & { repaired: Map<number, string>; renewed: number }> {
    const cap = parseVerifyCap(verifyCap);
    const { found, survey, valid, conns } = await this.#verifyAll(cap, opts.onProgress);
    const before = report(cap, survey);
    const repaired = new Map<number, string>();
    let renewed = 0;
    try {
      if (opts.renew) renewed = await this.#renew(found.si, [...survey.good.values()].map((g) => g.server), leaseSecret, durationMs);
      if (before.missing.length > 0 && survey.good.size >= cap.k) {
        const targets = found.ranked.filter((s) => found.reachable.has(s) && !found.holders.has(s));
        for (const [r, url] of await this.#regenerate(cap, found.si, valid, before.missing, targets, leaseSecret, durationMs, opts.onProgress)) repaired.set(r, url);
      }
    } finally {
      closeConns(conns);
    }
    return {
      ...before,
      perServer: before.perServer.map((p) => ({ ...p, repaired: [...repaired].filter(([, url]) => url === p.url).map(([r]) => r) })),
      repaired, renewed,
    };
  }

  async #renew(si: string, holders: readonly ServerInfo[], leaseSecret: Uint8Array, durationMs: number): Promise<number> {
    let renewed = 0;
    await Promise.all([...new Set(holders)].map(async (s) => {
      let conn: StorageChannel | undefined;
      try {
        conn = await this.#connect(s, 'renewer');
        if ((await conn.request({ op: 'renew', si, leaseSecret: toHex(leaseSecret), durationMs })).header.ok) renewed++;
      } catch {
        // gone since the survey: the next round finds its shares missing
      } finally {
        conn?.close();
      }
    }));
    return renewed;
  }

  /**
   * Regenerates shares `missing` segment by segment from the verified candidates `valid` (k of
   * them at a time, replaced when one fails) and streams each onto the next of `targets`. The
   * regenerated blocks are hashed as they go; the share tails are sent only if the rebuilt trees
   * give the UEB's roots. Returns share number → server url for each share placed.
   */
  async #regenerate(cap: VerifyCap, si: string, valid: Candidate[], missing: readonly number[], targets: ServerInfo[], leaseSecret: Uint8Array, durationMs: number, onProgress?: ProgressFn): Promise<Map<number, string>> {
    const { params } = (valid[0] as Candidate).layout;
    const length = (valid[0] as Candidate).layout.length;
    const uploads: ShareUpload[] = [];
    for (const r of missing) {
      const first = targets.shift();
      if (!first) break;
      uploads.push(this.#upload(si, r, length, first, () => targets.shift(), leaseSecret, durationMs));
    }
    if (uploads.length === 0) return new Map();
    const hasher = new FileHasher(params.k, params.n, params.segmentSize, params.size);
    const rs = new ReedSolomon(params.k, params.n);
    try {
      await Promise.all(uploads.map((u) => u.write(shareHead(params, u.num))));
      // The reader's connections are the survey's: closing them is the caller's business.
      const reader = new FileReader(null, si, valid, [], [], () => undefined);
      await reader.eachSegment(async (s, blocks) => {
        const seg = reencodeSegment(params, s, blocks, rs);
        hasher.add(seg.ciphertext, seg.blocks);
        await Promise.all(uploads.map((u) => u.write(seg.blocks[u.num] as Uint8Array)));
      }, (_phase, done, total) => onProgress?.('repair', done, total));
      const plan = hasher.finish();
      if (!equalBytes(plan.params.crypttextRoot, params.crypttextRoot) || !equalBytes(plan.params.shareRoot, params.shareRoot) || !equalBytes(plan.uebHash, cap.uebHash)) {
        throw new BadShareError('regenerated shares do not match the file\'s hash trees');
      }
      await Promise.all(uploads.map(async (u) => {
        await u.write(plan.tail(u.num));
        await u.end();
      }));
    } finally {
      uploads.forEach((u) => u.abort());
    }
    return new Map(uploads.filter((u) => u.complete).map((u) => [u.num, (u.server as ServerInfo).url]));
  }
}
export { PART_BYTES };

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
  let out: Uint8Array | undefined;
  for (let at = 0; at < length;) {
    const res = await conn.request({ op: 'get', si, num, offset: offset + at, length: Math.min(PART_BYTES, length - at) });
    if (!res.header.ok) return null;
    if (res.body.length === 0 || at + res.body.length > length) throw new BadShareError(`share ${num}: bad range at ${offset + at}`);
    // One answer that covers the range is used as it is (no copy: less garbage per range).
    if (at === 0 && res.body.length === length) return res.body;
    out ??= new Uint8Array(length);
    out.set(res.body, at);
    at += res.body.length;
  }
  return out ?? new Uint8Array(0);
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
  readonly #key: Uint8Array | null;
  readonly #si: string;
  readonly #candidates: Candidate[];
  readonly #close: () => void;
  /** Servers whose shares failed verification (or vanished), so far. */
  readonly rejected: string[];
  readonly unreachable: string[];

  /** `key`: null for a repairer, which regenerates blocks ({@link eachSegment}) and never decrypts. */
  constructor(key: Uint8Array | null, si: string, candidates: Candidate[], rejected: string[], unreachable: string[], close: () => void) {
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
    const key = this.#key;
    if (!key) throw new TypeError('storage: a reader without the key cannot decrypt');
    try {
      const { params } = (this.#candidates[0] as Candidate).layout;
      const leaves: Uint8Array[] = [];
      await this.eachSegment(async (s, blocks) => {
        const seg = decodeSegment(key, params, s, blocks);
        leaves.push(seg.leaf);
        if (seg.plaintext.length > 0) await write(seg.plaintext);
      }, onProgress);
      checkCrypttextLeaves(params, leaves);
    } finally {
      this.#close();
    }
  }

  /**
   * Hands k verified blocks of each segment, in order, to `use` (awaited). Blocks are fetched in
   * ranges of about a part per share, each checked against its share's leaves; a share that
   * fails is named in `rejected` and replaced by another number's. Closes nothing.
   */
  async eachSegment(use: (s: number, blocks: { num: number; data: Uint8Array }[]) => Promise<void> | void, onProgress?: ProgressFn): Promise<void> {
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
    for (let s0 = 0; s0 < count; s0 += perRound) {
      const s1 = Math.min(count, s0 + perRound);
      let got: Map<Candidate, Uint8Array> | undefined;
      while (!got) {
        pick();
        const round = await Promise.all(chosen.map(async (c) => {
          try {
            return [c, await readBlocks(this.#si, c, s0, s1)] as const;
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
        await use(s, chosen.map((c) => {
          const at = c.layout.blockAt[s0] as number;
          return { num: c.num, data: (ranges.get(c) as Uint8Array).subarray((c.layout.blockAt[s] as number) - at, (c.layout.blockAt[s + 1] as number) - at) };
        }));
      }
      onProgress?.('download', s1, count);
    }
  }
}

/** Blocks s0…s1−1 of a candidate share, each checked against its leaves; throws BadShareError. */
async function readBlocks(si: string, c: Candidate, s0: number, s1: number): Promise<Uint8Array> {
  const at = c.layout.blockAt[s0] as number;
  const bytes = await readRange(c.conn, si, c.num, at, (c.layout.blockAt[s1] as number) - at);
  if (!bytes) throw new BadShareError(`share ${c.num} vanished`);
  for (let s = s0; s < s1; s++) checkBlock(c.leaves, s, bytes.subarray((c.layout.blockAt[s] as number) - at, (c.layout.blockAt[s + 1] as number) - at), c.num);
  return bytes;
}

/** Checks every block of a candidate share, a part's worth of segments at a time: null, or why it failed. */
async function verifyBlocks(si: string, c: Candidate): Promise<string | null> {
  const { count } = c.layout;
  const perRound = Math.max(1, Math.floor(CHECK_RANGE_BYTES / Math.max(1, (c.layout.blockAt[1] as number) - (c.layout.blockAt[0] as number))));
  try {
    for (let s0 = 0; s0 < count; s0 += perRound) await readBlocks(si, c, s0, Math.min(count, s0 + perRound));
    return null;
  } catch (e) {
    if (e instanceof BadShareError) return e.message;
    return `could not be read: ${(e as Error).message}`;
  }
}

/** Shares whose blocks a check reads at once, and the range each reads at a time (memory: their product, a few times over in frame copies). */
const VERIFY_AT_ONCE = 4;
const CHECK_RANGE_BYTES = 1024 * 1024;

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++] as T);
  }));
}

function closeConns(conns: Iterable<StorageChannel>): void {
  for (const c of conns) c.close();
}

/** What {@link StorageClient.openShares} found: shares whose head and tail verified, on open connections. */
interface OpenShares {
  readonly si: string;
  readonly ranked: ServerInfo[];
  readonly candidates: Candidate[];
  readonly rejected: string[];
  readonly unreachable: string[];
  readonly reachable: Set<ServerInfo>;
  /** Servers that listed shares of the file (valid or not), with the numbers they listed. */
  readonly holders: Map<ServerInfo, number[]>;
  /** Per server: listed share numbers whose head or tail failed (or could not be read). */
  readonly bad: Map<ServerInfo, number[]>;
  /** Closes the connections of servers holding no candidate; returns the others. */
  release: () => Set<StorageChannel>;
}

interface Survey {
  readonly ranked: ServerInfo[];
  /** A server holding a valid copy of each share number found (and, for a whole-file read, the share). */
  readonly good: Map<number, { share?: Uint8Array; server: ServerInfo }>;
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
