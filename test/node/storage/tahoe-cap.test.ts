/**
 * The Tahoe backend's pure parts: capability format, URL validation, check-JSON decoding.
 */
import { describe, expect, it } from 'vitest';
import { parseCheckJson, parseTahoeUrl, tahoeReason } from '../../../src/node/storage/tahoe-backend.js';
import { formatTahoeReadCap, parseTahoeReadCap, parseTahoeVerifyCap, tahoeCheckTarget, tahoeVerifyCapOf } from '../../../src/node/storage/tahoe-cap.js';
import { expectCode } from '../../support/errors.js';

// A real CHK cap shape: 26 base32 chars of key, 52 of UEB hash, k:n:size.
const CHK = `URI:CHK:${'b'.repeat(25)}q:${'c'.repeat(51)}q:2:4:1016`;
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const KEY_B32 = 'aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq';

describe('Tahoe read and verify capabilities', () => {
  it('formats and parses dd-tahoe:<Tahoe cap>:<base32 key> for CHK and LIT', () => {
    const cap = formatTahoeReadCap({ tahoeCap: CHK, key: KEY });
    expect(cap).toBe(`dd-tahoe:${CHK}:${KEY_B32}`);
    expect(parseTahoeReadCap(cap)).toEqual({ tahoeCap: CHK, key: KEY });
    const lit = `URI:LIT:${'m'.repeat(24)}`;
    expect(parseTahoeReadCap(`dd-tahoe:${lit}:${KEY_B32}`)).toEqual({ tahoeCap: lit, key: KEY });
  });

  it('derives a verify cap that holds the Tahoe cap and not the key', () => {
    const v = tahoeVerifyCapOf(`dd-tahoe:${CHK}:${KEY_B32}`);
    expect(v).toBe(`dd-tahoe-v:${CHK}`);
    expect(parseTahoeVerifyCap(v)).toEqual({ tahoeCap: CHK });
    expect(tahoeCheckTarget(v)).toEqual({ tahoeCap: CHK, params: { needed: 2, total: 4, size: 1016 } });
    expect(tahoeCheckTarget(`dd-tahoe:${CHK}:${KEY_B32}`)).toEqual(tahoeCheckTarget(v));
  });

  const bad: [string, string][] = [
    ['empty', ''],
    ['another scheme', `dd-chk:r:${KEY_B32}`],
    ['a bare Tahoe cap', CHK],
    ['no key', `dd-tahoe:${CHK}`],
    ['an empty key', `dd-tahoe:${CHK}:`],
    ['a short key', `dd-tahoe:${CHK}:${KEY_B32.slice(0, -1)}`],
    ['a long key', `dd-tahoe:${CHK}:${KEY_B32}a`],
    ['an uppercase key', `dd-tahoe:${CHK}:${KEY_B32.toUpperCase()}`],
    ['a key with non-zero padding bits', `dd-tahoe:${CHK}:${KEY_B32.slice(0, -1)}r`],
    ['a mutable cap', `dd-tahoe:URI:SSK:${'a'.repeat(26)}:${'b'.repeat(52)}:${KEY_B32}`],
    ['a directory cap', `dd-tahoe:URI:DIR2-CHK:${'a'.repeat(26)}:${'b'.repeat(52)}:2:4:10:${KEY_B32}`],
    ['a CHK-Verifier', `dd-tahoe:URI:CHK-Verifier:${'a'.repeat(26)}:${'b'.repeat(52)}:2:4:10:${KEY_B32}`],
    ['k > n', `dd-tahoe:${CHK.replace(':2:4:', ':5:4:')}:${KEY_B32}`],
    ['k = 0', `dd-tahoe:${CHK.replace(':2:4:', ':0:4:')}:${KEY_B32}`],
    ['n > 256', `dd-tahoe:${CHK.replace(':2:4:', ':2:300:')}:${KEY_B32}`],
    ['a short UEB hash', `dd-tahoe:${CHK.replace(`${'c'.repeat(51)}q`, 'c'.repeat(50))}:${KEY_B32}`],
    ['bad base32 in the Tahoe key', `dd-tahoe:${CHK.replace('b', '1')}:${KEY_B32}`],
    ['whitespace', ` dd-tahoe:${CHK}:${KEY_B32}`],
  ];
  it.each(bad)('refuses %s with BAD_INPUT, never echoing the key', (_what, cap) => {
    const err = expectCode(() => parseTahoeReadCap(cap), 'BAD_INPUT', /^malformed Tahoe capability: /);
    expect(err.details?.['reason']).toBe('malformed-cap');
    expect(err.message).not.toContain(KEY_B32.slice(0, 20));
  });

  it('refuses malformed verify caps and a read cap where a verify cap is parsed', () => {
    for (const cap of ['dd-tahoe-v:', `dd-tahoe-v:${CHK}:${KEY_B32}`, `dd-tahoe:${CHK}:${KEY_B32}`, `dd-tahoe-v:URI:CHK:x`]) {
      expectCode(() => parseTahoeVerifyCap(cap), 'BAD_INPUT', 'malformed Tahoe capability');
    }
  });

  it('refuses a key of the wrong length when formatting', () => {
    expect(() => formatTahoeReadCap({ tahoeCap: CHK, key: new Uint8Array(16) })).toThrow(RangeError);
  });
});

describe('Tahoe web API URL', () => {
  it('accepts explicit http(s) URLs and bare loopback host:port', () => {
    expect(parseTahoeUrl('http://127.0.0.1:3456')).toBe('http://127.0.0.1:3456');
    expect(parseTahoeUrl('http://127.0.0.1:3456/')).toBe('http://127.0.0.1:3456');
    expect(parseTahoeUrl('https://tahoe.example.org/grid/')).toBe('https://tahoe.example.org/grid');
    expect(parseTahoeUrl('localhost:3456')).toBe('http://localhost:3456');
    expect(parseTahoeUrl('127.0.0.1:3456')).toBe('http://127.0.0.1:3456');
    expect(parseTahoeUrl('[::1]:3456')).toBe('http://[::1]:3456');
  });

  it.each([
    ['', 'empty'],
    ['tahoe.example.org:3456', 'explicit http'],
    ['10.0.0.5:3456', 'explicit http'],
    ['ftp://127.0.0.1:3456', 'unsupported scheme'],
    ['http://user:secret@127.0.0.1:3456', 'credentials'],
    ['http://127.0.0.1:3456/?t=json', 'no query'],
    ['http://', 'not a URL'],
  ])('refuses %j (%s)', (url, message) => {
    const err = expectCode(() => parseTahoeUrl(url), 'BAD_INPUT', message);
    expect(err.message).not.toContain('secret');
  });
});

describe("Tahoe's check JSON", () => {
  const results = (good: number, healthy: boolean): Record<string, unknown> => ({
    healthy, 'count-shares-good': good, 'count-shares-needed': 2, 'count-shares-expected': 4, 'count-corrupt-shares': 0,
    summary: healthy ? 'Healthy' : `Not Healthy: ${good} shares (enc 2-of-4)`,
  });

  it('reads a plain check', () => {
    expect(parseCheckJson({ results: results(3, false) }, false)).toEqual({
      healthy: false, sharesFound: 3, sharesNeeded: 2, sharesTotal: 4, repaired: 0, problems: ['1 of 4 shares missing'],
    });
  });

  it('reads a check-and-repair, counting the shares the repair added', () => {
    const json = { 'repair-attempted': true, 'repair-successful': true, 'pre-repair-results': { results: results(2, false) }, 'post-repair-results': { results: results(4, true) } };
    expect(parseCheckJson(json, true)).toEqual({
      healthy: true, sharesFound: 4, sharesNeeded: 2, sharesTotal: 4, repaired: 2, problems: ['before repair: Not Healthy: 2 shares (enc 2-of-4)'],
    });
    const healthy = { 'repair-attempted': false, 'pre-repair-results': { results: results(4, true) } };
    expect(parseCheckJson(healthy, true)).toMatchObject({ healthy: true, repaired: 0, problems: [] });
  });

  it('refuses answers it cannot read with PROTOCOL', () => {
    expectCode(() => parseCheckJson(null, false), 'PROTOCOL');
    expectCode(() => parseCheckJson({ results: { healthy: 'yes' } }, false), 'PROTOCOL');
    expectCode(() => parseCheckJson({ 'repair-attempted': true, 'pre-repair-results': { results: results(2, false) } }, true), 'PROTOCOL', 'post-repair-results');
  });
});

describe("Tahoe's error pages", () => {
  it('keep the exception line of a traceback page, without caps', () => {
    const page = `<!DOCTYPE html>\n<html><head><title>Exception</title></head><body><div>\n<style type="text/css">div.error { color: red; }</style>
  <div class="error">
    <span>allmydata.interfaces.UploadUnhappinessError</span>: <span>server selection failed for &lt;Tahoe2ServerSelector for upload b'nn6nw'&gt;: shares could be placed on only 2 server(s)</span></div><div class="stackTrace">URI:CHK:abc:def:2:4:10</div>`;
    expect(tahoeReason(page)).toBe("allmydata.interfaces.UploadUnhappinessError : server selection failed for <Tahoe2ServerSelector for upload b'nn6nw'>: shares could be placed on only 2 server(s)");
    expect(tahoeReason('NoSharesError: no shares for URI:CHK:aaaa:bbbb:2:4:10 found')).toBe('NoSharesError: no shares for URI:… found');
    expect(tahoeReason('x'.repeat(500))).toHaveLength(301);
  });
});
