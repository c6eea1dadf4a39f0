/**
 * The daemon's dead-drop feature on each regtest node, in process: a locked daemon builds the public index
 * only (the wallet routes refuse), an unlocked one then scans from the wallet's birthday and
 * finds the drop sent meanwhile (drop.confirmed on the EventBus), and a restart does not
 * publish it again.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { openBackend } from '../../src/chain/open.js';
import type { ChainSource } from '../../src/chain/types.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { nodeIssuer } from '../../src/node/drop-introduction.js';
import { createDropFeature } from '../../src/deaddrop/feature.js';
import { walletSilentAddress } from '../../src/deaddrop/publish.js';
import { sendDrop } from '../../src/deaddrop/send.js';
import { createKeystore } from '../../src/wallet/keystore.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { TestSender, payload } from '../support/watch.js';
import { waitUntil } from '../support/wait.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';

describe.each(chainNodes())('drop feature on %s', (kind) => {
  useNodeKind(kind);

  const PASS = 'feature test passphrase';
  const ENDPOINT = 'ws://192.0.2.1:9000';


  describe('dropFeature in the daemon', () => {
    const datadir = mkdtempSync(join(tmpdir(), 'dd-feature-'));
    let node: RegtestNode;
    let source: ChainSource;
    let address = '';
    let birthday = 0;
    const daemons: Daemon[] = [];

    async function start(passphrase: string | undefined): Promise<{ daemon: Daemon; auth: Record<string, string> }> {
      const daemon = new Daemon({ datadir, network: 'regtest', backendUrl: node.backendUrl, passphrase: async () => passphrase, features: [createDropFeature({ issuer: nodeIssuer })] });
      daemons.push(daemon);
      await daemon.ready();
      return { daemon, auth: { authorization: `Bearer ${readFileSync(join(datadir, 'api.token'), 'utf8').trim()}` } };
    }

    beforeAll(async () => {
      node = await startRegtestNode({ kind });
      source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
      birthday = (await node.dialect.getTip(node.client)).height;
      const ks = await createKeystore(datadir, { passphrase: PASS, network: 'regtest', birthdayHeight: birthday, scrypt: { N: 2 ** 10, r: 8, p: 1 } });
      address = walletSilentAddress(WalletKeys.fromMnemonic(ks.mnemonic, 'regtest'));
    });

    afterAll(async () => {
      for (const d of daemons) await d.close();
      await source?.close();
      await node?.stop();
      rmSync(datadir, { recursive: true, force: true });
    });

    it('locked: serves the public index, refuses invite and send, and indexes a drop sent meanwhile', async () => {
      const { daemon, auth } = await start(undefined);
      expect(daemon.wallet).toBeUndefined();
      const invite = await fetch(`${daemon.apiUrl}/invite`, { headers: auth });
      expect(invite.status).toBe(409);
      const send = await fetch(`${daemon.apiUrl}/drops/send`, {
        method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ recipient: address, endpoints: [ENDPOINT] }),
      });
      expect(send.status).toBe(409);
      expect(((await (await fetch(`${daemon.apiUrl}/drops`, { headers: auth })).json()) as { drops: unknown[] }).drops).toEqual([]);

      const sender = new TestSender(node, source);
      await sender.fund(1, 50_000n);
      await node.mine(1);
      const sent = await sendDrop(sender, { recipient: address, payload: payload(ENDPOINT, 'while locked'), feeRate: 2 });
      const [hash] = await node.mine(1);
      const tip = (await node.dialect.getTip(node.client)).height;
      const range = await waitUntil(async () => {
        const r = (await (await fetch(`${daemon.apiUrl}/index/candidates?from=${birthday}&to=${tip}`)).json()) as { to: number; candidates: { txid: string; blockHash: string }[] };
        return r.to >= tip ? r : undefined;
      }, 'the locked daemon to index the tip');
      expect(range.candidates.map((c) => [c.txid, c.blockHash])).toEqual([[sent.txid, hash]]);
      // No identity, no drop event: the locked watcher never decrypts.
      expect(daemon.events.history('drop.')).toEqual([]);
      await daemon.close();
    });

    it('unlocked: scans from the wallet birthday, publishes drop.confirmed once, not again after a restart', async () => {
      const { daemon, auth } = await start(PASS);
      const confirmed = await waitUntil(() => daemon.events.history('drop.confirmed')[0], 'drop.confirmed on the bus');
      expect(confirmed.data).toMatchObject({ status: 'confirmed', payload: { endpoints: [ENDPOINT], message: 'while locked' } });
      const drops = (await (await fetch(`${daemon.apiUrl}/drops`, { headers: auth })).json()) as { drops: { txid: string; message: string }[] };
      expect(drops.drops.map((d) => d.message)).toEqual(['while locked']);
      const invite = (await (await fetch(`${daemon.apiUrl}/invite`, { headers: auth })).json()) as { address: string; birthday: number };
      expect(invite).toMatchObject({ address, birthday });
      await daemon.close();

      const again = await start(PASS);
      // Once the restarted watcher has scanned a new block, it has had every chance to repeat itself.
      const [next] = await node.mine(1);
      const height = (await node.dialect.getTip(node.client)).height;
      await waitUntil(() => again.daemon.events.history('watch.progress').find((e) => e.data.height === height), `watch.progress for ${next}`);
      expect(again.daemon.events.history('drop.')).toEqual([]);
      const list = (await (await fetch(`${again.daemon.apiUrl}/drops`, { headers: again.auth })).json()) as { drops: { status: string }[] };
      expect(list.drops.map((d) => d.status)).toEqual(['confirmed']);
    });
  });
});
