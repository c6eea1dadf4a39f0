/**
 * The wallet's lifecycle: closing while `ready()` is still waiting for the backend leaves
 * nothing running (no chain subscription, no poll timer, no database), and a closed wallet
 * does not open again.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../../src/util/time.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { Wallet } from '../../src/wallet/wallet.js';
import { FakeChain } from '../support/fake-chain.js';
import { expectCode } from '../support/errors.js';

const keys = WalletKeys.fromMnemonic('legal winner thank year wave sausage worth useful legal winner thank yellow', 'regtest');

/** A chain whose `ready()` takes a while (FakeChain counts live subscriptions). */
class SlowChain extends FakeChain {
  override async ready(): Promise<void> {
    await sleep(30);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(): { chain: SlowChain; wallet: Wallet; db: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wallet-life-'));
  dirs.push(dir);
  const chain = new SlowChain();
  const db = join(dir, 'wallet.db');
  const wallet = new Wallet({ keys, source: chain, db, follow: true, pollIntervalMs: 10 });
  return { chain, wallet, db };
}

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('Wallet lifecycle', () => {
  it('close during open resolves and leaves no subscription, timer or database', async () => {
    const { chain, wallet, db } = setup();
    const idle = timers();
    const opening = wallet.ready();
    await sleep(1); // the open is waiting for the backend
    await wallet.close();
    await expectCode(opening, 'CLOSED');
    expect(chain.liveSubscriptions).toBe(0);
    expect(existsSync(db)).toBe(false);
    await sleep(50);
    expect(timers()).toBeLessThanOrEqual(idle);
    await expectCode(wallet.ready(), 'CLOSED');
    await expectCode(wallet.sync(), 'CLOSED');
  });

  it('close after a full open stops the background sync', async () => {
    const { chain, wallet } = setup();
    await wallet.ready();
    expect(chain.liveSubscriptions).toBe(1);
    await Promise.all([wallet.close(), wallet.close()]);
    expect(chain.liveSubscriptions).toBe(0);
  });
});

describe('Wallet never opened', () => {
  it('closes without opening anything, and then refuses work as closed', async () => {
    const { chain, wallet, db } = setup();
    await wallet.close();
    expect(chain.liveSubscriptions).toBe(0);
    expect(existsSync(db)).toBe(false);
    expect(() => wallet.release('00'.repeat(32))).toThrow(/closed/);
  });
});
