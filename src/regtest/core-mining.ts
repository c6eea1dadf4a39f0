/**
 * Mining on Bitcoin Core's regtest after `invalidateblock`.
 *
 * Core's `generatetoaddress` builds a block from nothing but the tip, the mempool, the clock
 * (one-second resolution) and the coinbase address; there is no random extra nonce. After
 * `invalidateblock`, mining again to the same address within the same second rebuilds the very
 * block that was just invalidated. Core finds that hash in its block index marked BLOCK_FAILED,
 * ProcessNewBlock refuses it, and the RPC fails with -32603 "ProcessNewBlock, block not accepted".
 * The harness then mines that one block to a fresh address (a throwaway key: its coinbase is
 * forfeited), which gives it a new coinbase and a new hash, and goes on mining to the funding
 * address.
 */
import { p2wpkh } from '@scure/btc-signer';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import type { NodeDialect } from '../chain/dialect.js';
import { RpcError, type RpcCaller } from '../chain/rpc.js';
import { btcSignerNetwork } from '../util/network.js';

/** True for Core's refusal of a block it built itself (typically one identical to an invalidated block). */
export function isBlockNotAccepted(err: unknown): boolean {
  return err instanceof RpcError && /block not accepted/i.test(err.message);
}

/** A regtest P2WPKH address of a fresh random key that nobody keeps. */
export function throwawayAddress(): string {
  const address = p2wpkh(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true), btcSignerNetwork('regtest')).address;
  if (address === undefined) throw new TypeError('could not derive a throwaway address');
  return address;
}

/**
 * Mines `n` blocks to `address` on Core; a block Core refuses as a rebuild of an invalidated one is
 * mined again to a fresh address. Returns the hashes of the `n` blocks, in order.
 */
export async function mineOnCore(rpc: RpcCaller, dialect: NodeDialect, n: number, address: string): Promise<string[]> {
  const hashes: string[] = [];
  let fresh = 0;
  while (hashes.length < n) {
    const start = (await dialect.getTip(rpc)).height;
    try {
      hashes.push(...(await dialect.mine(rpc, n - hashes.length, address)));
    } catch (err) {
      if (!isBlockNotAccepted(err) || fresh >= 3) throw err;
      // Blocks mined before the refusal count; find them by height (the harness is the only miner).
      const tip = (await dialect.getTip(rpc)).height;
      for (let h = start + 1; h <= tip; h++) hashes.push(await dialect.getBlockHash(rpc, h));
      fresh++;
      hashes.push(...(await dialect.mine(rpc, 1, throwawayAddress())));
    }
  }
  return hashes;
}
