/**
 * The ChainSource conformance table against each regtest node (btcd always, Bitcoin Core when
 * available; one node per kind for the file), plus what only the Core backend has: REST blocks,
 * the RPC hex fallback, cookie authentication.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackend } from '../../src/chain/open.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { chainNodes } from '../support/nodes.js';
import { describeConformance } from '../support/conformance.js';

/** Core's txindex catches up in the background after a block connects. */
async function txindexSynced(node: RegtestNode): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const height = await node.rpc<number>('getblockcount');
    const info = await node.rpc<{ txindex?: { synced: boolean; best_block_height: number } }>('getindexinfo');
    if (info.txindex?.synced && info.txindex.best_block_height === height) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(chainNodes())('%s backend conformance', (kind) => {
  let node: RegtestNode;

  beforeAll(async () => {
    node = await startRegtestNode({ kind });
  });

  afterAll(async () => {
    await node?.stop();
  });

  describeConformance({
    node: () => node,
    backendUrl: () => node.backendUrl,
    open: (url, opts) => openBackend(url, opts),
    ...(kind === 'bitcoind' ? { settle: () => txindexSynced(node) } : {}),
  });

  if (kind !== 'bitcoind') return;

  it('uses REST for raw blocks and detects -txindex', async () => {
    const src = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
    await src.ready();
    expect(src.capabilities.rawBlockRoute).toBe('rest');
    expect(src.capabilities.anyTransaction).toBe(true);
    await src.close();
  });

  it('falls back to RPC hex when REST is turned off in the URL', async () => {
    const src = await openBackend(`${node.backendUrl.split('?')[0]}?rest=0`, { expectedNetwork: 'regtest' });
    await src.ready();
    expect(src.capabilities.rawBlockRoute).toBe('rpc');
    const hash = await node.rpc<string>('getbestblockhash');
    expect((await src.getRawBlock(hash)).length).toBeGreaterThan(80);
    await src.close();
  });

  it('authenticates with the cookie file', async () => {
    // The harness starts Core with rpcuser/rpcpassword, so write a cookie-format file holding them.
    const dir = mkdtempSync(join(tmpdir(), 'deaddrop-cookie-'));
    const cookie = join(dir, '.cookie');
    writeFileSync(cookie, `${node.rpcUser}:${node.rpcPass}`);
    try {
      const src = await openBackend(`bitcoind://127.0.0.1:${node.rpcPort}?cookie=${encodeURIComponent(cookie)}`, { expectedNetwork: 'regtest' });
      await src.ready();
      expect((await src.getTip()).hash).toBe(await node.rpc<string>('getbestblockhash'));
      await src.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
