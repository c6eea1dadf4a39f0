/**
 * Version 2 storage bundles (src/paypub/adaptor-bundle.ts): round trip, and every malformed
 * bundle a stranger's storage could hand a buyer refused with PROTOCOL naming the problem.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import {
  ADAPTOR_BUNDLE_VERSION, decodeAdaptorBundle, encodeAdaptorBundle, formatOfferStorage, splitOfferStorage, type AdaptorBundle, type OfferStorage,
} from '../../src/paypub/adaptor-bundle.js';
import { parseAdaptorOffer } from '../../src/paypub/adaptor-sale.js';
import { formatOfferMailbox } from '../../src/paypub/presig-mail.js';
import { createAdaptorManifest, createAdaptorReveal, encodeAdaptorReveal } from '../../src/paypub/adaptor-manifest.js';
import { decodeBundle, encodeBundle } from '../../src/paypub/bundle.js';
import { deriveChunkKeys, newSaleSecret } from '../../src/paypub/chunk-keys.js';
import { encryptContentWithKeys } from '../../src/paypub/content.js';
import { toHex } from '../../src/util/bytes.js';
import { expectCode } from '../support/errors.js';
import { makeSale } from '../support/paypub-fixtures.js';

function bundle(fileLength = 32 * 5 + 3): { b: AdaptorBundle; id: string } {
  const t = newSaleSecret();
  const sk = schnorr.utils.randomSecretKey();
  const contentId = randomBytes(32);
  const content = encryptContentWithKeys(randomBytes(fileLength), deriveChunkKeys(t, contentId, 8), contentId);
  const manifest = createAdaptorManifest({
    content, saleSecret: t, network: 'regtest', price: 50_000n, sampleSize: 2, beaconHeight: 110, deadlineHeight: 150, sellerSecretKey: sk,
  });
  const reveal = encodeAdaptorReveal(createAdaptorReveal(manifest, toHex(randomBytes(32)), t, sk));
  return {
    id: toHex(manifest.hash),
    b: { manifest, anchorTxid: toHex(randomBytes(32)), anchorVout: 1, anchorBlock: toHex(randomBytes(32)), reveal, ciphertexts: [...content.ciphertexts] },
  };
}

function expectProblem(f: () => unknown, text: RegExp): void {
  expectCode(f, 'PROTOCOL', text);
}

describe('version 2 storage bundle', () => {
  it('round-trips: manifest, anchor, reveal and every ciphertext', () => {
    const { b, id } = bundle();
    const bytes = encodeAdaptorBundle(b);
    expect(bytes[0]).toBe(ADAPTOR_BUNDLE_VERSION);
    const d = decodeAdaptorBundle(id, bytes, 'regtest');
    expect(d.manifest).toEqual(b.manifest);
    expect(d).toMatchObject({ anchorTxid: b.anchorTxid, anchorVout: 1, anchorBlock: b.anchorBlock });
    expect(d.reveal).toEqual(b.reveal);
    expect(d.ciphertexts).toEqual(b.ciphertexts);
  });

  it('refuses a truncated bundle, naming where', () => {
    const { b, id } = bundle();
    const bytes = encodeAdaptorBundle(b);
    expectProblem(() => decodeAdaptorBundle(id, bytes.subarray(0, bytes.length - 1)), /truncated at chunk 7/);
    expectProblem(() => decodeAdaptorBundle(id, bytes.subarray(0, 40)), /storage bundle: .*truncated/);
    expectProblem(() => decodeAdaptorBundle(id, new Uint8Array(0)), /unsupported version/);
  });

  it('refuses the bundle of another sale (manifest hash is not the sale id)', () => {
    const { b } = bundle();
    const other = bundle();
    expectProblem(() => decodeAdaptorBundle(other.id, encodeAdaptorBundle(b)), /another manifest/);
  });

  it('refuses a bundle whose reveal is for another manifest', () => {
    const { b, id } = bundle();
    const other = bundle();
    const bytes = encodeAdaptorBundle(b);
    // Swap the reveal bytes in place (same length: same sample size): version, manifest, anchor (68), u16 length.
    const at = 1 + 4 + encodedManifestLength(bytes) + 68 + 2;
    expect(other.b.reveal.length).toBe(b.reveal.length);
    const swapped = bytes.slice();
    swapped.set(other.b.reveal, at);
    expectProblem(() => decodeAdaptorBundle(id, swapped), /reveal is for another manifest/);
  });

  it('refuses a flipped byte in a chunk, in the manifest, and another network', () => {
    const { b, id } = bundle();
    const bytes = encodeAdaptorBundle(b);
    const flipped = bytes.slice();
    flipped[flipped.length - 5] = (flipped[flipped.length - 5] as number) ^ 1;
    expectProblem(() => decodeAdaptorBundle(id, flipped), /chunk 7 does not match the manifest/);
    const badManifest = bytes.slice();
    badManifest[1 + 4 + 20] = (badManifest[1 + 4 + 20] as number) ^ 1;
    expectProblem(() => decodeAdaptorBundle(id, badManifest), /storage bundle: manifest/);
    expectProblem(() => decodeAdaptorBundle(id, bytes, 'mainnet'), /storage bundle: /);
  });

  it('refuses trailing bytes', () => {
    const { b, id } = bundle();
    const bytes = encodeAdaptorBundle(b);
    const longer = new Uint8Array(bytes.length + 3);
    longer.set(bytes);
    expectProblem(() => decodeAdaptorBundle(id, longer), /3 trailing bytes/);
  });

  it('refuses a wrong version, and the two bundle versions never decode as each other', () => {
    const { b, id } = bundle();
    const bytes = encodeAdaptorBundle(b);
    const v9 = bytes.slice();
    v9[0] = 9;
    expectProblem(() => decodeAdaptorBundle(id, v9), /unsupported version/);
    const v1 = makeSale({ chunks: 8, sample: 2 });
    expectProblem(() => decodeAdaptorBundle(toHex(v1.manifest.hash), encodeBundle(v1.manifest, v1.content.ciphertexts)), /unsupported version/);
    expectProblem(() => decodeBundle(v1.manifest, bytes), /unsupported version/);
  });

  it('the seller cannot encode an inconsistent bundle', () => {
    const { b } = bundle();
    expect(() => encodeAdaptorBundle({ ...b, ciphertexts: b.ciphertexts.slice(1) })).toThrow(RangeError);
    expect(() => encodeAdaptorBundle({ ...b, reveal: bundle().b.reveal })).toThrow(/another manifest/);
  });
});

function encodedManifestLength(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset + 1, 4).getUint32(0, false);
}

describe('version 2 offers naming the storage bundle', () => {
  const id = toHex(randomBytes(32));
  const storage: OfferStorage = {
    cap: 'dd-chk:r:abc~def@ghi',
    servers: [{ id: randomBytes(32), url: 'ws://127.0.0.1:4001' }, { id: randomBytes(32), url: 'wss://s.example/x', provider: randomBytes(32) }],
  };
  const box = { provider: randomBytes(32), mailbox: randomBytes(32) };

  it('round-trips the ~store: part (capability, servers, providers), with or without URL and mailbox', () => {
    const part = formatOfferStorage(storage);
    expect(part).toMatch(/^~store:[A-Za-z0-9_-]+$/);
    expect(splitOfferStorage(`paypub2:${id}${part}`)).toEqual({ rest: `paypub2:${id}`, storage });
    expect(parseAdaptorOffer(`paypub2:${id}${part}`)).toEqual({ id, url: null, storage });
    expect(parseAdaptorOffer(`paypub2:${id}@http://127.0.0.1:8080/${part}${formatOfferMailbox(box)}`)).toEqual({ id, url: 'http://127.0.0.1:8080', storage, mix: box });
    expect(parseAdaptorOffer(`paypub2:${id}${formatOfferStorage({ cap: 'c', servers: [] })}`)).toEqual({ id, url: null, storage: { cap: 'c', servers: [] } });
  });

  it('old offers parse as before; an offer with neither URL nor storage is none', () => {
    expect(parseAdaptorOffer(`paypub2:${id}@http://127.0.0.1:8080`)).toEqual({ id, url: 'http://127.0.0.1:8080' });
    expect(parseAdaptorOffer(`paypub2:${id}${formatOfferMailbox(box)}`)).toBeNull();
    expect(parseAdaptorOffer(`paypub2:${id}`)).toBeNull();
  });

  it('refuses a malformed ~store: part with BAD_INPUT', () => {
    const part = formatOfferStorage(storage);
    expectCode(() => parseAdaptorOffer(`paypub2:${id}${part.slice(0, -4)}`), 'BAD_INPUT', /~store:/);
    expectCode(() => parseAdaptorOffer(`paypub2:${id}~store:`), 'BAD_INPUT', /~store:/);
    expectCode(() => parseAdaptorOffer(`paypub2:${id}~store:a+b`), 'BAD_INPUT', /~store:/);
    expectCode(() => parseAdaptorOffer(`paypub2:${id}${part}AAAA`), 'BAD_INPUT', /trailing/);
    expectCode(() => parseAdaptorOffer(`paypub2:${id}~store:AAA`), 'BAD_INPUT', /capability/);
    expect(() => formatOfferStorage({ cap: 'a b', servers: [] })).toThrow(/capability/);
    expect(() => formatOfferStorage({ cap: 'c', servers: [{ id: randomBytes(32), url: 'http://x' }] })).toThrow(/ws/);
  });
});
