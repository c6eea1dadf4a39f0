/** `deaddrop start`: runs the daemon until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.js';
import { print } from '../output.js';
import { parseCount } from '../parse.js';
import { parseListenAddress } from '../../api/public-listener.js';
import { Daemon } from '../../daemon/daemon.js';
import { regtestBackend } from '../regtest-backend.js';
import { readPassphrase } from '../../wallet/keystore.js';
import { isDeaddropError } from '../../util/errors.js';
import { createPaypubFeature } from '../../paypub/feature.js';
import type { ContentStore } from '../../feature/content-store.js';
import { MailHub } from '../../feature/mail.js';
import { createDropFeature } from '../../deaddrop/feature.js';
import { mixnetHintOf, nodeIssuer } from '../../node/drop-introduction.js';
import { createNodeFeature, nodeOptionsFromEnv } from '../../node/feature.js';
import { torOptionsFromFlags } from '../../node/tor/options.js';
import { API_TOKEN_FILE } from '../../api/token.js';
import { join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { DAEMON_LOG, registerStopCommand, startDetached } from './daemon-control.js';
import { mixnetOptions } from '../../node/mixnet/options.js';
import { storageOptions } from '../../node/storage/options.js';

/** The passphrase from DEADDROP_PASSPHRASE or a prompt; undefined (wallet stays locked) when neither is possible. */
async function passphraseIfAvailable(): Promise<string | undefined> {
  try {
    return await readPassphrase();
  } catch (err) {
    if (isDeaddropError(err, 'BAD_INPUT')) return undefined;
    throw err;
  }
}

/** Checks `--public-listen` before anything starts; the daemon takes the text. */
function parseListenAddressText(value: string): string {
  parseListenAddress(value);
  return value.trim();
}

export function registerStartCommand(program: Command, context: ContextFactory): void {
  registerStopCommand(program, context);
  program
    .command('start')
    .description('run the daemon: chain backend, wallet, watcher, peer node and the local API')
    .option('--regtest', 'without --backend: use the regtest node (this datadir\'s or the published one), starting one if none runs (the default on regtest)')
    .option('--api-port <port>', 'API port on 127.0.0.1 (default: a free port; the URL is written to <datadir>/api.url)')
    .option('--node-port <port>', 'peer node port on 127.0.0.1, the endpoint to put in your drops (default: DEADDROP_NODE_PORT, else the last one, else a free port)')
    .option('--detach', 'run in the background (log in <datadir>/daemon.log); returns once the API is up. `deaddrop stop` stops it')
    .option('--public-listen <addr:port>', 'also serve ONLY the public routes (PayPub content, candidate index) on this address, for other machines (see README)')
    .option('--tor', 'reach and be reached through Tor: publish the node as an onion service, dial .onion endpoints through Tor')
    .option('--tor-control <addr>', 'use the tor at this control port (host:port or unix:/path; password in DEADDROP_TOR_PASSWORD) instead of starting one')
    .option('--tor-only', 'with Tor: dial every endpoint through Tor and announce only onions (never a clear-net address)')
    .option('--mix-layer <n>', 'also be a mix of layer 1, 2 or 3 of the mixnet (listener placed by DEADDROP_MIX_HOST/PORT/ADVERTISE)')
    .option('--provider', 'also be a mixnet provider: keep mailboxes for clients and be their entry (see README)')
    .option('--storage-server', 'also be a storage server: keep shares for contacts, announced in the signed log (listener placed by DEADDROP_STORAGE_HOST/PORT/ADVERTISE)')
    .option('--storage-quota <size>', 'with --storage-server: bytes of shares to keep (500M, 20G, 1.5GiB; default 1GiB)')
    .option('--storage <backend>', 'where this node\'s files go: peers (default) or tahoe:<url of a Tahoe-LAFS client\'s web API>')
    .option('--storage-check-every <duration>', 'renew leases, check and repair kept files this often (90s, 30m, 6h, 2d; default 1d)')
    .option('--storage-reads <how>', 'how reads reach storage servers: auto (default: through mixnet providers when there is no Tor), mixnet (only so; puts and repairs too: no storage server is ever dialled) or direct')
    .action(async (opts: { regtest?: boolean; apiPort?: string; nodePort?: string; detach?: boolean; publicListen?: string; tor?: boolean; torControl?: string; torOnly?: boolean; mixLayer?: string; provider?: boolean; storageServer?: boolean; storageQuota?: string; storage?: string; storageCheckEvery?: string; storageReads?: string }) => {
      const ctx = context();
      if (opts.publicListen !== undefined) parseListenAddress(opts.publicListen);
      const tor = torOptionsFromFlags(opts);
      const mixnet = mixnetOptions(opts);
      const storage = storageOptions(opts);
      if (opts.detach) {
        const { pid, doc } = await startDetached(ctx.datadir, process.argv);
        print(ctx, { ...doc, pid }, `deaddrop daemon running in the background (pid ${pid}): API at ${String(doc.api)}; authenticate with the header ` +
          `"Authorization: Bearer <token>", the token is in ${String(doc.tokenFile)}; log in ${join(ctx.datadir, DAEMON_LOG)}; \`deaddrop stop\` stops it; ` +
          `\`${dashboardCommand(ctx.datadir, ctx.network)}\` prints a one-time sign-in URL for the dashboard`);
        return;
      }
      // The node feature reads its port from DEADDROP_NODE_PORT; the flag is the documented way to set it.
      if (opts.nodePort !== undefined) process.env.DEADDROP_NODE_PORT = String(parseCount(opts.nodePort, '--node-port', 0, 65_535));
      // PayPub publishes into (and buyers read from) the peer node's storage, which starts later.
      let contentStore: ContentStore | null = null;
      // Mixnet mail between them too: PayPub's version 2 announcements reach an offline seller's mailbox.
      const mail = new MailHub();
      const daemon = new Daemon({
        datadir: ctx.datadir,
        network: ctx.network,
        ...(ctx.backendFlag ? { backendUrl: ctx.backendFlag } : {}),
        // On regtest with no --backend: the regtest node (this datadir's, or the one `regtest up` published), started if none runs.
        ...((opts.regtest ?? (ctx.network === 'regtest' && ctx.backendFlag === undefined)) ? { resolveBackend: regtestBackend(ctx.datadir, ctx.network) } : {}),
        apiPort: opts.apiPort === undefined ? 0 : parseCount(opts.apiPort, '--api-port', 0, 65_535),
        passphrase: passphraseIfAvailable,
        ...(opts.publicListen !== undefined ? { publicListen: parseListenAddressText(opts.publicListen) } : {}),
        ...(ctx.debug ? { debug: true } : {}),
        features: [
          createDropFeature({ issuer: nodeIssuer, mixnetHint: mixnetHintOf }), createPaypubFeature({ contentStore: () => contentStore, mail }),
          createNodeFeature({ ...(tor ? { tor } : {}), mixnet, storage, mail, onContentStore: (s) => { contentStore = s; } }, () => nodeOptionsFromEnv()),
        ],
        log: (line) => process.stderr.write(`deaddrop: ${line}\n`),
      });
      const stopped = new Promise<void>((resolve) => {
        const stop = (): void => {
          process.stderr.write('deaddrop: stopping\n');
          void daemon.close().then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      try {
        await daemon.ready();
      } catch (err) {
        await daemon.close();
        throw err;
      }
      const status = await daemon.status();
      const tokenFile = join(ctx.datadir, API_TOKEN_FILE);
      // How to authenticate, with the token's file: never the token itself.
      print(ctx, { api: daemon.apiUrl, publicUrl: daemon.publicUrl ?? null, tokenFile, auth: `Authorization: Bearer $(cat ${tokenFile})`, network: status.network, backend: status.backend.kind, height: status.tip?.height ?? null },
        [`deaddrop daemon on ${status.network}: API at ${daemon.apiUrl}; authenticate with the header "Authorization: Bearer <token>", the token is in ${tokenFile}` +
          ` (e.g. curl -H "Authorization: Bearer $(cat ${tokenFile})" ${daemon.apiUrl}/status)`,
        ...(daemon.publicUrl ? [`public routes only (PayPub content, candidate index) at ${daemon.publicUrl}`] : []),
        // The dashboard is the first thing a new user looks for: say how to open it (the sign-in URL is single-use, so not printed here).
        `dashboard: run \`${dashboardCommand(ctx.datadir, status.network)}\` in another terminal for a one-time sign-in URL`]);
      await stopped;
    });
}

/** The `deaddrop dashboard` command line for this datadir (flags only when they differ from the defaults). */
function dashboardCommand(datadir: string, network: string): string {
  const flags = network === 'regtest' ? '' : ` --network ${network}`;
  return resolve(datadir) === resolve(join(homedir(), '.deaddrop', network)) ? `deaddrop${flags} dashboard` : `deaddrop${flags} --datadir ${datadir} dashboard`;
}
