/**
 * Esplora backend decoding, replaying answers in the shape mempool.space/blockstream serve
 * (injected fetch, no network). Live use: `esplora+https://mempool.space/api`.
 */
import { describe, expect, it } from 'vitest';
import { EsploraSource, parseEsploraReject, scriptHash } from '../../../src/chain/backends/esplora.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { fromHex } from '../../../src/util/bytes.js';
import { activeTimers } from '../../support/resources.js';

const GENESIS = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206';
const GENESIS_RAW =
  '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f20020000000101000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000';
const COINBASE_TXID = '4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b';
const COINBASE_RAW = GENESIS_RAW.slice(2 * 81); // after the 80-byte header and the 1-byte tx count

type Route = (init: RequestInit | undefined) => Response | Promise<Response>;

function server(routes: Record<string, Route | string | object>) {
  const calls: string[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const key = `${init?.method ?? 'GET'} ${url.pathname.replace(/^\/api/, '')}`;
    calls.push(key);
    const r = routes[key];
    if (r === undefined) return new Response('Not Found', { status: 404 });
    if (typeof r === 'function') return (r as Route)(init);
    if (typeof r === 'string') return new Response(r);
    if (r instanceof Uint8Array) return new Response(r);
    return new Response(JSON.stringify(r));
  }) as typeof fetch;
  return { fetchFn, calls };
}

const blockJson = { id: GENESIS, height: 0, version: 1, timestamp: 1296688602, merkle_root: COINBASE_TXID, previousblockhash: null };

function source(routes: Record<string, Route | string | object>, expectedNetwork: 'regtest' | 'mainnet' = 'regtest') {
  const s = server({ 'GET /block-height/0': GENESIS, [`GET /block/${GENESIS}`]: blockJson, 'GET /blocks/tip/hash': GENESIS, ...routes });
  return { src: new EsploraSource({ baseUrl: 'https://example.test/api', fetch: s.fetchFn, retries: 2 }, { expectedNetwork, pollIntervalMs: 10 }), calls: s.calls };
}

describe('EsploraSource', () => {
  it('checks the network at ready() and reads the tip and headers', async () => {
    const { src } = source({});
    await src.ready();
    expect(await src.getTip()).toEqual({ height: 0, hash: GENESIS });
    expect(await src.getBlockHeader(GENESIS)).toEqual({ height: 0, hash: GENESIS, prevHash: '0'.repeat(64), merkleRoot: COINBASE_TXID, time: 1296688602 });
    await src.close();
    const wrong = source({}, 'mainnet').src;
    const err = await wrong.ready().catch((e: unknown) => e);
    expect(isDeaddropError(err, 'WRONG_NETWORK')).toBe(true);
  });

  it('serves raw blocks and transactions only when they hash to what was asked', async () => {
    const tampered = fromHex(GENESIS_RAW);
    tampered[100] = (tampered[100] as number) ^ 1;
    const { src } = source({
      [`GET /block/${GENESIS}/raw`]: () => new Response(fromHex(GENESIS_RAW)),
      [`GET /tx/${COINBASE_TXID}/raw`]: () => new Response(fromHex(COINBASE_RAW)),
      [`GET /block/${'11'.repeat(32)}/raw`]: () => new Response(tampered),
    });
    expect((await src.getRawBlock(GENESIS)).length).toBe(GENESIS_RAW.length / 2);
    expect((await src.getRawTransaction(COINBASE_TXID)).length).toBe(COINBASE_RAW.length / 2);
    expect(isDeaddropError(await src.getRawBlock('11'.repeat(32)).catch((e: unknown) => e), 'PROTOCOL')).toBe(true);
    expect(isDeaddropError(await src.getRawTransaction('22'.repeat(32)).catch((e: unknown) => e), 'NOT_FOUND')).toBe(true);
  });

  it('retries GETs on 503 but never retries POST /tx', async () => {
    let gets = 0;
    let posts = 0;
    const { src } = source({
      'GET /mempool/txids': () => (++gets < 3 ? new Response('busy', { status: 503 }) : new Response(JSON.stringify(['aa'.repeat(32)]))),
      'POST /tx': () => (posts++, new Response('busy', { status: 503 })),
    });
    expect(await src.getMempoolTxids()).toEqual(['aa'.repeat(32)]);
    expect(gets).toBe(3);
    const err = await src.broadcast(fromHex(COINBASE_RAW)).catch((e: unknown) => e);
    expect(isDeaddropError(err, 'BACKEND_UNREACHABLE')).toBe(true);
    expect(posts).toBe(1);
  });

  it('reads broadcast rejections', async () => {
    const { src } = source({
      'POST /tx': () => new Response('sendrawtransaction RPC error: {"code":-26,"message":"min relay fee not met, 100 < 141"}', { status: 400 }),
    });
    expect(await src.broadcast(fromHex(COINBASE_RAW))).toEqual({ accepted: false, reason: 'min relay fee not met, 100 < 141', code: -26 });
    expect(parseEsploraReject('sendrawtransaction RPC error: {"code":-27,"message":"Transaction already in block chain"}', COINBASE_TXID)).toEqual({ accepted: true, txid: COINBASE_TXID });
    expect(parseEsploraReject('plain text', COINBASE_TXID)).toEqual({ accepted: false, reason: 'plain text' });
  });

  it('picks the fee for the largest listed target not above the one asked, else the fallback', async () => {
    expect(await source({ 'GET /fee-estimates': { '1': 20.5, '3': 12, '6': 8.25, '144': 1.1 } }).src.estimateFee(5, 2)).toEqual({ satPerVb: 12, source: 'node' });
    expect(await source({ 'GET /fee-estimates': {} }).src.estimateFee(6, 2)).toEqual({ satPerVb: 2, source: 'fallback' });
  });

  it('pages script history and reads utxos', async () => {
    const script = fromHex('0014751e76e8199196d454941c45d1b3a323f1433bd6');
    const sh = scriptHash(script);
    const tx = (i: number, h: number) => ({ txid: i.toString(16).padStart(64, '0'), status: h ? { confirmed: true, block_height: h } : { confirmed: false } });
    const page1 = [tx(999, 0), ...Array.from({ length: 25 }, (_, i) => tx(i + 1, 1000 - i))];
    const page2 = [tx(26, 900)];
    const { src } = source({
      [`GET /scripthash/${sh}/txs`]: page1,
      [`GET /scripthash/${sh}/txs/chain/${tx(25, 0).txid}`]: page2,
      [`GET /scripthash/${sh}/utxo`]: [{ txid: tx(1, 0).txid, vout: 1, value: 5000, status: { confirmed: true, block_height: 1000 } }],
    });
    const hist = await src.getScriptHistory(script);
    expect(hist).toHaveLength(27);
    expect(hist[0]).toEqual({ txid: tx(999, 0).txid, height: 0 });
    expect(hist[26]).toEqual({ txid: tx(26, 0).txid, height: 900 });
    expect(await src.getScriptUnspent(script)).toEqual([{ txid: tx(1, 0).txid, vout: 1, value: 5000n, height: 1000 }]);
  });

  it('verifies merkle proofs against the header', async () => {
    const { src } = source({ [`GET /tx/${COINBASE_TXID}/merkle-proof`]: { block_height: 0, merkle: [], pos: 0 } });
    expect(await src.verifyTxInBlock(COINBASE_TXID, 0)).toBe(true);
    const bad = source({ [`GET /tx/${COINBASE_TXID}/merkle-proof`]: { block_height: 0, merkle: ['55'.repeat(32)], pos: 0 } }).src;
    expect(await bad.verifyTxInBlock(COINBASE_TXID, 0)).toBe(false);
  });

  it('refuses calls after close()', async () => {
    const { src } = source({});
    await src.close();
    expect(() => src.subscribe(() => undefined)).toThrow(/closed/);
    expect(isDeaddropError(await src.getTip().catch((e: unknown) => e), 'CLOSED')).toBe(true);
  });
});

describe('EsploraSource lifecycle', () => {
  it('close during open aborts the request in flight; ready rejects, close resolves, nothing is left running', async () => {
    const before = activeTimers();
    let inFlight = 0;
    const hanging = ((_url: string | URL | Request, init?: RequestInit): Promise<Response> => new Promise((_resolve, reject) => {
      inFlight++;
      init?.signal?.addEventListener('abort', () => {
        inFlight--;
        reject(init.signal?.reason);
      }, { once: true });
    })) as typeof fetch;
    const src = new EsploraSource({ baseUrl: 'https://example.test/api', fetch: hanging }, { expectedNetwork: 'regtest', pollIntervalMs: 10, timeoutMs: 60_000 });
    const settled = src.ready().then(() => 'resolved', (e: unknown) => e);
    await expect.poll(() => inFlight).toBe(1);
    await src.close();
    expect(await settled).not.toBe('resolved');
    expect(inFlight).toBe(0);
    expect(activeTimers()).toBeLessThanOrEqual(before);
    await expect(src.ready()).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
  });
});
