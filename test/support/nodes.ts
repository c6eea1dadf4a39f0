/**
 * Which regtest nodes the integration tests run against: btcd always, Bitcoin Core as well when
 * it is available (`BITCOIND=<path>` or `bitcoind` on PATH). Chain-facing files wrap their suite
 * in `describe.each(chainNodes())('… on %s', (kind) => …)`, so every test name says its node,
 * and without Core the Core variants are not generated at all (nothing is skipped).
 */
import { afterAll, beforeAll } from 'vitest';
import type { NodeKind } from '../../src/chain/dialect.js';
import { findBitcoind } from '../../src/regtest/harness.js';

export type { NodeKind } from '../../src/chain/dialect.js';

/** The Bitcoin Core binary the tests use, or undefined when there is none. */
export function coreBinary(): string | undefined {
  return findBitcoind();
}

/** 'btcd', then 'bitcoind' when Core is available. */
export function chainNodes(): NodeKind[] {
  return coreBinary() ? ['btcd', 'bitcoind'] : ['btcd'];
}

/** Environment for a child process (the CLI, a daemon) that makes its regtest harness start `kind`. */
export function nodeEnv(kind: NodeKind): Record<string, string> {
  return { DEADDROP_REGTEST_NODE: kind };
}

/**
 * Within a describe block: child processes started by its tests (`deaddrop regtest up`, `deaddrop
 * start --regtest`) and `startRegtestNode()` without a kind start `kind`. Restores the variable after.
 */
export function useNodeKind(kind: NodeKind): void {
  let before: string | undefined;
  beforeAll(() => {
    before = process.env.DEADDROP_REGTEST_NODE;
    process.env.DEADDROP_REGTEST_NODE = kind;
  });
  afterAll(() => {
    if (before === undefined) delete process.env.DEADDROP_REGTEST_NODE;
    else process.env.DEADDROP_REGTEST_NODE = before;
  });
}
