/** What `drop send` and `POST /drops/send` announce with and without Tor on the daemon. */
import { describe, it, expect } from 'vitest';
import { onionPortFor } from '../../src/deaddrop/tor-send.js';
import { isOnionEndpointString, normalizeEndpoint, onionAddress, onionEndpoint } from '../../src/deaddrop/endpoint.js';
import { DeaddropError } from '../../src/util/errors.js';
import { buildApp } from '../../src/api/app.js';
import { routeGroup } from '../../src/feature/routes.js';
import { EventBus } from '../../src/util/event-bus.js';
import { dropRoutes } from '../../src/deaddrop/routes.js';
import type { TorSendState } from '../../src/deaddrop/tor-send.js';
import { expectCode } from '../support/errors.js';

const ONION = `ws://${onionAddress(new Uint8Array(32).fill(7))}.onion`;

function failure(f: () => unknown): string {
  return expectCode(f, 'BAD_INPUT').message;
}

describe('onion announced by an introduction', () => {
  it('is announced by default when the daemon runs Tor, on its onion port', () => {
    expect(onionPortFor({ endpoints: [] }, { enabled: true })).toBe(80);
    expect(onionPortFor({ endpoints: ['ws://1.2.3.4:9000'] }, { enabled: true, only: false, port: 8080 })).toBe(8080);
  });

  it('is not announced by default without Tor, but --onion / --onion-port still announce it', () => {
    expect(onionPortFor({ endpoints: ['ws://1.2.3.4:9000'] }, { enabled: false })).toBeUndefined();
    expect(onionPortFor({ endpoints: [], onion: true }, { enabled: false })).toBe(80);
    expect(onionPortFor({ endpoints: [], onionPort: 9001 }, { enabled: false })).toBe(9001);
  });

  it('--no-onion opts out even with Tor on', () => {
    expect(onionPortFor({ endpoints: ['ws://1.2.3.4:9000'], onion: false }, { enabled: true })).toBeUndefined();
    expect(failure(() => onionPortFor({ endpoints: [], onion: false, onionPort: 80 }, { enabled: true }))).toMatch(/not both/);
  });

  it('Tor-only refuses a clear-net endpoint with one line, and accepts onion endpoints', () => {
    for (const clear of ['ws://1.2.3.4:9000', '1.2.3.4:9000', 'ws://[2001:db8::1]:9', 'wss://relay.example.org', 'ws://node.example.org/path']) {
      const msg = failure(() => onionPortFor({ endpoints: [ONION, clear] }, { enabled: true, only: true }));
      expect(msg).toMatch(/Tor-only.*clear-net.*remove --endpoint/);
      expect(msg).toContain(clear);
      expect(msg).not.toContain('\n');
    }
    expect(onionPortFor({ endpoints: [ONION] }, { enabled: true, only: true })).toBe(80);
    // the same endpoints pass when Tor is not "only"
    expect(onionPortFor({ endpoints: ['ws://1.2.3.4:9000'] }, { enabled: true, only: false })).toBe(80);
  });
});

describe('onion endpoint strings', () => {
  it('are canonical: no default port, same as normalizeEndpoint', () => {
    const key = new Uint8Array(32).fill(7);
    expect(onionEndpoint(key, 80)).toBe(ONION);
    expect(onionEndpoint(key, 80)).toBe(normalizeEndpoint(`${ONION}:80`));
    expect(onionEndpoint(key, 9001)).toBe(`${ONION}:9001`);
    expect(() => onionEndpoint(key, 0)).toThrow(DeaddropError);
  });

  it('tells onion endpoints from clear-net ones', () => {
    expect(isOnionEndpointString(ONION)).toBe(true);
    expect(isOnionEndpointString(`${ONION}:9001`)).toBe(true);
    expect(isOnionEndpointString(`${ONION}/path`)).toBe(true);
    expect(isOnionEndpointString('ws://1.2.3.4:80')).toBe(false);
    expect(isOnionEndpointString('wss://relay.example.org')).toBe(false);
  });
});

describe('POST /drops/send and the daemon\'s Tor', () => {
  const TOKEN = 'ef'.repeat(32);
  const RECIPIENT = 'sp1q'.padEnd(120, 'q');
  const locked = (): never => {
    throw new Error('not reached: no wallet');
  };

  async function send(tor: TorSendState, body: Record<string, unknown>): Promise<{ status: number; json: { error?: string; message?: string } }> {
    const app = await buildApp({
      token: TOKEN,
      services: { status: { status: async () => locked() }, events: new EventBus() },
      routes: [routeGroup('', dropRoutes, { wallet: () => undefined, invite: locked, ledger: locked, issuer: locked, drops: () => [], defaultFeeRate: async () => 1, tor: () => tor })],
    });
    try {
      const res = await app.inject({ method: 'POST', url: '/drops/send', headers: { authorization: `Bearer ${TOKEN}` }, payload: { recipient: RECIPIENT, ...body } });
      return { status: res.statusCode, json: res.json() };
    } finally {
      await app.close();
    }
  }

  it('refuses a clear-net endpoint in Tor-only mode before anything else (400, one line)', async () => {
    const r = await send({ enabled: true, only: true }, { endpoints: ['ws://127.0.0.1:9000'] });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('BAD_INPUT');
    expect(r.json.message).toMatch(/Tor-only.*clear-net.*ws:\/\/127\.0\.0\.1:9000/);
  });

  it('lets an onion endpoint through in Tor-only mode, and accepts "onion": false (then: no wallet, 409)', async () => {
    expect((await send({ enabled: true, only: true }, { endpoints: [ONION] })).status).toBe(409);
    expect((await send({ enabled: true }, { endpoints: ['ws://127.0.0.1:9000'], onion: false })).status).toBe(409);
  });
});
