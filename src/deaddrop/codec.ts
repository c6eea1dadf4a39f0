/**
 * The dead-drop payload: the plaintext inside the envelope (see docs/protocol/deaddrop.md).
 *
 *   offset  size  field
 *   0       1     header: version (high 4 bits, 0) | number of endpoint hints (low 4 bits)
 *   1       32    nodeKey: the introducer's pairwise node public key
 *   33      8     token: invite token the introducer's node will accept from the recipient
 *   41      3     expiry: uint24 big-endian, hours since 1970-01-01T00:00Z; 0 = no expiry
 *   44      ...   endpoint hints, back to back (src/deaddrop/endpoint.ts)
 *   ...     ...   message: UTF-8, no control characters but tab and newline, then 0x00 padding
 *
 * The plaintext is as long as the envelope minus its 8-byte SIV: 72 bytes in an 80-byte
 * envelope, so 28 bytes are left for hints and message (21 of message after one IPv4 hint).
 * Decoding is total and canonical: anything malformed (unknown version, truncated hint,
 * invalid UTF-8, non-zero padding) returns null, and a payload decodes only if encoding it
 * again gives the same bytes.
 */
import { randomBytes } from 'node:crypto';
import { DeaddropError } from '../util/errors.js';
import { decodeEndpoint, encodeEndpoint } from './endpoint.js';
import { equalBytes } from '../util/bytes.js';

export const PAYLOAD_VERSION = 0;
export const NODE_KEY_BYTES = 32;
export const TOKEN_BYTES = 8;
/** header + nodeKey + token + expiry. */
export const PAYLOAD_FIXED_BYTES = 1 + NODE_KEY_BYTES + TOKEN_BYTES + 3;
/** At most 15 hints fit the header nibble. */
export const MAX_HINTS = 15;
/** Largest expiry: 2^24 - 1 hours after the Unix epoch (year 3883). */
export const MAX_EXPIRY_SECONDS = (2 ** 24 - 1) * 3600;

/** A decoded introduction. */
export interface DropPayload {
  readonly version: number;
  /** The introducer's pairwise node public key (32 bytes), fresh for each introduction. */
  readonly nodeKey: Uint8Array;
  /** 8-byte invite token. */
  readonly token: Uint8Array;
  /** Unix time (seconds, a whole hour) after which the token is void, or null for never. */
  readonly expiresAt: number | null;
  /** Canonical endpoint strings (src/deaddrop/endpoint.ts). */
  readonly endpoints: readonly string[];
  readonly message: string;
}

/** What a sender provides. `expiresAt` (Unix seconds) is rounded up to the next whole hour. */
export interface DropPayloadInput {
  readonly nodeKey: Uint8Array;
  readonly token: Uint8Array;
  readonly expiresAt?: number | null;
  readonly endpoints?: readonly string[];
  readonly message?: string;
}

/** A fresh random invite token. */
export function newToken(): Uint8Array {
  return new Uint8Array(randomBytes(TOKEN_BYTES));
}

const utf8 = new TextEncoder();
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function expiryHours(expiresAt: number | null | undefined): number {
  if (expiresAt === null || expiresAt === undefined) return 0;
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0 || expiresAt > MAX_EXPIRY_SECONDS) {
    throw DeaddropError.badInput(`expiresAt must be Unix seconds in (0, ${MAX_EXPIRY_SECONDS}], got ${expiresAt}`);
  }
  return Math.ceil(expiresAt / 3600);
}

/** The unpadded payload bytes (header through message). Throws BAD_INPUT on invalid fields. */
function encodeBody(input: DropPayloadInput): Uint8Array {
  const { nodeKey, token } = input;
  if (!(nodeKey instanceof Uint8Array) || nodeKey.length !== NODE_KEY_BYTES) throw DeaddropError.badInput('nodeKey must be 32 bytes');
  if (!(token instanceof Uint8Array) || token.length !== TOKEN_BYTES) throw DeaddropError.badInput('token must be 8 bytes');
  const endpoints = input.endpoints ?? [];
  if (endpoints.length > MAX_HINTS) throw DeaddropError.badInput(`at most ${MAX_HINTS} endpoints`);
  const message = input.message ?? '';
  // Control characters (but tab and newline) are refused so a message cannot drive a terminal.
  if (typeof message !== 'string' || CONTROL.test(message)) throw DeaddropError.badInput('message must be text without control characters');
  if (/\p{Cs}/u.test(message)) throw DeaddropError.badInput('message is not well-formed Unicode');
  const hours = expiryHours(input.expiresAt);
  const parts = [
    Uint8Array.of((PAYLOAD_VERSION << 4) | endpoints.length),
    nodeKey,
    token,
    Uint8Array.of(hours >>> 16, (hours >>> 8) & 0xff, hours & 0xff),
    ...endpoints.map((e) => encodeEndpoint(e, nodeKey)),
    utf8.encode(message),
  ];
  return Buffer.concat(parts);
}

/** Bytes the payload needs before padding. */
export function payloadSize(input: DropPayloadInput): number {
  return encodeBody(input).length;
}

/**
 * Encodes a payload padded with zeros to exactly `size` bytes. Throws BAD_INPUT if a field is
 * invalid or the payload does not fit (the error says how many bytes it needs).
 */
export function encodePayload(input: DropPayloadInput, size: number): Uint8Array {
  const body = encodeBody(input);
  if (body.length > size) {
    throw DeaddropError.badInput(`introduction needs ${body.length} bytes, only ${size} fit: shorten the message or drop an endpoint`, {
      needed: body.length,
      available: size,
    });
  }
  const out = new Uint8Array(size);
  out.set(body);
  return out;
}

/** Decodes a padded payload; null if it is malformed, non-canonical or of an unknown version. */
export function decodePayload(bytes: Uint8Array): DropPayload | null {
  try {
    return decodeStrict(bytes);
  } catch {
    return null;
  }
}

function decodeStrict(b: Uint8Array): DropPayload | null {
  if (!(b instanceof Uint8Array) || b.length < PAYLOAD_FIXED_BYTES) return null;
  const header = b[0] as number;
  if (header >> 4 !== PAYLOAD_VERSION) return null;
  const nodeKey = b.slice(1, 33);
  const token = b.slice(33, 41);
  const hours = ((b[41] as number) << 16) | ((b[42] as number) << 8) | (b[43] as number);
  const endpoints: string[] = [];
  let o = PAYLOAD_FIXED_BYTES;
  for (let i = 0; i < (header & 0x0f); i++) {
    const hint = decodeEndpoint(b, o, nodeKey);
    if (hint === null) return null;
    endpoints.push(hint.endpoint);
    o = hint.end;
  }
  const rest = b.subarray(o);
  const nul = rest.indexOf(0);
  const end = nul === -1 ? rest.length : nul;
  if (rest.subarray(end).some((x) => x !== 0)) return null;
  const message = strictUtf8.decode(rest.subarray(0, end));
  const payload: DropPayload = { version: PAYLOAD_VERSION, nodeKey, token, expiresAt: hours === 0 ? null : hours * 3600, endpoints, message };
  return equalBytes(encodePayload(payload, b.length), b) ? payload : null;
}
