import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BTCD_RELAY_FEE_BTC_PER_KVB, CORE_VERSION_FOR_ELECTRUMX, btcdVersionString, networkInfoFromGetInfo, smartFeeFromEstimateFee,
  startBtcdRpcProxy, translateRequest, type BtcdRpcProxy,
} from '../../src/regtest/btcd-rpc-proxy.js';

const HASH = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206';

describe('translateRequest (pure rewrite rules)', () => {
  it('turns getblock boolean verbosity into integers and leaves integers alone', () => {
    expect(translateRequest({ method: 'getblock', params: [HASH, false] }).forward).toEqual({ method: 'getblock', params: [HASH, 0] });
    expect(translateRequest({ method: 'getblock', params: [HASH, true] }).forward).toEqual({ method: 'getblock', params: [HASH, 1] });
    expect(translateRequest({ method: 'getblock', params: [HASH, 2] }).forward).toEqual({ method: 'getblock', params: [HASH, 2] });
    expect(translateRequest({ method: 'getblock', params: [HASH] }).forward).toEqual({ method: 'getblock', params: [HASH] });
  });

  it('answers getnetworkinfo from getinfo with a Core version ElectrumX accepts', () => {
    const t = translateRequest({ method: 'getnetworkinfo' });
    expect(t.forward).toEqual({ method: 'getinfo', params: [] });
    const mapped = t.map?.({ version: 260000, protocolversion: 70002, relayfee: 0.00002, connections: 0, errors: '' }, null);
    expect(mapped?.error).toBeNull();
    expect(mapped?.result).toMatchObject({ version: CORE_VERSION_FOR_ELECTRUMX, subversion: '/btcd:0.26.0/', relayfee: 0.00002, incrementalfee: 0.00002 });
    const err = { code: -1, message: 'down' };
    expect(t.map?.(null, err)).toEqual({ result: null, error: err });
  });

  it('answers getindexinfo with a synced txindex at the node height', () => {
    const t = translateRequest({ method: 'getindexinfo', params: [] });
    expect(t.forward.method).toBe('getblockcount');
    expect(t.map?.(42, null)).toEqual({ result: { txindex: { synced: true, best_block_height: 42 } }, error: null });
  });

  it('maps estimatesmartfee to estimatefee, and no estimate or an error to Core\'s {errors, blocks}', () => {
    const t = translateRequest({ method: 'estimatesmartfee', params: [6, 'CONSERVATIVE'] });
    expect(t.forward).toEqual({ method: 'estimatefee', params: [6] });
    expect(t.map?.(0.0002, null)).toEqual({ result: { feerate: 0.0002, blocks: 6 }, error: null });
    expect(t.map?.(0, null)?.result).toEqual({ errors: [expect.any(String)], blocks: 6 });
    expect(t.map?.(-1, null)?.result).toEqual({ errors: [expect.any(String)], blocks: 6 });
    const failed = t.map?.(null, { code: -1, message: 'not enough data' });
    expect(failed).toEqual({ result: { errors: ['btcd estimatefee: not enough data'], blocks: 6 }, error: null });
    // ElectrumX probes with no params: it must not look like "method not found".
    expect(translateRequest({ method: 'estimatesmartfee' }).forward).toEqual({ method: 'estimatefee', params: [1] });
  });

  it('adds the fee floors to getmempoolinfo without overriding what btcd reports', () => {
    const t = translateRequest({ method: 'getmempoolinfo' }, 0.00003);
    expect(t.map?.({ size: 2, bytes: 400 }, null)?.result).toEqual({
      size: 2, bytes: 400, loaded: true, mempoolminfee: 0.00003, minrelaytxfee: 0.00003, incrementalrelayfee: 0.00003,
    });
    expect(t.map?.({ size: 0, bytes: 0, minrelaytxfee: 0.5 }, null)?.result).toMatchObject({ minrelaytxfee: 0.5 });
  });

  it('forwards every other method unchanged', () => {
    expect(translateRequest({ method: 'getrawtransaction', params: ['ab', 0] })).toEqual({ forward: { method: 'getrawtransaction', params: ['ab', 0] } });
    expect(translateRequest({ method: 'getrawmempool' })).toEqual({ forward: { method: 'getrawmempool', params: [] } });
  });

  it('formats btcd versions and fills network info defaults from junk', () => {
    expect(btcdVersionString(260000)).toBe('0.26.0');
    expect(btcdVersionString(1020304)).toBe('1.2.3');
    expect(networkInfoFromGetInfo('junk')).toMatchObject({ version: CORE_VERSION_FOR_ELECTRUMX, relayfee: BTCD_RELAY_FEE_BTC_PER_KVB });
    expect(smartFeeFromEstimateFee(2, 'x', null)).toEqual({ errors: [expect.any(String)], blocks: 2 });
  });
});

describe('startBtcdRpcProxy (HTTP plumbing, against a scripted upstream)', () => {
  let upstream: Server | undefined;
  let proxy: BtcdRpcProxy | undefined;
  const seen: unknown[] = [];
  const auths: Array<string | undefined> = [];

  afterEach(async () => {
    await proxy?.close();
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
    seen.length = 0;
    auths.length = 0;
  });

  /** An upstream that answers in reverse order, echoing method names, erroring on 'boom'. */
  async function start(): Promise<BtcdRpcProxy> {
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        auths.push(req.headers.authorization);
        const parsed = JSON.parse(body) as Array<{ id: number; method: string }> | { id: number; method: string };
        seen.push(parsed);
        const answer = (r: { id: number; method: string }): unknown =>
          r.method === 'boom' ? { result: null, error: { code: -1, message: 'Command unimplemented' }, id: r.id } : { result: `ok:${r.method}`, error: null, id: r.id };
        const out = Array.isArray(parsed) ? parsed.map(answer).reverse() : answer(parsed);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out));
      });
    });
    await new Promise<void>((r) => upstream?.listen(0, '127.0.0.1', () => r()));
    const errors: string[] = [];
    proxy = await startBtcdRpcProxy({ target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`, onError: (l) => errors.push(l) });
    return proxy;
  }

  const post = async (url: string, body: unknown): Promise<unknown> => {
    const res = await fetch(url, { method: 'POST', headers: { authorization: 'Basic dTpw' }, body: JSON.stringify(body) });
    expect(res.headers.get('content-type')).toBe('application/json');
    return res.json();
  };

  it('gives every forwarded request a numeric id and puts the caller\'s id back', async () => {
    const p = await start();
    expect(await post(p.url, { method: 'getblockcount' })).toEqual({ result: 'ok:getblockcount', error: null, id: null });
    expect(await post(p.url, { method: 'getblockcount', id: 'abc' })).toEqual({ result: 'ok:getblockcount', error: null, id: 'abc' });
    for (const s of seen) expect(typeof (s as { id: unknown }).id).toBe('number');
    expect(auths).toEqual(['Basic dTpw', 'Basic dTpw']);
  });

  it('translates batches and matches answers by id even when upstream reorders them', async () => {
    const p = await start();
    const out = (await post(p.url, [
      { method: 'getblock', params: [HASH, false], id: 7 },
      { method: 'getindexinfo', id: 8 },
      { method: 'boom', id: 9 },
    ])) as Array<{ id: number; result: unknown; error: unknown }>;
    expect(out.map((o) => o.id)).toEqual([7, 8, 9]);
    expect(out[0]?.result).toBe('ok:getblock');
    expect(out[1]?.result).toEqual({ txindex: { synced: true, best_block_height: 'ok:getblockcount' } });
    expect(out[2]?.error).toEqual({ code: -1, message: 'Command unimplemented' });
    const sent = seen[0] as Array<{ method: string; params: unknown[] }>;
    expect(sent.map((s) => s.method)).toEqual(['getblock', 'getblockcount', 'boom']);
    expect(sent[0]?.params).toEqual([HASH, 0]);
  });

  it('answers a parse error for a body that is not JSON', async () => {
    const p = await start();
    const res = await fetch(p.url, { method: 'POST', body: '{nope' });
    expect(await res.json()).toMatchObject({ error: { code: -32700 } });
    expect(seen).toHaveLength(0);
  });
});
