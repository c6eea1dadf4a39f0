/**
 * An in-memory full-block ChainSource for unit tests of pure state machines (the follower's
 * reorg logic, the wallet's block indexing). Blocks are real serializations: headers hash and
 * link, transactions parse. It does NOT validate scripts or consensus rules; integration tests
 * run against real btcd.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { hex } from '@scure/base';
import type {
  BlockHeader, BroadcastResult, ChainCapabilities, ChainEvent, ChainListener, ChainSource, ChainTip, FeeEstimate,
  ScriptHistoryItem, ScriptUnspent,
} from '../../src/chain/types.js';
import { DeaddropError } from '../../src/util/errors.js';
import type { Network } from '../../src/util/network.js';
import { parseBlock, parseTransaction } from '../../src/chain/block.js';
import { coinbaseTx } from './tx.js';

const sha256d = (b: Uint8Array): Uint8Array => sha256(sha256(b));
const toHex = (internal: Uint8Array): string => hex.encode(Uint8Array.from(internal).reverse());
const fromHex = (display: string): Uint8Array => hex.decode(display).reverse();

function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

function varint(n: number): Uint8Array {
  if (n < 0xfd) return Uint8Array.of(n);
  return Uint8Array.of(0xfd, n & 255, n >> 8);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface FakeBlock {
  readonly height: number;
  readonly hash: string;
  readonly raw: Uint8Array;
  readonly txids: readonly string[];
}

const OP_TRUE = Uint8Array.of(0x51);

export class FakeChain implements ChainSource {
  readonly kind = 'btcd' as const;
  readonly capabilities: ChainCapabilities = {
    fullBlocks: true, anyTransaction: true, mempool: true, scriptHistory: false, push: true, rawBlockRoute: 'rpc',
  };
  /** Best chain, index = height. */
  readonly chain: FakeBlock[] = [];
  readonly byHash = new Map<string, FakeBlock>();
  readonly mempool = new Map<string, Uint8Array>();
  readonly txs = new Map<string, Uint8Array>();
  /** Set to make broadcast reject with this reason. */
  rejectReason: string | null = null;
  /** Counts getRawBlock calls, for tests. */
  rawBlockCalls = 0;
  #listeners = new Set<ChainListener>();
  #tag = 0;
  #closed = false;

  constructor(readonly net: Network = 'regtest') {
    this.mine(1);
  }

  async ready(): Promise<void> {}
  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }
  #check(): void {
    if (this.#closed) throw DeaddropError.closed('fake chain');
  }
  async network(): Promise<Network> {
    return this.net;
  }
  get height(): number {
    return this.chain.length - 1;
  }
  async getTip(): Promise<ChainTip> {
    this.#check();
    const b = this.chain[this.chain.length - 1]!;
    return { height: b.height, hash: b.hash };
  }
  async getBlockHash(height: number): Promise<string> {
    this.#check();
    const b = this.chain[height];
    if (!b) throw DeaddropError.notFound(`no block at height ${height}`);
    return b.hash;
  }
  async getBlockHeader(hash: string): Promise<BlockHeader> {
    const b = this.byHash.get(hash);
    if (!b) throw DeaddropError.notFound(`no block ${hash}`);
    return { height: b.height, hash, prevHash: toHex(b.raw.subarray(4, 36)), merkleRoot: toHex(b.raw.subarray(36, 68)), time: 0 };
  }
  async getRawBlock(hash: string): Promise<Uint8Array> {
    this.#check();
    this.rawBlockCalls++;
    const b = this.byHash.get(hash);
    if (!b) throw DeaddropError.notFound(`no block ${hash}`);
    return b.raw.slice(); // a fresh buffer, as a node's answer is (a scan pool transfers it away)
  }
  async getRawTransaction(txid: string): Promise<Uint8Array> {
    const raw = this.mempool.get(txid) ?? this.txs.get(txid);
    if (!raw) throw DeaddropError.notFound(`no tx ${txid}`);
    return raw;
  }
  async broadcast(rawTx: Uint8Array): Promise<BroadcastResult> {
    if (this.rejectReason) return { accepted: false, reason: this.rejectReason, code: -26 };
    const tx = parseTransaction(rawTx);
    // Replace any mempool tx spending the same outpoints (RBF), as a node would.
    for (const [id, raw] of this.mempool) {
      const other = parseTransaction(raw);
      if (other.inputs.some((a) => tx.inputs.some((b) => a.prevTxidHex === b.prevTxidHex && a.vout === b.vout))) this.mempool.delete(id);
    }
    this.mempool.set(tx.txid, rawTx);
    this.#emit({ type: 'mempool-tx', txid: tx.txid, raw: rawTx });
    return { accepted: true, txid: tx.txid };
  }
  async estimateFee(_t: number, fallback: number): Promise<FeeEstimate> {
    return { satPerVb: fallback, source: 'fallback' };
  }
  async getMempoolTxids(): Promise<string[]> {
    this.#check();
    return [...this.mempool.keys()];
  }
  async getScriptHistory(_s: Uint8Array): Promise<ScriptHistoryItem[]> {
    throw DeaddropError.unsupported('fake chain has no script index');
  }
  async getScriptUnspent(_s: Uint8Array): Promise<ScriptUnspent[]> {
    throw DeaddropError.unsupported('fake chain has no script index');
  }
  /** subscribe() calls not undone yet (close-during-open tests check it returns to 0). */
  liveSubscriptions = 0;
  subscribe(listener: ChainListener): () => void {
    this.#listeners.add(listener);
    this.liveSubscriptions++;
    let live = true;
    return () => {
      if (live) this.liveSubscriptions--;
      live = false;
      this.#listeners.delete(listener);
    };
  }
  /** Emits a mempool-tx event with these bytes and changes nothing else: a push feed's late or repeated notice. */
  announce(raw: Uint8Array): void {
    this.#emit({ type: 'mempool-tx', txid: parseTransaction(raw).txid, raw });
  }

  #emit(ev: ChainEvent): void {
    for (const l of this.#listeners) l(ev);
  }

  /** Mines `n` blocks; the first includes `txs` (default: the whole mempool). Coinbases pay `payTo`. */
  mine(n = 1, opts: { txs?: Uint8Array[]; payTo?: Uint8Array; reward?: bigint; silent?: boolean } = {}): FakeBlock[] {
    const out: FakeBlock[] = [];
    for (let i = 0; i < n; i++) {
      const txs = i === 0 ? (opts.txs ?? [...this.mempool.values()]) : [];
      out.push(this.#append(txs, opts.payTo ?? OP_TRUE, opts.reward ?? 5_000_000_000n));
    }
    if (!opts.silent) this.#emit({ type: 'tip', tip: { height: this.height, hash: this.chain[this.height]!.hash } });
    return out;
  }

  /** Drops the top `depth` blocks (their txs go back to the mempool, coinbases vanish) without new ones. */
  disconnect(depth: number): void {
    for (let i = 0; i < depth; i++) {
      const b = this.chain.pop();
      if (!b || this.chain.length === 0) throw new RangeError('cannot disconnect genesis');
      for (const tx of parseBlock(b.raw).txs.slice(1)) this.mempool.set(tx.txid, tx.bytes.slice());
    }
  }

  /** Replaces the top `depth` blocks with `newLength` fresh ones (a reorg), emitting one tip event. */
  reorg(depth: number, newLength = depth + 1, opts: { txs?: Uint8Array[]; dropMempool?: boolean } = {}): FakeBlock[] {
    this.disconnect(depth);
    if (opts.dropMempool) this.mempool.clear();
    return this.mine(newLength, opts.txs ? { txs: opts.txs } : {});
  }

  /**
   * Appends a block built elsewhere (test/support/chaingen.ts), silently: its header must link
   * to the current tip. Its txs become known to getRawTransaction.
   */
  appendRaw(raw: Uint8Array): FakeBlock {
    const parsed = parseBlock(raw);
    const block: FakeBlock = { height: this.chain.length, hash: toHex(sha256d(raw.subarray(0, 80))), raw, txids: parsed.txs.map((t) => t.txid) };
    if (toHex(raw.subarray(4, 36)) !== this.chain[this.chain.length - 1]!.hash) throw new RangeError('appendRaw: the block does not link to the tip');
    this.chain.push(block);
    this.byHash.set(block.hash, block);
    for (const t of parsed.txs) this.txs.set(t.txid, t.bytes.slice());
    return block;
  }

  #append(txs: Uint8Array[], payTo: Uint8Array, reward: bigint): FakeBlock {
    const height = this.chain.length;
    const prev = height === 0 ? new Uint8Array(32) : fromHex(this.chain[height - 1]!.hash);
    const coinbase = coinbaseTx(height, this.#tag++, payTo, reward);
    const all = [coinbase, ...txs];
    const txids = all.map((raw) => parseTransaction(raw).txid);
    const merkle = sha256d(concat(...txids.map(fromHex)));
    const header = concat(u32le(0x20000000), prev, merkle, u32le(1_700_000_000 + height), u32le(0x207fffff), u32le(this.#tag));
    const raw = concat(header, varint(all.length), ...all);
    const block: FakeBlock = { height, hash: toHex(sha256d(header)), raw, txids };
    this.chain.push(block);
    this.byHash.set(block.hash, block);
    all.forEach((t, i) => {
      this.txs.set(txids[i]!, t);
      this.mempool.delete(txids[i]!);
    });
    return block;
  }
}

/**
 * A FakeChain whose `ready()` waits for `release()`:
 * for close-during-open tests of what follows a chain.
 */
export class GatedChain extends FakeChain {
  readonly #gate: Promise<void>;
  #release: () => void = () => undefined;

  constructor() {
    super();
    this.#gate = new Promise<void>((r) => (this.#release = r));
  }

  /** Lets every pending and future `ready()` resolve. */
  release(): void {
    this.#release();
  }

  override async ready(): Promise<void> {
    await this.#gate;
  }

}

