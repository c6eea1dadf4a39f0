/**
 * Storage commands: `deaddrop store put <file>` (prints the read capability; progress on stderr),
 * `store get <cap> --out <file>`, `store check <cap>`, `store repair <cap>`, `store ls`,
 * `store keep <cap>`, `store server status`. They talk to the running daemon's API; progress comes
 * from its `/events` websocket (`storage.progress` events of the operation id the CLI chose).
 * Capabilities are secrets: give them as `@file` or `-` (stdin) to keep them out of argv, or inline;
 * they never appear in URLs.
 */
import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { basename, dirname, resolve } from 'node:path';
import WebSocket from 'ws';
import type { CliContext, ContextFactory } from '../context.js';
import { print } from '../output.js';
import { DeaddropError, type ErrorCode } from '../../util/errors.js';
import { API_TOKEN_FILE, API_URL_FILE } from '../../api/token.js';
import { daemonApi } from './node.js';
import type { ContentStore } from '../../feature/content-store.js';
import { fromHex, toHex } from '../../util/bytes.js';
import { join } from 'node:path';

interface Api {
  readonly base: string;
  readonly token: string;
}

function api(ctx: CliContext): Api {
  const urlFile = join(ctx.datadir, API_URL_FILE);
  const tokenFile = join(ctx.datadir, API_TOKEN_FILE);
  if (!existsSync(urlFile) || !existsSync(tokenFile)) throw new DeaddropError('NOT_INITIALIZED', `no daemon running for ${ctx.datadir}: start one with \`deaddrop start\``);
  return { base: readFileSync(urlFile, 'utf8').trim(), token: readFileSync(tokenFile, 'utf8').trim() };
}

/**
 * The datadir's running daemon's storage as a content store, for one-shot commands (`paypub
 * publish`, `paypub verify`…) that run beside it; null when no daemon runs.
 */
export function daemonContentStore(ctx: CliContext): ContentStore | null {
  let a: Api;
  try {
    a = api(ctx);
  } catch {
    return null;
  }
  return {
    kind: 'daemon',
    put: async (data, opts) => {
      const q = new URLSearchParams({ keep: 'true', ...(opts?.name ? { name: opts.name } : {}) });
      const r = (await (await call(a, `/storage/put?${q.toString()}`, { method: 'POST', body: data, type: 'application/octet-stream' })).json()) as { readCap: string; size: number; holders?: { id: string; url: string }[] };
      return { readCap: r.readCap, size: r.size, servers: (r.holders ?? []).map((h) => ({ id: fromHex(h.id), url: h.url })) };
    },
    get: async (cap, opts) => {
      const servers = opts?.servers?.map((h) => ({ id: toHex(h.id), url: h.url }));
      const body = JSON.stringify({ cap, ...(servers && servers.length > 0 ? { servers } : {}) });
      return new Uint8Array(await (await call(a, '/storage/get', { method: 'POST', body, type: 'application/json' })).arrayBuffer());
    },
  };
}

/** A capability given inline or as `@path`; anything that is not one is a clear BAD_INPUT. */
function capArg(value: string): string {
  let cap = value.trim();
  if (cap === '-') {
    // From stdin: keeps the secret out of argv (visible to every local user in `ps`).
    try {
      cap = readFileSync(0, 'utf8').trim();
    } catch {
      throw DeaddropError.badInput('cannot read a capability from stdin');
    }
  } else if (cap.startsWith('@')) {
    try {
      cap = readFileSync(cap.slice(1), 'utf8').trim();
    } catch {
      throw DeaddropError.badInput(`cannot read a capability from ${value.slice(1)}`);
    }
  }
  if (!/^[a-z0-9-]+:/.test(cap) || /\s/.test(cap)) throw DeaddropError.badInput('not a capability: expected dd-chk:r:… or dd-tahoe:… (read), dd-chk:v:… or dd-tahoe-v:… (verify), inline or as @file');
  return cap;
}

/** Shows `storage.progress` of `op` as a one-line bar on stderr (only on a terminal, or when asked). */
function progressBar(a: Api, op: string): { ready: Promise<void>; stop: () => Promise<void> } {
  const ws = new WebSocket(`${a.base.replace(/^http/, 'ws')}/events?types=storage.`, { headers: { authorization: `Bearer ${a.token}` } });
  const tty = process.stderr.isTTY === true;
  let drawn = false;
  let ended = (): void => undefined;
  const result = new Promise<void>((res) => (ended = res));
  ws.on('message', (raw: Buffer) => {
    try {
      const ev = JSON.parse(raw.toString()) as { type: string; data: { op?: string; phase?: string; done?: number; total?: number } };
      const d = ev.data;
      if (d.op === op && ev.type !== 'storage.progress') ended();
      if (d.op !== op || typeof d.done !== 'number' || typeof d.total !== 'number' || d.total <= 0) return;
      const width = 30;
      const filled = Math.round((width * d.done) / d.total);
      const line = `${String(d.phase).padEnd(8)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${d.done}/${d.total}`;
      process.stderr.write(tty ? `\r${line}` : `${line}\n`);
      drawn = true;
    } catch {
      // not an event of ours
    }
  });
  const ready = new Promise<void>((res) => {
    ws.once('open', () => res());
    ws.once('error', () => res()); // no bar, the operation still runs
  });
  return {
    ready,
    // The answer can overtake the last events on the websocket: wait (briefly) for the result event.
    stop: async () => {
      if (ws.readyState === WebSocket.OPEN) await Promise.race([result, new Promise((r) => setTimeout(r, 1000).unref())]);
      if (drawn && tty) process.stderr.write('\n');
      ws.terminate();
    },
  };
}

async function call(a: Api, path: string, init: { method: 'POST'; body: Uint8Array | string | { file: string; size: number }; type: string }): Promise<Response> {
  let res: Response;
  const b = init.body;
  try {
    // A file goes as a stream (the daemon spools it to disk): never whole in this process's memory.
    const body = typeof b === 'string' || b instanceof Uint8Array ? b : (Readable.toWeb(createReadStream(b.file)) as ReadableStream<Uint8Array>);
    const length: Record<string, string> = typeof b === 'string' || b instanceof Uint8Array ? {} : { 'content-length': String(b.size) };
    res = await fetch(`${a.base}${path}`, { method: init.method, headers: { authorization: `Bearer ${a.token}`, 'content-type': init.type, ...length }, body, duplex: 'half' } as RequestInit);
  } catch {
    throw new DeaddropError('NOT_INITIALIZED', 'the daemon does not answer: start one with `deaddrop start`');
  }
  if (!res.ok) {
    let e: { error?: string; message?: string } = {};
    try {
      e = (await res.json()) as typeof e;
    } catch {
      // no JSON body
    }
    if (res.status === 413) throw DeaddropError.badInput(`the file is too large for the daemon's upload limit (${e.message ?? '413'})`);
    const code = (e.error === undefined || e.error === 'BAD_REQUEST' || e.error === 'INTERNAL' ? 'BACKEND_ERROR' : e.error) as ErrorCode;
    throw new DeaddropError(code, e.message ?? `daemon answered ${res.status}`);
  }
  return res;
}

export interface PutJson { readCap: string; storageIndex: string; size: number; backend: string; kept: boolean }

/** Stores a file through the daemon (`store put`), with a progress bar; answers its read capability. */
export async function putFile(ctx: CliContext, file: string, o: { name: string; keep: boolean; shares?: string }): Promise<PutJson> {
  let size: number;
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
    size = statSync(file).size;
    closeSync(openSync(file, 'r'));
  } catch {
    throw DeaddropError.badInput(`cannot read ${file}`);
  }
  const a = api(ctx);
  const op = randomBytes(16).toString('hex');
  const q = new URLSearchParams({ op, name: o.name, keep: o.keep ? '1' : '0', ...(o.shares ? { shares: o.shares } : {}) });
  const bar = progressBar(a, op);
  await bar.ready;
  try {
    return (await (await call(a, `/storage/put?${q.toString()}`, { method: 'POST', body: { file, size }, type: 'application/octet-stream' })).json()) as PutJson;
  } finally {
    await bar.stop();
  }
}

/**
 * Fetches a file by its read capability into `out` (`store get`), with a progress bar. Streamed to
 * a temporary file next to `out` (never the whole file in memory here) and renamed into place only
 * once complete, so a failed fetch leaves no half file under the name. Answers the size.
 */
export async function getToFile(ctx: CliContext, cap: string, out: string): Promise<number> {
  const a = api(ctx);
  const op = randomBytes(16).toString('hex');
  const bar = progressBar(a, op);
  await bar.ready;
  const part = `${out}.${op.slice(0, 8)}.part`;
  let size = 0;
  try {
    const res = await call(a, '/storage/get', { method: 'POST', body: JSON.stringify({ cap, op }), type: 'application/json' });
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(res.body as never), count, createWriteStream(part, { mode: 0o600 }));
    renameSync(part, out);
  } finally {
    rmSync(part, { force: true });
    await bar.stop();
  }
  return size;
}

interface CheckJson { storageIndex: string; healthy: boolean; sharesFound: number; sharesNeeded: number; sharesTotal: number; repaired: number; problems: string[] }

function checkLines(r: CheckJson): string[] {
  return [
    `${r.healthy ? 'healthy' : 'NOT healthy'}: ${r.sharesFound} of ${r.sharesTotal} shares (${r.sharesNeeded} needed)${r.repaired ? `; repaired ${r.repaired}` : ''}`,
    ...r.problems.map((p) => `  ${p}`),
  ];
}

export function registerStoreCommands(program: Command, context: ContextFactory): void {
  const store = program.command('store').description('encrypted, erasure-coded files on storage servers your contacts run (or a Tahoe-LAFS grid)');

  store
    .command('put <file>')
    .description('encrypt and store a file; prints its read capability (a secret: whoever has it can read the file)')
    .option('--name <name>', 'name shown by `store ls` (default: the file name)')
    .option('--shares <k/happy/n>', 'shares needed / servers of happiness / shares total (default the daemon\'s, 3/7/10)')
    .option('--no-keep', 'do not renew, check and repair this file on schedule')
    .action(async (file: string, o: { name?: string; shares?: string; keep: boolean }) => {
      const ctx = context();
      const r = await putFile(ctx, file, { name: o.name ?? basename(file), keep: o.keep, ...(o.shares ? { shares: o.shares } : {}) });
      print(ctx, r, r.readCap);
    });

  store
    .command('get <cap>')
    .description('fetch, verify and decrypt a file by its read capability (@file or - for stdin keep it out of ps; or inline)')
    .requiredOption('--out <file>', 'where to write it (never over an existing file without --force)')
    .option('--force', 'overwrite --out')
    .action(async (capText: string, o: { out: string; force?: boolean }) => {
      const ctx = context();
      const cap = capArg(capText);
      const out = resolve(o.out);
      if (!existsSync(dirname(out))) throw DeaddropError.badInput(`no such directory: ${dirname(out)}`);
      if (existsSync(out) && !o.force) throw DeaddropError.badInput(`${o.out} exists: use --force to overwrite it`);
      const size = await getToFile(ctx, cap, out);
      print(ctx, { out, size }, `wrote ${size} bytes to ${o.out}`);
    });

  for (const action of ['check', 'repair'] as const) {
    store
      .command(`${action} <cap>`)
      .description(action === 'check' ? 'which shares of a file exist and verify (read or verify capability)' : 'regenerate missing or corrupt shares onto fresh servers (a verify capability is enough)')
      .action(async (capText: string) => {
        const ctx = context();
        const r = await daemonApi<CheckJson>(ctx, 'POST', `/storage/${action}`, { cap: capArg(capText) });
        print(ctx, r, checkLines(r));
      });
  }

  store
    .command('keep <cap>')
    .description('keep a file put elsewhere alive (renew leases, check and repair on schedule)')
    .option('--name <name>', 'name shown by `store ls`')
    .action(async (capText: string, o: { name?: string }) => {
      const ctx = context();
      const r = await daemonApi<{ file: { storageIndex: string } }>(ctx, 'POST', '/storage/files', { cap: capArg(capText), ...(o.name ? { name: o.name } : {}) });
      print(ctx, r, `keeping ${r.file.storageIndex}`);
    });

  store
    .command('ls')
    .description('files this node keeps alive, with their read capabilities and last check')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ files: { storageIndex: string; name: string | null; size: number; cap: string | null; healthy: boolean | null; checkedAt: number | null }[] }>(ctx, 'GET', '/storage/files');
      print(ctx, r, r.files.length === 0 ? 'no kept files' : r.files.map((f) =>
        `${f.name ?? f.storageIndex} ${f.size} bytes, ${f.healthy === null ? 'not checked yet' : f.healthy ? 'healthy' : 'NOT healthy'}${f.checkedAt ? ` (${new Date(f.checkedAt).toISOString()})` : ''}\n  ${f.cap ?? '(capability sealed under another identity)'}`));
    });

  const server = store.command('server').description('this node\'s storage server');
  server
    .command('status')
    .description('quota, used space, shares, leases, the announcement and the storage servers this node verified')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ serving: boolean; url: string | null; quotaBytes: number | null; usedBytes: number | null; shares: number | null; activeLeases: number | null; announcedUntil: number | null; backend: string; knownServers: { id: string; endpoint: string; free: number; self: boolean; provider?: string | null }[]; keptFiles: number; reads?: string; mixnet?: { reads: { requests: number; failed: number } | null; served: { answered: number } | null } }>(ctx, 'GET', '/storage/server');
      print(ctx, r, [
        r.serving ? `serving on ${r.url}: ${r.usedBytes} of ${r.quotaBytes} bytes used, ${r.shares} shares, ${r.activeLeases} files with live leases; announced until ${r.announcedUntil ? new Date(r.announcedUntil).toISOString() : '-'}` : 'not a storage server (deaddrop start --storage-server)',
        `backend: ${r.backend}; kept files: ${r.keptFiles}`,
        `reads: ${r.reads ?? 'auto'}; through mixnet providers: ${r.mixnet?.reads?.requests ?? 0} requests sent (${r.mixnet?.reads?.failed ?? 0} unanswered), ${r.mixnet?.served?.answered ?? 0} answered`,
        `verified storage servers: ${r.knownServers.length}`,
        ...r.knownServers.map((s) => `  ${s.id.slice(0, 12)} ${s.endpoint} ${s.free} bytes free${s.provider ? `, mailbox at provider ${s.provider.slice(0, 12)}` : ''}${s.self ? ' (this node)' : ''}`),
      ]);
    });
}
