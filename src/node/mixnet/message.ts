/**
 * End-to-end sealed message bodies carried in Sphinx packets. The exit provider reads a forward
 * packet's body (it verifies the payload MAC there), so the body itself is sealed to the
 * recipient's identity key, Noise-X style, with a fresh ephemeral key per message:
 *
 *   body  = e.pub(32) | u16 n | sealed1(n) | zero padding to BODY_BYTES
 *   k1    = HKDF(DH(e, R), salt "deaddrop/mix-message/v1", info e.pub || R)
 *   sealed1 = XChaCha20-Poly1305(k1, S(32) | sealed2)          (hides the sender from the provider)
 *   k2    = HKDF(DH(e, R) || DH(S, R), same salt, info e.pub || R || S)
 *   sealed2 = XChaCha20-Poly1305(k2, kind u8 | u16 text length | text | SURB (optional))
 *
 * Only the recipient opens it; the static-static DH authenticates the sender S to the recipient.
 * Replies travel through a SURB and are end-to-end encrypted by the SURB's own payload keys.
 */
import { aeadOpen, aeadSeal, ed25519PublicToX25519, hkdf, randomBytes, utf8, wipe, x25519, x25519Public } from '../crypto.js';
import type { NodeIdentity } from '../identity.js';
import { BODY_BYTES } from './params.js';
import { SURB_BYTES } from './sphinx.js';
import { concatBytes } from '../../util/bytes.js';

const SALT = utf8('deaddrop/mix-message/v1');
/** Longest text in one message (UTF-8 bytes). */
export const MAX_TEXT_BYTES = 1024;
/** A new message; a reply body is (kind, text) too. */
export const KIND_MESSAGE = 0x01;

/** What the recipient reads. */
export interface OpenedMessage {
  readonly from: Uint8Array;
  readonly text: string;
  /** The sender's single-use reply block, if any. */
  readonly surb: Uint8Array | null;
}

function textBytes(text: string): Uint8Array {
  const t = utf8(text);
  if (t.length > MAX_TEXT_BYTES) throw new RangeError(`message text is longer than ${MAX_TEXT_BYTES} bytes`);
  return t;
}

/** kind | u16 length | text | surb? */
export function encodePlain(text: string, surb: Uint8Array | null): Uint8Array {
  const t = textBytes(text);
  const head = new Uint8Array(3);
  head[0] = KIND_MESSAGE;
  new DataView(head.buffer).setUint16(1, t.length);
  return concatBytes(head, t, surb ?? new Uint8Array(0));
}

/** Inverse of encodePlain; null when malformed. */
export function decodePlain(b: Uint8Array): { text: string; surb: Uint8Array | null } | null {
  if (b.length < 3 || b[0] !== KIND_MESSAGE) return null;
  const n = (b[1]! << 8) | b[2]!;
  if (n > MAX_TEXT_BYTES || b.length < 3 + n) return null;
  const rest = b.subarray(3 + n);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(3, 3 + n));
  } catch {
    return null;
  }
  if (rest.length !== 0 && rest.length < SURB_BYTES) return null;
  return { text, surb: rest.length === 0 ? null : rest.slice(0, SURB_BYTES) };
}

/** Seals a message for `recipient` (Ed25519 identity) into one packet body of BODY_BYTES. */
export function sealMessage(sender: NodeIdentity, recipient: Uint8Array, text: string, surb: Uint8Array | null): Uint8Array {
  return sealBody(sender, recipient, encodePlain(text, surb));
}

/** Seals any plaintext (its first byte says its kind) for `recipient` into one packet body. */
export function sealBody(sender: NodeIdentity, recipient: Uint8Array, plain: Uint8Array): Uint8Array {
  const R = ed25519PublicToX25519(recipient);
  if (!R) throw new RangeError('recipient is not a valid key');
  const e = randomBytes(32);
  const E = x25519Public(e);
  const dhE = x25519(e, R);
  const dhS = sender.sharedSecret(recipient);
  wipe(e);
  if (!dhE || !dhS) throw new RangeError('recipient is not a valid key');
  const k1 = hkdf(dhE, SALT, concatBytes(E, recipient), 32);
  const k2 = hkdf(concatBytes(dhE, dhS), SALT, concatBytes(E, recipient, sender.publicKey), 32);
  const sealed2 = aeadSeal(k2, plain, E);
  const sealed1 = aeadSeal(k1, concatBytes(sender.publicKey, sealed2), E);
  for (const k of [dhE, dhS, k1, k2]) wipe(k);
  const len = new Uint8Array(2);
  new DataView(len.buffer).setUint16(0, sealed1.length);
  const body = concatBytes(E, len, sealed1);
  if (body.length > BODY_BYTES) throw new RangeError('message too long for one packet');
  return concatBytes(body, new Uint8Array(BODY_BYTES - body.length));
}

/** Opens a body sealed to `me`; null when it is not for us or was tampered with. Never throws. */
export function openMessage(me: NodeIdentity, body: Uint8Array): OpenedMessage | null {
  const o = openBody(me, body);
  const d = o ? decodePlain(o.plain) : null;
  return o && d ? { from: o.from, text: d.text, surb: d.surb } : null;
}

/** Opens any sealed body: its authenticated sender and plaintext; null when not for us. Never throws. */
export function openBody(me: NodeIdentity, body: Uint8Array): { from: Uint8Array; plain: Uint8Array } | null {
  try {
    if (body.length < 34) return null;
    const E = body.subarray(0, 32);
    const n = (body[32]! << 8) | body[33]!;
    if (34 + n > body.length) return null;
    const dhE = me.sharedSecretX(E);
    if (!dhE) return null;
    const k1 = hkdf(dhE, SALT, concatBytes(E, me.publicKey), 32);
    const inner = aeadOpen(k1, body.subarray(34, 34 + n), E);
    wipe(k1);
    if (!inner || inner.length < 32) return null;
    const from = inner.slice(0, 32);
    const dhS = me.sharedSecret(from);
    if (!dhS) return null;
    const k2 = hkdf(concatBytes(dhE, dhS), SALT, concatBytes(E, me.publicKey, from), 32);
    const plain = aeadOpen(k2, inner.subarray(32), E);
    for (const k of [dhE, dhS, k2]) wipe(k);
    return plain ? { from, plain } : null;
  } catch {
    return null;
  }
}
