/**
 * Storage-server announcements (src/node/storage/announce.ts) and the storage start options
 * (src/node/storage/options.ts): only signed, well-formed, unexpired, newest announcements
 * become servers; flags and sizes parse strictly.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../../src/node/identity.js';
import { createEntry, ZERO_HASH, type LogEntry } from '../../../src/node/log/codec.js';
import { announcementDraft, StorageDirectory, STORAGE_SERVER_TYPE } from '../../../src/node/storage/announce.js';
import { parseDuration, parseSize, serverOnNodeHost, storageOptions } from '../../../src/node/storage/options.js';
import { expectCode } from '../../support/errors.js';

function entry(id: NodeIdentity, seq: number, header: Record<string, unknown>): LogEntry {
  // The directory reads single entries; the chain link is the feed store's business, so any non-zero prev does.
  return createEntry(id, { seq, prev: seq === 1 ? ZERO_HASH : new Uint8Array(32).fill(1), timestamp: Date.now(), header: header as LogEntry['header'], body: new Uint8Array(0) });
}

const HOUR = 3_600_000;

describe('storage-server announcements', () => {
  it('accepts signed announcements, newest per author, and drops expired, withdrawn, forged and malformed ones', () => {
    const a = NodeIdentity.fromSeed(randomBytes(32));
    const b = NodeIdentity.fromSeed(randomBytes(32));
    const dir = new StorageDirectory();
    const draft = (endpoint: string, quota: number, until: number) => announcementDraft({ endpoint, quota, free: quota, until }).header;
    expect(dir.add(entry(a, 1, draft('ws://127.0.0.1:4001', 1000, Date.now() + HOUR)))).toBe(true);
    expect(dir.add(entry(a, 2, draft('ws://127.0.0.1:4002', 1000, Date.now() + HOUR)))).toBe(true);
    expect(dir.add(entry(a, 1, draft('ws://127.0.0.1:4001', 1000, Date.now() + HOUR)))).toBe(false); // older
    expect(dir.servers()).toEqual([{ id: a.publicKey, url: 'ws://127.0.0.1:4002' }]);

    // b's announcement with a's signature: refused.
    const forged = { ...entry(b, 1, draft('ws://127.0.0.1:5000', 1000, Date.now() + HOUR)), author: a.publicKey };
    expect(dir.add(forged)).toBe(false);
    for (const bad of [
      { type: STORAGE_SERVER_TYPE, endpoint: 'http://x:1', quota: 1, free: 1, until: Date.now() + HOUR },
      { type: STORAGE_SERVER_TYPE, endpoint: 'ws://x:1', quota: 1, free: 2, until: Date.now() + HOUR },
      { type: STORAGE_SERVER_TYPE, endpoint: 'ws://x:1', quota: 1, free: 0, until: 'soon' },
    ]) expect(dir.add(entry(b, 1, bad))).toBe(false);
    expect(dir.refused).toBe(4);

    expect(dir.add(entry(b, 1, draft('ws://127.0.0.1:5000', 1000, Date.now() - 1)))).toBe(true); // expired: known, unused
    expect(dir.servers().length).toBe(1);
    expect(dir.add(entry(a, 3, draft('ws://127.0.0.1:4002', 0, Date.now() + HOUR)))).toBe(true); // withdrawn
    expect(dir.servers()).toEqual([]);
  });
});

describe('storage options', () => {
  it('parses sizes, durations and the backend switch, and refuses the rest', () => {
    expect(parseSize('500M', 'q')).toBe(500_000_000);
    expect(parseSize('1.5GiB', 'q')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('4096', 'q')).toBe(4096);
    for (const bad of ['', 'lots', '-1', '0', '5X']) expectCode(() => parseSize(bad, '--storage-quota'), 'BAD_INPUT', /--storage-quota must be a size/);
    expect(parseDuration('6h', 'd', 1000)).toBe(6 * HOUR);
    expectCode(() => parseDuration('10ms', '--storage-check-every', 1000), 'BAD_INPUT', /at least 1000 ms/);
    expect(storageOptions({ storageServer: true, storageQuota: '20G', storage: 'tahoe:http://127.0.0.1:3456/' }, { DEADDROP_STORAGE_SHARES: '2/3/4' })).toEqual({
      server: { quotaBytes: 20e9 }, backend: { kind: 'tahoe', url: 'http://127.0.0.1:3456' }, shares: { k: 2, happy: 3, n: 4 },
    });
    expectCode(() => storageOptions({ storageQuota: '1G' }, {}), 'BAD_INPUT', /goes with --storage-server/);
    expectCode(() => storageOptions({ storage: 'tahoe:ftp://x' }, {}), 'BAD_INPUT', /Tahoe-LAFS client's web API/);
    expectCode(() => storageOptions({ storage: 's3' }, {}), 'BAD_INPUT', /"peers" or "tahoe:<url>"/);
    expectCode(() => storageOptions({}, { DEADDROP_STORAGE_SHARES: '5/3/4' }), 'BAD_INPUT', /needed <= happy <= total/);
  });

  it('puts the server\'s listener on the peer node\'s host unless DEADDROP_STORAGE_HOST names one', () => {
    const serving = storageOptions({ storageServer: true }, {});
    // A node listening on a reachable address must not announce a loopback storage endpoint.
    expect(serverOnNodeHost(serving, '198.18.0.10').server).toEqual({ quotaBytes: 1024 ** 3, host: '198.18.0.10' });
    expect(serverOnNodeHost(serving, undefined)).toBe(serving);
    const placed = storageOptions({ storageServer: true }, { DEADDROP_STORAGE_HOST: '10.0.0.2' });
    expect(serverOnNodeHost(placed, '198.18.0.10').server?.host).toBe('10.0.0.2');
    const client = storageOptions({}, {});
    expect(serverOnNodeHost(client, '198.18.0.10')).toBe(client);
  });

  it('--storage-reads (or DEADDROP_STORAGE_READS) says how reads reach servers; the flag wins', () => {
    expect(storageOptions({}, {}).reads).toBeUndefined();
    for (const v of ['auto', 'mixnet', 'direct'] as const) expect(storageOptions({ storageReads: v }, {}).reads).toBe(v);
    expect(storageOptions({}, { DEADDROP_STORAGE_READS: 'mixnet' }).reads).toBe('mixnet');
    expect(storageOptions({ storageReads: 'direct' }, { DEADDROP_STORAGE_READS: 'mixnet' }).reads).toBe('direct');
    expectCode(() => storageOptions({ storageReads: 'tor' }, {}), 'BAD_INPUT', /--storage-reads must be auto, mixnet or direct/);
    expectCode(() => storageOptions({}, { DEADDROP_STORAGE_READS: 'MIXNET' }), 'BAD_INPUT', /DEADDROP_STORAGE_READS must be/);
  });
});
