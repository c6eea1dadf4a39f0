import { describe, expect, it } from 'vitest';
import { openBackend, parseBackendUrl, redactUrl } from '../../src/chain/open.js';
import { BitcoindSource } from '../../src/chain/backends/bitcoind.js';
import { BtcdSource } from '../../src/chain/backends/btcd.js';
import { EsploraSource } from '../../src/chain/backends/esplora.js';
import { isDeaddropError } from '../../src/util/errors.js';

describe('parseBackendUrl', () => {
  it('reads bitcoind with user/password, percent-encoded', () => {
    expect(parseBackendUrl('bitcoind://alice:p%40ss@127.0.0.1:18443')).toEqual({
      kind: 'bitcoind', rpcUrl: 'http://127.0.0.1:18443/', auth: { user: 'alice', pass: 'p@ss' }, rest: true,
    });
  });

  it('reads bitcoind with a cookie file and REST switched off', () => {
    expect(parseBackendUrl('bitcoind://127.0.0.1:18443?cookie=/data/regtest/.cookie&rest=0')).toEqual({
      kind: 'bitcoind', rpcUrl: 'http://127.0.0.1:18443/', auth: { cookieFile: '/data/regtest/.cookie' }, rest: false,
    });
  });

  it('reads btcd, IPv6 hosts and tls=1', () => {
    expect(parseBackendUrl('btcd://u:p@127.0.0.1:18334')).toEqual({ kind: 'btcd', rpcUrl: 'http://127.0.0.1:18334/', auth: { user: 'u', pass: 'p' } });
    expect(parseBackendUrl('btcd://u:p@[::1]:18334?tls=1')).toMatchObject({ rpcUrl: 'https://[::1]:18334/' });
  });

  it('reads electrum and esplora URLs', () => {
    expect(parseBackendUrl('electrum+tcp://127.0.0.1:50001')).toEqual({ kind: 'electrum', host: '127.0.0.1', port: 50001, tls: false });
    expect(parseBackendUrl('electrum+ssl://electrum.example.org:50002')).toEqual({ kind: 'electrum', host: 'electrum.example.org', port: 50002, tls: true });
    expect(parseBackendUrl('esplora+https://mempool.space/api')).toEqual({ kind: 'esplora', baseUrl: 'https://mempool.space/api' });
    expect(parseBackendUrl('esplora+http://127.0.0.1:3002')).toEqual({ kind: 'esplora', baseUrl: 'http://127.0.0.1:3002' });
  });

  it.each([
    ['', /non-empty/],
    ['nonsense', /not a URL/],
    ['ftp://u:SECRETPW@host:1', /unknown scheme/],
    ['btcd://127.0.0.1:18334', /user:pass/],
    ['bitcoind://127.0.0.1:18443', /user:pass@ or \?cookie=/],
    ['bitcoind://u:SECRETPW@127.0.0.1:18443?cookie=/x', /either/],
    ['bitcoind://u:SECRETPW@127.0.0.1', /port/],
    ['electrum+tcp://host', /port/],
    ['electrum+tcp://host:70000', /not a URL|port/],
    ['esplora+https://u:SECRETPW@host/api', /no credentials/],
  ])('rejects %j with BAD_INPUT and never shows the password', (url, why) => {
    let err: unknown;
    try {
      parseBackendUrl(url);
    } catch (e) {
      err = e;
    }
    expect(isDeaddropError(err, 'BAD_INPUT')).toBe(true);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).not.toContain('SECRETPW');
  });

  it('redacts passwords', () => {
    expect(redactUrl('btcd://u:hunter2@127.0.0.1:1')).toBe('btcd://u:***@127.0.0.1:1');
    expect(redactUrl('esplora+https://mempool.space/api')).toBe('esplora+https://mempool.space/api');
  });
});

describe('openBackend', () => {
  it('builds the right source without connecting', async () => {
    const opts = { expectedNetwork: 'regtest' as const };
    expect(await openBackend('btcd://u:p@127.0.0.1:1', opts)).toBeInstanceOf(BtcdSource);
    expect(await openBackend('bitcoind://u:p@127.0.0.1:1', opts)).toBeInstanceOf(BitcoindSource);
    expect(await openBackend('esplora+http://127.0.0.1:1', opts)).toBeInstanceOf(EsploraSource);
    const e = await openBackend('electrum+tcp://127.0.0.1:1', opts);
    expect(e.kind).toBe('electrum');
    await e.close();
  });
});
