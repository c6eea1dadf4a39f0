/** Which node the harness runs: bitcoind when BITCOIND names one, and a clear error when it cannot start. */
import { describe, it, expect, afterEach } from 'vitest';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { findBitcoind, startRegtestNode } from '../../src/regtest/harness.js';

const saved = process.env.BITCOIND;
const tempDirs = (): string[] => readdirSync(tmpdir()).filter((d) => d.startsWith('deaddrop-regtest-'));

describe('regtest node selection', () => {
  afterEach(() => {
    if (saved === undefined) delete process.env.BITCOIND;
    else process.env.BITCOIND = saved;
  });

  it('picks the bitcoind that BITCOIND names', () => {
    process.env.BITCOIND = '/opt/bitcoin/bin/bitcoind';
    expect(findBitcoind()).toBe('/opt/bitcoin/bin/bitcoind');
  });

  it('fails with one clear error, and leaves no temp dir, when that bitcoind cannot start', async () => {
    process.env.BITCOIND = '/nonexistent/bitcoind';
    const before = new Set(tempDirs());
    await expect(startRegtestNode({ readyTimeoutMs: 5000 })).rejects.toThrow(/could not start \/nonexistent\/bitcoind/);
    expect(tempDirs().filter((d) => !before.has(d))).toEqual([]);
  });
});
