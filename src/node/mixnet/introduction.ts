/**
 * Plaintexts of an introduction answered over the mixnet (docs/protocol/mixnet.md, "Introductions
 * over the mixnet"). The INVITE travels sealed to the introducer's pairwise key (./message.ts); the
 * answer travels through the joiner's SURB. Each carries the sender's signed `mix-mailbox` entry and
 * its provider's signed descriptor entry, so the other side can address it without having
 * replicated its feed (the receiver verifies both through its MixDirectory).
 *
 *   INVITE    = 0x02 | tokenId(16) | nonce(16) | mac(32) | SURB(432) | u16 n | mailbox entry | u16 m | descriptor entry
 *   INVITE_OK = 0x03 | nonce(16) | inviter(32) | sig pairwise(64) | sig inviter(64) | u16 n | mailbox entry | u16 m | descriptor entry
 *   REFUSED   = 0x04 | nonce(16)
 *
 * Decoders are total: null on anything malformed, trailing bytes included (the zero padding of a
 * SURB reply body is stripped by the caller's length-aware reader: see {@link decodeMixAnswer}).
 */
import { SURB_BYTES } from './sphinx.js';
import { concatBytes } from '../../util/bytes.js';

export const KIND_MIX_INVITE = 0x02;
export const KIND_MIX_INVITE_OK = 0x03;
export const KIND_MIX_REFUSED = 0x04;
const TOKEN_ID = 16;
const NONCE = 16;
/** Largest entry carried (a descriptor or mailbox entry is a few hundred bytes). */
export const MAX_CARRIED_ENTRY_BYTES = 600;

export interface MixInvite {
  readonly tokenId: Uint8Array;
  readonly nonce: Uint8Array;
  readonly mac: Uint8Array;
  readonly surb: Uint8Array;
  readonly mailboxEntry: Uint8Array;
  readonly providerEntry: Uint8Array;
}

export type MixAnswer =
  | {
      readonly kind: 'ok';
      readonly nonce: Uint8Array;
      readonly inviter: Uint8Array;
      readonly byPairwise: Uint8Array;
      readonly byInviter: Uint8Array;
      readonly mailboxEntry: Uint8Array;
      readonly providerEntry: Uint8Array;
    }
  | { readonly kind: 'refused'; readonly nonce: Uint8Array };

function u16(n: number): Uint8Array {
  if (n > MAX_CARRIED_ENTRY_BYTES) throw new RangeError(`a carried entry is at most ${MAX_CARRIED_ENTRY_BYTES} bytes`);
  return Uint8Array.of(n >> 8, n & 0xff);
}

function fixed(b: Uint8Array, length: number, what: string): Uint8Array {
  if (b.length !== length) throw new RangeError(`${what}: expected ${length} bytes`);
  return b;
}

export function encodeMixInvite(m: MixInvite): Uint8Array {
  return concatBytes(
    Uint8Array.of(KIND_MIX_INVITE), fixed(m.tokenId, TOKEN_ID, 'tokenId'), fixed(m.nonce, NONCE, 'nonce'), fixed(m.mac, 32, 'mac'),
    fixed(m.surb, SURB_BYTES, 'surb'), u16(m.mailboxEntry.length), m.mailboxEntry, u16(m.providerEntry.length), m.providerEntry,
  );
}

export function encodeMixAnswer(a: MixAnswer): Uint8Array {
  if (a.kind === 'refused') return concatBytes(Uint8Array.of(KIND_MIX_REFUSED), fixed(a.nonce, NONCE, 'nonce'));
  return concatBytes(
    Uint8Array.of(KIND_MIX_INVITE_OK), fixed(a.nonce, NONCE, 'nonce'), fixed(a.inviter, 32, 'inviter'), fixed(a.byPairwise, 64, 'signature'),
    fixed(a.byInviter, 64, 'signature'), u16(a.mailboxEntry.length), a.mailboxEntry, u16(a.providerEntry.length), a.providerEntry,
  );
}

/** Reads `count` length-prefixed entries from `at`; null when malformed. */
function entries(b: Uint8Array, at: number, count: number): { list: Uint8Array[]; end: number } | null {
  const list: Uint8Array[] = [];
  let o = at;
  for (let i = 0; i < count; i++) {
    if (o + 2 > b.length) return null;
    const n = (b[o]! << 8) | b[o + 1]!;
    if (n === 0 || n > MAX_CARRIED_ENTRY_BYTES || o + 2 + n > b.length) return null;
    list.push(b.slice(o + 2, o + 2 + n));
    o += 2 + n;
  }
  return { list, end: o };
}

/** `rest` must be empty, or only zero padding when `padded` (a body filled to its fixed size). */
function tailOk(rest: Uint8Array, padded: boolean): boolean {
  return rest.length === 0 || (padded && rest.every((x) => x === 0));
}

/** The INVITE in an opened plaintext; null when it is not a well-formed one. Never throws. */
export function decodeMixInvite(b: Uint8Array, padded = false): MixInvite | null {
  const head = 1 + TOKEN_ID + NONCE + 32 + SURB_BYTES;
  if (b.length < head || b[0] !== KIND_MIX_INVITE) return null;
  const e = entries(b, head, 2);
  if (!e || !tailOk(b.subarray(e.end), padded)) return null;
  let o = 1;
  const take = (n: number): Uint8Array => b.slice(o, (o += n));
  return { tokenId: take(TOKEN_ID), nonce: take(NONCE), mac: take(32), surb: take(SURB_BYTES), mailboxEntry: e.list[0]!, providerEntry: e.list[1]! };
}

/** The answer in a SURB reply body (zero padded); null when malformed. Never throws. */
export function decodeMixAnswer(b: Uint8Array, padded = true): MixAnswer | null {
  if (b[0] === KIND_MIX_REFUSED) {
    return b.length >= 1 + NONCE && tailOk(b.subarray(1 + NONCE), padded) ? { kind: 'refused', nonce: b.slice(1, 1 + NONCE) } : null;
  }
  const head = 1 + NONCE + 32 + 64 + 64;
  if (b.length < head || b[0] !== KIND_MIX_INVITE_OK) return null;
  const e = entries(b, head, 2);
  if (!e || !tailOk(b.subarray(e.end), padded)) return null;
  let o = 1;
  const take = (n: number): Uint8Array => b.slice(o, (o += n));
  return { kind: 'ok', nonce: take(NONCE), inviter: take(32), byPairwise: take(64), byInviter: take(64), mailboxEntry: e.list[0]!, providerEntry: e.list[1]! };
}
