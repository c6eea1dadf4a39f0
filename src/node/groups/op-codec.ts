/**
 * Group membership ops (docs/protocol/groups.md section 2): a canonical, total codec. Every op is
 * signed by its author's node key over `"deaddrop/group-op/v1\0" || every byte before the
 * signature`; the op hash (SHA-256 of the whole op) names it, and the group id is the hash of
 * the group's create op.
 *
 * Decoding is total: anything but exactly one canonical encoding (unknown version, kind or
 * role, predecessors unsorted or duplicated, lengths out of range, non-UTF-8 names, trailing
 * bytes) throws DeaddropError PROTOCOL naming the field. `verifyOp` returns false, never throws.
 */
import { DeaddropError } from '../../util/errors.js';
import { concatBytes } from '../../util/bytes.js';
import { HASH_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, ed25519Verify, sha256, utf8 } from '../crypto.js';
import type { Signer } from '../crypto.js';
import { Reader } from '../wire.js';

export const OP_VERSION = 1;
export const OP_SIGNING_CONTEXT: Uint8Array = utf8('deaddrop/group-op/v1\0');
export const MAX_PREDS = 32;
export const MAX_NAME_BYTES = 64;
export const NONCE_BYTES = 16;
export const ZERO_GROUP: Uint8Array = new Uint8Array(32);

export const OP_KIND = { create: 1, add: 2, remove: 3, leave: 4, role: 5 } as const;
export type OpKind = keyof typeof OP_KIND;
export const ROLE = { member: 1, admin: 2 } as const;
export type Role = keyof typeof ROLE;

const KIND_BY_CODE = new Map<number, OpKind>(Object.entries(OP_KIND).map(([k, v]) => [v, k as OpKind]));
const ROLE_BY_CODE = new Map<number, Role>(Object.entries(ROLE).map(([k, v]) => [v, k as Role]));

/** The kind-specific part of an op. */
export type OpBody =
  | { readonly kind: 'create'; readonly nonce: Uint8Array; readonly name: string }
  | { readonly kind: 'add'; readonly member: Uint8Array; readonly role: Role }
  | { readonly kind: 'remove'; readonly member: Uint8Array }
  | { readonly kind: 'leave' }
  | { readonly kind: 'role'; readonly member: Uint8Array; readonly role: Role };

/** What the author chooses; the codec adds version and signature. */
export interface OpDraft {
  /** Zero for a create. */
  readonly group: Uint8Array;
  readonly timestamp: number;
  /** Hashes of the causal predecessors (sorted by the encoder). Empty only for a create. */
  readonly preds: readonly Uint8Array[];
  readonly body: OpBody;
}

/** A decoded op. */
export interface GroupOp extends OpDraft {
  readonly author: Uint8Array;
  readonly signature: Uint8Array;
  /** The whole encoding. */
  readonly raw: Uint8Array;
  /** SHA-256(raw): the op's id. */
  readonly hash: Uint8Array;
}

function bad(field: string): DeaddropError {
  return DeaddropError.protocol(`invalid group op: ${field}`);
}

function compare(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

function bodyBytes(body: OpBody): Uint8Array {
  switch (body.kind) {
    case 'create': {
      const name = utf8(body.name);
      if (!(body.nonce instanceof Uint8Array) || body.nonce.length !== NONCE_BYTES) throw new RangeError('create.nonce: expected 16 bytes');
      if (name.length > MAX_NAME_BYTES) throw new RangeError(`create.name: at most ${MAX_NAME_BYTES} UTF-8 bytes`);
      return concatBytes(body.nonce, Uint8Array.of(name.length), name);
    }
    case 'add':
    case 'role':
      return concatBytes(key32(body.member, `${body.kind}.member`), Uint8Array.of(roleCode(body.role)));
    case 'remove':
      return key32(body.member, 'remove.member').slice();
    case 'leave':
      return new Uint8Array(0);
  }
}

function key32(k: Uint8Array, what: string): Uint8Array {
  if (!(k instanceof Uint8Array) || k.length !== PUBLIC_KEY_BYTES) throw new TypeError(`${what}: expected 32 bytes`);
  return k;
}

function roleCode(role: Role): number {
  const c = ROLE[role];
  if (c === undefined) throw new RangeError(`role: expected member or admin, got ${String(role)}`);
  return c;
}

/** The bytes an op's signature covers are the context string plus these. */
function unsignedBytes(author: Uint8Array, d: OpDraft): Uint8Array {
  const isCreate = d.body.kind === 'create';
  if (isCreate !== (d.preds.length === 0)) throw new RangeError('preds: a create has none, every other op 1..32');
  if (d.preds.length > MAX_PREDS) throw new RangeError(`preds: at most ${MAX_PREDS}`);
  key32(d.group, 'group');
  if (isCreate && d.group.some((b) => b !== 0)) throw new RangeError('group: zero in a create');
  if (!Number.isSafeInteger(d.timestamp) || d.timestamp < 0) throw new RangeError('timestamp: expected an unsigned safe integer');
  const preds = [...d.preds].map((p) => key32(p, 'pred')).sort(compare);
  for (let i = 1; i < preds.length; i++) if (compare(preds[i - 1]!, preds[i]!) === 0) throw new RangeError('preds: duplicate');
  const head = new Uint8Array(75);
  const v = new DataView(head.buffer);
  head[0] = OP_VERSION;
  head.set(d.group, 1);
  head.set(key32(author, 'author'), 33);
  head[65] = OP_KIND[d.body.kind];
  v.setUint32(66, Math.floor(d.timestamp / 2 ** 32));
  v.setUint32(70, d.timestamp >>> 0);
  head[74] = preds.length;
  return concatBytes(head, ...preds, bodyBytes(d.body));
}

/** Encodes and signs an op; the result decodes to the same op (checked). */
export function createOp(signer: Signer, draft: OpDraft): GroupOp {
  const unsigned = unsignedBytes(signer.publicKey, draft);
  const signature = signer.sign(concatBytes(OP_SIGNING_CONTEXT, unsigned));
  const op = decodeOp(concatBytes(unsigned, signature));
  if (!verifyOp(op)) throw new Error('createOp: the signer produced an invalid signature');
  return op;
}

function readBody(r: Reader, kind: OpKind): OpBody {
  switch (kind) {
    case 'create': {
      const nonce = r.bytes(NONCE_BYTES).slice();
      const n = r.u8();
      if (n > MAX_NAME_BYTES) throw bad('name longer than 64 bytes');
      let name: string;
      try {
        name = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(r.bytes(n));
      } catch (err) {
        if (err instanceof DeaddropError) throw err;
        throw bad('name is not UTF-8');
      }
      return { kind, nonce, name };
    }
    case 'add':
    case 'role': {
      const member = r.bytes(32).slice();
      const role = ROLE_BY_CODE.get(r.u8());
      if (!role) throw bad('unknown role');
      return { kind, member, role };
    }
    case 'remove':
      return { kind, member: r.bytes(32).slice() };
    case 'leave':
      return { kind };
  }
}

/** Decodes one op. Throws DeaddropError PROTOCOL on anything but a canonical encoding. */
export function decodeOp(raw: Uint8Array): GroupOp {
  if (!(raw instanceof Uint8Array)) throw bad('expected bytes');
  if (raw.length < 75 + SIGNATURE_BYTES) throw bad('too short');
  const r = new Reader(raw.subarray(0, raw.length - SIGNATURE_BYTES), 'group op');
  if (r.u8() !== OP_VERSION) throw bad('unknown version');
  const group = r.bytes(32).slice();
  const author = r.bytes(32).slice();
  const kind = KIND_BY_CODE.get(r.u8());
  if (!kind) throw bad('unknown kind');
  const timestamp = r.u64();
  const n = r.u8();
  if (kind === 'create' ? n !== 0 : n === 0 || n > MAX_PREDS) throw bad('predecessor count');
  if (kind === 'create' && group.some((b) => b !== 0)) throw bad('a create has a zero group id');
  if (kind !== 'create' && group.every((b) => b === 0)) throw bad('zero group id');
  const preds: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const p = r.bytes(HASH_BYTES).slice();
    if (i > 0 && compare(preds[i - 1]!, p) >= 0) throw bad('predecessors not strictly ascending');
    preds.push(p);
  }
  const body = readBody(r, kind);
  try {
    r.end();
  } catch {
    throw bad('trailing bytes');
  }
  const copy = raw.slice();
  return { group, author, timestamp, preds, body, signature: copy.slice(copy.length - SIGNATURE_BYTES), raw: copy, hash: sha256(copy) };
}

/** True when the op's signature is its author's (strict Ed25519). Never throws. */
export function verifyOp(op: GroupOp): boolean {
  try {
    return ed25519Verify(op.signature, concatBytes(OP_SIGNING_CONTEXT, op.raw.subarray(0, op.raw.length - SIGNATURE_BYTES)), op.author);
  } catch {
    return false;
  }
}

/** The id of the group an op belongs to (a create names its own group). */
export function opGroup(op: GroupOp): Uint8Array {
  return op.body.kind === 'create' ? op.hash : op.group;
}

/** The member an op acts on (the author itself for a leave, none for a create). */
export function opTarget(op: GroupOp): Uint8Array | null {
  switch (op.body.kind) {
    case 'create':
      return null;
    case 'leave':
      return op.author;
    default:
      return op.body.member;
  }
}
