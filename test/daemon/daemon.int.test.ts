import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, statSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Daemon } from '../../src/daemon/daemon.js';
import { createKeystore } from '../../src/wallet/keystore.js';
import { attachRegtestNode } from '../../src/regtest/harness.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { regtestBackend } from '../../src/cli/regtest-backend.js';
import { waitUntil } from '../support/wait.js';

describe.each(chainNodes())('daemon on %s', (kind) => {
  useNodeKind(kind);

  const PASS = 'daemon test passphrase';

  describe('daemon on regtest', () => {
    const datadir = mkdtempSync(join(tmpdir(), 'dd-daemon-'));
    let daemon: Daemon;
    let token: string;
    const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}` });

    beforeAll(async () => {
      await createKeystore(datadir, { passphrase: PASS, network: 'regtest', scrypt: { N: 2 ** 10, r: 8, p: 1 } });
      daemon = new Daemon({ datadir, network: 'regtest', resolveBackend: regtestBackend(datadir, 'regtest'), passphrase: async () => PASS });
      await daemon.ready();
      token = readFileSync(join(datadir, 'api.token'), 'utf8').trim();
    });

    afterAll(async () => {
      await daemon?.close();
      rmSync(datadir, { recursive: true, force: true });
    });

    it('listens on loopback and answers /status behind the token', async () => {
      expect(daemon.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(statSync(join(datadir, 'api.token')).mode & 0o777).toBe(0o600);
      expect(statSync(join(datadir, 'api.url')).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(datadir, 'api.url'), 'utf8').trim()).toBe(daemon.apiUrl);
      expect((await fetch(`${daemon.apiUrl}/status`)).status).toBe(401);
      const res = await fetch(`${daemon.apiUrl}/status`, { headers: auth() });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { network: string; backend: { kind: string }; tip: { height: number }; secp: string };
      expect(body.network).toBe('regtest');
      // The secp256k1 backend chosen at start-up: the native addon ships prebuilt for this platform.
      expect(body.secp).toBe('native');
      expect(body.backend.kind).toBe(kind);
      expect(body.tip.height).toBeGreaterThanOrEqual(101);
    });

    it('streams chain and wallet events, and the wallet routes see funds', async () => {
      const ws = new WebSocket(`${daemon.apiUrl.replace('http', 'ws')}/events`, { headers: auth() });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const types: string[] = [];
      ws.on('message', (m) => types.push((JSON.parse(String(m)) as { type: string }).type));

      const addrRes = await fetch(`${daemon.apiUrl}/wallet/address`, { method: 'POST', headers: auth() });
      const { address } = (await addrRes.json()) as { address: string };
      const node = await attachRegtestNode(datadir);
      try {
        await node.fund(address, 250_000n, { confirm: true });
      } finally {
        node.detach();
      }
      try {
        // The expectations themselves are polled: on timeout the last failed one is the error.
        await waitUntil(async () => {
          const b = (await (await fetch(`${daemon.apiUrl}/wallet/balance`, { headers: auth() })).json()) as { confirmed: string };
          expect(b.confirmed).toBe('250000');
          // The history lists the funding transaction as incoming and confirmed.
          const h = (await (await fetch(`${daemon.apiUrl}/wallet/history?limit=10`, { headers: auth() })).json()) as { history: { net: string; status: string; height: number | null }[] };
          expect(h.history).toHaveLength(1);
          expect(h.history[0]).toMatchObject({ net: '250000', status: 'confirmed' });
          expect(h.history[0]!.height).toBeGreaterThan(0);
          expect(types).toContain('chain.tip');
          expect(types).toContain('wallet.changed');
          return true;
        }, 'the confirmed balance and its events', { timeoutMs: 15_000, intervalMs: 200, retryOnError: true });
      } finally {
        ws.close();
      }

      const bad = await fetch(`${daemon.apiUrl}/wallet/send`, {
        method: 'POST',
        headers: { ...auth(), 'content-type': 'application/json' },
        body: JSON.stringify({ address: 'not-an-address', sats: '1000' }),
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toBe('BAD_ADDRESS');
      for (const limit of ['0', '1001', 'ten']) {
        const res = await fetch(`${daemon.apiUrl}/wallet/history?limit=${limit}`, { headers: auth() });
        expect(res.status, `limit=${limit}`).toBe(400);
        expect(((await res.json()) as { error: string }).error).toBe('BAD_INPUT');
      }
    });

    it('stops the regtest node it started when it closes', async () => {
      const record = join(datadir, 'regtest', 'node.json');
      expect(existsSync(record)).toBe(true);
      const pid = (JSON.parse(readFileSync(record, 'utf8')) as { pid: number }).pid;
      await daemon.close();
      expect(existsSync(record)).toBe(false);
      expect(existsSync(join(datadir, 'api.url'))).toBe(false);
      let state = '';
      try {
        state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] ?? '';
      } catch {
        state = 'gone';
      }
      expect(['gone', 'Z']).toContain(state);
    });
  });
});
