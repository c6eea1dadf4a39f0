/**
 * PayPub through the real CLI, as a new user would on regtest: the seller runs `deaddrop start`
 * (which serves the chunks) and uses `paypub publish|offer|sample|claim|status`; the buyers and an
 * observer use one-shot `paypub verify|pledge|unlock|refund` commands against the same node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { attachRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { createKeystore } from '../../src/wallet/keystore.js';
import { CLI, backendArgs, runCli, runCliJson } from '../support/cli.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { mineTo, tipHeight } from '../support/regtest-tx.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('CLI on %s', (kind) => {
  useNodeKind(kind);

  const PASS = 'paypub cli passphrase';
  const env = { DEADDROP_PASSPHRASE: PASS };

  describe('deaddrop paypub through the CLI on regtest', () => {
    const root = mkdtempSync(join(tmpdir(), 'dd-paypub-cli-'));
    const dirs = { seller: join(root, 'seller'), a: join(root, 'buyer-a'), b: join(root, 'buyer-b'), observer: join(root, 'observer') };
    let backend = '';
    let daemon: ChildProcess | undefined;
    // Every event of the seller's daemon over the whole sale, from its /events websocket.
    let events: WebSocket | undefined;
    const seen: { id: string; type: string }[] = [];
    const as = (who: keyof typeof dirs, args: string[]): string[] => ['--datadir', dirs[who], ...(who === 'seller' ? [] : backendArgs(backend, root)), ...args];
    // Mining and mempool checks go straight to the node (the CLI under test is `paypub`).
    let node: RegtestNode | undefined;
    const mine = (n: number): Promise<string[]> => node!.mine(n);
    const height = (): Promise<number> => tipHeight(node!);
    const mempool = (): Promise<string[]> => node!.rpc<string[]>('getrawmempool');

    beforeAll(async () => {
      backend = (await runCliJson<{ backend: string }>(['--datadir', dirs.seller, 'regtest', 'up'])).backend;
      expect(backend.startsWith(`${kind}://`)).toBe(true);
      node = await attachRegtestNode(dirs.seller);
      // `deaddrop init` is covered by the wallet flow; here the keystores get cheap scrypt parameters so
      // that each of the ~30 commands below does not spend half a second unlocking.
      const tip = await height();
      for (const dir of Object.values(dirs)) await createKeystore(dir, { passphrase: PASS, network: 'regtest', birthdayHeight: tip, scrypt: { N: 2 ** 10, r: 8, p: 1 } });
      for (const who of ['seller', 'a', 'b'] as const) {
        const { address } = await runCliJson<{ address: string }>(as(who, ['wallet', 'address']), env);
        await node.fund(address, 1_000_000n);
      }
      await node.mine(1);
      // The seller's daemon serves the chunks (and would claim on its own; this sale opts out).
      daemon = spawn(process.execPath, [CLI, '--datadir', dirs.seller, '--json', 'start', '--regtest'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('daemon did not start')), 60_000);
        daemon!.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('"api"')) {
            clearTimeout(timer);
            resolve();
          }
        });
        daemon!.on('exit', (code) => reject(new Error(`daemon exited ${code}`)));
      });
    const api = readFileSync(join(dirs.seller, 'api.url'), 'utf8').trim();
    const token = readFileSync(join(dirs.seller, 'api.token'), 'utf8').trim();
    events = new WebSocket(`${api.replace('http', 'ws')}/events`, { headers: { authorization: `Bearer ${token}` } });
    events.on('message', (m) => seen.push(JSON.parse(String(m)) as { id: string; type: string }));
    await new Promise((resolve, reject) => events!.once('open', resolve).once('error', reject));
    });

    afterAll(async () => {
    events?.terminate();
      if (daemon && daemon.exitCode === null) {
        const exited = new Promise((r) => daemon!.once('exit', r));
        daemon.kill('SIGTERM');
        await exited;
      }
      node?.detach();
      await runCli(['--datadir', dirs.seller, 'regtest', 'down']);
      rmSync(root, { recursive: true, force: true });
    });

    const file = randomBytes(200_000);
    let id = '';
    let offer = '';
    let claimTxid = '';

    it('seller: publish, offer, sample', async () => {
      const path = join(root, 'leak.pdf');
      writeFileSync(path, file);
      const pub = await runCliJson<{ id: string; beaconHeight: number; deadlineHeight: number; sampleSize: number; chunkCount: number }>(as('seller', [
        'paypub', 'publish', path, '--price', '50000', '--threshold', '100000', '--chunks', '16', '--sample', '0.25', '--beacon-in', '3', '--deadline-in', '16', '--fee-rate', '2', '--no-auto-claim',
      ]), env);
      id = pub.id;
      expect(pub.chunkCount).toBe(16);
      expect(pub.sampleSize).toBe(4);
      await mine(1);
      offer = (await runCliJson<{ offer: string }>(as('seller', ['paypub', 'offer', id.slice(0, 12)]), env)).offer;
      expect(offer).toMatch(/^paypub1/);
      const early = await runCli(as('seller', ['paypub', 'sample', id]), env);
      expect(early.code).not.toBe(0);
      expect(early.stderr).toMatch(/not final yet/);
      await mineTo(node!, pub.beaconHeight + 1);
      const s = await runCliJson<{ indices: number[]; anchorOk: boolean }>(as('seller', ['paypub', 'sample', id]), env);
      expect(s.indices).toHaveLength(4);
    });

    it('buyers: verify (with the odds) and pledge; the seller claims; a buyer unlocks from the mempool', async () => {
      const human = await runCli(as('a', ['paypub', 'verify', offer]), env);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/verified/);
      expect(human.stdout).toMatch(/escape the sample with probability 75\.0%/);
      for (const who of ['a', 'b'] as const) {
        const p = await runCliJson<{ txid: string; announced: boolean }>(as(who, ['paypub', 'pledge', offer, '50000', '--fee-rate', '2']), env);
        expect(p.announced).toBe(true);
      }
      await mine(1);
      const claim = await runCliJson<{ action: string; txid: string; pledges: number }>(as('seller', ['paypub', 'claim', id, '--fee-rate', '2']), env);
      expect(claim).toMatchObject({ action: 'broadcast', pledges: 2 });
      // a fee bump replaces it (RBF); the keys are public either way
      const bump = await runCliJson<{ action: string; txid: string; replaces: string }>(as('seller', ['paypub', 'claim', id, '--fee-rate', '5']), env);
      expect(bump).toMatchObject({ action: 'bumped', replaces: claim.txid });
      claimTxid = bump.txid;
      const pool = await mempool();
      expect(pool).toContain(bump.txid);
      expect(pool).not.toContain(claim.txid);
      const out = join(root, 'a-leak.pdf');
      const u = await runCliJson<{ bytes: number }>(as('a', ['paypub', 'unlock', id, '--out', out]), env);
      expect(u.bytes).toBe(file.length);
      expect(Buffer.compare(readFileSync(out), file)).toBe(0);
    });

    it('an observer who never paid decrypts after the claim is mined; further pledges are refused', async () => {
      await mine(1);
      const v = await runCliJson<{ ok: boolean; keysPublic: boolean }>(as('observer', ['paypub', 'verify', offer]), env);
      expect(v).toMatchObject({ ok: true, keysPublic: true });
      const out = join(root, 'observer-leak.pdf');
      await runCliJson(as('observer', ['paypub', 'unlock', id, '--out', out]), env);
      expect(Buffer.compare(readFileSync(out), file)).toBe(0);
      const refused = await runCli(as('b', ['paypub', 'pledge', offer, '50000']), env);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toMatch(/keys are already public/);
      const st = await runCliJson<{ phase: string; claims: { txid: string; status: string }[] }>(as('b', ['paypub', 'status', id]), env);
      expect(st.phase).toBe('claimed');
      expect(st.claims.find((c) => c.status === 'confirmed')?.txid).toBe(claimTxid);
    });

    it('an unclaimed sale: refund refused before the deadline, accepted at it', async () => {
      const path = join(root, 'unsold.bin');
      writeFileSync(path, randomBytes(1000));
      const pub = await runCliJson<{ id: string; beaconHeight: number; deadlineHeight: number }>(as('seller', [
        'paypub', 'publish', path, '--price', '40000', '--chunks', '8', '--sample', '2', '--beacon-in', '3', '--deadline-in', '14', '--fee-rate', '2', '--no-auto-claim',
      ]), env);
      await mine(1);
      const unsold = (await runCliJson<{ offer: string }>(as('seller', ['paypub', 'offer', pub.id]), env)).offer;
      await mineTo(node!, pub.beaconHeight + 1);
      await runCliJson(as('seller', ['paypub', 'sample', pub.id]), env);
      const p = await runCliJson<{ txid: string; vout: number }>(as('b', ['paypub', 'pledge', unsold, '40000', '--fee-rate', '2']), env);
      await mine(1);
      const early = await runCli(as('b', ['paypub', 'refund', pub.id]), env);
      expect(early.code).not.toBe(0);
      expect(early.stderr).toMatch(/deadline is height/);
      await mineTo(node!, pub.deadlineHeight);
      const r = await runCliJson<{ refunds: { pledge: string; txid: string; value: string; fee: string }[] }>(as('b', ['paypub', 'refund', pub.id, '--fee-rate', '2']), env);
      expect(r.refunds).toHaveLength(1);
      expect(r.refunds[0]?.pledge).toBe(`${p.txid}:${p.vout}`);
      expect(BigInt(r.refunds[0]!.value) + BigInt(r.refunds[0]!.fee)).toBe(40_000n);
      await mine(1);
      const st = await runCliJson<{ phase: string; keys: { known: number } }>(as('b', ['paypub', 'status', pub.id]), env);
      expect(st).toMatchObject({ phase: 'refunded', keys: { known: 2 } });
    });

    it('version 2 (--claim adaptor): the seller\'s daemon reveals and claims on its own; the buyer pledges and unlocks with one-shot commands', async () => {
      const data = new Uint8Array(randomBytes(3000));
      const path = join(root, 'v2.bin');
      writeFileSync(path, data);
      const bad = await runCli(as('seller', ['paypub', 'publish', path, '--price', '1000', '--claim', 'bogus']), env);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/--claim must be hashlock or adaptor/);
      const pub = await runCliJson<{ id: string; claim: string; beaconHeight: number }>(as('seller', [
        'paypub', 'publish', path, '--claim', 'adaptor', '--price', '50000', '--threshold', '50000', '--chunks', '8', '--sample', '2', '--beacon-in', '3', '--deadline-in', '16', '--fee-rate', '2',
      ]), env);
      expect(pub.claim).toBe('adaptor');
      await mine(1);
      await mineTo(node!, pub.beaconHeight + 1);
      const phase = async (): Promise<string | undefined> => (await runCliJson<{ sales: { id: string; phase: string }[] }>(as('seller', ['paypub', 'status']), env)).sales.find((x) => x.id === pub.id)?.phase;
      await waitUntil(async () => (await phase()) === 'collecting', 'v2 sample revealed by the daemon', 30_000);
      const v2offer = (await runCliJson<{ offer: string }>(as('seller', ['paypub', 'offer', pub.id]), env)).offer;
      expect(v2offer).toMatch(/^paypub2:/);
      const p = await runCliJson<{ txid: string; announced: boolean }>(as('a', ['paypub', 'pledge', v2offer, '50000', '--fee-rate', '2']), env);
      expect(p.announced).toBe(true);
      const early = await runCli(as('a', ['paypub', 'unlock', pub.id, '--out', join(root, 'v2-early.bin')]), env);
      expect(early.code).not.toBe(0);
      expect(early.stderr).toMatch(/not public yet/);
      await mine(1);
      await waitUntil(async () => (await phase()) === 'claim-seen', 'v2 claim by the daemon', 30_000);
      const out = join(root, 'v2-out.bin');
      const u = await runCliJson<{ bytes: number }>(as('a', ['paypub', 'unlock', pub.id, '--out', out]), env);
      expect(u.bytes).toBe(data.length);
      expect(Buffer.compare(readFileSync(out), data)).toBe(0);
      const st = await runCliJson<{ claimTxid: string | null; pledges: { txid: string }[] }>(as('seller', ['paypub', 'status', pub.id]), env);
      expect(st.claimTxid).toMatch(/^[0-9a-f]{64}$/);
      expect(st.pledges.map((x) => x.txid)).toEqual([p.txid]);
    });

    it('the seller daemon published each event of the whole sale once (issue 17.3)', () => {
      const byType = new Map<string, number>();
      const byId = new Map<string, number>();
      for (const e of seen) {
        byType.set(e.type, (byType.get(e.type) ?? 0) + 1);
        byId.set(e.id, (byId.get(e.id) ?? 0) + 1);
      }
      console.error(`seller events over the sale: ${JSON.stringify(Object.fromEntries(byType))}`);
      expect([...byType.keys()].some((t) => t.startsWith('paypub.'))).toBe(true);
      expect(Object.fromEntries([...byId].filter(([, n]) => n > 1))).toEqual({});
    });
  });
});
