import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  createKeystore, openKeystore, readKeystoreMeta, keystorePath, keystoreExists, readPassphrase, DEFAULT_SCRYPT,
} from '../../src/wallet/keystore.js';
import { isDeaddropError, type DeaddropError } from '../../src/util/errors.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const PASS = 'correct horse battery staple 42';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'keystore-'));
  dirs.push(d);
  return join(d, 'datadir');
}

async function caught(p: Promise<unknown>): Promise<DeaddropError> {
  try {
    await p;
  } catch (err) {
    return err as DeaddropError;
  }
  throw new Error('expected a rejection');
}

function expectNoSecrets(err: Error, ...secrets: string[]): void {
  for (const s of secrets) {
    expect(err.message).not.toContain(s);
    expect(String(err.stack)).not.toContain(s);
    expect(JSON.stringify((err as DeaddropError).details ?? {})).not.toContain(s);
  }
}

describe('keystore', () => {
  it('creates a 0600 file in a 0700 datadir and opens it with the passphrase', async () => {
    const dir = tmp();
    const created = await createKeystore(dir, { passphrase: PASS, network: 'regtest', birthdayHeight: 123, scrypt: FAST });
    expect(created.mnemonic.split(' ')).toHaveLength(24);
    expect(statSync(keystorePath(dir)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const text = readFileSync(keystorePath(dir), 'utf8');
    expect(text).not.toContain(created.mnemonic.split(' ')[0] + ' ' + created.mnemonic.split(' ')[1]);
    expect(JSON.parse(text)).toMatchObject({ version: 1, network: 'regtest', birthdayHeight: 123, kdf: { name: 'scrypt', N: 1024, r: 8, p: 1 } });
    const opened = await openKeystore(dir, PASS);
    expect(opened.mnemonic).toBe(created.mnemonic);
    expect(opened.meta).toEqual(created.meta);
    expect(await readKeystoreMeta(dir)).toMatchObject({ network: 'regtest', birthdayHeight: 123 });
    expect(await keystoreExists(dir)).toBe(true);
  });

  it('defaults to scrypt N = 2^17', () => {
    expect(DEFAULT_SCRYPT).toEqual({ N: 131072, r: 8, p: 1 });
  });

  it('refuses a wrong passphrase without revealing anything', async () => {
    const dir = tmp();
    const { mnemonic } = await createKeystore(dir, { passphrase: PASS, network: 'regtest', scrypt: FAST });
    const err = await caught(openKeystore(dir, 'not the passphrase'));
    expect(isDeaddropError(err, 'WRONG_PASSPHRASE')).toBe(true);
    expectNoSecrets(err, PASS, 'not the passphrase', mnemonic, ...mnemonic.split(' ').filter((w) => w.length > 5));
  });

  it('refuses a second create and changes nothing', async () => {
    const dir = tmp();
    const first = await createKeystore(dir, { passphrase: PASS, network: 'regtest', scrypt: FAST });
    const before = readFileSync(keystorePath(dir));
    const other = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
    const err = await caught(createKeystore(dir, { passphrase: 'other pass', network: 'mainnet', mnemonic: other, scrypt: FAST }));
    expect(isDeaddropError(err, 'ALREADY_INITIALIZED')).toBe(true);
    expectNoSecrets(err, PASS, 'other pass', first.mnemonic, other);
    expect(readFileSync(keystorePath(dir))).toEqual(before);
    expect((await openKeystore(dir, PASS)).mnemonic).toBe(first.mnemonic);
  });

  it('restores a given mnemonic (normalized)', async () => {
    const dir = tmp();
    const m = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
    await createKeystore(dir, { passphrase: PASS, network: 'signet', mnemonic: `  ${m.toUpperCase()}  `, scrypt: FAST });
    expect((await openKeystore(dir, PASS)).mnemonic).toBe(m);
  });

  it('rejects an invalid mnemonic and an empty passphrase, creating nothing', async () => {
    const dir = tmp();
    const bad = 'legal winner thank year wave sausage worth useful legal winner thank thank';
    const err = await caught(createKeystore(dir, { passphrase: PASS, network: 'regtest', mnemonic: bad, scrypt: FAST }));
    expect(isDeaddropError(err, 'BAD_INPUT')).toBe(true);
    expectNoSecrets(err, PASS, bad, 'sausage');
    expect(isDeaddropError(await caught(createKeystore(dir, { passphrase: '', network: 'regtest', scrypt: FAST })), 'BAD_INPUT')).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it('detects a tampered header (network) as a failed decryption', async () => {
    const dir = tmp();
    await createKeystore(dir, { passphrase: PASS, network: 'regtest', scrypt: FAST });
    const file = JSON.parse(readFileSync(keystorePath(dir), 'utf8'));
    writeFileSync(keystorePath(dir), JSON.stringify({ ...file, network: 'mainnet' }));
    expect(isDeaddropError(await caught(openKeystore(dir, PASS)), 'WRONG_PASSPHRASE')).toBe(true);
  });

  it('reports NOT_INITIALIZED and malformed files', async () => {
    const dir = tmp();
    expect(isDeaddropError(await caught(openKeystore(dir, PASS)), 'NOT_INITIALIZED')).toBe(true);
    expect(await keystoreExists(dir)).toBe(false);
    await createKeystore(dir, { passphrase: PASS, network: 'regtest', scrypt: FAST });
    const file = JSON.parse(readFileSync(keystorePath(dir), 'utf8'));
    writeFileSync(keystorePath(dir), JSON.stringify({ ...file, kdf: { ...file.kdf, N: 1000 } }));
    expect(isDeaddropError(await caught(openKeystore(dir, PASS)), 'PROTOCOL')).toBe(true);
  });

  it('one of two concurrent creates wins; the other gets ALREADY_INITIALIZED', async () => {
    const dir = tmp();
    const results = await Promise.allSettled([
      createKeystore(dir, { passphrase: 'a-pass', network: 'regtest', scrypt: FAST }),
      createKeystore(dir, { passphrase: 'b-pass', network: 'regtest', scrypt: FAST }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(isDeaddropError(failed[0]!.reason, 'ALREADY_INITIALIZED')).toBe(true);
  });
});

describe('readPassphrase', () => {
  it('takes DEADDROP_PASSPHRASE first', async () => {
    expect(await readPassphrase({ env: { DEADDROP_PASSPHRASE: 'from-env' } })).toBe('from-env');
  });

  it('fails clearly without a TTY or the variable', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: false });
    const err = await caught(readPassphrase({ env: {}, input }));
    expect(isDeaddropError(err, 'BAD_INPUT')).toBe(true);
    expect(err.message).toContain('DEADDROP_PASSPHRASE');
  });

  function tty(lines: string[]): { input: PassThrough & { isTTY: boolean }; output: PassThrough; written: () => string } {
    const input = Object.assign(new PassThrough(), { isTTY: true });
    const output = new PassThrough();
    let text = '';
    output.on('data', (d: Buffer) => (text += d.toString()));
    let i = 0;
    const feed = (): void => {
      if (i < lines.length) input.write(`${lines[i++]}\n`);
    };
    output.on('data', () => setImmediate(feed));
    return { input, output, written: () => text };
  }

  it('prompts on a terminal without echoing, and confirms', async () => {
    const t = tty(['s3cret-words', 's3cret-words']);
    const got = await readPassphrase({ env: {}, input: t.input, output: t.output, confirm: true });
    expect(got).toBe('s3cret-words');
    expect(t.written()).toContain('Passphrase:');
    expect(t.written()).toContain('Repeat passphrase:');
    expect(t.written()).not.toContain('s3cret');
  });

  it('refuses two different entries', async () => {
    const t = tty(['one-secret', 'two-secret']);
    const err = await caught(readPassphrase({ env: {}, input: t.input, output: t.output, confirm: true }));
    expect(isDeaddropError(err, 'BAD_INPUT')).toBe(true);
    expectNoSecrets(err, 'one-secret', 'two-secret');
  });
});
