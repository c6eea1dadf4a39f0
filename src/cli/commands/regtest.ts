/** `deaddrop regtest up|down|status|mine|fund`: a regtest node kept in the background under the datadir. */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.js';
import { print } from '../output.js';
import { attachAnyRegtestNode, regtestNodeOwner, startRegtestNode, stopRegtestNode } from '../../regtest/harness.js';
import { DeaddropError } from '../../util/errors.js';
import { redactUrl } from '../../chain/open.js';
import { parseCount, parseSats } from '../parse.js';

function requireRegtest(network: string): void {
  if (network !== 'regtest') throw DeaddropError.badInput(`regtest commands need --network regtest (got ${network})`);
}

export function registerRegtestCommands(program: Command, context: ContextFactory): void {
  const regtest = program.command('regtest').description('run a local regtest node (btcd, or bitcoind when BITCOIND is set)');

  regtest
    .command('up')
    .description('start a regtest node in the background and print its connection details; every datadir of this user finds it (~/.deaddrop/regtest-node.json)')
    .action(async () => {
      const ctx = context();
      requireRegtest(ctx.network);
      const node = await startRegtestNode({ datadir: ctx.datadir, detached: true, log: (line) => process.stderr.write(`deaddrop: ${line}\n`) });
      const tip = await node.dialect.getTip(node.client);
      const details = { kind: node.kind, pid: node.pid, rpcUrl: node.rpcUrl, backend: node.backendUrl, height: tip.height, datadir: ctx.datadir };
      node.detach();
      // The human line never shows the password: other datadirs find the node without it.
      print(ctx, details, [`${details.kind} running (pid ${details.pid}) at height ${details.height}`,
        `backend: ${redactUrl(details.backend)} (every datadir of this user uses it when no --backend is given)`]);
    });

  regtest
    .command('down')
    .description('stop the regtest node; no node process is left behind')
    .action(async () => {
      const ctx = context();
      requireRegtest(ctx.network);
      // This datadir's node, else the published one (`regtest down` from any datadir stops "the" node).
      const stopped = await stopRegtestNode(regtestNodeOwner(ctx.datadir) ?? ctx.datadir);
      print(ctx, { stopped }, stopped ? 'regtest node stopped' : 'no regtest node was running');
    });

  regtest
    .command('status')
    .description('show whether the regtest node runs, and its tip')
    .action(async () => {
      const ctx = context();
      requireRegtest(ctx.network);
      let node;
      try {
        node = await attachAnyRegtestNode(ctx.datadir);
      } catch (err) {
        if (err instanceof DeaddropError && err.code === 'NOT_FOUND') {
          print(ctx, { running: false }, 'no regtest node is running');
          return;
        }
        throw err;
      }
      try {
        const tip = await node.dialect.getTip(node.client);
        const status = { running: true, kind: node.kind, pid: node.pid, backend: node.backendUrl, height: tip.height, hash: tip.hash, fundingBalance: await node.balance() };
        print(ctx, status, [`${status.kind} running (pid ${status.pid}) at height ${status.height}`, `backend: ${redactUrl(status.backend)}`]);
      } finally {
        node.detach();
      }
    });

  regtest
    .command('mine <n>')
    .description('mine n blocks')
    .action(async (n: string) => {
      const ctx = context();
      requireRegtest(ctx.network);
      const count = parseCount(n, 'n', 1, 10_000);
      const node = await attachAnyRegtestNode(ctx.datadir);
      try {
        const hashes = await node.mine(count);
        const tip = await node.dialect.getTip(node.client);
        print(ctx, { mined: hashes.length, height: tip.height, hashes }, `mined ${hashes.length} block(s); height ${tip.height}`);
      } finally {
        node.detach();
      }
    });

  regtest
    .command('fund <address> <sats>')
    .description('send sats from the node\'s funding wallet to address, and mine one block')
    .option('--no-mine', 'leave the funding transaction in the mempool')
    .action(async (address: string, sats: string, opts: { mine: boolean }) => {
      const ctx = context();
      requireRegtest(ctx.network);
      const amount = parseSats(sats, 'sats');
      const node = await attachAnyRegtestNode(ctx.datadir);
      try {
        const txid = await node.fund(address, amount, { confirm: opts.mine });
        print(ctx, { txid, sats: amount.toString(), confirmed: opts.mine }, `${txid}`);
      } finally {
        node.detach();
      }
    });
}
