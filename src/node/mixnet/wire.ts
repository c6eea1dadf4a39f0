/**
 * Frames of the mixnet link protocol, carried over the node's Noise transport
 * (src/node/transport): one Sphinx packet per PACKET frame, and a client's mailbox fetch.
 */
import { BODY_BYTES, PACKET_BYTES, PAYLOAD_BYTES, SURB_ID_BYTES } from './params.js';

/** One Sphinx packet (exactly PACKET_BYTES). */
export const FRAME_PACKET = 0x01;
/** A client asks its provider for everything in its mailbox (empty payload). */
export const FRAME_FETCH = 0x02;
/** One stored item: ITEM_DELIVER || body, or ITEM_REPLY || SURB id || payload. */
export const FRAME_ITEM = 0x03;
/** The end of a fetch (empty payload). */
export const FRAME_FETCH_DONE = 0x04;
/** A client registers a mailbox alias (./alias.ts): alias(32) || expiry u64 ms || signature(64). */
export const FRAME_ALIAS = 0x05;
/** A client asks its provider for the descriptors it knows (empty payload). */
export const FRAME_DIRECTORY_REQ = 0x06;
/** One signed descriptor log entry, as the provider holds it (raw entry bytes). */
export const FRAME_DESCRIPTOR = 0x07;
/** The end of a directory answer (empty payload). */
export const FRAME_DIRECTORY_DONE = 0x08;

export const ITEM_DELIVER = 0x01;
export const ITEM_REPLY = 0x02;
/** A forward packet delivered to one of the client's aliases: alias(32) || body. */
export const ITEM_ALIAS = 0x03;

/** The largest frame any mixnet link carries: anything bigger closes the link. */
export const MAX_MIX_FRAME_BYTES = 1 + Math.max(PACKET_BYTES, 1 + SURB_ID_BYTES + PAYLOAD_BYTES, 1 + BODY_BYTES, 1 + 32 + BODY_BYTES);

/** A stored mailbox item, as a client receives it. */
export type MailboxItem =
  | { readonly kind: 'deliver'; readonly body: Buffer }
  | { readonly kind: 'alias'; readonly alias: Buffer; readonly body: Buffer }
  | { readonly kind: 'reply'; readonly surbId: Buffer; readonly payload: Buffer };

export function encodeItem(item: MailboxItem): Buffer {
  if (item.kind === 'deliver') return Buffer.concat([Uint8Array.of(ITEM_DELIVER), item.body]);
  if (item.kind === 'alias') return Buffer.concat([Uint8Array.of(ITEM_ALIAS), item.alias, item.body]);
  return Buffer.concat([Uint8Array.of(ITEM_REPLY), item.surbId, item.payload]);
}

/** Parses an ITEM frame; `undefined` when malformed. */
export function decodeItem(bytes: Uint8Array): MailboxItem | undefined {
  const b = Buffer.from(bytes);
  if (b[0] === ITEM_DELIVER && b.length === 1 + BODY_BYTES) return { kind: 'deliver', body: b.subarray(1) };
  if (b[0] === ITEM_ALIAS && b.length === 1 + 32 + BODY_BYTES) return { kind: 'alias', alias: b.subarray(1, 33), body: b.subarray(33) };
  if (b[0] === ITEM_REPLY && b.length === 1 + SURB_ID_BYTES + PAYLOAD_BYTES) {
    return { kind: 'reply', surbId: b.subarray(1, 1 + SURB_ID_BYTES), payload: b.subarray(1 + SURB_ID_BYTES) };
  }
  return undefined;
}
