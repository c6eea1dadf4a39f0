/**
 * Which backend serves a capability (src/node/storage/cap-route.ts), and NodeStorage following it:
 * a peers file is read on any node, a Tahoe file only on a node with a Tahoe client, and the
 * mismatch is a clear coded error that names the way out, not a parse error or a crash.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, utf8 } from '../../../src/node/crypto.js';
import { PeerNode } from '../../../src/node/node.js';
import { capBackend, checkOwnBackend, readBackendFor } from '../../../src/node/storage/cap-route.js';
import { encodeFile } from '../../../src/node/storage/immutable.js';
import { NodeStorage } from '../../../src/node/storage/service.js';
import { freePort } from '../../../src/regtest/harness.js';
import { expectCode } from '../../support/errors.js';

const KEY_B32 = 'aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq';
const TAHOE_READ = `dd-tahoe:URI:CHK:${'b'.repeat(25)}q:${'c'.repeat(51)}q:2:4:1016:${KEY_B32}`;
const TAHOE_VERIFY = `dd-tahoe-v:URI:CHK:${'b'.repeat(25)}q:${'c'.repeat(51)}q:2:4:1016`;
const PEERS = encodeFile(new Uint8Array(100), { k: 2, n: 4 });

describe('capBackend / readBackendFor / checkOwnBackend', () => {
  it('tells the backend from the prefix', () => {
    expect(capBackend(PEERS.readCap)).toBe('peers');
    expect(capBackend(PEERS.verifyCap)).toBe('peers');
    expect(capBackend(TAHOE_READ)).toBe('tahoe');
    expect(capBackend(TAHOE_VERIFY)).toBe('tahoe');
    for (const bad of ['', 'URI:CHK:x', 'dd-tahoex', `DD-CHK:${KEY_B32}`, 42 as unknown as string]) {
      const e = expectCode(() => capBackend(bad), 'BAD_INPUT', 'not a storage capability');
      expect(e.details).toEqual({ reason: 'malformed-cap' });
    }
  });

  it('reads peers files on every node, and Tahoe files only through a Tahoe client, saying how to get one', () => {
    expect(readBackendFor(PEERS.readCap, 'peers')).toBe('peers');
    expect(readBackendFor(PEERS.readCap, 'tahoe')).toBe('peers');
    expect(readBackendFor(TAHOE_READ, 'tahoe')).toBe('tahoe');
    const e = expectCode(() => readBackendFor(TAHOE_READ, 'peers'), 'UNSUPPORTED', '--storage tahoe:<web API URL of a Tahoe client node that joined the same grid>');
    expect(e.details).toEqual({ reason: 'needs-tahoe', backend: 'peers' });
    // The key in the capability is never echoed.
    expect(e.message).not.toContain(KEY_B32);
  });

  it('checks and keeps only files of the node\'s own backend', () => {
    expect(() => checkOwnBackend(PEERS.verifyCap, 'peers')).not.toThrow();
    expect(() => checkOwnBackend(TAHOE_VERIFY, 'tahoe')).not.toThrow();
    const e1 = expectCode(() => checkOwnBackend(PEERS.readCap, 'tahoe'), 'UNSUPPORTED', 'names a file on peers storage (dd-chk:), and this node keeps its files on a Tahoe-LAFS grid');
    expect(e1.details).toEqual({ reason: 'other-backend', backend: 'tahoe' });
    const e2 = expectCode(() => checkOwnBackend(TAHOE_READ, 'peers'), 'UNSUPPORTED', 'names a file on a Tahoe-LAFS grid (dd-tahoe:)');
    expect(e2.message).not.toContain(KEY_B32);
  });
});

describe('NodeStorage reads on the backend the capability names', () => {
  const root = mkdtempSync(join(tmpdir(), 'dd-cap-route-'));
  const opened: { node: PeerNode; storage: NodeStorage }[] = [];
  let peersNode: NodeStorage;
  let tahoeNode: NodeStorage;
  let tahoeUrl: string;

  async function start(name: string, backend?: { kind: 'tahoe'; url: string }): Promise<NodeStorage> {
    const node = new PeerNode({ seed: sha256(utf8(`cap-route ${name}`)), dbPath: join(root, `${name}.sqlite`) });
    await node.ready();
    const storage = await NodeStorage.start(node, { dir: join(root, name), shares: { k: 2, happy: 3, n: 4 }, ...(backend ? { backend } : {}) });
    opened.push({ node, storage });
    return storage;
  }

  beforeAll(async () => {
    // No Tahoe client listens there: a request that reached the Tahoe backend would say so.
    tahoeUrl = `http://127.0.0.1:${await freePort()}`;
    peersNode = await start('peers');
    tahoeNode = await start('tahoe', { kind: 'tahoe', url: tahoeUrl });
  });

  afterAll(async () => {
    for (const { node, storage } of opened) {
      await storage.close();
      await node.close();
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('a peers node refuses a Tahoe file with the way out, without trying anything', async () => {
    await expectCode(() => peersNode.get(TAHOE_READ), 'UNSUPPORTED', 'this file is on a Tahoe-LAFS grid');
    await expectCode(() => peersNode.getStream(TAHOE_READ), 'UNSUPPORTED', '--storage tahoe:');
    await expectCode(() => peersNode.check(TAHOE_VERIFY), 'UNSUPPORTED', 'names a file on a Tahoe-LAFS grid');
    expectCode(() => peersNode.keep(TAHOE_READ), 'UNSUPPORTED', 'names a file on a Tahoe-LAFS grid');
  });

  it('a Tahoe node reads a peers file through the peers client (here: no servers hold it), not through the grid', async () => {
    const e = await expectCode(() => tahoeNode.get(PEERS.readCap), 'NOT_FOUND');
    expect(e.message).not.toContain('Tahoe');
    await expectCode(() => tahoeNode.getStream(PEERS.readCap), 'NOT_FOUND');
    // A Tahoe file goes to the grid's client (unreachable here).
    await expectCode(() => tahoeNode.get(TAHOE_READ), 'BACKEND_UNREACHABLE', 'the Tahoe-LAFS client');
    await expectCode(() => tahoeNode.check(PEERS.verifyCap), 'UNSUPPORTED', 'names a file on peers storage');
  });
});
