/**
 * Seller operations: publish (encrypt, sign, anchor, store), the offer string, the sample reveal,
 * pledge announcements from buyers, private-mode terms, and the claim (with RBF fee bumps).
 *
 * The seller key of each sale is fresh (keys.ts PAYPUB_SELLER, index from the store) and never
 * stored: it is derived again from the seed when needed. Chunk keys and private secrets are
 * sealed in the store until a claim publishes them.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { parseTransaction, type Tx } from '../chain/block.js';
import { DeaddropError, isDeaddropError } from '../util/errors.js';
import { PAYPUB_SELLER } from '../wallet/keys.js';
import { dataOutput } from '../wallet/tx.js';
import { encodeBundle } from './bundle.js';
import { encryptContent } from './content.js';
import { type PaypubContext, freshWalletScript, needSale, needWallet, tipHeight, txInBlock } from './context.js';
import { defaultOfferUrl, encodeOfferLink, normalizeSellerUrl, saleId } from './link.js';
import { anchorPayload, checkAnchorTiming, createManifest, findAnchorOutput, type Manifest } from './manifest.js';
import { TIMING, type PaypubMode } from './params.js';
import { claimCutoff, claimDecision, evaluatePledges, saleTerms, type PledgeCandidate, type PledgeEvaluation, type SaleTerms } from './pledges.js';
import { buildHtlcClaimTx, createPrivateSale, encodeOffer, htlcOutput } from './private.js';
import { MAX_PENDING } from './private-offers.js';
import { createReveal, sampleStatus, type SampleReveal } from './sample.js';
import { assertXOnlyKey, buildClaimTx, pledgeOutput, type BuiltTx } from './scripts.js';
import type { ClaimRow, PledgeRow, SaleRow } from './store.js';
import { equalBytes, toHex } from '../util/bytes.js';

/** Default chunk count (docs/protocol/paypub.md, section 8: 32 keeps the claim affordable). */
export const DEFAULT_CHUNKS = 32;
/** A claim still unconfirmed this many blocks after its broadcast is bumped (RBF). */
export const BUMP_AFTER_BLOCKS = 2;
/** Highest fee rate an automatic bump goes to, sat/vB. */
export const MAX_CLAIM_FEE_RATE = 1000;
/** Most pledges a sale keeps from strangers' announcements. */
export const MAX_ANNOUNCED = 1000;

export interface PublishOptions {
  readonly data: Uint8Array;
  readonly fileName?: string;
  readonly mode?: PaypubMode;
  readonly price: bigint;
  readonly threshold?: bigint;
  readonly minPledge?: bigint;
  /** Default min(32, file length). */
  readonly chunks?: number;
  /** Sampled chunks. Default a quarter of the chunks. */
  readonly sampleSize?: number;
  /** Beacon distance from the current tip. Default TIMING.defaultBeaconIn. */
  readonly beaconIn?: number;
  /** Deadline distance from the current tip. Default beaconIn + TIMING.defaultDeadlineAfterBeacon. */
  readonly deadlineIn?: number;
  readonly feeRate?: number;
  /** Let the daemon claim on its own when the threshold is met (default true). */
  readonly autoClaim?: boolean;
}

export interface PublishResult extends SaleTerms {
  readonly id: string;
  readonly mode: PaypubMode;
  readonly anchorTxid: string;
  readonly anchorVout: number;
  readonly anchorFee: bigint;
  readonly sellerKey: string;
  /** Whether the chunks and manifest went into the node's storage (the offer then carries the read capability). */
  readonly storage: StoreBundleResult;
}

/** Where a sale's bundle stands in the storage layer. */
export interface StoreBundleResult {
  readonly stored: boolean;
  /** `peers` or `tahoe` when stored. */
  readonly backend?: string;
  /** Why it is not stored (no storage running, too few servers, …); the daemon tries again. */
  readonly reason?: string;
}

/** The secret key of a sale this datadir published. */
export function sellerSecret(ctx: PaypubContext, sale: SaleRow): Uint8Array {
  if (sale.sellerIndex === null) throw new DeaddropError('CONFLICT', 'sale has no seller key index');
  const sk = ctx.keys.paypubKey(PAYPUB_SELLER, sale.sellerIndex).privateKey;
  if (!equalBytes(schnorr.getPublicKey(sk), sale.manifest.sellerKey)) {
    throw new DeaddropError('CONFLICT', 'this wallet did not publish this sale (seller key mismatch)');
  }
  return sk;
}

/** All chunk keys of a sale, by index. CONFLICT when one is missing. Secret. */
export function allKeys(ctx: PaypubContext, sale: SaleRow): Uint8Array[] {
  const keys = ctx.store.keys(sale.id);
  return Array.from({ length: sale.manifest.chunkCount }, (_, i) => {
    const k = keys.get(i);
    if (!k) throw new DeaddropError('CONFLICT', `key ${i} of sale ${sale.id.slice(0, 16)} is missing from the store`);
    return k;
  });
}

function planTiming(ctx: PaypubContext, tip: number, o: PublishOptions): { beaconHeight: number; deadlineHeight: number } {
  const t = TIMING[ctx.network];
  const beaconIn = o.beaconIn ?? t.defaultBeaconIn;
  if (!Number.isSafeInteger(beaconIn) || beaconIn < t.anchorMargin + 1) {
    throw DeaddropError.badInput(`--beacon-in must be at least ${t.anchorMargin + 1} blocks: the anchor must confirm ${t.anchorMargin} blocks before the beacon`);
  }
  const deadlineIn = o.deadlineIn ?? beaconIn + t.defaultDeadlineAfterBeacon;
  const minGap = t.beaconConfirmations + t.pledgeConfirmations + t.claimMargin + 1;
  if (!Number.isSafeInteger(deadlineIn) || deadlineIn < beaconIn + minGap) {
    throw DeaddropError.badInput(`--deadline-in must be at least --beacon-in + ${minGap} blocks (sample final, pledges confirmed and claimed before the cutoff)`);
  }
  return { beaconHeight: tip + beaconIn, deadlineHeight: tip + deadlineIn };
}

/** Encrypts, signs, stores and anchors a new sale. */
export async function publish(ctx: PaypubContext, o: PublishOptions): Promise<PublishResult> {
  const wallet = needWallet(ctx);
  if (!(o.data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  const mode = o.mode ?? 'public';
  const chunks = o.chunks ?? Math.max(1, Math.min(DEFAULT_CHUNKS, o.data.length));
  const sampleSize = o.sampleSize ?? Math.floor(chunks / 4);
  const tip = await tipHeight(ctx);
  const { beaconHeight, deadlineHeight } = planTiming(ctx, tip, o);
  const content = encryptContent(o.data, chunks);
  const sellerIndex = ctx.store.allocIndex('seller');
  const sk = ctx.keys.paypubKey(PAYPUB_SELLER, sellerIndex).privateKey;
  const manifest = createManifest({
    content, network: ctx.network, mode, price: o.price, sampleSize, beaconHeight, deadlineHeight, sellerSecretKey: sk,
    ...(o.threshold !== undefined ? { threshold: o.threshold } : {}), ...(o.minPledge !== undefined ? { minPledge: o.minPledge } : {}),
  });
  const id = saleId(manifest);
  ctx.store.transaction(() => {
    ctx.store.insertSale({ id, role: 'seller', manifest, sellerIndex, autoClaim: o.autoClaim ?? true, fileName: o.fileName ?? null });
    ctx.store.putChunks(id, content.ciphertexts);
    ctx.store.addKeys(id, new Map(content.keys.map((k, i) => [i, k])), 'own');
  });
  let sent;
  try {
    sent = await wallet.sendOutputs({ outputs: [dataOutput(anchorPayload(manifest))], feeRate: await ctx.feeRate(o.feeRate) });
  } catch (err) {
    ctx.store.deleteSale(id);
    throw err;
  }
  const vout = findAnchorOutput(sent.raw, manifest.hash);
  ctx.store.transaction(() => {
    ctx.store.setAnchor(id, { txid: sent.txid, vout });
    ctx.store.event('paypub.published', `paypub.published:${id}`, { id, anchorTxid: sent.txid, beaconHeight, deadlineHeight, mode });
  });
  let storage: StoreBundleResult;
  try {
    storage = await storeBundle(ctx, id);
  } catch (err) {
    // The sale stands without storage: its chunks are served by this node's API, and the daemon tries again.
    storage = { stored: false, reason: err instanceof Error ? err.message : String(err) };
  }
  return {
    id, mode, anchorTxid: sent.txid, anchorVout: vout, anchorFee: sent.fee, ...saleTerms(manifest),
    sellerKey: toHex(manifest.sellerKey), storage,
  };
}

/**
 * Puts a sale's bundle (bundle.ts: signed manifest and every ciphertext) into the node's storage
 * and records its read capability, once (idempotent: a stored sale is not put again). The storage
 * keeps the file alive (leases renewed, repaired) while the node runs.
 */
export async function storeBundle(ctx: PaypubContext, idOrPrefix: string): Promise<StoreBundleResult> {
  const sale = needSale(ctx, idOrPrefix, 'seller');
  if (ctx.store.storageCap(sale.id)) return { stored: true };
  const cs = ctx.contentStore();
  if (!cs) return { stored: false, reason: 'no storage running (the daemon\'s peer node stores sales)' };
  const put = await cs.put(encodeBundle(sale.manifest, ctx.store.chunks(sale.id)), { name: `paypub-${sale.id.slice(0, 16)}.bundle` });
  ctx.store.transaction(() => {
    ctx.store.setStorageCap(sale.id, put.readCap, put.servers);
    // The event never carries the capability.
    ctx.store.event('paypub.stored', `paypub.stored:${sale.id}`, { id: sale.id, backend: cs.kind, size: put.size });
  });
  return { stored: true, backend: cs.kind };
}

/**
 * The offer string buyers use. `url`: where this node's API is reachable (default: the daemon's).
 * It names the storage bundle when the sale is stored, and carries the anchor block and the
 * sample reveal once known: such an offer lets buyers verify and pledge with the seller offline.
 */
export function offerString(ctx: PaypubContext, idOrPrefix: string, url?: string): { id: string; offer: string; url: string | null; storage: boolean; reveal: boolean } {
  const sale = needSale(ctx, idOrPrefix, 'seller');
  if (!sale.anchorTxid || sale.anchorVout === null || sale.anchorVout < 0) throw new DeaddropError('CONFLICT', 'the sale has no anchor transaction');
  const cap = ctx.store.storageCap(sale.id);
  const base = url ?? defaultOfferUrl(ctx.publicUrl(), cap !== null);
  if (!base && !cap) throw DeaddropError.badInput('no URL for buyers to fetch chunks from and the sale is not in storage: pass --url <http://host:port> or start the daemon first');
  const normalized = base ? normalizeSellerUrl(base) : null;
  const offer = encodeOfferLink({
    manifest: sale.manifest, anchorTxid: sale.anchorTxid, anchorVout: sale.anchorVout, url: normalized, storageCap: cap,
    anchorBlock: cap ? sale.anchorBlock : null, reveal: cap ? sale.reveal : null, storageServers: cap ? ctx.store.storageServers(sale.id) : [],
  });
  return { id: sale.id, url: normalized, offer, storage: cap !== null, reveal: cap !== null && sale.reveal !== null };
}

export interface SampleResult {
  readonly id: string;
  readonly beaconHeight: number;
  readonly beaconHash: string;
  readonly indices: readonly number[];
  readonly created: boolean;
  /** Whether the anchor confirmed early enough for buyers to accept the sample. */
  readonly anchorOk: boolean;
}

/** Reveals the sampled keys once the beacon is final (idempotent while the beacon stays). */
export async function sample(ctx: PaypubContext, idOrPrefix: string): Promise<SampleResult> {
  const sale = needSale(ctx, idOrPrefix, 'seller');
  const m = sale.manifest;
  const tip = await tipHeight(ctx);
  const status = sampleStatus(m.beaconHeight, tip, m.network);
  if (status !== 'final') {
    const need = m.beaconHeight + TIMING[m.network].beaconConfirmations - 1;
    throw new DeaddropError('CONFLICT', `the beacon block ${m.beaconHeight} is not final yet (tip ${tip}; the sample can be revealed at height ${need})`, { tip, need });
  }
  const beaconHash = await ctx.chain.getBlockHash(m.beaconHeight);
  const anchorOk = sale.anchorHeight !== null && checkAnchorTiming(m, sale.anchorHeight).ok;
  if (sale.reveal && sale.beaconHash === beaconHash) {
    return { id: sale.id, beaconHeight: m.beaconHeight, beaconHash, indices: sale.reveal.indices, created: false, anchorOk };
  }
  const reveal = createReveal(m, beaconHash, allKeys(ctx, sale), sellerSecret(ctx, sale));
  ctx.store.transaction(() => {
    ctx.store.setReveal(sale.id, beaconHash, reveal);
    ctx.store.event('paypub.sample.revealed', `paypub.sample.revealed:${sale.id}:${beaconHash}`, { id: sale.id, beaconHash, indices: reveal.indices });
  });
  return { id: sale.id, beaconHeight: m.beaconHeight, beaconHash, indices: reveal.indices, created: true, anchorOk };
}

/** A pledge row as evaluatePledges sees it. */
function candidate(p: PledgeRow): PledgeCandidate {
  return { txid: p.txid, vout: p.vout, value: p.value, buyerKey: p.buyerKey, ...(p.r ? { r: p.r } : {}), script: p.script, height: p.height ?? 0 };
}

/** Pledges the seller may still claim: unspent, or spent only by its own claim still in the mempool. */
function claimable(ctx: PaypubContext, sale: SaleRow): PledgeRow[] {
  return ctx.store.pledges(sale.id).filter((p) => {
    if (p.kind !== 'pledge') return false;
    if (!p.spentBy) return true;
    const c = ctx.store.claim(p.spentBy);
    return c !== undefined && c.own && c.status === 'mempool';
  });
}

/** The pledge book of a sale: what counts toward the threshold now. */
export function evaluateSale(ctx: PaypubContext, sale: SaleRow, tip: number): PledgeEvaluation | null {
  if (!sale.reveal) return null;
  return evaluatePledges(sale.manifest, sale.reveal.indices, claimable(ctx, sale).map(candidate), tip);
}

/**
 * Fee rate for replacing `active` (BIP125: a higher rate and an absolute fee above the old one
 * plus 1 sat/vB of the new size, which the caller checks after building). Null when no bump is
 * due yet: the claim is younger than BUMP_AFTER_BLOCKS and nothing forces a rebuild.
 */
export function claimBumpRate(active: Pick<ClaimRow, 'feeRate' | 'broadcastHeight'>, tip: number, o: { explicit?: number; floor: number; force: boolean }): number | null {
  const old = active.feeRate ?? o.floor;
  const due = active.broadcastHeight !== null && tip - active.broadcastHeight >= BUMP_AFTER_BLOCKS;
  if (!due && !o.force && o.explicit === undefined) return null;
  const rate = Math.max(o.explicit ?? 0, old * 1.5, old + 1, o.floor);
  return Math.min(Math.ceil(rate * 100) / 100, MAX_CLAIM_FEE_RATE);
}

export interface ClaimResult {
  readonly id: string;
  readonly action: 'broadcast' | 'bumped' | 'pending' | 'none';
  readonly reason?: string;
  readonly txid?: string;
  readonly replaces?: string;
  readonly fee?: bigint;
  readonly feeRate?: number;
  readonly vsize?: number;
  readonly pledges?: number;
  readonly total?: bigint;
  readonly shortfall?: bigint;
}

/**
 * Claims every counted pledge in one RBF transaction when the rules allow (threshold met before
 * the cutoff, or keys already public), or bumps the claim still in the mempool when it is due,
 * when new pledges counted since, or when `feeRate` asks for it. `action: 'none'` says why not.
 */
export async function claim(ctx: PaypubContext, idOrPrefix: string, o: { feeRate?: number; tip?: number } = {}): Promise<ClaimResult> {
  const sale = needSale(ctx, idOrPrefix, 'seller');
  if (sale.manifest.mode !== 'public') return privateClaims(ctx, sale, o);
  if (!sale.reveal) return { id: sale.id, action: 'none', reason: 'the sample is not revealed yet' };
  const tip = o.tip ?? (await tipHeight(ctx));
  const ev = evaluateSale(ctx, sale, tip) as PledgeEvaluation;
  const claims = ctx.store.claims(sale.id);
  const active = claims.find((c) => c.own && c.status === 'mempool');
  const keysPublic = claims.some((c) => c.status !== 'replaced');
  const base = { id: sale.id, pledges: ev.counted.length, total: ev.total, shortfall: ev.shortfall };
  if (ev.counted.length === 0) return { ...base, action: active ? 'pending' : 'none', ...(active ? { txid: active.txid } : { reason: 'no counted pledges' }) };
  const floor = await ctx.feeRate();
  if (active) {
    const same = sameSet(active.inputs, ev.counted.map((p) => `${p.txid}:${p.vout}`));
    const rate = claimBumpRate(active, tip, { ...(o.feeRate !== undefined ? { explicit: o.feeRate } : {}), floor, force: !same });
    if (rate === null) return { ...base, action: 'pending', txid: active.txid };
    return broadcastClaim(ctx, sale, ev.counted, rate, tip, active);
  }
  if (!keysPublic) {
    const d = claimDecision(sale.manifest, ev, tip);
    if (!d.ok) return { ...base, action: 'none', reason: d.reason };
  } else if (tip > claimCutoff(sale.manifest)) {
    return { ...base, action: 'none', reason: 'too-late' };
  }
  return broadcastClaim(ctx, sale, ev.counted, o.feeRate ?? floor, tip, undefined);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

async function broadcastClaim(ctx: PaypubContext, sale: SaleRow, pledges: readonly PledgeCandidate[], rate: number, tip: number, active: ClaimRow | undefined): Promise<ClaimResult> {
  const payout = sale.payoutScript ?? (await freshWalletScript(ctx));
  if (!sale.payoutScript) ctx.store.setPayoutScript(sale.id, payout);
  const opts = {
    manifest: sale.manifest, sampled: (sale.reveal as SampleReveal).indices, keys: allKeys(ctx, sale), sellerSecretKey: sellerSecret(ctx, sale),
    pledges, payoutScript: payout, lockTime: tip,
  };
  let built: BuiltTx = buildClaimTx({ ...opts, feeRate: rate });
  if (active?.fee !== null && active?.fee !== undefined && built.fee < active.fee + BigInt(built.vsize)) {
    rate = Math.ceil(((Number(active.fee) + built.vsize) / built.vsize + 0.01) * 100) / 100;
    built = buildClaimTx({ ...opts, feeRate: rate });
  }
  const seenAt = Date.now();
  const res = await ctx.chain.broadcast(built.raw);
  if (!res.accepted) throw new DeaddropError('REJECTED', `the node rejected the claim: ${res.reason}`, { reason: res.reason, txid: built.txid });
  const inputs = pledges.map((p) => `${p.txid}:${p.vout}`);
  ctx.store.transaction(() => {
    ctx.store.insertClaim({
      txid: built.txid, saleId: sale.id, raw: built.raw, own: true, fee: built.fee, feeRate: rate, inputs, status: 'mempool', seenAt, broadcastHeight: tip, payoutScript: payout,
    });
    if (active) {
      ctx.store.setClaimStatus(active.txid, { status: 'replaced', replacedBy: built.txid });
      ctx.store.event('paypub.claim.replaced', `paypub.claim.replaced:${active.txid}:${built.txid}`, { id: sale.id, txid: active.txid, by: built.txid });
    }
    for (const p of pledges) ctx.store.setSpent(p.txid, p.vout, { by: built.txid, kind: 'claim', height: null, block: null });
    ctx.store.event('paypub.claim.broadcast', `paypub.claim.broadcast:${built.txid}`, {
      id: sale.id, txid: built.txid, fee: built.fee.toString(), feeRate: rate, vsize: built.vsize, pledges: pledges.length, broadcastAt: seenAt, ...(active ? { replaces: active.txid } : {}),
    });
  });
  return {
    id: sale.id, action: active ? 'bumped' : 'broadcast', txid: built.txid, fee: built.fee, feeRate: rate, vsize: built.vsize, pledges: pledges.length,
    total: pledges.reduce((s, p) => s + p.value, 0n), ...(active ? { replaces: active.txid } : {}),
  };
}

/**
 * Private mode: claims every funded, confirmed HTLC of this sale with its secret, while the
 * buyer's CSV refund is still at least two blocks away.
 */
async function privateClaims(ctx: PaypubContext, sale: SaleRow, o: { feeRate?: number; tip?: number }): Promise<ClaimResult> {
  const tip = o.tip ?? (await tipHeight(ctx));
  const conf = TIMING[sale.manifest.network].pledgeConfirmations;
  const due = ctx.store.pledges(sale.id).filter((p) => p.kind === 'htlc' && !p.own && !p.spentBy && p.height !== null && tip - p.height + 1 >= conf);
  let last: ClaimResult = { id: sale.id, action: 'none', reason: 'no funded HTLC' };
  for (const p of due) {
    const offer = p.paymentHash ? ctx.store.privateOffer(p.paymentHash) : undefined;
    const secret = p.paymentHash ? ctx.store.privateSecret(p.paymentHash) : undefined;
    if (!offer || !secret || p.value < offer.offer.amount) continue;
    if (tip - (p.height as number) + 1 > offer.offer.csvDelay - 2) continue; // too close to the buyer's refund
    const payout = await freshWalletScript(ctx);
    const rate = await ctx.feeRate(o.feeRate);
    const built = buildHtlcClaimTx({
      manifest: sale.manifest, offer: offer.offer, secret, sellerSecretKey: sellerSecret(ctx, sale), utxo: { txid: p.txid, vout: p.vout, value: p.value }, payoutScript: payout, feeRate: rate,
    });
    const seenAt = Date.now();
    const res = await ctx.chain.broadcast(built.raw);
    if (!res.accepted) throw new DeaddropError('REJECTED', `the node rejected the HTLC claim: ${res.reason}`, { reason: res.reason });
    ctx.store.transaction(() => {
      ctx.store.insertClaim({ txid: built.txid, saleId: sale.id, raw: built.raw, own: true, fee: built.fee, feeRate: rate, inputs: [`${p.txid}:${p.vout}`], status: 'mempool', seenAt, broadcastHeight: tip, payoutScript: payout });
      ctx.store.setSpent(p.txid, p.vout, { by: built.txid, kind: 'claim', height: null, block: null });
      ctx.store.event('paypub.claim.broadcast', `paypub.claim.broadcast:${built.txid}`, { id: sale.id, txid: built.txid, fee: built.fee.toString(), feeRate: rate, vsize: built.vsize, pledges: 1, broadcastAt: seenAt });
    });
    last = { id: sale.id, action: 'broadcast', txid: built.txid, fee: built.fee, feeRate: rate, vsize: built.vsize, pledges: 1, total: p.value };
  }
  return last;
}

/** Private mode: fresh terms (signed offer and wrap) for a buyer key. */
export function privateTerms(ctx: PaypubContext, idOrPrefix: string, buyerKey: Uint8Array): { offer: Uint8Array; wrap: Uint8Array; paymentHash: string } {
  const sale = needSale(ctx, idOrPrefix, 'seller');
  if (sale.manifest.mode !== 'private') throw DeaddropError.badInput('this sale is in public mode: pledge instead');
  try {
    assertXOnlyKey(buyerKey, 'buyer key');
  } catch (err) {
    throw DeaddropError.badInput((err as Error).message);
  }
  // The service makes room first (private-offers.ts: per source, expiry, eviction); this is the backstop.
  if (ctx.store.pendingPrivateOffers(sale.id).length >= MAX_PENDING) throw new DeaddropError('CONFLICT', 'this sale holds as many unfunded private offers as it keeps');
  const ps = createPrivateSale({ manifest: sale.manifest, keys: allKeys(ctx, sale), sellerSecretKey: sellerSecret(ctx, sale), buyerKey });
  const paymentHash = toHex(ps.offer.paymentHash);
  // No event row: anyone can ask for terms, and the outbox keeps every row it is given. The seller
  // hears of the terms that matter when their HTLC is announced or seen on chain.
  ctx.store.insertPrivateOffer({ saleId: sale.id, role: 'seller', buyerKey, offer: ps.offer, wrap: ps.wrap, secret: ps.secret, script: htlcOutput(sale.manifest, ps.offer).script });
  return { offer: encodeOffer(ps.offer), wrap: ps.wrap, paymentHash };
}

/** A pledge (or funded HTLC) a buyer announces. Everything in it is checked; nothing throws but DeaddropErrors. */
export interface Announcement {
  readonly tx: Uint8Array;
  readonly vout: number;
  readonly buyerKey?: Uint8Array;
  readonly r?: Uint8Array;
  readonly blockHash?: string;
}

/** Where the announced output stands: mined in a given block, or in the node's mempool. */
async function announcedState(ctx: PaypubContext, tx: Tx, blockHash: string | undefined): Promise<{ height: number; block: string } | null> {
  if (blockHash) {
    const found = await txInBlock(ctx.chain, tx.txid, blockHash);
    if (!found) throw new DeaddropError('CONFLICT', 'the pledge transaction is not in the block named, on this node\'s best chain');
    return { height: found.height, block: blockHash };
  }
  const inMempool = ctx.chain.capabilities.mempool
    ? (await ctx.chain.getMempoolTxids()).includes(tx.txid)
    : await ctx.chain.getRawTransaction(tx.txid).then(() => true, (err: unknown) => (isDeaddropError(err, 'NOT_FOUND') ? false : Promise.reject(err)));
  if (!inMempool) throw new DeaddropError('CONFLICT', 'the pledge transaction is not in this node\'s mempool: announce it again with blockHash once it is mined');
  return null;
}

/** Checks and records a pledge announced by a buyer. */
export async function announce(ctx: PaypubContext, idOrPrefix: string, a: Announcement): Promise<{ id: string; txid: string; vout: number; value: bigint; height: number | null; known: boolean }> {
  const sale = needSale(ctx, idOrPrefix, 'seller');
  let tx: Tx;
  try {
    tx = parseTransaction(a.tx);
  } catch {
    throw DeaddropError.badInput('tx is not a transaction');
  }
  const out = tx.outputs[a.vout];
  if (!out) throw DeaddropError.badInput('vout is not an output of tx');
  const known = ctx.store.pledge(tx.txid, a.vout);
  const match = known ? { buyerKey: known.buyerKey, paymentHash: known.paymentHash } : matchAnnounced(ctx, sale, out.script, out.value, a);
  if (!known && ctx.store.pledgeCount(sale.id) >= MAX_ANNOUNCED) throw new DeaddropError('CONFLICT', 'this sale is not taking more pledge announcements');
  const state = known?.height !== null && known?.height !== undefined ? { height: known.height, block: known.blockHash as string } : await announcedState(ctx, tx, a.blockHash);
  ctx.store.transaction(() => {
    if (!known) {
      ctx.store.insertPledge({
        txid: tx.txid, vout: a.vout, saleId: sale.id, kind: sale.manifest.mode === 'public' ? 'pledge' : 'htlc', own: false, buyerKey: match.buyerKey,
        r: a.r ?? null, paymentHash: match.paymentHash, script: out.script.slice(), value: out.value, height: state?.height ?? null, blockHash: state?.block ?? null, announced: true,
      });
      ctx.store.event('paypub.pledge.announced', `paypub.pledge.announced:${tx.txid}:${a.vout}`, { id: sale.id, txid: tx.txid, vout: a.vout, value: out.value.toString() });
    } else if (state && known.height === null) {
      ctx.store.setPledgeBlock(tx.txid, a.vout, state.height, state.block);
      ctx.store.event('paypub.pledge.confirmed', `paypub.pledge.confirmed:${tx.txid}:${a.vout}:${state.block}`, { id: sale.id, txid: tx.txid, vout: a.vout, height: state.height, own: false });
    }
  });
  return { id: sale.id, txid: tx.txid, vout: a.vout, value: out.value, height: state?.height ?? null, known: known !== undefined };
}

function matchAnnounced(ctx: PaypubContext, sale: SaleRow, script: Uint8Array, value: bigint, a: Announcement): { buyerKey: Uint8Array; paymentHash: string | null } {
  const m: Manifest = sale.manifest;
  if (m.mode === 'private') {
    const offer = ctx.store.privateOffers(sale.id).find((o) => equalBytes(o.script, script));
    if (!offer) throw DeaddropError.badInput('the output does not pay any HTLC this seller offered');
    if (value < offer.offer.amount) throw DeaddropError.badInput('the HTLC holds less than the offer asks');
    return { buyerKey: offer.buyerKey, paymentHash: offer.paymentHash };
  }
  if (!sale.reveal) throw new DeaddropError('CONFLICT', 'the sample is not revealed yet: no pledge can be built before it');
  if (!a.buyerKey) throw DeaddropError.badInput('buyerKey is required for a public-mode pledge');
  let want: Uint8Array;
  try {
    want = pledgeOutput(m, sale.reveal.indices, { buyerKey: a.buyerKey, ...(a.r ? { r: a.r } : {}) }).script;
  } catch {
    throw DeaddropError.badInput('buyerKey (or r) cannot make a pledge output');
  }
  if (!equalBytes(want, script)) throw DeaddropError.badInput('the output is not the pledge this manifest, sample and buyer key make');
  if (value < m.minPledge) throw DeaddropError.badInput(`the pledge is below the minimum of ${m.minPledge} sat`);
  return { buyerKey: a.buyerKey, paymentHash: null };
}
