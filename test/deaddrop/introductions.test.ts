/**
 * The introducer's ledger (mode 0600), the node issuer (a fresh pairwise key and a token the
 * datadir's peer node will accept, per introduction) and the checks `drop send` runs before
 * unlocking anything.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntroductionLedger, INTRODUCTIONS_DB } from '../../src/deaddrop/introductions.js';
import {
  checkIntroduction, parseLifetime, parseRecipient, walletInvite, walletSilentAddress, VARIABLE_BYTES,
} from '../../src/deaddrop/publish.js';
import { parseInvite } from '../../src/deaddrop/invite.js';
import { ContactStore } from '../../src/node/contacts.js';
import { openNodeDatabase } from '../../src/node/db.js';
import { nodeIssuer } from '../../src/node/drop-introduction.js';
import { nodeDbPath } from '../../src/node/drop-introduction.js';
import { dropTokenId } from '../../src/node/introduction-token.js';
import { WalletKeys } from '../../src/wallet/keys.js';
import { expectCode } from '../support/errors.js';

const MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const keys = WalletKeys.fromMnemonic(MNEMONIC, 'regtest');
const RECIPIENT = walletSilentAddress(WalletKeys.fromMnemonic('zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong', 'regtest'));

const key = (b: number): Uint8Array => new Uint8Array(32).fill(b);

describe('IntroductionLedger', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dd-intro-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('numbers introductions without reuse across reopening and records which key went to which drop', () => {
    let ledger = IntroductionLedger.open(dir, { now: () => 1000 });
    const a = ledger.reserve({ nodeKey: key(1), expiresAt: 7200, recipient: RECIPIENT, label: 'Bob', endpoints: ['ws://1.2.3.4:5'] });
    const b = ledger.reserve({ nodeKey: key(2), expiresAt: null, recipient: RECIPIENT, endpoints: [] });
    ledger.markSent(a, 'ab'.repeat(32), 1);
    ledger.markFailed(b);
    ledger.markFailed(a); // a sent introduction stays sent
    ledger.close();
    ledger = IntroductionLedger.open(dir);
    const c = ledger.reserve({ nodeKey: key(3), expiresAt: null, recipient: RECIPIENT, endpoints: [] });
    expect([a, b, c]).toEqual([1, 2, 3]);
    expect(ledger.list().map((r) => [r.number, r.status, r.txid, r.nodeKey.slice(0, 4)])).toEqual([
      [1, 'sent', 'ab'.repeat(32), '0101'], [2, 'failed', null, '0202'], [3, 'reserved', null, '0303'],
    ]);
    expect(ledger.get(1)).toMatchObject({ label: 'Bob', endpoints: ['ws://1.2.3.4:5'], expiresAt: 7200, vout: 1, createdAt: 1000, sentAt: 1000 });
    // A pairwise key can never be recorded for two introductions.
    expect(() => ledger.reserve({ nodeKey: key(1), expiresAt: null, recipient: RECIPIENT, endpoints: [] })).toThrow(/UNIQUE/);
    ledger.close();
    expect(() => ledger.list()).toThrow(/closed/);
  });

  it('keeps the file private (mode 0600)', () => {
    IntroductionLedger.open(dir).close();
    expect(statSync(join(dir, INTRODUCTIONS_DB)).mode & 0o777).toBe(0o600);
  });

  it('has the datadir\'s node issue a fresh pairwise key and a token it will accept, per introduction', () => {
    const issue = nodeIssuer(keys, dir);
    const now = Math.floor(Date.now() / 1000);
    const one = issue(now + 3600);
    const two = issue(null);
    expect(one.nodeKey).toHaveLength(32);
    expect(one.token).toHaveLength(8);
    expect(Buffer.from(one.nodeKey).equals(Buffer.from(two.nodeKey))).toBe(false);
    expect(Buffer.from(one.token).equals(Buffer.from(two.token))).toBe(false);
    expect(one.expiresAt! % 3600).toBe(0);
    expect(one.expiresAt!).toBeGreaterThanOrEqual(now + 3600);
    expect(two.expiresAt).toBeNull();
    const db = openNodeDatabase(nodeDbPath(dir));
    try {
      const contacts = new ContactStore(db);
      const row = contacts.getIntroductionToken(dropTokenId(one.token));
      expect(row?.expiresAt).toBe(one.expiresAt! * 1000);
      expect(row?.usedAt).toBeNull();
      expect(contacts.getIntroductionToken(dropTokenId(two.token))).not.toBeNull();
      expect(contacts.getIntroductionToken(dropTokenId(new Uint8Array(8)))).toBeNull();
    } finally {
      db.close();
    }
    expectCode(() => issue(now - 7200), 'BAD_INPUT', /already be expired/);
  });
});

describe('introduction checks', () => {
  it('says how many bytes are left for the message', () => {
    expect(VARIABLE_BYTES).toBe(28);
    expect(checkIntroduction({ endpoints: ['1.2.3.4:9000'], message: 'x'.repeat(21) })).toEqual({ endpoints: ['ws://1.2.3.4:9000'], message: 'x'.repeat(21) });
    expect(expectCode(() => checkIntroduction({ endpoints: ['ws://1.2.3.4:9000'], message: 'x'.repeat(22) }), 'BAD_INPUT').message).toBe('message too long: 22 bytes, 21 available (72-byte introduction: 44 fixed, 7 for endpoints)');
    // Multi-byte characters count as bytes.
    expectCode(() => checkIntroduction({ endpoints: ['ws://1.2.3.4:9000'], message: 'é'.repeat(11) }), 'BAD_INPUT', /22 bytes, 21 available/);
    expectCode(() => checkIntroduction({ endpoints: ['ws://1.2.3.4:9000'], onionPort: 80, message: 'x'.repeat(19) }), 'BAD_INPUT', /19 bytes, 18 available/);
    expectCode(() => checkIntroduction({ endpoints: ['ws://[2001:db8::1]:1', 'ws://1.2.3.4:5'], message: 'abc' }), 'BAD_INPUT', /3 bytes, 2 available .* 26 for endpoints/);
    expectCode(() => checkIntroduction({ endpoints: ['ws://[2001:db8::1]:1', 'ws://[2001:db8::2]:1'] }), 'BAD_INPUT', /endpoints need 38 bytes but an introduction has 28/);
    expectCode(() => checkIntroduction({ endpoints: [] }), 'BAD_INPUT', /at least one --endpoint/);
    expectCode(() => checkIntroduction({ endpoints: ['ftp://x'] }), 'BAD_INPUT', /^endpoint:/);
    expectCode(() => checkIntroduction({ endpoints: ['1.2.3.4:1'], message: 'a\u0007' }), 'BAD_INPUT', /control characters/);
  });

  it('parses token lifetimes', () => {
    expect(parseLifetime('30d')).toBe(30 * 86_400);
    expect(parseLifetime('12h')).toBe(12 * 3600);
    expect(parseLifetime('90m')).toBe(90 * 60);
    expect(parseLifetime('never')).toBeNull();
    for (const bad of ['', '0d', '3y', '1.5h', '-1d', '99999d']) expectCode(() => parseLifetime(bad), 'BAD_INPUT');
  });

  it('accepts an invite or a bare address as recipient, with clear errors otherwise', () => {
    const invite = walletInvite(keys, { label: 'Bob', birthday: 120, hints: ['1.2.3.4:9'] });
    expect(invite.uri).toMatch(/^deaddrop:sprt1q[0-9a-z]+\?label=Bob&birthday=120&hint=ws%3A%2F%2F1\.2\.3\.4%3A9$/);
    expect(parseInvite(invite.uri, 'regtest').address).toBe(invite.address);
    expect(parseRecipient(invite.uri, 'regtest').address).toBe(invite.address);
    expect(parseRecipient(invite.address, 'regtest').label).toBeNull();
    expectCode(() => parseRecipient('bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', 'regtest'), 'BAD_ADDRESS', /^not a deaddrop invite or silent-payment address/);
    expectCode(() => parseRecipient(walletSilentAddress(WalletKeys.fromMnemonic(MNEMONIC, 'testnet')), 'regtest'), 'WRONG_NETWORK');
    expectCode(() => parseRecipient(`${invite.uri}&colour=red`, 'regtest'), 'BAD_INPUT', /unknown parameter/);
  });
});
