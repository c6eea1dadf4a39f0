/**
 * PayPub over storage, the pure parts: offer strings v2 (URL and/or storage capability, anchor
 * block, sample reveal), the storage bundle, and pledge hints; each with bad input from strangers.
 */
import { base64urlnopad } from '@scure/base';
import { describe, expect, it } from 'vitest';
import { decodeBundle, encodeBundle } from '../../src/paypub/bundle.js';
import { noChunksError } from '../../src/paypub/buyer.js';
import { formatTahoeReadCap } from '../../src/node/storage/tahoe-cap.js';
import { DeaddropError } from '../../src/util/errors.js';
import { Writer, sha256 } from '../../src/paypub/bytes.js';
import { findHintedPledges, hintBuyerKey, pledgeHint } from '../../src/paypub/hint.js';
import { decodeOfferLink, encodeOfferLink, OFFER_PREFIX, saleId } from '../../src/paypub/link.js';
import { encodeManifest } from '../../src/paypub/manifest.js';
import { createReveal, encodeReveal } from '../../src/paypub/sample.js';
import { pledgeOutput } from '../../src/paypub/scripts.js';
import { fromHex } from '../../src/util/bytes.js';
import { expectCode } from '../support/errors.js';
import { keypair, makeSale } from '../support/paypub-fixtures.js';

const anchorTxid = 'ab'.repeat(32);
const anchorBlock = 'cd'.repeat(32);
const cap = 'dd-chk:r:aaaa:bbbb:3:10:1234';

/** An offer string from raw body bytes (with a valid checksum), for layouts the encoder never writes. */
function rawOffer(body: Uint8Array): string {
  return OFFER_PREFIX + base64urlnopad.encode(new Writer().bytes(body).bytes(sha256(body).slice(0, 4)).finish());
}

describe('offer strings v2', () => {
  const sale = makeSale({ chunks: 16, sample: 4 });
  const reveal = createReveal(sale.manifest, sale.beaconHash, sale.content.keys, sale.sellerSk);
  const head = (version: number, flags: number): Writer => {
    const m = encodeManifest(sale.manifest);
    return new Writer().u8(version).u32(m.length).bytes(m).bytes(fromHex(anchorTxid).reverse()).u32(0).u8(flags);
  };

  it('round-trips a capability alone, and with URL, anchor block and reveal', () => {
    const only = decodeOfferLink(encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 2, url: null, storageCap: cap }), 'regtest');
    expect(only).toMatchObject({ anchorTxid, anchorVout: 2, url: null, storageCap: cap, anchorBlock: null, reveal: null });
    expect(saleId(only.manifest)).toBe(saleId(sale.manifest));
    const all = decodeOfferLink(encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 1, url: 'http://127.0.0.1:9/', storageCap: cap, anchorBlock, reveal }));
    expect(all).toMatchObject({ url: 'http://127.0.0.1:9', storageCap: cap, anchorBlock });
    expect(encodeReveal(all.reveal!)).toEqual(encodeReveal(reveal));
  });

  it('names up to 16 storage servers, each a 32-byte key and a plain ws(s) URL, only with a capability', () => {
    const servers = [{ id: new Uint8Array(32).fill(1), url: 'ws://127.0.0.1:7001' }, { id: new Uint8Array(32).fill(2), url: 'wss://store.example/x' }];
    const back = decodeOfferLink(encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: null, storageCap: cap, storageServers: servers }));
    expect(back.storageServers).toEqual(servers);
    const many = Array.from({ length: 20 }, (_, i) => ({ id: new Uint8Array(32).fill(i), url: `ws://127.0.0.1:${7000 + i}` }));
    expect(decodeOfferLink(encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: null, storageCap: cap, storageServers: many })).storageServers).toHaveLength(16);
    for (const url of ['http://127.0.0.1:1', 'ws://u:p@127.0.0.1:1', 'ws://127.0.0.1:1/?q', `ws://a.example/${'x'.repeat(300)}`, 'not a url']) {
      expectCode(() => encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: null, storageCap: cap, storageServers: [{ id: new Uint8Array(32), url }] }), 'BAD_INPUT', /URL/);
    }
    expectCode(() => encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: 'http://127.0.0.1:1', storageServers: servers }), 'BAD_INPUT', /without a storage capability/);
    const c = new TextEncoder().encode(cap);
    const u = new TextEncoder().encode('ws://127.0.0.1:7001');
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2 | 16).u16(c.length).bytes(c).u8(0).finish())), 'PROTOCOL', /1\.\.16 storage servers, not 0/);
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2 | 16).u16(c.length).bytes(c).u8(17).finish())), 'PROTOCOL', /not 17/);
    expectCode(() => decodeOfferLink(rawOffer(head(2, 1 | 16).u16(u.length).bytes(new TextEncoder().encode('http://127.0.0.1:7001')).u8(1).bytes(new Uint8Array(32)).u16(u.length).bytes(u).finish())), 'PROTOCOL', /without a storage capability/);
    const h = new TextEncoder().encode('http://127.0.0.1:7001');
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2 | 16).u16(c.length).bytes(c).u8(1).bytes(new Uint8Array(32)).u16(h.length).bytes(h).finish())), 'PROTOCOL', /ws:\/\/ or wss:\/\//);
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2 | 16).u16(c.length).bytes(c).u8(1).bytes(new Uint8Array(31)).finish())), 'PROTOCOL', /truncated/);
  });

  it('carries a Tahoe-LAFS read capability as it is, with no servers (the buyer\'s own Tahoe client finds them)', () => {
    // The longest CHK shape: 1-of-256 shares, a 16-digit size.
    const tahoe = formatTahoeReadCap({ tahoeCap: `URI:CHK:${'b'.repeat(25)}q:${'c'.repeat(51)}q:1:256:9007199254740991`, key: new Uint8Array(32).fill(7) });
    const back = decodeOfferLink(encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: 'http://127.0.0.1:9', storageCap: tahoe, anchorBlock, reveal }), 'regtest');
    expect(back).toMatchObject({ storageCap: tahoe, storageServers: [], anchorBlock });
  });

  it('still writes v1 when it says only a URL, and reads v1', () => {
    const text = encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: 'http://127.0.0.1:4000' });
    expect(base64urlnopad.decode(text.slice(OFFER_PREFIX.length))[0]).toBe(1);
    expect(decodeOfferLink(text)).toMatchObject({ url: 'http://127.0.0.1:4000', storageCap: null, reveal: null });
  });

  it('refuses an offer with neither URL nor capability, and bad capabilities', () => {
    expect(() => encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: null })).toThrow(/URL or a storage capability/);
    for (const bad of ['', 'has space', 'x'.repeat(1025), 'caf\u00e9']) {
      expectCode(() => encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: null, storageCap: bad }), 'BAD_INPUT', /visible ASCII/);
    }
    expectCode(() => decodeOfferLink(rawOffer(head(2, 0).finish())), 'PROTOCOL', /neither a seller URL nor a storage capability/);
    const spaced = new TextEncoder().encode('dd-chk:r: x');
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2).u16(spaced.length).bytes(spaced).finish())), 'PROTOCOL', /visible ASCII/);
    const latin = Uint8Array.of(0xff, 0xfe);
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2).u16(2).bytes(latin).finish())), 'PROTOCOL', /not UTF-8/);
  });

  it('refuses unknown versions and flags, truncation, trailing bytes and a reveal of another sale', () => {
    const c = new TextEncoder().encode(cap);
    expectCode(() => decodeOfferLink(rawOffer(head(3, 2).u16(c.length).bytes(c).finish())), 'PROTOCOL', /unsupported version 3/);
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2 | 32).u16(c.length).bytes(c).finish())), 'PROTOCOL', /unknown flags/);
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2 | 4).u16(c.length).bytes(c).bytes(new Uint8Array(31)).finish())), 'PROTOCOL', /truncated/);
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2).u16(c.length).bytes(c).u8(0).finish())), 'PROTOCOL', /trailing/);
    const other = makeSale({ chunks: 16, sample: 4 });
    const foreign = encodeReveal(createReveal(other.manifest, other.beaconHash, other.content.keys, other.sellerSk));
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2 | 8).u16(c.length).bytes(c).u16(foreign.length).bytes(foreign).finish())), 'PROTOCOL', /another manifest/);
    expectCode(() => decodeOfferLink(rawOffer(head(2, 2 | 8).u16(c.length).bytes(c).u16(3).bytes(Uint8Array.of(1, 2, 3)).finish())), 'PROTOCOL', /sample reveal/);
  });
});

describe('storage bundle', () => {
  const sale = makeSale({ chunks: 8, sample: 2, size: 1003 });
  const cts = sale.content.ciphertexts;

  it('round-trips every ciphertext against the manifest', () => {
    const b = encodeBundle(sale.manifest, cts);
    expect(b.length).toBe(1 + encodeManifest(sale.manifest).length + cts.reduce((n, c) => n + c.length, 0));
    expect(decodeBundle(sale.manifest, b)).toEqual(cts);
  });

  it('refuses another version, another manifest, a changed or swapped chunk, truncation and trailing bytes', () => {
    const b = encodeBundle(sale.manifest, cts);
    expectCode(() => decodeBundle(sale.manifest, Uint8Array.of(2, ...b.subarray(1))), 'PROTOCOL', /version/);
    expectCode(() => decodeBundle(sale.manifest, new Uint8Array(0)), 'PROTOCOL', /version/);
    expectCode(() => decodeBundle(makeSale({ chunks: 8, sample: 2, size: 1003 }).manifest, b), 'PROTOCOL', /another manifest/);
    const flipped = b.slice();
    flipped[b.length - 1]! ^= 1;
    expectCode(() => decodeBundle(sale.manifest, flipped), 'PROTOCOL', /chunk 7 does not match/);
    // Chunks 0 and 1 have the same length (1003 = 8·125 + 3: the first three hold 126 bytes): swap them.
    const swapped = encodeBundle(sale.manifest, cts).slice();
    const off = 1 + encodeManifest(sale.manifest).length;
    swapped.set(cts[1]!, off);
    swapped.set(cts[0]!, off + cts[0]!.length);
    expectCode(() => decodeBundle(sale.manifest, swapped), 'PROTOCOL', /chunk 0 does not match/);
    expectCode(() => decodeBundle(sale.manifest, b.subarray(0, b.length - 1)), 'PROTOCOL', /truncated at chunk 7/);
    expectCode(() => decodeBundle(sale.manifest, Uint8Array.of(...b, 0)), 'PROTOCOL', /1 trailing bytes/);
    expect(() => encodeBundle(sale.manifest, cts.slice(1))).toThrow(RangeError);
    expect(() => encodeBundle(sale.manifest, [cts[1]!, cts[0]!, ...cts.slice(2)])).toThrow(/ciphertext 0/);
  });
});

describe('pledge hints', () => {
  const sale = makeSale({ chunks: 16, sample: 4 });
  const tx = (outputs: { script: Uint8Array; value: bigint }[]) => ({ outputs });
  const hintScript = (payload: Uint8Array) => Uint8Array.of(0x6a, 0x20, ...payload);

  it('masks the buyer key under the manifest hash, and the seller finds the pledge by it', () => {
    const buyer = keypair().pk;
    const hint = pledgeHint(sale.manifest, buyer);
    expect(hint).not.toEqual(buyer);
    expect(hintBuyerKey(sale.manifest, hint)).toEqual(buyer);
    expect(hintBuyerKey(makeSale({ chunks: 16, sample: 4 }).manifest, hint)).not.toEqual(buyer);
    const script = pledgeOutput(sale.manifest, sale.sampled, { buyerKey: buyer }).script;
    const found = findHintedPledges(sale.manifest, sale.sampled, tx([{ script: Uint8Array.of(0x51, 0x20, ...keypair().pk), value: 90_000n }, { script, value: 50_000n }, { script: hintScript(hint), value: 0n }]));
    expect(found).toEqual([{ vout: 1, buyerKey: buyer, value: 50_000n, script }]);
  });

  it('finds nothing for a hint of another key or sale, a pledge below the minimum, junk or no hint', () => {
    const buyer = keypair().pk;
    const script = pledgeOutput(sale.manifest, sale.sampled, { buyerKey: buyer }).script;
    const none = (outputs: { script: Uint8Array; value: bigint }[]) => expect(findHintedPledges(sale.manifest, sale.sampled, tx(outputs))).toEqual([]);
    none([{ script, value: 50_000n }]);
    none([{ script, value: 50_000n }, { script: hintScript(pledgeHint(sale.manifest, keypair().pk)), value: 0n }]);
    none([{ script, value: 50_000n }, { script: hintScript(pledgeHint(makeSale({ chunks: 16, sample: 4 }).manifest, buyer)), value: 0n }]);
    none([{ script, value: sale.manifest.minPledge - 1n }, { script: hintScript(pledgeHint(sale.manifest, buyer)), value: 0n }]);
    // A payload that unmasks to no curve point, a short OP_RETURN, and a hint with no taproot output.
    const offCurve = pledgeHint(sale.manifest, new Uint8Array(32).fill(0xff));
    none([{ script, value: 50_000n }, { script: hintScript(offCurve), value: 0n }, { script: Uint8Array.of(0x6a, 0x01, 0x00), value: 0n }]);
    none([{ script: hintScript(pledgeHint(sale.manifest, buyer)), value: 0n }]);
    expect(() => pledgeHint(sale.manifest, new Uint8Array(31))).toThrow(TypeError);
    expectCode(() => hintBuyerKey(sale.manifest, new Uint8Array(33)), 'PROTOCOL');
  });
});

describe('a buyer who gets the chunks from neither storage nor the seller', () => {
  const sellerDown = DeaddropError.unreachable('the seller', 'fetch failed');

  it('is told what the storage side needs, with its code, and that the seller did not answer', () => {
    const needsTahoe = new DeaddropError('UNSUPPORTED', 'this file is on a Tahoe-LAFS grid … run the daemon with --storage tahoe:<url>', { reason: 'needs-tahoe' });
    const e = noChunksError(needsTahoe, sellerDown) as DeaddropError;
    expect(e).toBeInstanceOf(DeaddropError);
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.details).toEqual({ reason: 'needs-tahoe' });
    expect(e.message).toMatch(/^the offer's chunks could not be read from storage: this file is on a Tahoe-LAFS grid .*--storage tahoe:<url>; the seller's API did not serve them either \(cannot reach the seller: fetch failed\)$/);
  });

  it('is told that no storage runs here when none does', () => {
    const e = noChunksError(null, sellerDown) as DeaddropError;
    expect(e.code).toBe('NOT_INITIALIZED');
    expect(e.message).toMatch(/no storage runs here: start the daemon .*; the seller's API did not serve them either/);
  });

  it('gets the seller\'s error when the storage failure was not a coded one', () => {
    expect(noChunksError(new TypeError('bug'), sellerDown)).toBe(sellerDown);
  });
});
