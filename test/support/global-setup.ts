/**
 * Says once, at the top of a test run, which regtest nodes the chain-facing integration tests
 * run against, so a CI log shows whether Bitcoin Core was used (and which binary).
 */
import { execFileSync } from 'node:child_process';
import { chainNodes, coreBinary } from './nodes.js';

export default function setup(): void {
  const core = coreBinary();
  if (!core) {
    console.log('[deaddrop] integration tests run on btcd only (no Bitcoin Core: set BITCOIND=<path> or put bitcoind on PATH)');
    return;
  }
  let version = 'version unknown';
  try {
    version = execFileSync(core, ['-version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0] ?? version;
  } catch {
    // the harness reports a binary that does not start
  }
  console.log(`[deaddrop] Bitcoin Core is used: ${core} (${version}); chain-facing integration tests run on ${chainNodes().join(' and ')}`);
}
