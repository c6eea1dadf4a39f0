/**
 * The daemon's dead-drop feature: runs the DropWatcher over the daemon's backend and adds the
 * dead-drop and public-index routes.
 *
 * - Wallet unlocked: the watcher scans for the wallet's identity in `drops.sqlite` from the
 *   wallet's birthday; its drop events and `watch.progress` go to the daemon EventBus, hence
 *   the API websocket. `/invite`, `/drops/send`, `/drops` work.
 * - Wallet locked or absent: the watcher still builds the public candidate index (no keys) in
 *   `index.sqlite`, from the wallet's birthday if there is a wallet, else from the tip at first
 *   start. `/drops` lists what an earlier unlocked run found.
 * - A backend without full blocks (Electrum, Esplora) runs no watcher: the index routes are
 *   not offered (use `deaddrop watch --index <url>` against a daemon that has them).
 */
import { join } from 'node:path';
import { routeGroup, type ApiRoutePlugin } from '../feature/routes.js';
import type { DaemonFeature, FeatureContext, RunningFeature } from '../feature/contract.js';
import { keystoreExists, readKeystoreMeta } from '../wallet/keystore.js';
import type { WalletKeys } from '../wallet/keys.js';
import { DropWatcher } from './watch/watcher.js';
import { indexRoutes } from './watch/index-routes.js';
import type { DropStore } from './watch/drop-store.js';
import { IntroductionLedger } from './introductions.js';
import { settleIntroductions } from './settle.js';
import { type NodeIssuerFactory, walletIdentity, walletInvite, walletSilentAddress } from './publish.js';
import { DAEMON_WATCHER, INDEX_DB, listLocalDrops, openDropsStore } from './datadir-stores.js';
import { dropRoutes } from './routes.js';

/** The wallet's birthday from the keystore (readable while locked), or null without a wallet. */
async function walletBirthday(datadir: string): Promise<number | null> {
  if (!(await keystoreExists(datadir))) return null;
  return (await readKeystoreMeta(datadir)).birthdayHeight;
}

/** Birthday for an invite: the wallet's, or the current tip when the wallet says 0. */
async function inviteBirthday(ctx: FeatureContext, walletBirth: number | null): Promise<number | null> {
  if (walletBirth !== null && walletBirth > 0) return walletBirth;
  try {
    return (await ctx.chain.getTip()).height;
  } catch {
    return walletBirth;
  }
}

interface WatcherSetup {
  readonly watcher: DropWatcher;
  readonly store: DropStore | null;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function startWatcher(ctx: FeatureContext, keys: WalletKeys | undefined, birthday: number): Promise<WatcherSetup> {
  const common = {
    source: ctx.chain, birthday, events: ctx.events, name: DAEMON_WATCHER,
    onError: (err: unknown) => ctx.log(`drop watcher: ${message(err)}`),
    onWarning: (w: string) => ctx.log(`drop watcher: ${w}`),
  };
  if (keys === undefined) {
    const watcher = new DropWatcher({ ...common, store: join(ctx.datadir, INDEX_DB), identities: [] });
    return { watcher, store: null };
  }
  const { store, seedChanged } = openDropsStore(ctx.datadir, walletSilentAddress(keys));
  if (seedChanged) ctx.log('drop watcher: the wallet seed changed since the last scan; rescanning from the birthday');
  const watcher = new DropWatcher({ ...common, store, identities: [walletIdentity(keys)], rescan: seedChanged });
  return { watcher, store };
}

/** What the drop feature is given by whoever wires the features (the CLI). */
export interface DropFeatureDeps {
  /** The peer node's introduction issuer (node/drop-invite.ts `nodeIssuer`). */
  readonly issuer: NodeIssuerFactory;
  /** The mixnet hint of the datadir's node (node/drop-introduction.ts `mixnetHintOf`), the default of `POST /drops/send`. */
  readonly mixnetHint?: (datadir: string) => string | null;
}

/** The dead-drop feature's start, with its dependencies as a parameter (see {@link createDropFeature}). */
const drops = {
  name: 'deaddrop',
  async start(ctx: FeatureContext, deps: DropFeatureDeps): Promise<RunningFeature> {
    const walletBirth = await walletBirthday(ctx.datadir);
    const birthday = walletBirth ?? (await ctx.chain.getTip()).height;
    const keys = ctx.wallet ? ctx.walletKeys : undefined;
    let setup: WatcherSetup | null = null;
    if (ctx.chain.capabilities.fullBlocks) {
      setup = await startWatcher(ctx, keys, birthday);
      try {
        await setup.watcher.ready();
      } catch (err) {
        await setup.watcher.close();
        setup.store?.close();
        throw err;
      }
      ctx.log(keys ? `drop watcher scanning for the wallet from height ${birthday}` : 'drop watcher building the public index only (no unlocked wallet)');
    } else {
      ctx.log(`drop watcher off: the ${ctx.chain.kind} backend serves no full blocks`);
    }
    let ledger: IntroductionLedger | null = null;
    if (keys && ctx.wallet) {
      // The wallet has synced (and settled its broadcast records): settle interrupted sends.
      ledger = IntroductionLedger.open(ctx.datadir);
      const settled = await settleIntroductions(ledger, ctx.wallet, Date.now());
      if (settled.sent + settled.failed + settled.pending > 0) {
        ctx.log(`introductions interrupted by the last stop: ${settled.sent} sent, ${settled.failed} never broadcast, ${settled.pending} still unknown`);
      }
    }
    const routes: ApiRoutePlugin[] = [
      routeGroup('', dropRoutes, {
        wallet: () => (keys ? ctx.wallet : undefined),
        invite: async ({ label, hints }) => walletInvite(keys!, { label, hints, birthday: await inviteBirthday(ctx, walletBirth) }),
        ledger: () => (ledger ??= IntroductionLedger.open(ctx.datadir)),
        issuer: () => deps.issuer(keys!, ctx.datadir),
        drops: () => (keys && setup ? setup.watcher.drops() : listLocalDrops(ctx.datadir)),
        defaultFeeRate: () => ctx.defaultFeeRate(),
        tor: () => ctx.tor(),
        mixnetHint: () => deps.mixnetHint?.(ctx.datadir) ?? null,
      }),
    ];
    if (setup) routes.push(routeGroup('', indexRoutes, { index: setup.watcher.index }));
    return {
      routes,
      async close() {
        await setup?.watcher.close();
        setup?.store?.close();
        ledger?.close();
      },
    };
  },
};

/** The dead-drop daemon feature, given the peer node's introduction issuer. */
export function createDropFeature(deps: DropFeatureDeps): DaemonFeature {
  return { name: drops.name, start: (ctx) => drops.start(ctx, deps) };
}
