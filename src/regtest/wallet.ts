/**
 * The regtest harness's own funding wallet: one P2WPKH key that receives every mined
 * coinbase and signs sends with @scure/btc-signer. It keeps no state that the node does
 * not also have: confirmed coins come from reading the chain (so it works after a
 * re-attach and across `invalidateblock` reorgs), unconfirmed ones from the mempool.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { Address, OutScript, Transaction, p2wpkh } from '@scure/btc-signer';
import type { NodeDialect } from '../chain/dialect.js';
import type { RpcClient } from '../chain/rpc.js';
import type { Tx } from '../chain/block.js';
import { hexToBytesStrict, parseServedBlock, parseServedTx } from '../chain/verify.js';
import { DeaddropError } from '../util/errors.js';
import { btcSignerNetwork, type Network } from '../util/network.js';
import { toHex } from '../util/bytes.js';

/** Blocks a coinbase output must wait before it can be spent (consensus). */
export const COINBASE_MATURITY = 100;
/** Fee rate used when the caller gives none: above the 1 sat/vB relay minimum of Core and btcd. */
export const DEFAULT_FEE_RATE = 2;
const CHANGE_MIN = 1000n;
const NON_RBF_SEQUENCE = 0xffffffff;
const RBF_SEQUENCE = 0xfffffffd;
const SCAN_CHUNK = 100;

export interface WalletUtxo {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  /** Block height, or 0 while in the mempool. */
  readonly height: number;
  readonly coinbase: boolean;
}

/** One output to pay: an address or a raw output script. */
export type OutputSpec = { readonly address: string; readonly sats: bigint } | { readonly script: Uint8Array; readonly sats: bigint };

export interface BuildOptions {
  /** sat/vB; default {@link DEFAULT_FEE_RATE}. */
  readonly feeRate?: number;
  /** Spend exactly these outpoints (they may already be spent in the mempool: double-spend tests). */
  readonly inputs?: readonly { readonly txid: string; readonly vout: number }[];
  /** Signal BIP125 replaceability; default false. */
  readonly rbf?: boolean;
}

export interface BuiltTx {
  readonly txid: string;
  readonly hex: string;
  readonly raw: Uint8Array;
  readonly inputs: readonly { readonly txid: string; readonly vout: number }[];
  readonly fee: bigint;
}

const key = (txid: string, vout: number): string => `${txid}:${vout}`;

/** P2WPKH funding wallet over a node's RPC. Operations are serialized. */
export class FundingWallet {
  readonly address: string;
  readonly script: Uint8Array;
  readonly #scriptHex: string;
  readonly #secretKey: Uint8Array;
  readonly #net: ReturnType<typeof btcSignerNetwork>;
  #hashes: string[] = [];
  #confirmed = new Map<string, WalletUtxo>();
  #mempool = new Map<string, Tx>();
  #tipHeight = -1;
  #queue: Promise<unknown> = Promise.resolve();

  readonly #rpc: RpcClient;
  readonly #dialect: NodeDialect;

  constructor(
    rpc: RpcClient,
    dialect: NodeDialect,
    secretKey: Uint8Array,
    network: Network = 'regtest',
  ) {
    this.#rpc = rpc;
    this.#dialect = dialect;
    if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) throw new TypeError('secretKey must be 32 bytes');
    this.#secretKey = secretKey;
    this.#net = btcSignerNetwork(network);
    const pay = p2wpkh(secp256k1.getPublicKey(secretKey, true), this.#net);
    if (pay.address === undefined) throw new TypeError('could not derive the funding address');
    this.address = pay.address;
    this.script = pay.script;
    this.#scriptHex = toHex(pay.script);
  }

  /** The P2WPKH address of `secretKey` (the btcd `--miningaddr`). */
  static addressOf(secretKey: Uint8Array, network: Network = 'regtest'): string {
    const address = p2wpkh(secp256k1.getPublicKey(secretKey, true), btcSignerNetwork(network)).address;
    if (address === undefined) throw new TypeError('could not derive the funding address');
    return address;
  }

  /** A fresh random secret key for a funding wallet. */
  static randomKey(): Uint8Array {
    return secp256k1.utils.randomSecretKey();
  }

  /** Coins that can be spent now (mature, not spent in the mempool). */
  spendable(): Promise<WalletUtxo[]> {
    return this.#serialize(async () => {
      await this.#sync();
      return this.#available();
    });
  }

  /** Sum of {@link spendable}. */
  async balance(): Promise<bigint> {
    return (await this.spendable()).reduce((a, u) => a + u.value, 0n);
  }

  /** Builds and signs a transaction without sending it. */
  build(outputs: readonly OutputSpec[], opts: BuildOptions = {}): Promise<BuiltTx> {
    return this.#serialize(async () => {
      await this.#sync();
      return this.#buildSynced(outputs, opts);
    });
  }

  /** Builds, signs and sends; REJECTED with the node's reason if the node refuses. Returns the txid. */
  send(outputs: readonly OutputSpec[], opts: BuildOptions = {}): Promise<string> {
    return this.#serialize(async () => {
      await this.#sync();
      const tx = this.#buildSynced(outputs, opts);
      const res = await this.#dialect.sendRawTransaction(this.#rpc, tx.hex);
      if (!res.accepted) throw new DeaddropError('REJECTED', `node rejected the funding transaction: ${res.reason}`, { code: res.code });
      this.#mempool.set(tx.txid, parseServedTx(tx.raw, 'funding wallet'));
      return tx.txid;
    });
  }

  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Brings the chain view up to the node's tip (rescanning after a reorg) and refreshes the mempool view. */
  async #sync(): Promise<void> {
    const tip = await this.#dialect.getTip(this.#rpc);
    const last = this.#hashes.length - 1;
    if (last >= 0) {
      const still = last <= tip.height ? await this.#dialect.getBlockHash(this.#rpc, last) : undefined;
      if (still !== this.#hashes[last]) {
        this.#hashes = [];
        this.#confirmed.clear();
      }
    }
    for (let from = this.#hashes.length; from <= tip.height; from += SCAN_CHUNK) {
      await this.#scanBlocks(from, Math.min(tip.height, from + SCAN_CHUNK - 1));
    }
    this.#tipHeight = tip.height;
    await this.#syncMempool();
  }

  async #scanBlocks(from: number, to: number): Promise<void> {
    const heights = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const hashes = await this.#batch<string>(heights.map((h) => ({ method: 'getblockhash', params: [h] })));
    const blocks = await this.#batch<string>(hashes.map((h) => ({ method: 'getblock', params: [h, 0] })));
    blocks.forEach((hex, i) => {
      const block = parseServedBlock(hexToBytesStrict(hex, 'getblock'), this.#dialect.kind);
      if (block.header.hash !== hashes[i]) throw DeaddropError.protocol('node served a block that does not hash to the requested hash');
      for (const tx of block.txs) this.#applyConfirmed(tx, from + i);
      this.#hashes.push(block.header.hash);
    });
  }

  #applyConfirmed(tx: Tx, height: number): void {
    const coinbase = tx.isCoinbase;
    if (!coinbase) for (const i of tx.inputs) this.#confirmed.delete(key(i.prevTxidHex, i.vout));
    tx.outputs.forEach((o, vout) => {
      if (toHex(o.script) === this.#scriptHex) {
        this.#confirmed.set(key(tx.txid, vout), { txid: tx.txid, vout, value: o.value, height, coinbase });
      }
    });
  }

  async #syncMempool(): Promise<void> {
    const txids = new Set(await this.#dialect.getMempoolTxids(this.#rpc));
    for (const id of this.#mempool.keys()) if (!txids.has(id)) this.#mempool.delete(id);
    const missing = [...txids].filter((id) => !this.#mempool.has(id));
    const raws = await this.#batchLoose<string>(missing.map((id) => ({ method: 'getrawtransaction', params: [id, 0] })));
    raws.forEach((hex, i) => {
      if (hex === undefined) return; // left the mempool between the two calls
      const tx = parseServedTx(hexToBytesStrict(hex, 'getrawtransaction'), this.#dialect.kind);
      if (tx.txid === missing[i]) this.#mempool.set(tx.txid, tx);
    });
  }

  /** A read-only RPC batch; throws on the first failed call. */
  async #batch<T>(calls: { method: string; params: unknown[] }[]): Promise<T[]> {
    const res = await this.#rpc.batch<T>(calls);
    return res.map((r) => {
      if (r.ok) return r.result;
      throw new DeaddropError('BACKEND_ERROR', `${r.error.method}: ${r.error.message}`);
    });
  }

  /** Like {@link batch}, with failed calls as undefined. */
  async #batchLoose<T>(calls: { method: string; params: unknown[] }[]): Promise<(T | undefined)[]> {
    return (await this.#rpc.batch<T>(calls)).map((r) => (r.ok ? r.result : undefined));
  }

  /** Our outputs, confirmed or in the mempool, whether or not something spends them. */
  #known(): Map<string, WalletUtxo> {
    const all = new Map(this.#confirmed);
    for (const tx of this.#mempool.values()) {
      tx.outputs.forEach((o, vout) => {
        if (toHex(o.script) === this.#scriptHex) all.set(key(tx.txid, vout), { txid: tx.txid, vout, value: o.value, height: 0, coinbase: false });
      });
    }
    return all;
  }

  #available(): WalletUtxo[] {
    const spent = new Set<string>();
    for (const tx of this.#mempool.values()) for (const i of tx.inputs) spent.add(key(i.prevTxidHex, i.vout));
    const nextHeight = this.#tipHeight + 1;
    return [...this.#known().values()].filter(
      (u) => !spent.has(key(u.txid, u.vout)) && (!u.coinbase || nextHeight - u.height >= COINBASE_MATURITY),
    );
  }

  #buildSynced(outputs: readonly OutputSpec[], opts: BuildOptions): BuiltTx {
    if (outputs.length === 0) throw new RangeError('outputs must not be empty');
    const feeRate = opts.feeRate ?? DEFAULT_FEE_RATE;
    if (!(feeRate > 0) || !Number.isFinite(feeRate)) throw new RangeError(`feeRate must be a positive number, got ${feeRate}`);
    const outs = outputs.map((o) => this.#toOutput(o));
    const amount = outs.reduce((a, o) => a + o.amount, 0n);
    const outBytes = outs.reduce((a, o) => a + 9 + o.script.length, 0);
    const feeFor = (nIn: number, change: boolean): bigint => BigInt(Math.ceil(feeRate * (11 + 68 * nIn + outBytes + (change ? 31 : 0))));
    const coins = opts.inputs ? this.#explicitInputs(opts.inputs) : selectCoins(this.#available(), amount, feeFor);
    const total = coins.reduce((a, u) => a + u.value, 0n);
    let fee = feeFor(coins.length, true);
    let change = total - amount - fee;
    if (change < CHANGE_MIN) {
      fee = total - amount;
      change = 0n;
      if (fee < feeFor(coins.length, false)) throw DeaddropError.insufficientFunds(amount + feeFor(coins.length, false), total);
    }
    const tx = new Transaction({ allowUnknownOutputs: true });
    const sequence = opts.rbf ? RBF_SEQUENCE : NON_RBF_SEQUENCE;
    for (const c of coins) tx.addInput({ txid: c.txid, index: c.vout, sequence, witnessUtxo: { script: this.script, amount: c.value } });
    for (const o of outs) tx.addOutput({ script: o.script, amount: o.amount });
    if (change > 0n) tx.addOutput({ script: this.script, amount: change });
    tx.sign(this.#secretKey);
    tx.finalize();
    const raw = tx.extract();
    return { txid: tx.id, hex: tx.hex, raw, inputs: coins.map((c) => ({ txid: c.txid, vout: c.vout })), fee };
  }

  #explicitInputs(inputs: readonly { txid: string; vout: number }[]): WalletUtxo[] {
    const known = this.#known();
    return inputs.map((i) => {
      const u = known.get(key(i.txid, i.vout));
      if (u === undefined) throw DeaddropError.notFound(`funding wallet has no output ${i.txid}:${i.vout}`);
      return u;
    });
  }

  #toOutput(o: OutputSpec): { script: Uint8Array; amount: bigint } {
    if (typeof o.sats !== 'bigint' || o.sats < 0n) throw new RangeError('sats must be a non-negative bigint');
    if ('script' in o) return { script: o.script, amount: o.sats };
    let script: Uint8Array;
    try {
      script = OutScript.encode(Address(this.#net).decode(o.address));
    } catch {
      throw DeaddropError.badAddress(`not a valid address for this network: ${JSON.stringify(o.address.slice(0, 100))}`);
    }
    return { script, amount: o.sats };
  }
}

/** Confirmed coins first, largest first, until amount plus fee is covered. */
function selectCoins(coins: WalletUtxo[], amount: bigint, feeFor: (nIn: number, change: boolean) => bigint): WalletUtxo[] {
  const sorted = [...coins].sort((a, b) => (a.height === 0) !== (b.height === 0) ? (a.height === 0 ? 1 : -1) : a.value > b.value ? -1 : a.value < b.value ? 1 : 0);
  const picked: WalletUtxo[] = [];
  let total = 0n;
  for (const c of sorted) {
    picked.push(c);
    total += c.value;
    if (total >= amount + feeFor(picked.length, false)) return picked;
  }
  const available = coins.reduce((a, u) => a + u.value, 0n);
  throw DeaddropError.insufficientFunds(amount + feeFor(Math.max(1, picked.length), false), available);
}
