/**
 * The wallet's block sync reports its progress while it walks towards the tip: throttled to at
 * most one report per SYNC_PROGRESS_INTERVAL_MS (4 a second), heights rising, each with the tip
 * it walks to, so the dashboard's bar moves instead of jumping (the end of the walk is the
 * wallet's change notice, which carries the height reached).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../../src/util/time.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { Wallet } from '../../src/wallet/wallet.js';
import { SYNC_PROGRESS_INTERVAL_MS } from '../../src/wallet/sync.js';
import { FakeChain } from '../support/fake-chain.js';

const keys = WalletKeys.fromMnemonic('legal winner thank year wave sausage worth useful legal winner thank yellow', 'regtest');

/** A backend that takes 10 ms per block, like a node over the network. */
class SlowBlocks extends FakeChain {
  override async getRawBlock(hash: string): Promise<Uint8Array> {
    await sleep(10);
    return super.getRawBlock(hash);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('wallet sync progress', () => {
  it('reports a long catch-up at most 4 times a second, rising, towards the tip', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wallet-progress-'));
    dirs.push(dir);
    const chain = new SlowBlocks();
    chain.mine(120, { silent: true });
    const tip = chain.chain.length - 1;
    const reports: { height: number; tip: number; at: number }[] = [];
    const wallet = new Wallet({ keys, source: chain, db: join(dir, 'wallet.db'), onSyncProgress: (height, t) => reports.push({ height, tip: t, at: Date.now() }) });
    await wallet.ready();
    await wallet.sync();
    expect(wallet.height).toBe(tip);
    await wallet.close();
    // The first block is reported at once, then at most every interval.
    expect(reports[0]!.height).toBe(0);
    // About 1.2 s of blocks: a few reports on the way, not one per block.
    expect(reports.length).toBeGreaterThanOrEqual(3);
    expect(reports.length).toBeLessThan(20);
    for (let i = 1; i < reports.length; i++) {
      expect(reports[i]!.height).toBeGreaterThan(reports[i - 1]!.height);
      expect(reports[i]!.at - reports[i - 1]!.at).toBeGreaterThanOrEqual(SYNC_PROGRESS_INTERVAL_MS);
    }
    expect(reports.every((r) => r.tip === tip)).toBe(true);
  });
});
