/** `/status` reports the peer node's Tor: bootstrap, published onions, how peers were reached. */
import { describe, it, expect, afterEach } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { EventBus } from '../../src/util/event-bus.js';
import type { DaemonStatus } from '../../src/api/services.js';
import type { TorStatusReport } from '../../src/feature/tor-status.js';

const TOKEN = 'ab'.repeat(32);
const base: DaemonStatus = {
  version: '0.1.0', network: 'regtest', backend: { kind: 'btcd', capabilities: {} }, tip: { height: 7, hash: 'cd'.repeat(32) }, synced: true, uptimeSeconds: 3, secp: 'native',
};
const onTor: TorStatusReport = {
  enabled: true, only: true, port: 80, managed: true, connected: true, bootstrapped: true, progress: 100, summary: 'Done',
  onions: [{ address: `${'a'.repeat(56)}.onion`, kind: 'node' }, { address: `${'b'.repeat(56)}.onion`, kind: 'introduction' }],
  restarts: 1, lastError: null,
  peers: [{ node: '11'.repeat(32), via: 'tor' }, { node: '22'.repeat(32), via: 'inbound' }],
};

describe('/status and Tor', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function statusOf(s: DaemonStatus): Promise<Record<string, unknown>> {
    app = await buildApp({ token: TOKEN, services: { status: { status: async () => s }, events: new EventBus() }, routes: [] });
    const res = await app.inject({ url: '/status', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    return res.json();
  }

  it('says whether tor is bootstrapped, which onions are published and how each peer was reached', async () => {
    expect((await statusOf({ ...base, tor: onTor })).tor).toEqual(onTor);
  });

  it('says only enabled:false when Tor is off', async () => {
    expect((await statusOf({ ...base, tor: { enabled: false } })).tor).toEqual({ enabled: false });
  });

  it('reports nothing of Tor that the schema does not name', async () => {
    const leaky = { ...onTor, torrc: '/secret/path', controlPassword: 'hunter2' } as unknown as TorStatusReport;
    const tor = (await statusOf({ ...base, tor: leaky })).tor as Record<string, unknown>;
    expect(Object.keys(tor).sort()).toEqual(Object.keys(onTor).sort());
  });
});
