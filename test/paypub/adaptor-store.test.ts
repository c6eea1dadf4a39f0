import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAdaptorOffer } from '../../src/paypub/adaptor-sale.js';
import { AdaptorStore } from '../../src/paypub/adaptor-store.js';
import { PaypubStore, Sealer } from '../../src/paypub/store.js';
import { toHex } from '../../src/util/bytes.js';
import { expectCode } from '../support/errors.js';
import { ADAPTOR_VECTOR, adaptorVectorManifest } from '../support/adaptor-claim-vectors.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(secret: Uint8Array, dir = mkdtempSync(join(tmpdir(), 'dd-paypub-adaptor-store-'))): { store: PaypubStore; as: AdaptorStore; dir: string } {
  dirs.push(dir);
  const sealer = new Sealer(secret);
  const store = new PaypubStore(join(dir, 'paypub.db'), sealer);
  return { store, as: new AdaptorStore(store.db, sealer), dir };
}

describe('AdaptorStore', () => {
  it('seals the sale secret at rest: the file never holds t, another seed cannot open it', () => {
    const seed = new Uint8Array(randomBytes(32));
    const { store, as, dir } = open(seed);
    const { manifest } = adaptorVectorManifest();
    const id = toHex(manifest.hash);
    as.insertSale({ id, role: 'seller', manifest, sellerIndex: 0, secret: ADAPTOR_VECTOR.saleSecret, startHeight: 100 });
    expect(as.saleSecret(id)).toEqual(ADAPTOR_VECTOR.saleSecret);
    const row = as.sale(id);
    expect(row?.manifest.hash).toEqual(manifest.hash);
    expect(row?.startHeight).toBe(100);
    // Version 1 never sees a version 2 sale.
    expect(store.sale(id)).toBeUndefined();
    store.close();
    expect(Buffer.from(readFileSync(join(dir, 'paypub.db'))).includes(Buffer.from(ADAPTOR_VECTOR.saleSecret))).toBe(false);
    const other = open(new Uint8Array(randomBytes(32)), dir);
    expectCode(() => other.as.saleSecret(id), 'CONFLICT');
    other.store.close();
  });

  it('keeps pledges with their pre-signatures once per outpoint', () => {
    const { store, as } = open(new Uint8Array(randomBytes(32)));
    const { manifest } = adaptorVectorManifest();
    const id = toHex(manifest.hash);
    as.insertSale({ id, role: 'seller', manifest, sellerIndex: 0, secret: ADAPTOR_VECTOR.saleSecret, startHeight: 100 });
    const p = { txid: 'ab'.repeat(32), vout: 1, saleId: id, own: false, buyerKey: new Uint8Array(32).fill(7), value: 50_000n, script: new Uint8Array(34), presig: new Uint8Array(65).fill(9) };
    expect(as.insertPledge(p)).toBe(true);
    expect(as.insertPledge(p)).toBe(false);
    as.setPledgeHeight(p.txid, 1, 120);
    expect(as.pledges(id)).toMatchObject([{ txid: p.txid, vout: 1, value: 50_000n, height: 120, presig: p.presig, announced: false, spentBy: null }]);
    store.close();
  });
});

describe('parseAdaptorOffer', () => {
  it('takes paypub2:<id>@<url> and nothing else', () => {
    const id = 'cd'.repeat(32);
    expect(parseAdaptorOffer(`paypub2:${id}@http://127.0.0.1:8080/`)).toEqual({ id, url: 'http://127.0.0.1:8080' });
    for (const bad of ['', `paypub2:${id}`, `paypub2:${id.slice(2)}@http://x`, `paypub1:${id}@http://x`, `paypub2:${id}@ftp://x`]) expect(parseAdaptorOffer(bad)).toBeNull();
  });
});
