/**
 * The storage side of the PayPub-over-storage tests: real PeerNodes with NodeStorage over loopback
 * sockets, in one temp dir. `startSaleCircle` starts four storage servers, a seller's node that is
 * a contact of all four (it has verified their announcements) and a buyer's node that knows none
 * of them (a stranger elsewhere: it reads through the servers an offer names).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256, utf8 } from '../../src/node/crypto.js';
import { PeerNode } from '../../src/node/node.js';
import { NodeStorage, type NodeStorageOptions } from '../../src/node/storage/service.js';
import { waitUntil } from './wait.js';

/** 2-of-4, happy 3: a sale survives two of the four servers gone. */
export const SALE_SHARES = { k: 2, happy: 3, n: 4 };

export interface StorageNode {
  readonly name: string;
  readonly node: PeerNode;
  readonly storage: NodeStorage;
}

export class StorageNodes {
  readonly all: StorageNode[] = [];
  readonly #root: string;

  /** `label` seeds the node keys (distinct per test file, so two files never share a key). */
  constructor(readonly label: string) {
    this.#root = mkdtempSync(join(tmpdir(), `dd-${label}-`));
  }

  async start(name: string, opts: Partial<NodeStorageOptions> = {}): Promise<StorageNode> {
    const node = new PeerNode({ seed: sha256(utf8(`${this.label} ${name}`)), dbPath: join(this.#root, `${name}.sqlite`), reconnectMinMs: 100, reconnectMaxMs: 400 });
    await node.ready();
    const storage = await NodeStorage.start(node, { dir: join(this.#root, name), shares: SALE_SHARES, ...opts });
    const s = { name, node, storage };
    this.all.push(s);
    return s;
  }

  byName(name: string): StorageNode {
    const s = this.all.find((x) => x.name === name);
    if (!s) throw new Error(`no storage node ${name}`);
    return s;
  }

  /** The storage servers (named server0 …). */
  servers(): StorageNode[] {
    return this.all.filter((s) => s.name.startsWith('server'));
  }

  async stop(s: StorageNode): Promise<void> {
    await s.storage.close();
    await s.node.close();
  }

  /** Stops every node and removes the dir; stops what it can when one fails. */
  async close(): Promise<void> {
    for (const s of this.all) await this.stop(s).catch(() => undefined);
    rmSync(this.#root, { recursive: true, force: true });
  }
}

/** Four servers (8 MiB quota each), the seller's node (their contact) and the buyer's (knows none). */
export async function startSaleCircle(nodes: StorageNodes): Promise<{ seller: StorageNode; buyer: StorageNode }> {
  const servers: StorageNode[] = [];
  for (let i = 0; i < 4; i++) servers.push(await nodes.start(`server${i}`, { server: { quotaBytes: 8 << 20 } }));
  const seller = await nodes.start('seller');
  const buyer = await nodes.start('buyer');
  for (const s of servers) await seller.node.bootstrapFromIntroduction(s.node.createIntroductionToken());
  await waitUntil(() => seller.storage.directory.servers().length === 4, 'the seller verified four storage announcements', 30_000);
  return { seller, buyer };
}
