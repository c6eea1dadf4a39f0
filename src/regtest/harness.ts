/**
 * Starts and drives a real regtest node for tests, the CLI (`deaddrop regtest up|mine|fund|status|down`)
 * and the demo.
 *
 * - Bitcoin Core when `BITCOIND=<path>` is set or `bitcoind` is on PATH, otherwise btcd from
 *   `.tools/bin/btcd` (installed by `regtest/install-btcd.sh` on first use).
 *   `DEADDROP_REGTEST_NODE=btcd|bitcoind` (or {@link StartOptions.kind}) forces one.
 * - Temp datadir and free loopback port; waits for RPC; mines {@link StartOptions.initialBlocks}
 *   blocks to the harness's own funding key so coinbases mature.
 * - `fund()` sends from that key (see ./wallet.ts) and does not mine unless `confirm: true`.
 * - Teardown is SIGTERM then SIGKILL plus removal of the temp dir; an exit/SIGINT/SIGTERM hook
 *   kills every node this process still owns, so no node outlives a failed test.
 * - Detached mode (`detached: true` with a `datadir`) leaves the node running and records it in
 *   `<datadir>/regtest/node.json` (mode 0600) for {@link attachRegtestNode} / {@link stopRegtestNode}.
 *
 * This file is the node handle and the entry points; the processes (binaries, launch, kill) are
 * in `process.ts` and the datadir's files in `state.ts`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { dialectFor, type NodeDialect, type NodeKind } from '../chain/dialect.js';
import { RpcClient } from '../chain/rpc.js';
import { sleep } from '../util/time.js';
import { DeaddropError } from '../util/errors.js';
import { discoveredRegtestDatadir, publishRegtestNode, unpublishRegtestNode } from './discovery.js';
import { mineOnCore } from './core-mining.js';
import { buildEmptyBlock } from './empty-block.js';
import {
  disown,
  ensureBtcd,
  findBitcoind,
  freePort,
  isAlive,
  killPid,
  launchArgs,
  own,
  spawnNode,
  waitReady,
  writeNodeConfig,
  type LaunchSpec,
  type Owned,
} from './process.js';
import {
  loadChainFile,
  loadOrCreateKey,
  parseState,
  readStateSync,
  saveChainFile,
  STATE_VERSION,
  stateDir,
  writeState,
  type NodeState,
  type SavedChain,
} from './state.js';
import { FundingWallet, type BuildOptions, type BuiltTx, type OutputSpec, type WalletUtxo } from './wallet.js';
import { fromHex, toHex } from '../util/bytes.js';

export type { BuildOptions, BuiltTx, OutputSpec, WalletUtxo } from './wallet.js';
// The entry points callers already use; they live with the processes they describe.
export { ensureBtcd, findBitcoind, freePort, REPO_ROOT } from './process.js';

const DEFAULT_INITIAL_BLOCKS = 101;

export interface StartOptions {
  /** Force a node kind; by default bitcoind when available, else btcd. */
  readonly kind?: NodeKind;
  /** Persistent data directory (the node lives in `<datadir>/regtest/node`); default a temp dir removed by stop(). */
  readonly datadir?: string;
  /** Leave the node running after this process exits; needs `datadir`. */
  readonly detached?: boolean;
  /** Mine until the chain is at least this high at start; default 101 (two mature coinbases). */
  readonly initialBlocks?: number;
  /** Fixed RPC port; default a free loopback port. */
  readonly rpcPort?: number;
  /** How long to wait for the node's RPC; default 60 s. */
  readonly readyTimeoutMs?: number;
  /** Progress lines for humans (building btcd, waiting for RPC, mining); never given secrets. */
  readonly log?: (line: string) => void;
}

export interface FundOptions extends BuildOptions {
  /** Mine one block after sending. Default false. */
  readonly confirm?: boolean;
}

/** A running regtest node and the harness's funding wallet on it. */
export interface RegtestNode {
  readonly kind: NodeKind;
  readonly dialect: NodeDialect;
  /** `http://127.0.0.1:PORT/` (no credentials). */
  readonly rpcUrl: string;
  readonly rpcPort: number;
  readonly rpcUser: string;
  readonly rpcPass: string;
  /** URL for `openBackend`, e.g. `btcd://u:p@127.0.0.1:PORT`. */
  readonly backendUrl: string;
  /** The node's own data directory. */
  readonly nodeDir: string;
  readonly pid: number;
  readonly client: RpcClient;
  /** Where mined coinbases go; the funding wallet's address. */
  readonly fundingAddress: string;
  readonly wallet: FundingWallet;

  rpc<T = unknown>(method: string, params?: readonly unknown[]): Promise<T>;
  /** Mines `n` blocks to the funding address; returns their hashes. */
  mine(n: number): Promise<string[]>;
  /**
   * Mines `n` blocks holding only a coinbase (0 sat to OP_RETURN) via `submitblock`, leaving the
   * mempool as it is, so a transaction can stay unconfirmed while the chain advances. Returns their hashes.
   */
  mineEmpty(n: number): Promise<string[]>;
  /** Pays `sats` to `address` from the funding wallet; returns the txid. Mines only with `confirm: true`. */
  fund(address: string, sats: bigint | number, opts?: FundOptions): Promise<string>;
  /** Pays several outputs (addresses or raw scripts) in one transaction. */
  send(outputs: readonly OutputSpec[], opts?: FundOptions): Promise<string>;
  /** Builds and signs a funding-wallet transaction without sending it. */
  buildTx(outputs: readonly OutputSpec[], opts?: BuildOptions): Promise<BuiltTx>;
  /** Spendable funding-wallet balance in sat. */
  balance(): Promise<bigint>;
  invalidateBlock(hash: string): Promise<void>;
  reconsiderBlock(hash: string): Promise<void>;
  /** Stops and restarts the node process on the same port and data (owned nodes only). */
  restart(opts?: { downMs?: number }): Promise<void>;
  /** Stops the node (SIGTERM, then SIGKILL) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Forgets the node without stopping it (detached or attached nodes). */
  detach(): void;
}

// ---------------------------------------------------------------------------------------------
// btcd deletes its regtest block database on every start (btcd.go removeRegressionDB), so a
// restart would lose the chain. The harness saves the active chain and mempool before stopping
// btcd and submits them again after it starts: same blocks, same hashes, same coins.

async function saveChain(client: RpcClient, dialect: NodeDialect): Promise<SavedChain> {
  const tip = await dialect.getTip(client);
  const heights = Array.from({ length: tip.height }, (_, i) => i + 1);
  const hashes = await strictBatch<string>(client, heights.map((h) => ({ method: 'getblockhash', params: [h] })));
  const blocks = await strictBatch<string>(client, hashes.map((h) => ({ method: 'getblock', params: [h, 0] })));
  const txids = await dialect.getMempoolTxids(client);
  const raw = await client.batch<string>(txids.map((id) => ({ method: 'getrawtransaction', params: [id, 0] })));
  return { blocks, mempool: raw.flatMap((r) => (r.ok ? [r.result] : [])) };
}

async function strictBatch<T>(client: RpcClient, calls: { method: string; params: unknown[] }[]): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < calls.length; i += 200) {
    for (const r of await client.batch<T>(calls.slice(i, i + 200))) {
      if (!r.ok) throw new DeaddropError('BACKEND_ERROR', `${r.error.method}: ${r.error.message}`);
      out.push(r.result);
    }
  }
  return out;
}

async function restoreChain(client: RpcClient, dialect: NodeDialect, saved: SavedChain): Promise<void> {
  const tip = await dialect.getTip(client);
  for (const hex of saved.blocks.slice(tip.height)) {
    const res = await client.call('submitblock', [hex]);
    if (res !== null) throw new DeaddropError('BACKEND_ERROR', `could not restore the regtest chain: ${String(res)}`);
  }
  // Unconfirmed chains need parents first; a few passes settle any order.
  let pending = saved.mempool;
  for (let pass = 0; pass < 5 && pending.length > 0; pass++) {
    const retry: string[] = [];
    for (const hex of pending) if (!(await dialect.sendRawTransaction(client, hex)).accepted) retry.push(hex);
    pending = retry;
  }
}

// ---------------------------------------------------------------------------------------------
// The node handle.

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

interface NodeInit {
  kind: NodeKind;
  rpcPort: number;
  rpcUser: string;
  rpcPass: string;
  nodeDir: string;
  fundingKey: Uint8Array;
  pid: number;
  spec: LaunchSpec | undefined;
  child: ChildProcess | undefined;
  tempRoot: string | undefined;
  stateFile: string | undefined;
  /** btcd with a persistent datadir: where the chain is saved on stop (see saveChain). */
  chainFile: string | undefined;
}

class Node implements RegtestNode {
  readonly kind: NodeKind;
  readonly dialect: NodeDialect;
  readonly rpcUrl: string;
  readonly rpcPort: number;
  readonly rpcUser: string;
  readonly rpcPass: string;
  readonly backendUrl: string;
  readonly nodeDir: string;
  readonly client: RpcClient;
  readonly wallet: FundingWallet;
  readonly fundingAddress: string;
  readonly #init: NodeInit;
  #pid: number;
  #owned: Owned | undefined;
  #stopping: Promise<void> | undefined;
  /** False while starting: a half-restored chain must not overwrite the saved one. */
  saveOnStop: boolean;

  constructor(init: NodeInit) {
    this.#init = init;
    this.kind = init.kind;
    this.dialect = dialectFor(init.kind);
    this.rpcPort = init.rpcPort;
    this.rpcUser = init.rpcUser;
    this.rpcPass = init.rpcPass;
    this.nodeDir = init.nodeDir;
    this.rpcUrl = `http://127.0.0.1:${init.rpcPort}/`;
    const cred = `${encodeURIComponent(init.rpcUser)}:${encodeURIComponent(init.rpcPass)}`;
    this.backendUrl = `${init.kind}://${cred}@127.0.0.1:${init.rpcPort}${init.kind === 'bitcoind' ? '?rest=1' : ''}`;
    this.client = new RpcClient({ url: this.rpcUrl, auth: { user: init.rpcUser, pass: init.rpcPass }, timeoutMs: 30_000 });
    this.wallet = new FundingWallet(this.client, this.dialect, init.fundingKey);
    this.fundingAddress = this.wallet.address;
    this.#pid = init.pid;
    this.saveOnStop = init.child === undefined;
    this.#track();
  }

  get pid(): number {
    return this.#pid;
  }

  /** Non-detached nodes we spawned are killed if this process exits. */
  #track(): void {
    if (this.#init.child === undefined || this.#init.spec?.detached) return;
    this.#owned = own(this.#pid, this.#init.tempRoot);
  }

  rpc<T = unknown>(method: string, params: readonly unknown[] = []): Promise<T> {
    return this.client.call<T>(method, params);
  }

  mine(n: number): Promise<string[]> {
    // Core can rebuild a block it has marked invalid; see ./core-mining.ts.
    if (this.kind === 'bitcoind') return mineOnCore(this.client, this.dialect, n, this.fundingAddress);
    return this.dialect.mine(this.client, n, this.fundingAddress);
  }

  async mineEmpty(n: number): Promise<string[]> {
    if (!Number.isSafeInteger(n) || n < 1 || n > 10_000) throw new RangeError(`block count must be an integer in 1..10000, got ${n}`);
    const hashes: string[] = [];
    for (let i = 0; i < n; i++) hashes.push(await this.#mineEmptyBlock());
    return hashes;
  }

  /** One coinbase-only block on the current tip; checks the node made it its tip. */
  async #mineEmptyBlock(): Promise<string> {
    // getblockchaininfo gives tip hash, height and median-time-past in one answer on both nodes;
    // getblockheader has no `mediantime` on btcd.
    const info = await this.rpc<{ blocks: unknown; bestblockhash: unknown; mediantime: unknown }>('getblockchaininfo');
    const tip = await this.rpc<{ hash: unknown; time: unknown; bits: unknown }>('getblockheader', [info.bestblockhash, true]);
    const { blocks, bestblockhash, mediantime } = info;
    if (!isInt(blocks) || !isInt(mediantime) || !isInt(tip.time) || typeof tip.bits !== 'string' || !/^[0-9a-f]{8}$/.test(tip.bits) ||
      typeof bestblockhash !== 'string' || tip.hash !== bestblockhash) {
      throw DeaddropError.protocol('getblockchaininfo/getblockheader: unexpected shape for the tip');
    }
    const block = buildEmptyBlock({
      prevHash: bestblockhash, height: blocks + 1, bits: Number.parseInt(tip.bits, 16), extraNonce: randomBytes(8),
      time: Math.max(mediantime + 1, tip.time + 1, Math.floor(Date.now() / 1000)),
    });
    // null on success on both nodes; otherwise a reason ("rejected: ..." on btcd, e.g. "high-hash" on Core).
    const res = await this.client.call<unknown>('submitblock', [toHex(block.raw)], { idempotent: false });
    if (res !== null) throw new DeaddropError('REJECTED', `node rejected the empty block: ${String(res)}`);
    const best = await this.rpc<string>('getbestblockhash');
    if (best !== block.hash) throw new DeaddropError('BACKEND_ERROR', `empty block ${block.hash} was accepted but the tip is ${best}`);
    return block.hash;
  }

  fund(address: string, sats: bigint | number, opts: FundOptions = {}): Promise<string> {
    if (typeof sats === 'number' && !Number.isSafeInteger(sats)) throw new RangeError(`sats must be an integer, got ${sats}`);
    return this.send([{ address, sats: BigInt(sats) }], opts);
  }

  async send(outputs: readonly OutputSpec[], opts: FundOptions = {}): Promise<string> {
    const txid = await this.wallet.send(outputs, opts);
    if (opts.confirm) await this.mine(1);
    return txid;
  }

  buildTx(outputs: readonly OutputSpec[], opts: BuildOptions = {}): Promise<BuiltTx> {
    return this.wallet.build(outputs, opts);
  }

  balance(): Promise<bigint> {
    return this.wallet.balance();
  }

  invalidateBlock(hash: string): Promise<void> {
    return this.dialect.invalidateBlock(this.client, hash);
  }

  reconsiderBlock(hash: string): Promise<void> {
    return this.dialect.reconsiderBlock(this.client, hash);
  }

  async restart(opts: { downMs?: number } = {}): Promise<void> {
    const spec = this.#init.spec;
    if (spec === undefined || this.#stopping) throw DeaddropError.unsupported('restart() needs a node this process started and has not stopped');
    const saved = this.kind === 'btcd' ? await saveChain(this.client, this.dialect) : undefined;
    await killPid(this.#pid, spec.nodeDir);
    if (opts.downMs) await sleep(opts.downMs);
    const child = spawnNode(spec);
    if (child.pid === undefined) throw DeaddropError.unreachable('regtest node', `could not start ${spec.binary}`);
    this.#pid = child.pid;
    if (this.#owned) {
      disown(this.#owned);
      this.#owned = own(child.pid, this.#init.tempRoot);
    }
    if (this.#init.stateFile) writeState(this.#init.stateFile, { ...readStateSync(this.#init.stateFile), pid: child.pid });
    await waitReady(this.client, child.pid, spec.logFile, 60_000);
    if (saved) await restoreChain(this.client, this.dialect, saved);
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#init.chainFile && this.saveOnStop && isAlive(this.#pid, this.nodeDir)) {
        try {
          saveChainFile(this.#init.chainFile, await saveChain(this.client, this.dialect));
        } catch {
          // the node is not answering: nothing to save
        }
      }
      await killPid(this.#pid, this.nodeDir);
      if (this.#owned) disown(this.#owned);
      if (this.#init.tempRoot) await rm(this.#init.tempRoot, { recursive: true, force: true, maxRetries: 3 });
      if (this.#init.stateFile) {
        rmSync(this.#init.stateFile, { force: true });
        unpublishRegtestNode(dirname(dirname(this.#init.stateFile)));
      }
    })();
    return this.#stopping;
  }

  detach(): void {
    if (this.#owned) disown(this.#owned);
    this.#owned = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Public entry points.

/**
 * The node kind `DEADDROP_REGTEST_NODE` asks for (`btcd` or `bitcoind`), or undefined to pick by
 * availability. Lets `deaddrop regtest up` (and the tests that run the CLI) choose btcd on a
 * machine that also has Bitcoin Core.
 */
export function requestedNodeKind(): NodeKind | undefined {
  const v = process.env.DEADDROP_REGTEST_NODE;
  if (v === undefined || v === '') return undefined;
  if (v === 'btcd' || v === 'bitcoind') return v;
  throw DeaddropError.badInput(`DEADDROP_REGTEST_NODE must be btcd or bitcoind, got ${JSON.stringify(v.slice(0, 40))}`);
}

async function pickBinary(requested: NodeKind | undefined, log?: (line: string) => void): Promise<{ kind: NodeKind; binary: string }> {
  const kind = requested ?? requestedNodeKind();
  const bitcoind = kind === 'btcd' ? undefined : findBitcoind();
  if (bitcoind) return { kind: 'bitcoind', binary: bitcoind };
  if (kind === 'bitcoind') throw DeaddropError.unsupported('bitcoind requested but neither BITCOIND nor bitcoind on PATH is set');
  return { kind: 'btcd', binary: await ensureBtcd(log) };
}

/**
 * Starts a regtest node, waits for its RPC and mines the initial blocks.
 * @example
 * const node = await startRegtestNode();
 * const txid = await node.fund(address, 100_000n, { confirm: true });
 * await node.stop();
 */
export async function startRegtestNode(opts: StartOptions = {}): Promise<RegtestNode> {
  if (opts.detached && !opts.datadir) throw new TypeError('detached regtest nodes need a datadir');
  const log = opts.log ?? (() => undefined);
  const { kind, binary } = await pickBinary(opts.kind, log);
  const tempRoot = opts.datadir ? undefined : mkdtempSync(join(tmpdir(), 'deaddrop-regtest-'));
  const dir = opts.datadir ? stateDir(opts.datadir) : (tempRoot as string);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stateFile = opts.detached ? join(dir, 'node.json') : undefined;
  if (stateFile && existsSync(stateFile)) {
    const prev = readStateSync(stateFile);
    if (isAlive(prev.pid, prev.nodeDir)) throw new DeaddropError('CONFLICT', `a regtest node is already running for this datadir (pid ${prev.pid})`);
    rmSync(stateFile, { force: true });
  }
  const fundingKey = opts.datadir ? loadOrCreateKey(dir) : FundingWallet.randomKey();
  const rpcPort = opts.rpcPort ?? (await freePort());
  const rpcUser = 'deaddrop';
  const rpcPass = toHex(randomBytes(16));
  const nodeDir = join(dir, 'node');
  const miningAddress = FundingWallet.addressOf(fundingKey);
  const spec: LaunchSpec = {
    kind, binary, nodeDir, detached: opts.detached === true, logFile: join(dir, `${kind}.log`),
    args: launchArgs(kind, nodeDir, rpcPort, miningAddress, kind === 'bitcoind' ? await freePort() : 0),
  };
  writeNodeConfig(kind, nodeDir, rpcUser, rpcPass);
  const child = spawnNode(spec);
  if (child.pid === undefined) {
    if (tempRoot) rmSync(tempRoot, { recursive: true, force: true });
    throw DeaddropError.unreachable('regtest node', `could not start ${binary}`);
  }
  const chainFile = opts.datadir && kind === 'btcd' ? join(dir, 'btcd-chain.json') : undefined;
  const node = new Node({ kind, rpcPort, rpcUser, rpcPass, nodeDir, fundingKey, pid: child.pid, spec, child, tempRoot, stateFile, chainFile });
  try {
    log(`${kind} started (pid ${child.pid}), waiting for its RPC on 127.0.0.1:${rpcPort}`);
    await waitReady(node.client, child.pid, spec.logFile, opts.readyTimeoutMs ?? 60_000);
    const saved = chainFile ? loadChainFile(chainFile) : undefined;
    if (saved && chainFile) {
      await restoreChain(node.client, node.dialect, saved);
      rmSync(chainFile, { force: true });
    }
    const tip = await node.dialect.getTip(node.client);
    const want = opts.initialBlocks ?? DEFAULT_INITIAL_BLOCKS;
    if (tip.height < want) {
      log(`mining ${want - tip.height} blocks so the funding coins mature`);
      await node.mine(want - tip.height);
    }
    if (stateFile) {
      writeState(stateFile, {
        version: STATE_VERSION, pid: child.pid, kind, binary, rpcPort, rpcUser, rpcPass,
        fundingKey: toHex(fundingKey), nodeDir, startedAt: new Date().toISOString(),
      });
      // Other datadirs of this user find the node through the per-user discovery file.
      if (opts.datadir) publishRegtestNode(opts.datadir, child.pid);
    }
    node.saveOnStop = true;
  } catch (err) {
    await node.stop();
    throw err;
  }
  return node;
}

function nodeFromState(s: NodeState, datadir: string): Node {
  return new Node({
    kind: s.kind, rpcPort: s.rpcPort, rpcUser: s.rpcUser, rpcPass: s.rpcPass, nodeDir: s.nodeDir,
    fundingKey: fromHex(s.fundingKey), pid: s.pid, spec: undefined, child: undefined, tempRoot: undefined,
    stateFile: join(stateDir(datadir), 'node.json'),
    chainFile: s.kind === 'btcd' ? join(stateDir(datadir), 'btcd-chain.json') : undefined,
  });
}

/** Reattaches to a detached node started with `startRegtestNode({ datadir, detached: true })`. NOT_FOUND if none runs. */
export async function attachRegtestNode(datadir: string): Promise<RegtestNode> {
  const stateFile = join(stateDir(datadir), 'node.json');
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch {
    throw DeaddropError.notFound('no regtest node is running for this datadir (start one with `deaddrop regtest up`)');
  }
  const s = parseState(text);
  if (!isAlive(s.pid, s.nodeDir)) {
    rmSync(stateFile, { force: true });
    throw DeaddropError.notFound(`the regtest node for this datadir (pid ${s.pid}) is no longer running`);
  }
  const node = nodeFromState(s, datadir);
  await waitReady(node.client, s.pid, join(stateDir(datadir), `${s.kind}.log`), 30_000);
  return node;
}

/**
 * The regtest node for a command run with `datadir`: the datadir's own node, else the node
 * published in the per-user discovery file (`deaddrop regtest up` from any datadir).
 * NOT_FOUND when neither runs.
 */
export async function attachAnyRegtestNode(datadir: string): Promise<RegtestNode> {
  try {
    return await attachRegtestNode(datadir);
  } catch (err) {
    const other = discoveredRegtestDatadir();
    if (!(err instanceof DeaddropError && err.code === 'NOT_FOUND') || other === undefined || other === resolve(datadir)) throw err;
    try {
      return await attachRegtestNode(other);
    } catch (err2) {
      if (err2 instanceof DeaddropError && err2.code === 'NOT_FOUND') throw DeaddropError.notFound('no regtest node is running (start one with `deaddrop regtest up`)');
      throw err2;
    }
  }
}

/** The datadir whose node {@link attachAnyRegtestNode} would use, or undefined when no node runs. */
export function regtestNodeOwner(datadir: string): string | undefined {
  if (existsSync(join(stateDir(datadir), 'node.json'))) return resolve(datadir);
  const other = discoveredRegtestDatadir();
  return other !== undefined && existsSync(join(stateDir(other), 'node.json')) ? other : undefined;
}

/** Stops a detached node and waits until its process is gone. Resolves false when none was running. */
export async function stopRegtestNode(datadir: string): Promise<boolean> {
  const stateFile = join(stateDir(datadir), 'node.json');
  if (!existsSync(stateFile)) return false;
  const s = readStateSync(stateFile);
  if (!isAlive(s.pid, s.nodeDir)) {
    rmSync(stateFile, { force: true });
    return false;
  }
  const node = nodeFromState(s, datadir);
  await node.stop();
  return true;
}

/** Spendable coins of a node's funding wallet (re-exported for status output). */
export function spendableCoins(node: RegtestNode): Promise<WalletUtxo[]> {
  return node.wallet.spendable();
}
