/**
 * Group API routes (`/node/groups/*`, behind the bearer token; docs/protocol/groups.md). Keys and
 * group ids travel as lower-case hex. Changes and messages reach the other members through the
 * node's feeds (./service.ts); arrivals reach the `/events` websocket as `node.group.joined`,
 * `node.group.changed` and `node.group.message`.
 *
 * - `GET  /node/groups`: our groups, with name, status and member count
 * - `POST /node/groups`: `{ name }` creates a group with us as its admin
 * - `GET  /node/groups/:group/members`: members and roles
 * - `POST /node/groups/:group/add`: `{ member, role? }` (the new member must be a contact)
 * - `POST /node/groups/:group/remove`: `{ member }`
 * - `POST /node/groups/:group/role`: `{ member, role }`
 * - `POST /node/groups/:group/leave`
 * - `POST /node/groups/:group/post`: `{ text }`
 * - `GET  /node/groups/:group/messages?after&limit`: messages read and written, oldest first
 * - `POST /node/groups/:group/invite`: `{ ttlSeconds? }` a single-use invite token (admins only);
 *   the joiner also needs this node's `deaddrop:` invite (`GET /invite`)
 * - `POST /node/groups/join`: `{ inviter, group, token }` asks the inviter to add us; it does once
 *   our nodes are contacts (after our introduction drop reached it)
 * - `POST /node/groups/:group/share?name=`: the file as an `application/octet-stream` body; puts it
 *   into storage and sends its read capability to the group, wrapped under our sender key
 *   (`node.group.file` on every member, without the capability)
 * - `GET  /node/groups/:group/files`: files shared with the group that we can read (no capabilities)
 * - `GET  /node/groups/:group/files/:id`: fetches, verifies and decrypts one (octet-stream answer)
 */
import type { FastifyInstance } from 'fastify';
import { fromHex, toHex } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { MAX_NAME_BYTES, type Role } from './op-codec.js';
import { MAX_UPLOAD_BYTES } from '../storage/routes.js';
import { MAX_FILE_NAME_BYTES, decodeFileShare } from './files.js';
import type { GroupService } from './service.js';

export interface GroupRouteOptions {
  /** The running service, or undefined when the node is not running (routes answer NOT_INITIALIZED). */
  readonly service: () => GroupService | undefined;
}

const hex32 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const token32 = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
const role = { type: 'string', enum: ['member', 'admin'] } as const;
const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const errors = { 400: error, 404: error, 409: error } as const;
const groupParams = { type: 'object', required: ['group'], properties: { group: hex32 } } as const;
const ok = { 200: { type: 'object', properties: { group: hex32, members: { type: 'integer' } } }, ...errors } as const;
const messageSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' }, sender: hex32, generation: { type: 'integer' }, index: { type: 'integer' }, receivedAt: { type: 'integer' }, text: { type: 'string' },
    file: { type: 'object', properties: { name: { type: 'string' }, size: { type: 'integer' } } },
  },
} as const;
const fileSchema = { type: 'object', properties: { id: { type: 'integer' }, sender: hex32, receivedAt: { type: 'integer' }, name: { type: 'string' }, size: { type: 'integer' } } } as const;

/** Longest message text the API takes (UTF-8 bytes; the protocol allows 64 KiB of plaintext). */
export const MAX_GROUP_TEXT = 16 * 1024;

function noNode(): DeaddropError {
  return new DeaddropError('NOT_INITIALIZED', 'the peer node is not running: it needs an unlocked wallet (start the daemon with DEADDROP_PASSPHRASE set)');
}

const textDecoder = new TextDecoder('utf-8', { fatal: false });

/** The group route group (register with prefix '/node/groups'). */
export async function groupRoutes(app: FastifyInstance, opts: GroupRouteOptions): Promise<void> {
  const need = (): GroupService => {
    const s = opts.service();
    if (!s) throw noNode();
    return s;
  };
  const groupOf = (req: { params: unknown }): Uint8Array => fromHex((req.params as { group: string }).group);
  const summary = (s: GroupService, group: Uint8Array): Record<string, unknown> => ({ group: toHex(group), members: s.member.members(group).length });

  app.get('/', {
    schema: {
      summary: 'Our groups',
      response: {
        200: { type: 'object', properties: { groups: { type: 'array', items: { type: 'object', properties: { group: hex32, name: { type: 'string' }, status: { type: 'string' }, members: { type: 'integer' } } } } } },
        409: error,
      },
    },
  }, async () => ({ groups: need().member.groups().map((g) => ({ ...g, group: toHex(g.group) })) }));

  app.post('/', {
    schema: {
      summary: 'Create a group with this node as its admin',
      body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', maxLength: MAX_NAME_BYTES } } },
      response: ok,
    },
  }, async (req) => {
    const s = need();
    const name = (req.body as { name: string }).name;
    if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) throw DeaddropError.badInput(`name: at most ${MAX_NAME_BYTES} UTF-8 bytes`);
    return summary(s, s.create(name));
  });

  app.get('/:group/members', {
    schema: {
      summary: 'Members of a group and their roles',
      params: groupParams,
      response: { 200: { type: 'object', properties: { group: hex32, members: { type: 'array', items: { type: 'object', properties: { member: hex32, role } } } } }, ...errors },
    },
  }, async (req) => {
    const group = groupOf(req);
    return { group: toHex(group), members: need().member.members(group).map((m) => ({ member: toHex(m.member), role: m.role })) };
  });

  const memberBody = (withRole: 'optional' | 'required') => ({
    type: 'object', required: withRole === 'required' ? ['member', 'role'] : ['member'], additionalProperties: false, properties: { member: hex32, role },
  }) as const;

  app.post('/:group/add', { schema: { summary: 'Add a contact to a group (admins only)', params: groupParams, body: memberBody('optional'), response: ok } }, async (req) => {
    const s = need();
    const b = req.body as { member: string; role?: Role };
    s.add(groupOf(req), fromHex(b.member), b.role ?? 'member');
    return summary(s, groupOf(req));
  });

  app.post('/:group/remove', { schema: { summary: 'Remove a member (admins only); every remaining member re-keys before it next sends', params: groupParams, body: memberBody('optional'), response: ok } }, async (req) => {
    const s = need();
    s.remove(groupOf(req), fromHex((req.body as { member: string }).member));
    return summary(s, groupOf(req));
  });

  app.post('/:group/role', { schema: { summary: 'Change a member\'s role (admins only)', params: groupParams, body: memberBody('required'), response: ok } }, async (req) => {
    const s = need();
    const b = req.body as { member: string; role: Role };
    s.setRole(groupOf(req), fromHex(b.member), b.role);
    return summary(s, groupOf(req));
  });

  app.post('/:group/leave', { schema: { summary: 'Leave a group', params: groupParams, response: ok } }, async (req) => {
    const s = need();
    s.leave(groupOf(req));
    return summary(s, groupOf(req));
  });

  app.post('/:group/post', {
    schema: {
      summary: 'Post a text message to a group',
      params: groupParams,
      body: { type: 'object', required: ['text'], additionalProperties: false, properties: { text: { type: 'string', maxLength: MAX_GROUP_TEXT } } },
      response: { 200: { type: 'object', properties: { group: hex32, id: { type: 'integer' } } }, ...errors },
    },
  }, async (req) => {
    const text = (req.body as { text: string }).text;
    if (new TextEncoder().encode(text).length > MAX_GROUP_TEXT) throw DeaddropError.badInput(`text: at most ${MAX_GROUP_TEXT} UTF-8 bytes`);
    return { group: toHex(groupOf(req)), id: need().post(groupOf(req), text) };
  });

  app.post('/:group/invite', {
    schema: {
      summary: 'A single-use invite token for a group (admins only)',
      params: groupParams,
      body: { anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, properties: { ttlSeconds: { type: 'integer', minimum: 60, maximum: 365 * 24 * 3600 } } }] },
      response: { 200: { type: 'object', properties: { group: hex32, token: token32, inviter: hex32, expiresAt: { type: 'integer' } } }, ...errors },
    },
  }, async (req) => {
    const ttl = (req.body as { ttlSeconds?: number } | null)?.ttlSeconds;
    const inv = need().createInvite(groupOf(req), ttl === undefined ? undefined : ttl * 1000);
    return { group: toHex(inv.group), token: toHex(inv.token), inviter: toHex(inv.inviter), expiresAt: inv.expiresAt };
  });

  app.post('/join', {
    schema: {
      summary: 'Ask the inviter to add us to a group with an invite token',
      body: { type: 'object', required: ['inviter', 'group', 'token'], additionalProperties: false, properties: { inviter: hex32, group: hex32, token: token32 } },
      response: { 200: { type: 'object', properties: { requested: { type: 'boolean' }, group: hex32 } }, ...errors },
    },
  }, async (req) => {
    const b = req.body as { inviter: string; group: string; token: string };
    need().requestJoin(fromHex(b.inviter), fromHex(b.group), fromHex(b.token));
    return { requested: true, group: b.group };
  });

  app.get('/:group/messages', {
    schema: {
      summary: 'Messages read and written in a group, oldest first',
      params: groupParams,
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { after: { type: 'string', pattern: '^[0-9]{1,15}$' }, limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$' } },
      },
      response: { 200: { type: 'object', properties: { group: hex32, messages: { type: 'array', items: messageSchema } } }, ...errors },
    },
  }, async (req) => {
    const q = req.query as { after?: string; limit?: string };
    const group = groupOf(req);
    const s = need();
    s.member.members(group); // NOT_FOUND for a group we do not know
    const msgs = s.member.read(group, q.after === undefined ? 0 : Number(q.after), q.limit === undefined ? 100 : Number(q.limit));
    return {
      group: toHex(group),
      messages: msgs.map((m) => {
        const base = { id: m.id, sender: toHex(m.sender), generation: m.generation, index: m.index, receivedAt: m.receivedAt };
        const f = decodeFileShare(m.plaintext);
        // a file share shows as a line of text; its capability stays in the node
        return f ? { ...base, text: `[file #${m.id}] ${f.name} (${f.size} bytes)`, file: { name: f.name, size: f.size } } : { ...base, text: textDecoder.decode(m.plaintext) };
      }),
    };
  });

  app.register(async (upload) => {
    upload.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_UPLOAD_BYTES }, (_req, body, done) => done(null, body));
    upload.post('/:group/share', {
      bodyLimit: MAX_UPLOAD_BYTES,
      schema: {
        summary: 'Share a file with a group (application/octet-stream body): stored, and its read capability sent to the members under our sender key',
        params: groupParams,
        querystring: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: MAX_FILE_NAME_BYTES } } },
        response: { 200: { type: 'object', properties: { group: hex32, id: { type: 'integer' }, storageIndex: { type: 'string' }, size: { type: 'integer' } } }, ...errors },
      },
    }, async (req) => {
      const body = req.body;
      if (!(body instanceof Uint8Array)) throw DeaddropError.badInput('send the file as an application/octet-stream body');
      const r = await need().share(groupOf(req), new Uint8Array(body.buffer, body.byteOffset, body.length), (req.query as { name: string }).name);
      return { group: toHex(groupOf(req)), ...r };
    });
  });

  app.get('/:group/files', {
    schema: {
      summary: 'Files shared with a group that this node can read, oldest first (capabilities stay in the node)',
      params: groupParams,
      response: { 200: { type: 'object', properties: { group: hex32, files: { type: 'array', items: fileSchema } } }, ...errors },
    },
  }, async (req) => {
    const group = groupOf(req);
    return { group: toHex(group), files: need().files(group).map((f) => ({ ...f, sender: toHex(f.sender) })) };
  });

  app.get('/:group/files/:id', {
    schema: {
      summary: 'Fetch, verify and decrypt a file shared with a group (application/octet-stream answer)',
      params: { type: 'object', required: ['group', 'id'], properties: { group: hex32, id: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } } },
      response: { 200: { type: 'string', format: 'binary' }, ...errors },
    },
  }, async (req, reply) => {
    const f = await need().fetch(groupOf(req), Number((req.params as { id: string }).id));
    return reply.type('application/octet-stream').send(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length));
  });
}
