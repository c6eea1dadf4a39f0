/**
 * Fixed sizes of the deaddrop Sphinx packet format (docs/protocol/mixnet.md, "Sizes").
 * Every packet on the mixnet, real, cover, acknowledgement or reply, is exactly PACKET_BYTES long.
 */

/** Longest route: entry provider, three mix layers, exit provider. */
export const MAX_HOPS = 5;
/** Routing information for one hop: command, delay, address, MAC or SURB id, zero padding. */
export const SLOT_BYTES = 64;
/** The encrypted routing information (beta): one slot per hop of the longest route. */
export const BETA_BYTES = MAX_HOPS * SLOT_BYTES;
/** X25519 group element (alpha). */
export const ALPHA_BYTES = 32;
/** Truncated HMAC-SHA-256 over alpha || beta (gamma). */
export const MAC_BYTES = 16;
/** alpha || beta || gamma. */
export const HEADER_BYTES = ALPHA_BYTES + BETA_BYTES + MAC_BYTES;
/** The payload, encrypted in layers. */
export const PAYLOAD_BYTES = 2048;
/** The end-to-end payload MAC at the front of a decrypted payload. */
export const PAYLOAD_TAG_BYTES = 16;
/** What a sender can carry in one packet. */
export const BODY_BYTES = PAYLOAD_BYTES - PAYLOAD_TAG_BYTES;
/** The one packet size on the wire. */
export const PACKET_BYTES = HEADER_BYTES + PAYLOAD_BYTES;
/** Node identifiers and mailbox identifiers in routing slots. */
export const ADDRESS_BYTES = 32;
/** Identifies a SURB to its creator when the reply arrives. */
export const SURB_ID_BYTES = 16;
/** Replay tags kept per epoch. */
export const REPLAY_TAG_BYTES = 16;

/** Routing commands (first byte of a decrypted slot). */
export const CMD_RELAY = 0x01;
/** Final hop of a forward packet: verify the payload MAC, store the body in a mailbox. */
export const CMD_DELIVER = 0x02;
/** Final hop of a reply sent through a SURB: store the still-encrypted payload with its SURB id. */
export const CMD_DELIVER_REPLY = 0x03;

/** The HKDF info string that separates these keys from any other use of the same secret. */
export const HOP_INFO = 'deaddrop-mix-v1 hop';
/** The HKDF info string for a SURB's own payload keys. */
export const SURB_INFO = 'deaddrop-mix-v1 surb';
