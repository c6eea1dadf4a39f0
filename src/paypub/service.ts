/**
 * PaypubService: one datadir's PayPub, as seller, buyer and observer, over a ChainSource and the
 * wallet. The CLI opens one per command (`follow: false`: it catches up, acts and closes); the
 * daemon opens one that follows the chain and the mempool and acts on its own (`auto: true`):
 *
 * - seller: reveals the sample once the beacon is final; claims when the threshold is met (sales
 *   published with autoClaim) and bumps a claim that stays unconfirmed for BUMP_AFTER_BLOCKS;
 *   claims funded HTLCs of private sales;
 * - buyer: decrypts and writes the file as soon as every key is known (a claim in the mempool is
 *   enough: the work runs straight from the 'mempool-tx' event); refunds after the deadline (or
 *   the CSV delay); announces its pledges to the seller again until the seller took them.
 *
 * Events: every state change is an outbox row in paypub.db (written with the change, by the
 * daemon or by a CLI command next to it); `flushEvents()` publishes rows not delivered yet, in
 * order, with their stable ids (the daemon calls it after its own work and on a short timer).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChainSource } from '../chain/types.js';
import { DeaddropError, isDeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { PAYPUB_STORAGE, type WalletKeys } from '../wallet/keys.js';
import type { Wallet } from '../wallet/wallet.js';
import * as adaptor from './adaptor-sale.js';
import { AdaptorStore, type AdaptorSaleRow } from './adaptor-store.js';
import * as buyer from './buyer.js';
import { outboxDir, unlockedDir, writeNewFile } from './files.js';
import { OfferSources, offersToEvict } from './private-offers.js';
import type { PaypubContext } from './context.js';
import { needSale } from './context.js';
import { saleTerms, type SaleTerms } from './pledges.js';
import { checkFraudProof, decodeFraudProof, type FraudCheck } from './private.js';
import { encodeReveal, sampleStatus } from './sample.js';
import * as seller from './seller.js';
import { BUS_CONSUMER, PAYPUB_DB_FILE, PaypubStore, Sealer, type SaleRow } from './store.js';
import { PaypubWatch } from './watch.js';
import { toHex } from '../util/bytes.js';
import { sha256 } from './bytes.js';
import { Lifecycle } from '../util/lifecycle.js';
import type { ContentStoreSource } from '../feature/content-store.js';
import type { MailHub } from '../feature/mail.js';
import { KIND_PAYPUB_PRESIG, decodePresigMail } from './presig-mail.js';

export type { PublishOptions, PublishResult, ClaimResult, SampleResult, Announcement } from './seller.js';
export type { VerifyResult, PayResult, UnlockResult, RefundItem, TermsSource } from './buyer.js';

/** Fee rate used when the backend has no estimate (sat/vB). */
const FALLBACK_FEE_RATE = 2;
/** A failed storage put of a sale is tried again after this long. */
const STORE_RETRY_MS = 60_000;
/** How often the daemon publishes events written by CLI commands next to it. */
const EVENT_POLL_MS = 500;
/** Mailed announcements waiting for their check at once; more are dropped (a stranger's flood must not queue without end). */
const MAX_MAIL_PENDING = 64;

export interface PaypubServiceOptions {
  readonly chain: ChainSource;
  readonly wallet: Wallet | undefined;
  readonly keys: WalletKeys;
  readonly datadir: string;
  readonly network: Network;
  /** Follow the chain and the mempool, and act on its own (daemon). Default false. */
  readonly auto?: boolean;
  readonly defaultFeeRate?: () => Promise<number>;
  readonly fetch?: typeof fetch;
  readonly log?: (line: string) => void;
  /** Receives every event once, in order (the daemon's EventBus.publish). */
  readonly publish?: (type: string, id: string, data: Record<string, unknown>) => void;
  readonly pollIntervalMs?: number;
  /** The node's storage, when it runs (src/feature/content-store.ts): sales are published into it and read from it. */
  readonly contentStore?: ContentStoreSource;
  /**
   * The node's mixnet mail (../feature/mail.ts), daemon only: offers name the seller's mailbox,
   * buyers mail their version 2 announcements there, and the seller takes them from it.
   */
  readonly mail?: MailHub;
}

/** What became of version 2 announcements that came by mail. */
export interface MailCounters {
  /** Checked and kept (or a pledge already known). */
  accepted: number;
  /** Malformed, forged, not for a sale of ours, or not on our chain: dropped. */
  dropped: number;
}

export interface SaleStatus extends SaleTerms {
  readonly id: string;
  readonly role: SaleRow['role'];
  readonly mode: SaleRow['manifest']['mode'];
  readonly phase: string;
  readonly tip: number;
  /** The last block the PayPub chain watch applied. */
  readonly watchHeight: number | null;
  readonly anchor: { readonly txid: string | null; readonly height: number | null };
  readonly sample: { readonly revealed: boolean; readonly beaconHash: string | null; readonly indices: readonly number[] };
  readonly keys: { readonly known: number; readonly total: number };
  readonly pledged: { readonly counted: bigint | null; readonly pledges: number };
  readonly unlocked: { readonly path: string; readonly at: number } | null;
  readonly pledges: readonly Record<string, unknown>[];
  readonly claims: readonly Record<string, unknown>[];
  readonly refunds: readonly Record<string, unknown>[];
  readonly frauds: readonly Record<string, unknown>[];
}

/** See the module header. */
export class PaypubService {
  readonly store: PaypubStore;
  /** Version 2 (adaptor-claim) sales, beside the version 1 tables. */
  readonly adaptor: AdaptorStore;
  readonly watch: PaypubWatch;
  readonly #o: PaypubServiceOptions;
  readonly #ctx: PaypubContext;
  #publicUrl: string | undefined;
  readonly #life = new Lifecycle('paypub', { open: (signal) => this.#open(signal), close: () => this.#close() });
  #closing: Promise<void> | null = null;
  #work: Promise<unknown> = Promise.resolve();
  #tickQueued = false;
  #timer: ReturnType<typeof setInterval> | null = null;
  readonly #reannounced = new Set<string>();
  readonly #unlocking = new Set<string>();
  readonly #unlockRefused = new Set<string>();
  readonly #offerSources = new OfferSources();
  readonly #loose = new Set<Promise<void>>();
  readonly #storing = new Set<string>();
  readonly #storeRetryAt = new Map<string, number>();
  /** Mempool txids the version 2 scan looked at already. */
  readonly #adaptorMempoolSeen = new Set<string>();
  readonly #mailSent = new Set<string>();
  #mailPending = 0;
  /** Version 2 announcements taken from the mailbox. */
  readonly mailCounters: MailCounters = { accepted: 0, dropped: 0 };

  constructor(o: PaypubServiceOptions) {
    this.#o = o;
    mkdirSync(o.datadir, { recursive: true, mode: 0o700 });
    const sealer = new Sealer(o.keys.paypubKey(PAYPUB_STORAGE, 0).privateKey);
    this.store = new PaypubStore(join(o.datadir, PAYPUB_DB_FILE), sealer);
    this.adaptor = new AdaptorStore(this.store.db, sealer);
    this.watch = new PaypubWatch({
      store: this.store, source: o.chain, follow: o.auto ?? false, pollIntervalMs: o.pollIntervalMs ?? 2000,
      onTouched: (ids, at) => this.#onTouched(ids, at === null),
      onCaughtUp: () => this.#scheduleTick(),
      onError: (err) => this.#log(`chain watch: ${err instanceof Error ? err.message : String(err)}`),
    });
    this.#ctx = {
      store: this.store, chain: o.chain, wallet: o.wallet, keys: o.keys, network: o.network, datadir: o.datadir, watch: this.watch, fetch: o.fetch,
      feeRate: (explicit) => this.#feeRate(explicit), publicUrl: () => this.#publicUrl, log: (l) => this.#log(l),
      contentStore: () => o.contentStore?.() ?? null,
    };
    this.#publicUrl = readUrlFile(o.datadir);
  }

  /** Opens the chain watch; the daemon also starts its event timer. Memoized. */
  ready(): Promise<void> {
    return this.#life.ready();
  }

  async #open(signal: AbortSignal): Promise<void> {
    await this.watch.ready();
    if (signal.aborted || !this.#o.auto) return;
    this.#o.mail?.on(KIND_PAYPUB_PRESIG, (_from, plain) => this.#onMail(plain));
    if (this.#o.publish) this.#timer = setInterval(() => this.flushEvents(), EVENT_POLL_MS);
    this.#scheduleTick();
  }

  /**
   * Stops the chain watch and the timer, waits for work in flight, publishes what is left and
   * closes the store. The store is opened by the constructor, so this runs even when `ready()`
   * never was (the lifecycle's own close hook runs only after an open).
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#life.close();
      await this.watch.close();
      this.flushEvents();
      this.store.close();
    })();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#o.auto) this.#o.mail?.off(KIND_PAYPUB_PRESIG);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.watch.close();
    await this.#work.catch(() => undefined);
    await Promise.allSettled([...this.#loose]);
  }

  #log(line: string): void {
    this.#o.log?.(`paypub: ${line}`);
  }

  /**
   * A version 2 announcement from the node's mailbox (anyone may have sent it): checked exactly
   * as the public route checks one (`adaptorAnnounce`); whatever fails is dropped and counted.
   */
  #onMail(plain: Uint8Array): void {
    const m = decodePresigMail(plain);
    if (!m || this.#mailPending >= MAX_MAIL_PENDING || this.#life.closing) {
      this.mailCounters.dropped++;
      return;
    }
    this.#mailPending++;
    const p = this.adaptorAnnounce(m.announcement, m.blockHash).then(
      (r) => {
        this.mailCounters.accepted++;
        if (!r.known) this.#log(`version 2 pledge ${r.txid.slice(0, 8)}…:${r.vout} announced by mail`);
        this.#scheduleTick();
      },
      () => {
        this.mailCounters.dropped++;
      },
    ).finally(() => {
      this.#mailPending--;
      this.#loose.delete(p);
    });
    this.#loose.add(p);
  }

  async #feeRate(explicit?: number): Promise<number> {
    if (explicit !== undefined) {
      if (!(explicit > 0) || !Number.isFinite(explicit)) throw DeaddropError.badInput('fee rate must be a positive number of sat/vB');
      return explicit;
    }
    if (this.#o.defaultFeeRate) return this.#o.defaultFeeRate();
    const e = await this.#o.chain.estimateFee(6, FALLBACK_FEE_RATE);
    return Math.max(1, Math.ceil(e.satPerVb));
  }

  /** Where this node's API is reachable; offer strings name it. Written to `<datadir>/paypub/url` for CLI commands. */
  setPublicUrl(url: string): void {
    this.#publicUrl = url;
    writeUrlFile(this.#o.datadir, url);
  }

  /** Runs `fn` after every other piece of work (one at a time). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#work.then(async () => {
      await this.ready();
      if (this.#life.closing) throw DeaddropError.closed('paypub');
      return fn();
    });
    this.#work = run.catch(() => undefined);
    return run;
  }

  /** Catches the chain watch up with the tip and looks at the mempool (CLI commands do this first). */
  async sync(): Promise<void> {
    await this.ready();
    await this.watch.catchUp();
    await this.watch.mempoolPass();
  }

  /** Publishes events not delivered yet (in order, each once). */
  flushEvents(): void {
    const publish = this.#o.publish;
    if (!publish || !this.store.db.open) return;
    // A failing consumer must not stop delivery.
    this.store.outbox.deliver(BUS_CONSUMER, (r) => publish(r.type, r.id, r.data), { skipFailures: true });
  }

  // -------------------------------------------------------------------------------------------
  // automation (daemon)

  #onTouched(ids: ReadonlySet<string>, mempool: boolean): void {
    if (!this.#o.auto) return;
    // Fast path: a claim in the mempool makes the buyer's file; that must not wait for a block.
    if (mempool) for (const id of ids) this.#track(this.#autoUnlock(id));
    this.#scheduleTick();
  }

  /** Keeps work started outside the serial queue, so close() waits for it. */
  #track(p: Promise<void>): void {
    this.#loose.add(p);
    void p.finally(() => this.#loose.delete(p));
  }

  async #autoUnlock(id: string): Promise<void> {
    if (this.#unlocking.has(id) || this.#life.closing) return;
    const sale = this.store.sale(id);
    if (!sale || sale.role !== 'buyer' || sale.unlockedAt !== null || this.store.keyCount(id) < sale.manifest.chunkCount) return;
    this.#unlocking.add(id);
    try {
      await buyer.unlock(this.#ctx, id);
    } catch (err) {
      // Said once per sale: it is retried every round (the user may move the file away).
      if (!this.#unlockRefused.has(id)) this.#log(`automatic unlock failed: ${errorText(err)}`);
      this.#unlockRefused.add(id);
    } finally {
      this.#unlocking.delete(id);
      this.flushEvents();
    }
  }

  #scheduleTick(): void {
    if (!this.#o.auto || this.#life.closing || this.#tickQueued) return;
    this.#tickQueued = true;
    void this.#serial(async () => {
      this.#tickQueued = false;
      await this.#tick();
    }).catch((err: unknown) => {
      this.#tickQueued = false;
      if (!isDeaddropError(err, 'CLOSED')) this.#log(`automatic work failed: ${errorText(err)}`);
    }).finally(() => this.flushEvents());
  }

  /** One round of automatic work over every sale. Each sale's failure is logged, not fatal. */
  async #tick(): Promise<void> {
    const tip = (await this.#o.chain.getTip()).height;
    adaptor.rememberOwnMailbox(this.#adaptorDeps);
    for (const sale of this.store.sales()) {
      try {
        if (sale.role === 'seller') {
          // A sale published by a CLI command beside the daemon is being stored by that command: give it
          // a minute before storing it again from here (two puts would keep two copies).
          this.#storeLater(sale.id, sale.createdAt + STORE_RETRY_MS, () => seller.storeBundle(this.#ctx, sale.id));
          await this.#sellerTick(sale, tip);
        }
        else await this.#buyerTick(sale, tip);
      } catch (err) {
        this.#log(`automatic ${sale.role} work failed: ${errorText(err)}`);
      }
    }
    await this.#adaptorTick(tip);
  }

  /** Version 2 sales: scan blocks and mempool, reveal, claim (seller); announce, unlock, refund (buyer). */
  async #adaptorTick(tip: number): Promise<void> {
    const d = this.#adaptorDeps;
    try {
      await adaptor.scanAdaptor(d, tip, this.#adaptorMempoolSeen);
    } catch (err) {
      this.#log(`version 2 chain scan failed: ${errorText(err)}`);
    }
    for (const sale of this.adaptor.sales()) {
      if (tip > sale.manifest.deadlineHeight + 144) continue;
      try {
        if (sale.role === 'seller') {
          if (sale.anchorHeight !== null) await adaptor.revealAdaptor(d, sale.id, tip);
          this.#storeLater(sale.id, 0, () => adaptor.storeAdaptorBundle(this.#adaptorDeps, sale.id));
          if (this.#o.wallet && sale.autoClaim) {
            const r = await adaptor.claimAdaptor(d, sale.id, tip);
            if (r.action === 'broadcast' || r.action === 'bumped') this.#log(`version 2 claim ${r.action} (${r.pledges} pledge(s), ${r.vsize} vB, ${r.feeRate} sat/vB)`);
          }
        } else {
          await this.#adaptorUnlock(sale.id);
          if (!this.#o.wallet) continue;
          if (tip <= sale.manifest.deadlineHeight) await adaptor.announceOwn(d, sale.id);
          for (const txid of await adaptor.refundAdaptor(d, sale.id, tip)) this.#log(`version 2 refund broadcast (${txid.slice(0, 8)}…)`);
        }
      } catch (err) {
        this.#log(`automatic version 2 ${sale.role} work failed: ${errorText(err)}`);
      }
    }
  }

  get #adaptorDeps(): adaptor.AdaptorDeps {
    const hub = this.#o.mail;
    return { ctx: this.#ctx, as: this.adaptor, ...(hub ? { mail: { own: () => hub.own(), send: (to, plain) => hub.send(to, plain), sent: this.#mailSent } } : {}) };
  }

  async #adaptorUnlock(id: string): Promise<void> {
    const path = await adaptor.unlockAdaptor(this.#adaptorDeps, id, buyer.defaultOutPath(this.#ctx, id), (p, data) => {
      mkdirSync(unlockedDir(this.#o.datadir), { recursive: true, mode: 0o700 });
      writeNewFile(p, data, {});
    });
    if (path) this.#log('version 2 sale unlocked');
  }

  /**
   * Puts a seller's sale into the node's storage in the background when it is not there yet
   * (published by the CLI, or while storage was down); at most once a minute per sale while it
   * fails, and never inside the serial queue (a slow upload must not hold up a claim). `firstAt`:
   * the first try waits until then; `put`: version 1's storeBundle or version 2's storeAdaptorBundle.
   */
  #storeLater(id: string, firstAt: number, put: () => Promise<seller.StoreBundleResult>): void {
    const cs = this.#ctx.contentStore();
    if (!cs || this.#closing || this.store.storageCap(id) || this.#storing.has(id)) return;
    const notBefore = this.#storeRetryAt.get(id) ?? firstAt;
    if (notBefore > Date.now()) return;
    this.#storing.add(id);
    const run = put().then((r) => {
      if (r.stored) this.#log(`sale ${id.slice(0, 16)} stored in ${r.backend ?? 'storage'}`);
    }, (err: unknown) => {
      // Logged once per sale (storage may stay unavailable for days); tried again every minute.
      if (!this.#storeRetryAt.has(id)) this.#log(`storing sale ${id.slice(0, 16)} failed (tried again every minute): ${errorText(err)}`);
      this.#storeRetryAt.set(id, Date.now() + STORE_RETRY_MS);
    }).finally(() => {
      this.#storing.delete(id);
      this.#loose.delete(run);
    });
    this.#loose.add(run);
  }

  async #sellerTick(sale: SaleRow, tip: number): Promise<void> {
    const m = sale.manifest;
    if (tip > m.deadlineHeight + 144) return;
    if (sale.anchorHeight !== null && sampleStatus(m.beaconHeight, tip, m.network) === 'final') {
      const beacon = await this.#o.chain.getBlockHash(m.beaconHeight);
      if (!sale.reveal || sale.beaconHash !== beacon) await seller.sample(this.#ctx, sale.id);
    }
    if (!this.#o.wallet) return;
    const fresh = this.store.sale(sale.id) as SaleRow;
    if (m.mode === 'private' || (fresh.reveal && fresh.autoClaim)) {
      const r = await seller.claim(this.#ctx, sale.id, { tip });
      if (r.action === 'broadcast' || r.action === 'bumped') this.#log(`claim ${r.action} (${r.pledges} pledge(s), ${r.feeRate} sat/vB)`);
    }
  }

  async #buyerTick(sale: SaleRow, tip: number): Promise<void> {
    if (sale.unlockedAt === null && this.store.keyCount(sale.id) >= sale.manifest.chunkCount) await this.#autoUnlock(sale.id);
    if (!this.#o.wallet) return;
    const r = await buyer.refund(this.#ctx, sale.id, { quiet: true });
    for (const item of r.refunds) this.#log(item.txid ? 'refund broadcast' : `refund rejected: ${item.error}`);
    if (tip <= sale.manifest.deadlineHeight) await buyer.reannounce(this.#ctx, sale, this.#reannounced);
  }

  // -------------------------------------------------------------------------------------------
  // operations (CLI and API)

  publish(o: seller.PublishOptions): Promise<seller.PublishResult> {
    return this.#serial(() => seller.publish(this.#ctx, o));
  }

  /** Version 2 (adaptor claims): publish, offer, pledge, and the seller's public routes. */
  publishAdaptor(o: seller.PublishOptions): Promise<adaptor.AdaptorPublishResult> {
    return this.#serial(() => adaptor.publishAdaptor(this.#adaptorDeps, o));
  }

  /** Version 2: claim now (threshold met), or bump the claim in the mempool to `feeRate`. */
  claimAdaptor(id: string, o: { feeRate?: number } = {}): Promise<adaptor.AdaptorClaimResult> {
    return this.#serial(async () => {
      const tip = (await this.#o.chain.getTip()).height;
      await adaptor.scanAdaptor(this.#adaptorDeps, tip, this.#adaptorMempoolSeen);
      return adaptor.claimAdaptor(this.#adaptorDeps, id, tip, o.feeRate);
    });
  }

  adaptorOffer(id: string, url?: string): { id: string; offer: string; claim: 'adaptor'; storage: boolean } {
    return adaptor.adaptorOffer(this.#adaptorDeps, id, url);
  }

  pledgeAdaptor(offer: string, sats: bigint, o: { feeRate?: number; out?: string } = {}): Promise<adaptor.AdaptorPledgeResult> {
    return this.#serial(() => adaptor.pledgeAdaptor(this.#adaptorDeps, offer, sats, o));
  }

  adaptorBundle(id: string): Record<string, unknown> {
    return adaptor.adaptorBundle(this.#adaptorDeps, id);
  }

  /** A stranger's pre-signature announcement: checked, kept when good; never more than a 4xx when bad. */
  adaptorAnnounce(bytes: Uint8Array, blockHash?: string): Promise<{ id: string; txid: string; vout: number; value: bigint; height: number | null; known: boolean }> {
    return this.#serial(() => adaptor.acceptPresig(this.#adaptorDeps, bytes, blockHash));
  }

  /**
   * Version 2, for one-shot CLI commands: looks at the blocks and the mempool for the claim, then
   * writes the file. CONFLICT while the claim has not been seen.
   */
  unlockAdaptor(id: string, out: string, o: { force?: boolean } = {}): Promise<{ id: string; path: string; bytes: number; sha256: string }> {
    return this.#serial(async () => {
      await adaptor.scanAdaptor(this.#adaptorDeps, (await this.#o.chain.getTip()).height, this.#adaptorMempoolSeen);
      const plain = adaptor.adaptorPlaintext(this.#adaptorDeps, id);
      if (!plain) throw new DeaddropError('CONFLICT', 'the sale secret is not public yet: no claim seen in the mempool or the chain');
      writeNewFile(out, plain, o);
      this.adaptor.setUnlocked(id, out);
      return { id, path: out, bytes: plain.length, sha256: toHex(sha256(plain)) };
    });
  }

  /** Version 2, for one-shot CLI commands: refunds own unspent pledges once the deadline is reached. */
  refundAdaptor(id: string): Promise<{ id: string; refunds: string[] }> {
    return this.#serial(async () => {
      const tip = (await this.#o.chain.getTip()).height;
      await adaptor.scanAdaptor(this.#adaptorDeps, tip, this.#adaptorMempoolSeen);
      return { id, refunds: await adaptor.refundAdaptor(this.#adaptorDeps, id, tip) };
    });
  }

  /** A version 2 sale's row and pledges (no secret). */
  adaptorStatus(id: string): Record<string, unknown> {
    const sale = this.adaptor.sale(id);
    if (!sale) throw DeaddropError.notFound(`no version 2 PayPub sale ${id.slice(0, 16)}`);
    return {
      id: sale.id, role: sale.role, claim: 'adaptor', anchor: { txid: sale.anchorTxid, height: sale.anchorHeight }, revealed: sale.reveal !== null,
      ...(sale.role === 'seller' ? { stored: this.store.storageCap(sale.id) !== null } : {}), claimTxid: sale.claimTxid, unlockedPath: sale.unlockedPath, threshold: sale.manifest.threshold, deadlineHeight: sale.manifest.deadlineHeight,
      pledges: this.adaptor.pledges(sale.id).map((p) => ({ txid: p.txid, vout: p.vout, own: p.own, value: p.value, height: p.height, announced: p.announced, spentBy: p.spentBy })),
    };
  }

  offer(id: string, url?: string): ReturnType<typeof seller.offerString> {
    return seller.offerString(this.#ctx, id, url);
  }

  sample(id: string): Promise<seller.SampleResult> {
    return this.#serial(() => seller.sample(this.#ctx, id));
  }

  claim(id: string, o: { feeRate?: number } = {}): Promise<seller.ClaimResult> {
    return this.#serial(() => seller.claim(this.#ctx, id, o));
  }

  verify(offer: string, o: { out?: string } = {}): Promise<buyer.VerifyResult> {
    return this.#serial(() => buyer.verify(this.#ctx, offer, o));
  }

  pledge(offer: string, sats: bigint, o: { feeRate?: number; out?: string } = {}): Promise<buyer.PayResult> {
    return this.#serial(() => buyer.pledge(this.#ctx, offer, sats, o));
  }

  buy(offer: string, o: { feeRate?: number; out?: string; terms?: buyer.TermsSource } = {}): Promise<buyer.PayResult> {
    return this.#serial(() => buyer.buy(this.#ctx, offer, o));
  }

  /** Decrypts and writes the file; never over an existing file unless `force`. */
  unlock(id: string, out?: string, o: { force?: boolean } = {}): Promise<buyer.UnlockResult> {
    return this.#serial(() => buyer.unlock(this.#ctx, id, out, o));
  }

  /** The directory API clients publish from by path (`<datadir>/paypub/outbox`). */
  get outboxDir(): string {
    return outboxDir(this.#o.datadir);
  }

  /** The directory API clients' unlocked files go to (`<datadir>/paypub/unlocked`). */
  get unlockedDir(): string {
    return unlockedDir(this.#o.datadir);
  }

  refund(id: string, o: { feeRate?: number } = {}): Promise<{ id: string; refunds: buyer.RefundItem[] }> {
    return this.#serial(() => buyer.refund(this.#ctx, id, o));
  }

  /** Checks a fraud proof (encodeFraudProof bytes) the way a third party would. */
  checkFraud(proof: Uint8Array): FraudCheck {
    try {
      return checkFraudProof(decodeFraudProof(proof));
    } catch {
      return { fraud: false, reason: 'undecodable fraud proof' };
    }
  }

  /** Every sale in this datadir. */
  list(): { id: string; role: string; mode: string; phase: string }[] {
    const tip = this.watch.height ?? 0;
    const v1 = this.store.sales().map((s) => ({ id: s.id, role: s.role, mode: s.manifest.mode, phase: this.#phase(s, tip) }));
    return [...v1, ...this.adaptor.sales().map((s) => ({ id: s.id, role: s.role, mode: 'public', claim: 'adaptor', phase: this.#adaptorPhase(s, tip) }))];
  }

  #adaptorPhase(s: AdaptorSaleRow, tip: number): string {
    const own = this.adaptor.pledges(s.id).filter((p) => p.own);
    if (s.role === 'seller') {
      if (s.claimTxid) return 'claim-seen';
      if (tip >= s.manifest.deadlineHeight) return 'expired';
      return s.anchorHeight === null ? 'anchoring' : s.reveal ? 'collecting' : 'waiting-for-beacon';
    }
    if (s.unlockedPath) return 'unlocked';
    if (this.adaptor.saleSecret(s.id)) return 'claim-seen';
    if (own.length > 0 && own.every((p) => p.spentBy)) return 'refund-seen';
    return own.length > 0 ? 'pledged' : 'verified';
  }

  #phase(s: SaleRow, tip: number): string {
    const claims = this.store.claims(s.id).filter((c) => c.status !== 'replaced');
    if (claims.some((c) => c.status === 'confirmed')) return 'claimed';
    if (claims.length > 0) return 'claim-seen';
    const refunds = this.store.refunds(s.id).filter((r) => r.status !== 'replaced' && r.own);
    if (refunds.some((r) => r.status === 'confirmed')) return 'refunded';
    if (refunds.length > 0) return 'refund-seen';
    if (tip >= s.manifest.deadlineHeight) return 'expired';
    if (s.role === 'seller') return s.anchorHeight === null ? 'anchoring' : s.reveal ? 'collecting' : 'waiting-for-beacon';
    if (this.store.pledges(s.id).some((p) => p.own)) return 'pledged';
    return s.reveal ? 'verified' : 'unverified';
  }

  /** The full state of one sale. */
  async status(id: string): Promise<SaleStatus> {
    const sale = needSale(this.#ctx, id);
    const s = sale.id;
    const m = sale.manifest;
    const tip = (await this.#o.chain.getTip()).height;
    const ev = sale.role === 'seller' ? seller.evaluateSale(this.#ctx, sale, tip) : null;
    const pledges = this.store.pledges(s);
    return {
      id: s, role: sale.role, mode: m.mode, phase: this.#phase(sale, tip), tip, watchHeight: this.watch.height, ...saleTerms(m),
      anchor: { txid: sale.anchorTxid, height: sale.anchorHeight },
      sample: { revealed: sale.reveal !== null, beaconHash: sale.beaconHash, indices: sale.reveal?.indices ?? [] },
      keys: { known: this.store.keyCount(s), total: m.chunkCount },
      pledged: { counted: ev ? ev.total : null, pledges: pledges.length },
      unlocked: sale.unlockedPath && sale.unlockedAt !== null ? { path: sale.unlockedPath, at: sale.unlockedAt } : null,
      pledges: pledges.map((p) => ({ txid: p.txid, vout: p.vout, kind: p.kind, own: p.own, value: p.value, height: p.height, spentBy: p.spentBy, spentKind: p.spentKind })),
      claims: this.store.claims(s).map((c) => ({ txid: c.txid, own: c.own, status: c.status, height: c.height, fee: c.fee, feeRate: c.feeRate, replacedBy: c.replacedBy, seenAt: c.seenAt })),
      refunds: this.store.refunds(s).map((r) => ({ txid: r.txid, pledge: r.pledge, own: r.own, status: r.status, height: r.height, fee: r.fee })),
      frauds: this.store.frauds(s).map((f) => ({ claimTxid: f.claimTxid, reason: f.reason, proof: toHex(f.proof) })),
    };
  }

  // -------------------------------------------------------------------------------------------
  // distribution (the seller's public routes)

  #served(id: string): SaleRow {
    if (!/^[0-9a-f]{64}$/.test(id)) throw DeaddropError.notFound('no such content');
    const sale = this.store.sale(id);
    if (!sale || sale.role !== 'seller' || !sale.anchorTxid) throw DeaddropError.notFound('no such content');
    return sale;
  }

  contentManifest(id: string): Uint8Array {
    return this.#served(id).manifestBytes;
  }

  contentChunk(id: string, index: number): Uint8Array {
    // Version 2 sales serve their ciphertexts on the same route.
    if (/^[0-9a-f]{64}$/.test(id) && this.adaptor.sale(id)?.role === 'seller' && this.adaptor.sale(id)?.anchorTxid) {
      const c = this.store.chunk(id, index);
      if (!c) throw DeaddropError.notFound('no such chunk');
      return c;
    }
    this.#served(id);
    const c = this.store.chunk(id, index);
    if (!c) throw DeaddropError.notFound('no such chunk');
    return c;
  }

  contentReveal(id: string): Uint8Array {
    const sale = this.#served(id);
    if (!sale.reveal) throw DeaddropError.notFound('the sample is not revealed yet');
    return encodeReveal(sale.reveal);
  }

  contentAnchor(id: string): { txid: string; vout: number; blockHash: string | null; height: number | null } {
    const sale = this.#served(id);
    return { txid: sale.anchorTxid as string, vout: sale.anchorVout ?? -1, blockHash: sale.anchorBlock, height: sale.anchorHeight };
  }

  /** The pledge book buyers see: announced pledges, what counts, and the claim if any. */
  async contentPledges(id: string): Promise<Record<string, unknown>> {
    const sale = this.#served(id);
    const tip = (await this.#o.chain.getTip()).height;
    const ev = seller.evaluateSale(this.#ctx, sale, tip);
    const claims = this.store.claims(id).filter((c) => c.status !== 'replaced').map((c) => ({ txid: c.txid, status: c.status, height: c.height }));
    return {
      threshold: sale.manifest.threshold.toString(), counted: (ev?.total ?? 0n).toString(), thresholdMet: ev?.thresholdMet ?? false, tip,
      pledges: this.store.pledges(id).map((p) => ({ txid: p.txid, vout: p.vout, value: p.value.toString(), height: p.height, spent: p.spentBy !== null })),
      claims,
    };
  }

  contentAnnounce(id: string, a: seller.Announcement): Promise<{ id: string; txid: string; vout: number; value: bigint; height: number | null; known: boolean }> {
    this.#served(id);
    return this.#serial(() => seller.announce(this.#ctx, id, a));
  }

  /**
   * Fresh private-mode terms for `buyerKey`, asked from `source` (the requester's address; see
   * private-offers.ts for how unfunded terms are bounded per source and in total).
   */
  contentPrivateTerms(id: string, buyerKey: Uint8Array, source = 'local'): Promise<{ offer: Uint8Array; wrap: Uint8Array; paymentHash: string }> {
    this.#served(id);
    return this.#serial(async () => {
      const pending = this.#offerSources.view(this.store.pendingPrivateOffers(id));
      for (const hash of offersToEvict(pending, source, Date.now())) {
        if (this.store.deletePendingPrivateOffer(hash)) this.#offerSources.forget(hash);
      }
      const terms = seller.privateTerms(this.#ctx, id, buyerKey);
      this.#offerSources.record(terms.paymentHash, source);
      return terms;
    });
  }
}

/** An error's message for the log (our messages carry no secrets; sale ids are left out of log lines). */
function errorText(err: unknown): string {
  return err instanceof Error ? err.message.replace(/\b[0-9a-f]{16,64}\b/g, '<id>') : String(err);
}

function urlFile(datadir: string): string {
  return join(datadir, 'paypub', 'url');
}

function readUrlFile(datadir: string): string | undefined {
  try {
    return readFileSync(urlFile(datadir), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function writeUrlFile(datadir: string, url: string): void {
  mkdirSync(join(datadir, 'paypub'), { recursive: true, mode: 0o700 });
  writeFileSync(urlFile(datadir), `${url}\n`, { mode: 0o600 });
}
