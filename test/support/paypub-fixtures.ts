/** Shared builders for the PayPub tests: a small sale with known secrets. */
import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { encryptContent, type EncryptedContent } from '../../src/paypub/content.js';
import { createManifest, type Manifest } from '../../src/paypub/manifest.js';
import type { PaypubMode } from '../../src/paypub/params.js';
import { sampleIndices } from '../../src/paypub/sample.js';
import type { Network } from '../../src/util/network.js';

export interface Sale {
  readonly plaintext: Uint8Array;
  readonly content: EncryptedContent;
  readonly manifest: Manifest;
  readonly sellerSk: Uint8Array;
  readonly beaconHash: string;
  readonly sampled: number[];
}

export interface SaleOptions {
  chunks?: number;
  sample?: number;
  size?: number;
  mode?: PaypubMode;
  network?: Network;
  beaconHeight?: number;
  deadlineHeight?: number;
  price?: bigint;
  threshold?: bigint;
  minPledge?: bigint;
  beaconHash?: string;
  sellerSk?: Uint8Array;
}

export function makeSale(o: SaleOptions = {}): Sale {
  const chunks = o.chunks ?? 32;
  const plaintext = new Uint8Array(nodeRandomBytes(o.size ?? chunks * 50 + 7));
  const content = encryptContent(plaintext, chunks);
  const sellerSk = o.sellerSk ?? schnorr.utils.randomSecretKey();
  const beaconHeight = o.beaconHeight ?? 110;
  const mode = o.mode ?? 'public';
  const price = o.price ?? 50_000n;
  const manifest = createManifest({
    content,
    network: o.network ?? 'regtest',
    mode,
    price,
    threshold: o.threshold ?? (mode === 'private' ? price : 100_000n),
    minPledge: o.minPledge ?? (mode === 'private' ? price : 10_000n),
    sampleSize: o.sample ?? 8,
    beaconHeight,
    deadlineHeight: o.deadlineHeight ?? beaconHeight + 40,
    sellerSecretKey: sellerSk,
  });
  const beaconHash = o.beaconHash ?? Buffer.from(randomBytes(32)).toString('hex');
  return { plaintext, content, manifest, sellerSk, beaconHash, sampled: sampleIndices(manifest, beaconHash) };
}

export function keypair(): { sk: Uint8Array; pk: Uint8Array } {
  const sk = schnorr.utils.randomSecretKey();
  return { sk, pk: schnorr.getPublicKey(sk) };
}

/** A P2TR scriptPubKey paying a fresh key (for payouts in tests). */
export function someP2trScript(): Uint8Array {
  return Uint8Array.of(0x51, 0x20, ...keypair().pk);
}
