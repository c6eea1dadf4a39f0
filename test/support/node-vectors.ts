/**
 * Builds the committed peer-node byte-format vectors: the log entry (test/vectors/node-log.json)
 * and the whereabouts record (test/vectors/node-whereabouts.json), from fixed inputs, with
 * negative vectors that must be refused. test/node/vectors.test.ts rebuilds both and compares
 * with the committed files, so a format change fails until the vectors are regenerated on
 * purpose: `npx tsx test/support/node-vectors.ts` (writes the files).
 *
 * Ed25519 signatures are deterministic. The whereabouts envelopes draw a random AEAD nonce
 * (sodium's randombytes_buf); `withNonces` replaces it with the vector's fixed nonces.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import sodium from 'sodium-native';
import { ed25519FromSeed, signerFromKeyPair } from '../../src/node/crypto.js';
import { NodeIdentity } from '../../src/node/identity.js';
import { ZERO_HASH, batchRootOf, createBatch, createLegacyEntry, type EntryHeader, type HeaderValue } from '../../src/node/log/codec.js';
import { decodeWhereabouts, openWhereabouts, sealWhereabouts } from '../../src/node/whereabouts.js';
import type { NegativeVector } from './negative-vectors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const sha256 = (b: Uint8Array | string): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

/** A copy of `b` with one bit of byte `i` flipped. */
function flip(b: Uint8Array, i: number): Uint8Array {
  const out = b.slice();
  out[i] = (out[i] as number) ^ 0x01;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Log entries

/** A header as the vectors write it: bytes as {hex}, hash lists as {hashes}. */
export type HeaderJson = Record<string, string | number | { hex: string } | { hashes: string[] }>;

export function headerFromJson(j: HeaderJson): EntryHeader {
  const out: Record<string, HeaderValue> = {};
  for (const [k, v] of Object.entries(j)) {
    if (typeof v === 'string' || typeof v === 'number') out[k] = v;
    else if ('hex' in v) out[k] = unhex(v.hex);
    else out[k] = v.hashes.map(unhex);
  }
  return out as EntryHeader;
}

/** RFC 8032 test 1's secret key, so that the author key is a published one. */
const LOG_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';

const LOG_INPUTS: readonly { description: string; timestamp: number; header: HeaderJson; body: string }[] = [
  { description: 'entry 1', timestamp: 1_700_000_000_000, header: { type: 'post' }, body: hex(new TextEncoder().encode('hello, deaddrop')) },
  {
    description: 'entry 2',
    timestamp: 1_700_000_000_001,
    header: { type: 'follow', app: 'social', refs: { hashes: [hex(sha256('a')), hex(sha256('b'))] } },
    body: '',
  },
  {
    description: 'entry 3',
    timestamp: 1_700_000_060_000,
    header: { type: 'code/patch', app: 'git', size: 3, blob: { hex: '010203' }, 'z.note': 'ünïcode ✓' },
    body: hex(Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)),
  },
];

export function logVectors(): object {
  const signer = signerFromKeyPair(ed25519FromSeed(unhex(LOG_SEED)));
  const base = { seed: LOG_SEED, author: hex(signer.publicKey) };
  // v2: the three inputs appended as one batch under one signature
  const entries = createBatch(signer, {
    firstSeq: 1,
    prev: ZERO_HASH,
    items: LOG_INPUTS.map((input) => ({ timestamp: input.timestamp, header: headerFromJson(input.header), body: unhex(input.body) })),
  });
  const root = batchRootOf(entries[0]!)!;
  const vectors = LOG_INPUTS.map((input, i) => {
    const e = entries[i]!;
    return {
      description: input.description, ...base, seq: i + 1, prev: hex(e.prev), timestamp: input.timestamp, header: input.header, body: input.body,
      batch: { firstSeq: 1, size: LOG_INPUTS.length, index: i, path: hex(e.batch!.path) }, entry: hex(e.raw), hash: hex(e.hash), signature: hex(e.signature),
    };
  });
  // v1 (legacy, one signature per entry): what logs written before v2 hold; still read and verified
  let prev = ZERO_HASH;
  const legacy = LOG_INPUTS.map((input, i) => {
    const e = createLegacyEntry(signer, { seq: i + 1, prev, timestamp: input.timestamp, header: headerFromJson(input.header), body: unhex(input.body) });
    const v = {
      description: `legacy v1 ${input.description}`, ...base, seq: i + 1, prev: hex(prev), timestamp: input.timestamp,
      header: input.header, body: input.body, entry: hex(e.raw), hash: hex(e.hash), signature: hex(e.signature),
    };
    prev = e.hash;
    return v;
  });
  const raw = entries[0]!.raw;
  const mid = entries[1]!.raw;
  const last = entries[2]!.raw;
  const pathAt = raw.length - 64 - 64; // entry 1 of 3: a path of two hashes before the signature
  const withU16 = (b: Uint8Array, off: number, v: number): Uint8Array => {
    const out = b.slice();
    new DataView(out.buffer).setUint16(off, v);
    return out;
  };
  const sealAt = pathAt - 4;
  const negative: NegativeVector[] = [
    { description: 'entry 1 truncated by one byte', hex: hex(raw.subarray(0, raw.length - 1)), refusedBy: 'decode', error: 'invalid log entry' },
    { description: 'entry 1 with one trailing byte', hex: hex(Uint8Array.of(...raw, 0)), refusedBy: 'decode', error: 'invalid log entry' },
    { description: 'entry 1 with version 3', hex: hex(Uint8Array.of(3, ...raw.subarray(1))), refusedBy: 'decode', error: 'unknown version' },
    { description: 'entry 1 without its seal (batch cut short)', hex: hex(raw.subarray(0, sealAt)), refusedBy: 'decode', error: 'invalid log entry' },
    { description: 'entry 1 claiming index 3 of a batch of 3', hex: hex(withU16(raw, sealAt + 2, 3)), refusedBy: 'decode', error: 'batch size or index' },
    { description: 'entry 1 claiming a batch of 0', hex: hex(withU16(raw, sealAt, 0)), refusedBy: 'decode', error: 'batch size or index' },
    { description: 'entry 1 claiming index 1 (reordered, also past seq 1)', hex: hex(withU16(raw, sealAt + 2, 1)), refusedBy: 'decode', error: 'batch outside' },
    { description: 'entry 3 claiming a batch of 4', hex: hex(withU16(last, last.length - 64 - 32 - 4, 4)), refusedBy: 'decode', error: 'length mismatch' },
    { description: 'entry 1 with one bit of the signature flipped', hex: hex(flip(raw, raw.length - 1)), refusedBy: 'signature' },
    { description: 'entry 1 with one bit of its audit path flipped', hex: hex(flip(raw, pathAt)), refusedBy: 'signature' },
    { description: 'entry 1 with one bit of the body flipped', hex: hex(flip(raw, sealAt - 1)), refusedBy: 'signature' },
    { description: 'entry 2 claiming a batch of 4 (the signature covers n)', hex: hex(withU16(mid, mid.length - 64 - 64 - 4, 4)), refusedBy: 'signature' },
  ];
  return {
    version: 2,
    note: 'deaddrop log entry v2 vectors (batch-signed: one Ed25519 signature over the RFC 6962 root of a batch); legacy holds v1 entries, still valid; seed is RFC 8032 test 1',
    batchRoot: hex(root),
    vectors,
    legacy,
    negative,
  };
}

// ---------------------------------------------------------------------------------------------
// Whereabouts

/**
 * Runs `fn` with sodium's randombytes_buf filling buffers from `nonces` in order (each must be
 * exactly the size asked for), and restores it afterwards.
 */
export function withNonces<T>(nonces: readonly Uint8Array[], fn: () => T): T {
  const s = sodium as unknown as { randombytes_buf: (buf: Uint8Array) => void };
  const original = s.randombytes_buf;
  const queue = [...nonces];
  s.randombytes_buf = (buf: Uint8Array): void => {
    const next = queue.shift();
    if (!next || next.length !== buf.length) throw new Error(`withNonces: no ${buf.length}-byte nonce left`);
    buf.set(next);
  };
  try {
    const out = fn();
    if (queue.length > 0) throw new Error(`withNonces: ${queue.length} nonces left unused`);
    return out;
  } finally {
    s.randombytes_buf = original;
  }
}

const seedOf = (label: string): Uint8Array => sha256(`deaddrop whereabouts vector: ${label}`);

export function whereaboutsVectors(): object {
  const node = NodeIdentity.fromSeed(seedOf('node'));
  const recipients = [NodeIdentity.fromSeed(seedOf('recipient 1')), NodeIdentity.fromSeed(seedOf('recipient 2'))];
  const outsider = NodeIdentity.fromSeed(seedOf('outsider'));
  const record = { seq: 5, expiresAt: 1_700_000_600_000, endpoints: ['ws://127.0.0.1:9735', 'ws://[2001:db8::1]:9735'] };
  const nonces = [new Uint8Array(24).fill(0x11), new Uint8Array(24).fill(0x22)];
  const raw = withNonces(nonces, () => sealWhereabouts(node, record, recipients.map((r) => r.publicKey)));
  const b = decodeWhereabouts(raw);
  return {
    description: 'deaddrop whereabouts bundle v1 (src/node/whereabouts.ts): version || node key || u64 seq || u64 expiresAt || u16 count || (16-byte tag || u16 length || sealed)* || Ed25519 signature over "deaddrop/whereabouts/v1\\0" || body. Each sealed envelope is nonce || XChaCha20-Poly1305 of the endpoints under the pair key; the nonces are fixed here (randombytes in production).',
    inputs: {
      nodeSeed: hex(seedOf('node')),
      recipientSeeds: ['recipient 1', 'recipient 2'].map((l) => hex(seedOf(l))),
      outsiderSeed: hex(seedOf('outsider')),
      seq: record.seq,
      expiresAt: record.expiresAt,
      endpoints: record.endpoints,
      nonces: nonces.map(hex),
    },
    expected: {
      node: hex(node.publicKey),
      recipients: recipients.map((r) => hex(r.publicKey)),
      tags: b.envelopes.map((e) => hex(e.tag)),
      signature: hex(b.signature),
      encoded: hex(raw),
      openedByOutsider: openWhereabouts(outsider, b),
    },
    negative: [
      { description: 'bundle truncated by one byte', hex: hex(raw.subarray(0, raw.length - 1)), refusedBy: 'decode', error: 'malformed whereabouts' },
      { description: 'bundle with one trailing byte', hex: hex(Uint8Array.of(...raw, 0)), refusedBy: 'decode', error: 'malformed whereabouts' },
      { description: 'bundle with version 2', hex: hex(Uint8Array.of(2, ...raw.subarray(1))), refusedBy: 'decode', error: 'unknown version' },
      { description: 'bundle with one bit of the signature flipped', hex: hex(flip(raw, raw.length - 1)), refusedBy: 'signature' },
      { description: 'bundle with one bit of seq flipped', hex: hex(flip(raw, 1 + 32 + 7)), refusedBy: 'signature' },
    ] satisfies NegativeVector[],
  };
}

const VECTOR_DIR = resolve(import.meta.dirname, '../vectors');

/** Every node vector file, by path under test/vectors/, as it should be committed. */
export function nodeVectorFiles(): Record<string, string> {
  return {
    'node-log.json': `${JSON.stringify(logVectors(), null, 2)}\n`,
    'node-whereabouts.json': `${JSON.stringify(whereaboutsVectors(), null, 2)}\n`,
  };
}

export const NODE_VECTOR_DIR = VECTOR_DIR;

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  for (const [name, text] of Object.entries(nodeVectorFiles())) writeFileSync(resolve(VECTOR_DIR, name), text);
}
