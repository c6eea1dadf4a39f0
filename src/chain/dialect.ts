/**
 * Every difference between Bitcoin Core's and btcd's JSON-RPC, in one place.
 *
 * The RPC backends, the regtest harness and anything else that talks to a node call a
 * {@link NodeDialect}; nothing above this file knows which node answers.
 *
 * | concern              | Bitcoin Core                          | btcd v0.26                                   |
 * |----------------------|---------------------------------------|----------------------------------------------|
 * | getblock verbosity   | int (bool accepted)                   | int only (bool rejected with -32602)          |
 * | getrawtransaction    | verbose int or bool                   | int; confirmed txs need `--txindex`           |
 * | mining               | `generatetoaddress n addr`            | `generate n`, pays `--miningaddr` from start-up|
 * | fee estimate         | `estimatesmartfee` (BTC/kvB, errors[])| `estimatefee` (BTC/kB), errors until it has data, max 25 blocks |
 * | mempool accept test  | `testmempoolaccept`                   | none: a dry run is impossible, so `testMempoolAccept` returns undefined |
 * | rejects              | -26 `reason`, -25 missing inputs, -27 already in chain | "TX rejected: ..." with -26/-25/-27 |
 * | getblockchaininfo    | full                                  | omits false/zero fields (e.g. `initialblockdownload`) |
 * | network detection    | `getblockhash 0` (genesis) on both    |                                              |
 */
import type { BlockHeader, BroadcastResult, ChainTip } from './types.js';
import { RPC_CODES, RpcError, type RpcCaller } from './rpc.js';
import { DeaddropError } from '../util/errors.js';
import { networkFromGenesis, type Network } from '../util/network.js';
import { txidOfHex } from './verify.js';

export type NodeKind = 'bitcoind' | 'btcd';

/** The subset of `getblockchaininfo` both nodes report (btcd leaves false/zero fields out). */
export interface BlockchainInfo {
  readonly chain: string;
  readonly blocks: number;
  readonly bestBlockHash: string;
  readonly headers: number;
  readonly pruned: boolean;
  readonly initialBlockDownload: boolean;
}

/** How to speak to one kind of node. All methods take the caller, so one dialect object serves every connection. */
export interface NodeDialect {
  readonly kind: NodeKind;
  /** True when `mine()` ignores its address argument because the node pays a start-up address (btcd). */
  readonly miningAddressFixed: boolean;
  /** True when the node can dry-run a transaction against its mempool policy. */
  readonly hasTestMempoolAccept: boolean;

  blockchainInfo(rpc: RpcCaller): Promise<BlockchainInfo>;
  /** The network from the genesis block hash, or undefined for an unknown chain. */
  network(rpc: RpcCaller): Promise<Network | undefined>;
  getTip(rpc: RpcCaller): Promise<ChainTip>;
  /** Block hash at `height`; NOT_FOUND above the tip. */
  getBlockHash(rpc: RpcCaller, height: number): Promise<string>;
  /** NOT_FOUND for an unknown hash. */
  getBlockHeader(rpc: RpcCaller, hash: string): Promise<BlockHeader>;
  /** Serialized block as hex; NOT_FOUND for an unknown hash. */
  getBlockHex(rpc: RpcCaller, hash: string): Promise<string>;
  /** Serialized transaction as hex; NOT_FOUND if neither mempool nor index has it. */
  getRawTransactionHex(rpc: RpcCaller, txid: string): Promise<string>;
  getMempoolTxids(rpc: RpcCaller): Promise<string[]>;
  /** Mines `n` blocks and returns their hashes. On btcd they pay the `--miningaddr`, not `address`. */
  mine(rpc: RpcCaller, n: number, address: string): Promise<string[]>;
  /** sat/vB for confirmation within `targetBlocks`, or undefined when the node has no estimate yet. */
  estimateFee(rpc: RpcCaller, targetBlocks: number): Promise<number | undefined>;
  /** Dry-run policy check, or undefined when the node cannot do one (btcd). */
  testMempoolAccept(rpc: RpcCaller, rawHex: string): Promise<BroadcastResult | undefined>;
  /** Sends a transaction; a policy/consensus rejection is returned, not thrown. */
  sendRawTransaction(rpc: RpcCaller, rawHex: string): Promise<BroadcastResult>;
  invalidateBlock(rpc: RpcCaller, hash: string): Promise<void>;
  reconsiderBlock(rpc: RpcCaller, hash: string): Promise<void>;
}

const HASH_RE = /^[0-9a-f]{64}$/;

/** Throws TypeError unless `hash` is 64 lower-case hex characters. */
export function assertHash(hash: string, name: string): void {
  if (typeof hash !== 'string' || !HASH_RE.test(hash)) {
    throw new TypeError(`${name} must be 64 lower-case hex characters, got ${typeof hash === 'string' ? JSON.stringify(hash.slice(0, 80)) : typeof hash}`);
  }
}

function validateHash(v: unknown, name: string): string {
  if (typeof v !== 'string' || !HASH_RE.test(v)) throw DeaddropError.protocol(`${name}: expected a 64-hex hash`);
  return v;
}

function validateInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw DeaddropError.protocol(`${name}: expected a non-negative integer`);
  return v;
}

function validateHex(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) throw DeaddropError.protocol(`${name}: expected hex`);
  return v.toLowerCase();
}

function validateObject(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw DeaddropError.protocol(`${name}: expected an object`);
  return v as Record<string, unknown>;
}

/** Turns "not found" RPC answers (-5, out-of-range -1/-8) into NOT_FOUND, and rethrows the rest. */
async function notFoundAs<T>(what: string, fn: () => Promise<T>, extraCodes: readonly number[] = []): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RpcError && (err.code === RPC_CODES.INVALID_ADDRESS_OR_KEY || extraCodes.includes(err.code))) {
      throw DeaddropError.notFound(`${what} not found`);
    }
    throw err;
  }
}

/** A fee rate in BTC per 1000 vbytes → sat/vB, rounded to 0.001 sat/vB (float noise off). */
export function btcPerKvbToSatPerVb(btcPerKvb: number): number {
  return Math.round(btcPerKvb * 1e8) / 1000;
}

/**
 * Reads a `sendrawtransaction` error into a broadcast result. Both nodes use -25 (missing
 * or spent inputs), -26 (policy/consensus rejection) and -27 (already confirmed); btcd
 * prefixes the text with "TX rejected: ". "Already known" answers count as accepted: the
 * transaction is where the caller wanted it.
 */
export function parseReject(err: RpcError, txid: string): BroadcastResult {
  const reason = err.message.replace(/^TX rejected:\s*/, '').trim() || `rpc error ${err.code}`;
  const lower = reason.toLowerCase();
  if (
    err.code === RPC_CODES.VERIFY_ALREADY_IN_CHAIN ||
    lower.includes('already have transaction') ||
    lower.includes('txn-already-in-mempool') ||
    lower.includes('txn-already-known')
  ) {
    return { accepted: true, txid };
  }
  return { accepted: false, reason, code: err.code };
}

/** Throws BAD_INPUT unless the node could not decode the tx at all (-22), otherwise passes the error on. */
function rethrowDecodeError(err: unknown): never {
  if (err instanceof RpcError && err.code === -22) throw DeaddropError.badInput(`transaction could not be decoded: ${err.message}`);
  throw err;
}

function parseHeader(v: unknown, hash: string): BlockHeader {
  const o = validateObject(v, 'getblockheader');
  const gotHash = validateHash(o.hash, 'getblockheader.hash');
  if (gotHash !== hash) throw DeaddropError.protocol('getblockheader: node answered for another block');
  const height = validateInt(o.height, 'getblockheader.height');
  // Core omits previousblockhash for the genesis block; btcd sends zeros.
  const prevHash = o.previousblockhash === undefined ? '0'.repeat(64) : validateHash(o.previousblockhash, 'getblockheader.previousblockhash');
  return {
    height,
    hash: gotHash,
    prevHash,
    merkleRoot: validateHash(o.merkleroot, 'getblockheader.merkleroot'),
    time: validateInt(o.time, 'getblockheader.time'),
  };
}

function parseBlockchainInfo(v: unknown): BlockchainInfo {
  const o = validateObject(v, 'getblockchaininfo');
  if (typeof o.chain !== 'string') throw DeaddropError.protocol('getblockchaininfo.chain: expected a string');
  const blocks = validateInt(o.blocks, 'getblockchaininfo.blocks');
  return {
    chain: o.chain,
    blocks,
    bestBlockHash: validateHash(o.bestblockhash, 'getblockchaininfo.bestblockhash'),
    // btcd leaves out fields that are false or zero.
    headers: o.headers === undefined ? blocks : validateInt(o.headers, 'getblockchaininfo.headers'),
    pruned: o.pruned === true,
    initialBlockDownload: o.initialblockdownload === true,
  };
}

function checkCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > 10_000) throw new RangeError(`block count must be an integer in 1..10000, got ${n}`);
}

function checkTarget(t: number): void {
  if (!Number.isSafeInteger(t) || t < 1 || t > 1008) throw new RangeError(`targetBlocks must be an integer in 1..1008, got ${t}`);
}

function validateHashList(v: unknown, name: string): string[] {
  if (!Array.isArray(v)) throw DeaddropError.protocol(`${name}: expected an array`);
  return v.map((h, i) => validateHash(h, `${name}[${i}]`));
}

/** Parts both nodes share; each dialect overrides what differs. */
function baseDialect(): Omit<NodeDialect, 'kind' | 'miningAddressFixed' | 'hasTestMempoolAccept' | 'mine' | 'estimateFee' | 'testMempoolAccept'> {
  return {
    async blockchainInfo(rpc) {
      return parseBlockchainInfo(await rpc.call('getblockchaininfo'));
    },
    async network(rpc) {
      return networkFromGenesis(validateHash(await rpc.call('getblockhash', [0]), 'getblockhash 0'));
    },
    async getTip(rpc) {
      // One call, so height and hash belong to the same tip.
      const info = parseBlockchainInfo(await rpc.call('getblockchaininfo'));
      return { height: info.blocks, hash: info.bestBlockHash };
    },
    async getBlockHash(rpc, height) {
      if (!Number.isSafeInteger(height) || height < 0) throw new RangeError(`height must be a non-negative integer, got ${height}`);
      // Core: -8 "Block height out of range"; btcd: -1 "Block number out of range".
      const h = await notFoundAs(`block at height ${height}`, () => rpc.call('getblockhash', [height]), [RPC_CODES.INVALID_PARAMETER, RPC_CODES.MISC]);
      return validateHash(h, 'getblockhash');
    },
    async getBlockHeader(rpc, hash) {
      assertHash(hash, 'hash');
      return parseHeader(await notFoundAs(`block ${hash}`, () => rpc.call('getblockheader', [hash, true])), hash);
    },
    async getBlockHex(rpc, hash) {
      assertHash(hash, 'hash');
      // Integer verbosity: btcd rejects a boolean, Core accepts both.
      return validateHex(await notFoundAs(`block ${hash}`, () => rpc.call('getblock', [hash, 0])), 'getblock');
    },
    async getRawTransactionHex(rpc, id) {
      assertHash(id, 'txid');
      return validateHex(await notFoundAs(`transaction ${id}`, () => rpc.call('getrawtransaction', [id, 0])), 'getrawtransaction');
    },
    async getMempoolTxids(rpc) {
      return validateHashList(await rpc.call('getrawmempool', [false]), 'getrawmempool');
    },
    async sendRawTransaction(rpc, rawHex) {
      const id = txidOfHex(rawHex);
      try {
        const got = await rpc.call('sendrawtransaction', [rawHex]);
        return { accepted: true, txid: validateHash(got, 'sendrawtransaction') };
      } catch (err) {
        if (err instanceof RpcError && err.code !== -22) return parseReject(err, id);
        return rethrowDecodeError(err);
      }
    },
    async invalidateBlock(rpc, hash) {
      assertHash(hash, 'hash');
      await notFoundAs(`block ${hash}`, () => rpc.call('invalidateblock', [hash]));
    },
    async reconsiderBlock(rpc, hash) {
      assertHash(hash, 'hash');
      await notFoundAs(`block ${hash}`, () => rpc.call('reconsiderblock', [hash]));
    },
  };
}

/** Bitcoin Core (and Knots). */
export const coreDialect: NodeDialect = Object.freeze<NodeDialect>({
  ...baseDialect(),
  kind: 'bitcoind',
  miningAddressFixed: false,
  hasTestMempoolAccept: true,
  async mine(rpc, n, address) {
    checkCount(n);
    return validateHashList(await rpc.call('generatetoaddress', [n, address], { timeoutMs: 120_000 }), 'generatetoaddress');
  },
  async estimateFee(rpc, target) {
    checkTarget(target);
    const o = validateObject(await rpc.call('estimatesmartfee', [target]), 'estimatesmartfee');
    // Without data Core leaves `feerate` out and fills `errors`.
    return typeof o.feerate === 'number' && o.feerate > 0 ? btcPerKvbToSatPerVb(o.feerate) : undefined;
  },
  async testMempoolAccept(rpc, rawHex) {
    let res: unknown;
    try {
      res = await rpc.call('testmempoolaccept', [[rawHex]]);
    } catch (err) {
      return rethrowDecodeError(err);
    }
    if (!Array.isArray(res) || res.length !== 1) throw DeaddropError.protocol('testmempoolaccept: expected one result');
    const r = validateObject(res[0], 'testmempoolaccept[0]');
    const id = validateHash(r.txid, 'testmempoolaccept.txid');
    if (r.allowed === true) return { accepted: true, txid: id };
    const reason = typeof r['reject-reason'] === 'string' ? r['reject-reason'] : 'rejected';
    return { accepted: false, reason, code: RPC_CODES.VERIFY_REJECTED };
  },
});

/** btcd v0.26 (regtest node of the test suite). */
export const btcdDialect: NodeDialect = Object.freeze<NodeDialect>({
  ...baseDialect(),
  kind: 'btcd',
  miningAddressFixed: true,
  hasTestMempoolAccept: false,
  async mine(rpc, n) {
    checkCount(n);
    // btcd has no generatetoaddress: blocks pay the --miningaddr given at start-up.
    return validateHashList(await rpc.call('generate', [n], { timeoutMs: 120_000 }), 'generate');
  },
  async estimateFee(rpc, target) {
    checkTarget(target);
    try {
      // btcd estimates at most 25 blocks ahead and answers in BTC/kB.
      const v = await rpc.call('estimatefee', [Math.min(target, 25)]);
      return typeof v === 'number' && v > 0 ? btcPerKvbToSatPerVb(v) : undefined;
    } catch (err) {
      // "not enough blocks have been observed" until the estimator has data.
      if (err instanceof RpcError) return undefined;
      throw err;
    }
  },
  async testMempoolAccept() {
    // btcd has no dry-run; callers fall back to broadcasting and reading the reject reason.
    return undefined;
  },
});

/** The dialect for a node kind. */
export function dialectFor(kind: NodeKind): NodeDialect {
  return kind === 'btcd' ? btcdDialect : coreDialect;
}
