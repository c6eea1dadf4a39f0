/**
 * What the seller and buyer operations (seller.ts, buyer.ts) share: the store, the chain, the
 * wallet and its keys, the chain watch, and a few helpers over them.
 */
import { parseBlock } from '../chain/block.js';
import type { ChainSource } from '../chain/types.js';
import type { ContentStore } from '../feature/content-store.js';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import type { WalletKeys } from '../wallet/keys.js';
import { addressToScript } from '../wallet/tx.js';
import type { Wallet } from '../wallet/wallet.js';
import type { PaypubStore, SaleRow } from './store.js';
import type { PaypubWatch } from './watch.js';

export interface PaypubContext {
  readonly store: PaypubStore;
  readonly chain: ChainSource;
  /** Undefined while the daemon runs without an unlocked wallet (content is still served). */
  readonly wallet: Wallet | undefined;
  readonly keys: WalletKeys;
  readonly network: Network;
  readonly datadir: string;
  readonly watch: PaypubWatch;
  /** Transport for talking to sellers (tests inject one). */
  readonly fetch: typeof fetch | undefined;
  /** The explicit rate, or the backend's estimate (sat/vB). */
  feeRate(explicit?: number): Promise<number>;
  /** The node's storage (peers or Tahoe) when it runs: sales are published into it and fetched from it. */
  contentStore(): ContentStore | null;
  /** The base URL this node's API is reachable at, when known (offer strings name it). */
  publicUrl(): string | undefined;
  log(line: string): void;
}

/** The wallet, or NOT_INITIALIZED. */
export function needWallet(ctx: PaypubContext): Wallet {
  if (!ctx.wallet) throw new DeaddropError('NOT_INITIALIZED', 'no unlocked wallet: run `deaddrop init`, then start the daemon with DEADDROP_PASSPHRASE set');
  return ctx.wallet;
}

/** A sale by id (or unique prefix), with the expected role. */
export function needSale(ctx: PaypubContext, idOrPrefix: string, role?: SaleRow['role']): SaleRow {
  const sale = ctx.store.sale(ctx.store.resolveId(idOrPrefix));
  if (!sale) throw DeaddropError.notFound(`no PayPub sale ${idOrPrefix}`);
  if (role && sale.role !== role) {
    throw DeaddropError.badInput(role === 'seller' ? `sale ${sale.id.slice(0, 16)} is not one this datadir published` : `sale ${sale.id.slice(0, 16)} is this datadir's own sale`);
  }
  return sale;
}

/** A fresh wallet receive address as an output script (payouts, refunds). */
export async function freshWalletScript(ctx: PaypubContext): Promise<Uint8Array> {
  const w = needWallet(ctx);
  return addressToScript(await w.newReceiveAddress(), ctx.network);
}

/** The current tip height. */
export async function tipHeight(ctx: PaypubContext): Promise<number> {
  return (await ctx.chain.getTip()).height;
}

/**
 * Where `txid` is, when it is in block `blockHash` on the best chain: the height and the raw
 * transaction. Null when the block is unknown, not on the best chain, or does not hold the tx.
 */
export async function txInBlock(chain: ChainSource, txid: string, blockHash: string): Promise<{ height: number; raw: Uint8Array } | null> {
  let height: number;
  try {
    height = (await chain.getBlockHeader(blockHash)).height;
    if ((await chain.getBlockHash(height)) !== blockHash) return null;
  } catch (err) {
    if (err instanceof DeaddropError && (err.code === 'NOT_FOUND' || err.code === 'BACKEND_ERROR')) return null;
    throw err;
  }
  if (chain.capabilities.fullBlocks) {
    let tx;
    try {
      tx = parseBlock(await chain.getRawBlock(blockHash)).txs.find((t) => t.txid === txid);
    } catch (err) {
      if (err instanceof RangeError) return null;
      throw err;
    }
    return tx ? { height, raw: tx.bytes.slice() } : null;
  }
  if (chain.verifyTxInBlock && (await chain.verifyTxInBlock(txid, height))) return { height, raw: await chain.getRawTransaction(txid) };
  return null;
}

