/**
 * The dead-drop envelope: the bytes of ONE OP_RETURN push, at most 80 so every relay policy
 * carries it, with no plaintext marker: without the recipient's scan key they are
 * indistinguishable from uniformly random bytes.
 *
 *   envelope = siv[8] || ciphertext[len - 8]          (len = 52..80, 80 by default)
 *
 * Keys come from the BIP352 ECDH shared secret (the same point output k = 0 uses), so a
 * receiver does one ECDH per candidate transaction and can also spot the k = 0 output:
 *
 *   k_enc = hash_deaddrop/v0/enc(ser_P(ecdh_shared_secret))
 *   k_mac = hash_deaddrop/v0/mac(ser_P(ecdh_shared_secret))
 *
 * Encryption is a deterministic, nonce-misuse-resistant SIV composition (Rogaway-Shrimpton):
 *
 *   siv        = HMAC-SHA256(k_mac, plaintext)[0..8]
 *   ciphertext = plaintext XOR ChaCha20(k_enc, nonce = siv || 0x00000000, counter = 0)
 *
 * Why SIV and not ChaCha20-Poly1305 with a fixed nonce: the key is unique per (inputs,
 * recipient), but a fee bump (RBF) that keeps the inputs and re-encrypts a different payload
 * would reuse it. With SIV that leaks only whether the two plaintexts are equal, never their
 * XOR, and the two envelopes stay unlinkable bytes. Why 8 bytes: the check only has to tell
 * "mine" from random (false positive 2^-64 per trial); forging buys an attacker nothing, since
 * anyone can already write a valid drop to any address. The full reasoning is in
 * docs/protocol/deaddrop.md.
 *
 * ChaCha20 is @noble/ciphers; HMAC-SHA256 is node:crypto (2 us against 19 us for noble on
 * 72 bytes, and the scanner runs it once per candidate). Tests check both against noble.
 */
import { createHmac } from 'node:crypto';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { taggedHash } from '../util/hash.js';
import { decodePayload, encodePayload, PAYLOAD_FIXED_BYTES, type DropPayload, type DropPayloadInput } from './codec.js';
import { equalBytes } from '../util/bytes.js';

export const TAG_ENC = 'deaddrop/v0/enc';
export const TAG_MAC = 'deaddrop/v0/mac';
/** Length of the synthetic IV, which is also the authenticity check. */
export const SIV_BYTES = 8;
/** Largest envelope: the data of one standard OP_RETURN under every relay policy. */
export const ENVELOPE_MAX_BYTES = 80;
/** Smallest envelope: SIV plus a payload with no hint and no message. */
export const ENVELOPE_MIN_BYTES = SIV_BYTES + PAYLOAD_FIXED_BYTES;

/** The two keys of one envelope. Secret. */
export interface EnvelopeKeys {
  readonly enc: Uint8Array;
  readonly mac: Uint8Array;
}

/** Derives the envelope keys from ser_P(ecdh_shared_secret) (33 bytes). */
export function envelopeKeys(ecdh: Uint8Array): EnvelopeKeys {
  if (!(ecdh instanceof Uint8Array) || ecdh.length !== 33) throw new TypeError('ecdh shared secret must be a 33-byte compressed point');
  return { enc: taggedHash(TAG_ENC, ecdh), mac: taggedHash(TAG_MAC, ecdh) };
}

function siv(mac: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const d = createHmac('sha256', mac).update(plaintext).digest();
  return new Uint8Array(d.buffer, d.byteOffset, SIV_BYTES).slice();
}

function keystreamXor(enc: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(12);
  nonce.set(iv);
  return chacha20(enc, nonce, data);
}

/** Encrypts `plaintext` (any length) to siv || ciphertext. */
export function seal(keys: EnvelopeKeys, plaintext: Uint8Array): Uint8Array {
  const iv = siv(keys.mac, plaintext);
  const out = new Uint8Array(SIV_BYTES + plaintext.length);
  out.set(iv);
  out.set(keystreamXor(keys.enc, iv, plaintext), SIV_BYTES);
  return out;
}

/** Decrypts siv || ciphertext; null unless the check matches. Never throws on bad bytes. */
export function open(keys: EnvelopeKeys, envelope: Uint8Array): Uint8Array | null {
  if (!(envelope instanceof Uint8Array) || envelope.length < SIV_BYTES) return null;
  const iv = envelope.subarray(0, SIV_BYTES);
  const plaintext = keystreamXor(keys.enc, iv, envelope.subarray(SIV_BYTES));
  return equalBytes(siv(keys.mac, plaintext), iv) ? plaintext : null;
}

/**
 * Seals an introduction for the holder of the scan key behind `ecdh`, padded to `length`
 * bytes (default 80). Throws BAD_INPUT if the payload is invalid or does not fit.
 */
export function sealPayload(ecdh: Uint8Array, payload: DropPayloadInput, length = ENVELOPE_MAX_BYTES): Uint8Array {
  if (!Number.isInteger(length) || length < ENVELOPE_MIN_BYTES || length > ENVELOPE_MAX_BYTES) {
    throw new RangeError(`envelope length must be ${ENVELOPE_MIN_BYTES}..${ENVELOPE_MAX_BYTES}, got ${length}`);
  }
  const plaintext = encodePayload(payload, length - SIV_BYTES);
  if (decodePayload(plaintext) === null) throw new Error('deaddrop: encoded payload does not decode'); // builder checks itself
  return seal(envelopeKeys(ecdh), plaintext);
}

/** Opens an envelope with the ECDH shared secret: the introduction, or null. Total. */
export function openPayload(ecdh: Uint8Array, envelope: Uint8Array): DropPayload | null {
  if (!(envelope instanceof Uint8Array) || envelope.length < ENVELOPE_MIN_BYTES || envelope.length > ENVELOPE_MAX_BYTES) return null;
  const plaintext = open(envelopeKeys(ecdh), envelope);
  return plaintext === null ? null : decodePayload(plaintext);
}

// ---------------------------------------------------------------------------------------------
// OP_RETURN scripts

const OP_RETURN = 0x6a;
const OP_PUSHDATA1 = 0x4c;
const OP_PUSHDATA2 = 0x4d;
const OP_PUSHDATA4 = 0x4e;

/** OP_RETURN followed by one minimal push of the envelope (at most 83 bytes). */
export function dropScript(envelope: Uint8Array): Uint8Array {
  const n = envelope.length;
  if (n < ENVELOPE_MIN_BYTES || n > ENVELOPE_MAX_BYTES) throw new RangeError(`envelope must be ${ENVELOPE_MIN_BYTES}..${ENVELOPE_MAX_BYTES} bytes, got ${n}`);
  const head = n <= 75 ? [OP_RETURN, n] : [OP_RETURN, OP_PUSHDATA1, n];
  const out = new Uint8Array(head.length + n);
  out.set(head);
  out.set(envelope, head.length);
  return out;
}

/**
 * The envelope in a candidate output script: OP_RETURN followed by exactly one data push of
 * ENVELOPE_MIN_BYTES..ENVELOPE_MAX_BYTES bytes (any push opcode). null for anything else,
 * including Runestones (OP_RETURN OP_13 ...). Total.
 */
export function parseDropScript(script: Uint8Array): Uint8Array | null {
  if (!(script instanceof Uint8Array) || script.length < 2 || script[0] !== OP_RETURN) return null;
  const op = script[1] as number;
  let len: number;
  let start: number;
  if (op >= 1 && op <= 75) [len, start] = [op, 2];
  else if (op === OP_PUSHDATA1 && script.length >= 3) [len, start] = [script[2] as number, 3];
  else if (op === OP_PUSHDATA2 && script.length >= 4) [len, start] = [(script[2] as number) | ((script[3] as number) << 8), 4];
  else if (op === OP_PUSHDATA4 && script.length >= 6) {
    len = ((script[2] as number) | ((script[3] as number) << 8) | ((script[4] as number) << 16)) + (script[5] as number) * 2 ** 24;
    start = 6;
  } else return null;
  if (start + len !== script.length || len < ENVELOPE_MIN_BYTES || len > ENVELOPE_MAX_BYTES) return null;
  return script.slice(start);
}
