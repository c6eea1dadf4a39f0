/**
 * Frames of the mixnet link protocol, carried over the node's Noise transport
 * (src/node/transport): one Sphinx packet per PACKET frame, several per PACKETS frame (a batch of
 * the packets leaving toward one hop in one turn of the event loop), and a client's mailbox fetch.
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
/** A batch: count u8 || count × packet (each exactly PACKET_BYTES), 2 ≤ count ≤ MAX_BATCH_PACKETS. */
export const FRAME_PACKETS = 0x09;

/**
 * Most packets in one PACKETS frame: the largest batch whose frame (5-byte frame header, count
 * byte, packets) fits one Noise transport message (65,519 plaintext bytes), so a batch costs one
 * encryption, one WebSocket message and one write.
 */
export const MAX_BATCH_PACKETS = 27;

export const ITEM_DELIVER = 0x01;
export const ITEM_REPLY = 0x02;
/** A forward packet delivered to one of the client's aliases: alias(32) || body. */
export const ITEM_ALIAS = 0x03;

/**
 * Largest descriptor entry a provider serves and a client keeps (the limit every frame had before
 * PACKETS frames raised the frame limit; a descriptor entry is a few hundred bytes).
 */
export const MAX_DESCRIPTOR_BYTES = PACKET_BYTES;

/** The largest frame any mixnet link carries: anything bigger closes the link. */
export const MAX_MIX_FRAME_BYTES = 1 + Math.max(1 + MAX_BATCH_PACKETS * PACKET_BYTES, 1 + SURB_ID_BYTES + PAYLOAD_BYTES, 1 + BODY_BYTES, 1 + 32 + BODY_BYTES);

/**
 * Encodes a PACKETS frame's payload. Throws RangeError on misuse: fewer than 2 or more than
 * {@link MAX_BATCH_PACKETS} packets (a single packet goes in a PACKET frame), or a packet that is
 * not exactly PACKET_BYTES.
 */
export function encodePackets(packets: readonly Uint8Array[]): Buffer {
  if (packets.length < 2 || packets.length > MAX_BATCH_PACKETS) throw new RangeError(`packets: expected 2 to ${MAX_BATCH_PACKETS}, got ${packets.length}`);
  const out = Buffer.allocUnsafe(1 + packets.length * PACKET_BYTES);
  out[0] = packets.length;
  packets.forEach((p, i) => {
    if (p.length !== PACKET_BYTES) throw new RangeError(`packets[${i}]: expected ${PACKET_BYTES} bytes, got ${p.length}`);
    out.set(p, 1 + i * PACKET_BYTES);
  });
  return out;
}

/**
 * Parses a PACKETS frame's payload into views of its packets; `undefined` when malformed: empty,
 * a count below 2 or above {@link MAX_BATCH_PACKETS}, or a length other than exactly
 * 1 + count × PACKET_BYTES (truncated or trailing bytes).
 */
export function decodePackets(payload: Uint8Array): Buffer[] | undefined {
  const count = payload[0];
  if (count === undefined || count < 2 || count > MAX_BATCH_PACKETS || payload.length !== 1 + count * PACKET_BYTES) return undefined;
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(b.subarray(1 + i * PACKET_BYTES, 1 + (i + 1) * PACKET_BYTES));
  return out;
}

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
