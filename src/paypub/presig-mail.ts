/**
 * Version 2 pre-signature announcements by mail (docs/protocol/paypub.md §12, "Where it is
 * published"): the buyer sends its 166-byte announcement to the seller's mixnet mailbox, which
 * the seller's provider keeps while the seller is offline; the seller's daemon takes it when it
 * connects again and checks it exactly as the public route does.
 *
 *   message = u8 KIND (0x50) ‖ u8 flags ‖ announcement (166) ‖ block hash (32, display order; iff flags & 1)
 *
 * The block hash names where the pledge was mined (the seller's scan may have passed it), as the
 * route's `blockHash` does. Offers name the mailbox with a suffix:
 *
 *   paypub2:<sale id>[@<seller URL>][~store:<…>][~mix:<provider hex>:<mailbox hex>]      (a URL or ~store:, adaptor-bundle.ts)
 */
import { fromHex, toHex } from '../util/bytes.js';
import { PRESIG_ANNOUNCEMENT_BYTES } from './adaptor-pledges.js';

/** First byte of a PayPub mail message (other kinds belong to other features). */
export const KIND_PAYPUB_PRESIG = 0x50;
const FLAG_BLOCK = 1;

/** A mailbox as an offer names it. */
export interface OfferMailbox {
  readonly provider: Uint8Array;
  readonly mailbox: Uint8Array;
}

export function encodePresigMail(announcement: Uint8Array, blockHash?: string): Uint8Array {
  if (announcement.length !== PRESIG_ANNOUNCEMENT_BYTES) throw new RangeError('not a pre-signature announcement');
  const block = blockHash === undefined ? null : fromHex(blockHash);
  if (block && block.length !== 32) throw new RangeError('block hash: 32 bytes');
  const out = new Uint8Array(2 + PRESIG_ANNOUNCEMENT_BYTES + (block ? 32 : 0));
  out[0] = KIND_PAYPUB_PRESIG;
  out[1] = block ? FLAG_BLOCK : 0;
  out.set(announcement, 2);
  if (block) out.set(block, 2 + PRESIG_ANNOUNCEMENT_BYTES);
  return out;
}

/** The announcement and the block named, or null when malformed (any size but the two exact ones, unknown flags). Never throws. */
export function decodePresigMail(b: Uint8Array): { announcement: Uint8Array; blockHash?: string } | null {
  if (b.length < 2 || b[0] !== KIND_PAYPUB_PRESIG) return null;
  const flags = b[1]!;
  if ((flags & ~FLAG_BLOCK) !== 0) return null;
  const want = 2 + PRESIG_ANNOUNCEMENT_BYTES + (flags & FLAG_BLOCK ? 32 : 0);
  if (b.length !== want) return null;
  const announcement = b.slice(2, 2 + PRESIG_ANNOUNCEMENT_BYTES);
  return flags & FLAG_BLOCK ? { announcement, blockHash: toHex(b.subarray(2 + PRESIG_ANNOUNCEMENT_BYTES)) } : { announcement };
}

const MIX_SUFFIX = /~mix:([0-9a-f]{64}):([0-9a-f]{64})$/;

/** The offer suffix naming `m`. */
export function formatOfferMailbox(m: OfferMailbox): string {
  return `~mix:${toHex(m.provider)}:${toHex(m.mailbox)}`;
}

/** Splits an offer into its text before the mailbox suffix and the mailbox (null when none). */
export function splitOfferMailbox(text: string): { rest: string; mix: OfferMailbox | null } {
  const m = MIX_SUFFIX.exec(text);
  if (!m) return { rest: text, mix: null };
  return { rest: text.slice(0, m.index), mix: { provider: fromHex(m[1] as string), mailbox: fromHex(m[2] as string) } };
}
