/**
 * Storage across hosts: twelve network namespaces on a bridged "internet" (test/support/netns.ts),
 * eleven storage servers and one client, each its own Node process in its own namespace
 * (test/support/storage-runner.ts: the project's StorageServer, ShareStore and StorageClient over
 * the node's Noise transport). A 3-of-10 file is put on ten servers and read back byte-identical
 * after seven are stopped; a share corrupted on one server's disk is found by a check and
 * regenerated onto the eleventh, fresh server; a server returning flipped bytes and one claiming a
 * share it lost are detected and the others are used. Reads go both ways: whole (`get`) and
 * streamed segment by segment (`openRead` + `pipe`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { verifyShare } from '../../../src/node/storage/immutable.js';
import { toHex } from '../../../src/util/bytes.js';
import { NetLab, netnsUnavailable, tearDownLab } from '../../support/netns.js';
import { waitUntil } from '../../support/wait.js';

const skip = netnsUnavailable();
const RUNNER = new URL('../../support/storage-runner.ts', import.meta.url).pathname;
const PORT = 7400;
const SERVERS = Array.from({ length: 11 }, (_, i) => `s${i}`);

interface Ev {
  ev: string;
  [k: string]: unknown;
}

/** One runner process and what it reported. */
class Runner {
  readonly events: Ev[] = [];
  stderr = '';
  readonly exited: Promise<void>;

  constructor(readonly name: string, readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as Ev);
      } catch {
        // not ours
      }
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async next(pred: (e: Ev) => boolean, what: string, from = 0, timeoutMs = 60_000): Promise<Ev> {
    return waitUntil(() => {
      if (!this.alive) throw new Error(`${this.name} exited (${this.child.exitCode}): ${this.stderr}`);
      return this.events.slice(from).find(pred);
    }, `${this.name}: ${what}`, timeoutMs, 50);
  }

  /** Sends a command and waits for its answer (`ev` = op) or an error. */
  async call(cmd: { op: string; [k: string]: unknown }, timeoutMs = 60_000): Promise<Ev> {
    const from = this.events.length;
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    const e = await this.next((x) => x.ev === cmd.op || x.ev === 'error', cmd.op, from, timeoutMs);
    if (e.ev === 'error') throw new Error(`${this.name} ${cmd.op}: ${String(e.message)}`);
    return e;
  }

  async quit(): Promise<void> {
    if (!this.alive) return;
    this.child.stdin!.write(`${JSON.stringify({ op: 'quit' })}\n`);
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(skip !== null)(`storage across network namespaces: 11 servers, one client${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: NetLab;
  let tmp: string;
  const servers = new Map<string, Runner>();
  let client: Runner;
  const seeds = new Map(SERVERS.map((n) => [n, randomBytes(32)]));
  const ids = new Map([...seeds].map(([n, s]) => [n, toHex(NodeIdentity.fromSeed(s).publicKey)]));
  const urlOf = (name: string): string => `ws://${lab.host(name).ip}:${PORT}`;
  const nameOf = (url: string): string => SERVERS.find((n) => urlOf(n) === url)!;
  const dirOf = (name: string): string => join(tmp, name);
  const list = (names: readonly string[]): { id: string; url: string }[] => names.map((n) => ({ id: ids.get(n)!, url: urlOf(n) }));

  async function startServer(name: string): Promise<Runner> {
    const cfg = { role: 'server', seed: toHex(seeds.get(name)!), host: lab.host(name).ip, port: PORT, dir: dirOf(name) };
    const r = new Runner(name, lab.spawn(name, process.execPath, ['--import', 'tsx', RUNNER, JSON.stringify(cfg)], { cwd: process.cwd() }));
    servers.set(name, r);
    const ready = await r.next((e) => e.ev === 'ready', 'ready');
    expect(ready.url).toBe(urlOf(name));
    return r;
  }

  beforeAll(async () => {
    lab = NetLab.create([...SERVERS, 'client'], []);
    tmp = mkdtempSync(join(tmpdir(), 'dd-storenet-'));
    const cfg = { role: 'client', seed: toHex(randomBytes(32)) };
    client = new Runner('client', lab.spawn('client', process.execPath, ['--import', 'tsx', RUNNER, JSON.stringify(cfg)], { cwd: process.cwd() }));
    // s10 stays off until the repair: it is the fresh server.
    await Promise.all([client.next((e) => e.ev === 'ready', 'ready'), ...SERVERS.slice(0, 10).map((n) => startServer(n))]);
  }, 120_000);

  afterAll(() => tearDownLab(lab, () => Promise.all([client, ...servers.values()].filter(Boolean).map((r) => r.quit().catch(() => undefined))), tmp));

  it('reads back after 7 of 10 servers stop, repairs a corrupt share onto a fresh server, and routes around lying servers', async () => {
    const data = new Uint8Array(randomBytes(2 * 1024 * 1024 + 12_345)); // 17 segments
    const input = join(tmp, 'input');
    writeFileSync(input, data);
    const ten = SERVERS.slice(0, 10);
    const put = await client.call({ op: 'put', path: input, k: 3, happy: 7, n: 10, servers: list(ten) });
    const placed = put.placed as Record<string, string>;
    const holder = (r: number): string => nameOf(placed[String(r)]!);
    expect(new Set(Object.values(placed)).size).toBe(10);
    const { readCap, verifyCap, storageIndex } = put as unknown as { readCap: string; verifyCap: string; storageIndex: string };

    // 1. Seven servers stop (those holding shares 0..6): the three parity shares 7, 8, 9 rebuild the file.
    const stopped = [0, 1, 2, 3, 4, 5, 6].map(holder);
    await Promise.all(stopped.map((n) => servers.get(n)!.quit()));
    const out1 = join(tmp, 'out1');
    const got = await client.call({ op: 'get', cap: readCap, out: out1, servers: list(ten) });
    expect(sha(readFileSync(out1))).toBe(sha(data));
    expect((got.unreachable as string[]).length).toBe(7);
    expect(got.rejected).toEqual([]);
    const streamed = await client.call({ op: 'stream', cap: readCap, out: join(tmp, 'out1s'), servers: list(ten) });
    expect(sha(readFileSync(join(tmp, 'out1s')))).toBe(sha(data));
    expect(streamed.size).toBe(data.length);
    await Promise.all(stopped.map((n) => startServer(n)));

    // 2. A share is corrupted on one server's disk: the check finds it, the repair regenerates it
    //    onto the eleventh server, which held nothing of the file.
    const victim = holder(4);
    const sharePath = join(dirOf(victim), storageIndex, '4');
    const bytes = readFileSync(sharePath);
    bytes.writeUInt8(bytes.readUInt8(1000) ^ 0x40, 1000);
    writeFileSync(sharePath, bytes);
    const check = await client.call({ op: 'check', cap: verifyCap, servers: list(ten) });
    expect(check.missing).toEqual([4]);
    expect((check.corrupt as string[]).join('\n')).toContain(`${urlOf(victim)}: share 4:`);
    await startServer('s10');
    const repair = await client.call({ op: 'repair', cap: verifyCap, servers: list(SERVERS) });
    expect(repair.repaired).toEqual({ 4: urlOf('s10') });
    const fresh = new Uint8Array(readFileSync(join(dirOf('s10'), storageIndex, '4')));
    expect(verifyShare(verifyCap, fresh, 4).num).toBe(4);
    const after = await client.call({ op: 'check', cap: verifyCap, servers: list(SERVERS) });
    expect(after.missing).toEqual([]);
    expect(after.servers).toBe(10);

    // 3. Lying servers: one returns flipped bytes, one lists a share it lost. Six honest holders
    //    stop; the three left answer late, so the liars are certainly examined first.
    const flipper = holder(7);
    const forgetter = holder(8);
    await servers.get(flipper)!.call({ op: 'mode', lie: 'flip' });
    await servers.get(forgetter)!.call({ op: 'mode', lie: 'forget' });
    const honest = [0, 2, 5].map(holder);
    await Promise.all(honest.map((n) => servers.get(n)!.call({ op: 'mode', delayMs: 300 })));
    const down = [1, 3, 6, 9].map(holder).concat(victim, 's10');
    await Promise.all(down.map((n) => servers.get(n)!.quit()));
    const out2 = join(tmp, 'out2');
    const got2 = await client.call({ op: 'get', cap: readCap, out: out2, servers: list(SERVERS) });
    expect(sha(readFileSync(out2))).toBe(sha(data));
    const rejected = got2.rejected as string[];
    expect(rejected).toHaveLength(2);
    expect(rejected.find((x) => x.startsWith(`${urlOf(flipper)}: share 7:`))).toMatch(/corrupt|share tree/);
    expect(rejected).toContain(`${urlOf(forgetter)}: listed share 8 but could not return it`);
    expect((got2.unreachable as string[]).length).toBe(6);
    // The streamed read reads only heads and tails first: the flipper fails there, the forgetter too.
    const streamed2 = await client.call({ op: 'stream', cap: readCap, out: join(tmp, 'out2s'), servers: list(SERVERS) });
    expect(sha(readFileSync(join(tmp, 'out2s')))).toBe(sha(data));
    const rejected2 = streamed2.rejected as string[];
    expect(rejected2.some((x) => x.startsWith(`${urlOf(flipper)}: share 7:`))).toBe(true);
    expect(rejected2).toContain(`${urlOf(forgetter)}: listed share 8 but could not return it`);
  }, 120_000);
});
