/**
 * The accepted ops of one group and the checks every received op passes (docs/protocol/groups.md
 * section 3): decode, signature, group, replay, predecessors (held until known), authority in
 * the op's own past. Pure and in memory; GroupStore persists what it accepts.
 *
 * `receive` never throws on input from others: it answers with a status and, for a refusal, a
 * reason.
 */
import { equalBytes, toHex } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { type GroupOp, decodeOp, opGroup, verifyOp } from './op-codec.js';
import { type MembershipState, deriveState, extendState, unauthorizedReason } from './state.js';

/** Ops held for unknown predecessors, per group (oldest dropped beyond this). */
export const MAX_PENDING_OPS = 1024;

export type ReceiveStatus = 'accepted' | 'duplicate' | 'pending' | 'refused';
export type RefusalReason = 'malformed' | 'bad-signature' | 'wrong-group' | 'unauthorized';

/** The outcome of one received op. `accepted` lists it and any held ops it released, in order. */
export interface ReceiveResult {
  readonly status: ReceiveStatus;
  readonly reason?: RefusalReason;
  readonly detail?: string;
  readonly accepted: readonly GroupOp[];
}

/** One group's op DAG. */
export class OpLog {
  readonly group: Uint8Array;
  readonly #ops = new Map<string, GroupOp>();
  readonly #pending = new Map<string, GroupOp>();
  #state: MembershipState | null = null;

  /** A log of `group`; `ops` are already-accepted ops (from the store), checked again. */
  constructor(group: Uint8Array, ops: readonly Uint8Array[] = []) {
    if (!(group instanceof Uint8Array) || group.length !== 32) throw new TypeError('group: expected 32 bytes');
    this.group = group.slice();
    for (const raw of ops) this.receive(raw);
  }

  /** The derived membership. Throws NOT_FOUND until the create op is known. */
  get state(): MembershipState {
    if (this.#state === null) {
      if (this.#ops.size === 0) throw DeaddropError.notFound('group history is not known yet (no create op)');
      this.#state = deriveState([...this.#ops.values()]);
    }
    return this.#state;
  }

  /** True once the create op is here. */
  get known(): boolean {
    return this.#ops.size > 0;
  }

  /** Accepted ops (any order). */
  ops(): GroupOp[] {
    return [...this.#ops.values()];
  }

  has(hash: Uint8Array): boolean {
    return this.#ops.has(toHex(hash));
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Checks and, if it passes, adds one op (section 3), then releases held ops it completes. */
  receive(raw: Uint8Array): ReceiveResult {
    let op: GroupOp;
    try {
      op = decodeOp(raw);
    } catch (err) {
      return { status: 'refused', reason: 'malformed', detail: err instanceof Error ? err.message : 'malformed', accepted: [] };
    }
    if (!verifyOp(op)) return { status: 'refused', reason: 'bad-signature', accepted: [] };
    if (!equalBytes(opGroup(op), this.group)) return { status: 'refused', reason: 'wrong-group', accepted: [] };
    const h = toHex(op.hash);
    if (this.#ops.has(h)) return { status: 'duplicate', accepted: [] };
    if (!op.preds.every((p) => this.#ops.has(toHex(p)))) {
      if (!this.#pending.has(h)) {
        this.#pending.set(h, op);
        if (this.#pending.size > MAX_PENDING_OPS) this.#pending.delete(this.#pending.keys().next().value!);
      }
      return { status: 'pending', accepted: [] };
    }
    const why = this.#authority(op);
    if (why !== null) return { status: 'refused', reason: 'unauthorized', detail: why, accepted: [] };
    const linear = op.body.kind !== 'create' && this.#extendsHeads(op) ? extendState(this.state, op) : null;
    this.#add(op);
    this.#state = linear;
    return { status: 'accepted', accepted: [op, ...this.#release()] };
  }

  #add(op: GroupOp): void {
    this.#ops.set(toHex(op.hash), op);
    this.#pending.delete(toHex(op.hash));
    this.#state = null;
  }

  /** Held ops whose predecessors are now all known: checked and added, repeatedly. */
  #release(): GroupOp[] {
    const out: GroupOp[] = [];
    for (let progress = true; progress; ) {
      progress = false;
      for (const [h, op] of this.#pending) {
        if (!op.preds.every((p) => this.#ops.has(toHex(p)))) continue;
        this.#pending.delete(h);
        if (this.#authority(op) !== null) continue;
        this.#add(op);
        out.push(op);
        progress = true;
      }
    }
    return out;
  }

  /** Section 3 step 6, against the state derived from the op's own past. */
  #authority(op: GroupOp): string | null {
    if (op.body.kind === 'create') return this.#ops.size === 0 ? null : 'a group has one create op';
    if (this.#ops.size === 0) return 'group history is not known';
    return unauthorizedReason(this.#pastState(op), op);
  }

  /** True when the op's predecessors are exactly the current heads (its past is everything). */
  #extendsHeads(op: GroupOp): boolean {
    const heads = this.state.heads;
    const preds = op.preds.map(toHex).sort();
    return preds.length === heads.length && preds.every((p, i) => p === heads[i]);
  }

  #pastState(op: GroupOp): MembershipState {
    const current = this.state;
    if (this.#extendsHeads(op)) return current;
    const past = new Map<string, GroupOp>();
    const stack = op.preds.map(toHex);
    while (stack.length > 0) {
      const h = stack.pop()!;
      if (past.has(h)) continue;
      const o = this.#ops.get(h)!;
      past.set(h, o);
      for (const p of o.preds) stack.push(toHex(p));
    }
    return deriveState([...past.values()]);
  }
}
