/**
 * Shared files: a read capability travels as a group message (src/node/groups/files.ts), so it
 * opens only for the members its sender's key was sealed to. A member removed afterwards cannot
 * unwrap the capability of a file shared after its removal: not from its whole database (every
 * sealed value opened with its own key, every window tried as a key), not as a substring of
 * anything it holds. It does keep the capabilities of files shared before, and the storage layer
 * decrypts those with the capability alone: the positive control shows it.
 */
import { describe, expect, it } from 'vitest';
import { FILE_SHARE_MAGIC, decodeFileShare, encodeFileShare, isFileShare } from '../../../src/node/groups/files.js';
import { decodeMessage } from '../../../src/node/groups/message.js';
import { decodeFile, encodeFile } from '../../../src/node/storage/immutable.js';
import { concatBytes } from '../../../src/util/bytes.js';
import { expectCode } from '../../support/errors.js';
import { bruteForce, everythingHeld } from './held.js';
import { World, text } from './world.js';

const contains = (hay: Uint8Array, needle: Uint8Array): boolean => Buffer.from(hay).includes(Buffer.from(needle));

describe('groups: shared files', () => {
  it('file share plaintexts round-trip; text and malformed shares are not files', () => {
    const f = { cap: encodeFile(text('hello'), { k: 1, n: 2 }).readCap, name: 'notes é.txt', size: 5 };
    expect(decodeFileShare(encodeFileShare(f))).toEqual(f);
    expect(decodeFileShare(text('just text'))).toBeNull();
    expect(isFileShare(text('just text'))).toBe(false);
    const raw = encodeFileShare(f);
    expect(isFileShare(raw)).toBe(true);
    // truncated, extended, bad UTF-8 name, non-printable cap: all null, never a throw
    for (let cut = 0; cut < raw.length; cut++) expect(decodeFileShare(raw.subarray(0, cut))).toBeNull();
    expect(decodeFileShare(concatBytes(raw, Uint8Array.of(0)))).toBeNull();
    const badName = raw.slice();
    badName[FILE_SHARE_MAGIC.length + 9] = 0xff;
    expect(decodeFileShare(badName)).toBeNull();
    const badCap = raw.slice();
    badCap[raw.length - 1] = 0x20;
    expect(decodeFileShare(badCap)).toBeNull();
    expectCode(() => encodeFileShare({ ...f, name: 'x'.repeat(256) }), 'BAD_INPUT');
    expectCode(() => encodeFileShare({ ...f, cap: 'has space' }), 'BAD_INPUT');
  });

  it('a removed member cannot unwrap the capability of a file shared after its removal, even from a silent sharer', () => {
    const w = new World();
    const [alice, bob, carol, dave] = [w.party('alice', 1), w.party('bob', 2), w.party('carol', 3), w.party('dave', 4)];
    const { group, outgoing } = alice.member.create('team');
    w.send(outgoing);
    for (const p of [bob, carol, dave]) w.send(alice.member.add(group, p.identity.publicKey));

    // before the removal: dave shares a file; carol unwraps its capability, as every member does
    const before = encodeFile(text('plans, shared while carol was in'), { k: 2, n: 3 });
    w.send(dave.member.post(group, encodeFileShare({ cap: before.readCap, name: 'plans.txt', size: 32 })).outgoing);
    const carolSaw = carol.read.map((r) => decodeFileShare(r.plaintext)).filter((f) => f !== null);
    expect(carolSaw.map((f) => f.name)).toEqual(['plans.txt']);

    w.send(alice.member.remove(group, carol.identity.publicKey));
    // dave stays silent through the removal, then shares again
    const after = encodeFile(text('plans, shared after carol left'), { k: 2, n: 3 });
    const share = dave.member.post(group, encodeFileShare({ cap: after.readCap, name: 'plans-2.txt', size: 30 }));
    w.send(share.outgoing);
    for (const p of [alice, bob]) {
      const f = decodeFileShare(p.read.at(-1)!.plaintext);
      expect(f?.cap).toBe(after.readCap);
      // and the capability alone reads the file from its shares
      expect(decodeFile(f!.cap, after.shares)).toEqual(text('plans, shared after carol left'));
    }

    expect(carol.member.receiveMessage(share.message).status).toBe('refused');
    const held = everythingHeld(carol);
    expect(bruteForce(held, decodeMessage(share.message))).toBeNull();
    expect(held.some((b) => contains(b, text(after.readCap)))).toBe(false);
    // what she does keep: the capability of the file shared before, and with it the file
    expect(held.some((b) => contains(b, text(before.readCap)))).toBe(true);
    expect(decodeFile(before.readCap, before.shares)).toEqual(text('plans, shared while carol was in'));
  });
});
