/**
 * Fetching N regtest blocks by each route the node offers: RPC hex on btcd, always; on Bitcoin
 * Core as well when it is available (BITCOIND or bitcoind on PATH), REST `.bin` side by side with
 * RPC hex as the anchor. Blocks carry a few transactions each so they are not just a coinbase
 * (bench/core.bench.ts does the same on blocks of at least 1 MB).
 */
import type { Emit } from './types.js';
import { findBitcoind, startRegtestNode, type RegtestNode } from '../src/regtest/harness.js';
import type { NodeKind } from '../src/chain/dialect.js';
import { openBackend } from '../src/chain/open.js';
import type { ChainSource } from '../src/chain/types.js';

const BLOCKS = 60;
const TXS_PER_BLOCK = 4;
const ROUNDS = 3;

async function fillChain(node: RegtestNode): Promise<string[]> {
  const hashes: string[] = [];
  for (let b = 0; b < BLOCKS; b++) {
    for (let t = 0; t < TXS_PER_BLOCK; t++) await node.fund(node.fundingAddress, 10_000n + BigInt(t));
    hashes.push(...(await node.mine(1)));
  }
  return hashes;
}

/** Median blocks/s and MB/s of fetching every hash in order, over ROUNDS rounds. */
async function fetchRate(source: ChainSource, hashes: readonly string[]): Promise<{ blocksPerSec: number; mbPerSec: number }> {
  const rates: Array<{ blocksPerSec: number; mbPerSec: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    let bytes = 0;
    const t0 = performance.now();
    for (const h of hashes) bytes += (await source.getRawBlock(h)).length;
    const s = (performance.now() - t0) / 1000;
    rates.push({ blocksPerSec: hashes.length / s, mbPerSec: bytes / 1e6 / s });
  }
  rates.sort((a, b) => a.blocksPerSec - b.blocksPerSec);
  return rates[Math.floor(rates.length / 2)] as { blocksPerSec: number; mbPerSec: number };
}

export async function run(emit: Emit): Promise<void> {
  await runOn('btcd', emit);
  if (findBitcoind()) await runOn('bitcoind', emit);
  else console.error('chain-fetch.bench: no Bitcoin Core (set BITCOIND=<path> or put bitcoind on PATH): chain.fetch.bitcoind-rest skipped');
}

async function runOn(kind: NodeKind, emit: Emit): Promise<void> {
  const node = await startRegtestNode({ kind });
  try {
    const hashes = await fillChain(node);
    if (node.kind === 'btcd') {
      const source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
      await source.ready();
      try {
        const rpc = await fetchRate(source, hashes);
        emit({ name: 'chain.fetch.btcd-rpc', unit: 'blocks/s', value: round(rpc.blocksPerSec) });
      } finally {
        await source.close();
      }
      return;
    }
    const base = node.backendUrl.split('?')[0] as string;
    const restUrl = `${base}?rest=1`;
    const rpcUrl = `${base}?rest=0`;
    const rest = await openBackend(restUrl, { expectedNetwork: 'regtest' });
    const rpc = await openBackend(rpcUrl, { expectedNetwork: 'regtest' });
    await Promise.all([rest.ready(), rpc.ready()]);
    try {
      const viaRpc = await fetchRate(rpc, hashes);
      const viaRest = await fetchRate(rest, hashes);
      emit({
        name: 'chain.fetch.bitcoind-rest',
        unit: 'blocks/s',
        value: round(viaRest.blocksPerSec),
        anchor: 'bitcoind RPC getblock hex',
        anchorValue: round(viaRpc.blocksPerSec),
        ratio: round(viaRest.blocksPerSec / viaRpc.blocksPerSec),
      });
    } finally {
      await Promise.all([rest.close(), rpc.close()]);
    }
  } finally {
    await node.stop();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
