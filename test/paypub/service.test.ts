/** PaypubService's lifecycle over the in-memory chain: a close during open leaves nothing running. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PaypubService } from '../../src/paypub/service.js';
import { PaypubStore, Sealer } from '../../src/paypub/store.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { PAYPUB_STORAGE, WalletKeys } from '../../src/wallet/keys.js';
import { FakeChain, GatedChain } from '../support/fake-chain.js';
import { activeTimers } from '../support/resources.js';

const ABANDON = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});


describe('PaypubService lifecycle', () => {
  it('close during open: close resolves, ready rejects CLOSED, no subscription, timer or open store is left', async () => {
    const chain = new GatedChain();
    const dir = mkdtempSync(join(tmpdir(), 'dd-paypub-service-'));
    dirs.push(dir);
    const keys = WalletKeys.fromMnemonic(ABANDON, 'regtest');
    const before = activeTimers();
    const published: string[] = [];
    const service = new PaypubService({
      chain, wallet: undefined, keys, datadir: dir, network: 'regtest', auto: true, pollIntervalMs: 50,
      publish: (type) => published.push(type),
    });
    const opening = service.ready();
    const closing = service.close();
    chain.release();
    await expect(opening).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    await closing;
    expect(chain.liveSubscriptions).toBe(0);
    expect(activeTimers()).toBeLessThanOrEqual(before);
    expect(service.store.db.open).toBe(false);
    await expect(service.ready()).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    // The file is free for the next process.
    const again = new PaypubStore(join(dir, 'paypub.db'), new Sealer(keys.paypubKey(PAYPUB_STORAGE, 0).privateKey));
    again.close();
    expect(published).toEqual([]);
  });

  it('closes its store when it was never opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dd-paypub-service-'));
    dirs.push(dir);
    const service = new PaypubService({ chain: new FakeChain(), wallet: undefined, keys: WalletKeys.fromMnemonic(ABANDON, 'regtest'), datadir: dir, network: 'regtest' });
    await service.close();
    expect(service.store.db.open).toBe(false);
  });
});
