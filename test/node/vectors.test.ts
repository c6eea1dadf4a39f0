/**
 * The committed peer-node byte-format vectors (test/vectors/node-log.json and
 * node-whereabouts.json, built by test/support/node-vectors.ts): the generator rebuilds each
 * committed file byte for byte, the committed bytes decode and re-encode from their JSON inputs,
 * and every negative vector is refused. (The log entry's positive vectors are also checked
 * against noble in codec.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../src/node/identity.js';
import { decodeEntry, verifyEntry } from '../../src/node/log/codec.js';
import { decodeWhereabouts, openWhereabouts, sealWhereabouts, verifyWhereabouts } from '../../src/node/whereabouts.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { NODE_VECTOR_DIR, nodeVectorFiles, withNonces } from '../support/node-vectors.js';
import { expectRefused, type NegativeVector } from '../support/negative-vectors.js';

function committed<T>(name: string): T {
  return JSON.parse(readFileSync(resolve(NODE_VECTOR_DIR, name), 'utf8')) as T;
}

interface WhereaboutsVector {
  inputs: { nodeSeed: string; recipientSeeds: string[]; outsiderSeed: string; seq: number; expiresAt: number; endpoints: string[]; nonces: string[] };
  expected: { node: string; recipients: string[]; tags: string[]; signature: string; encoded: string; openedByOutsider: null };
  negative: NegativeVector[];
}

describe('node vectors (test/vectors/node-*.json)', () => {
  it('the generator rebuilds every committed file byte for byte', () => {
    for (const [name, text] of Object.entries(nodeVectorFiles())) expect(text, name).toBe(readFileSync(resolve(NODE_VECTOR_DIR, name), 'utf8'));
  });

  it('log entry: every negative vector is refused, and the legacy v1 entries still verify', () => {
    const legacy = committed<{ legacy: { entry: string }[] }>('node-log.json').legacy;
    for (const l of legacy) expect(verifyEntry(decodeEntry(fromHex(l.entry)))).toBe(true);
    const v = committed<{ negative: NegativeVector[] }>('node-log.json');
    expectRefused(v.negative, decodeEntry, (e) => verifyEntry(e as ReturnType<typeof decodeEntry>));
  });

  it('whereabouts: re-encodes from its inputs; recipients, and only they, open it', () => {
    const v = committed<WhereaboutsVector>('node-whereabouts.json');
    const i = v.inputs;
    const node = NodeIdentity.fromSeed(fromHex(i.nodeSeed));
    const recipients = i.recipientSeeds.map((s) => NodeIdentity.fromSeed(fromHex(s)));
    expect(toHex(node.publicKey)).toBe(v.expected.node);
    expect(recipients.map((r) => toHex(r.publicKey))).toEqual(v.expected.recipients);
    const raw = withNonces(i.nonces.map(fromHex), () =>
      sealWhereabouts(node, { seq: i.seq, expiresAt: i.expiresAt, endpoints: i.endpoints }, recipients.map((r) => r.publicKey)),
    );
    expect(toHex(raw)).toBe(v.expected.encoded);
    const b = decodeWhereabouts(fromHex(v.expected.encoded));
    expect(verifyWhereabouts(b)).toBe(true);
    expect({ node: toHex(b.node), seq: b.seq, expiresAt: b.expiresAt }).toEqual({ node: v.expected.node, seq: i.seq, expiresAt: i.expiresAt });
    expect(b.envelopes.map((e) => toHex(e.tag))).toEqual(v.expected.tags);
    expect(toHex(b.signature)).toBe(v.expected.signature);
    for (const r of recipients) expect(openWhereabouts(r, b)).toEqual({ node: node.publicKey, seq: i.seq, expiresAt: i.expiresAt, endpoints: i.endpoints });
    expect(openWhereabouts(NodeIdentity.fromSeed(fromHex(i.outsiderSeed)), b)).toBe(v.expected.openedByOutsider);
    expectRefused(v.negative, decodeWhereabouts, (d) => verifyWhereabouts(d as ReturnType<typeof decodeWhereabouts>));
  });
});
