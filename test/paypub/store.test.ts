/** paypub.db: secrets sealed at rest under the wallet seed, index allocation, reorg undo, the outbox. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { saleId } from '../../src/paypub/link.js';
import { claimBumpRate, MAX_CLAIM_FEE_RATE } from '../../src/paypub/seller.js';
import { PaypubStore, Sealer } from '../../src/paypub/store.js';
import { makeSale } from '../support/paypub-fixtures.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(secret: Uint8Array, dir = mkdtempSync(join(tmpdir(), 'dd-paypub-store-'))): { store: PaypubStore; dir: string } {
  dirs.push(dir);
  return { store: new PaypubStore(join(dir, 'paypub.db'), new Sealer(secret)), dir };
}

describe('PaypubStore', () => {
  it('seals chunk keys at rest: the file never holds them, another seed cannot open them', () => {
    const secret = new Uint8Array(randomBytes(32));
    const { store, dir } = open(secret);
    const sale = makeSale({ chunks: 8, sample: 2 });
    const id = saleId(sale.manifest);
    store.insertSale({ id, role: 'seller', manifest: sale.manifest, sellerIndex: 0 });
    store.addKeys(id, new Map(sale.content.keys.map((k, i) => [i, k])), 'own');
    expect(store.keys(id).get(3)).toEqual(sale.content.keys[3]);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    store.close();
    const file = readFileSync(join(dir, 'paypub.db'));
    for (const k of sale.content.keys) expect(file.includes(Buffer.from(k))).toBe(false);
    const other = open(new Uint8Array(randomBytes(32)), dir).store;
    expect(() => other.keys(id)).toThrow(/does not open with this wallet's seed/);
    other.close();
  });

  it('hands out each key index once and resolves id prefixes', () => {
    const { store } = open(new Uint8Array(randomBytes(32)));
    expect([store.allocIndex('buyer'), store.allocIndex('buyer'), store.allocIndex('seller'), store.allocIndex('buyer')]).toEqual([0, 1, 0, 2]);
    const sale = makeSale({ chunks: 4, sample: 1 });
    const id = saleId(sale.manifest);
    store.insertSale({ id, role: 'buyer', manifest: sale.manifest });
    expect(store.resolveId(id.slice(0, 10))).toBe(id);
    expect(() => store.resolveId('zz')).toThrow(/hex/);
    expect(() => store.resolveId('00000000')).toThrow(/no PayPub sale/);
    store.close();
  });

  it('keeps each event id once, in order', () => {
    const { store } = open(new Uint8Array(randomBytes(32)));
    store.event('paypub.a', 'x', { n: 1 });
    store.event('paypub.a', 'x', { n: 2 });
    store.event('paypub.b', 'y', {});
    expect(store.eventsAfter(0).map((e) => [e.id, e.data])).toEqual([['x', { n: 1 }], ['y', {}]]);
    store.close();
  });
});

describe('a claim seen by the chain watch before the seller recorded it', () => {
  // Bitcoin Core's ZMQ hands the seller daemon's watch (another process on the same paypub.db)
  // the claim within ~30 ms of `paypub claim` broadcasting it, before that command writes its row.
  it('stays the seller\'s own claim with its fee and broadcast height (what a bump needs to count its pledges)', () => {
    const secret = new Uint8Array(randomBytes(32));
    const { store: cli, dir } = open(secret);
    const daemon = open(secret, dir).store;
    const sale = makeSale({ chunks: 8, sample: 2 });
    const id = saleId(sale.manifest);
    cli.insertSale({ id, role: 'seller', manifest: sale.manifest, sellerIndex: 0 });
    const txid = 'ab'.repeat(32);
    const raw = new Uint8Array(randomBytes(200));
    const inputs = [`${'01'.repeat(32)}:0`, `${'02'.repeat(32)}:1`];
    // The watch (daemon) first: it cannot tell whose claim it is.
    daemon.insertClaim({ txid, saleId: id, raw, own: false, inputs, status: 'mempool', seenAt: 1 });
    // Then the command that broadcast it.
    cli.insertClaim({ txid, saleId: id, raw, own: true, fee: 1234n, feeRate: 2, inputs, status: 'mempool', seenAt: 2, broadcastHeight: 110, payoutScript: Uint8Array.of(0x51) });
    const row = cli.claim(txid);
    expect(row).toMatchObject({ own: true, fee: 1234n, feeRate: 2, status: 'mempool', broadcastHeight: 110 });
    // And the other way round, a confirmation the watch recorded is kept.
    daemon.setClaimStatus(txid, { status: 'confirmed', height: 111, blockHash: 'cd'.repeat(32) });
    cli.insertClaim({ txid, saleId: id, raw, own: true, fee: 1234n, feeRate: 2, inputs, status: 'mempool', seenAt: 3, broadcastHeight: 110 });
    expect(cli.claim(txid)).toMatchObject({ own: true, status: 'confirmed', height: 111 });
    // The watch seeing it again changes nothing.
    daemon.insertClaim({ txid, saleId: id, raw, own: false, inputs, status: 'mempool', seenAt: 4 });
    expect(daemon.claim(txid)).toMatchObject({ own: true, fee: 1234n, status: 'confirmed' });
    daemon.close();
    cli.close();
  });

  it('moves the outbox cursor of an older database (a meta key) into the outbox, once', () => {
    const secret = new Uint8Array(randomBytes(32));
    const { store, dir } = open(secret);
    for (const n of [1, 2, 3]) store.event('paypub.test', `paypub.test:${n}`, { n });
    store.setMeta('outbox_delivered', '2');
    store.close();
    const again = open(secret, dir).store;
    expect(again.outbox.deliveredSeq('bus')).toBe(2);
    expect(again.meta('outbox_delivered')).toBeUndefined();
    const seen: string[] = [];
    again.outbox.deliver('bus', (e) => seen.push(e.id));
    expect(seen).toEqual(['paypub.test:3']);
    again.close();
  });
});

describe('claim fee bumps', () => {
  it('bumps a claim unconfirmed for two blocks, or when forced or asked; never past the cap', () => {
    const claim = { feeRate: 2, broadcastHeight: 100 };
    expect(claimBumpRate(claim, 101, { floor: 1, force: false })).toBeNull();
    expect(claimBumpRate(claim, 102, { floor: 1, force: false })).toBe(3);
    expect(claimBumpRate(claim, 101, { floor: 1, force: true })).toBe(3);
    expect(claimBumpRate(claim, 101, { floor: 1, force: false, explicit: 7 })).toBe(7);
    expect(claimBumpRate({ feeRate: 900, broadcastHeight: 1 }, 10, { floor: 1, force: false })).toBe(MAX_CLAIM_FEE_RATE);
  });
});
