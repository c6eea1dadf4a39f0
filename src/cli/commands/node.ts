/**
 * Peer-node commands: `deaddrop contacts`, `deaddrop log append|show` (with attachments by
 * capability: `append --attach <file>`, `show --save-attachments <dir>`), `deaddrop whereabouts`,
 * `deaddrop node status|follow|introductions`.
 *
 * They talk to the running daemon (`deaddrop start`) over its local API: the URL from
 * `<datadir>/api.url`, the bearer token from `<datadir>/api.token`. The node lives in the daemon
 * (it holds the listening socket, the sessions and the unlocked identity), so a second process
 * opening its database would see a node that is not running; without a daemon these commands say so.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ContextFactory } from '../context.js';
import type { CliContext } from '../context.js';
import { print } from '../output.js';
import { collect, parseCount } from '../parse.js';
import { DeaddropError, type ErrorCode } from '../../util/errors.js';
import { API_TOKEN_FILE, API_URL_FILE } from '../../api/token.js';
import { type Attachment, isAttachmentName } from '../../node/log/attachments.js';
import { getToFile, putFile } from './store.js';

/** File the daemon writes when its API listens. */

function noDaemon(ctx: CliContext): DeaddropError {
  return new DeaddropError('NOT_INITIALIZED', `no daemon running for ${ctx.datadir}: start one with \`deaddrop start\``);
}

/**
 * Calls the daemon's API of this datadir. Errors come back as the daemon's DeaddropError codes.
 * @example
 * const { contacts } = await daemonApi<{ contacts: unknown[] }>(ctx, 'GET', '/node/contacts');
 */
export async function daemonApi<T>(ctx: CliContext, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const urlFile = join(ctx.datadir, API_URL_FILE);
  const tokenFile = join(ctx.datadir, API_TOKEN_FILE);
  if (!existsSync(urlFile) || !existsSync(tokenFile)) throw noDaemon(ctx);
  const base = readFileSync(urlFile, 'utf8').trim();
  const token = readFileSync(tokenFile, 'utf8').trim();
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch {
    throw noDaemon(ctx);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DeaddropError('BACKEND_ERROR', `daemon answered ${res.status} with no JSON`);
  }
  if (!res.ok) {
    const e = parsed as { error?: string; message?: string };
    const code = (e.error === 'BAD_REQUEST' || e.error === 'INTERNAL' || e.error === undefined ? 'BACKEND_ERROR' : e.error) as ErrorCode;
    throw new DeaddropError(code, e.message ?? `daemon answered ${res.status}`);
  }
  return parsed as T;
}

interface ContactJson {
  node: string;
  endpoints: string[];
  connected: boolean;
  lastSeen: number | null;
  spAddress: string | null;
}

interface EntryJson {
  author: string;
  seq: number;
  timestamp: number;
  hash: string;
  header: Record<string, unknown>;
  text?: string;
  json?: unknown;
  body: string;
  attachments?: Attachment[];
}

function entryLines(e: EntryJson): string[] {
  const content = e.json !== undefined ? JSON.stringify(e.json) : e.text !== undefined ? JSON.stringify(e.text) : `0x${e.body.slice(0, 64)}${e.body.length > 64 ? '…' : ''}`;
  return [
    `#${e.seq} ${new Date(e.timestamp).toISOString()} ${String(e.header.type)} ${content}`,
    ...(e.attachments ?? []).map((a) => `  attachment ${a.name ?? '(no name)'}${a.size === null ? '' : ` (${a.size} bytes)`}: ${a.cap}`),
  ];
}

/**
 * Saves every attachment of `entries` into `dir` under its name (`<feed prefix>-<seq>-<i>` when
 * it has none), never over an existing file. Answers one line per attachment.
 */
async function saveAttachments(ctx: CliContext, entries: readonly EntryJson[], dir: string): Promise<{ seq: number; name: string; out: string | null; size?: number; error?: string }[]> {
  const done = [];
  for (const e of entries) {
    for (const [i, a] of (e.attachments ?? []).entries()) {
      const name = a.name !== null && isAttachmentName(a.name) ? a.name : `${e.author.slice(0, 12)}-${e.seq}-${i}`;
      const out = join(dir, name);
      if (existsSync(out)) {
        done.push({ seq: e.seq, name, out: null, error: `${out} exists: not overwritten` });
        continue;
      }
      try {
        done.push({ seq: e.seq, name, out, size: await getToFile(ctx, a.cap, out) });
      } catch (err) {
        done.push({ seq: e.seq, name, out: null, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return done;
}

function contactLine(c: ContactJson): string {
  const seen = c.connected ? 'connected' : c.lastSeen === null ? 'never seen' : `seen ${new Date(c.lastSeen).toISOString()}`;
  return `${c.node} ${seen} ${c.endpoints.join(' ')}`;
}

/** The JSON body of `log append`: any JSON value. */
function parseJsonBody(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw DeaddropError.badInput('the body must be valid JSON, e.g. --json \'{"text":"hi"}\'');
  }
}

function registerLogCommands(program: Command, context: ContextFactory): void {
  const log = program.command('log').description('your signed, replicated feed and your contacts\' feeds');
  // `--json` is also the global "print JSON" flag, so `log append --type T --json '{...}'` reaches
  // this command as the flag plus a JSON operand: the body is the operand, the output is JSON.
  log
    .command('append [json]')
    .description('append an entry to your feed, e.g. `log append --type post --json \'{"text":"hi"}\'`; connected contacts receive it at once')
    .requiredOption('--type <type>', 'entry type, e.g. post or chat/message ([A-Za-z0-9._:/-], 1..64)')
    .option('--app <app>', 'application name for the header')
    .option('--text <text>', 'the body as plain text instead of JSON')
    .option('--attach <file>', 'put a file into storage and carry its read capability in the entry (repeatable; whoever reads your feed can read it)', collect, [])
    .action(async (json: string | undefined, opts: { type: string; app?: string; text?: string; attach: string[] }) => {
      const ctx = context();
      if (json !== undefined && opts.text !== undefined) throw DeaddropError.badInput('give a JSON body or --text, not both');
      for (const f of opts.attach) {
        if (!existsSync(f) || !statSync(f).isFile()) throw DeaddropError.badInput(`cannot read ${f}`);
        if (!isAttachmentName(basename(f))) throw DeaddropError.badInput(`${basename(f)} cannot be an attachment name`);
      }
      // Each file goes into storage first (kept alive by this daemon); the entry carries the caps.
      const attach = [];
      for (const f of opts.attach) attach.push({ cap: (await putFile(ctx, f, { name: basename(f), keep: true })).readCap, name: basename(f) });
      const body = {
        type: opts.type, ...(opts.app !== undefined ? { app: opts.app } : {}),
        ...(json !== undefined ? { json: parseJsonBody(json) } : {}), ...(opts.text !== undefined ? { text: opts.text } : {}),
        ...(attach.length > 0 ? { attach } : {}),
      };
      const { entry } = await daemonApi<{ entry: EntryJson }>(ctx, 'POST', '/node/log', body);
      print(ctx, entry, [`appended #${entry.seq} (${entry.hash})`, ...(entry.attachments ?? []).map((a) => `  attachment ${a.name ?? ''}: ${a.cap}`)]);
    });
  log
    .command('show [feed]')
    .description('entries of a feed: a node id (64 hex) or "self" (default), newest page by default')
    .option('--from <seq>', 'first sequence number')
    .option('--limit <n>', 'at most this many entries (default 100, max 1000)')
    .option('--save-attachments <dir>', 'fetch the attachments of the entries shown into this directory (never over existing files)')
    .action(async (feed: string | undefined, opts: { from?: string; limit?: string; saveAttachments?: string }) => {
      const ctx = context();
      const target = (feed ?? 'self').toLowerCase();
      if (target !== 'self' && !/^[0-9a-f]{64}$/.test(target)) throw DeaddropError.badInput('feed must be a node id (64 hex characters) or "self"');
      const q = new URLSearchParams();
      if (opts.from !== undefined) q.set('from', String(parseCount(opts.from, '--from', 1, Number.MAX_SAFE_INTEGER)));
      if (opts.limit !== undefined) q.set('limit', String(parseCount(opts.limit, '--limit', 1, 1000)));
      const r = await daemonApi<{ feed: { author: string; length: number; forked: boolean } | null; entries: EntryJson[] }>(
        ctx, 'GET', `/node/log/${target}${q.size > 0 ? `?${q.toString()}` : ''}`);
      const dir = opts.saveAttachments === undefined ? undefined : resolve(opts.saveAttachments);
      if (dir !== undefined && !(existsSync(dir) && statSync(dir).isDirectory())) throw DeaddropError.badInput(`no such directory: ${opts.saveAttachments}`);
      const saved = dir === undefined ? [] : await saveAttachments(ctx, r.entries, dir);
      print(ctx, dir === undefined ? r : { ...r, saved }, r.feed === null ? 'no such feed here' : [
        `feed ${r.feed.author}: ${r.feed.length} entries${r.feed.forked ? ' (FORKED: its author signed two histories)' : ''}`,
        ...r.entries.flatMap(entryLines),
        ...saved.map((x) => (x.out ? `saved #${x.seq} ${x.name} (${x.size} bytes) to ${x.out}` : `NOT saved #${x.seq} ${x.name}: ${x.error}`)),
      ]);
    });
}

interface TorStatusJson {
  enabled: boolean;
  only?: boolean;
  bootstrapped?: boolean;
  progress?: number;
  summary?: string;
  onions?: { address: string; kind: string }[];
  restarts?: number;
  lastError?: string | null;
  peers?: { node: string; via: string }[];
}

function torLines(t: TorStatusJson): string[] {
  if (!t.enabled) return ['tor: off'];
  return [
    `tor: ${t.bootstrapped ? 'bootstrapped' : `bootstrapping ${t.progress ?? 0}% (${t.summary ?? ''})`}${t.only ? ', tor only' : ''}${t.restarts ? `, restarted ${t.restarts}x` : ''}`,
    ...(t.onions ?? []).map((o) => `onion (${o.kind}): ${o.address}`),
    ...(t.peers ?? []).map((p) => `peer ${p.node.slice(0, 12)}: ${p.via === 'tor' ? 'dialed through Tor' : p.via === 'direct' ? 'dialed directly' : 'it dialed us'}`),
  ];
}

export function registerNodeCommands(program: Command, context: ContextFactory): void {
  program
    .command('contacts')
    .description('your contacts: node ids, where they are, whether connected')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ contacts: ContactJson[] }>(ctx, 'GET', '/node/contacts');
      print(ctx, r, r.contacts.length === 0 ? 'no contacts yet (they come from introductions on chain)' : r.contacts.map(contactLine));
    });

  registerLogCommands(program, context);

  program
    .command('whereabouts')
    .description('where your node says it is (signed record for your contacts), and where each contact is')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ record: { node: string; seq: number; expiresAt: number; endpoints: string[] }; contacts: { node: string; endpoints: string[]; connected: boolean }[] }>(
        ctx, 'GET', '/node/whereabouts');
      print(ctx, r, [
        `you (${r.record.node}): ${r.record.endpoints.join(' ')} (record #${r.record.seq}, valid until ${new Date(r.record.expiresAt).toISOString()})`,
        ...r.contacts.map((c) => `${c.node}: ${c.endpoints.join(' ')}${c.connected ? ' (connected)' : ''}`),
      ]);
    });

  const node = program.command('node').description('the peer node run by `deaddrop start`');
  node
    .command('status')
    .description('node id, endpoints, connected contacts and Tor (bootstrap, published onions, how peers were reached)')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ id: string; endpoints: string[]; connected: string[]; contacts: number; feeds: number }>(ctx, 'GET', '/node');
      // The same Tor report as `/status`: bootstrap, published onions, how each peer was reached.
      const { tor = { enabled: false }, secp } = await daemonApi<{ tor?: TorStatusJson; secp: string }>(ctx, 'GET', '/status');
      print(ctx, { ...r, tor, secp }, [
        `node ${r.id}`, `endpoints: ${r.endpoints.join(' ')}`, `contacts: ${r.contacts} (${r.connected.length} connected), feeds: ${r.feeds}`,
        `secp256k1: ${secp}`, ...torLines(tor),
      ]);
    });
  node
    .command('follow <feed>')
    .description('also replicate a feed that is not a contact\'s (64 hex node id)')
    .action(async (feed: string) => {
      const ctx = context();
      if (!/^[0-9a-f]{64}$/.test(feed)) throw DeaddropError.badInput('feed must be a node id (64 hex characters)');
      const r = await daemonApi<{ following: string }>(ctx, 'POST', '/node/follow', { feed });
      print(ctx, r, `following ${r.following}`);
    });
  node
    .command('introductions')
    .description('introductions found on chain and what became of them')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ introductions: { nodeKey: string; dropId: string; status: string; attempts: number; lastError: string | null }[] }>(
        ctx, 'GET', '/node/introductions');
      print(ctx, r, r.introductions.length === 0 ? 'none yet' : r.introductions.map((i) =>
        `${i.dropId} ${i.status} (${i.attempts} attempt${i.attempts === 1 ? '' : 's'})${i.lastError ? `: ${i.lastError}` : ''}`));
    });
}
