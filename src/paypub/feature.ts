/**
 * The daemon side of PayPub: a PaypubService that follows the chain and the mempool and acts on
 * its own (seller: sample, claim, bump; buyer: unlock, refund), its API routes under /paypub, and
 * its events (`paypub.*`) on the daemon's event bus. Without an unlocked wallet the routes answer
 * NOT_INITIALIZED: the store's secrets are sealed under a key from the wallet seed.
 */
import { routeGroup } from '../feature/routes.js';
import type { DaemonFeature, FeatureContext, RunningFeature } from '../feature/contract.js';
import type { ContentStoreSource } from '../feature/content-store.js';
import type { MailHub } from '../feature/mail.js';
import { ensurePaypubDirs } from './files.js';
import { paypubRoutes } from './routes.js';
import { PaypubService } from './service.js';

/** Options for tests and embedding. */
export interface PaypubFeatureOptions {
  /** Transport for talking to sellers. */
  readonly fetch?: typeof fetch;
  /** Chain follower poll period (tip events drive it too). Default 2000 ms. */
  readonly pollIntervalMs?: number;
  /** The peer node's storage, read at call time (the CLI wires it; see src/feature/content-store.ts). */
  readonly contentStore?: ContentStoreSource;
  /** The daemon's mail hub (src/feature/mail.ts): version 2 announcements by mixnet mail. */
  readonly mail?: MailHub;
}

/** A PayPub daemon feature (see the module header). */
export function createPaypubFeature(o: PaypubFeatureOptions = {}): DaemonFeature {
  return {
    name: 'paypub',
    async start(ctx: FeatureContext): Promise<RunningFeature> {
      let service: PaypubService | undefined;
      if (!ctx.chain.capabilities.fullBlocks) {
        ctx.log(`paypub: the ${ctx.chain.kind} backend serves no full blocks; PayPub needs them (its routes answer NOT_INITIALIZED)`);
      } else if (ctx.walletKeys) {
        service = new PaypubService({
          chain: ctx.chain, wallet: ctx.wallet, keys: ctx.walletKeys, datadir: ctx.datadir, network: ctx.network, auto: true,
          defaultFeeRate: () => ctx.defaultFeeRate(), log: ctx.log, publish: (type, id, data) => ctx.events.publish(type, id, data),
          ...(o.fetch ? { fetch: o.fetch } : {}), ...(o.pollIntervalMs ? { pollIntervalMs: o.pollIntervalMs } : {}),
          ...(o.contentStore ? { contentStore: o.contentStore } : {}), ...(o.mail ? { mail: o.mail } : {}),
        });
        try {
          await service.ready();
        } catch (err) {
          // The service opened its store in its constructor: a failed start must not keep it.
          await service.close();
          throw err;
        }
        ensurePaypubDirs(ctx.datadir);
      } else {
        ctx.log('paypub off: no unlocked wallet (PayPub routes answer NOT_INITIALIZED)');
      }
      return {
        routes: [routeGroup('/paypub', paypubRoutes, { service: () => service, onListen: (url: string) => service?.setPublicUrl(ctx.publicUrl() ?? url) })],
        close: async () => {
          await service?.close();
        },
      };
    },
  };
}

/** The PayPub feature with default options, for `Daemon({ features: [paypubFeature] })`. */
export const paypubFeature: DaemonFeature = createPaypubFeature();
