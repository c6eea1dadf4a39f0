/**
 * `watcher.rescan.mainnet_like`: end-to-end rescan throughput of the drop watcher over mainnet-like
 * blocks served by a real node: Bitcoin Core with REST when present (BITCOIND, bitcoind on PATH,
 * or ../shared/bitcoin-core/bin/bitcoind), btcd otherwise.
 *
 * The chain (test/support/chaingen.ts): BENCH_RESCAN_BLOCKS (default 200) valid blocks of about
 * 1.4 MB and 3,000 txs, 1,200 OP_RETURNs of which 50 are drop-sized with an eligible P2TR input
 * whose prevout the node knows, one of them a real drop to the watched identity. Built as raw
 * bytes and submitted with `submitblock` (no wallet, about a minute for 200 blocks).
 *
 * Measured side by side in this run, alternating so that load on the shared machine hits both
 * (the median of four rounds each; the workers are started before the clock runs, and the rate
 * counts the blocks after the first quarter, so that start-up and JIT warm-up, paid once per
 * rescan, do not dominate a 200-block run; the whole-run rates go to stderr):
 * the same rescan (fetch, candidate scan, prevouts, tweak data, trial decryption, one sqlite
 * transaction per block) with the scan on every core (`scanThreads` = os.availableParallelism())
 * and on one thread (`scanThreads: 1`, the path before the scan pool). Both must find the same
 * drops in the same order. Goal (issue 15): at least 250 blocks/s.
 *
 * Where the time goes, for the note: the bare fetch of the same blocks (raw block over REST,
 * plus the spent outputs of the block on Core), the candidate scan of one block on one thread,
 * and trial decryption (one ECDH per candidate).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { startRegtestNode } from '../src/regtest/harness.js';
import { REPO_ROOT } from '../src/regtest/process.js';
import { openBackend } from '../src/chain/open.js';
import type { ChainSource } from '../src/chain/types.js';
import { DropWatcher, type WatcherEvent } from '../src/deaddrop/watch/watcher.js';
import { scanBlock, finishCandidates, prevoutsFromSpent } from '../src/deaddrop/watch/block-scan.js';
import { generateChain, MATURITY } from '../test/support/chaingen.js';
import { newIdentity, type TestIdentity } from '../test/support/watch.js';
import { measure, round } from './measure.js';
import type { Emit } from './types.js';

const BLOCKS = Number(process.env.BENCH_RESCAN_BLOCKS ?? 200);
/** Alternations of the two rescans (a few seconds each): the machine's load swings on that scale. */
const ROUNDS = 4;
const GOAL = 250;

const median = (xs: readonly number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

const log = (msg: string): void => void process.stderr.write(`watcher.rescan.mainnet_like: ${msg}\n`);

/** Core from ../shared when nothing else names one (the project's tests must not need it). */
function useSharedCore(): void {
  const shared = resolve(REPO_ROOT, '..', 'shared', 'bitcoin-core', 'bin', 'bitcoind');
  if (process.env.BITCOIND === undefined && process.env.DEADDROP_REGTEST_NODE !== 'btcd' && existsSync(shared)) process.env.BITCOIND = shared;
}

interface Run {
  /** Blocks/s over the whole catch-up. */
  readonly whole: number;
  /** Blocks/s after the first WARM blocks (thread start-up, JIT): the rate of a long rescan. */
  readonly steady: number;
  readonly drops: string[];
  /** Blocks scanned on the worker pool. */
  readonly pooled: number;
}

/** Blocks left out of the steady-state rate. */
const WARM = Math.floor(BLOCKS / 4);

async function rescan(source: ChainSource, who: TestIdentity, scanThreads: number): Promise<Run> {
  // Drops in the order the watcher announced them (its outbox: commit order, block by block).
  const drops: string[] = [];
  let warmAt = 0;
  const onEvent = (e: WatcherEvent): void => {
    if (e.type === 'drop.confirmed') drops.push(`${String(e.data['txid'])}:${String(e.data['vout'])}`);
    if (e.type === 'watch.progress' && warmAt === 0 && Number(e.data['height']) >= MATURITY + WARM) warmAt = performance.now();
  };
  const w = new DropWatcher({ source, store: ':memory:', identities: [who.identity], birthday: MATURITY + 1, follow: false, scanThreads, onEvent, progressIntervalMs: 0 });
  try {
    await w.startScanWorkers(); // thread start-up (about 0.6 s of CPU, once per rescan) is not timed
    const t0 = performance.now();
    const r = await w.catchUp();
    const t1 = performance.now();
    if (r.connected !== BLOCKS) throw new Error(`rescan connected ${r.connected} blocks, expected ${BLOCKS}`);
    return { whole: (BLOCKS * 1000) / (t1 - t0), steady: ((BLOCKS - WARM) * 1000) / (t1 - warmAt), drops, pooled: w.stats().pooledBlocks };
  } finally {
    await w.close();
  }
}

export async function run(emit: Emit): Promise<void> {
  useSharedCore();
  const node = await startRegtestNode({ initialBlocks: 0 });
  const source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
  try {
    await source.ready();
    const who = newIdentity('bench');
    const g0 = performance.now();
    const expected: string[] = [];
    // The next block is built while the node validates the previous one (it is another process).
    let inFlight: Promise<void> = Promise.resolve();
    for (const b of generateChain({ count: BLOCKS, recipient: who.address })) {
      await inFlight;
      const hex = Buffer.from(b.raw).toString('hex');
      inFlight = node.rpc('submitblock', [hex]).then((res) => {
        if (res !== null) throw new Error(`${node.kind} refused generated block ${b.height}: ${String(res)}`);
      });
      inFlight.catch(() => undefined);
      expected.push(...b.drops.map((d) => d.txid));
    }
    await inFlight;
    log(`${BLOCKS} mainnet-like blocks built and submitted to ${node.kind} in ${round((performance.now() - g0) / 1000)} s`);

    const threads = availableParallelism();
    const single: number[] = [];
    const parallel: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const one = await rescan(source, who, 1);
      const all = await rescan(source, who, threads);
      if (JSON.stringify(one.drops) !== JSON.stringify(all.drops)) throw new Error('parallel and single-threaded rescans found different drops');
      if (one.drops.length !== expected.length || one.drops.some((d, i) => !d.startsWith(expected[i]!))) throw new Error(`rescan found ${one.drops.length} drops, expected ${expected.length}`);
      single.push(one.steady);
      parallel.push(all.steady);
      log(`round ${r + 1}: whole catch-up ${round(all.whole)} blocks/s on ${threads} threads, ${round(one.whole)} on one; after the first ${WARM} blocks ${round(all.steady)} and ${round(one.steady)}; ${all.pooled} blocks on the pool`);
    }
    const s = median(single);
    const p = median(parallel);
    emit({
      name: 'watcher.rescan.mainnet_like', unit: 'blocks/s', value: round(p),
      anchor: `same rescan with the scan on one thread (${node.kind}${node.kind === 'bitcoind' ? ' REST' : ''}, ${threads} cores)`, anchorValue: round(s), ratio: round(p / s),
    });
    log(`${threads} scan threads: ${round(p)} blocks/s, one thread: ${round(s)} blocks/s (goal >= ${GOAL} blocks/s: ${p >= GOAL ? 'met' : `${round(GOAL / p)}x short`})`);
    await breakdown(source, emit);
  } finally {
    await source.close();
    await node.stop();
  }
}

/** Where one block's time goes: fetch (block + spent outputs), candidate scan, prevout matching + ECDH. */
async function breakdown(source: ChainSource, emit: Emit): Promise<void> {
  const first = MATURITY + 1;
  const hashes: string[] = [];
  for (let h = first; h < first + BLOCKS; h++) hashes.push(await source.getBlockHash(h));
  const f0 = performance.now();
  for (const hash of hashes) {
    await source.getRawBlock(hash);
    await source.getBlockSpentOutputs?.(hash);
  }
  const fetchRate = (BLOCKS * 1000) / (performance.now() - f0);
  emit({ name: 'watcher.rescan.mainnet_like.fetch', unit: 'blocks/s', value: round(fetchRate) });

  const raw = await source.getRawBlock(hashes[1]!);
  const spent = (await source.getBlockSpentOutputs?.(hashes[1]!)) ?? null;
  const scanMs = measure(() => scanBlock(raw), { minTimeMs: 500 }).medianMs;
  emit({ name: 'watcher.rescan.mainnet_like.scan_one_thread', unit: 'blocks/s', value: round(1000 / scanMs) });
  const scan = scanBlock(raw);
  const prevouts = spent === null ? null : prevoutsFromSpent(spent, scan);
  if (prevouts !== null) {
    const who = newIdentity('x');
    const ecdhMs = measure(() => finishCandidates(scan.candidates, prevouts, [who.identity]), { minTimeMs: 500 }).medianMs;
    emit({ name: 'watcher.rescan.mainnet_like.trial_decrypt_one_thread', unit: 'blocks/s', value: round(1000 / ecdhMs) });
    log(`per block on one thread: fetch ${round(1000 / fetchRate)} ms, candidate scan ${round(scanMs)} ms, tweak data + trial decryption of ${scan.candidates.length} candidates ${round(ecdhMs)} ms`);
  }
}
