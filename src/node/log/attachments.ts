/**
 * Attachments of feed entries, by capability (docs/protocol/node.md, "Attachments"): the file
 * itself is in storage (docs/protocol/storage.md); the entry carries its read capability in the
 * header field `attach`, a string of one line per attachment, `<read cap>` or `<read cap> <name>`
 * (the name is everything after the first space). Whoever can read the entry can read the file:
 * a read cap is a secret, and so is a feed shared with contacts.
 *
 * Parsing never throws: an entry is a stranger's input, and a malformed line is dropped.
 */
import { DeaddropError } from '../../util/errors.js';
import type { HeaderValue } from './codec.js';

/** The header key. */
export const ATTACH_KEY = 'attach';
export const MAX_ATTACHMENTS = 8;
export const MAX_ATTACHMENT_NAME = 200;

export interface Attachment {
  /** Read capability of the file (`dd-chk:r:…` or `dd-tahoe:…`). */
  readonly cap: string;
  /** File name the author gave, if any (a plain base name). */
  readonly name: string | null;
  /** Size in bytes when the capability states it (dd-chk caps do), else null. */
  readonly size: number | null;
}

// Read caps of both backends: dd-chk:r:<key>:<ueb>:<k>:<n>:<size> and dd-tahoe:URI:(CHK|LIT):…:<key>.
const CAP_RE = /^(?:dd-chk:r:[a-z2-7]{52}:[a-z2-7]{52}:\d{1,3}:\d{1,3}:\d{1,16}|dd-tahoe:URI:(?:CHK|LIT):[A-Za-z0-9:]{1,400})$/;

/** A plain base name: no path separators, no control characters, not `.` or `..`. */
export function isAttachmentName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name.length >= 1 && name.length <= MAX_ATTACHMENT_NAME && !/[/\\\u0000-\u001f\u007f]/.test(name) && name !== '.' && name !== '..' && name.trim() === name;
}

function sizeOf(cap: string): number | null {
  const m = /^dd-chk:r:.*:(\d+)$/.exec(cap);
  return m ? Number(m[1]) : null;
}

/** The `attach` header value for these attachments; bad capabilities or names are BAD_INPUT. */
export function formatAttachHeader(list: readonly { cap: string; name?: string | null }[]): string {
  if (list.length === 0 || list.length > MAX_ATTACHMENTS) throw DeaddropError.badInput(`an entry carries 1 to ${MAX_ATTACHMENTS} attachments`);
  return list.map((a) => {
    if (!CAP_RE.test(a.cap)) throw DeaddropError.badInput('an attachment needs a read capability (dd-chk:r:… or dd-tahoe:…), as `store put` prints it');
    if (a.name === undefined || a.name === null) return a.cap;
    if (!isAttachmentName(a.name)) throw DeaddropError.badInput(`an attachment name is a plain file name of 1 to ${MAX_ATTACHMENT_NAME} characters, without / or \\`);
    return `${a.cap} ${a.name}`;
  }).join('\n');
}

/** The attachments an `attach` header value lists; malformed lines are dropped. */
export function parseAttachHeader(value: HeaderValue | undefined): Attachment[] {
  if (typeof value !== 'string') return [];
  const out: Attachment[] = [];
  for (const line of value.split('\n').slice(0, MAX_ATTACHMENTS)) {
    const space = line.indexOf(' ');
    const cap = space < 0 ? line : line.slice(0, space);
    const name = space < 0 ? null : line.slice(space + 1);
    if (!CAP_RE.test(cap) || (name !== null && !isAttachmentName(name))) continue;
    out.push({ cap, name, size: sizeOf(cap) });
  }
  return out;
}
