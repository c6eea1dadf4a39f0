/** Which node the harness runs: bitcoind when BITCOIND names one, and a clear error when it cannot start. */
import { describe, it, expect, afterEach } from 'vitest';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { findBitcoind, requestedNodeKind, startRegtestNode } from '../../src/regtest/harness.js';

const saved = process.env.BITCOIND;
const savedKind = process.env.DEADDROP_REGTEST_NODE;
const tempDirs = (): string[] => readdirSync(tmpdir()).filter((d) => d.startsWith('deaddrop-regtest-'));

describe('regtest node selection', () => {
  afterEach(() => {
    if (saved === undefined) delete process.env.BITCOIND;
    else process.env.BITCOIND = saved;
    if (savedKind === undefined) delete process.env.DEADDROP_REGTEST_NODE;
    else process.env.DEADDROP_REGTEST_NODE = savedKind;
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

  it('DEADDROP_REGTEST_NODE forces btcd even where a bitcoind is set, and refuses anything else', async () => {
    process.env.BITCOIND = '/nonexistent/bitcoind';
    process.env.DEADDROP_REGTEST_NODE = 'bitcoind';
    expect(requestedNodeKind()).toBe('bitcoind');
    process.env.DEADDROP_REGTEST_NODE = 'btcd';
    expect(requestedNodeKind()).toBe('btcd');
    process.env.DEADDROP_REGTEST_NODE = 'core';
    expect(() => requestedNodeKind()).toThrow(/must be btcd or bitcoind/);
    await expect(startRegtestNode({ readyTimeoutMs: 5000 })).rejects.toThrow(/must be btcd or bitcoind/);
  });
});
