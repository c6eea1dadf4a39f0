/**
 * The files a persistent regtest datadir keeps (`<datadir>/regtest/`): `node.json` for a
 * detached node (so later commands can attach to it or stop it), `wallet.json` with the
 * funding key (reused so earlier coins stay spendable), and `btcd-chain.json`, the chain btcd
 * would otherwise lose on restart (see `saveChain` in `harness.ts`).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { NodeKind } from '../chain/dialect.js';
import { DeaddropError } from '../util/errors.js';
import { FundingWallet } from './wallet.js';
import { fromHex, toHex } from '../util/bytes.js';

/** Version of `node.json`; a file of another version is refused. */
export const STATE_VERSION = 1;

/** What `<datadir>/regtest/node.json` holds for a detached node. */
export interface NodeState {
  readonly version: number;
  readonly pid: number;
  readonly kind: NodeKind;
  readonly binary: string;
  readonly rpcPort: number;
  readonly rpcUser: string;
  readonly rpcPass: string;
  readonly fundingKey: string;
  readonly nodeDir: string;
  readonly startedAt: string;
}

/** A btcd chain saved across a restart: raw blocks above genesis and raw mempool txs, in hex. */
export interface SavedChain {
  readonly blocks: string[];
  readonly mempool: string[];
}

/** Saves a btcd chain for the next start of this datadir's node. */
export function saveChainFile(file: string, saved: SavedChain): void {
  writeFileSync(file, JSON.stringify(saved));
}

/** The saved chain, or undefined when there is none or it is unreadable. */
export function loadChainFile(file: string): SavedChain | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<SavedChain>;
    const hexList = (a: unknown): a is string[] => Array.isArray(a) && a.every((x) => typeof x === 'string');
    return hexList(v.blocks) && hexList(v.mempool) ? { blocks: v.blocks, mempool: v.mempool } : undefined;
  } catch {
    return undefined;
  }
}

/** Where a persistent datadir keeps its regtest node: `<datadir>/regtest`. */
export function stateDir(datadir: string): string {
  return join(resolve(datadir), 'regtest');
}

/** Writes a detached node's record (mode 0600: it holds the RPC password and the funding key). */
export function writeState(file: string, state: NodeState): void {
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

export function readStateSync(file: string): NodeState {
  return parseState(readFileSync(file, 'utf8'));
}

/** Validates a `node.json`; BAD_INPUT on anything unexpected. */
export function parseState(text: string): NodeState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw DeaddropError.badInput('regtest node.json is not valid JSON');
  }
  const o = v as Partial<NodeState> | null;
  const ok =
    o !== null && typeof o === 'object' && o.version === STATE_VERSION && Number.isSafeInteger(o.pid) &&
    (o.kind === 'btcd' || o.kind === 'bitcoind') && typeof o.binary === 'string' && Number.isSafeInteger(o.rpcPort) &&
    typeof o.rpcUser === 'string' && typeof o.rpcPass === 'string' && typeof o.fundingKey === 'string' &&
    /^[0-9a-f]{64}$/.test(o.fundingKey) && typeof o.nodeDir === 'string';
  if (!ok) throw DeaddropError.badInput('regtest node.json has an unexpected shape');
  return o as NodeState;
}

/** The funding key of a persistent datadir: reused across `up`/`down` so earlier coins stay spendable. */
export function loadOrCreateKey(dir: string): Uint8Array {
  const file = join(dir, 'wallet.json');
  if (existsSync(file)) {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { fundingKey?: unknown };
    if (typeof v.fundingKey === 'string' && /^[0-9a-f]{64}$/.test(v.fundingKey)) return fromHex(v.fundingKey);
    throw DeaddropError.badInput(`${file} has no valid fundingKey`);
  }
  const key = FundingWallet.randomKey();
  writeFileSync(file, `${JSON.stringify({ fundingKey: toHex(key) })}\n`, { mode: 0o600 });
  return key;
}
