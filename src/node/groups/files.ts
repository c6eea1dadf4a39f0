/**
 * Shared files (docs/protocol/groups.md section 11): the Cryptree idea with sender keys. A file
 * is put into the storage layer as usual; its read capability (which both locates and decrypts
 * it) is then sent to the group as a group message, so it is wrapped under the sender's current
 * sender key and opens only for the members that key was sealed to. Membership therefore decides
 * who can read files shared from then on: after a removal every sender rotates before it next
 * sends (lazy rotation), so a cap shared afterwards is closed to the removed member.
 *
 *   plaintext = "\0deaddrop/group-file/v1\0" (24 bytes) | size:u64 | nameLen:u8 | name (UTF-8)
 *               | capLen:u16 | cap (printable ASCII)
 *
 * A text message never starts with a NUL (GroupService.post refuses it), so the two kinds of
 * plaintext cannot be confused. `decodeFileShare` is total: null for anything else.
 */
import { concatBytes, equalBytes } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { utf8 } from '../crypto.js';

export const FILE_SHARE_MAGIC = utf8('\0deaddrop/group-file/v1\0');
/** Longest file name carried (UTF-8 bytes). */
export const MAX_FILE_NAME_BYTES = 255;
/** Longest capability carried (ours are about 120 characters; Tahoe's about 150). */
export const MAX_CAP_CHARS = 1024;

/** A file shared with a group: its read capability, a name and its size. */
export interface FileShare {
  readonly cap: string;
  readonly name: string;
  readonly size: number;
}

const PRINTABLE = /^[\x21-\x7e]+$/;

/** The plaintext of a file share; BAD_INPUT for a name or capability out of range. */
export function encodeFileShare(f: FileShare): Uint8Array {
  const name = utf8(f.name);
  if (name.length > MAX_FILE_NAME_BYTES) throw DeaddropError.badInput(`file name: at most ${MAX_FILE_NAME_BYTES} UTF-8 bytes`);
  if (f.cap.length === 0 || f.cap.length > MAX_CAP_CHARS || !PRINTABLE.test(f.cap)) throw DeaddropError.badInput('capability: 1 to 1024 printable ASCII characters');
  if (!Number.isSafeInteger(f.size) || f.size < 0) throw new RangeError(`size must be a non-negative safe integer, got ${f.size}`);
  const head = new Uint8Array(8 + 1);
  new DataView(head.buffer).setBigUint64(0, BigInt(f.size));
  head[8] = name.length;
  const capLen = new Uint8Array(2);
  new DataView(capLen.buffer).setUint16(0, f.cap.length);
  return concatBytes(FILE_SHARE_MAGIC, head, name, capLen, utf8(f.cap));
}

/** Whether a group plaintext is a file share (well formed or not). */
export function isFileShare(plaintext: Uint8Array): boolean {
  return plaintext.length >= FILE_SHARE_MAGIC.length && equalBytes(plaintext.subarray(0, FILE_SHARE_MAGIC.length), FILE_SHARE_MAGIC);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The file share in a group plaintext, or null (a text message, or malformed). Never throws. */
export function decodeFileShare(plaintext: Uint8Array): FileShare | null {
  try {
    if (!isFileShare(plaintext)) return null;
    const b = plaintext.subarray(FILE_SHARE_MAGIC.length);
    const v = new DataView(b.buffer, b.byteOffset, b.length);
    const size = v.getBigUint64(0);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    const nameLen = b[8]!;
    if (b.length < 9 + nameLen + 2) return null;
    const name = strictUtf8.decode(b.subarray(9, 9 + nameLen));
    const capLen = v.getUint16(9 + nameLen);
    const capBytes = b.subarray(11 + nameLen);
    if (capBytes.length !== capLen || capLen === 0 || capLen > MAX_CAP_CHARS) return null;
    const cap = String.fromCharCode(...capBytes);
    if (!PRINTABLE.test(cap)) return null;
    return { cap, name, size: Number(size) };
  } catch {
    return null;
  }
}
