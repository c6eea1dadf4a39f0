/**
 * PaypubWatch's lifecycle: a close while `ready()` is still waiting on the chain source leaves
 * no mempool subscription and no follower behind. The hand-written lifecycle this replaced
 * subscribed after its last await without checking for a close, and unsubscribed before the
 * open had finished, so a close during open left a live subscription.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChainTip } from '../../src/chain/types.js';
import { PaypubStore, Sealer } from '../../src/paypub/store.js';
import { PaypubWatch } from '../../src/paypub/watch.js';
import { sleep } from '../../src/util/time.js';
import { FakeChain } from '../support/fake-chain.js';
import { expectCode } from '../support/errors.js';

/** A chain whose tip takes a while to answer (FakeChain counts live subscriptions). */
class SlowChain extends FakeChain {
  tipCalls = 0;

  override async getTip(): Promise<ChainTip> {
    this.tipCalls++;
    await sleep(30);
    return super.getTip();
  }
}

let dir: string;
let store: PaypubStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dd-paypub-life-'));
  store = new PaypubStore(join(dir, 'paypub.db'), new Sealer(new Uint8Array(randomBytes(32))));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('PaypubWatch lifecycle', () => {
  it('close during open resolves and leaves no subscription and no follower', async () => {
    const chain = new SlowChain();
    const watch = new PaypubWatch({ store, source: chain, follow: true, pollIntervalMs: 10 });
    const idle = timers();
    const opening = watch.ready();
    await sleep(5); // the open is waiting for the tip
    expect(chain.tipCalls).toBe(1);
    await watch.close();
    expect(chain.liveSubscriptions).toBe(0);
    await expectCode(opening, 'CLOSED');
    const calls = chain.tipCalls;
    await sleep(100);
    expect(chain.tipCalls).toBe(calls); // no follower polling
    expect(timers()).toBeLessThanOrEqual(idle);
    await expectCode(watch.ready(), 'CLOSED');
  });

  it('close after a full open removes the subscription', async () => {
    const chain = new SlowChain();
    const watch = new PaypubWatch({ store, source: chain, follow: true, pollIntervalMs: 10 });
    await watch.ready();
    expect(chain.liveSubscriptions).toBeGreaterThanOrEqual(1);
    await Promise.all([watch.close(), watch.close()]);
    expect(chain.liveSubscriptions).toBe(0);
  });
});
