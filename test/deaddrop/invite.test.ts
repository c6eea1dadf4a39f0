/** `deaddrop:` invites: strict parsing, canonical formatting, QR rendering. */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { formatInvite, inviteQrPng, inviteQrSvg, inviteQrTerminal, parseInvite, qrText, writeInviteQrPng } from '../../src/deaddrop/invite.js';
import { encodeAddress } from '../../src/deaddrop/bip352.js';
import { scalar, secp } from '../../src/util/secp.js';
import { isDeaddropError, type ErrorCode } from '../../src/util/errors.js';
import { expectCode } from '../support/errors.js';

const point = (n: bigint): Uint8Array => secp.pointFromScalar(scalar.fromBigInt(n)) as Uint8Array;
const address = encodeAddress(point(5n), point(6n), 'regtest');
const mainnet = encodeAddress(point(5n), point(6n), 'mainnet');

describe('parse and format', () => {
  it('round-trips every field in canonical order', () => {
    const uri = formatInvite({ address, label: 'Bob & Co — ünïcode', birthday: 120, hints: ['1.2.3.4:8080', 'wss://relay.example.org/dd'] });
    expect(uri).toBe(
      `deaddrop:${address}?label=Bob%20%26%20Co%20%E2%80%94%20%C3%BCn%C3%AFcode&birthday=120` +
        '&hint=ws%3A%2F%2F1.2.3.4%3A8080&hint=wss%3A%2F%2Frelay.example.org%2Fdd',
    );
    const inv = parseInvite(uri, 'regtest');
    expect(inv).toMatchObject({ address, label: 'Bob & Co — ünïcode', birthday: 120, hints: ['ws://1.2.3.4:8080', 'wss://relay.example.org/dd'], networks: ['regtest'] });
    expect(formatInvite(inv)).toBe(uri);
  });

  it('accepts a bare address, an upper-case QR form and surrounding whitespace', () => {
    expect(parseInvite(address).label).toBeNull();
    expect(parseInvite(`  DEADDROP:${address.toUpperCase()}  `).address).toBe(address);
    expect(parseInvite(`deaddrop:${mainnet}`).networks).toEqual(['mainnet']);
    expect(formatInvite({ address })).toBe(`deaddrop:${address}`);
  });

  it('refuses malformed invites with clear codes', () => {
    const cases: [string, ErrorCode][] = [
      [`bitcoin:${address}`, 'BAD_INPUT'],
      [`deaddrop:${address}?`, 'BAD_INPUT'],
      [`deaddrop:${address}?label=a&label=b`, 'BAD_INPUT'],
      [`deaddrop:${address}?label=`, 'BAD_INPUT'],
      [`deaddrop:${address}?label=${'x'.repeat(65)}`, 'BAD_INPUT'],
      [`deaddrop:${address}?label=a%1Bb`, 'BAD_INPUT'],
      [`deaddrop:${address}?label=%E2%80`, 'BAD_INPUT'],
      [`deaddrop:${address}?birthday=012`, 'BAD_INPUT'],
      [`deaddrop:${address}?birthday=-1`, 'BAD_INPUT'],
      [`deaddrop:${address}?birthday=1700000000`, 'BAD_INPUT'],
      [`deaddrop:${address}?birthday=1&birthday=2`, 'BAD_INPUT'],
      [`deaddrop:${address}?amount=1`, 'BAD_INPUT'],
      [`deaddrop:${address}?hint=ftp%3A%2F%2Fx`, 'BAD_INPUT'],
      [`deaddrop:${address}?hint=a.example:1&hint=b.example:1&hint=c.example:1&hint=d.example:1&hint=e.example:1`, 'BAD_INPUT'],
      [`deaddrop:${address}?label`, 'BAD_INPUT'],
      ['deaddrop:sprt1qqqqqqq', 'BAD_ADDRESS'],
      [`deaddrop:${address.slice(0, -1)}x`, 'BAD_ADDRESS'],
      [`deaddrop:${address}`.padEnd(3000, 'x'), 'BAD_INPUT'],
    ];
    for (const [uri, code] of cases) expectCode(() => parseInvite(uri), code);
    expectCode(() => parseInvite(address, 'mainnet'), 'WRONG_NETWORK');
    expectCode(() => formatInvite({ address, birthday: 1.5 }), 'BAD_INPUT');
    expect(() => parseInvite(3 as unknown as string)).toThrow(TypeError);
  });

  it('never throws anything but DeaddropError on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        for (const t of [s, `deaddrop:${address}?${s}`]) {
          try {
            parseInvite(t);
          } catch (e) {
            expect(isDeaddropError(e)).toBe(true);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('QR codes', () => {
  const uri = formatInvite({ address, label: 'Bob', birthday: 7 });

  it('upper-cases scheme and address so they encode alphanumerically', () => {
    expect(qrText(uri)).toBe(`DEADDROP:${address.toUpperCase()}?label=Bob&birthday=7`);
    expect(parseInvite(qrText(uri))).toMatchObject({ address, label: 'Bob', birthday: 7 });
  });

  it('renders for a terminal, as SVG and as PNG', async () => {
    const term = await inviteQrTerminal(uri);
    expect(term).toMatch(/[▀▄█]/);
    const lines = term.trim().split('\n');
    expect(lines.length).toBeGreaterThan(15);
    expect(lines.length).toBeLessThan(45);
    const svg = await inviteQrSvg(uri);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('<path');
    const png = await inviteQrPng(uri);
    expect(Buffer.from(png.subarray(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');
    const dir = mkdtempSync(path.join(tmpdir(), 'dd-qr-'));
    try {
      const file = path.join(dir, 'invite.png');
      await writeInviteQrPng(file, uri);
      expect(readFileSync(file).subarray(0, 4).toString('hex')).toBe('89504e47');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to render an invalid invite', async () => {
    await expect(inviteQrSvg('deaddrop:nope')).rejects.toThrow(/address/);
  });
});
