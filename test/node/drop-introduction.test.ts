import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PeerNode } from '../../src/node/node.js';
import { NodeIdentity } from '../../src/node/identity.js';
import { carriedExpiry, introductionFromDrop, issueNodeIntroduction, nodeSeed } from '../../src/node/drop-introduction.js';
import { contactCardDraft, readContactCard } from '../../src/node/contact-card.js';
import { createEntry, ZERO_HASH } from '../../src/node/log/codec.js';
import { sha256, utf8 } from '../../src/node/crypto.js';
import { dropTokenId, expandDropToken } from '../../src/node/introduction-token.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { encodePayload, decodePayload } from '../../src/deaddrop/codec.js';
import { payloadToJson } from '../../src/deaddrop/watch/candidates.js';
import { toHex } from '../../src/util/bytes.js';
import { expectCode } from '../support/errors.js';

const root = mkdtempSync(join(tmpdir(), 'dd-drop-invite-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';

describe('node identity from the wallet', () => {
  it('is deterministic per seed and network, and not the raw node key', () => {
    const keys = WalletKeys.fromMnemonic(MNEMONIC, 'regtest');
    const seed = nodeSeed(keys);
    expect(seed).toHaveLength(32);
    expect(toHex(nodeSeed(WalletKeys.fromMnemonic(MNEMONIC, 'regtest')))).toBe(toHex(seed));
    expect(toHex(nodeSeed(WalletKeys.fromMnemonic(MNEMONIC, 'mainnet')))).not.toBe(toHex(seed));
    expect(toHex(seed)).not.toBe(toHex(keys.nodeKey().privateKey));
  });
});

describe('drop invites', () => {
  it('an invite issued into the database, carried by a drop payload, is accepted by the running node once', async () => {
    const seed = sha256(utf8('inviter'));
    const dbPath = join(root, 'inviter.sqlite');
    const inviter = new PeerNode({ seed, dbPath, inviteWaitMs: 2000 });
    const joiner = new PeerNode({ seed: sha256(utf8('joiner')), dbPath: join(root, 'joiner.sqlite'), inviteWaitMs: 2000 });
    const other = new PeerNode({ seed: sha256(utf8('other')), dbPath: join(root, 'other.sqlite'), inviteWaitMs: 2000 });
    try {
      await Promise.all([inviter.ready(), joiner.ready(), other.ready()]);
      // issued by another connection to the node's database while the node runs (as `drop send` does)
      const inv = issueNodeIntroduction({ seed, dbPath, expiresAt: Math.floor(Date.now() / 1000) + 3600, endpoints: inviter.endpoints });
      expect(inv.token).toHaveLength(8);
      expect(inv.expiresAt! % 3600).toBe(0);
      // through the drop payload codec and the watcher's JSON, as the recipient sees it
      const payload = decodePayload(encodePayload({ ...inv, message: 'hi' }, 72));
      expect(payload).not.toBeNull();
      const found = introductionFromDrop(payloadToJson(payload!));
      expect(found?.message).toBe('hi');
      const contact = await joiner.bootstrapFromIntroduction(found!.introduction);
      expect(toHex(contact.node)).toBe(toHex(inviter.id));
      expect(toHex(contact.pairwiseKey!)).toBe(toHex(inv.nodeKey));
      await expectCode(other.bootstrapFromIntroduction(found!.introduction), 'REJECTED');
      // a drop token that was never issued
      const forged = { ...found!.introduction, token: expandDropToken(new Uint8Array(8), inv.nodeKey) };
      await expectCode(other.bootstrapFromIntroduction(forged), 'REJECTED');
    } finally {
      await Promise.all([inviter.close(), joiner.close(), other.close()]);
    }
  });

  it('rounds expiries up to the hour and refuses ones already past', () => {
    expect(carriedExpiry(null)).toBeNull();
    expect(carriedExpiry(3601)).toBe(7200);
    expect(carriedExpiry(7200)).toBe(7200);
    expect(() => issueNodeIntroduction({ seed: sha256(utf8('x')), dbPath: join(root, 'x.sqlite'), expiresAt: 3600 })).toThrow(/expired/);
  });

  it('tokens are bound to the pairwise key', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (t, k) => {
      const token = expandDropToken(t, k);
      expect(token).toHaveLength(32);
      expect(toHex(token.subarray(0, 16))).toBe(toHex(dropTokenId(t)));
      const k2 = k.slice();
      k2[0] = k2[0]! ^ 1;
      expect(toHex(expandDropToken(t, k2))).not.toBe(toHex(token));
    }));
  });

  it('unusable payloads give null, never a throw', () => {
    const good = { nodeKey: 'ab'.repeat(32), token: 'cd'.repeat(8), endpoints: ['ws://1.2.3.4:9000'], expiresAt: null, message: '' };
    expect(introductionFromDrop(good)).not.toBeNull();
    for (const bad of [
      { ...good, nodeKey: 'ab' },
      { ...good, token: 'zz'.repeat(8) },
      { ...good, endpoints: [] },
      { ...good, endpoints: ['http://1.2.3.4'] },
      { ...good, endpoints: 'ws://1.2.3.4:9000' },
      {},
    ]) expect(introductionFromDrop(bad as Record<string, unknown>)).toBeNull();
  });

  it('reads a mixnet hint as a provider id to answer over the mixnet, with or without an endpoint', () => {
    const base = { nodeKey: 'ab'.repeat(32), token: 'cd'.repeat(8), expiresAt: null, message: '' };
    const only = introductionFromDrop({ ...base, endpoints: ['mixnet:0123456789abcdef'] });
    expect(only?.introduction.endpoints).toEqual([]);
    expect(toHex(only!.mixnetProvider!)).toBe('0123456789abcdef');
    const both = introductionFromDrop({ ...base, endpoints: ['ws://1.2.3.4:9000', 'mixnet:0123456789abcdef'] });
    expect(both?.introduction.endpoints).toEqual(['ws://1.2.3.4:9000']);
    expect(toHex(both!.mixnetProvider!)).toBe('0123456789abcdef');
    expect(introductionFromDrop({ ...base, endpoints: ['ws://1.2.3.4:9000'] })?.mixnetProvider).toBeNull();
    for (const bad of ['mixnet:0123', 'mixnet:0123456789ABCDEF', 'mixnet:', 5]) expect(introductionFromDrop({ ...base, endpoints: [bad] })).toBeNull();
  });

  it('keeps .onion endpoints only for a node that runs with Tor', () => {
    const onion = `ws://${'a'.repeat(52)}aaad.onion`; // shape only: parseEndpoint checks the URL, not the checksum
    const onlyOnion = { nodeKey: 'ab'.repeat(32), token: 'cd'.repeat(8), endpoints: [onion], expiresAt: null, message: '' };
    expect(introductionFromDrop(onlyOnion)).toBeNull();
    expect(introductionFromDrop(onlyOnion, { onion: true })?.introduction.endpoints).toEqual([onion]);
    const mixed = { ...onlyOnion, endpoints: [onion, 'ws://1.2.3.4:9000'] };
    expect(introductionFromDrop(mixed)?.introduction.endpoints).toEqual(['ws://1.2.3.4:9000']);
    expect(introductionFromDrop(mixed, { onion: true })?.introduction.endpoints).toEqual([onion, 'ws://1.2.3.4:9000']);
  });
});

describe('contact cards', () => {
  const alice = NodeIdentity.fromSeed(sha256(utf8('alice')));
  const bob = NodeIdentity.fromSeed(sha256(utf8('bob')));
  const carol = NodeIdentity.fromSeed(sha256(utf8('carol')));
  const ADDRESS = 'sprt1qexample';

  function entryOf(author: NodeIdentity, draft: NonNullable<ReturnType<typeof contactCardDraft>>) {
    return createEntry(author, { seq: 1, prev: ZERO_HASH, timestamp: 1, header: draft.header, body: draft.body ?? new Uint8Array(0) });
  }

  it('only the contact it was sealed to reads it', () => {
    const draft = contactCardDraft(alice, bob.publicKey, ADDRESS)!;
    const entry = entryOf(alice, draft);
    expect(readContactCard(bob, entry)).toBe(ADDRESS);
    expect(readContactCard(carol, entry)).toBeNull();
    expect(new TextDecoder().decode(entry.body)).not.toContain(ADDRESS);
  });

  it('a card copied into another author\'s feed, tampered with or truncated is refused', () => {
    const draft = contactCardDraft(alice, bob.publicKey, ADDRESS)!;
    expect(readContactCard(bob, entryOf(carol, draft))).toBeNull();
    const flipped = draft.body!.slice();
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    expect(readContactCard(bob, entryOf(alice, { ...draft, body: flipped }))).toBeNull();
    expect(readContactCard(bob, entryOf(alice, { ...draft, body: draft.body!.subarray(0, 10) }))).toBeNull();
    expect(readContactCard(bob, entryOf(alice, { header: { type: 'post' }, body: draft.body! }))).toBeNull();
  });
});
