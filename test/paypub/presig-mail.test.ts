import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseAdaptorOffer } from '../../src/paypub/adaptor-sale.js';
import { KIND_PAYPUB_PRESIG, decodePresigMail, encodePresigMail, formatOfferMailbox, splitOfferMailbox } from '../../src/paypub/presig-mail.js';
import { PRESIG_ANNOUNCEMENT_BYTES } from '../../src/paypub/adaptor-pledges.js';
import { toHex } from '../../src/util/bytes.js';

describe('pre-signature announcements by mail', () => {
  const announcement = new Uint8Array(randomBytes(PRESIG_ANNOUNCEMENT_BYTES));
  const block = toHex(randomBytes(32));

  it('round-trips with and without the block', () => {
    expect(decodePresigMail(encodePresigMail(announcement))).toEqual({ announcement });
    const withBlock = encodePresigMail(announcement, block);
    expect(withBlock[0]).toBe(KIND_PAYPUB_PRESIG);
    expect(withBlock.length).toBe(2 + 166 + 32);
    expect(decodePresigMail(withBlock)).toEqual({ announcement, blockHash: block });
  });

  it('refuses to encode what is not an announcement', () => {
    expect(() => encodePresigMail(announcement.subarray(1))).toThrow(RangeError);
    expect(() => encodePresigMail(announcement, 'ab')).toThrow(RangeError);
  });

  it('returns null, never throws, on malformed mail', () => {
    const good = encodePresigMail(announcement, block);
    const bad = [
      new Uint8Array(0), new Uint8Array([KIND_PAYPUB_PRESIG]), good.subarray(0, good.length - 1), new Uint8Array([...good, 0]),
      Uint8Array.from(good, (b, i) => (i === 0 ? 0x51 : b)), Uint8Array.from(good, (b, i) => (i === 1 ? 3 : b)),
      Uint8Array.from(encodePresigMail(announcement), (b, i) => (i === 1 ? 1 : b)),
    ];
    for (const b of bad) expect(decodePresigMail(b)).toBeNull();
    for (let i = 0; i < 200; i++) expect(() => decodePresigMail(new Uint8Array(randomBytes(i % 210)))).not.toThrow();
  });

  it('offers name the mailbox after the URL', () => {
    const id = toHex(randomBytes(32));
    const box = { provider: new Uint8Array(randomBytes(32)), mailbox: new Uint8Array(randomBytes(32)) };
    const offer = `paypub2:${id}@http://127.0.0.1:8080${formatOfferMailbox(box)}`;
    expect(splitOfferMailbox(offer)).toEqual({ rest: `paypub2:${id}@http://127.0.0.1:8080`, mix: box });
    expect(parseAdaptorOffer(offer)).toEqual({ id, url: 'http://127.0.0.1:8080', mix: box });
    // Without the mailbox the offer parses as before; the mailbox alone is not an offer (the bundle needs a URL).
    expect(parseAdaptorOffer(`paypub2:${id}@http://127.0.0.1:8080`)).toEqual({ id, url: 'http://127.0.0.1:8080' });
    expect(parseAdaptorOffer(`paypub2:${id}${formatOfferMailbox(box)}`)).toBeNull();
    expect(parseAdaptorOffer(`${offer.slice(0, -1)}`)).toBeNull();
    expect(parseAdaptorOffer(`paypub2:${id}@http://x?y=1${formatOfferMailbox(box)}`)).toBeNull();
  });
});
