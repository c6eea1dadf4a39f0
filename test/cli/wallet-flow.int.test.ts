/**
 * The foundation's "done when" flow, run through the real CLI as a new user would:
 * regtest up → init → address → fund → balance → send → mine → balance → errors → down.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliJson } from '../support/cli.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';

describe.each(chainNodes())('CLI on %s', (kind) => {
  useNodeKind(kind);

  const PASS = 'correct horse battery staple';

  /** True while `pid` runs; an exited process not yet reaped by init (a zombie) counts as gone. */
  function pidAlive(pid: number): boolean {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
    } catch {
      return false;
    }
  }

  describe('deaddrop CLI wallet flow on regtest', () => {
    const root = mkdtempSync(join(tmpdir(), 'dd-cli-'));
    const alice = join(root, 'alice');
    const bob = join(root, 'bob');
    const env = { DEADDROP_PASSPHRASE: PASS };
    let nodePid = 0;
    let backend = '';

    beforeAll(async () => {
      const up = await runCliJson<{ kind: string; pid: number; backend: string; height: number }>(['--datadir', alice, 'regtest', 'up']);
      expect(up.kind).toBe(kind); // DEADDROP_REGTEST_NODE reached the CLI
      expect(up.height).toBeGreaterThanOrEqual(101);
      nodePid = up.pid;
      backend = up.backend;
      expect(pidAlive(nodePid)).toBe(true);
    });

    afterAll(async () => {
      await runCli(['--datadir', alice, 'regtest', 'down']);
      rmSync(root, { recursive: true, force: true });
    });

    it('creates a wallet, funds it, sends, and accounts for amount and fee exactly', async () => {
      const init = await runCliJson<{ network: string }>(['--datadir', alice, 'init'], env);
      expect(init.network).toBe('regtest');
      const keystore = readFileSync(join(alice, 'keystore.json'), 'utf8');
      expect(keystore).not.toContain(PASS);

      const { address } = await runCliJson<{ address: string }>(['--datadir', alice, 'wallet', 'address'], env);
      expect(address).toMatch(/^bcrt1p[0-9a-z]{58}$/);
      const again = await runCliJson<{ address: string }>(['--datadir', alice, 'wallet', 'address'], env);
      expect(again.address).not.toBe(address);

      await runCliJson(['--datadir', alice, 'regtest', 'fund', address, '100000000']);
      const funded = await runCliJson<{ confirmed: string; unconfirmed: string }>(['--datadir', alice, 'wallet', 'balance'], env);
      expect(funded).toMatchObject({ confirmed: '100000000', unconfirmed: '0' });

      await runCliJson(['--datadir', bob, '--backend', backend, 'init'], env);
      const bobAddr = (await runCliJson<{ address: string }>(['--datadir', bob, '--backend', backend, 'wallet', 'address'], env)).address;
      const sent = await runCliJson<{ txid: string; fee: string; vsize: number }>(['--datadir', alice, 'wallet', 'send', bobAddr, '50000', '--fee-rate', '2'], env);
      expect(sent.txid).toMatch(/^[0-9a-f]{64}$/);
      expect(BigInt(sent.fee)).toBe(BigInt(sent.vsize * 2));

      await runCliJson(['--datadir', alice, 'regtest', 'mine', '1']);
      const after = await runCliJson<{ confirmed: string; unconfirmed: string }>(['--datadir', alice, 'wallet', 'balance'], env);
      expect(BigInt(after.confirmed)).toBe(100_000_000n - 50_000n - BigInt(sent.fee));
      expect(after.unconfirmed).toBe('0');
      const bobBalance = await runCliJson<{ confirmed: string }>(['--datadir', bob, '--backend', backend, 'wallet', 'balance'], env);
      expect(bobBalance.confirmed).toBe('50000');
    });

    it('gives one clear line and changes nothing on bad input', async () => {
      const before = await runCliJson<{ confirmed: string }>(['--datadir', alice, 'wallet', 'balance'], env);
      const target = (await runCliJson<{ address: string }>(['--datadir', alice, 'wallet', 'address'], env)).address;
      const cases: Array<{ args: string[]; env?: Record<string, string>; expect: RegExp }> = [
        { args: ['wallet', 'balance'], env: { DEADDROP_PASSPHRASE: 'not the passphrase' }, expect: /wrong passphrase/ },
        { args: ['wallet', 'send', 'bcrt1qthisisnotanaddress', '5000'], expect: /malformed address/ },
        { args: ['wallet', 'send', target, '2100000000000000'], expect: /insufficient funds/ },
        { args: ['wallet', 'send', target, '5000', '--fee-rate', '5000'], expect: /above the cap/ },
      // Credentials through the environment: a password in --backend adds a warning line (tested in first-run).
      { args: ['wallet', 'balance'], env: { DEADDROP_BACKEND: 'btcd://u:p@127.0.0.1:1' }, expect: /cannot reach/ },
      { args: ['--network', 'testnet', 'wallet', 'balance'], env: { DEADDROP_BACKEND: backend }, expect: /backend is on regtest, expected testnet|keystore.*regtest|expected testnet/ },
        { args: ['init'], expect: /already exists/ },
      ];
      for (const c of cases) {
        const r = await runCli(['--datadir', alice, ...c.args], { ...env, ...(c.env ?? {}) });
        expect(r.code, c.args.join(' ')).not.toBe(0);
        const lines = r.stderr.trim().split('\n');
        expect(lines, c.args.join(' ')).toHaveLength(1);
        expect(lines[0]).toMatch(c.expect);
        expect(r.stderr).not.toContain(PASS);
        expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --debug
      }
      const unchanged = await runCliJson<{ confirmed: string; unconfirmed: string }>(['--datadir', alice, 'wallet', 'balance'], env);
      expect(unchanged.confirmed).toBe(before.confirmed);
      expect(unchanged.unconfirmed).toBe('0');
    });

    it('regtest down leaves no node process', async () => {
      const r = await runCliJson<{ stopped: boolean }>(['--datadir', alice, 'regtest', 'down']);
      expect(r.stopped).toBe(true);
      expect(pidAlive(nodePid)).toBe(false);
      expect(existsSync(join(alice, 'regtest', 'node.json'))).toBe(false);
    });
  });
});
