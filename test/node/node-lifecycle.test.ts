/**
 * PeerNode's lifecycle: closing while the port is still opening leaves nothing running (no
 * listening socket, no maintenance timer, no dial), the database is closed, and a closed node
 * does not come back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256, utf8 } from '../../src/node/crypto.js';
import { PeerNode } from '../../src/node/node.js';
import { sleep } from '../../src/util/time.js';
import { expectCode } from '../support/errors.js';

const root = mkdtempSync(join(tmpdir(), 'dd-node-life-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Handles that would outlive a leaky close: listening sockets and timers. */
const handles = (): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) if (r === 'TCPServerWrap' || r === 'Timeout' || r === 'TCPSocketWrap') out[r] = (out[r] ?? 0) + 1;
  return out;
};

/** The handle kinds of which there are more now than in `before`. */
const leftOver = (before: Record<string, number>): string[] =>
  Object.entries(handles()).filter(([kind, n]) => n > (before[kind] ?? 0)).map(([kind]) => kind);

describe('PeerNode lifecycle', () => {
  it('close during open resolves and leaves no listener, timer or database', async () => {
    const before = handles();
    const node = new PeerNode({ seed: sha256(utf8('lifecycle')), dbPath: join(root, 'a.sqlite'), whereaboutsTtlMs: 80, beaconAfterMs: 80 });
    const opening = node.ready();
    // The constructor started opening; the port is not listening yet.
    expect(node.listeningPort).toBeNull();
    await node.close();
    await expectCode(opening, 'CLOSED');
    await sleep(50);
    expect(leftOver(before)).toEqual([]);
    expect(() => node.store).toThrow(/closed/);
    expect(() => node.createIntroductionToken()).toThrow(/closed/);
    await expectCode(node.ready(), 'CLOSED');
  });

  it('the stores are usable before ready() resolves, and close after open leaves nothing either', async () => {
    const before = handles();
    const node = new PeerNode({ seed: sha256(utf8('lifecycle 2')), dbPath: join(root, 'b.sqlite'), whereaboutsTtlMs: 80, beaconAfterMs: 80 });
    expect(node.store.feeds()).toBeDefined();
    await node.ready();
    expect(node.listeningPort).not.toBeNull();
    await Promise.all([node.close(), node.close()]);
    await sleep(50);
    expect(leftOver(before)).toEqual([]);
  });
});
