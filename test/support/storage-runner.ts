/**
 * One storage node as its own process, for the multi-host storage test
 * (test/node/storage/netns.int.test.ts): either a storage server (the project's StorageServer and
 * ShareStore, shares on disk under `dir`) or a storage client (StorageClient), driven by JSON
 * lines on stdin and reporting JSON lines on stdout. One process per network namespace.
 *
 * argv[2]: { role: "server", seed: hex, host, port, dir } | { role: "client", seed: hex }
 * stdin (server): { op: "mode", lie?: "flip" | "forget" | null, delayMs?: number } | { op: "quit" }
 *   flip: every share read comes back with one byte flipped; forget: shares are still listed but
 *   every read answers "no such share" (a server claiming a share it lost); delayMs: reads answer
 *   that late (so a test knows the liars are examined first).
 * stdin (client): every command carries `servers: [{ id: hex, url }]`, the servers to use:
 *   { op: "put", path, k, happy, n } → { ev: "put", readCap, verifyCap, storageIndex, placed: { num: url } }
 *   { op: "get", cap, out } → { ev: "get", rejected, unreachable } (the file is written to `out`)
 *   { op: "stream", cap, out } → { ev: "stream", size, rejected, unreachable } (the same through openRead + pipe)
 *   { op: "check", cap } | { op: "repair", cap } → { ev: "check" | "repair", healthy, missing, corrupt, unreachable, repaired? }
 *   { op: "quit" }
 * stdout: { ev: "ready", url? } | the answers above | { ev: "error", op, message }
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { NodeIdentity } from '../../src/node/identity.js';
import { StorageClient, type ServerInfo } from '../../src/node/storage/client.js';
import { encodeFile } from '../../src/node/storage/immutable.js';
import { ShareStore } from '../../src/node/storage/server/share-store.js';
import { StorageServer, type StorageResponse } from '../../src/node/storage/server/storage-service.js';
import { fromHex } from '../../src/util/bytes.js';

type Answer = { header: StorageResponse; body?: Uint8Array };

interface Config {
  role: 'server' | 'client';
  seed: string;
  host?: string;
  port?: number;
  dir?: string;
}

/** The real server, with a switch that makes it lie about share reads. */
class SwitchableServer extends StorageServer {
  lie: 'flip' | 'forget' | null = null;
  delayMs = 0;

  protected override async handle(req: Record<string, unknown>, body: Uint8Array): Promise<Answer> {
    if (req.op === 'get' && this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (req.op === 'get' && this.lie === 'forget') return { header: { ok: false, code: 'not-found', error: 'no such share' } };
    const out = await super.handle(req, body);
    if (req.op === 'get' && this.lie === 'flip' && out.body) {
      const bad = Uint8Array.from(out.body);
      bad[bad.length >> 1] = (bad[bad.length >> 1] as number) ^ 1;
      return { ...out, body: bad };
    }
    return out;
  }
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const identity = NodeIdentity.fromSeed(fromHex(cfg.seed));
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const HOUR = 3_600_000;

let server: SwitchableServer | undefined;
let quitting = false;
async function quit(): Promise<void> {
  if (quitting) return;
  quitting = true;
  await server?.close();
  process.exit(0);
}

interface Cmd {
  op: string;
  servers?: { id: string; url: string }[];
  path?: string;
  out?: string;
  cap?: string;
  k?: number;
  happy?: number;
  n?: number;
  lie?: 'flip' | 'forget' | null;
  delayMs?: number;
}

function client(cmd: Cmd): StorageClient {
  const infos: ServerInfo[] = (cmd.servers ?? []).map((s) => ({ id: fromHex(s.id), url: s.url }));
  return new StorageClient(identity, infos);
}

async function handle(cmd: Cmd): Promise<void> {
  if (cmd.op === 'quit') return quit();
  if (cmd.op === 'mode' && server) {
    if (cmd.lie !== undefined) server.lie = cmd.lie;
    if (cmd.delayMs !== undefined) server.delayMs = cmd.delayMs;
    return out({ ev: 'mode' });
  }
  if (cmd.op === 'put') {
    const file = encodeFile(new Uint8Array(readFileSync(cmd.path!)), { k: cmd.k ?? 3, n: cmd.n ?? 10 });
    const res = await client(cmd).put(file, new Uint8Array(randomBytes(32)), HOUR, { happy: cmd.happy ?? 7 });
    return out({ ev: 'put', readCap: file.readCap, verifyCap: file.verifyCap, storageIndex: file.storageIndex, placed: Object.fromEntries(res.placed) });
  }
  if (cmd.op === 'get') {
    const res = await client(cmd).get(cmd.cap!);
    writeFileSync(cmd.out!, res.data, { mode: 0o600 });
    return out({ ev: 'get', rejected: res.rejected, unreachable: res.unreachable });
  }
  if (cmd.op === 'stream') {
    const reader = await client(cmd).openRead(cmd.cap!);
    const fd = openSync(cmd.out!, 'w', 0o600);
    try {
      await reader.pipe((chunk) => void writeSync(fd, chunk));
    } finally {
      closeSync(fd);
    }
    return out({ ev: 'stream', size: reader.size, rejected: reader.rejected, unreachable: reader.unreachable });
  }
  if (cmd.op === 'check') return out({ ev: 'check', ...(await client(cmd).check(cmd.cap!)) });
  if (cmd.op === 'repair') {
    const r = await client(cmd).repair(cmd.cap!, new Uint8Array(randomBytes(32)), HOUR);
    return out({ ev: 'repair', ...r, repaired: Object.fromEntries(r.repaired) });
  }
  throw new Error(`unknown op ${cmd.op}`);
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd: Cmd;
  try {
    cmd = JSON.parse(line) as Cmd;
  } catch {
    return out({ ev: 'error', op: null, message: 'bad command line' });
  }
  handle(cmd).catch((err: unknown) => out({ ev: 'error', op: cmd.op, message: err instanceof Error ? err.message : String(err) }));
});
rl.on('close', () => void quit());
process.on('SIGTERM', () => void quit());

if (cfg.role === 'server') {
  server = await SwitchableServer.start(identity, new ShareStore({ dir: cfg.dir!, quotaBytes: 1 << 30 }), { host: cfg.host ?? '127.0.0.1', port: cfg.port ?? 0 });
  out({ ev: 'ready', url: server.url });
} else {
  out({ ev: 'ready' });
}
