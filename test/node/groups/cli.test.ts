/**
 * `deaddrop group …` against a running node's group routes: the CLI reads the API address and
 * token from the datadir like every node command, and prints what the routes answer.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { installErrorHandler } from '../../../src/api/errors.js';
import { API_TOKEN_FILE, API_URL_FILE } from '../../../src/api/token.js';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { groupRoutes } from '../../../src/node/groups/routes.js';
import { GroupService } from '../../../src/node/groups/service.js';
import { PeerNode } from '../../../src/node/node.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { cli } from './cli-run.js';

const root = mkdtempSync(join(tmpdir(), 'dd-groups-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('deaddrop group', () => {
  it('create, post, read, members, list, invite, join', async () => {
    const node = new PeerNode({ seed: sha256(utf8('group cli')), dbPath: join(root, 'node.sqlite') });
    await node.ready();
    const groups = new GroupService(node);
    groups.start();
    const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } });
    installErrorHandler(app);
    await app.register(groupRoutes, { prefix: '/node/groups', service: () => groups });
    // the other daemon routes `group invite|join` use, as the drop and node features answer them
    const dropsSent: unknown[] = [];
    app.get('/invite', async () => ({ uri: 'deaddrop:test-invite' }));
    app.post('/drops/send', async (req) => {
      dropsSent.push(req.body);
      return { txid: 'ab'.repeat(32) };
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const datadir = join(root, 'datadir');
    rmSync(datadir, { recursive: true, force: true });
    mkdirSync(datadir);
    try {
      writeFileSync(join(datadir, API_URL_FILE), url, { mode: 0o600 });
      writeFileSync(join(datadir, API_TOKEN_FILE), 'token', { mode: 0o600 });
      const group = await cli(datadir, 'group', 'create', 'team');
      expect(group).toMatch(/^[0-9a-f]{64}$/);
      expect(await cli(datadir, 'group', 'post', group, 'hello, group')).toBe('posted #1');
      expect(await cli(datadir, 'group', 'read', group)).toMatch(/^#1 \S+ [0-9a-f]{12}: hello, group$/);
      expect(await cli(datadir, 'group', 'members', group)).toBe(`${Buffer.from(node.id).toString('hex')} admin`);
      expect(JSON.parse(await cli(datadir, '--json', 'group', 'list'))).toEqual({ groups: [{ group, name: 'team', status: 'member', members: 1 }] });
      await expect(cli(datadir, 'group', 'members', 'nothex')).rejects.toSatisfy((e: unknown) => isDeaddropError(e, 'BAD_INPUT'));
      // invite: the node's deaddrop: invite and a group invite holding group, token and inviter
      const [uri, groupInvite] = (await cli(datadir, 'group', 'invite', group)).split('\n');
      expect(uri).toBe('deaddrop:test-invite');
      expect(groupInvite).toMatch(new RegExp(`^group:${group}\\.[0-9a-f]{32}\\.${Buffer.from(node.id).toString('hex')}$`));
      // join (someone else's invite): a join request, then an introduction drop to the inviter
      const other = `group:${'11'.repeat(32)}.${'22'.repeat(16)}.${'33'.repeat(32)}`;
      expect(await cli(datadir, 'group', 'join', 'deaddrop:their-invite', other)).toMatch(/^join requested; introduction drop (ab)+ sent/);
      // no endpoints named: the drop API's default (the mixnet hint; never this node's IP address)
      expect(dropsSent).toEqual([{ recipient: 'deaddrop:their-invite' }]);
      // an endpoint only when the joiner names one
      await cli(datadir, 'group', 'join', '--endpoint', 'ws://198.51.100.7:9000', 'deaddrop:their-invite', other);
      expect(dropsSent[1]).toEqual({ recipient: 'deaddrop:their-invite', endpoints: ['ws://198.51.100.7:9000'] });
      await expect(cli(datadir, 'group', 'join', 'deaddrop:x', 'group:nope')).rejects.toSatisfy((e: unknown) => isDeaddropError(e, 'BAD_INPUT'));
    } finally {
      await app.close();
      groups.close();
      await node.close();
    }
  }, 30_000);
});
