/**
 * `kill -9` of a sending daemon, on real btcd: a real `deaddrop start` process sends dead drops
 * (`POST /drops/send`) and payments (`POST /wallet/send`) back to back and is killed with
 * SIGKILL after a different random delay each round (every other round while the node hangs
 * under SIGSTOP, so a broadcast is in flight), then restarted, sometimes after a block.
 * After every restart: no coin is reserved without a live transaction, no introduction is left
 * `reserved`, every introduction marked sent is known to the node. At the end, after a block:
 * the daemon's balance equals that of the same seed scanned afresh from the chain (nothing lost,
 * nothing counted twice), and almost all of it can be sent at once (no coin stranded).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { backendArgs, runCli, runCliJson, startDaemonProcess, stopDaemonProcess, type DaemonProcess } from '../support/cli.js';
import { waitUntil } from '../support/wait.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { openBackend } from '../../src/chain/open.js';
import { Wallet } from '../../src/wallet/wallet.js';
import { WalletKeys, newMnemonic, RECEIVE } from '../../src/wallet/keys.js';
import { walletSilentAddress } from '../../src/deaddrop/publish.js';

const PASS = 'crash test passphrase';
const env = { DEADDROP_PASSPHRASE: PASS };
const ROUNDS = 4;
const COINS = 6;
const COIN = 2_000_000;
const stranger = WalletKeys.fromMnemonic(newMnemonic(), 'regtest');
const recipient = walletSilentAddress(stranger);

interface Reservation { id: string; kind: string; coins: unknown[] }
interface Introduction { number: number; status: string; txid: string | null }

describe('kill -9 of a sending daemon (btcd)', () => {
  const root = mkdtempSync(join(tmpdir(), 'dd-crash-'));
  const datadir = join(root, 'a');
  let node: RegtestNode;
  let mnemonic = '';
  let birthday = 0;
  let daemon: DaemonProcess | undefined;

  const call = async <T>(d: DaemonProcess, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: T }> => {
    const res = await fetch(`${d.api}${path}`, {
      method, headers: { authorization: `Bearer ${d.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as T };
  };
  const start = async (): Promise<DaemonProcess> => startDaemonProcess(datadir, ['--backend', node.backendUrl], env);

  /** What must hold after every restart. */
  const checkSettled = async (d: DaemonProcess): Promise<void> => {
    const { json: { reservations } } = await call<{ reservations: Reservation[] }>(d, 'GET', '/wallet/reservations');
    expect(reservations).toEqual([]);
    const { json: { introductions } } = await call<{ introductions: Introduction[] }>(d, 'GET', '/drops/sent');
    expect(introductions.filter((i) => i.status === 'reserved')).toEqual([]);
    for (const i of introductions.filter((x) => x.status === 'sent')) {
      const raw = await node.rpc<string>('getrawtransaction', [i.txid, 0]);
      expect(typeof raw).toBe('string');
    }
  };

  beforeAll(async () => {
    node = await startRegtestNode({ kind: 'btcd' });
    const init = await runCliJson<{ mnemonic: string; birthdayHeight: number }>(['--datadir', datadir, '--backend', node.backendUrl, 'init', '--show-mnemonic'], env);
    mnemonic = init.mnemonic;
    birthday = init.birthdayHeight;
    const keys = WalletKeys.fromMnemonic(mnemonic, 'regtest');
    for (let i = 0; i < COINS; i++) await node.fund(keys.taprootKey(RECEIVE, i).address, COIN);
    await node.mine(1);
  }, 120_000);

  afterAll(async () => {
    if (node) process.kill(node.pid, 'SIGCONT');
    await stopDaemonProcess(daemon);
    await node?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('settles every interrupted send at restart, with no coin lost, stranded or spent twice', async () => {
    let killedMidSend = 0;
    let sentTotal = 0;
    for (let round = 0; round < ROUNDS; round++) {
      daemon = await start();
      await checkSettled(daemon);
      const d = daemon;
      let inFlight = 0;
      let stop = false;
      const fire = async (): Promise<void> => {
        for (let i = 0; !stop; i++) {
          inFlight++;
          try {
            const r = i % 3 === 2
              ? await call(d, 'POST', '/wallet/send', { address: stranger.taprootKey(RECEIVE, round * 100 + i).address, sats: '10000', feeRate: 1 })
              : await call(d, 'POST', '/drops/send', { recipient, endpoints: ['ws://127.0.0.1:9000'], message: `r${round}i${i}`, feeRate: 1 });
            if (r.status === 200) sentTotal++;
          } catch {
            return; // the daemon is gone
          } finally {
            inFlight--;
          }
        }
      };
      const senders = [fire(), fire()];
      // Random points of a send: a different delay each round, within a bounded time.
      await new Promise((r) => setTimeout(r, 150 + round * 150 + randomInt(200)));
      // Every other round the node hangs first (SIGSTOP), so the kill lands while a broadcast
      // is in flight: signed and recorded, the node's answer never received.
      const hang = round % 2 === 0;
      if (hang) {
        process.kill(node.pid, 'SIGSTOP');
        await new Promise((r) => setTimeout(r, 300));
      }
      if (inFlight > 0) killedMidSend++;
      const exited = new Promise((r) => d.child.once('exit', r));
      d.child.kill('SIGKILL');
      await exited;
      if (hang) process.kill(node.pid, 'SIGCONT');
      stop = true;
      await Promise.all(senders);
      if (round % 2 === 1) await node.mine(1);
    }
    expect(killedMidSend).toBeGreaterThan(0);
    expect(sentTotal).toBeGreaterThan(0);

    daemon = await start();
    await checkSettled(daemon);
    await node.mine(1);
    const tip = (await node.rpc<{ blocks: number }>('getblockchaininfo')).blocks;
    const d = daemon;
    await waitUntil(async () => (await call<{ height: number }>(d, 'GET', '/wallet/balance')).json.height === tip || undefined, 'the daemon\'s wallet at the tip');
    const { json: balance } = await call<{ confirmed: string; unconfirmed: string }>(d, 'GET', '/wallet/balance');
    expect(balance.unconfirmed).toBe('0');

    // The same seed scanned afresh from the chain: the ground truth.
    const source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
    const fresh = new Wallet({ keys: WalletKeys.fromMnemonic(mnemonic, 'regtest'), source, db: join(root, 'fresh.db'), birthdayHeight: birthday });
    try {
      await fresh.ready();
      await fresh.sync();
      const truth = await fresh.balance();
      expect(BigInt(balance.confirmed)).toBe(truth.confirmed);
      expect(truth.confirmed).toBeLessThan(BigInt(COINS * COIN));
    } finally {
      await fresh.close();
      await source.close();
    }

    // Issue 9.2: one PSBT used to strand coins until a restart. Now it holds exactly its input,
    // is listed, and abandoning it frees the coin at once.
    const all = BigInt(balance.confirmed) - 20_000n;
    const sendAll = { address: stranger.taprootKey(RECEIVE, 9999).address, sats: all.toString(), feeRate: 1 };
    const psbt = await call<{ txid: string; expiresAt: number }>(d, 'POST', '/wallet/psbt/create', { address: stranger.taprootKey(RECEIVE, 9998).address, sats: '1000', feeRate: 1, expiresIn: 600 });
    expect(psbt.status).toBe(200);
    expect(psbt.json.expiresAt).toBeGreaterThan(Date.now() + 500_000);
    const refused = await call<{ error: string; message: string }>(d, 'POST', '/wallet/send', sendAll);
    expect([refused.status, refused.json.error]).toEqual([409, 'INSUFFICIENT_FUNDS']);
    const listed = await call<{ reservations: Reservation[] }>(d, 'GET', '/wallet/reservations');
    expect(listed.json.reservations.map((x) => [x.id, x.kind, x.coins.length])).toEqual([[psbt.json.txid, 'psbt', 1]]);
    expect((await call(d, 'POST', '/wallet/psbt/abandon', {})).status).toBe(400);
    expect((await call(d, 'POST', '/wallet/psbt/abandon', { txid: 'ab'.repeat(32) })).status).toBe(404);
    expect((await call<Reservation>(d, 'POST', '/wallet/psbt/abandon', { txid: psbt.json.txid })).json.id).toBe(psbt.json.txid);

    // Every coin is spendable: send all but a little, in one transaction.
    const r = await call<{ txid: string; error?: string; message?: string }>(d, 'POST', '/wallet/send', sendAll);
    expect(r.json.message ?? '').toBe('');
    expect(r.status).toBe(200);
  }, 240_000);

  it('lists and abandons PSBT reservations from the CLI, kept across processes', async () => {
    await stopDaemonProcess(daemon);
    daemon = undefined;
    const bk = ['--datadir', datadir, ...backendArgs(node.backendUrl, datadir)];
    const created = await runCliJson<{ txid: string; expiresAt: number }>([...bk, 'wallet', 'psbt', 'create', stranger.taprootKey(RECEIVE, 9997).address, '1000', '--fee-rate', '1', '--expires', '2h'], env);
    expect(created.expiresAt).toBeGreaterThan(Date.now() + 7_000_000);
    const listed = await runCliJson<{ reservations: Reservation[] }>([...bk, 'wallet', 'reservations'], env);
    expect(listed.reservations.map((x) => [x.id, x.kind])).toEqual([[created.txid, 'psbt']]);
    const abandoned = await runCliJson<{ id: string }>([...bk, 'wallet', 'psbt', 'abandon', created.txid], env);
    expect(abandoned.id).toBe(created.txid);
    // Gone: a second abandon finds nothing (one line on stderr, non-zero exit).
    const again = await runCli([...bk, 'wallet', 'psbt', 'abandon', created.txid], env);
    expect(again.code).not.toBe(0);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toContain(`no reservation for transaction ${created.txid}`);
  }, 120_000);
});
