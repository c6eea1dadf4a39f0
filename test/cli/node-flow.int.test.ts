/**
 * The peer node tried as a new user would, through the real CLI and two `deaddrop start`
 * daemons on regtest (btcd, and Bitcoin Core when available): bob prints an invite, alice sends an introduction to it with
 * `drop send`, bob's daemon finds it on chain and connects; `contacts`, `log append`,
 * `log show`, `whereabouts` and `node status` answer from the daemons; bad input and a missing
 * daemon give one-line errors.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliJson, startDaemonProcess, stopDaemonProcess, type DaemonProcess } from '../support/cli.js';
import { freePort } from '../../src/regtest/harness.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('CLI on %s', (kind) => {
  useNodeKind(kind);

  const PASS = 'node flow passphrase';
  const env = { DEADDROP_PASSPHRASE: PASS };




  describe('deaddrop peer node CLI on regtest', () => {
    const root = mkdtempSync(join(tmpdir(), 'dd-node-cli-'));
    const alice = join(root, 'alice');
    const bob = join(root, 'bob');
    let backend = '';
    let aliceDaemon: DaemonProcess | undefined;
    let bobDaemon: DaemonProcess | undefined;

    beforeAll(async () => {
      backend = (await runCliJson<{ backend: string }>(['--datadir', alice, 'regtest', 'up'])).backend;
      expect(backend.startsWith(`${kind}://`)).toBe(true);
    });

    afterAll(async () => {
      await stopDaemonProcess(aliceDaemon);
      await stopDaemonProcess(bobDaemon);
      await runCli(['--datadir', alice, 'regtest', 'down']);
      rmSync(root, { recursive: true, force: true });
    });

    it('two daemons meet through a drop; contacts, log and whereabouts work from the CLI', async () => {
      await runCliJson(['--datadir', alice, 'init'], env);
      await runCliJson(['--datadir', bob, '--backend', backend, 'init'], env);
      const { address } = await runCliJson<{ address: string }>(['--datadir', alice, 'wallet', 'address'], env);
      await runCliJson(['--datadir', alice, 'regtest', 'fund', address, '1000000']);

      const [alicePort, bobPort] = [await freePort(), await freePort()];
    // Alice also serves the mixnet as a provider and a layer-1 mix; bob as a layer-2 mix.
    aliceDaemon = await startDaemonProcess(alice, ['--backend', backend], { ...env, DEADDROP_NODE_PORT: String(alicePort) }, ['--provider', '--mix-layer', '1']);
    bobDaemon = await startDaemonProcess(bob, ['--backend', backend], { ...env, DEADDROP_NODE_PORT: String(bobPort) }, ['--mix-layer', '2']);
      expect(existsSync(join(alice, 'api.url'))).toBe(true);

      const aliceNode = await runCliJson<{ id: string; endpoints: string[] }>(['--datadir', alice, 'node', 'status']);
      const bobNode = await runCliJson<{ id: string }>(['--datadir', bob, 'node', 'status']);
      expect(aliceNode.endpoints).toEqual([`ws://127.0.0.1:${alicePort}`]);
      const none = await runCli(['--datadir', bob, 'contacts']);
      expect(none.code).toBe(0);
      expect(none.stdout).toMatch(/no contacts yet/);

      // bob's invite is the only thing alice gets out of band
      const { uri } = await runCliJson<{ uri: string }>(['--datadir', bob, 'invite'], env);
      await runCliJson(['--datadir', alice, 'drop', 'send', uri, '--endpoint', aliceNode.endpoints[0]!, '--message', 'hi bob', '--fee-rate', '2'], env);
      await runCliJson(['--datadir', alice, 'regtest', 'mine', '1']);

      const contact = await waitUntil(async () => {
        const { contacts } = await runCliJson<{ contacts: { node: string; connected: boolean; endpoints: string[] }[] }>(['--datadir', bob, 'contacts']);
        return contacts.find((c) => c.node === aliceNode.id && c.connected);
      }, 'bob connects to alice', { timeoutMs: 30_000, intervalMs: 250 });
      expect(contact.endpoints[0]).toBe(aliceNode.endpoints[0]);
      const aliceContacts = await runCliJson<{ contacts: { node: string }[] }>(['--datadir', alice, 'contacts']);
      expect(aliceContacts.contacts.map((c) => c.node)).toEqual([bobNode.id]);

      const appended = await runCliJson<{ seq: number; author: string; json: { text: string } }>(
        ['--datadir', alice, 'log', 'append', '--type', 'post', '--app', 'chat', '--json', '{"text":"hello bob"}']);
      expect(appended.author).toBe(aliceNode.id);
      expect(appended.json).toEqual({ text: 'hello bob' });
      const shown = await waitUntil(async () => {
        const r = await runCliJson<{ entries: { seq: number; header: { type: string; app: string }; json?: { text: string } }[] }>(['--datadir', bob, 'log', 'show', aliceNode.id]);
        return r.entries.find((e) => e.seq === appended.seq);
      }, 'the entry reaches bob', { timeoutMs: 30_000, intervalMs: 250 });
      expect(shown).toMatchObject({ header: { type: 'post', app: 'chat' }, json: { text: 'hello bob' } });
      const human = await runCli(['--datadir', bob, 'log', 'show', aliceNode.id]);
      expect(human.stdout).toContain(`#${appended.seq}`);
      expect(human.stdout).toContain('post {"text":"hello bob"}');
      const plain = await runCli(['--datadir', alice, 'log', 'append', '--type', 'note', '--text', 'plain words']);
      expect(plain.code).toBe(0);
      expect(plain.stdout).toMatch(/^appended #\d+ \([0-9a-f]{64}\)\n$/);
      const own = await runCliJson<{ feed: { author: string }; entries: { header: { type: string }; text?: string }[] }>(['--datadir', alice, 'log', 'show']);
      expect(own.feed.author).toBe(aliceNode.id);
      expect(own.entries.at(-1)).toMatchObject({ header: { type: 'note' }, text: 'plain words' });

      const where = await runCliJson<{ record: { node: string; endpoints: string[] }; contacts: { node: string; endpoints: string[] }[] }>(['--datadir', bob, 'whereabouts']);
      expect(where.record.node).toBe(bobNode.id);
      expect(where.record.endpoints).toEqual([`ws://127.0.0.1:${bobPort}`]);
      expect(where.contacts).toEqual([expect.objectContaining({ node: aliceNode.id, endpoints: [aliceNode.endpoints[0]] })]);
      const intros = await runCliJson<{ introductions: { status: string }[] }>(['--datadir', bob, 'node', 'introductions']);
      expect(intros.introductions.map((i) => i.status)).toEqual(['done']);
    });

  it('mixnet descriptors spread through replication; too few mixes refuses to send', async () => {
    const aliceNode = await runCliJson<{ id: string }>(['--datadir', alice, 'node', 'status']);
    const bobNode = await runCliJson<{ id: string }>(['--datadir', bob, 'node', 'status']);
    // Bob verified alice's provider descriptor from her replicated log and linked to it as his provider.
    const bobMix = await waitUntil(async () => {
      const r = await runCliJson<{ layer: number; home: string | null; connected: boolean; layers: number[]; providers: string[] }>(['--datadir', bob, 'mixnet']);
      return r.connected && r.home === aliceNode.id ? r : null;
    }, 'bob links to alice\'s provider', { timeoutMs: 30_000, intervalMs: 250 });
    expect(bobMix.layer).toBe(2);
    expect(bobMix.providers).toEqual([aliceNode.id]);
    const aliceMix = await waitUntil(async () => {
      const r = await runCliJson<{ layers: number[]; connected: boolean; home: string | null }>(['--datadir', alice, 'mixnet']);
      return r.layers[1] === 1 && r.connected ? r : null;
    }, 'alice knows both mixes', { timeoutMs: 30_000, intervalMs: 250 });
    expect(aliceMix.layers).toEqual([1, 1, 0]);
    expect(aliceMix.home).toBe(aliceNode.id);
    const human = await runCli(['--datadir', alice, 'mixnet']);
    expect(human.stdout).toMatch(/roles: mix layer 1 and provider/);
    expect(human.stdout).toMatch(/too few mixes/);

    // No layer-3 mix is known: nothing is sent (a shorter route would stand out).
    await waitUntil(async () => {
      const r = await runCli(['--datadir', alice, 'message', 'send', bobNode.id, 'hello']);
      return /too few verified mixes/.test(r.stderr) ? r : null;
    }, 'bob\'s mailbox announcement reaches alice', { timeoutMs: 30_000, intervalMs: 250 });
    const refused = await runCli(['--datadir', alice, 'message', 'send', bobNode.id, 'hello']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect((await runCliJson<{ messages: unknown[] }>(['--datadir', alice, 'messages'])).messages).toEqual([]);
    const notContact = await runCli(['--datadir', alice, 'message', 'send', '11'.repeat(32), 'hello']);
    expect(notContact.stderr).toMatch(/not a contact/);
    const badLayer = await runCli(['--datadir', join(root, 'nobody'), 'start', '--mix-layer', '4']);
    expect(badLayer.code).toBe(2);
    expect(badLayer.stderr).toMatch(/--mix-layer must be an integer 1\.\.3/);
  });

    it('bad input and a missing daemon give one-line errors', async () => {
      const badType = await runCli(['--datadir', alice, 'log', 'append', '--type', 'not a type', '--json', '{}']);
      expect(badType.code).toBe(2);
      expect(badType.stderr.trim().split('\n')).toHaveLength(1);
      const badJson = await runCli(['--datadir', alice, 'log', 'append', '--type', 'post', '--json', '{oops']);
      expect(badJson.code).toBe(2);
      const badFeed = await runCli(['--datadir', alice, 'log', 'show', 'zz']);
      expect(badFeed.code).toBe(2);
      const nowhere = await runCli(['--datadir', join(root, 'nobody'), 'contacts']);
      expect(nowhere.code).toBe(1);
      expect(nowhere.stderr).toMatch(/no daemon running/);

      await stopDaemonProcess(aliceDaemon);
      expect(existsSync(join(alice, 'api.url'))).toBe(false);
      const stopped = await runCli(['--datadir', alice, 'whereabouts']);
      expect(stopped.code).toBe(1);
      expect(stopped.stderr).toMatch(/no daemon running/);
      expect(readFileSync(join(alice, 'api.token'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    });
  });
});
