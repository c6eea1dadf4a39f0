/**
 * Ten in-process storage servers on loopback, each over real sockets and the node's Noise
 * transport: placement on distinct servers, read-back after 7 of 10 are stopped, a lying server
 * detected and routed around, an oversized upload refused with a clear error.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { rankServers, SourceChangedError, StorageClient, type ServerInfo } from '../../../src/node/storage/client.js';
import { bytesSource, openFileSource, UPLOAD_PART_BYTES } from '../../../src/node/storage/share-upload.js';
import { base32nopad } from '@scure/base';
import { encodeFile, storageIndexOf, verifyShare } from '../../../src/node/storage/immutable.js';
import { ShareStore } from '../../../src/node/storage/server/share-store.js';
import { FRAME_REQUEST, StorageConnection, StorageServer, type StorageResponse } from '../../../src/node/storage/server/storage-service.js';
import { ChannelServer, dial } from '../../../src/node/transport/ws-transport.js';

type Answer = { header: StorageResponse; body?: Uint8Array };

/** Returns every share with one byte flipped. */
class LyingServer extends StorageServer {
  protected override async handle(req: Record<string, unknown>, body: Uint8Array): Promise<Answer> {
    const out = await super.handle(req, body);
    if (req.op === 'get' && out.body) {
      const bad = Uint8Array.from(out.body);
      bad[bad.length >> 1] = (bad[bad.length >> 1] as number) ^ 1;
      return { ...out, body: bad };
    }
    return out;
  }
}

/** Lists its shares but claims to have lost them when asked. */
class ForgetfulServer extends StorageServer {
  protected override async handle(req: Record<string, unknown>, body: Uint8Array): Promise<Answer> {
    if (req.op === 'get') return { header: { ok: false, code: 'not-found', error: 'no such share' } };
    return super.handle(req, body);
  }
}

/** Announces every share one byte longer than it is (a lie a ranged reader must refuse up front). */
class InflatingServer extends StorageServer {
  protected override async handle(req: Record<string, unknown>, body: Uint8Array): Promise<Answer> {
    const out = await super.handle(req, body);
    return req.op === 'get' && out.header.size !== undefined ? { ...out, header: { ...out.header, size: out.header.size + 1 } } : out;
  }
}

/** Answers share reads 300 ms late, so the liar's answer is certain to be examined first. */
class SlowServer extends StorageServer {
  protected override async handle(req: Record<string, unknown>, body: Uint8Array): Promise<Answer> {
    if (req.op === 'get') await new Promise((r) => setTimeout(r, 300));
    return super.handle(req, body);
  }
}

/** Records the identity key of every peer that opens a channel to it. */
class RecordingServer extends StorageServer {
  readonly remotes: string[] = [];
  constructor(server: ChannelServer, store: ShareStore) {
    super(server, store);
    server.on('channel', (ch) => this.remotes.push(ch.remote ? Buffer.from(ch.remote).toString('hex') : '?'));
  }
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

async function grid(count: number, opts: { quotaBytes?: number; liar?: number; liarKind?: typeof LyingServer | typeof ForgetfulServer | typeof InflatingServer } = {}): Promise<{ servers: StorageServer[]; infos: ServerInfo[]; dirs: string[] }> {
  const servers: StorageServer[] = [];
  const dirs: string[] = [];
  const infos: ServerInfo[] = [];
  for (let i = 0; i < count; i++) {
    const dir = mkdtempSync(join(tmpdir(), `dd-srv${i}-`));
    dirs.push(dir);
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const id = NodeIdentity.fromSeed(new Uint8Array(32).fill(10 + i));
    const store = new ShareStore({ dir, quotaBytes: opts.quotaBytes ?? 1 << 24 });
    const kind = opts.liar === undefined ? StorageServer : i === opts.liar ? (opts.liarKind ?? LyingServer) : SlowServer;
    const s = await kind.start(id, store);
    cleanup.push(() => s.close());
    servers.push(s);
    infos.push({ id: id.publicKey, url: s.url });
  }
  return { servers, infos, dirs };
}

const client = (infos: ServerInfo[]): StorageClient => new StorageClient(NodeIdentity.fromSeed(new Uint8Array(32).fill(99)), infos);
const HOUR = 3_600_000;

describe('storage over loopback Noise channels', () => {
  it('reads under a fresh identity per client, never the node\'s, and dials each server by the route it is given', async () => {
    const servers: RecordingServer[] = [];
    const infos: ServerInfo[] = [];
    for (let i = 0; i < 4; i++) {
      const dir = mkdtempSync(join(tmpdir(), `dd-rec${i}-`));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const id = NodeIdentity.fromSeed(new Uint8Array(32).fill(50 + i));
      const s = await RecordingServer.start(id, new ShareStore({ dir, quotaBytes: 1 << 24 }));
      cleanup.push(() => s.close());
      servers.push(s);
      infos.push({ id: id.publicKey, url: s.url });
    }
    const owner = NodeIdentity.fromSeed(new Uint8Array(32).fill(98));
    const ownerHex = Buffer.from(owner.publicKey).toString('hex');
    const data = new Uint8Array(randomBytes(20_000));
    const file = encodeFile(data, { k: 2, n: 4 });
    // Puts (and lease renewals) are the owner's: servers store for their operator's contacts.
    await new StorageClient(owner, infos).put(file, new Uint8Array(randomBytes(32)), HOUR);
    for (const s of servers) expect(s.remotes).toEqual([ownerHex]);
    const readers = async (): Promise<Set<string>> => {
      for (const s of servers) s.remotes.length = 0;
      const got = await new StorageClient(owner, infos).get(file.readCap);
      expect(Buffer.from(got.data).equals(data)).toBe(true);
      return new Set(servers.flatMap((s) => s.remotes));
    };
    const first = await readers();
    const second = await readers();
    // One reader key per client, not the owner's, and a different one for the next read.
    expect(first.size).toBe(1);
    expect(second.size).toBe(1);
    expect(first.has(ownerHex)).toBe(false);
    expect([...first][0]).not.toBe([...second][0]);
    // A server the route refuses (an onion without Tor, say) is never dialled; the others serve.
    for (const s of servers) s.remotes.length = 0;
    const refused = infos[0]!.url;
    const routed = new StorageClient(owner, infos, { route: (url) => (url === refused ? null : {}) });
    const got = await routed.get(file.readCap);
    expect(Buffer.from(got.data).equals(data)).toBe(true);
    expect(servers[0]!.remotes).toEqual([]);
    expect(got.unreachable.join()).toContain('no route');
  });

  it('puts 3-of-10 on 10 distinct servers and reads it back byte-identical with 7 servers stopped', async () => {
    const { servers, infos } = await grid(10);
    const data = new Uint8Array(randomBytes(300_000));
    const file = encodeFile(data, { k: 3, n: 10 });
    const put = await client(infos).put(file, new Uint8Array(randomBytes(32)), HOUR);
    expect(new Set(put.placed.values()).size).toBe(10);
    for (const s of servers) expect(s.store.list(file.storageIndex).length).toBe(1);
    const stopped = servers.filter((_, i) => i % 10 < 7);
    await Promise.all(stopped.map((s) => s.close()));
    const got = await client(infos).get(file.readCap);
    expect(Buffer.from(got.data).equals(data)).toBe(true);
    expect(got.unreachable.length).toBe(7);
    await servers[7]?.close();
    await expect(client(infos).get(file.readCap)).rejects.toThrow(/found 2 valid shares, need 3/);
  });

  it('detects a lying server and uses the others', async () => {
    const { servers, infos } = await grid(10, { liar: 4 });
    const data = new Uint8Array(randomBytes(50_000));
    const file = encodeFile(data, { k: 3, n: 10 });
    await client(infos).put(file, new Uint8Array(randomBytes(32)), HOUR);
    // Leave the liar and three honest servers.
    const honestStopped = servers.filter((_, i) => i !== 4).slice(0, 6);
    await Promise.all(honestStopped.map((s) => s.close()));
    const got = await client(infos).get(file.readCap);
    expect(Buffer.from(got.data).equals(data)).toBe(true);
    expect(got.rejected.length).toBe(1);
    expect(got.rejected[0]).toContain(servers[4]?.url);
    expect(got.rejected[0]).toMatch(/corrupt|share tree/);
  });

  it('refuses an upload beyond a server quota with a clear error', async () => {
    const { infos } = await grid(10, { quotaBytes: 20_000 });
    const file = encodeFile(new Uint8Array(randomBytes(100_000)), { k: 3, n: 10 });
    await expect(client(infos).put(file, new Uint8Array(randomBytes(32)), HOUR)).rejects.toThrow(/placed shares on 0 servers, need 10: share \d+ on ws:\/\/127\.0\.0\.1:\d+: share of \d+ bytes exceeds this server's limit of 20000 bytes per share/);
  });

  it('answers bad requests from a stranger with errors or a closed channel, and keeps serving', async () => {
    const { servers, infos } = await grid(1);
    const stranger = NodeIdentity.fromSeed(new Uint8Array(32).fill(55));
    const ch = await dial(infos[0]?.url as string, stranger);
    const closed = new Promise<string>((resolve) => ch.once('close', (reason) => resolve(reason)));
    ch.send(FRAME_REQUEST, Uint8Array.of(1, 2, 3));
    expect(await closed).toBe('remote'); // the server hung up on the malformed request

    const conn = await StorageConnection.open(infos[0]?.url as string, stranger);
    cleanup.push(() => conn.close());
    const si = encodeFile(new Uint8Array(10)).storageIndex;
    const weird = [
      { op: 'nope', si },
      { op: 'get', si: '../../etc', num: 0 },
      { op: 'get', si, num: -1 },
      { op: 'put', si, num: 0, leaseSecret: 'zz', durationMs: 1 },
      { op: 'renew', si, leaseSecret: '00'.repeat(32), durationMs: 1000 },
    ];
    const codes = [];
    for (const req of weird) codes.push((await conn.request(req as never)).header.code);
    expect(codes).toEqual(['bad-request', 'bad-request', 'bad-request', 'bad-request', 'no-lease']);
    const secret = new Uint8Array(randomBytes(32));
    const put = await conn.request({ op: 'put', si, num: 2, leaseSecret: Buffer.from(secret).toString('hex'), durationMs: 1000 }, Uint8Array.of(7, 7));
    expect(put.header.ok).toBe(true);
    expect((await conn.request({ op: 'renew', si, leaseSecret: Buffer.from(secret).toString('hex'), durationMs: HOUR })).header.ok).toBe(true);
    expect(servers[0]?.store.leaseExpiry(si)).toBeGreaterThan(Date.now() + HOUR - 60_000);
    const got = await conn.request({ op: 'get', si, num: 2 });
    expect(Array.from(got.body)).toEqual([7, 7]);
  });

  it('repairs lost and corrupt shares onto fresh servers with the verify cap', async () => {
    const { servers, infos, dirs } = await grid(13);
    const data = new Uint8Array(randomBytes(40_000));
    const file = encodeFile(data, { k: 3, n: 10 });
    const secret = new Uint8Array(randomBytes(32));
    const put = await client(infos).put(file, secret, HOUR);
    const holderOf = (r: number): number => infos.findIndex((x) => x.url === put.placed.get(r));
    // Lose shares 1 and 5 (servers stopped), corrupt share 8 on disk.
    await servers[holderOf(1)]?.close();
    await servers[holderOf(5)]?.close();
    const bad = Uint8Array.from(file.shares[8] as Uint8Array);
    bad[200] = (bad[200] as number) ^ 0x10;
    writeFileSync(join(dirs[holderOf(8)] as string, file.storageIndex, '8'), bad);

    const result = await client(infos).repair(file.verifyCap, secret, HOUR);
    expect(result.healthy).toEqual([0, 2, 3, 4, 6, 7, 9]);
    expect(result.corrupt.length).toBe(1);
    expect(result.corrupt[0]).toMatch(/share 8: block 0 of share 8 is corrupt/);
    expect([...result.repaired.keys()].sort()).toEqual([1, 5, 8]);
    // Share health per server: every server of the grid, in rank order, with what it holds.
    const per = new Map(result.perServer.map((p) => [p.url, p]));
    expect(result.perServer).toHaveLength(13);
    expect(per.get(put.placed.get(1) as string)).toMatchObject({ reachable: false, valid: [], bad: [] });
    expect(per.get(put.placed.get(8) as string)).toMatchObject({ reachable: true, valid: [], bad: [8] });
    expect(per.get(put.placed.get(0) as string)).toMatchObject({ reachable: true, valid: [0], bad: [], repaired: [] });
    for (const [r, url] of result.repaired) expect(per.get(url)?.repaired).toEqual([r]);
    const originalHolders = new Set(put.placed.values());
    for (const [r, url] of result.repaired) {
      expect(originalHolders.has(url), `share ${r} went to a fresh server`).toBe(false);
      const s = servers[infos.findIndex((x) => x.url === url)] as StorageServer;
      expect(Buffer.from(verifyShare(file.verifyCap, s.store.get(file.storageIndex, r) as Uint8Array, r).blocks[0] as Uint8Array).length).toBeGreaterThan(0);
      expect(Buffer.from(s.store.get(file.storageIndex, r) as Uint8Array).equals(file.shares[r] as Uint8Array)).toBe(true);
    }
    // Now readable from the repaired shares alone plus any one other.
    const keep = new Set([...result.repaired.values()]);
    await Promise.all(servers.filter((_, i) => !keep.has(infos[i]?.url as string)).map((s) => s.close()));
    const back = await client(infos).get(file.readCap);
    expect(Buffer.from(back.data).equals(data)).toBe(true);
  });

  it('routes around a server that lists a share it lost', async () => {
    const { servers, infos } = await grid(10, { liar: 2, liarKind: ForgetfulServer });
    const data = new Uint8Array(randomBytes(20_000));
    const file = encodeFile(data, { k: 3, n: 10 });
    await client(infos).put(file, new Uint8Array(randomBytes(32)), HOUR);
    await Promise.all(servers.filter((_, i) => i !== 2).slice(0, 6).map((s) => s.close()));
    const got = await client(infos).get(file.readCap);
    expect(Buffer.from(got.data).equals(data)).toBe(true);
    expect(got.rejected).toEqual([expect.stringMatching(new RegExp(`^${infos[2]?.url}: listed share \\d+ but could not return it$`))]);
  });
  it('moves shares larger than a transport frame in parts, and refuses a server announcing a wrong share size', async () => {
    const { servers, infos, dirs } = await grid(10, { quotaBytes: 1 << 26, liar: 6, liarKind: InflatingServer });
    const data = new Uint8Array(randomBytes(14 * 1024 * 1024)); // shares of about 4.7 MB: three frames each
    const file = encodeFile(data, { k: 3, n: 10 });
    expect((file.shares[0] as Uint8Array).length).toBeGreaterThan(4 * 1024 * 1024);
    const put = await client(infos).put(file, new Uint8Array(randomBytes(32)), HOUR);
    expect(new Set(put.placed.values()).size).toBe(10);
    for (const [i, dir] of dirs.entries()) {
      const r = servers[i]?.store.list(file.storageIndex)[0] as number;
      expect(Buffer.from(readFileSync(join(dir, file.storageIndex, String(r)))).equals(file.shares[r] as Uint8Array)).toBe(true);
    }
    await Promise.all(servers.filter((_, i) => i !== 6).slice(0, 6).map((s) => s.close()));
    const got = await client(infos).get(file.readCap);
    expect(Buffer.from(got.data).equals(data)).toBe(true);
    expect(got.rejected).toEqual([expect.stringMatching(new RegExp(`^${infos[6]?.url}: share \\d+: share \\d+ announced as \\d+ bytes, expected \\d+$`))]);
  });
  it('streams a file segment by segment in bounded memory, replacing a server that fails mid-read', async () => {
    const { servers, infos } = await grid(10, { quotaBytes: 1 << 26 });
    const data = new Uint8Array(randomBytes(9 * 1024 * 1024 + 777)); // 73 segments, shares in two parts
    const file = encodeFile(data, { k: 3, n: 10 });
    await client(infos).put(file, new Uint8Array(randomBytes(32)), HOUR);
    const reader = await client(infos).openRead(file.readCap);
    expect(reader.size).toBe(data.length);
    // The best-ranked server goes away after the open: its share is replaced by the next.
    const first = rankServers(base32nopad.decode(file.storageIndex.toUpperCase()), infos)[0] as ServerInfo;
    await servers[infos.indexOf(first)]?.close();
    const chunks: Uint8Array[] = [];
    const progress: number[] = [];
    await reader.pipe((c) => void chunks.push(Uint8Array.from(c)), (_phase, done) => progress.push(done));
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(128 * 1024);
    expect(progress.at(-1)).toBe(73);
    expect(reader.rejected).toEqual([expect.stringContaining(`${first.url}: share `)]);
    // Fewer than k shares reachable: an error before any byte.
    await Promise.all(servers.slice(0, 8).map((s) => s.close()));
    await expect(client(infos).openRead(file.readCap)).rejects.toThrow(/valid shares, need 3/);
  });
  it('fails a streamed read cleanly when a share is lost mid-read and no other is left', async () => {
    const { servers, infos } = await grid(3, { quotaBytes: 1 << 26 });
    const data = new Uint8Array(randomBytes(3 * 1024 * 1024));
    const file = encodeFile(data, { k: 3, n: 3 });
    await client(infos).put(file, new Uint8Array(randomBytes(32)), HOUR);
    const reader = await client(infos).openRead(file.readCap);
    await servers[1]?.close();
    let written = 0;
    await expect(reader.pipe((c) => void (written += c.length))).rejects.toThrow(/found 2 valid shares, need 3/);
    expect(written).toBe(0);
    expect(reader.rejected).toEqual([expect.stringContaining(`${infos[1]?.url}: share `)]);
  });

  it('streams a put from a file in parts, byte-identical to the whole-file encoding, moving a refused share to a spare', { timeout: 60_000 }, async () => {
    const { infos: big, dirs } = await grid(10, { quotaBytes: 1 << 26 });
    const data = new Uint8Array(randomBytes(7 * 1024 * 1024 + 12_345));
    const dir = mkdtempSync(join(tmpdir(), 'dd-src-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'f'), data);
    // An eleventh server too small for a share, and a key for which it ranks first: its share must go to the spare.
    const smallId = NodeIdentity.fromSeed(new Uint8Array(32).fill(90));
    const smallDir = mkdtempSync(join(tmpdir(), 'dd-small-'));
    cleanup.push(() => rmSync(smallDir, { recursive: true, force: true }));
    const small = await StorageServer.start(smallId, new ShareStore({ dir: smallDir, quotaBytes: 1000 }));
    cleanup.push(() => small.close());
    const infos2 = [...big, { id: smallId.publicKey, url: small.url }];
    let key = new Uint8Array(randomBytes(32));
    while ((rankServers(storageIndexOf(key), infos2)[0] as ServerInfo).url !== small.url) key = new Uint8Array(randomBytes(32));
    const whole = encodeFile(data, { k: 3, n: 10, key });
    const source = await openFileSource(join(dir, 'f'));
    const phases = new Set<string>();
    const put = await client(infos2).putStream(source, () => new Uint8Array(32).fill(1), HOUR, { k: 3, n: 10, key, onProgress: (p) => phases.add(p) });
    await source.close();
    expect(put).toMatchObject({ readCap: whole.readCap, verifyCap: whole.verifyCap, storageIndex: whole.storageIndex, happiness: 10 });
    expect(put.failures).toEqual([expect.stringMatching(/^share \d+ on ws:.*(does not fit|exceeds)/)]);
    expect([...phases]).toEqual(['encode', 'upload']);
    // Every share on disk equals the in-memory encoding's.
    for (const [r, url] of put.placed) {
      const at = big.findIndex((s) => s.url === url);
      expect(Buffer.from(readFileSync(join(dirs[at] as string, whole.storageIndex, String(r)))).equals(whole.shares[r] as Uint8Array), `share ${r}`).toBe(true);
    }
    expect([...put.placed.values()]).not.toContain(small.url);
    // A source that reads differently the second time fails the put; nothing complete is stored.
    let reads = 0;
    const fickle = { size: 300_000, read: async (_o: number, length: number) => new Uint8Array(length).fill(++reads > 3 ? 1 : 0) };
    await expect(client(big).putStream(fickle, () => new Uint8Array(32), HOUR, { k: 3, n: 10 })).rejects.toBeInstanceOf(SourceChangedError);
  });

  it('resumes a streamed share on its server after the server restarts mid-upload', { timeout: 60_000 }, async () => {
    const dirs: string[] = [];
    const ids = [0, 1, 2].map((i) => NodeIdentity.fromSeed(new Uint8Array(32).fill(70 + i)));
    let crashed: (() => void) | undefined;
    const down = new Promise<void>((resolve) => (crashed = resolve));
    /** Writes the third part of a share, then dies before answering (the answer is lost). */
    class CrashingServer extends StorageServer {
      protected override async handle(req: Record<string, unknown>, body: Uint8Array): Promise<Answer> {
        const out = await super.handle(req, body);
        if (req.op === 'put' && req.offset === 2 * UPLOAD_PART_BYTES) {
          void this.close().then(() => crashed?.());
          return new Promise(() => undefined);
        }
        return out;
      }
    }
    const servers: StorageServer[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(tmpdir(), `dd-resume${i}-`));
      dirs.push(dir);
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const kind = i === 0 ? CrashingServer : StorageServer;
      const s = await kind.start(ids[i]!, new ShareStore({ dir, quotaBytes: 1 << 26 }));
      servers.push(s);
      cleanup.push(() => servers[i]!.close());
    }
    const infos = servers.map((s, i) => ({ id: ids[i]!.publicKey, url: s.url }));
    const data = new Uint8Array(randomBytes(12 * 1024 * 1024));
    const key = new Uint8Array(randomBytes(32));
    const whole = encodeFile(data, { k: 2, n: 3, key });
    // Restart server 0 on the same port and directory (a fresh store: its in-memory state is gone).
    let restarted = false;
    void down.then(async () => {
      await new Promise((r) => setTimeout(r, 300));
      restarted = true;
      const port = Number(new URL(infos[0]!.url).port);
      servers[0] = await StorageServer.start(ids[0]!, new ShareStore({ dir: dirs[0]!, quotaBytes: 1 << 26 }), { port });
    });
    const put = await client(infos).putStream(bytesSource(data), () => new Uint8Array(32).fill(2), HOUR, { k: 2, n: 3, key });
    expect(restarted).toBe(true);
    expect(put.happiness).toBe(3);
    expect(put.failures).toEqual([]);
    // The resumed share is whole and right.
    const num = [...put.placed].find(([, url]) => url === infos[0]!.url)![0];
    expect(Buffer.from(readFileSync(join(dirs[0]!, whole.storageIndex, String(num)))).equals(whole.shares[num]!)).toBe(true);
    const got = await client(infos).get(whole.readCap);
    expect(Buffer.from(got.data).equals(data)).toBe(true);
  });
});
