/**
 * Test parties for the PayPub integration tests: each one a real daemon (own datadir, wallet,
 * PayPub feature, API) on the same regtest btcd, driven through its HTTP API as a user's tools
 * would, with its event stream recorded.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../src/daemon/daemon.js';
import type { DaemonEvent } from '../../src/util/event-bus.js';
import type { DaemonFeature } from '../../src/feature/contract.js';
import { createPaypubFeature } from '../../src/paypub/feature.js';
import { createNodeFeature } from '../../src/node/feature.js';
import type { StorageOptions } from '../../src/node/storage/options.js';
import type { ContentStore } from '../../src/feature/content-store.js';
import type { RegtestNode } from '../../src/regtest/harness.js';
import { createKeystore } from '../../src/wallet/keystore.js';
import { mineTo } from './regtest-tx.js';
import { waitUntil } from './wait.js';

export const PASS = 'paypub test passphrase';
export const FAST_SCRYPT = { N: 2 ** 10, r: 8, p: 1 };

export interface Party {
  readonly name: string;
  readonly datadir: string;
  readonly daemon: Daemon;
  readonly mnemonic: string;
  readonly events: DaemonEvent[];
  api<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** The API, expecting 200. */
  ok<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>;
  /** Resolves with the first event of `type` matching `pred` (already seen ones included). */
  waitFor(type: string, pred?: (e: DaemonEvent) => boolean, timeoutMs?: number): Promise<DaemonEvent>;
  stop(): Promise<void>;
  restart(): Promise<Party>;
}

/** Where a party's API publishes files from by path (the daemon creates the folder). */
export function outboxPath(p: Pick<Party, 'datadir'>, name: string): string {
  return join(p.datadir, 'paypub', 'outbox', name);
}

/** Where a party's daemon writes a file unlocked under `name` (API `out`). */
export function unlockedPath(p: Pick<Party, 'datadir'>, name: string): string {
  return join(p.datadir, 'paypub', 'unlocked', name);
}

export async function startParty(name: string, node: RegtestNode, existing?: { datadir: string; mnemonic: string }, opts: { publicListen?: string; features?: DaemonFeature[] } = {}): Promise<Party> {
  const datadir = existing?.datadir ?? mkdtempSync(join(tmpdir(), `dd-paypub-${name}-`));
  let mnemonic = existing?.mnemonic ?? '';
  if (!existing) {
    const tip = await node.rpc<number>('getblockcount');
    mnemonic = (await createKeystore(datadir, { passphrase: PASS, network: 'regtest', scrypt: FAST_SCRYPT, birthdayHeight: tip })).mnemonic;
  }
  const daemon = new Daemon({
    datadir, network: 'regtest', backendUrl: node.backendUrl, passphrase: async () => PASS,
    features: [createPaypubFeature({ pollIntervalMs: 500 })], ...opts,
  });
  const events: DaemonEvent[] = [];
  daemon.events.subscribe((e) => events.push(e));
  await daemon.ready();
  const token = readFileSync(join(datadir, 'api.token'), 'utf8').trim();
  const api = async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${daemon.apiUrl}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const party: Party = {
    name, datadir, daemon, mnemonic, events, api,
    async ok<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
      const r = await api<T>(method, path, body);
      if (r.status !== 200) throw new Error(`${name} ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    waitFor(type, pred = () => true, timeoutMs = 30_000) {
      const found = events.find((e) => e.type === type && pred(e));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          unsubscribe();
          reject(new Error(`${name}: no ${type} event within ${timeoutMs} ms (saw ${events.map((e) => e.type).join(', ')})`));
        }, timeoutMs);
        const unsubscribe = daemon.events.subscribe((e) => {
          if (e.type === type && pred(e)) {
            clearTimeout(timer);
            unsubscribe();
            resolve(e);
          }
        });
      });
    },
    stop: () => daemon.close(),
    async restart() {
      await daemon.close();
      return startParty(name, node, { datadir, mnemonic }, opts);
    },
  };
  return party;
}

/**
 * PayPub and the peer node with `storage`, wired as `deaddrop start` wires them: sales are put
 * into, and read from, the node feature's storage (peers or `--storage tahoe:<url>`).
 * `contentStore()` is what PayPub sees (null while the daemon is stopped).
 */
export function nodeStorageFeatures(storage: StorageOptions): { features: DaemonFeature[]; contentStore: () => ContentStore | null } {
  let store: ContentStore | null = null;
  return {
    features: [
      createPaypubFeature({ pollIntervalMs: 500, contentStore: () => store }),
      createNodeFeature({ host: '127.0.0.1', storage, onContentStore: (s) => { store = s; } }),
    ],
    contentStore: () => store,
  };
}

/** Funds the party's wallet (confirmed) and waits until its wallet sees it. */
export async function fundParty(node: RegtestNode, party: Party, sats: bigint): Promise<void> {
  const { address } = await party.ok<{ address: string }>('POST', '/wallet/address');
  await node.fund(address, sats, { confirm: true });
  await waitUntil(async () => BigInt((await party.ok<{ confirmed: string }>('GET', '/wallet/balance')).confirmed) >= sats, `${party.name} funded`, 30_000);
}

export function removeParty(p: Party | undefined): void {
  if (p) rmSync(p.datadir, { recursive: true, force: true });
}

/** A sale published by `seller` whose sample is revealed: its offer is ready for pledges. */
export interface RevealedSale {
  readonly id: string;
  readonly beaconHeight: number;
  readonly deadlineHeight: number;
  readonly offer: string;
}

/**
 * Publishes `size` random bytes as 16 chunks, 4 sampled, price 50,000 and threshold 100,000 sat,
 * without automatic claims (so a test decides whether the seller collects), and mines until the
 * sample is revealed.
 */
export async function publishRevealed(seller: Party, node: RegtestNode, name: string, size: number): Promise<RevealedSale> {
  const path = outboxPath(seller, name);
  writeFileSync(path, randomBytes(size));
  const pub = await seller.ok<{ id: string; beaconHeight: number; deadlineHeight: number }>('POST', '/paypub/publish', {
    path, price: '50000', threshold: '100000', chunks: 16, sample: 4, beaconIn: 3, deadlineIn: 14, feeRate: 2, autoClaim: false,
  });
  await node.mine(1);
  await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === pub.id);
  await mineTo(node, pub.beaconHeight + 1);
  await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === pub.id);
  const { offer } = await seller.ok<{ offer: string }>('GET', `/paypub/sales/${pub.id}/offer`);
  return { id: pub.id, beaconHeight: pub.beaconHeight, deadlineHeight: pub.deadlineHeight, offer };
}
