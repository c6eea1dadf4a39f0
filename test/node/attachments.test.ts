/** Feed attachments by capability (src/node/log/attachments.ts): the `attach` header, both ways. */
import { describe, expect, it } from 'vitest';
import { formatAttachHeader, isAttachmentName, MAX_ATTACHMENTS, parseAttachHeader } from '../../src/node/log/attachments.js';
import { encodeFile } from '../../src/node/storage/immutable.js';
import { DeaddropError } from '../../src/util/errors.js';

const cap = encodeFile(new Uint8Array(1234)).readCap;
const tahoe = `dd-tahoe:URI:CHK:${'a'.repeat(26)}:${'b'.repeat(52)}:2:4:1050:${'c'.repeat(52)}`;

describe('feed attachments (header attach)', () => {
  it('formats and parses caps with and without names, sizes from dd-chk caps', () => {
    const h = formatAttachHeader([{ cap, name: 'my photo.jpg' }, { cap: tahoe }]);
    expect(h).toBe(`${cap} my photo.jpg\n${tahoe}`);
    expect(parseAttachHeader(h)).toEqual([{ cap, name: 'my photo.jpg', size: 1234 }, { cap: tahoe, name: null, size: null }]);
  });

  it('refuses verify caps, junk, bad names and too many attachments', () => {
    const verify = encodeFile(new Uint8Array(3)).verifyCap;
    for (const bad of [[{ cap: verify }], [{ cap: 'hello' }], [{ cap, name: 'a/b' }], [{ cap, name: '..' }], [{ cap, name: 'x\ny' }], [], Array(MAX_ATTACHMENTS + 1).fill({ cap })]) {
      let err: unknown;
      try {
        formatAttachHeader(bad as { cap: string; name?: string }[]);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad).slice(0, 60)).toBeInstanceOf(DeaddropError);
      expect((err as DeaddropError).code).toBe('BAD_INPUT');
    }
  });

  it('drops malformed lines from a stranger and never throws', () => {
    expect(parseAttachHeader(`junk\n${cap} ../../etc/passwd\n${cap} ok\n\n${cap}x`)).toEqual([{ cap, name: 'ok', size: 1234 }]);
    expect(parseAttachHeader(new Uint8Array(4))).toEqual([]);
    expect(parseAttachHeader(7)).toEqual([]);
    expect(parseAttachHeader(undefined)).toEqual([]);
    expect(isAttachmentName(' lead')).toBe(false);
    expect(isAttachmentName('x'.repeat(201))).toBe(false);
  });
});
