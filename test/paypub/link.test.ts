/** The offer string buyers are handed: round trip, damage, wrong network and bad URLs. */
import { describe, expect, it } from 'vitest';
import { decodeOfferLink, encodeOfferLink, normalizeSellerUrl, OFFER_PREFIX, saleId } from '../../src/paypub/link.js';
import { makeSale } from '../support/paypub-fixtures.js';

const anchorTxid = 'ab'.repeat(32);

describe('offer strings', () => {
  const sale = makeSale({ chunks: 16, sample: 4 });

  it('round-trips the manifest, the anchor and the URL', () => {
    const text = encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 1, url: 'http://127.0.0.1:4000/' });
    expect(text.startsWith(OFFER_PREFIX)).toBe(true);
    const back = decodeOfferLink(text, 'regtest');
    expect(saleId(back.manifest)).toBe(saleId(sale.manifest));
    expect(back).toMatchObject({ anchorTxid, anchorVout: 1, url: 'http://127.0.0.1:4000' });
  });

  it('rejects a damaged string, another network, another prefix and trailing bytes', () => {
    const text = encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: 'https://seller.example' });
    const i = text.length - 10;
    const damaged = text.slice(0, i) + (text[i] === 'A' ? 'B' : 'A') + text.slice(i + 1);
    expect(() => decodeOfferLink(damaged)).toThrow(/checksum/);
    expect(() => decodeOfferLink(text, 'mainnet')).toThrow(/regtest, not mainnet/);
    expect(() => decodeOfferLink(`x${text}`)).toThrow(/starts with/);
    expect(() => decodeOfferLink(`${OFFER_PREFIX}!!!`)).toThrow(/base64url/);
  });

  it('accepts only plain http(s) URLs', () => {
    expect(normalizeSellerUrl('https://a.example/x/')).toBe('https://a.example/x');
    for (const bad of ['ftp://a.example', 'http://u:p@a.example', 'http://a.example/?q=1', 'not a url', `http://a.example/${'x'.repeat(600)}`]) {
      expect(() => normalizeSellerUrl(bad), bad).toThrow();
    }
    expect(() => encodeOfferLink({ manifest: sale.manifest, anchorTxid, anchorVout: 0, url: 'file:///etc/passwd' })).toThrow(/http or https/);
  });
});
