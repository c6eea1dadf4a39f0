/**
 * `getBlockPrevouts` on BitcoindSource: `getblock <hash> 3` (Core 23+) against a local JSON-RPC
 * server that answers with Core-shaped text (amounts printed as Core prints them, 8 decimals),
 * and the fallbacks PrevoutFetcher relies on for older nodes. No bitcoind here.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { BitcoindSource, btcToSats, prevoutsFromVerboseBlock } from '../../../src/chain/backends/bitcoind.js';
import { isDeaddropError } from '../../../src/util/errors.js';
import { NETWORK_PARAMS } from '../../../src/util/network.js';
import { outpointKey, PrevoutFetcher } from '../../../src/chain/follow/prevouts.js';
import { txidOf } from '../../support/watch.js';
import { toHex } from '../../../src/util/bytes.js';
import { rawTx } from '../../support/tx.js';

/** sats → the decimal text Core's ValueFromAmount prints ("0.00012345", "50.00000000"). */
const btcText = (sats: bigint): string => `${sats / 100_000_000n}.${(sats % 100_000_000n).toString().padStart(8, '0')}`;

const P2TR = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(7));
const P2WPKH = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(9));
const P2PKH = Uint8Array.of(0x76, 0xa9, 0x14, ...new Uint8Array(20).fill(3), 0x88, 0xac);

// Two earlier transactions whose outputs the block spends.
const prevA = rawTx([{ txid: 'aa'.repeat(32), vout: 0 }], [{ script: P2TR, value: 12_345n }, { script: P2WPKH, value: 2_099_999_997_690_000n }]);
const prevB = rawTx([{ txid: 'bb'.repeat(32), vout: 1 }], [{ script: P2PKH, value: 1n }]);
const A = txidOf(prevA);
const B = txidOf(prevB);
const BLOCK = '00000000000000000001d3a5c7b9e1f3a5c7b9e1f3a5c7b9e1f3a5c7b9e1f3a5';

function prevoutJson(script: Uint8Array, sats: bigint, type: string, generated = false, height = 101): string {
  return `{"generated":${generated},"height":${height},"value":${btcText(sats)},"scriptPubKey":{"asm":"","desc":"raw(${toHex(script)})#00000000","hex":"${toHex(script)}","type":"${type}"}}`;
}

/** A block as `getblock <hash> 3` prints it (fields per Core's RPC help); `withPrevouts=false` gives the verbosity-2 shape. */
function verboseBlock(withPrevouts: boolean, valueA0 = btcText(12_345n)): string {
  const p = (json: string) => (withPrevouts ? `,"prevout":${json}` : '');
  const a0 = withPrevouts ? prevoutJson(P2TR, 12_345n, 'witness_v1_taproot').replace(`"value":${btcText(12_345n)}`, `"value":${valueA0}`) : '';
  return `{"hash":"${BLOCK}","confirmations":1,"height":102,"version":536870912,"versionHex":"20000000",
  "merkleroot":"${'11'.repeat(32)}","time":1700000000,"mediantime":1699999000,"nonce":0,"bits":"207fffff",
  "difficulty":4.656542373906925e-10,"chainwork":"${'00'.repeat(31)}cc","nTx":2,"previousblockhash":"${'22'.repeat(32)}",
  "strippedsize":300,"size":400,"weight":1300,"tx":[
   {"txid":"${'33'.repeat(32)}","hash":"${'33'.repeat(32)}","version":2,"size":100,"vsize":100,"weight":400,"locktime":0,
    "vin":[{"coinbase":"016600","txinwitness":["${'00'.repeat(32)}"],"sequence":4294967295}],
    "vout":[{"value":50.00001410,"n":0,"scriptPubKey":{"asm":"","desc":"","hex":"${toHex(P2TR)}","type":"witness_v1_taproot"}}],"hex":"00"},
   {"txid":"${'44'.repeat(32)}","hash":"${'45'.repeat(32)}","version":2,"size":300,"vsize":200,"weight":800,"locktime":0,
    "vin":[
     {"txid":"${A}","vout":0,"scriptSig":{"asm":"","hex":""},"txinwitness":["${'aa'.repeat(64)}"]${withPrevouts ? `,"prevout":${a0}` : ''},"sequence":4294967293},
     {"txid":"${A}","vout":1,"scriptSig":{"asm":"","hex":""},"txinwitness":["${'bb'.repeat(71)}","${'02'.repeat(33)}"]${p(prevoutJson(P2WPKH, 2_099_999_997_690_000n, 'witness_v0_keyhash'))},"sequence":4294967293},
     {"txid":"${B}","vout":0,"scriptSig":{"asm":"","hex":"${'47'.repeat(10)}"}${p(prevoutJson(P2PKH, 1n, 'pubkeyhash', true, 5))},"sequence":4294967293}],
    "vout":[{"value":0.00000000,"n":0,"scriptPubKey":{"asm":"OP_RETURN","desc":"","hex":"6a","type":"nulldata"}}],
    "fee":0.00001410,"hex":"00"}]}`;
}

// -- a JSON-RPC server answering like Core -------------------------------------------------------------

interface Node {
  /** Raw JSON text for `getblock <hash> 3`, or an RPC error. */
  getblock: () => string | { code: number; message: string };
  version: number;
  readonly calls: string[];
}

const servers: Server[] = [];
const sources: BitcoindSource[] = [];
afterEach(async () => {
  for (const s of sources.splice(0)) await s.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function node(init: Partial<Omit<Node, 'calls'>> = {}): Promise<{ node: Node; src: BitcoindSource }> {
  const n: Node = { getblock: () => verboseBlock(true), version: 280100, calls: [], ...init };
  const raws = new Map([[A, toHex(prevA)], [B, toHex(prevB)]]);
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const { id, method, params } = JSON.parse(body) as { id: number; method: string; params: unknown[] };
      n.calls.push(method);
      const ok = (resultText: string) => res.end(`{"result":${resultText},"error":null,"id":${id}}`);
      const fail = (code: number, message: string) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ result: null, error: { code, message }, id }));
      };
      if (method === 'getblockhash') return ok(JSON.stringify(NETWORK_PARAMS.regtest.genesisHash));
      if (method === 'getnetworkinfo') return ok(JSON.stringify({ version: n.version, subversion: '/Satoshi/' }));
      if (method === 'getrawtransaction') {
        const hex = raws.get(params[0] as string);
        return hex ? ok(JSON.stringify(hex)) : fail(-5, 'No such mempool or blockchain transaction');
      }
      if (method === 'getblock' && params[1] === 3) {
        if (params[0] !== BLOCK) return fail(-5, 'Block not found');
        const a = n.getblock();
        return typeof a === 'string' ? ok(a) : fail(a.code, a.message);
      }
      fail(-32601, 'Method not found');
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const src = new BitcoindSource({ url: `http://127.0.0.1:${port}/`, auth: { user: 'u', pass: 'p' }, rest: false, zmq: false }, { expectedNetwork: 'regtest' });
  sources.push(src);
  return { node: n, src };
}

const outpoints = [{ txid: A, vout: 0 }, { txid: A, vout: 1 }, { txid: B, vout: 0 }];

// -- tests -------------------------------------------------------------------------------------

describe('btcToSats', () => {
  it('converts the amounts Core prints exactly, edge values included', () => {
    const cases: [string, bigint][] = [
      ['0.00000001', 1n], ['0.1', 10_000_000n], ['0.3', 30_000_000n], ['0.29', 29_000_000n], ['1.1', 110_000_000n],
      ['0.00012345', 12_345n], ['50.00000000', 5_000_000_000n], ['20999999.97690000', 2_099_999_997_690_000n],
      ['21000000', 2_100_000_000_000_000n], ['0', 0n], ['1e-8', 1n], ['0.07', 7_000_000n],
    ];
    for (const [text, sats] of cases) expect(btcToSats(JSON.parse(text))).toBe(sats);
    // Float multiplication gets some of these wrong; the conversion must not.
    expect(Math.floor(0.29 * 1e8)).toBe(28_999_999);
  });

  it('recovers every whole-sat amount from its JSON number', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2_100_000_000_000_000n }), (sats) => btcToSats(JSON.parse(btcText(sats))) === sats),
      { numRuns: 20_000 },
    );
  });

  it('rejects what is not an amount', () => {
    for (const v of [0.123456789, -0.00000001, 21_000_000.00000001, 1e-9, Number.NaN, Infinity, '0.1', null, undefined, 10n]) {
      expect(btcToSats(v)).toBeUndefined();
    }
  });
});

describe('prevoutsFromVerboseBlock', () => {
  it('keys every non-coinbase input by outpoint with its script and exact value', () => {
    const { prevouts, complete } = prevoutsFromVerboseBlock(JSON.parse(verboseBlock(true)), BLOCK);
    expect(complete).toBe(true);
    expect([...prevouts.keys()]).toEqual([outpointKey(A, 0), outpointKey(A, 1), outpointKey(B, 0)]);
    expect(prevouts.get(outpointKey(A, 0))).toEqual({ script: P2TR, value: 12_345n });
    expect(prevouts.get(outpointKey(A, 1))).toEqual({ script: P2WPKH, value: 2_099_999_997_690_000n });
    expect(prevouts.get(outpointKey(B, 0))).toEqual({ script: P2PKH, value: 1n });
  });

  it('leaves out unusable prevouts and says the answer is incomplete', () => {
    const v2 = prevoutsFromVerboseBlock(JSON.parse(verboseBlock(false)), BLOCK);
    expect(v2).toEqual({ prevouts: new Map(), complete: false });
    const bad = prevoutsFromVerboseBlock(JSON.parse(verboseBlock(true, '0.123456789')), BLOCK);
    expect(bad.complete).toBe(false);
    expect(bad.prevouts.has(outpointKey(A, 0))).toBe(false);
    expect(bad.prevouts.size).toBe(2);
  });

  it('refuses an answer that is not the block asked for', () => {
    const wrong = () => prevoutsFromVerboseBlock(JSON.parse(verboseBlock(true)), '77'.repeat(32));
    expect(wrong).toThrow(/another block/);
    expect(() => prevoutsFromVerboseBlock('deadbeef', BLOCK)).toThrow(/block object/);
    expect(() => prevoutsFromVerboseBlock({ hash: BLOCK }, BLOCK)).toThrow(/block object/);
  });
});

describe('BitcoindSource.getBlockPrevouts', () => {
  it('serves PrevoutFetcher a whole block in one getblock 3, with no getrawtransaction', async () => {
    const { node: n, src } = await node();
    const r = await new PrevoutFetcher(src, null).fetch(outpoints, { blockHash: BLOCK });
    expect(r.found.get(outpointKey(A, 1))).toEqual({ script: P2WPKH, value: 2_099_999_997_690_000n });
    expect(r.found.size).toBe(3);
    expect(r.fresh).toHaveLength(3);
    expect(n.calls.filter((m) => m === 'getblock')).toHaveLength(1);
    expect(n.calls).not.toContain('getrawtransaction');
  });

  it('on Core before 23 (verbosity 3 answered like 2) returns nothing, stops asking, and the fetcher falls back', async () => {
    const { node: n, src } = await node({ getblock: () => verboseBlock(false), version: 220000 });
    expect(await src.getBlockPrevouts(BLOCK)).toEqual(new Map());
    expect(await src.getBlockPrevouts(BLOCK)).toEqual(new Map());
    expect(n.calls.filter((m) => m === 'getblock')).toHaveLength(1);
    const r = await new PrevoutFetcher(src, null).fetch(outpoints, { blockHash: BLOCK });
    expect(r.found.get(outpointKey(A, 0))).toEqual({ script: P2TR, value: 12_345n });
    expect(r.found.size).toBe(3);
    expect(n.calls.filter((m) => m === 'getrawtransaction')).toHaveLength(2); // one per distinct txid
  });

  it('on Core before 0.15 (boolean verbose only) returns nothing and stops asking', async () => {
    const { node: n, src } = await node({ getblock: () => ({ code: -1, message: 'JSON value is not a boolean as expected' }), version: 140300 });
    expect(await src.getBlockPrevouts(BLOCK)).toEqual(new Map());
    expect(await src.getBlockPrevouts(BLOCK)).toEqual(new Map());
    expect(n.calls.filter((m) => m === 'getblock')).toHaveLength(1);
  });

  it('on a current Core that lacks undo data for one block, returns nothing for it but keeps asking', async () => {
    const { node: n, src } = await node({ getblock: () => verboseBlock(false), version: 280100 });
    expect(await src.getBlockPrevouts(BLOCK)).toEqual(new Map());
    n.getblock = () => verboseBlock(true);
    expect((await src.getBlockPrevouts(BLOCK)).size).toBe(3);
    expect(n.calls.filter((m) => m === 'getblock')).toHaveLength(2);
  });

  it('NOT_FOUND for an unknown block, BACKEND_ERROR for other node errors, TypeError for a bad hash', async () => {
    const { node: n, src } = await node();
    await expect(src.getBlockPrevouts('77'.repeat(32))).rejects.toSatisfy((e) => isDeaddropError(e, 'NOT_FOUND'));
    n.getblock = () => ({ code: -1, message: 'Block not available (pruned data)' });
    await expect(src.getBlockPrevouts(BLOCK)).rejects.toSatisfy((e) => isDeaddropError(e, 'BACKEND_ERROR'));
    n.getblock = () => `{"hash":"${'77'.repeat(32)}","tx":[]}`;
    await expect(src.getBlockPrevouts(BLOCK)).rejects.toSatisfy((e) => isDeaddropError(e, 'PROTOCOL'));
    expect(() => src.getBlockPrevouts('XYZ')).toThrow(TypeError);
    await src.close();
    await expect(src.getBlockPrevouts(BLOCK)).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
  });
});
