/**
 * Membership derivation (docs/protocol/groups.md section 4): a pure function from a set of
 * accepted ops to `{member → role}`. Nothing here depends on arrival order, so every member
 * holding the same ops derives the same state.
 *
 * - R1: one topological order (Kahn; among ready ops the smallest op hash first).
 * - R2: replay in that order; an op applies if its author is authorized in the running state.
 * - R3: an op by P concurrent with an applied revocation of P (remove of P, leave by P, demotion
 *   of P) is void; voiding can change what applies, so R2-R3 repeat until the void set (which
 *   only grows) stops growing.
 * - R4: a remove/demotion by P aimed at the author of a concurrent revocation of P is neither void
 *   nor refused for P's lost role: mutual removal removes both.
 */
import { toHex } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { type GroupOp, type Role, opTarget } from './op-codec.js';

/** The membership of a group as derived from its ops. */
export interface MembershipState {
  readonly group: Uint8Array;
  readonly name: string;
  readonly creator: Uint8Array;
  /** Member (hex node key) → role. */
  readonly members: ReadonlyMap<string, Role>;
  /** Hashes (hex) of ops with no successor: the predecessors of the next local op. */
  readonly heads: readonly string[];
  /** Hashes (hex) of the ops that took effect, and of those voided by R3. */
  readonly applied: ReadonlySet<string>;
  readonly voided: ReadonlySet<string>;
  /** Number of ops. */
  readonly size: number;
}

interface Revocation {
  readonly op: GroupOp;
  readonly priorRole: Role;
  readonly demotion: boolean;
}

/** Ancestor queries over one DAG, memoized. */
class Ancestry {
  readonly #byHash: ReadonlyMap<string, GroupOp>;
  readonly #index: ReadonlyMap<string, number>;
  readonly #memo = new Map<string, boolean>();

  constructor(byHash: ReadonlyMap<string, GroupOp>, order: readonly GroupOp[]) {
    this.#byHash = byHash;
    this.#index = new Map(order.map((op, i) => [toHex(op.hash), i]));
  }

  /** True when `a` is in the strict past of `b`. */
  isAncestor(a: string, b: string): boolean {
    const key = `${a}${b}`;
    const hit = this.#memo.get(key);
    if (hit !== undefined) return hit;
    const floor = this.#index.get(a)!;
    const seen = new Set<string>();
    const stack = this.#byHash.get(b)!.preds.map(toHex);
    let found = false;
    while (stack.length > 0 && !found) {
      const h = stack.pop()!;
      if (h === a) found = true;
      else if (!seen.has(h) && this.#index.get(h)! > floor) {
        seen.add(h);
        for (const p of this.#byHash.get(h)!.preds) stack.push(toHex(p));
      }
    }
    this.#memo.set(key, found);
    return found;
  }

  concurrent(a: string, b: string): boolean {
    return a !== b && !this.isAncestor(a, b) && !this.isAncestor(b, a);
  }
}

/** R1: Kahn's algorithm, ready ops taken in ascending hash order. Throws when not causally closed. */
export function topoOrder(ops: readonly GroupOp[]): GroupOp[] {
  const byHash = new Map(ops.map((op) => [toHex(op.hash), op]));
  const waiting = new Map<string, number>();
  const children = new Map<string, string[]>();
  const ready: string[] = [];
  for (const [h, op] of byHash) {
    waiting.set(h, op.preds.length);
    if (op.preds.length === 0) ready.push(h);
    for (const p of op.preds) {
      const ph = toHex(p);
      if (!byHash.has(ph)) throw DeaddropError.protocol('group ops are not causally closed (unknown predecessor)');
      const list = children.get(ph);
      if (list) list.push(h);
      else children.set(ph, [h]);
    }
  }
  const heap = new MinHeap(ready);
  const out: GroupOp[] = [];
  for (let h = heap.pop(); h !== undefined; h = heap.pop()) {
    out.push(byHash.get(h)!);
    for (const c of children.get(h) ?? []) {
      const left = waiting.get(c)! - 1;
      waiting.set(c, left);
      if (left === 0) heap.push(c);
    }
  }
  if (out.length !== byHash.size) throw DeaddropError.protocol('group ops contain a cycle');
  return out;
}

/** A binary min-heap of hex strings (hex order = byte order). */
class MinHeap {
  readonly #a: string[] = [];
  constructor(items: string[]) {
    for (const i of items) this.push(i);
  }
  push(x: string): void {
    const a = this.#a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): string | undefined {
    const a = this.#a;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

interface Replay {
  members: Map<string, Role>;
  applied: Set<string>;
  revocations: Revocation[];
}

/** R2 with the R4 exception, skipping voided ops. */
function replay(order: readonly GroupOp[], voided: ReadonlySet<string>, anc: Ancestry): Replay {
  const members = new Map<string, Role>();
  const applied = new Set<string>();
  const revocations: Revocation[] = [];
  const revokedBy = new Map<string, Revocation[]>();
  const revoke = (target: string, r: Revocation): void => {
    revocations.push(r);
    revokedBy.set(target, [...(revokedBy.get(target) ?? []), r]);
  };
  /** R4: P's op aimed at the author of a concurrent revocation of P, made while P was admin. */
  const mutual = (op: GroupOp, target: string): boolean =>
    (revokedBy.get(toHex(op.author)) ?? []).some((r) => r.priorRole === 'admin' && toHex(r.op.author) === target && anc.concurrent(toHex(r.op.hash), toHex(op.hash)));
  let created = false;
  for (const op of order) {
    const h = toHex(op.hash);
    if (voided.has(h)) continue;
    const author = toHex(op.author);
    const admin = members.get(author) === 'admin';
    const target = opTarget(op);
    const t = target ? toHex(target) : '';
    const b = op.body;
    let ok = false;
    if (b.kind === 'create') {
      ok = !created;
      if (ok) members.set(author, 'admin');
      created = true;
    } else if (b.kind === 'add') {
      ok = admin && !members.has(t);
      if (ok) members.set(t, b.role);
    } else if (b.kind === 'remove') {
      const prior = members.get(t);
      ok = t !== author && prior !== undefined && (admin || mutual(op, t));
      if (ok) {
        members.delete(t);
        revoke(t, { op, priorRole: prior!, demotion: false });
      }
    } else if (b.kind === 'leave') {
      const prior = members.get(author);
      ok = prior !== undefined;
      if (ok) {
        members.delete(author);
        revoke(author, { op, priorRole: prior!, demotion: false });
      }
    } else {
      const prior = members.get(t);
      const demotes = prior === 'admin' && b.role === 'member';
      ok = t !== author && prior !== undefined && prior !== b.role && (admin || (demotes && mutual(op, t)));
      if (ok) {
        members.set(t, b.role);
        if (demotes) revoke(t, { op, priorRole: 'admin', demotion: true });
      }
    }
    if (ok) applied.add(h);
  }
  return { members, applied, revocations };
}

function needsAdmin(op: GroupOp): boolean {
  return op.body.kind === 'add' || op.body.kind === 'remove' || op.body.kind === 'role';
}

/** R3: ops to void given the applied revocations of one replay. */
function voidable(order: readonly GroupOp[], rep: Replay, voided: ReadonlySet<string>, anc: Ancestry): string[] {
  const byAuthor = new Map<string, GroupOp[]>();
  for (const op of order) {
    const a = toHex(op.author);
    const list = byAuthor.get(a);
    if (list) list.push(op);
    else byAuthor.set(a, [op]);
  }
  const out: string[] = [];
  for (const r of rep.revocations) {
    const p = toHex(r.op.body.kind === 'leave' ? r.op.author : opTarget(r.op)!);
    const rh = toHex(r.op.hash);
    const revoker = toHex(r.op.author);
    for (const op of byAuthor.get(p) ?? []) {
      const h = toHex(op.hash);
      if (voided.has(h) || h === rh || op.body.kind === 'create') continue;
      if (r.demotion && !needsAdmin(op)) continue;
      const counter = (op.body.kind === 'remove' || op.body.kind === 'role') && toHex(op.body.member) === revoker && r.priorRole === 'admin';
      if (counter) continue;
      if (anc.concurrent(h, rh)) out.push(h);
    }
  }
  return out;
}

/**
 * Derives the membership from a causally closed set of ops with exactly one create (the group's).
 * Throws DeaddropError PROTOCOL otherwise; the op log never hands it anything else.
 */
export function deriveState(ops: readonly GroupOp[]): MembershipState {
  const order = topoOrder(ops);
  const creates = order.filter((op) => op.body.kind === 'create');
  if (creates.length !== 1) throw DeaddropError.protocol('a group has exactly one create op');
  const create = creates[0]!;
  const byHash = new Map(order.map((op) => [toHex(op.hash), op]));
  const anc = new Ancestry(byHash, order);
  const voided = new Set<string>();
  let rep = replay(order, voided, anc);
  for (;;) {
    const more = voidable(order, rep, voided, anc);
    if (more.length === 0) break;
    for (const h of more) voided.add(h);
    rep = replay(order, voided, anc);
  }
  const hasChild = new Set<string>();
  for (const op of order) for (const p of op.preds) hasChild.add(toHex(p));
  const heads = order.map((op) => toHex(op.hash)).filter((h) => !hasChild.has(h)).sort();
  const name = create.body.kind === 'create' ? create.body.name : '';
  return { group: create.hash, name, creator: create.author, members: rep.members, heads, applied: rep.applied, voided, size: order.length };
}

/**
 * Section 3 step 6: why `op` is not authorized in `past` (the state derived from the op's own
 * past), or null when it is.
 */
export function unauthorizedReason(past: MembershipState, op: GroupOp): string | null {
  const author = toHex(op.author);
  const role = past.members.get(author);
  if (op.body.kind === 'create') return 'a group has one create op';
  if (role === undefined) return 'author is not a member';
  if (op.body.kind === 'leave') return null;
  if (role !== 'admin') return 'author is not an admin';
  const t = toHex(op.body.member);
  const targetRole = past.members.get(t);
  if (op.body.kind === 'add') return targetRole === undefined ? null : 'already a member';
  if (t === author) return 'an admin cannot remove or re-role itself (leave instead)';
  if (targetRole === undefined) return 'target is not a member';
  if (op.body.kind === 'role' && targetRole === op.body.role) return 'target already has that role';
  return null;
}

/**
 * The state after `op` when every op of `state` is in the op's past (its predecessors are
 * exactly the current heads) and the op is authorized there. Then the op is last in the order of
 * R1, concurrent with nothing (R3 and R4 have nothing to do) and applies (R2), so this equals
 * `deriveState` over all ops at O(members) instead of O(ops). The op log uses it for the common
 * case of a history that grows in a line.
 */
export function extendState(state: MembershipState, op: GroupOp): MembershipState {
  const members = new Map(state.members);
  const b = op.body;
  if (b.kind === 'add' || b.kind === 'role') members.set(toHex(b.member), b.role);
  else if (b.kind === 'remove') members.delete(toHex(b.member));
  else if (b.kind === 'leave') members.delete(toHex(op.author));
  else throw DeaddropError.protocol('a group has exactly one create op');
  const h = toHex(op.hash);
  return { ...state, members, heads: [h], applied: new Set(state.applied).add(h), size: state.size + 1 };
}
