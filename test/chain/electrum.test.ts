/** ElectrumSource's lifecycle against a local TCP server that accepts and never answers. */
import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ElectrumSource } from '../../src/chain/backends/electrum.js';
import { isDeaddropError } from '../../src/util/errors.js';
import { activeTimers } from '../support/resources.js';

describe('ElectrumSource lifecycle', () => {
  it('close during open drops the dial in flight; ready rejects, close resolves, no socket or timer is left', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.resume(); // reads and drops the requests, so the client's end is seen
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    try {
      const before = activeTimers();
      const src = new ElectrumSource('127.0.0.1', port, false, { expectedNetwork: 'regtest', timeoutMs: 60_000 });
      const settled = src.ready().then(() => 'resolved', (e: unknown) => e);
      await expect.poll(() => sockets.size).toBe(1);
      await src.close();
      const outcome = await settled;
      expect(isDeaddropError(outcome, 'CLOSED')).toBe(true);
      await expect.poll(() => sockets.size).toBe(0);
      expect(activeTimers()).toBeLessThanOrEqual(before);
      await expect(src.ready()).rejects.toSatisfy((e) => isDeaddropError(e, 'CLOSED'));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
