/**
 * Group messages (docs/protocol/groups.md section 5):
 *
 *   header    = version:u8=1 | group(32) | sender(32) | generation:u32 | index:u32
 *   message   = header | ChaCha20-Poly1305(k, n, plaintext, ad = header) | signature(64)
 *   k | n     = HKDF-SHA256(mk, salt "deaddrop/group-msg/v1", info = header, 44 bytes)
 *   signature = Ed25519(sender, "deaddrop/group-msg/v1\0" || header || ciphertext)
 *
 * A message key is used for one message only, so the nonce can be derived with the key. The
 * signature keeps members, who all know a sender's chain key, from writing in its name.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concatBytes } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { SIGNATURE_BYTES, ed25519Verify, hkdf, utf8 } from '../crypto.js';
import type { Signer } from '../crypto.js';

export const MESSAGE_VERSION = 1;
export const HEADER_BYTES = 73;
export const MAX_PLAINTEXT_BYTES = 64 * 1024;
const TAG_BYTES = 16;
const SALT = utf8('deaddrop/group-msg/v1');
export const MESSAGE_SIGNING_CONTEXT: Uint8Array = utf8('deaddrop/group-msg/v1\0');

/** The clear part of a message. */
export interface MessageHeader {
  readonly group: Uint8Array;
  readonly sender: Uint8Array;
  readonly generation: number;
  readonly index: number;
}

/** A decoded (not yet decrypted) message. */
export interface GroupMessage extends MessageHeader {
  readonly header: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly signature: Uint8Array;
}

export function encodeHeader(h: MessageHeader): Uint8Array {
  if (h.group.length !== 32 || h.sender.length !== 32) throw new TypeError('group and sender: expected 32 bytes');
  for (const [k, v] of [['generation', h.generation], ['index', h.index]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`${k}: expected a u32`);
  }
  const out = new Uint8Array(HEADER_BYTES);
  const v = new DataView(out.buffer);
  out[0] = MESSAGE_VERSION;
  out.set(h.group, 1);
  out.set(h.sender, 33);
  v.setUint32(65, h.generation);
  v.setUint32(69, h.index);
  return out;
}

/** Decodes a message; DeaddropError PROTOCOL when malformed. */
export function decodeMessage(raw: Uint8Array): GroupMessage {
  if (!(raw instanceof Uint8Array) || raw.length < HEADER_BYTES + TAG_BYTES + SIGNATURE_BYTES) throw DeaddropError.protocol('invalid group message: too short');
  if (raw.length > HEADER_BYTES + MAX_PLAINTEXT_BYTES + TAG_BYTES + SIGNATURE_BYTES) throw DeaddropError.protocol('invalid group message: too long');
  if (raw[0] !== MESSAGE_VERSION) throw DeaddropError.protocol('invalid group message: unknown version');
  const b = raw.slice();
  const v = new DataView(b.buffer);
  return {
    group: b.slice(1, 33), sender: b.slice(33, 65), generation: v.getUint32(65), index: v.getUint32(69),
    header: b.slice(0, HEADER_BYTES), ciphertext: b.slice(HEADER_BYTES, b.length - SIGNATURE_BYTES), signature: b.slice(b.length - SIGNATURE_BYTES),
  };
}

/** The AEAD key and nonce of one message. */
export function cipherKeys(messageKey: Uint8Array, header: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const okm = hkdf(messageKey, SALT, header, 44);
  return { key: okm.slice(0, 32), nonce: okm.slice(32) };
}

/** Encrypts and signs one message with the message key of `h.index`. */
export function sealGroupMessage(signer: Signer, h: MessageHeader, messageKey: Uint8Array, plaintext: Uint8Array): Uint8Array {
  if (plaintext.length > MAX_PLAINTEXT_BYTES) throw new RangeError(`plaintext: at most ${MAX_PLAINTEXT_BYTES} bytes`);
  const header = encodeHeader(h);
  const { key, nonce } = cipherKeys(messageKey, header);
  const ct = chacha20poly1305(key, nonce, header).encrypt(plaintext);
  key.fill(0);
  const sig = signer.sign(concatBytes(MESSAGE_SIGNING_CONTEXT, header, ct));
  return concatBytes(header, ct, sig);
}

/** True when the signature is the sender's. Never throws. */
export function verifyGroupMessage(m: GroupMessage): boolean {
  return ed25519Verify(m.signature, concatBytes(MESSAGE_SIGNING_CONTEXT, m.header, m.ciphertext), m.sender);
}

/** Decrypts with a message key; null when the key is wrong or the message was altered. Never throws. */
export function openWithKey(m: GroupMessage, messageKey: Uint8Array): Uint8Array | null {
  try {
    const { key, nonce } = cipherKeys(messageKey, m.header);
    const out = chacha20poly1305(key, nonce, m.header).decrypt(m.ciphertext);
    key.fill(0);
    return out;
  } catch {
    return null;
  }
}
