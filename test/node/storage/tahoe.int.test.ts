/**
 * The Tahoe-LAFS backend against a real private grid on loopback (test/support/tahoe-grid.ts):
 * one introducer, four storage nodes, a client encoding 2-of-4 with happy = 4.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreProgress } from '../../../src/node/storage/backend.js';
import { TahoeBackend } from '../../../src/node/storage/tahoe-backend.js';
import { parseTahoeReadCap, tahoeVerifyCapOf } from '../../../src/node/storage/tahoe-cap.js';
import { freePort } from '../../../src/regtest/harness.js';
import { expectCode } from '../../support/errors.js';
import { listeningSockets, SHARES, STORAGE_NODES, startTahoeGrid, tahoeVersion, type TahoeGrid } from '../../support/tahoe-grid.js';

const version = await tahoeVersion();
const skipReason = version === 'tahoe-lafs/1.20.0' ? undefined : `tahoe-lafs 1.20.0 is not installed in .tools/electrumx (run bash regtest/install-tahoe.sh); found ${version ?? 'nothing'}`;
if (skipReason) console.warn(`skipping the Tahoe-LAFS backend tests: ${skipReason}`);

/** Flips one base32 character of the file key (the last field of the read cap). */
function tamperKey(cap: string): string {
  const i = cap.length - 10;
  return cap.slice(0, i) + (cap[i] === 'a' ? 'b' : 'a') + cap.slice(i + 1);
}

describe.skipIf(skipReason !== undefined)('TahoeBackend on a private loopback grid (tahoe-lafs 1.20.0)', () => {
  let grid: TahoeGrid;
  let backend: TahoeBackend;
  let mbFile: Uint8Array;
  let mbCap: string;

  beforeAll(async () => {
    grid = await startTahoeGrid();
    console.log(`tahoe grid ready in ${grid.startSeconds.toFixed(1)} s`);
    backend = new TahoeBackend({ url: grid.url });
  });

  afterAll(async () => {
    if (!grid) return;
    const pids = grid.pids();
    await grid.close();
    // Nothing of the grid outlives close(): no process group, no directory.
    for (const pid of pids) expect(() => process.kill(-pid, 0), `process group ${pid}`).toThrow();
    expect(existsSync(grid.root)).toBe(false);
  });

  it('the grid listens on loopback only: introducer, four storage nodes, client web API', () => {
    const pids = grid.pids();
    expect(pids).toHaveLength(STORAGE_NODES + 2);
    const sockets = listeningSockets(pids);
    // Each node: its tub (or the client's web port) and Tahoe's log tub.
    expect(sockets.length).toBeGreaterThanOrEqual(pids.length);
    expect(sockets.filter((s) => !s.startsWith('127.'))).toEqual([]);
    expect(sockets).toContain(`127.0.0.1:${new URL(grid.url).port}`);
  });

  it('never sends the file key to the Tahoe client', async () => {
    const sent: string[] = [];
    const recording: typeof fetch = async (input, init) => {
      const body = init?.body instanceof Uint8Array ? Buffer.from(init.body).toString('latin1') : String(init?.body ?? '');
      sent.push(`${String(input)} ${body}`);
      return fetch(input, init);
    };
    const spy = new TahoeBackend({ url: grid.url, fetch: recording });
    const plain = new Uint8Array(randomBytes(3000));
    const { readCap } = await spy.put(plain);
    expect(await spy.get(readCap)).toEqual(plain);
    await spy.check(readCap, { repair: true });
    const { key } = parseTahoeReadCap(readCap);
    expect(sent).toHaveLength(3);
    for (const s of sent) {
      expect(s).not.toContain(readCap.slice(-52));
      expect(s.includes(Buffer.from(key).toString('latin1'))).toBe(false);
      expect(s.includes(Buffer.from(plain.subarray(0, 64)).toString('latin1'))).toBe(false);
    }
  });

  it('puts and gets small and ~1 MB files byte-identical, reporting progress', async () => {
    for (const size of [0, 1, 100, 4096]) {
      const data = new Uint8Array(randomBytes(size));
      const put = await backend.put(data);
      expect(put.size).toBe(size);
      expect(put.readCap).toMatch(/^dd-tahoe:URI:(CHK|LIT):/);
      expect(await backend.get(put.readCap)).toEqual(data);
    }
    mbFile = new Uint8Array(randomBytes(1_000_000 + 17));
    const events: StoreProgress[] = [];
    const put = await backend.put(mbFile, { onProgress: (p) => events.push(p) });
    mbCap = put.readCap;
    expect(mbCap).toMatch(/^dd-tahoe:URI:CHK:[a-z2-7]{26}:[a-z2-7]{52}:2:4:1000033:[a-z2-7]{52}$/);
    const got = await backend.get(mbCap, { onProgress: (p) => events.push(p) });
    expect(Buffer.from(got).equals(Buffer.from(mbFile))).toBe(true);
    const last = (phase: StoreProgress['phase']): StoreProgress | undefined => events.filter((e) => e.phase === phase).at(-1);
    for (const phase of ['encode', 'upload', 'download', 'verify'] as const) {
      const e = last(phase);
      expect(e, phase).toBeDefined();
      expect(e?.done, phase).toBe(e?.total);
    }
    expect(events.filter((e) => e.phase === 'download').length).toBeGreaterThan(2);
  });

  it('stores only ciphertext: the raw Tahoe cap yields bytes unlike the plaintext', async () => {
    const plain = new TextEncoder().encode('a secret note for the grid '.repeat(200));
    const { readCap } = await backend.put(plain);
    const { tahoeCap } = parseTahoeReadCap(readCap);
    const res = await fetch(`${grid.url}/uri/${encodeURIComponent(tahoeCap)}`);
    expect(res.status).toBe(200);
    const raw = new Uint8Array(await res.arrayBuffer());
    expect(raw.length).toBe(plain.length + 16);
    expect(Buffer.from(raw).includes(Buffer.from('a secret note'))).toBe(false);
    expect(Buffer.from(raw.subarray(0, plain.length)).equals(Buffer.from(plain))).toBe(false);
    expect(await backend.get(readCap)).toEqual(plain);
  });

  it('checks healthy with the read cap and with the verify cap, which holds no key', async () => {
    const verifyCap = tahoeVerifyCapOf(mbCap);
    expect(verifyCap).toBe(`dd-tahoe-v:${parseTahoeReadCap(mbCap).tahoeCap}`);
    expect(verifyCap).not.toContain(mbCap.slice(-52));
    for (const cap of [mbCap, verifyCap]) {
      const r = await backend.check(cap);
      expect(r).toEqual({ healthy: true, sharesFound: 4, sharesNeeded: SHARES.needed, sharesTotal: SHARES.total, repaired: 0, problems: [] });
    }
    await expectCode(backend.get(verifyCap), 'BAD_INPUT', 'malformed Tahoe capability');
  });

  it('reads a file with two of the four storage nodes stopped; uploads, and reads with three stopped, fail with too few servers', async () => {
    await grid.stopStorage(0);
    await grid.stopStorage(1);
    try {
      await grid.waitConnected(2);
      const got = await backend.get(mbCap);
      expect(Buffer.from(got).equals(Buffer.from(mbFile))).toBe(true);
      const r = await backend.check(mbCap);
      expect(r.healthy).toBe(false);
      expect(r.sharesFound).toBe(2);
      const err = await expectCode(backend.put(new Uint8Array(randomBytes(5000))), 'BACKEND_ERROR', 'too few storage servers');
      expect(err.details?.['reason']).toBe('too-few-servers');
      expect(err.message).toContain('UploadUnhappinessError');
      // A third node gone leaves one share of the two needed.
      await grid.stopStorage(2);
      await grid.waitConnected(1);
      const e2 = await expectCode(backend.get(mbCap), 'BACKEND_ERROR', 'too few storage servers');
      expect(e2.details?.['reason']).toBe('too-few-servers');
      expect(e2.message).not.toContain(parseTahoeReadCap(mbCap).tahoeCap);
    } finally {
      await Promise.all([grid.startStorage(0), grid.startStorage(1), grid.startStorage(2)]);
    }
    expect((await backend.check(mbCap)).healthy).toBe(true);
  });

  it('check+repair restores a share lost while a node was down', async () => {
    const data = new Uint8Array(randomBytes(300_000));
    const { readCap } = await backend.put(data);
    const verifyCap = tahoeVerifyCapOf(readCap);
    // The node loses its disk while stopped, then comes back empty.
    await grid.stopStorage(2);
    await rm(join(grid.storageDir(2), 'shares'), { recursive: true, force: true });
    await grid.startStorage(2);
    const before = await backend.check(verifyCap);
    expect(before).toMatchObject({ healthy: false, sharesFound: 3, sharesTotal: 4, repaired: 0 });
    expect(before.problems).toContain('1 of 4 shares missing');
    const repaired = await backend.check(verifyCap, { repair: true });
    expect(repaired).toMatchObject({ healthy: true, sharesFound: 4, repaired: 1 });
    expect(await backend.check(readCap)).toMatchObject({ healthy: true, sharesFound: 4 });
    expect(await backend.get(readCap)).toEqual(data);
  });

  it('gives clear errors for a tampered key, a foreign ciphertext, a missing file and malformed caps', async () => {
    const bad = tamperKey(mbCap);
    const e1 = await expectCode(backend.get(bad), 'PROTOCOL', 'failed authentication');
    expect(e1.details?.['reason']).toBe('authentication-failed');
    expect(e1.message).not.toContain(bad.slice(-52));
    // Bytes on the grid that deaddrop never sealed (or sealed under another key).
    const put = await fetch(`${grid.url}/uri`, { method: 'PUT', body: new Uint8Array(randomBytes(2000)) });
    const rawCap = (await put.text()).trim();
    expect(rawCap).toMatch(/^URI:CHK:/);
    const foreign = `dd-tahoe:${rawCap}:${mbCap.slice(-52)}`;
    await expectCode(backend.get(foreign), 'PROTOCOL', 'failed authentication');
    // A well-formed cap of a file the grid never stored.
    const missing = mbCap.replace(/^dd-tahoe:URI:CHK:[a-z2-7]{26}/, `dd-tahoe:URI:CHK:${'a'.repeat(25)}q`);
    const e2 = await expectCode(backend.get(missing), 'NOT_FOUND', 'no shares of this file; a file put on another grid is found only through a Tahoe client that joined that grid');
    expect(e2.message).not.toContain('URI:CHK:a');
    for (const cap of ['', 'dd-tahoe:', 'URI:CHK:abc', mbCap.slice(0, -1), `${mbCap}a`, mbCap.replace(':2:4:', ':5:4:'), 'dd-tahoe-v:URI:CHK:x']) {
      const e = await expectCode(backend.get(cap), 'BAD_INPUT', 'malformed Tahoe capability');
      expect(e.message).not.toContain(mbCap.slice(-52));
    }
  });

  it('reports an unreachable grid', async () => {
    const down = new TahoeBackend({ url: `http://127.0.0.1:${await freePort()}` });
    await expectCode(down.put(new Uint8Array(10)), 'BACKEND_UNREACHABLE', 'cannot reach the Tahoe-LAFS client');
    await expectCode(down.get(mbCap), 'BACKEND_UNREACHABLE');
    await expectCode(down.check(mbCap), 'BACKEND_UNREACHABLE');
  });
});
