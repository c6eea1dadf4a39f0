/** Dialect parsing against answers recorded from btcd v0.26 and Bitcoin Core (replayed, no node). */
import { describe, expect, it } from 'vitest';
import { btcPerKvbToSatPerVb, btcdDialect, coreDialect, parseReject } from '../../src/chain/dialect.js';
import { RpcError, type RpcCaller } from '../../src/chain/rpc.js';
import { isDeaddropError } from '../../src/util/errors.js';

const GENESIS = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206';

/** Replays `answers[method]` (a value, or an RpcError to throw) and records the calls. */
function replay(answers: Record<string, unknown>): RpcCaller & { calls: [string, readonly unknown[]][] } {
  const calls: [string, readonly unknown[]][] = [];
  return {
    calls,
    async call<T>(method: string, params: readonly unknown[] = []): Promise<T> {
      calls.push([method, params]);
      if (!(method in answers)) throw new RpcError(-32601, 'Method not found', method);
      const a = answers[method];
      if (a instanceof RpcError) throw a;
      return a as T;
    },
  };
}

describe('parseReject', () => {
  it('strips btcd\'s prefix and keeps the code', () => {
    const r = parseReject(new RpcError(-26, 'TX rejected: transaction abc is not standard: transaction output 0: payment is dust: 100', 'sendrawtransaction'), 'ab'.repeat(32));
    expect(r).toEqual({ accepted: false, reason: 'transaction abc is not standard: transaction output 0: payment is dust: 100', code: -26 });
  });

  it('treats "already known" answers as accepted', () => {
    const txid = 'cd'.repeat(32);
    expect(parseReject(new RpcError(-26, 'TX rejected: already have transaction in mempool cd', 'sendrawtransaction'), txid)).toEqual({ accepted: true, txid });
    expect(parseReject(new RpcError(-27, 'Transaction outputs already in utxo set', 'sendrawtransaction'), txid)).toEqual({ accepted: true, txid });
    expect(parseReject(new RpcError(-26, 'txn-already-in-mempool', 'sendrawtransaction'), txid)).toEqual({ accepted: true, txid });
  });

  it('keeps Core\'s reasons', () => {
    expect(parseReject(new RpcError(-26, 'txn-mempool-conflict', 'sendrawtransaction'), 'ef'.repeat(32))).toEqual({ accepted: false, reason: 'txn-mempool-conflict', code: -26 });
    expect(parseReject(new RpcError(-25, 'bad-txns-inputs-missingorspent', 'sendrawtransaction'), 'ef'.repeat(32))).toMatchObject({ accepted: false, code: -25 });
  });
});

describe('fee units', () => {
  it('converts BTC/kvB to sat/vB without float noise', () => {
    expect(btcPerKvbToSatPerVb(0.00002)).toBe(2);
    expect(btcPerKvbToSatPerVb(0.00001)).toBe(1);
    expect(btcPerKvbToSatPerVb(0.00012345)).toBe(12.345);
  });

  it('btcd: estimatefee errors or 0 mean no estimate, targets clamp to 25', async () => {
    const err = replay({ estimatefee: new RpcError(-1, 'not enough blocks have been observed', 'estimatefee') });
    expect(await btcdDialect.estimateFee(err, 6)).toBeUndefined();
    expect(await btcdDialect.estimateFee(replay({ estimatefee: 0 }), 6)).toBeUndefined();
    const ok = replay({ estimatefee: 0.00002 });
    expect(await btcdDialect.estimateFee(ok, 144)).toBe(2);
    expect(ok.calls[0]).toEqual(['estimatefee', [25]]);
  });

  it('Core: estimatesmartfee without feerate means no estimate', async () => {
    expect(await coreDialect.estimateFee(replay({ estimatesmartfee: { errors: ['Insufficient data or no feerate found'], blocks: 0 } }), 6)).toBeUndefined();
    expect(await coreDialect.estimateFee(replay({ estimatesmartfee: { feerate: 0.00010123, blocks: 6 } }), 6)).toBe(10.123);
    await expect(coreDialect.estimateFee(replay({}), 0)).rejects.toBeInstanceOf(RangeError);
  });
});

describe('dialect calls', () => {
  it('uses integer verbosity for getblock and getrawtransaction (btcd rejects booleans)', async () => {
    const r = replay({ getblock: '00', getrawtransaction: '00' });
    await btcdDialect.getBlockHex(r, GENESIS);
    await btcdDialect.getRawTransactionHex(r, GENESIS);
    expect(r.calls).toEqual([['getblock', [GENESIS, 0]], ['getrawtransaction', [GENESIS, 0]]]);
  });

  it('mines with generate on btcd and generatetoaddress on Core', async () => {
    const hashes = [GENESIS];
    const b = replay({ generate: hashes });
    expect(await btcdDialect.mine(b, 1, 'bcrt1qignored')).toEqual(hashes);
    expect(b.calls[0]?.[0]).toBe('generate');
    const c = replay({ generatetoaddress: hashes });
    await coreDialect.mine(c, 1, 'bcrt1qaddr');
    expect(c.calls[0]).toEqual(['generatetoaddress', [1, 'bcrt1qaddr']]);
  });

  it('reads btcd\'s getblockchaininfo, which omits false and zero fields', async () => {
    const info = await btcdDialect.blockchainInfo(replay({ getblockchaininfo: { chain: 'regtest', blocks: 3, bestblockhash: GENESIS, difficulty: 1 } }));
    expect(info).toEqual({ chain: 'regtest', blocks: 3, bestBlockHash: GENESIS, headers: 3, pruned: false, initialBlockDownload: false });
  });

  it('detects the network from getblockhash 0', async () => {
    expect(await btcdDialect.network(replay({ getblockhash: GENESIS }))).toBe('regtest');
    expect(await coreDialect.network(replay({ getblockhash: '33'.repeat(32) }))).toBeUndefined();
  });

  it('maps not-found answers of both nodes to NOT_FOUND', async () => {
    const btcdHeight = replay({ getblockhash: new RpcError(-1, 'Block number out of range', 'getblockhash') });
    const coreHeight = replay({ getblockhash: new RpcError(-8, 'Block height out of range', 'getblockhash') });
    const unknownTx = replay({ getrawtransaction: new RpcError(-5, 'No information available about transaction', 'getrawtransaction') });
    for (const p of [btcdDialect.getBlockHash(btcdHeight, 9), coreDialect.getBlockHash(coreHeight, 9), btcdDialect.getRawTransactionHex(unknownTx, GENESIS)]) {
      const err = await p.catch((e: unknown) => e);
      expect(isDeaddropError(err, 'NOT_FOUND')).toBe(true);
    }
  });

  it('rejects malformed node answers with PROTOCOL', async () => {
    const err = await btcdDialect.getTip(replay({ getblockchaininfo: { chain: 'regtest', blocks: -1, bestblockhash: 'zz' } })).catch((e: unknown) => e);
    expect(isDeaddropError(err, 'PROTOCOL')).toBe(true);
    const hdr = await btcdDialect.getBlockHeader(replay({ getblockheader: { hash: '44'.repeat(32), height: 1 } }), GENESIS).catch((e: unknown) => e);
    expect(isDeaddropError(hdr, 'PROTOCOL')).toBe(true);
  });

  it('testmempoolaccept: Core reads the reject reason, btcd has none', async () => {
    const txid = 'ab'.repeat(32);
    const r = replay({ testmempoolaccept: [{ txid, allowed: false, 'reject-reason': 'dust' }] });
    expect(await coreDialect.testMempoolAccept(r, '00')).toEqual({ accepted: false, reason: 'dust', code: -26 });
    expect(await btcdDialect.testMempoolAccept(replay({}), '00')).toBeUndefined();
  });

  it('rejects hashes that are not 64 lower-case hex', async () => {
    await expect(btcdDialect.getBlockHex(replay({}), 'XYZ')).rejects.toBeInstanceOf(TypeError);
  });
});
