/**
 * What a drop announces when the sender gives no endpoint, the same for `deaddrop drop send` and
 * `POST /drops/send`: the mixnet hint of the node's provider, an onion when Tor is on, and never
 * one of the node's own addresses (docs/protocol/mixnet.md, "Introductions over the mixnet").
 * The positive path through a real daemon's API and a drop on chain is in
 * test/node/mixnet/drop-netns.int.test.ts.
 */
import { describe, it, expect } from 'vitest';
import { introductionEndpoints } from '../../src/deaddrop/tor-send.js';
import { buildApp } from '../../src/api/app.js';
import { routeGroup } from '../../src/feature/routes.js';
import { EventBus } from '../../src/util/event-bus.js';
import { dropRoutes } from '../../src/deaddrop/routes.js';
import type { TorSendState } from '../../src/deaddrop/tor-send.js';
import { expectCode } from '../support/errors.js';

const HINT = 'mixnet:0123456789abcdef';

describe('introductionEndpoints', () => {
  it('takes the mixnet hint when no endpoint and no onion is given', () => {
    expect(introductionEndpoints([], undefined, HINT)).toEqual([HINT]);
  });

  it('keeps what the user gave, and adds no hint to it', () => {
    expect(introductionEndpoints(['ws://198.51.100.7:9000'], undefined, HINT)).toEqual(['ws://198.51.100.7:9000']);
    expect(introductionEndpoints([HINT], undefined, null)).toEqual([HINT]);
  });

  it('announces only the onion when Tor gives one', () => {
    expect(introductionEndpoints([], 80, HINT)).toEqual([]);
  });

  it('refuses, with one line, rather than fall back to an address', () => {
    const err = expectCode(() => introductionEndpoints([], undefined, null), 'BAD_INPUT', /no mixnet provider yet.*at least one --endpoint/);
    expect(err.message).not.toContain('\n');
  });
});

describe('POST /drops/send without endpoints', () => {
  const TOKEN = 'ab'.repeat(32);
  const RECIPIENT = 'sp1q'.padEnd(120, 'q');
  const locked = (): never => {
    throw new Error('not reached: no wallet');
  };

  async function send(body: Record<string, unknown>, hint: string | null, tor: TorSendState = { enabled: false }): Promise<{ status: number; json: { error?: string; message?: string }; asked: number }> {
    const asked: string[] = [];
    const app = await buildApp({
      token: TOKEN,
      services: { status: { status: async () => locked() }, events: new EventBus() },
      routes: [routeGroup('', dropRoutes, {
        wallet: () => undefined, invite: locked, ledger: locked, issuer: locked, drops: () => [], defaultFeeRate: async () => 1, tor: () => tor,
        mixnetHint: () => {
          asked.push('hint');
          return hint;
        },
      })],
    });
    try {
      const res = await app.inject({ method: 'POST', url: '/drops/send', headers: { authorization: `Bearer ${TOKEN}` }, payload: { recipient: RECIPIENT, ...body } });
      return { status: res.statusCode, json: res.json(), asked: asked.length };
    } finally {
      await app.close();
    }
  }

  it('is accepted (no endpoints field, or an empty one) when the node has a mixnet provider: next comes the wallet (409 here, none)', async () => {
    for (const body of [{}, { endpoints: [] }]) {
      const r = await send(body, HINT);
      expect(r.status, JSON.stringify(r.json)).toBe(409);
      expect(r.json.error).toBe('NOT_INITIALIZED');
    }
  });

  it('is refused with 400 when the node has no provider: no fallback to an address of the node', async () => {
    const r = await send({}, null);
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('BAD_INPUT');
    expect(r.json.message).toMatch(/no mixnet provider yet/);
  });

  it('announces the onion instead when the daemon runs Tor (no hint needed)', async () => {
    expect((await send({}, null, { enabled: true })).status).toBe(409);
  });

  it('still takes explicit endpoints, with or without a provider', async () => {
    const r = await send({ endpoints: ['ws://198.51.100.7:9000'] }, HINT);
    expect(r.status).toBe(409);
    expect(r.asked).toBe(0); // the hint is the default only, never added to what the user gave
  });
});
