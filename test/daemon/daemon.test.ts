/** The daemon's lifecycle without a chain: a backend that never answers, closed during open. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { lockHolder } from '../../src/daemon/datadir-lock.js';
import { isDeaddropError } from '../../src/util/errors.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('Daemon lifecycle', () => {
  it('close during open: close resolves, ready rejects, the backend request, the lock and the API are released', async () => {
    const pending = new Set<ServerResponse>();
    const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
      pending.add(res);
      res.on('close', () => pending.delete(res));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const datadir = mkdtempSync(join(tmpdir(), 'dd-daemon-life-'));
    dirs.push(datadir);
    try {
      const daemon = new Daemon({ datadir, network: 'regtest', backendUrl: `esplora+http://127.0.0.1:${port}` });
      const settled = daemon.ready().then(() => 'resolved', (e: unknown) => e);
      await expect.poll(() => pending.size).toBe(1);
      expect(lockHolder(datadir)?.pid).toBe(process.pid);
      await daemon.close();
      const outcome = await settled;
      expect(outcome).not.toBe('resolved');
      await expect.poll(() => pending.size).toBe(0);
      expect(lockHolder(datadir)).toBeUndefined();
      expect(() => daemon.apiUrl).toThrow();
      await expect(daemon.ready()).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
