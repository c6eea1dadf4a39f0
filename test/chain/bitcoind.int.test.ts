/**
 * The ChainSource conformance table against Bitcoin Core. Runs only when BITCOIND points at a
 * bitcoind binary (e.g. `BITCOIND=/usr/local/bin/bitcoind npx vitest run test/chain/bitcoind.int.test.ts`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../../src/chain/open.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { describeConformance } from './conformance.js';

const BITCOIND = process.env.BITCOIND;

describe.skipIf(!BITCOIND)('bitcoind backend conformance (skipped unless BITCOIND=/path/to/bitcoind is set)', () => {
  let node: RegtestNode;

  beforeAll(async () => {
    node = await startRegtestNode({ kind: 'bitcoind' });
  });

  afterAll(async () => {
    await node?.stop();
  });

  describeConformance({
    node: () => node,
    backendUrl: () => node.backendUrl,
    open: (url, opts) => openBackend(url, opts),
    // Core's txindex catches up in the background after a block connects.
    settle: async () => {
      for (let i = 0; i < 100; i++) {
        const height = await node.rpc<number>('getblockcount');
        const info = await node.rpc<{ txindex?: { synced: boolean; best_block_height: number } }>('getindexinfo');
        if (info.txindex?.synced && info.txindex.best_block_height === height) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  });

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
    const { join } = await import('node:path');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
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

describe.runIf(!BITCOIND)('bitcoind backend conformance', () => {
  it.skip('skipped: set BITCOIND=/path/to/bitcoind to run the conformance table against Bitcoin Core', () => undefined);
});
