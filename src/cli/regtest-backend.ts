/**
 * The regtest node behind `deaddrop start --regtest`, resolved here in the CLI and handed to
 * the daemon as a {@link BackendResolver}: the daemon never imports the regtest harness, so a
 * production daemon carries no test-network machinery (see `npm run layers`).
 */
import type { BackendResolver } from '../daemon/daemon.js';
import type { Network } from '../util/network.js';
import { DeaddropError } from '../util/errors.js';

/**
 * Attaches to the datadir's detached regtest node (or the one `deaddrop regtest up` published
 * from another datadir), else starts one that the daemon stops when it closes.
 */
export function regtestBackend(datadir: string, network: Network): BackendResolver {
  return async (log) => {
    if (network !== 'regtest') throw DeaddropError.badInput('--regtest needs --network regtest');
    const { attachAnyRegtestNode, startRegtestNode, stopRegtestNode } = await import('../regtest/harness.js');
    try {
      // This datadir's node, else the one published by `deaddrop regtest up` from another datadir.
      const node = await attachAnyRegtestNode(datadir);
      node.detach();
      log(`using the running regtest ${node.kind} node (pid ${node.pid})`);
      return { url: node.backendUrl };
    } catch (err) {
      if (!(err instanceof DeaddropError && err.code === 'NOT_FOUND')) throw err;
    }
    // Detached, so `deaddrop regtest mine|fund` and wallet commands reach it while the daemon runs.
    log('no regtest node running: starting one (the first start builds btcd with Go, which takes about a minute)');
    const node = await startRegtestNode({ datadir, detached: true, log });
    node.detach();
    log(`started a regtest ${node.kind} node (pid ${node.pid}); it stops with the daemon`);
    return { url: node.backendUrl, release: async () => void (await stopRegtestNode(datadir)) };
  };
}
