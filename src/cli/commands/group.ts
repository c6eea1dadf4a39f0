/**
 * Group commands: `deaddrop group list|create|members|add|remove|role|leave|post|read`
 * (docs/protocol/groups.md). Like the other node commands they talk to the running daemon's API
 * (`/node/groups/*`); the node holds the groups.
 *
 * Invites: `group invite <group>` prints this node's `deaddrop:` invite and a group invite
 * `group:<group>.<token>.<inviter node>`; `group join <deaddrop-invite> <group-invite>` sends the
 * inviter an introduction drop (funded from the wallet; our node's endpoints as hints) and a join
 * request that the inviter's node honours once the drop has made the two nodes contacts.
 *
 * Files: `group share <group> <file>` stores a file and sends its read capability to the members
 * under the group's keys; `group files <group>` lists what was shared; `group fetch <group> <n>
 * --out <file>` fetches one. The capability never leaves the daemon.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { API_TOKEN_FILE, API_URL_FILE } from '../../api/token.js';
import type { CliContext } from '../context.js';
import type { ContextFactory } from '../context.js';
import { print } from '../output.js';
import { collect, parseCount } from '../parse.js';
import { DeaddropError, type ErrorCode } from '../../util/errors.js';
import { daemonApi } from './node.js';

interface GroupJson {
  group: string;
  name: string;
  status: string;
  members: number;
}

interface MessageJson {
  id: number;
  sender: string;
  receivedAt: number;
  text: string;
}

function hex64(value: string, what: string): string {
  const v = value.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(v)) throw DeaddropError.badInput(`${what} must be 64 hex characters`);
  return v;
}

/** A daemon call whose body or answer is raw bytes (daemonApi speaks JSON only). */
async function daemonBytes(ctx: CliContext, method: 'GET' | 'POST', path: string, body?: Uint8Array): Promise<Response> {
  const urlFile = join(ctx.datadir, API_URL_FILE);
  const tokenFile = join(ctx.datadir, API_TOKEN_FILE);
  const noDaemon = new DeaddropError('NOT_INITIALIZED', `no daemon running for ${ctx.datadir}: start one with \`deaddrop start\``);
  if (!existsSync(urlFile) || !existsSync(tokenFile)) throw noDaemon;
  let res: Response;
  try {
    res = await fetch(`${readFileSync(urlFile, 'utf8').trim()}${path}`, {
      method,
      headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`, ...(body ? { 'content-type': 'application/octet-stream' } : {}) },
      ...(body ? { body } : {}),
    });
  } catch {
    throw noDaemon;
  }
  if (!res.ok) {
    let e: { error?: string; message?: string } = {};
    try {
      e = (await res.json()) as typeof e;
    } catch {
      // no JSON body
    }
    if (res.status === 413) throw DeaddropError.badInput('the file is too large for the daemon\'s upload limit');
    const code = (e.error === undefined || e.error === 'BAD_REQUEST' || e.error === 'INTERNAL' ? 'BACKEND_ERROR' : e.error) as ErrorCode;
    throw new DeaddropError(code, e.message ?? `daemon answered ${res.status}`);
  }
  return res;
}

export function registerGroupCommands(program: Command, context: ContextFactory): void {
  const group = program.command('group').description('groups whose messages only their members read (docs/protocol/groups.md)');

  group
    .command('list')
    .description('your groups')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ groups: GroupJson[] }>(ctx, 'GET', '/node/groups');
      print(ctx, r, r.groups.length === 0 ? 'no groups yet (`deaddrop group create <name>`)' : r.groups.map((g) => `${g.group} ${JSON.stringify(g.name)} ${g.status}, ${g.members} members`));
    });

  group
    .command('create <name>')
    .description('create a group with you as its admin; prints its id')
    .action(async (name: string) => {
      const ctx = context();
      const r = await daemonApi<{ group: string }>(ctx, 'POST', '/node/groups', { name });
      print(ctx, r, r.group);
    });

  group
    .command('members <group>')
    .description('members of a group and their roles')
    .action(async (g: string) => {
      const ctx = context();
      const r = await daemonApi<{ members: { member: string; role: string }[] }>(ctx, 'GET', `/node/groups/${hex64(g, 'group')}/members`);
      print(ctx, r, r.members.map((m) => `${m.member} ${m.role}`));
    });

  group
    .command('add <group> <node>')
    .description('add a contact (its node id, see `deaddrop contacts`) to a group; admins only')
    .option('--admin', 'as an admin')
    .action(async (g: string, node: string, opts: { admin?: boolean }) => {
      const ctx = context();
      const r = await daemonApi<{ members: number }>(ctx, 'POST', `/node/groups/${hex64(g, 'group')}/add`, { member: hex64(node, 'node'), role: opts.admin ? 'admin' : 'member' });
      print(ctx, r, `added; ${r.members} members`);
    });

  group
    .command('remove <group> <node>')
    .description('remove a member; every remaining member re-keys before it next sends, so it reads nothing sent afterwards')
    .action(async (g: string, node: string) => {
      const ctx = context();
      const r = await daemonApi<{ members: number }>(ctx, 'POST', `/node/groups/${hex64(g, 'group')}/remove`, { member: hex64(node, 'node') });
      print(ctx, r, `removed; ${r.members} members`);
    });

  group
    .command('role <group> <node> <role>')
    .description('make a member an admin or a plain member; admins only')
    .action(async (g: string, node: string, role: string) => {
      const ctx = context();
      if (role !== 'admin' && role !== 'member') throw DeaddropError.badInput('role must be admin or member');
      const r = await daemonApi<{ members: number }>(ctx, 'POST', `/node/groups/${hex64(g, 'group')}/role`, { member: hex64(node, 'node'), role });
      print(ctx, r, `role set to ${role}`);
    });

  group
    .command('leave <group>')
    .description('leave a group')
    .action(async (g: string) => {
      const ctx = context();
      const r = await daemonApi<Record<string, unknown>>(ctx, 'POST', `/node/groups/${hex64(g, 'group')}/leave`);
      print(ctx, r, 'left');
    });

  group
    .command('post <group> <text>')
    .description('post a message to a group')
    .action(async (g: string, text: string) => {
      const ctx = context();
      const r = await daemonApi<{ id: number }>(ctx, 'POST', `/node/groups/${hex64(g, 'group')}/post`, { text });
      print(ctx, r, `posted #${r.id}`);
    });

  group
    .command('read <group>')
    .description('messages of a group, oldest first')
    .option('--after <id>', 'only messages after this id')
    .option('--limit <n>', 'at most this many (default 100, max 999)')
    .action(async (g: string, opts: { after?: string; limit?: string }) => {
      const ctx = context();
      const q = new URLSearchParams();
      if (opts.after !== undefined) q.set('after', String(parseCount(opts.after, '--after', 0, Number.MAX_SAFE_INTEGER)));
      if (opts.limit !== undefined) q.set('limit', String(parseCount(opts.limit, '--limit', 1, 999)));
      const r = await daemonApi<{ messages: MessageJson[] }>(ctx, 'GET', `/node/groups/${hex64(g, 'group')}/messages${q.size > 0 ? `?${q.toString()}` : ''}`);
      print(ctx, r, r.messages.length === 0 ? 'no messages' : r.messages.map((m) => `#${m.id} ${new Date(m.receivedAt).toISOString()} ${m.sender.slice(0, 12)}: ${m.text}`));
    });

  group
    .command('share <group> <file>')
    .description('share a file with a group: stored encrypted, its read capability sent to the members under the group\'s keys')
    .option('--name <name>', 'name the members see (default: the file name)')
    .action(async (g: string, file: string, o: { name?: string }) => {
      const ctx = context();
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch {
        throw DeaddropError.badInput(`cannot read ${file}`);
      }
      const q = new URLSearchParams({ name: o.name ?? basename(file) });
      const r = (await (await daemonBytes(ctx, 'POST', `/node/groups/${hex64(g, 'group')}/share?${q.toString()}`, data)).json()) as { id: number; size: number };
      print(ctx, r, `shared as file #${r.id} (${r.size} bytes)`);
    });

  group
    .command('files <group>')
    .description('files shared with a group that you can read')
    .action(async (g: string) => {
      const ctx = context();
      const r = await daemonApi<{ files: { id: number; sender: string; receivedAt: number; name: string; size: number }[] }>(ctx, 'GET', `/node/groups/${hex64(g, 'group')}/files`);
      print(ctx, r, r.files.length === 0 ? 'no files' : r.files.map((f) => `#${f.id} ${JSON.stringify(f.name)} ${f.size} bytes, from ${f.sender.slice(0, 12)} at ${new Date(f.receivedAt).toISOString()}`));
    });

  group
    .command('fetch <group> <n>')
    .description('fetch, verify and decrypt file #n of a group (see `group files`)')
    .requiredOption('--out <file>', 'where to write it (never over an existing file without --force)')
    .option('--force', 'overwrite --out')
    .action(async (g: string, n: string, o: { out: string; force?: boolean }) => {
      const ctx = context();
      const id = parseCount(n.replace(/^#/, ''), 'n', 1, Number.MAX_SAFE_INTEGER);
      const out = resolve(o.out);
      if (!existsSync(dirname(out))) throw DeaddropError.badInput(`no such directory: ${dirname(out)}`);
      if (existsSync(out) && !o.force) throw DeaddropError.badInput(`${o.out} exists: use --force to overwrite it`);
      const data = new Uint8Array(await (await daemonBytes(ctx, 'GET', `/node/groups/${hex64(g, 'group')}/files/${id}`)).arrayBuffer());
      writeFileSync(out, data, { mode: 0o600 });
      print(ctx, { out, size: data.length }, `wrote ${data.length} bytes to ${o.out}`);
    });

  group
    .command('invite <group>')
    .description('a single-use invite to a group: give both lines to the person (admins only)')
    .option('--ttl <seconds>', 'lifetime of the invite in seconds (default 7 days)')
    .action(async (g: string, opts: { ttl?: string }) => {
      const ctx = context();
      const body = opts.ttl === undefined ? {} : { ttlSeconds: parseCount(opts.ttl, '--ttl', 60, 365 * 24 * 3600) };
      const inv = await daemonApi<{ group: string; token: string; inviter: string; expiresAt: number }>(ctx, 'POST', `/node/groups/${hex64(g, 'group')}/invite`, body);
      const { uri } = await daemonApi<{ uri: string }>(ctx, 'GET', '/invite');
      const groupInvite = `group:${inv.group}.${inv.token}.${inv.inviter}`;
      print(ctx, { ...inv, uri, groupInvite }, [uri, groupInvite, `(single use, valid until ${new Date(inv.expiresAt).toISOString()}; the joiner runs \`deaddrop group join <both>\`)`]);
    });

  group
    .command('join <invite> <group-invite>')
    .description('join with an invite from `group invite`: sends the inviter an introduction drop (from your wallet) and a join request')
    .option('--endpoint <hint>', 'where the inviter can reach your node, e.g. ws://1.2.3.4:9000 (repeatable); default: mixnet:<your provider> (no IP address), as `drop send`', collect, [])
    .action(async (invite: string, groupInvite: string, opts: { endpoint: string[] }) => {
      const ctx = context();
      const m = /^group:([0-9a-f]{64})\.([0-9a-f]{32})\.([0-9a-f]{64})$/.exec(groupInvite.trim().toLowerCase());
      if (!m) throw DeaddropError.badInput('the group invite must look like group:<64 hex>.<32 hex>.<64 hex> (from `deaddrop group invite`)');
      const [, group, token, inviter] = m as unknown as [string, string, string, string];
      await daemonApi(ctx, 'POST', '/node/groups/join', { inviter, group, token });
      // No endpoints given: the drop API's default, which never puts this node's IP address in the
      // drop (the mixnet hint, or the onion with Tor); group traffic reaches members through providers.
      const sent = await daemonApi<{ txid: string }>(ctx, 'POST', '/drops/send', { recipient: invite, ...(opts.endpoint.length > 0 ? { endpoints: opts.endpoint } : {}) });
      print(ctx, { group, requested: true, txid: sent.txid }, `join requested; introduction drop ${sent.txid} sent: you join once it confirms and the inviter's node reaches yours`);
    });
}
