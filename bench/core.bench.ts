/**
 * Bitcoin Core only (skipped with a notice on stderr when BITCOIND names no binary and no
 * bitcoind is on PATH): what the Core backend's push and REST routes buy, each measured side by
 * side with the route it replaces, on the same node in the same run.
 *
 * - `core.event.zmq-mempool` / `core.event.zmq-block`: ms from `sendrawtransaction` (or
 *   `generatetoaddress`) returning to the backend's `mempool-tx` (or `tip`) event, over ZMQ,
 *   against a second backend on the same node with `zmq=0` (polling at the regtest default).
 * - `core.fetch.rest-1mb`: MB/s fetching blocks of at least 1 MB, REST `.bin` against RPC
 *   `getblock <hash> 0` hex. Each block holds nine OP_RETURN transactions of 99,000 data bytes
 *   (Core's policy relays them; non-witness bytes weigh 4, so OP_RETURN data alone stops below
 *   1 MB at the 4M weight limit) and two Taproot script-path spends whose ~99.6 kB leaf script
 *   (520-byte pushes, each dropped) is witness data.
 */
import { OutScript, Script, TAPROOT_UNSPENDABLE_KEY, TaprootControlBlock, Transaction, p2tr } from '@scure/btc-signer';
import { btcSignerNetwork } from '../src/util/network.js';
import { openBackend } from '../src/chain/open.js';
import { defaultPollInterval } from '../src/chain/backends/rpc-source.js';
import type { ChainEvent, ChainSource } from '../src/chain/types.js';
import { findBitcoind, startRegtestNode, type RegtestNode } from '../src/regtest/harness.js';
import type { Emit } from './types.js';

const EVENT_SAMPLES = 15;
const BIG_BLOCKS = 8;
const BIG_TX_DATA = 99_000;
const BIG_TXS_PER_BLOCK = 9; // 9 × ~99.2 kB of OP_RETURN: ~3.57M WU
const WITNESS_TXS_PER_BLOCK = 2; // 2 × ~99.7 kB of witness: ~0.2M WU; the block is ~1.09 MB
const FETCH_ROUNDS = 3;
const STRANGER = 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080';

export async function run(emit: Emit): Promise<void> {
  if (!findBitcoind()) {
    console.error('core.bench: no Bitcoin Core (set BITCOIND=<path> or put bitcoind on PATH): core.event.* and core.fetch.* skipped');
    return;
  }
  const node = await startRegtestNode({ kind: 'bitcoind' });
  try {
    await eventLatency(node, emit);
    await bigBlockFetch(node, emit);
  } finally {
    await node.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Broadcast (or mine) to event.

async function eventLatency(node: RegtestNode, emit: Emit): Promise<void> {
  const base = node.backendUrl.split('?')[0] as string;
  const zmq = await openBackend(`${base}?rest=1`, { expectedNetwork: 'regtest' });
  const poll = await openBackend(`${base}?rest=1&zmq=0`, { expectedNetwork: 'regtest' });
  await Promise.all([zmq.ready(), poll.ready()]);
  try {
    await waitFor(() => zmq.capabilities.push, 'the ZMQ backend to go live');
    if (poll.capabilities.push) throw new Error('zmq=0 backend reports push');
    const mem = { zmq: [] as number[], poll: [] as number[] };
    const blk = { zmq: [] as number[], poll: [] as number[] };
    for (let i = 0; i < EVENT_SAMPLES; i++) {
      const tx = await node.buildTx([{ address: STRANGER, sats: 10_000n + BigInt(i) }]);
      const seen = [arrival(zmq, (e) => e.type === 'mempool-tx' && e.txid === tx.txid), arrival(poll, (e) => e.type === 'mempool-tx' && e.txid === tx.txid)];
      const t0 = performance.now();
      const res = await node.dialect.sendRawTransaction(node.client, tx.hex);
      if (!res.accepted) throw new Error(`bench tx rejected: ${res.reason}`);
      const [z, p] = await Promise.all(seen);
      mem.zmq.push((z as number) - t0);
      mem.poll.push((p as number) - t0);
      // A block: both backends' tip events for the new hash.
      // The event can come before generatetoaddress answers, so match the next height.
      const next = (await node.dialect.getTip(node.client)).height + 1;
      const tips = [arrival(zmq, (e) => e.type === 'tip' && e.tip.height === next), arrival(poll, (e) => e.type === 'tip' && e.tip.height === next)];
      const t1 = performance.now();
      await node.mine(1);
      const [zb, pb] = await Promise.all(tips);
      blk.zmq.push((zb as number) - t1);
      blk.poll.push((pb as number) - t1);
    }
    const interval = defaultPollInterval('regtest');
    for (const [name, s] of [['core.event.zmq-mempool', mem], ['core.event.zmq-block', blk]] as const) {
      const z = median(s.zmq);
      const p = median(s.poll);
      emit({ name, unit: 'ms', value: round(z), anchor: `polling (zmq=0, every ${interval} ms), same node`, anchorValue: round(p), ratio: round(z / p, 4) });
    }
  } finally {
    await Promise.all([zmq.close(), poll.close()]);
  }
}

/** Resolves with performance.now() at the first event matching `pred` (checked when it arrives). */
function arrival(src: ChainSource, pred: (e: ChainEvent) => boolean, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('no event within 30 s'));
    }, timeoutMs);
    const off = src.subscribe((e) => {
      if (!pred(e)) return;
      const t = performance.now();
      clearTimeout(timer);
      off();
      resolve(t);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// REST .bin against RPC hex on blocks of at least 1 MB.

async function bigBlockFetch(node: RegtestNode, emit: Emit): Promise<void> {
  const hashes: string[] = [];
  const data = Script.encode(['RETURN', new Uint8Array(BIG_TX_DATA).fill(0x5a)]);
  const bulky = witnessBulk();
  const coins = BIG_BLOCKS * WITNESS_TXS_PER_BLOCK;
  const funding = await node.send(Array.from({ length: coins }, () => ({ script: bulky.script, sats: WITNESS_COIN })), { confirm: true });
  for (let b = 0; b < BIG_BLOCKS; b++) {
    for (let t = 0; t < BIG_TXS_PER_BLOCK; t++) await node.send([{ script: data, sats: 0n }], { feeRate: 1 });
    for (let t = 0; t < WITNESS_TXS_PER_BLOCK; t++) {
      const res = await node.dialect.sendRawTransaction(node.client, bulky.spend(funding, b * WITNESS_TXS_PER_BLOCK + t));
      if (!res.accepted) throw new Error(`witness-heavy tx rejected: ${res.reason}`);
    }
    const [hash] = (await node.mine(1)) as [string];
    const { size } = await node.rpc<{ size: number }>('getblock', [hash, 1]);
    if (size < 1_000_000) throw new Error(`block ${hash} is ${size} bytes, under 1 MB`);
    hashes.push(hash);
  }
  const base = node.backendUrl.split('?')[0] as string;
  const rest = await openBackend(`${base}?rest=1&zmq=0`, { expectedNetwork: 'regtest' });
  const rpc = await openBackend(`${base}?rest=0&zmq=0`, { expectedNetwork: 'regtest' });
  await Promise.all([rest.ready(), rpc.ready()]);
  try {
    if (rest.capabilities.rawBlockRoute !== 'rest' || rpc.capabilities.rawBlockRoute !== 'rpc') throw new Error('backends did not take the routes asked for');
    // Interleaved rounds, so neither route gets the warmer cache.
    const viaRest: number[] = [];
    const viaRpc: number[] = [];
    for (let r = 0; r < FETCH_ROUNDS; r++) {
      viaRpc.push(await fetchMbPerSec(rpc, hashes));
      viaRest.push(await fetchMbPerSec(rest, hashes));
    }
    const restMb = median(viaRest);
    const rpcMb = median(viaRpc);
    emit({ name: 'core.fetch.rest-1mb', unit: 'MB/s', value: round(restMb), anchor: 'RPC getblock hex, same blocks (>= 1 MB each)', anchorValue: round(rpcMb), ratio: round(restMb / rpcMb) });
  } finally {
    await Promise.all([rest.close(), rpc.close()]);
  }
}

const WITNESS_COIN = 60_000n;

/**
 * A Taproot output whose only leaf is ~99.6 kB of `<520 bytes> OP_DROP` and then OP_1, and the
 * spend of one such coin (fee ~30,000 sat for ~25,000 vB): no signature, all witness.
 */
function witnessBulk(): { script: Uint8Array; spend: (txid: string, vout: number) => string } {
  const parts: (Uint8Array | 'DROP' | 'OP_1')[] = [];
  for (let i = 0; i < 190; i++) parts.push(new Uint8Array(520).fill(i), 'DROP');
  parts.push('OP_1');
  const leaf = Script.encode(parts);
  const pay = p2tr(TAPROOT_UNSPENDABLE_KEY, { script: leaf }, btcSignerNetwork('regtest'), true);
  const first = pay.tapLeafScript?.[0];
  if (!first) throw new Error('p2tr gave no leaf');
  const control = TaprootControlBlock.encode(first[0]);
  const payout = OutScript.encode({ type: 'wpkh', hash: new Uint8Array(20).fill(1) });
  return {
    script: pay.script,
    spend(txid, vout) {
      const tx = new Transaction({ allowUnknownOutputs: true, allowUnknownInputs: true, disableScriptCheck: true });
      tx.addInput({ txid, index: vout, witnessUtxo: { script: pay.script, amount: WITNESS_COIN } });
      tx.addOutput({ script: payout, amount: WITNESS_COIN / 2n });
      tx.updateInput(0, { finalScriptWitness: [leaf, control] }, true);
      return tx.hex;
    },
  };
}

async function fetchMbPerSec(src: ChainSource, hashes: readonly string[]): Promise<number> {
  let bytes = 0;
  const t0 = performance.now();
  for (const h of hashes) bytes += (await src.getRawBlock(h)).length;
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

// ---------------------------------------------------------------------------------------------

async function waitFor(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
