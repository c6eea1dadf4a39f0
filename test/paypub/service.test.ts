/** PaypubService's lifecycle over the in-memory chain: a close during open leaves nothing running. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PaypubService } from '../../src/paypub/service.js';
import { PaypubStore, Sealer } from '../../src/paypub/store.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { PAYPUB_STORAGE, WalletKeys } from '../../src/wallet/keys.js';
import { FakeChain } from '../support/fake-chain.js';

const ABANDON = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('PaypubService lifecycle', () => {
  it('close during open: close resolves, ready rejects CLOSED, no subscription, timer or open store is left', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let liveSubscriptions = 0;
    class GatedChain extends FakeChain {
      override async ready(): Promise<void> {
        await gate;
      }
      override subscribe(listener: Parameters<FakeChain['subscribe']>[0]): () => void {
        liveSubscriptions++;
        const off = super.subscribe(listener);
        return () => {
          liveSubscriptions--;
          off();
        };
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'dd-paypub-service-'));
    dirs.push(dir);
    const keys = WalletKeys.fromMnemonic(ABANDON, 'regtest');
    const before = timers();
    const published: string[] = [];
    const service = new PaypubService({
      chain: new GatedChain(), wallet: undefined, keys, datadir: dir, network: 'regtest', auto: true, pollIntervalMs: 50,
      publish: (type) => published.push(type),
    });
    const opening = service.ready();
    const closing = service.close();
    release();
    await expect(opening).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    await closing;
    expect(liveSubscriptions).toBe(0);
    expect(timers()).toBeLessThanOrEqual(before);
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
