/**
 * Version 2 (adaptor-claim) sales wired into the PayPub service (docs/protocol/paypub.md §12):
 * the seller publishes a manifest committing T = t·G, reveals the sampled K_i with DLEQ proofs
 * after the beacon, collects buyers' pre-signature announcements (verified against the pledge
 * output found on its own chain), and claims every counted pledge in one transaction that
 * reveals t; a buyer verifies the reveal, pledges, announces its pre-signature and extracts t
 * from the claim it sees (mempool or block), then unlocks; after the deadline it refunds.
 *
 * The sale secret t is sealed in the store (adaptor-store.ts) and never logged or put in an event.
 * Offer string: `paypub2:<sale id>[@<seller API base URL>][~store:<capability and servers>][~mix:<provider>:<mailbox>]`
 * (a URL or a capability, or both). Once revealed, the seller puts the sale's bundle (manifest,
 * anchor, reveal, chunks: adaptor-bundle.ts) into the node's storage; the buyer reads it from
 * storage when the offer names it, else (or when that fails) from the seller's public route, and
 * runs the same checks on either. It announces to the seller's route when the offer names one,
 * and to the seller's mixnet mailbox when the offer names one (presig-mail.ts), where the seller's
 * provider keeps it while the seller is offline.
 */
import { parseBlock, parseTransaction, type Tx } from '../chain/block.js';
import { DeaddropError, isDeaddropError } from '../util/errors.js';
import { PAYPUB_BUYER, PAYPUB_SELLER } from '../wallet/keys.js';
import { dataOutput } from '../wallet/tx.js';
import { adaptorPledgeOutput, buildAdaptorClaimTx, buildAdaptorRefundTx, extractSaleSecret, presignPledgeClaim, verifyPledgePresig, type PresignedPledge } from './adaptor-claim.js';
import {
  adaptorTerms, createAdaptorManifest, createAdaptorReveal, decodeAdaptorManifest, decodeAdaptorReveal, encodeAdaptorReveal, verifyAdaptorReveal, type AdaptorManifest,
} from './adaptor-manifest.js';
import { decodePresigAnnouncement, encodePresigAnnouncement, evaluateAdaptorPledges } from './adaptor-pledges.js';
import type { AdaptorSaleRow, AdaptorStore } from './adaptor-store.js';
import type { PayResult } from './buyer.js';
import { deriveChunkKeys, isSaleSecret, newSaleSecret } from './chunk-keys.js';
import { checkCiphertext, chunkBounds, decryptRaw, encryptContentWithKeys } from './content.js';
import { type PaypubContext, freshWalletScript, needWallet, tipHeight, txInBlock } from './context.js';
import { decodeAdaptorBundle, encodeAdaptorBundle, formatOfferStorage, splitOfferStorage, type OfferStorage } from './adaptor-bundle.js';
import { defaultOfferUrl, normalizeSellerUrl } from './link.js';
import { anchorPayload, checkAnchorTiming, findAnchorOutput } from './manifest.js';
import { TIMING } from './params.js';
import { claimCutoff } from './pledges.js';
import { sampleStatus } from './sample.js';
import { DEFAULT_CHUNKS, MAX_ANNOUNCED, claimBumpRate, type PublishOptions, type StoreBundleResult } from './seller.js';
import { equalBytes, fromHex, toHex } from '../util/bytes.js';
import { randomBytes } from 'node:crypto';
import type { MailAddress } from '../feature/mail.js';
import { encodePresigMail, formatOfferMailbox, splitOfferMailbox, type OfferMailbox } from './presig-mail.js';

/** Where the daemon's scan of blocks for version 2 sales stands (meta key). */
const SCAN_KEY = 'adaptor_scan_height';
const OFFER_PREFIX = 'paypub2:';

export interface AdaptorDeps {
  readonly ctx: PaypubContext;
  readonly as: AdaptorStore;
  /** Mail to and from mixnet mailboxes, when the node's mixnet runs (../feature/mail.ts). */
  readonly mail?: AdaptorMail;
}

/** What version 2 sales need of the mail hub, and what the buyer sent through it. */
export interface AdaptorMail {
  own(): MailAddress | null;
  send(to: MailAddress, plain: Uint8Array): Promise<void>;
  /**
   * Announcements sent by mail in this run (`txid:vout:block or mempool`): a mailbox gives no
   * receipt, so each is sent once per state of the pledge (unmined, then once mined, naming its
   * block), and again after a restart (the seller answers a known pledge as known).
   */
  readonly sent: Set<string>;
}

/** Meta key of a buyer's sale whose offer named the seller's mailbox. */
const MIX_META = 'adaptor_mix:';
/** Meta key of this node's own mailbox, as the daemon last saw it (for offers made by one-shot CLI commands). */
const OWN_MIX_META = 'adaptor_own_mix';

function mailboxText(m: MailAddress): string {
  return `${toHex(m.provider)}:${toHex(m.mailbox)}`;
}

function mailboxFromText(v: string | undefined): MailAddress | null {
  const m = v ? /^([0-9a-f]{64}):([0-9a-f]{64})$/.exec(v) : null;
  return m ? { provider: fromHex(m[1] as string), mailbox: fromHex(m[2] as string) } : null;
}

/** Daemon: records this node's mailbox while its mixnet is linked, so that `deaddrop paypub offer` (no mixnet of its own) names it too. */
export function rememberOwnMailbox({ ctx, mail }: AdaptorDeps): void {
  const own = mail?.own();
  if (own && ctx.store.meta(OWN_MIX_META) !== mailboxText(own)) ctx.store.setMeta(OWN_MIX_META, mailboxText(own));
}

// ---------------------------------------------------------------------------------------------
// seller

export interface AdaptorPublishResult {
  readonly id: string;
  readonly claim: 'adaptor';
  readonly anchorTxid: string;
  readonly anchorVout: number;
  readonly anchorFee: bigint;
  readonly beaconHeight: number;
  readonly deadlineHeight: number;
  readonly chunkCount: number;
  readonly sampleSize: number;
  readonly price: bigint;
  readonly threshold: bigint;
  readonly minPledge: bigint;
}

/** Publishes a version 2 sale: chunks keyed by a fresh t, manifest committing T, anchor. */
export async function publishAdaptor({ ctx, as }: AdaptorDeps, o: PublishOptions): Promise<AdaptorPublishResult> {
  const wallet = needWallet(ctx);
  if (o.mode === 'private') throw DeaddropError.badInput('adaptor claims are for public mode only');
  const chunks = o.chunks ?? Math.max(1, Math.min(DEFAULT_CHUNKS, o.data.length));
  const sampleSize = o.sampleSize ?? Math.floor(chunks / 4);
  const tip = await tipHeight(ctx);
  const t = TIMING[ctx.network];
  const beaconIn = o.beaconIn ?? t.defaultBeaconIn;
  const deadlineIn = o.deadlineIn ?? beaconIn + t.defaultDeadlineAfterBeacon;
  const saleSecret = newSaleSecret();
  const contentId = randomBytes(32);
  const content = encryptContentWithKeys(o.data, deriveChunkKeys(saleSecret, contentId, chunks), contentId);
  const sellerIndex = ctx.store.allocIndex('seller');
  const sk = ctx.keys.paypubKey(PAYPUB_SELLER, sellerIndex).privateKey;
  const manifest = createAdaptorManifest({
    content, saleSecret, network: ctx.network, price: o.price, sampleSize, beaconHeight: tip + beaconIn, deadlineHeight: tip + deadlineIn, sellerSecretKey: sk,
    ...(o.threshold !== undefined ? { threshold: o.threshold } : {}), ...(o.minPledge !== undefined ? { minPledge: o.minPledge } : {}),
  });
  const id = toHex(manifest.hash);
  ctx.store.transaction(() => {
    as.insertSale({ id, role: 'seller', manifest, sellerIndex, secret: saleSecret, startHeight: tip, autoClaim: o.autoClaim ?? true, fileName: o.fileName ?? null });
    ctx.store.putChunks(id, content.ciphertexts);
  });
  let sent;
  try {
    sent = await wallet.sendOutputs({ outputs: [dataOutput(anchorPayload(manifest))], feeRate: await ctx.feeRate(o.feeRate) });
  } catch (err) {
    as.deleteSale(id);
    throw err;
  }
  const vout = findAnchorOutput(sent.raw, manifest.hash);
  ctx.store.transaction(() => {
    as.setAnchor(id, sent.txid, vout);
    ctx.store.event('paypub.published', `paypub.published:${id}`, { id, anchorTxid: sent.txid, beaconHeight: manifest.beaconHeight, deadlineHeight: manifest.deadlineHeight, mode: 'public', claim: 'adaptor' });
  });
  return {
    id, claim: 'adaptor', anchorTxid: sent.txid, anchorVout: vout, anchorFee: sent.fee, beaconHeight: manifest.beaconHeight, deadlineHeight: manifest.deadlineHeight,
    chunkCount: manifest.chunkCount, sampleSize: manifest.sampleSize, price: manifest.price, threshold: manifest.threshold, minPledge: manifest.minPledge,
  };
}

function needAdaptorSale(as: AdaptorStore, id: string, role?: 'seller' | 'buyer'): AdaptorSaleRow {
  const sale = /^[0-9a-f]{64}$/.test(id) ? as.sale(id) : undefined;
  if (!sale || (role && sale.role !== role)) throw DeaddropError.notFound(`no version 2 PayPub sale ${id.slice(0, 16)}${role ? ` as ${role}` : ''}`);
  return sale;
}

function sellerKeyOf(ctx: PaypubContext, sale: AdaptorSaleRow): Uint8Array {
  if (sale.sellerIndex === null) throw new DeaddropError('CONFLICT', 'sale has no seller key index');
  return ctx.keys.paypubKey(PAYPUB_SELLER, sale.sellerIndex).privateKey;
}

function secretOf(as: AdaptorStore, sale: AdaptorSaleRow): Uint8Array {
  const t = as.saleSecret(sale.id);
  if (!t) throw new DeaddropError('CONFLICT', `the sale secret of ${sale.id.slice(0, 16)} is missing from the store`);
  return t;
}

/**
 * The offer string for a seller's version 2 sale. It names the storage bundle once stored (the
 * capability and the servers holding its shares, never logged); the URL is then optional, and a
 * loopback one is left out as for version 1 (link.ts defaultOfferUrl).
 */
export function adaptorOffer({ ctx, as, mail }: AdaptorDeps, id: string, url?: string): { id: string; offer: string; claim: 'adaptor'; storage: boolean } {
  const sale = needAdaptorSale(as, id, 'seller');
  const cap = ctx.store.storageCap(sale.id);
  const base = url ?? defaultOfferUrl(ctx.publicUrl(), cap !== null);
  if (!base && !cap) throw DeaddropError.badInput('no URL for buyers to fetch the sale from and the sale is not in storage: pass --url <http://host:port> or start the daemon first');
  // The mailbox, once the node's mixnet is linked: buyers announce there too, so pledges made
  // while this node is offline wait at its provider.
  const mix = mail?.own() ?? mailboxFromText(ctx.store.meta(OWN_MIX_META));
  const store = cap ? formatOfferStorage({ cap, servers: ctx.store.storageServers(sale.id) }) : '';
  return { id: sale.id, offer: `${OFFER_PREFIX}${sale.id}${base ? `@${normalizeSellerUrl(base)}` : ''}${store}${mix ? formatOfferMailbox(mix) : ''}`, claim: 'adaptor', storage: cap !== null };
}

/** A parsed version 2 offer: a URL, a storage bundle, or both. */
export interface AdaptorOffer {
  readonly id: string;
  readonly url: string | null;
  readonly mix?: OfferMailbox;
  readonly storage?: OfferStorage;
}

/** Null when `text` is not a version 2 offer; BAD_INPUT when its storage part is malformed. */
export function parseAdaptorOffer(text: string): AdaptorOffer | null {
  const { rest: beforeMix, mix } = splitOfferMailbox(text.trim());
  const { rest, storage } = splitOfferStorage(beforeMix);
  const m = /^paypub2:([0-9a-f]{64})(?:@(https?:\/\/\S{1,500}))?$/.exec(rest);
  if (!m || (!m[2] && !storage)) return null;
  try {
    return { id: m[1] as string, url: m[2] ? normalizeSellerUrl(m[2]) : null, ...(mix ? { mix } : {}), ...(storage ? { storage } : {}) };
  } catch {
    return null;
  }
}

/**
 * Seller: puts a revealed sale's bundle (adaptor-bundle.ts) into the node's storage and records
 * its read capability, once (idempotent, like version 1's storeBundle; the daemon retries a
 * failure every minute). The event never carries the capability.
 */
export async function storeAdaptorBundle({ ctx, as }: AdaptorDeps, id: string): Promise<StoreBundleResult> {
  const sale = needAdaptorSale(as, id, 'seller');
  if (ctx.store.storageCap(sale.id)) return { stored: true };
  if (!sale.reveal || !sale.anchorTxid || sale.anchorVout === null || !sale.anchorBlock) return { stored: false, reason: 'the sale is stored once its sample is revealed' };
  const cs = ctx.contentStore();
  if (!cs) return { stored: false, reason: 'no storage running (the daemon\'s peer node stores sales)' };
  const bundle = encodeAdaptorBundle({
    manifest: sale.manifest, anchorTxid: sale.anchorTxid, anchorVout: sale.anchorVout, anchorBlock: sale.anchorBlock, reveal: sale.reveal, ciphertexts: ctx.store.chunks(sale.id),
  });
  const put = await cs.put(bundle, { name: `paypub2-${sale.id.slice(0, 16)}.bundle` });
  ctx.store.transaction(() => {
    // Capabilities live beside version 1's (keyed by sale id, the manifest hash: versions cannot collide).
    ctx.store.setStorageCap(sale.id, put.readCap, put.servers);
    ctx.store.event('paypub.stored', `paypub.stored:${sale.id}`, { id: sale.id, backend: cs.kind, size: put.size, claim: 'adaptor' });
  });
  return { stored: true, backend: cs.kind };
}

/** What the seller serves to anyone: manifest, anchor, reveal (once made), hex. The ciphertexts are on `/paypub/content/:id/chunks/:i`, binary. */
export function adaptorBundle({ as }: AdaptorDeps, id: string): Record<string, unknown> {
  const sale = needAdaptorSale(as, id, 'seller');
  if (!sale.anchorTxid) throw DeaddropError.notFound('no such content');
  return {
    manifest: toHex(sale.manifestBytes), anchorTxid: sale.anchorTxid, anchorVout: sale.anchorVout, anchorBlock: sale.anchorBlock,
    reveal: sale.reveal ? toHex(sale.reveal) : null,
  };
}

/** Seller: the version 2 reveal once the beacon is final (K_i with DLEQ proofs). Idempotent. */
export async function revealAdaptor({ ctx, as }: AdaptorDeps, id: string, tip: number): Promise<boolean> {
  const sale = needAdaptorSale(as, id, 'seller');
  const m = sale.manifest;
  if (sampleStatus(m.beaconHeight, tip, m.network) !== 'final') return false;
  const beaconHash = await ctx.chain.getBlockHash(m.beaconHeight);
  if (sale.reveal && sale.beaconHash === beaconHash) return false;
  const reveal = createAdaptorReveal(m, beaconHash, secretOf(as, sale), sellerKeyOf(ctx, sale));
  ctx.store.transaction(() => {
    as.setReveal(sale.id, beaconHash, encodeAdaptorReveal(reveal));
    ctx.store.event('paypub.sample.revealed', `paypub.sample.revealed:${sale.id}:${beaconHash}`, { id: sale.id, beaconHash, indices: reveal.proofs.map((p) => p.index), claim: 'adaptor' });
  });
  return true;
}

/**
 * Seller: takes a 166-byte pre-signature announcement from anyone. The pledge output must be
 * the one the manifest and the buyer key make, in this node's mempool or in the block named
 * (`blockHash`, on this node's best chain), and the pre-signature must verify against it.
 * BAD_INPUT / NOT_FOUND / CONFLICT otherwise; never anything else for bad bytes.
 */
export async function acceptPresig({ ctx, as }: AdaptorDeps, bytes: Uint8Array, blockHash?: string): Promise<{ id: string; txid: string; vout: number; value: bigint; height: number | null; known: boolean }> {
  let a;
  try {
    a = decodePresigAnnouncement(bytes);
  } catch {
    throw DeaddropError.badInput('not a pre-signature announcement');
  }
  const sale = needAdaptorSale(as, toHex(a.manifestHash), 'seller');
  const m = sale.manifest;
  const known = as.pledges(sale.id).find((p) => p.txid === a.txid && p.vout === a.vout);
  if (known) return { id: sale.id, txid: a.txid, vout: a.vout, value: known.value, height: known.height, known: true };
  if (as.pledgeCount(sale.id) >= MAX_ANNOUNCED) throw new DeaddropError('CONFLICT', 'this sale is not taking more pledge announcements');
  let script: Uint8Array;
  try {
    script = adaptorPledgeOutput(adaptorTerms(m), a.buyerKey).script;
  } catch {
    throw DeaddropError.badInput('the buyer key cannot make a pledge output');
  }
  // Where the pledge is decides how it is followed: a mempool pledge gets its height from the
  // block scan (which runs after this, in the same queue); a mined one needs its block named,
  // since the scan has passed it.
  let raw: Uint8Array;
  let height: number | null = null;
  if (blockHash) {
    const found = await txInBlock(ctx.chain, a.txid, blockHash);
    if (!found) throw new DeaddropError('CONFLICT', 'the pledge transaction is not in the block named, on this node\'s best chain');
    raw = found.raw;
    height = found.height;
  } else {
    if (!(await ctx.chain.getMempoolTxids()).includes(a.txid)) throw new DeaddropError('CONFLICT', 'the pledge transaction is not in this node\'s mempool: announce it again with blockHash once it is mined');
    try {
      raw = await ctx.chain.getRawTransaction(a.txid);
    } catch (err) {
      if (isDeaddropError(err, 'NOT_FOUND')) throw DeaddropError.notFound('the pledge transaction left the mempool: announce it again with blockHash once it is mined');
      throw err;
    }
  }
  let tx: Tx;
  try {
    tx = parseTransaction(raw);
  } catch {
    throw DeaddropError.badInput('the pledge transaction does not parse');
  }
  const out = tx.outputs[a.vout];
  if (!out || !equalBytes(out.script, script)) throw DeaddropError.badInput('the output is not the pledge this manifest and buyer key make');
  if (out.value < m.minPledge) throw DeaddropError.badInput(`the pledge is below the minimum of ${m.minPledge} sat`);
  if (!verifyPledgePresig(adaptorTerms(m), { txid: a.txid, vout: a.vout, value: out.value, buyerKey: a.buyerKey }, a.presig)) throw DeaddropError.badInput('the pre-signature does not verify');
  ctx.store.transaction(() => {
    if (as.insertPledge({ txid: a.txid, vout: a.vout, saleId: sale.id, own: false, buyerKey: a.buyerKey, value: out.value, script, presig: a.presig, height })) {
      ctx.store.event('paypub.pledge.announced', `paypub.pledge.announced:${a.txid}:${a.vout}`, { id: sale.id, txid: a.txid, vout: a.vout, value: out.value.toString(), height, claim: 'adaptor' });
    }
  });
  return { id: sale.id, txid: a.txid, vout: a.vout, value: out.value, height, known: false };
}

export interface AdaptorClaimResult {
  readonly action: 'broadcast' | 'bumped' | 'pending' | 'none';
  readonly reason?: string;
  readonly txid?: string;
  readonly replaces?: string;
  readonly pledges?: number;
  readonly vsize?: number;
  readonly fee?: bigint;
  readonly feeRate?: number;
}

/**
 * Seller: claims every counted pledge in one transaction when the threshold is met before the
 * cutoff; or bumps its claim still in the mempool (RBF, same pledges, same completed buyer
 * signatures) when it is BUMP_AFTER_BLOCKS old or `feeRate` asks for it.
 */
export async function claimAdaptor({ ctx, as }: AdaptorDeps, id: string, tip: number, feeRate?: number): Promise<AdaptorClaimResult> {
  const sale = needAdaptorSale(as, id, 'seller');
  const m = sale.manifest;
  if (sale.claimTxid) {
    if (sale.claimHeight !== null) return { action: 'none', reason: 'claimed', txid: sale.claimTxid };
    const rate = claimBumpRate({ feeRate: sale.claimFeeRate, broadcastHeight: sale.claimBroadcastHeight }, tip, {
      ...(feeRate !== undefined ? { explicit: feeRate } : {}), floor: await ctx.feeRate(), force: false,
    });
    if (rate === null) return { action: 'pending', txid: sale.claimTxid };
    const claimed = as.pledges(sale.id).filter((p) => !p.own && p.spentBy === sale.claimTxid);
    if (claimed.length === 0) return { action: 'pending', txid: sale.claimTxid };
    return broadcastAdaptorClaim({ ctx, as }, sale, claimed, rate, tip);
  }
  if (!sale.reveal) return { action: 'none', reason: 'the sample is not revealed yet' };
  if (tip > claimCutoff(m)) return { action: 'none', reason: 'too-late' };
  const candidates = as.pledges(sale.id).filter((p) => !p.own && !p.spentBy)
    .map((p) => ({ txid: p.txid, vout: p.vout, value: p.value, buyerKey: p.buyerKey, presig: p.presig, script: p.script, height: p.height ?? 0 }));
  const ev = evaluateAdaptorPledges(m, candidates, tip);
  if (!ev.thresholdMet) return { action: 'none', reason: `threshold not met (short ${ev.shortfall} sat)` };
  return broadcastAdaptorClaim({ ctx, as }, sale, ev.counted, await ctx.feeRate(feeRate), tip);
}

async function broadcastAdaptorClaim({ ctx, as }: AdaptorDeps, sale: AdaptorSaleRow, pledges: readonly PresignedPledge[], rate: number, tip: number): Promise<AdaptorClaimResult> {
  const active = sale.claimTxid;
  const opts = { terms: adaptorTerms(sale.manifest), saleSecret: secretOf(as, sale), sellerSecretKey: sellerKeyOf(ctx, sale), pledges, payoutScript: await freshWalletScript(ctx) };
  let built = buildAdaptorClaimTx({ ...opts, feeRate: rate });
  // BIP125: the replacement pays the old fee plus 1 sat/vB of its own size.
  if (sale.claimFee !== null && active && built.fee < sale.claimFee + BigInt(built.vsize)) {
    rate = Math.ceil(((Number(sale.claimFee) + built.vsize) / built.vsize + 0.01) * 100) / 100;
    built = buildAdaptorClaimTx({ ...opts, feeRate: rate });
  }
  const res = await ctx.chain.broadcast(built.raw);
  if (!res.accepted) throw new DeaddropError('REJECTED', `the node rejected the claim: ${res.reason}`, { reason: res.reason });
  ctx.store.transaction(() => {
    as.setClaim(sale.id, { txid: built.txid, fee: built.fee, feeRate: rate, broadcastHeight: tip });
    for (const p of pledges) as.setPledgeSpent(p.txid, p.vout, built.txid);
    if (active) ctx.store.event('paypub.claim.replaced', `paypub.claim.replaced:${active}:${built.txid}`, { id: sale.id, txid: active, by: built.txid, claim: 'adaptor' });
    ctx.store.event('paypub.claim.broadcast', `paypub.claim.broadcast:${built.txid}`, {
      id: sale.id, txid: built.txid, fee: built.fee.toString(), feeRate: rate, vsize: built.vsize, pledges: pledges.length, claim: 'adaptor', ...(active ? { replaces: active } : {}),
    });
  });
  return {
    action: active ? 'bumped' : 'broadcast', txid: built.txid, pledges: pledges.length, vsize: built.vsize, fee: built.fee, feeRate: rate, ...(active ? { replaces: active } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// buyer

async function getJson(ctx: PaypubContext, url: string, init?: RequestInit): Promise<Record<string, unknown>> {
  const f = ctx.fetch ?? fetch;
  const res = await f(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new DeaddropError('BACKEND_ERROR', `seller answered ${res.status}: ${typeof body.message === 'string' ? body.message.slice(0, 200) : ''}`);
  return body;
}

function hexField(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/.test(v)) throw DeaddropError.protocol(`seller bundle: ${what} is not hex`);
  return fromHex(v);
}

/** What a version 2 pledge tells the caller: version 1's answer, the refund height always known. */
export type AdaptorPledgeResult = PayResult & {
  readonly refundAt: number;
  /** Where the sale was read from when this pledge fetched it (a further pledge reads nothing). */
  readonly chunksFrom?: 'storage' | 'seller';
};

/** Every ciphertext from the seller, each checked against its hash in the manifest (bodies bounded by the chunk's size). */
async function fetchChunks(ctx: PaypubContext, offer: { id: string; url: string }, m: AdaptorManifest): Promise<Uint8Array[]> {
  const f = ctx.fetch ?? fetch;
  const out: Uint8Array[] = [];
  for (let i = 0; i < m.chunkCount; i++) {
    const res = await f(`${offer.url}/paypub/content/${offer.id}/chunks/${i}`, { signal: AbortSignal.timeout(60_000) });
    if (res.status !== 200) throw DeaddropError.protocol(`seller answered ${res.status} for chunk ${i}`);
    const { start, end } = chunkBounds(m.fileLength, m.chunkCount, i);
    if (Number(res.headers.get('content-length') ?? '0') > end - start + 16) throw DeaddropError.protocol(`chunk ${i} served by the seller is too large`);
    const c = new Uint8Array(await res.arrayBuffer());
    if (!checkCiphertext(m, i, c)) throw DeaddropError.protocol(`chunk ${i} served by the seller does not match the manifest`);
    out.push(c);
  }
  return out;
}

/**
 * A version 2 sale as fetched, from storage or the seller, before any check against the chain.
 * Each fetcher has checked the manifest against the sale id and every chunk against the manifest.
 */
interface FetchedSale {
  readonly manifest: AdaptorManifest;
  readonly anchorTxid: string;
  readonly anchorBlock: string;
  readonly reveal: Uint8Array;
  /** Every chunk, in order, each of its exact length and hash. */
  readonly chunks: Uint8Array[];
  readonly from: 'storage' | 'seller';
}

/** The sale from the seller's public route: manifest (hash = sale id), anchor, reveal, then every chunk checked against the manifest. */
async function fetchFromSeller(ctx: PaypubContext, offer: { id: string; url: string }): Promise<FetchedSale> {
  const b = await getJson(ctx, `${offer.url}/paypub/v2/content/${offer.id}`);
  const manifest: AdaptorManifest = decodeAdaptorManifest(hexField(b.manifest, 'manifest'), ctx.network);
  if (toHex(manifest.hash) !== offer.id) throw DeaddropError.protocol('the seller served another manifest');
  if (typeof b.anchorTxid !== 'string' || typeof b.anchorBlock !== 'string') throw new DeaddropError('CONFLICT', 'the anchor is not confirmed yet');
  if (b.reveal === null || b.reveal === undefined) throw new DeaddropError('CONFLICT', 'the seller has not revealed the sample yet');
  const reveal = hexField(b.reveal, 'reveal');
  return { manifest, anchorTxid: b.anchorTxid, anchorBlock: b.anchorBlock, reveal, chunks: await fetchChunks(ctx, offer, manifest), from: 'seller' };
}

/** The sale from the storage bundle the offer names (adaptor-bundle.ts checks it against the sale id and the manifest). */
async function fetchFromStorage(ctx: PaypubContext, id: string, storage: OfferStorage): Promise<FetchedSale> {
  const cs = ctx.contentStore();
  if (!cs) throw new DeaddropError('NOT_INITIALIZED', 'the offer\'s sale is in storage and no storage runs here: start the daemon (its peer node reads storage)');
  const bytes = await cs.get(storage.cap, storage.servers.length > 0 ? { servers: storage.servers } : {});
  const b = decodeAdaptorBundle(id, bytes, ctx.network);
  return { manifest: b.manifest, anchorTxid: b.anchorTxid, anchorBlock: b.anchorBlock, reveal: b.reveal, chunks: b.ciphertexts, from: 'storage' };
}

/** From storage when the offer names it, else (or when that fails and the offer names a URL) from the seller. */
async function fetchSale(ctx: PaypubContext, offer: AdaptorOffer): Promise<FetchedSale> {
  if (offer.storage) {
    try {
      return await fetchFromStorage(ctx, offer.id, offer.storage);
    } catch (err) {
      if (!offer.url) throw err;
      ctx.log(`paypub: the version 2 storage bundle could not be read (${err instanceof Error ? err.message : String(err)}); fetching from the seller`);
    }
  }
  return fetchFromSeller(ctx, { id: offer.id, url: offer.url as string });
}

/**
 * Fetches a sale (storage or seller: each fetcher checks the manifest hash = sale id and every
 * chunk against the manifest) and checks the rest the same way whichever served it: the anchor in
 * the block named on this node's best chain and early enough, the sample final, the version 2
 * reveal (DLEQ proofs against T, sampled chunks decrypt); stores it (buyer row, chunks).
 */
async function fetchVerified(ctx: PaypubContext, as: AdaptorStore, offer: AdaptorOffer, tip: number, out: string | undefined): Promise<{ manifest: AdaptorManifest; from: 'storage' | 'seller' }> {
  const f = await fetchSale(ctx, offer);
  const manifest = f.manifest;
  // Both fetchers check it already; kept here so no path can skip it.
  if (toHex(manifest.hash) !== offer.id) throw DeaddropError.protocol('the sale fetched is another manifest');
  const found = await txInBlock(ctx.chain, f.anchorTxid, f.anchorBlock);
  if (!found || findAnchorOutput(found.raw, manifest.hash) < 0) throw new DeaddropError('CONFLICT', 'the anchor is not in the block named on this node\'s best chain');
  if (!checkAnchorTiming(manifest, found.height).ok) throw new DeaddropError('CONFLICT', 'the anchor confirmed too late for the beacon');
  if (sampleStatus(manifest.beaconHeight, tip, manifest.network) !== 'final') throw new DeaddropError('CONFLICT', 'the sample is not final yet');
  const beaconHash = await ctx.chain.getBlockHash(manifest.beaconHeight);
  const check = verifyAdaptorReveal(manifest, beaconHash, decodeAdaptorReveal(f.reveal), (i) => f.chunks[i]);
  if (!check.ok) throw new DeaddropError('CONFLICT', `the version 2 reveal does not verify: ${check.reason}`);
  ctx.store.transaction(() => {
    as.insertSale({ id: offer.id, role: 'buyer', manifest, url: offer.url, anchorTxid: f.anchorTxid, startHeight: tip, outPath: out ?? null });
    ctx.store.putChunks(offer.id, f.chunks);
  });
  return { manifest, from: f.from };
}

/**
 * Buyer: fetches the sale from the seller, checks the manifest, the anchor timing and the
 * version 2 reveal (DLEQ proofs, sampled chunks decrypt), pledges, pre-signs the claim of its
 * pledge and announces the pre-signature.
 */
export async function pledgeAdaptor({ ctx, as, mail }: AdaptorDeps, offerText: string, amount: bigint, o: { feeRate?: number; out?: string } = {}): Promise<AdaptorPledgeResult> {
  const w = needWallet(ctx);
  const offer = parseAdaptorOffer(offerText);
  if (!offer) throw DeaddropError.badInput('not a version 2 offer (paypub2:<id>@<url> or paypub2:<id>~store:<…>)');
  const tip = await tipHeight(ctx);
  const known = as.sale(offer.id);
  if (known && known.role !== 'buyer') throw DeaddropError.badInput('this is a sale this datadir published');
  // A sale verified before (its row exists only after that) is not fetched again: a further
  // pledge works while the seller is offline, and its announcement is retried by the daemon.
  const fetched = known ? null : await fetchVerified(ctx, as, offer, tip, o.out);
  const manifest = known?.manifest ?? (fetched as { manifest: AdaptorManifest }).manifest;
  if (offer.mix) ctx.store.setMeta(MIX_META + offer.id, mailboxText(offer.mix));
  if (amount < manifest.minPledge) throw DeaddropError.badInput(`the minimum pledge is ${manifest.minPledge} sat`);
  if (tip + TIMING[manifest.network].pledgeConfirmations > claimCutoff(manifest)) throw new DeaddropError('CONFLICT', 'too late: a pledge now could not be claimed before the cutoff');
  if (as.saleSecret(offer.id)) throw new DeaddropError('CONFLICT', 'the sale secret is already public: there is nothing left to pay for');
  const keyIndex = ctx.store.allocIndex('buyer');
  const kp = ctx.keys.paypubKey(PAYPUB_BUYER, keyIndex);
  const terms = adaptorTerms(manifest);
  const out = adaptorPledgeOutput(terms, kp.xOnly);
  const funded = await w.fundTransaction({ outputs: [{ script: out.script, amount }], feeRate: await ctx.feeRate(o.feeRate) });
  const vout = parseTransaction(funded.raw).outputs.findIndex((x) => equalBytes(x.script, out.script) && x.value === amount);
  const presig = presignPledgeClaim(terms, { txid: funded.txid, vout, value: amount, buyerKey: kp.xOnly }, kp.privateKey);
  // Recorded before the broadcast: a crash after it must not lose the pre-signature (refund and extraction need the row).
  ctx.store.transaction(() => {
    as.insertPledge({ txid: funded.txid, vout, saleId: offer.id, own: true, buyerKey: kp.xOnly, keyIndex, value: amount, script: out.script, presig });
    ctx.store.event('paypub.pledge.sent', `paypub.pledge.sent:${funded.txid}:${vout}`, { id: offer.id, txid: funded.txid, vout, value: amount.toString(), claim: 'adaptor' });
  });
  try {
    await w.broadcast(funded);
  } catch (err) {
    as.deletePledge(funded.txid, vout);
    throw err;
  }
  const a = await announceOwn({ ctx, as, ...(mail ? { mail } : {}) }, offer.id);
  return {
    id: offer.id, txid: funded.txid, vout, value: amount, fee: funded.fee, announced: a.ok, ...(a.ok ? {} : { announceError: a.reason }), refundAt: manifest.deadlineHeight,
    ...(fetched ? { chunksFrom: fetched.from } : {}),
  };
}

/** The seller's mailbox a buyer's offer named, if any. */
function offerMailbox(ctx: PaypubContext, id: string): MailAddress | null {
  return mailboxFromText(ctx.store.meta(MIX_META + id));
}

/**
 * Buyer: sends every own pre-signature the seller has not taken yet (retried by the daemon): to
 * the seller's route, and by mail to its mailbox when the offer named one (that one once per
 * state of the pledge: a mailbox gives no receipt, and the seller may be offline for all of it).
 */
export async function announceOwn({ ctx, as, mail }: AdaptorDeps, id: string): Promise<{ ok: boolean; reason: string }> {
  const sale = needAdaptorSale(as, id, 'buyer');
  let last = { ok: true, reason: '' };
  const box = mail ? offerMailbox(ctx, id) : null;
  if (mail && box) {
    for (const p of as.pledges(id).filter((x) => x.own && !x.spentBy)) {
      const blockHash = p.height !== null ? await ctx.chain.getBlockHash(p.height) : undefined;
      const key = `${p.txid}:${p.vout}:${blockHash ?? 'mempool'}`;
      if (mail.sent.has(key)) continue;
      const announcement = encodePresigAnnouncement({ manifestHash: sale.manifest.hash, txid: p.txid, vout: p.vout, buyerKey: p.buyerKey, presig: p.presig });
      try {
        await mail.send(box, encodePresigMail(announcement, blockHash));
        mail.sent.add(key);
      } catch (err) {
        // No provider link or no route yet: the next round of automatic work tries again.
        ctx.log(`version 2 announcement by mail not sent yet: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  // An offer that named only storage gives no route to announce to: the mailbox above is the way.
  if (!sale.url) return { ok: false, reason: box ? 'the offer names no seller URL: announced to the seller\'s mailbox only (a mailbox gives no receipt)' : 'the offer names no seller URL and no mailbox to announce to' };
  for (const p of as.pledges(id).filter((x) => x.own && !x.announced && !x.spentBy)) {
    const announcement = toHex(encodePresigAnnouncement({ manifestHash: sale.manifest.hash, txid: p.txid, vout: p.vout, buyerKey: p.buyerKey, presig: p.presig }));
    try {
      // Once mined, the seller needs the block to find it (its scan may have passed it).
      const blockHash = p.height !== null ? await ctx.chain.getBlockHash(p.height) : undefined;
      await getJson(ctx, `${sale.url}/paypub/v2/presig`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ announcement, ...(blockHash ? { blockHash } : {}) }) });
      as.setAnnounced(p.txid, p.vout);
    } catch (err) {
      last = { ok: false, reason: err instanceof Error ? err.message : String(err) };
    }
  }
  return last;
}

/** Buyer: t from a transaction that spends one of its pledges, when it is the claim. Stores t and reports true. */
export function learnFromTx({ ctx, as }: AdaptorDeps, tx: Tx): boolean {
  let learned = false;
  for (const sale of as.sales()) {
    if (sale.role !== 'buyer' || as.saleSecret(sale.id)) continue;
    const own = as.pledges(sale.id).filter((p) => p.own);
    const spent = own.filter((p) => tx.inputs.some((i) => i.prevTxidHex === p.txid && i.vout === p.vout));
    if (spent.length === 0) continue;
    const t = extractSaleSecret(tx.bytes, sale.manifest, own.map((p) => p.presig));
    ctx.store.transaction(() => {
      for (const p of spent) as.setPledgeSpent(p.txid, p.vout, tx.txid);
      if (t && isSaleSecret(sale.manifest.salePoint, t)) {
        as.setSaleSecret(sale.id, t);
        ctx.store.event('paypub.claim.seen', `paypub.claim.seen:${tx.txid}`, { id: sale.id, txid: tx.txid, claim: 'adaptor' });
        learned = true;
      }
    });
  }
  return learned;
}

/** Buyer: the file, decrypted with the keys from t, or null while t is not known. */
export function adaptorPlaintext({ ctx, as }: AdaptorDeps, id: string): Uint8Array | null {
  const sale = needAdaptorSale(as, id, 'buyer');
  const t = as.saleSecret(id);
  if (!t) return null;
  return decryptAdaptorContent(sale.manifest, ctx.store.chunks(id), deriveChunkKeys(t, sale.manifest.contentId, sale.manifest.chunkCount));
}

/** Buyer: decrypts with the keys from t and writes the file (under `dir` unless the sale names a path). */
export async function unlockAdaptor({ ctx, as }: AdaptorDeps, id: string, defaultPath: string, write: (path: string, data: Uint8Array) => void): Promise<string | null> {
  const sale = needAdaptorSale(as, id, 'buyer');
  const t = as.saleSecret(id);
  if (!t || sale.unlockedPath) return null;
  const m = sale.manifest;
  const plain = decryptAdaptorContent(m, ctx.store.chunks(id), deriveChunkKeys(t, m.contentId, m.chunkCount));
  const path = sale.outPath ?? defaultPath;
  write(path, plain);
  ctx.store.transaction(() => {
    as.setUnlocked(id, path);
    ctx.store.event('paypub.unlocked', `paypub.unlocked:${id}:${path}`, { id, path, bytes: plain.length, at: Date.now(), claim: 'adaptor' });
  });
  return path;
}

/**
 * The whole file from keys derived from t. Version 2 has no SHA256(k) commitments (T commits to
 * every key), so each chunk is checked against its ciphertext hash, then opened (AEAD).
 */
function decryptAdaptorContent(m: AdaptorManifest, ciphertexts: readonly Uint8Array[], keys: readonly Uint8Array[]): Uint8Array {
  if (ciphertexts.length !== m.chunkCount) throw DeaddropError.protocol(`expected ${m.chunkCount} chunks; got ${ciphertexts.length}`);
  const out = new Uint8Array(m.fileLength);
  for (let i = 0; i < m.chunkCount; i++) {
    const ct = ciphertexts[i] as Uint8Array;
    const res = checkCiphertext(m, i, ct) ? decryptRaw(m, i, ct, keys[i] as Uint8Array) : null;
    if (!res?.ok) throw new DeaddropError('PROTOCOL', `chunk ${i} does not open with the key from t`, { index: i });
    out.set(res.plaintext, chunkBounds(m.fileLength, m.chunkCount, i).start);
  }
  return out;
}

/** Buyer: refunds own unspent pledges once the deadline is reached (the v1 CLTV leaf). */
export async function refundAdaptor({ ctx, as }: AdaptorDeps, id: string, tip: number): Promise<string[]> {
  const sale = needAdaptorSale(as, id, 'buyer');
  if (tip < sale.manifest.deadlineHeight) return [];
  const sent: string[] = [];
  for (const p of as.pledges(id).filter((x) => x.own && !x.spentBy && x.keyIndex !== null)) {
    const built = buildAdaptorRefundTx({
      terms: adaptorTerms(sale.manifest), pledge: p, buyerSecretKey: ctx.keys.paypubKey(PAYPUB_BUYER, p.keyIndex as number).privateKey,
      destScript: await freshWalletScript(ctx), feeRate: await ctx.feeRate(),
    });
    const res = await ctx.chain.broadcast(built.raw);
    if (!res.accepted) continue;
    ctx.store.transaction(() => {
      as.setPledgeSpent(p.txid, p.vout, built.txid);
      ctx.store.event('paypub.refund.broadcast', `paypub.refund.broadcast:${built.txid}`, { id, txid: built.txid, pledge: `${p.txid}:${p.vout}`, claim: 'adaptor' });
    });
    sent.push(built.txid);
  }
  return sent;
}

// ---------------------------------------------------------------------------------------------
// chain scan (daemon)

/**
 * Applies blocks since the last scan to version 2 sales: anchor heights, pledge confirmations,
 * claims spending own pledges. Then the mempool, for claims (a buyer unlocks from the mempool);
 * `seenMempool` keeps the txids looked at already, so each is fetched once.
 * Reorgs are not followed yet: a height recorded stays (docs/protocol/paypub.md §12).
 */
export async function scanAdaptor(d: AdaptorDeps, tip: number, seenMempool: Set<string> = new Set()): Promise<void> {
  const { ctx, as } = d;
  const sales = as.sales();
  if (sales.length === 0) return;
  const start = Math.min(...sales.map((s) => s.startHeight));
  let from = Math.max(Number(ctx.store.meta(SCAN_KEY) ?? start) + 1, start + 1);
  if (from > tip + 1) from = start + 1;
  for (let h = from; h <= tip; h++) {
    const idx = scanIndex(as);
    const hash = await ctx.chain.getBlockHash(h);
    const block = parseBlock(await ctx.chain.getRawBlock(hash));
    for (const tx of block.txs) applyTx(d, idx, tx, h, hash);
    ctx.store.setMeta(SCAN_KEY, String(h));
  }
  const idx = scanIndex(as);
  if (idx.ownOutpoints.size === 0) return;
  if (seenMempool.size > 100_000) seenMempool.clear();
  for (const txid of await ctx.chain.getMempoolTxids()) {
    if (seenMempool.has(txid)) continue;
    seenMempool.add(txid);
    try {
      const tx = parseTransaction(await ctx.chain.getRawTransaction(txid));
      if (tx.inputs.some((i) => idx.ownOutpoints.has(`${i.prevTxidHex}:${i.vout}`))) learnFromTx(d, tx);
    } catch (err) {
      if (!isDeaddropError(err, 'NOT_FOUND')) throw err;
    }
  }
}

/** What a block is looked at for: anchors not confirmed yet, pledges not confirmed yet, own pledges a buyer waits on. */
interface ScanIndex {
  readonly anchors: Map<string, string>;
  readonly pendingPledges: Map<string, { txid: string; vout: number }[]>;
  readonly ownOutpoints: Set<string>;
  /** Seller: its claim not confirmed yet, by txid. */
  readonly claims: Map<string, string>;
}

function scanIndex(as: AdaptorStore): ScanIndex {
  const idx: ScanIndex = { anchors: new Map(), pendingPledges: new Map(), ownOutpoints: new Set(), claims: new Map() };
  for (const sale of as.sales()) {
    if (sale.role === 'seller' && sale.claimTxid && sale.claimHeight === null) idx.claims.set(sale.claimTxid, sale.id);
    if (sale.role === 'seller' && sale.anchorTxid && sale.anchorHeight === null) idx.anchors.set(sale.anchorTxid, sale.id);
    const waiting = sale.role === 'buyer' && !sale.unlockedPath && !as.saleSecret(sale.id);
    for (const p of as.pledges(sale.id)) {
      if (p.height === null) idx.pendingPledges.set(p.txid, [...(idx.pendingPledges.get(p.txid) ?? []), p]);
      if (p.own && waiting && !p.spentBy) idx.ownOutpoints.add(`${p.txid}:${p.vout}`);
    }
  }
  return idx;
}

function applyTx(d: AdaptorDeps, idx: ScanIndex, tx: Tx, height: number, block: string): void {
  const { as } = d;
  const saleId = idx.anchors.get(tx.txid);
  if (saleId) {
    as.setAnchorBlock(saleId, height, block);
    d.ctx.store.event('paypub.anchor.confirmed', `paypub.anchor.confirmed:${saleId}:${block}`, { id: saleId, height, claim: 'adaptor' });
  }
  for (const p of idx.pendingPledges.get(tx.txid) ?? []) as.setPledgeHeight(p.txid, p.vout, height);
  const claimOf = idx.claims.get(tx.txid);
  if (claimOf) {
    as.setClaimHeight(claimOf, height);
    d.ctx.store.event('paypub.claim.confirmed', `paypub.claim.confirmed:${tx.txid}:${block}`, { id: claimOf, txid: tx.txid, height, claim: 'adaptor' });
  }
  if (tx.inputs.some((i) => idx.ownOutpoints.has(`${i.prevTxidHex}:${i.vout}`))) learnFromTx(d, tx);
}
