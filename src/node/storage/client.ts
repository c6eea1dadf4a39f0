/**
 * Storage client: places the n shares of a file on n distinct servers chosen by rendezvous
 * (highest-random-weight) hashing of the storage index, and reads files back from any k
 * verified shares, skipping servers that are gone or that return bad bytes.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { NodeIdentity } from '../identity.js';
import { BadShareError, decodeFile, type EncodedFile, parseReadCap, parseVerifyCap, repairShares, storageIndexOf, verifyCapOf, verifyShare } from './immutable.js';
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
  readonly failures: string[];
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

  /**
   * Uploads share r to the r-th ranked server (n distinct servers). Throws unless at least
   * `happy` shares were placed (Tahoe's servers-of-happiness; default n).
   */
  async put(file: EncodedFile, leaseSecret: Uint8Array, durationMs: number, happy = file.shares.length): Promise<PutResult> {
    const si = base32nopad.decode(file.storageIndex.toUpperCase());
    const ranked = rankServers(si, this.#servers);
    if (ranked.length < file.shares.length) throw new RangeError(`storage: ${file.shares.length} shares need ${file.shares.length} servers, know ${ranked.length}`);
    const placed = new Map<number, string>();
    const failures: string[] = [];
    await Promise.all(
      file.shares.map(async (share, r) => {
        const s = ranked[r] as ServerInfo;
        let conn: StorageConnection | undefined;
        try {
          conn = await this.#connect(s);
          const res = await conn.request({ op: 'put', si: file.storageIndex, num: r, leaseSecret: toHex(leaseSecret), durationMs }, share);
          if (res.header.ok) placed.set(r, s.url);
          else failures.push(`share ${r} on ${s.url}: ${res.header.error ?? res.header.code}`);
        } catch (e) {
          failures.push(`share ${r} on ${s.url}: ${(e as Error).message}`);
        } finally {
          conn?.close();
        }
      }),
    );
    if (placed.size < happy) throw new Error(`storage: placed ${placed.size} shares, need ${happy}: ${failures.join('; ')}`);
    return { placed, failures };
  }

  /**
   * Reads a file: asks every server (ranked order, in parallel) for its shares of the storage
   * index, verifies each share before use, and decodes from the first k valid ones.
   * `rejected` lists servers whose shares failed verification.
   */
  async get(readCap: string): Promise<{ data: Uint8Array; rejected: string[]; unreachable: string[] }> {
    const rc = parseReadCap(readCap);
    const si = storageIndexOf(rc.key);
    const siText = base32nopad.encode(si).toLowerCase();
    const verifyCap = verifyCapOf(readCap);
    const good = new Map<number, Uint8Array>();
    const rejected: string[] = [];
    const unreachable: string[] = [];
    await Promise.all(
      rankServers(si, this.#servers).map(async (s) => {
        let conn: StorageConnection | undefined;
        try {
          conn = await this.#connect(s);
          const list = await conn.request({ op: 'list', si: siText });
          for (const r of list.header.nums ?? []) {
            if (good.size >= rc.k) break;
            const res = await conn.request({ op: 'get', si: siText, num: r });
            if (!res.header.ok) {
              rejected.push(`${s.url}: listed share ${r} but could not return it`);
              continue;
            }
            try {
              verifyShare(verifyCap, res.body, r);
              if (!good.has(r)) good.set(r, res.body);
            } catch (e) {
              if (!(e instanceof BadShareError)) throw e;
              rejected.push(`${s.url}: share ${r}: ${e.message}`);
            }
          }
        } catch (e) {
          unreachable.push(`${s.url}: ${(e as Error).message}`);
        } finally {
          conn?.close();
        }
      }),
    );
    if (good.size < rc.k) throw new Error(`storage: found ${good.size} valid shares, need ${rc.k} (rejected: ${rejected.join('; ') || 'none'}; unreachable: ${unreachable.length})`);
    return { data: decodeFile(readCap, [...good.values()]), rejected, unreachable };
  }

  /**
   * Checks a file with its verify cap and repairs it: every server is asked for its shares,
   * each share is verified; missing or corrupt share numbers are regenerated from k valid ones
   * and put on the best-ranked reachable servers that hold no share of this file. Never sees
   * plaintext. Returns what was found and where repaired shares went.
   */
  async repair(verifyCap: string, leaseSecret: Uint8Array, durationMs: number): Promise<{ healthy: number[]; repaired: Map<number, string>; corrupt: string[] }> {
    const cap = parseVerifyCap(verifyCap);
    const siText = base32nopad.encode(cap.storageIndex).toLowerCase();
    const ranked = rankServers(cap.storageIndex, this.#servers);
    const good = new Map<number, Uint8Array>();
    const holders = new Set<ServerInfo>();
    const reachable = new Set<ServerInfo>();
    const corrupt: string[] = [];
    await Promise.all(
      ranked.map(async (s) => {
        let conn: StorageConnection | undefined;
        try {
          conn = await this.#connect(s);
          reachable.add(s);
          const list = await conn.request({ op: 'list', si: siText });
          for (const r of list.header.nums ?? []) {
            holders.add(s);
            const res = await conn.request({ op: 'get', si: siText, num: r });
            try {
              if (!res.header.ok) throw new BadShareError('listed but not returned');
              verifyShare(cap, res.body, r);
              good.set(r, res.body);
            } catch (e) {
              if (!(e instanceof BadShareError)) throw e;
              corrupt.push(`${s.url}: share ${r}: ${e.message}`);
            }
          }
        } catch {
          // unreachable: its shares count as missing
        } finally {
          conn?.close();
        }
      }),
    );
    const missing = Array.from({ length: cap.n }, (_, r) => r).filter((r) => !good.has(r));
    const repaired = new Map<number, string>();
    if (missing.length === 0) return { healthy: [...good.keys()].sort((a, b) => a - b), repaired, corrupt };
    const fresh = repairShares(verifyCap, [...good.values()], missing);
    const targets = ranked.filter((s) => reachable.has(s) && !holders.has(s));
    for (const r of missing) {
      const share = fresh.get(r) as Uint8Array;
      for (let s = targets.shift(); s; s = targets.shift()) {
        let conn: StorageConnection | undefined;
        try {
          conn = await this.#connect(s);
          const res = await conn.request({ op: 'put', si: siText, num: r, leaseSecret: toHex(leaseSecret), durationMs }, share);
          if (res.header.ok) {
            repaired.set(r, s.url);
            break;
          }
        } catch {
          // try the next server
        } finally {
          conn?.close();
        }
      }
    }
    return { healthy: [...good.keys()].sort((a, b) => a - b), repaired, corrupt };
  }
}
