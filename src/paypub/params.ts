/**
 * PayPub protocol constants: tags for every hash, size limits and the per-network timing
 * parameters (docs/protocol/paypub.md, "Timelocks"). Everything a buyer checks against is
 * here, so the seller's daemon and every buyer's client agree on the same numbers.
 */
import type { Network } from '../util/network.js';

/** Protocol version carried in the first byte of every PayPub codec. */
export const PAYPUB_VERSION = 1;

/** Domain-separation tags (BIP340 tagged hashes). Never reused across purposes. */
export const TAG = {
  manifest: 'deaddrop/paypub/manifest/v1',
  chunkAd: 'deaddrop/paypub/chunk/v1',
  chunkNonce: 'deaddrop/paypub/nonce/v1',
  sample: 'deaddrop/paypub/sample/v1',
  reveal: 'deaddrop/paypub/reveal/v1',
  offer: 'deaddrop/paypub/offer/v1',
  wrap: 'deaddrop/paypub/wrap/v1',
} as const;

/** At most this many chunks: each unsampled key costs ~68 witness bytes per claimed pledge. */
export const MAX_CHUNKS = 256;
/** Size of a chunk key, its commitment and every hash in the manifest. */
export const KEY_BYTES = 32;
/** Poly1305 tag appended to every chunk ciphertext. */
export const TAG_BYTES = 16;
/** XChaCha20 nonce length. */
export const NONCE_BYTES = 24;

/** Per-network timing, in blocks. */
export interface PaypubTiming {
  /** The anchor must confirm at a height <= beacon - anchorMargin. */
  readonly anchorMargin: number;
  /** Confirmations of the beacon block (the beacon itself counts as 1) before the sample is final. */
  readonly beaconConfirmations: number;
  /** The seller claims only while tip < deadline - claimMargin; buyers stop pledging at the same point. */
  readonly claimMargin: number;
  /** Default distance from the beacon to the CLTV refund deadline. */
  readonly defaultDeadlineAfterBeacon: number;
  /** Default distance from publication to the beacon. */
  readonly defaultBeaconIn: number;
  /** Relative timelock (blocks) of the private-mode refund leaf. */
  readonly csvDelay: number;
  /** Confirmations a pledge needs before it counts toward the threshold. */
  readonly pledgeConfirmations: number;
}

export const TIMING: Record<Network, PaypubTiming> = {
  mainnet: {
    anchorMargin: 6, beaconConfirmations: 6, claimMargin: 36, defaultDeadlineAfterBeacon: 1008,
    defaultBeaconIn: 12, csvDelay: 144, pledgeConfirmations: 1,
  },
  testnet: {
    anchorMargin: 6, beaconConfirmations: 6, claimMargin: 36, defaultDeadlineAfterBeacon: 1008,
    defaultBeaconIn: 12, csvDelay: 144, pledgeConfirmations: 1,
  },
  signet: {
    anchorMargin: 6, beaconConfirmations: 6, claimMargin: 36, defaultDeadlineAfterBeacon: 1008,
    defaultBeaconIn: 12, csvDelay: 144, pledgeConfirmations: 1,
  },
  regtest: {
    anchorMargin: 2, beaconConfirmations: 2, claimMargin: 5, defaultDeadlineAfterBeacon: 40,
    defaultBeaconIn: 4, csvDelay: 10, pledgeConfirmations: 1,
  },
};

/** Wire ids of networks inside PayPub codecs (so a regtest manifest never validates on mainnet). */
export const NETWORK_IDS: readonly Network[] = ['mainnet', 'testnet', 'signet', 'regtest'];

/** Sale modes. */
export type PaypubMode = 'public' | 'private';
export const MODE_IDS: readonly PaypubMode[] = ['public', 'private'];
