/**
 * Builds the committed group vectors (test/vectors/groups/op-codec.json and ratchet.json) from
 * fixed inputs, with negative vectors that must be refused. test/node/groups/vectors.test.ts
 * rebuilds them and compares with the committed files byte for byte, so a format change fails
 * until the vectors are regenerated on purpose: `npx tsx test/node/groups/vectors.ts`.
 *
 * Everything here is deterministic: Ed25519 signatures are, the create nonce is fixed, and a
 * group message derives its nonce from its message key. (Key distributions draw a random
 * ephemeral key and nonce, so they have no byte vector; their tests are behavioural.)
 */
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeIdentity } from '../../../src/node/identity.js';
import { sealGroupMessage, cipherKeys, encodeHeader } from '../../../src/node/groups/message.js';
import { type GroupOp, type OpBody, ZERO_GROUP, createOp } from '../../../src/node/groups/op-codec.js';
import { messageKey, nextChainKey } from '../../../src/node/groups/ratchet.js';
import { fromHex, toHex } from '../../../src/util/bytes.js';
import type { NegativeVector } from '../../support/negative-vectors.js';

export const GROUP_VECTOR_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../vectors/groups');

/** RFC 8032 test 1 and test 2 secret keys: published keys for the author and the member. */
export const SEED_A = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
export const SEED_B = '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb';

/** An op as the vectors write it. */
export interface OpVector {
  description: string;
  authorSeed: string;
  timestamp: number;
  preds: string[];
  body: Record<string, string>;
  encoded: string;
  hash: string;
  signature: string;
}

function bodyJson(b: OpBody): Record<string, string> {
  switch (b.kind) {
    case 'create':
      return { kind: b.kind, nonce: toHex(b.nonce), name: b.name };
    case 'add':
    case 'role':
      return { kind: b.kind, member: toHex(b.member), role: b.role };
    case 'remove':
      return { kind: b.kind, member: toHex(b.member) };
    case 'leave':
      return { kind: b.kind };
  }
}

export function bodyFromJson(j: Record<string, string>): OpBody {
  switch (j.kind) {
    case 'create':
      return { kind: 'create', nonce: fromHex(j.nonce!), name: j.name! };
    case 'add':
    case 'role':
      return { kind: j.kind, member: fromHex(j.member!), role: j.role as 'member' | 'admin' };
    case 'remove':
      return { kind: 'remove', member: fromHex(j.member!) };
    default:
      return { kind: 'leave' };
  }
}

function flip(hex: string, byte: number): string {
  const b = fromHex(hex);
  b[byte]! ^= 0x01;
  return toHex(b);
}

function opVectors(): { ops: OpVector[]; negative: NegativeVector[] } {
  const a = NodeIdentity.fromSeed(fromHex(SEED_A));
  const b = NodeIdentity.fromSeed(fromHex(SEED_B));
  const ops: GroupOp[] = [];
  const vec: OpVector[] = [];
  const push = (description: string, who: NodeIdentity, seed: string, timestamp: number, body: OpBody): GroupOp => {
    const group = ops.length === 0 ? ZERO_GROUP : ops[0]!.hash;
    const preds = ops.length === 0 ? [] : [ops[ops.length - 1]!.hash];
    const op = createOp(who, { group, timestamp, preds, body });
    ops.push(op);
    vec.push({ description, authorSeed: seed, timestamp, preds: preds.map(toHex), body: bodyJson(body), encoded: toHex(op.raw), hash: toHex(op.hash), signature: toHex(op.signature) });
    return op;
  };
  push('create', a, SEED_A, 1_700_000_000_000, { kind: 'create', nonce: fromHex('000102030405060708090a0b0c0d0e0f'), name: 'déjà vu team' });
  push('add B as member', a, SEED_A, 1_700_000_000_001, { kind: 'add', member: b.publicKey, role: 'member' });
  push('make B admin', a, SEED_A, 1_700_000_000_002, { kind: 'role', member: b.publicKey, role: 'admin' });
  push('B removes A', b, SEED_B, 1_700_000_000_003, { kind: 'remove', member: a.publicKey });
  push('B leaves', b, SEED_B, 1_700_000_000_004, { kind: 'leave' });
  const add = vec[1]!.encoded;
  const create = vec[0]!.encoded;
  const addLen = fromHex(add).length;
  const negative: NegativeVector[] = [
    { description: 'truncated', hex: add.slice(0, 100), refusedBy: 'decode', error: 'too short' },
    { description: 'unknown version', hex: `02${add.slice(2)}`, refusedBy: 'decode', error: 'unknown version' },
    { description: 'unknown kind', hex: add.slice(0, 130) + '09' + add.slice(132), refusedBy: 'decode', error: 'unknown kind' },
    { description: 'unknown role', hex: add.slice(0, 2 * (addLen - 65)) + '03' + add.slice(2 * (addLen - 64)), refusedBy: 'decode', error: 'unknown role' },
    { description: 'a trailing byte before the signature', hex: add.slice(0, 2 * (addLen - 64)) + '00' + add.slice(2 * (addLen - 64)), refusedBy: 'decode', error: 'trailing bytes' },
    { description: 'no predecessors on an add', hex: add.slice(0, 148) + '00' + add.slice(150 + 64), refusedBy: 'decode', error: 'predecessor count' },
    { description: 'create with a non-zero group id', hex: create.slice(0, 2) + 'ff' + create.slice(4), refusedBy: 'decode', error: 'zero group id' },
    { description: 'signature bit flipped', hex: flip(add, addLen - 1), refusedBy: 'signature' },
    { description: 'member key bit flipped (signed content changed)', hex: flip(add, addLen - 90), refusedBy: 'signature' },
  ];
  return { ops: vec, negative };
}

function ratchetVectors(): Record<string, unknown> {
  const ck0 = fromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const chain: { index: number; chainKey: string; messageKey: string }[] = [];
  let ck = ck0;
  for (let i = 0; i < 4; i++) {
    chain.push({ index: i, chainKey: toHex(ck), messageKey: toHex(messageKey(ck)) });
    ck = nextChainKey(ck);
  }
  const sender = NodeIdentity.fromSeed(fromHex(SEED_A));
  const group = fromHex(opVectors().ops[0]!.hash);
  const h = { group, sender: sender.publicKey, generation: 7, index: 2 };
  const mk = fromHex(chain[2]!.messageKey);
  const { key, nonce } = cipherKeys(mk, encodeHeader(h));
  const plaintext = new TextEncoder().encode('hello, group');
  return {
    version: 1,
    note: 'deaddrop group sender-key ratchet and message v1; sender seed is RFC 8032 test 1',
    chainKey0: toHex(ck0),
    chain,
    message: {
      senderSeed: SEED_A, group: toHex(group), generation: 7, index: 2, plaintext: toHex(plaintext),
      header: toHex(encodeHeader(h)), aeadKey: toHex(key), aeadNonce: toHex(nonce),
      encoded: toHex(sealGroupMessage(sender, h, mk, plaintext)),
    },
  };
}

/** File name → exact committed text. */
export function groupVectorFiles(): Record<string, string> {
  const { ops, negative } = opVectors();
  const opFile = { version: 1, note: 'deaddrop group membership op v1; seeds are RFC 8032 tests 1 and 2', ops, negative };
  return {
    'op-codec.json': `${JSON.stringify(opFile, null, 2)}\n`,
    'ratchet.json': `${JSON.stringify(ratchetVectors(), null, 2)}\n`,
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [name, text] of Object.entries(groupVectorFiles())) writeFileSync(resolve(GROUP_VECTOR_DIR, name), text);
}
