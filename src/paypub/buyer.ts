/**
 * Buyer (and observer) operations: verify an offer, pledge (public mode), buy (private mode),
 * unlock (decrypt once the keys are known) and refund (after the deadline / the CSV delay).
 *
 * Every pledge is built here from the verified manifest, the sample this node checked against its
 * own view of the beacon block, and a fresh refund key (keys.ts PAYPUB_BUYER): nothing the seller
 * sends decides where the money goes. Pledging is refused once the keys are public.
 */
import { mkdirSync } from 'node:fs';
import { unlockedDir, writeNewFile } from './files.js';
import { join } from 'node:path';
import { parseTransaction } from '../chain/block.js';
import { DeaddropError } from '../util/errors.js';
import { PAYPUB_BUYER } from '../wallet/keys.js';
import { sha256 } from './bytes.js';
import { collectKeys, decryptContent } from './content.js';
import { type PaypubContext, freshWalletScript, needSale, needWallet, tipHeight, txInBlock } from './context.js';
import { decodeBundle } from './bundle.js';
import { SellerClient } from './distribution.js';
import { pledgeHint } from './hint.js';
import { dataOutput } from '../wallet/tx.js';
import { decodeOfferLink, saleId, type OfferLink } from './link.js';
import { checkAnchorTiming, encodeManifest, findAnchorOutput, type Manifest } from './manifest.js';
import { KEY_BYTES, NONCE_BYTES, TAG_BYTES, TIMING, type PaypubMode } from './params.js';
import { pledgeDecision, refundDecision, saleTerms, type SaleTerms } from './pledges.js';
import { buildCsvRefundTx, htlcOutput, verifyOffer, type Offer } from './private.js';
import { describeSample, sampleOdds, sampleStatus, verifyReveal, type SampleReveal, type SampleStatus } from './sample.js';
import { buildRefundTx, pledgeOutput, type BuiltTx } from './scripts.js';
import type { PledgeRow, SaleRow } from './store.js';
import { equalBytes, toHex } from '../util/bytes.js';

export interface VerifyResult extends SaleTerms {
  readonly id: string;
  readonly mode: PaypubMode;
  /** Anchor, sample and chunks all check out: safe to pay. */
  readonly ok: boolean;
  readonly problems: readonly string[];
  /** The seller's API, when the offer names one. */
  readonly url: string | null;
  /** Where the chunks came from this time: `storage`, `seller` (its API) or `store` (fetched before). */
  readonly chunksFrom: 'storage' | 'seller' | 'store';
  readonly tip: number;
  readonly anchor: { readonly txid: string; readonly vout: number; readonly height: number | null; readonly ok: boolean };
  readonly sample: { readonly status: SampleStatus; readonly beaconHash: string | null; readonly indices: readonly number[]; readonly verified: boolean };
  /** What the sample proves and what it does not (sample.ts describeSample). */
  readonly proves: string;
  /** Probability that `bad` bad chunks all escape the sample. */
  readonly odds: readonly { readonly bad: number; readonly escape: number }[];
  readonly keysKnown: number;
  readonly keysPublic: boolean;
}

type AnchorCheck = { ok: true; height: number; block: string } | { ok: false; reason: string };

async function checkAnchor(ctx: PaypubContext, client: SellerClient | null, link: OfferLink, sale: SaleRow | undefined): Promise<AnchorCheck> {
  const m = link.manifest;
  if (sale?.anchorHeight !== null && sale?.anchorHeight !== undefined && sale.anchorBlock) {
    if ((await ctx.chain.getBlockHash(sale.anchorHeight).catch(() => null)) === sale.anchorBlock) return { ok: true, height: sale.anchorHeight, block: sale.anchorBlock };
  }
  // The block the offer names is a hint like the seller's answer: checked on this node's chain.
  let blockHash = link.anchorBlock;
  let found = blockHash ? await txInBlock(ctx.chain, link.anchorTxid, blockHash) : null;
  if (!found) {
    if (!client) return { ok: false, reason: link.anchorBlock ? 'the anchor is not in the block the offer names (on this node\'s best chain)' : 'the offer names no anchor block and no seller URL: ask the seller for a newer offer' };
    const info = await client.anchor();
    if (info.txid !== link.anchorTxid || info.vout !== link.anchorVout) return { ok: false, reason: 'the seller names another anchor than the offer' };
    if (!info.blockHash) return { ok: false, reason: 'the anchor is not confirmed yet' };
    blockHash = info.blockHash;
    found = await txInBlock(ctx.chain, link.anchorTxid, blockHash);
    if (!found) return { ok: false, reason: 'the anchor is not in the block the seller names (on this node\'s best chain)' };
  }
  if (findAnchorOutput(found.raw, m.hash) !== link.anchorVout) return { ok: false, reason: 'the anchor transaction does not anchor this manifest' };
  const timing = checkAnchorTiming(m, found.height);
  if (!timing.ok) return { ok: false, reason: `the anchor confirmed too late (height ${found.height}; must be at most ${m.beaconHeight - TIMING[m.network].anchorMargin})` };
  return { ok: true, height: found.height, block: blockHash as string };
}

/**
 * The sale's ciphertexts: from the storage bundle the offer names when this node has storage
 * (peers or Tahoe), else (or when that fails and the offer also names one) from the seller's API.
 * Every chunk is checked against the manifest either way.
 */
async function fetchChunks(ctx: PaypubContext, client: SellerClient | null, link: OfferLink): Promise<{ chunks: Uint8Array[]; from: 'storage' | 'seller' }> {
  const m = link.manifest;
  const cs = link.storageCap ? ctx.contentStore() : null;
  let storageError: unknown = null;
  if (link.storageCap && cs) {
    try {
      const servers = link.storageServers ?? [];
      return { chunks: decodeBundle(m, await cs.get(link.storageCap, servers.length > 0 ? { servers } : {})), from: 'storage' };
    } catch (err) {
      if (!client) throw err;
      storageError = err;
      ctx.log(`paypub: the storage bundle could not be read (${err instanceof Error ? err.message : String(err)}); fetching from the seller`);
    }
  }
  if (!client) throw new DeaddropError('NOT_INITIALIZED', NO_STORAGE);
  try {
    await client.manifest(encodeManifest(m));
    return { chunks: await client.chunks(m), from: 'seller' };
  } catch (err) {
    throw link.storageCap ? noChunksError(storageError, err) : err;
  }
}

const NO_STORAGE = 'the offer\'s chunks are in storage and no storage runs here: start the daemon (its peer node reads storage)';

/**
 * The error of a buyer who got the chunks neither from the storage the offer names nor from the
 * seller's API (offline, as it may be once a sale is stored). The storage side is what the buyer
 * can act on (start the daemon, give it a Tahoe client, …), so it leads with its code; the
 * seller's failure follows. `storage`: the storage read's error, or null when no storage runs here.
 */
export function noChunksError(storage: unknown, seller: unknown): unknown {
  const why = seller instanceof Error ? seller.message : String(seller);
  if (storage === null) return new DeaddropError('NOT_INITIALIZED', `${NO_STORAGE}; the seller's API did not serve them either (${why})`);
  if (!(storage instanceof DeaddropError)) return seller;
  return new DeaddropError(storage.code, `the offer's chunks could not be read from storage: ${storage.message}; the seller's API did not serve them either (${why})`, storage.details);
}

type SampleCheck = { status: SampleStatus; beaconHash: string | null; reveal: SampleReveal | null; verified: boolean; reason?: string };

async function checkSample(ctx: PaypubContext, client: SellerClient | null, link: OfferLink, chunks: readonly Uint8Array[], sale: SaleRow | undefined, tip: number): Promise<SampleCheck> {
  const m = link.manifest;
  const status = sampleStatus(m.beaconHeight, tip, m.network);
  if (status !== 'final') {
    const at = m.beaconHeight + TIMING[m.network].beaconConfirmations - 1;
    return { status, beaconHash: null, reveal: null, verified: false, reason: `the beacon block is not final yet (sample at height ${at}; tip ${tip})` };
  }
  const beaconHash = await ctx.chain.getBlockHash(m.beaconHeight);
  // Stored, then carried in the offer (made while the seller was online), then asked of the seller.
  let reveal = sale?.reveal && sale.beaconHash === beaconHash ? sale.reveal : null;
  if (!reveal && link.reveal?.beaconHash === beaconHash) reveal = link.reveal;
  if (!reveal && client) reveal = await client.reveal();
  if (!reveal) return { status, beaconHash, reveal: null, verified: false, reason: client ? 'the seller has not revealed the sample yet' : 'the offer carries no sample reveal for this beacon: ask the seller for a newer offer' };
  const check = verifyReveal(m, beaconHash, reveal, (i) => chunks[i]);
  if (!check.ok) return { status, beaconHash, reveal, verified: false, reason: `the sample reveal is bad: ${check.reason}${check.index !== undefined ? ` (chunk ${check.index})` : ''}` };
  return { status, beaconHash, reveal, verified: true };
}

function oddsTable(n: number, s: number): { bad: number; escape: number }[] {
  return [1, 2, Math.max(3, Math.round(n / 8)), Math.max(4, Math.round(n / 4))]
    .filter((b, i, a) => b <= n - s && a.indexOf(b) === i)
    .map((bad) => ({ bad, escape: Math.round(sampleOdds(n, s, bad) * 10_000) / 10_000 }));
}

/**
 * Buyer: fetches the manifest and every chunk from the seller, checks them, checks the anchor
 * and the beacon on this node's chain and the sample reveal, and stores the sale (also for an
 * observer who only wants to decrypt once the keys are public).
 */
export async function verify(ctx: PaypubContext, text: string, o: { out?: string } = {}): Promise<VerifyResult> {
  const link = decodeOfferLink(text.trim(), ctx.network);
  const m = link.manifest;
  const id = saleId(m);
  const existing = ctx.store.sale(id);
  if (existing?.role === 'seller') throw DeaddropError.badInput('this offer is one of this datadir\'s own sales');
  const client = link.url ? new SellerClient(link.url, id, { ...(ctx.fetch ? { fetch: ctx.fetch } : {}) }) : null;
  const stored = existing ? ctx.store.chunks(id) : [];
  const fetched = stored.length === m.chunkCount ? { chunks: stored, from: 'store' as const } : await fetchChunks(ctx, client, link);
  const chunks = fetched.chunks;
  const anchor = await checkAnchor(ctx, client, link, existing);
  const tip = await tipHeight(ctx);
  const sample = await checkSample(ctx, client, link, chunks, existing, tip);
  const newlyVerified = sample.verified && !(existing?.reveal && existing.beaconHash === sample.beaconHash);
  ctx.store.transaction(() => {
    if (!existing) ctx.store.insertSale({ id, role: 'buyer', manifest: m, url: link.url, anchorTxid: link.anchorTxid, anchorVout: link.anchorVout, outPath: o.out ?? null });
    else {
      if (link.url) ctx.store.setUrl(id, link.url);
      if (o.out) ctx.store.setOutPath(id, o.out);
    }
    if (stored.length !== m.chunkCount) ctx.store.putChunks(id, chunks);
    if (anchor.ok) ctx.store.setAnchorBlock(id, anchor.height, anchor.block);
    if (newlyVerified && sample.reveal && sample.beaconHash) {
      ctx.store.setReveal(id, sample.beaconHash, sample.reveal);
      ctx.store.addKeys(id, new Map(sample.reveal.indices.map((i, j) => [i, sample.reveal!.keys[j] as Uint8Array])), 'reveal');
      ctx.store.event('paypub.verified', `paypub.verified:${id}:${sample.beaconHash}`, { id, beaconHash: sample.beaconHash, indices: sample.reveal.indices });
    }
  });
  if (newlyVerified) await lookBack(ctx, m);
  const problems = [...(anchor.ok ? [] : [anchor.reason]), ...(sample.reason ? [sample.reason] : [])];
  const claims = ctx.store.claims(id);
  return {
    id, mode: m.mode, ok: anchor.ok && sample.verified, problems, url: link.url, chunksFrom: fetched.from, ...saleTerms(m), tip,
    anchor: { txid: link.anchorTxid, vout: link.anchorVout, height: anchor.ok ? anchor.height : null, ok: anchor.ok },
    sample: { status: sample.status, beaconHash: sample.beaconHash, indices: sample.reveal?.indices ?? [], verified: sample.verified },
    proves: describeSample(m.chunkCount, m.sampleSize), odds: oddsTable(m.chunkCount, m.sampleSize),
    keysKnown: ctx.store.keyCount(id), keysPublic: claims.length > 0,
  };
}

/** A sale just became watchable: look for its claim in blocks already passed and in the mempool. */
async function lookBack(ctx: PaypubContext, m: Manifest): Promise<void> {
  await ctx.watch.catchUp();
  const cursor = ctx.watch.height;
  // No claim can come before the sample is final and a pledge has confirmed after it.
  const first = m.beaconHeight + TIMING[m.network].beaconConfirmations;
  if (cursor !== null && cursor >= first) await ctx.watch.rescan(first, Math.min(cursor, m.deadlineHeight + 144));
  await ctx.watch.mempoolPass();
}

export interface PayResult {
  readonly id: string;
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  readonly fee: bigint;
  readonly announced: boolean;
  readonly announceError?: string;
  /** Public mode: the refund is valid once the tip reaches this height. */
  readonly refundAt?: number;
  /** Private mode: refundable this many blocks after the HTLC confirms. */
  readonly csvDelay?: number;
}

function needVerified(v: VerifyResult, mode: PaypubMode): void {
  if (v.mode !== mode) throw DeaddropError.badInput(v.mode === 'private' ? 'this is a private-mode sale: use `paypub buy`' : 'this is a public-mode sale: use `paypub pledge`');
  if (!v.ok) throw new DeaddropError('CONFLICT', `the offer does not verify yet: ${v.problems.join('; ')}`);
}

async function fundOutput(ctx: PaypubContext, script: Uint8Array, amount: bigint, feeRate: number | undefined, hint?: Uint8Array): Promise<{ raw: Uint8Array; txid: string; vout: number; fee: bigint }> {
  const w = needWallet(ctx);
  const outputs = [{ script, amount }, ...(hint ? [dataOutput(hint)] : [])];
  const funded = await w.fundTransaction({ outputs, feeRate: await ctx.feeRate(feeRate) });
  const vout = parseTransaction(funded.raw).outputs.findIndex((x) => equalBytes(x.script, script) && x.value === amount);
  await w.broadcast(funded);
  return { raw: funded.raw, txid: funded.txid, vout, fee: funded.fee };
}

async function announceTo(
  ctx: PaypubContext, sale: SaleRow, p: { raw: Uint8Array; txid: string; vout: number; buyerKey?: Uint8Array; blockHash?: string }, timeoutMs?: number,
): Promise<{ ok: boolean; reason: string }> {
  if (!sale.url) return { ok: false, reason: 'no seller URL' };
  const client = new SellerClient(sale.url, sale.id, { ...(ctx.fetch ? { fetch: ctx.fetch } : {}), ...(timeoutMs ? { timeoutMs } : {}) });
  try {
    const r = await client.announce({ tx: p.raw, vout: p.vout, ...(p.buyerKey ? { buyerKey: p.buyerKey } : {}), ...(p.blockHash ? { blockHash: p.blockHash } : {}) });
    if (r.accepted) ctx.store.setAnnounced(p.txid, p.vout);
    return { ok: r.accepted, reason: r.reason };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/** Public mode: verifies, then pays `amount` into this buyer's own pledge output and tells the seller. */
export async function pledge(ctx: PaypubContext, text: string, amount: bigint, o: { feeRate?: number; out?: string } = {}): Promise<PayResult> {
  needWallet(ctx);
  const v = await verify(ctx, text, o.out ? { out: o.out } : {});
  needVerified(v, 'public');
  const sale = ctx.store.sale(v.id) as SaleRow;
  const m = sale.manifest;
  if (amount < m.minPledge) throw DeaddropError.badInput(`the minimum pledge is ${m.minPledge} sat`);
  const d = pledgeDecision(m, { tipHeight: v.tip, keysPublic: v.keysPublic || v.keysKnown >= m.chunkCount });
  if (!d.ok) {
    const why = { 'keys-public': 'the keys are already public: there is nothing left to pay for', 'sample-not-final': 'the sample is not final yet', 'too-late': `too late: a pledge now could not be counted and claimed before the cutoff at height ${v.claimCutoff}` };
    throw new DeaddropError('CONFLICT', `pledge refused: ${why[d.reason]}`, { reason: d.reason });
  }
  const keyIndex = ctx.store.allocIndex('buyer');
  const kp = ctx.keys.paypubKey(PAYPUB_BUYER, keyIndex);
  const out = pledgeOutput(m, (sale.reveal as SampleReveal).indices, { buyerKey: kp.xOnly });
  // The hint lets the seller's daemon find this pledge on chain when it cannot be told (offline).
  const sent = await fundOutput(ctx, out.script, amount, o.feeRate, pledgeHint(m, kp.xOnly));
  ctx.store.transaction(() => {
    ctx.store.insertPledge({ txid: sent.txid, vout: sent.vout, saleId: sale.id, kind: 'pledge', own: true, buyerKey: kp.xOnly, keyIndex, script: out.script, value: amount });
    ctx.store.event('paypub.pledge.sent', `paypub.pledge.sent:${sent.txid}:${sent.vout}`, { id: sale.id, txid: sent.txid, vout: sent.vout, value: amount.toString() });
  });
  const a = await announceTo(ctx, sale, { raw: sent.raw, txid: sent.txid, vout: sent.vout, buyerKey: kp.xOnly });
  return { id: sale.id, txid: sent.txid, vout: sent.vout, value: amount, fee: sent.fee, announced: a.ok, ...(a.ok ? {} : { announceError: a.reason }), refundAt: m.deadlineHeight };
}

/** Where private terms come from: the seller's API by default; tests and other channels pass their own. */
export type TermsSource = (buyerKey: Uint8Array) => Promise<{ offer: Offer; wrap: Uint8Array }>;

/** Why private terms are unacceptable to this buyer, or null. */
export function termsProblem(m: Manifest, offer: Offer, wrap: Uint8Array, buyerKey: Uint8Array): string | null {
  if (!verifyOffer(offer, m.sellerKey)) return 'the offer is not signed by the manifest\'s seller';
  if (!equalBytes(offer.manifestHash, m.hash)) return 'the offer is for another manifest';
  if (!equalBytes(offer.buyerKey, buyerKey)) return 'the offer is for another buyer key';
  if (offer.amount !== m.price) return `the offer asks ${offer.amount} sat, the manifest says ${m.price}`;
  const csv = TIMING[m.network].csvDelay;
  if (offer.csvDelay < 1 || offer.csvDelay > 4 * csv) return `the refund delay of ${offer.csvDelay} blocks is outside 1..${4 * csv}`;
  if (!equalBytes(sha256(wrap), offer.wrapHash)) return 'the wrap is not the one the offer commits to';
  if (wrap.length !== 1 + NONCE_BYTES + KEY_BYTES * m.chunkCount + TAG_BYTES) return 'the wrap has the wrong size';
  return null;
}

/** Private mode: verifies, gets terms for a fresh buyer key, checks them and funds the HTLC. */
export async function buy(ctx: PaypubContext, text: string, o: { feeRate?: number; out?: string; terms?: TermsSource } = {}): Promise<PayResult> {
  needWallet(ctx);
  const v = await verify(ctx, text, o.out ? { out: o.out } : {});
  needVerified(v, 'private');
  const sale = ctx.store.sale(v.id) as SaleRow;
  const m = sale.manifest;
  const keyIndex = ctx.store.allocIndex('buyer');
  const kp = ctx.keys.paypubKey(PAYPUB_BUYER, keyIndex);
  if (!o.terms && !sale.url) throw new DeaddropError('CONFLICT', 'private-mode terms come from the seller\'s API, and this offer names none: ask the seller for an offer with its URL');
  const source: TermsSource = o.terms ?? ((key) => new SellerClient(sale.url as string, sale.id, { ...(ctx.fetch ? { fetch: ctx.fetch } : {}) }).privateTerms(key));
  const { offer, wrap } = await source(kp.xOnly);
  const problem = termsProblem(m, offer, wrap, kp.xOnly);
  if (problem) throw DeaddropError.protocol(`private terms refused: ${problem}`);
  const script = htlcOutput(m, offer).script;
  ctx.store.insertPrivateOffer({ saleId: sale.id, role: 'buyer', buyerKey: kp.xOnly, keyIndex, offer, wrap, script });
  const sent = await fundOutput(ctx, script, offer.amount, o.feeRate);
  ctx.store.transaction(() => {
    ctx.store.insertPledge({ txid: sent.txid, vout: sent.vout, saleId: sale.id, kind: 'htlc', own: true, buyerKey: kp.xOnly, keyIndex, paymentHash: toHex(offer.paymentHash), script, value: offer.amount });
    ctx.store.event('paypub.htlc.sent', `paypub.htlc.sent:${sent.txid}:${sent.vout}`, { id: sale.id, txid: sent.txid, vout: sent.vout, value: offer.amount.toString() });
  });
  const a = await announceTo(ctx, sale, { raw: sent.raw, txid: sent.txid, vout: sent.vout });
  return { id: sale.id, txid: sent.txid, vout: sent.vout, value: offer.amount, fee: sent.fee, announced: a.ok, ...(a.ok ? {} : { announceError: a.reason }), csvDelay: offer.csvDelay };
}

/** A seller that does not answer quickly is tried again at the next block, not waited for. */
const REANNOUNCE_TIMEOUT_MS = 5_000;

/** Re-announces own pledges: unannounced ones, and (once) confirmed ones with their block. */
export async function reannounce(ctx: PaypubContext, sale: SaleRow, confirmedDone: Set<string>): Promise<void> {
  for (const p of ctx.store.pledges(sale.id)) {
    if (!p.own || p.spentBy) continue;
    const key = `${p.txid}:${p.vout}`;
    const confirmed = p.height !== null && p.blockHash !== null;
    if (p.announced && (!confirmed || confirmedDone.has(key))) continue;
    // The wallet keeps its own transactions; the node has confirmed ones only with a tx index.
    const raw = (await ctx.wallet?.transaction(p.txid))?.raw ?? (await ctx.chain.getRawTransaction(p.txid).catch(() => null));
    if (!raw) continue;
    const r = await announceTo(ctx, sale, {
      raw, txid: p.txid, vout: p.vout, ...(p.kind === 'pledge' ? { buyerKey: p.buyerKey } : {}), ...(confirmed ? { blockHash: p.blockHash as string } : {}),
    }, REANNOUNCE_TIMEOUT_MS);
    if (r.ok && confirmed) confirmedDone.add(key);
  }
}

export interface UnlockResult {
  readonly id: string;
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly at: number;
}

/** The default place the daemon writes an unlocked file (under the API's output directory). */
export function defaultOutPath(ctx: PaypubContext, id: string): string {
  return join(unlockedDir(ctx.datadir), `${id.slice(0, 16)}.bin`);
}

/**
 * Decrypts with every known key and writes the file (atomically, mode 0600). CONFLICT while keys
 * are missing, or when the file exists and `force` is not set; the file's directory must exist
 * (only the default output directory is created).
 */
export async function unlock(ctx: PaypubContext, idOrPrefix: string, out?: string, o: { force?: boolean } = {}): Promise<UnlockResult> {
  const sale = needSale(ctx, idOrPrefix);
  const m = sale.manifest;
  const { keys, missing } = collectKeys(m, ctx.store.keys(sale.id));
  if (!keys) throw new DeaddropError('CONFLICT', `the keys are not public yet: ${m.chunkCount - missing.length} of ${m.chunkCount} known`, { missing: missing.length });
  let chunks = ctx.store.chunks(sale.id);
  if (chunks.length !== m.chunkCount && sale.url) {
    chunks = await new SellerClient(sale.url, sale.id, { ...(ctx.fetch ? { fetch: ctx.fetch } : {}) }).chunks(m);
    ctx.store.putChunks(sale.id, chunks);
  }
  const plain = decryptContent(m, chunks, keys);
  const path = out ?? sale.outPath ?? defaultOutPath(ctx, sale.id);
  if (path === defaultOutPath(ctx, sale.id)) mkdirSync(unlockedDir(ctx.datadir), { recursive: true, mode: 0o700 });
  writeNewFile(path, plain, o);
  const at = Date.now();
  ctx.store.transaction(() => {
    ctx.store.setUnlocked(sale.id, path, at);
    ctx.store.event('paypub.unlocked', `paypub.unlocked:${sale.id}:${path}`, { id: sale.id, path, bytes: plain.length, at });
  });
  return { id: sale.id, path, bytes: plain.length, sha256: toHex(sha256(plain)), at };
}

export interface RefundItem {
  readonly pledge: string;
  readonly txid?: string;
  readonly fee?: bigint;
  readonly value?: bigint;
  readonly error?: string;
}

/** Own pledges not spent by anything still standing (a replaced claim or refund does not count). */
function unspentOwn(ctx: PaypubContext, sale: SaleRow): PledgeRow[] {
  return ctx.store.pledges(sale.id).filter((p) => {
    if (!p.own) return false;
    if (!p.spentBy) return true;
    const status = ctx.store.claim(p.spentBy)?.status ?? ctx.store.refund(p.spentBy)?.status;
    return status === 'replaced';
  });
}

/** Why `p` cannot be refunded at `tip`, or null. */
function refundBlocker(ctx: PaypubContext, sale: SaleRow, p: PledgeRow, tip: number): string | null {
  if (p.kind === 'pledge') {
    return refundDecision(sale.manifest, tip).ok ? null : `the deadline is height ${sale.manifest.deadlineHeight} (tip ${tip})`;
  }
  const offer = p.paymentHash ? ctx.store.privateOffer(p.paymentHash) : undefined;
  if (!offer) return 'unknown private offer';
  if (p.height === null) return 'the HTLC is not confirmed yet';
  const conf = tip - p.height + 1;
  return conf >= offer.offer.csvDelay ? null : `the HTLC needs ${offer.offer.csvDelay} confirmations (has ${conf})`;
}

function buildRefund(ctx: PaypubContext, sale: SaleRow, p: PledgeRow, dest: Uint8Array, feeRate: number): BuiltTx {
  const sk = ctx.keys.paypubKey(PAYPUB_BUYER, p.keyIndex as number).privateKey;
  if (p.kind === 'pledge') {
    return buildRefundTx({
      manifest: sale.manifest, sampled: (sale.reveal as SampleReveal).indices, buyerSecretKey: sk, destScript: dest, feeRate,
      pledge: { txid: p.txid, vout: p.vout, value: p.value, buyerKey: p.buyerKey, ...(p.r ? { r: p.r } : {}) },
    });
  }
  const offer = ctx.store.privateOffer(p.paymentHash as string);
  return buildCsvRefundTx({ manifest: sale.manifest, offer: offer!.offer, buyerSecretKey: sk, utxo: { txid: p.txid, vout: p.vout, value: p.value }, destScript: dest, feeRate });
}

/**
 * Refunds every own pledge (or HTLC) of the sale that can be refunded now. With `quiet` (the
 * daemon), pledges not refundable yet are skipped silently; otherwise, when none is refundable,
 * CONFLICT says why.
 */
export async function refund(ctx: PaypubContext, idOrPrefix: string, o: { feeRate?: number; quiet?: boolean } = {}): Promise<{ id: string; refunds: RefundItem[] }> {
  const sale = needSale(ctx, idOrPrefix, 'buyer');
  const tip = await tipHeight(ctx);
  const own = unspentOwn(ctx, sale);
  if (own.length === 0 && !o.quiet) throw new DeaddropError('CONFLICT', 'no own pledge of this sale is left to refund');
  const blockers = own.map((p) => refundBlocker(ctx, sale, p, tip));
  const due = own.filter((_, i) => blockers[i] === null);
  if (due.length === 0) {
    if (o.quiet) return { id: sale.id, refunds: [] };
    throw new DeaddropError('CONFLICT', `nothing to refund yet: ${blockers.filter((b): b is string => b !== null)[0] ?? 'no pledge'}`);
  }
  const rate = await ctx.feeRate(o.feeRate);
  const out: RefundItem[] = [];
  for (const p of due) {
    const key = `${p.txid}:${p.vout}`;
    const built = buildRefund(ctx, sale, p, await freshWalletScript(ctx), rate);
    const res = await ctx.chain.broadcast(built.raw);
    if (!res.accepted) {
      out.push({ pledge: key, error: res.reason });
      continue;
    }
    ctx.store.transaction(() => {
      ctx.store.insertRefund({ txid: built.txid, saleId: sale.id, pledge: key, raw: built.raw, own: true, fee: built.fee, status: 'mempool', seenAt: Date.now() });
      ctx.store.setSpent(p.txid, p.vout, { by: built.txid, kind: 'refund', height: null, block: null });
      ctx.store.event('paypub.refund.broadcast', `paypub.refund.broadcast:${built.txid}`, { id: sale.id, txid: built.txid, pledge: key, fee: built.fee.toString(), value: (p.value - built.fee).toString() });
    });
    out.push({ pledge: key, txid: built.txid, fee: built.fee, value: p.value - built.fee });
  }
  if (!o.quiet && out.every((r) => r.error)) throw new DeaddropError('REJECTED', `the node rejected the refund: ${out[0]?.error}`);
  return { id: sale.id, refunds: out };
}
