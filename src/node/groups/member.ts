/**
 * GroupMember: one node's side of its groups. It turns local actions (create, add, remove, leave,
 * role, post) and received bytes (ops, welcomes, sender keys, messages) into stored state and
 * into byte strings to send to other members (`Outgoing`). It does no I/O besides the store:
 * whatever carries `Outgoing` (the node's sessions, the mixnet, a test's router) is the caller's.
 *
 * Key schedule (docs/protocol/groups.md sections 5 and 8): on joining we make a sender key and
 * send it to every member; when a member arrives we send it our current chain (no rotation: it
 * cannot read back); when a member departs we forget its keys and mark our sending chain stale:
 * before we next send, we make a new sender key and send it to the members of that moment only
 * (lazy rotation, as Megolm does). A departure therefore costs nothing until we speak, and then
 * one key per member, instead of every member re-keying to every other at once.
 */
import { concatBytes, equalBytes, toHex } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { randomBytes, wipe } from '../crypto.js';
import type { NodeIdentity } from '../identity.js';
import { Reader } from '../wire.js';
import { decodeKeyDistHeader, openSenderKey, type PairCache, sealSenderKeys } from './key-dist.js';
import { decodeMessage, openWithKey, sealGroupMessage, verifyGroupMessage } from './message.js';
import { NONCE_BYTES, type OpBody, type Role, ZERO_GROUP, createOp, decodeOp, opGroup } from './op-codec.js';
import { OpLog, type ReceiveResult } from './op-log.js';
import { type ChainState, ROTATE_AFTER_MESSAGES, ROTATE_AFTER_MS, keyFor, step } from './ratchet.js';
import type { GroupStore, OwnChain, StoredMessage } from './store.js';

/** What to send to another member. */
export interface Outgoing {
  readonly to: Uint8Array;
  readonly kind: 'op' | 'welcome' | 'key' | 'message';
  readonly group: Uint8Array;
  readonly bytes: Uint8Array;
}

export interface GroupMemberOptions {
  /** Clock (ms), for rotation by age; default Date.now. */
  readonly now?: () => number;
}

/** The outcome of a received message. */
export type ReadResult =
  | { readonly status: 'ok'; readonly id: number; readonly group: Uint8Array; readonly sender: Uint8Array; readonly plaintext: Uint8Array }
  | { readonly status: 'refused'; readonly reason: 'malformed' | 'unknown-group' | 'not-a-member' | 'bad-signature' | 'no-key' | 'bad-ciphertext' };

const WELCOME_VERSION = 1;
/** Messages held per group while their key or their sender's add op is on its way. */
export const MAX_HELD_MESSAGES = 256;
/** Sender keys held while their group's welcome is on its way, all groups together. */
export const MAX_HELD_KEYS = 256;
const MAX_WELCOME_OPS = 100_000;

/** Welcome: version:u8=1 | group(32) | count:u32 | count × (len:u16 op). */
export function encodeWelcome(group: Uint8Array, ops: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(WELCOME_VERSION), group, new Uint8Array(4)];
  new DataView(parts[2]!.buffer).setUint32(0, ops.length);
  for (const op of ops) {
    const len = new Uint8Array(2);
    new DataView(len.buffer).setUint16(0, op.length);
    parts.push(len, op);
  }
  return concatBytes(...parts);
}

/** Inverse of encodeWelcome; DeaddropError PROTOCOL when malformed. */
export function decodeWelcome(raw: Uint8Array): { group: Uint8Array; ops: Uint8Array[] } {
  const r = new Reader(raw, 'group welcome');
  if (r.u8() !== WELCOME_VERSION) throw DeaddropError.protocol('invalid group welcome: unknown version');
  const group = r.bytes(32).slice();
  const n = r.u32();
  if (n > MAX_WELCOME_OPS) throw DeaddropError.protocol('invalid group welcome: too many ops');
  const ops: Uint8Array[] = [];
  for (let i = 0; i < n; i++) ops.push(r.bytes(r.u16()).slice());
  r.end();
  return { group, ops };
}

/** One node's groups. */
export class GroupMember {
  readonly #id: NodeIdentity;
  readonly #store: GroupStore;
  readonly #now: () => number;
  readonly #logs = new Map<string, OpLog>();
  readonly #pairs: PairCache = new Map();

  constructor(identity: NodeIdentity, store: GroupStore, opts: GroupMemberOptions = {}) {
    this.#id = identity;
    this.#store = store;
    this.#now = opts.now ?? Date.now;
  }

  get id(): Uint8Array {
    return this.#id.publicKey;
  }

  /** Groups this node knows, with its status in each. */
  groups(): { group: Uint8Array; name: string; status: string; members: number }[] {
    return this.#store.groups().map((g) => {
      const log = this.#log(g.group);
      return { group: g.group, name: log?.known ? log.state.name : '', status: g.status, members: log?.known ? log.state.members.size : 0 };
    });
  }

  /** Current members and roles. NOT_FOUND for a group we do not know. */
  members(group: Uint8Array): { member: Uint8Array; role: Role }[] {
    const st = this.#known(group).state;
    return [...st.members].map(([m, role]) => ({ member: Uint8Array.from(Buffer.from(m, 'hex')), role })).sort((a, b) => Buffer.compare(a.member, b.member));
  }

  /** The group's ops (raw), e.g. for a welcome or a late member. */
  history(group: Uint8Array): Uint8Array[] {
    return this.#known(group).ops().map((o) => o.raw);
  }

  // ------------------------------------------------------------------------------------------
  // Local actions

  /** Creates a group with us as its only admin. */
  create(name: string): { group: Uint8Array; outgoing: Outgoing[] } {
    const op = createOp(this.#id, { group: ZERO_GROUP, timestamp: this.#now(), preds: [], body: { kind: 'create', nonce: randomBytes(NONCE_BYTES), name } });
    const log = new OpLog(op.hash, [op.raw]);
    this.#logs.set(toHex(op.hash), log);
    const outgoing = this.#store.transaction(() => {
      this.#store.setStatus(op.hash, 'member', this.#now());
      this.#store.addOp(op.hash, op.hash, op.raw);
      return this.#afterChange(op.hash, new Map());
    });
    return { group: op.hash, outgoing };
  }

  add(group: Uint8Array, member: Uint8Array, role: Role = 'member'): Outgoing[] {
    return this.#act(group, { kind: 'add', member, role });
  }

  remove(group: Uint8Array, member: Uint8Array): Outgoing[] {
    return this.#act(group, { kind: 'remove', member });
  }

  leave(group: Uint8Array): Outgoing[] {
    return this.#act(group, { kind: 'leave' });
  }

  setRole(group: Uint8Array, member: Uint8Array, role: Role): Outgoing[] {
    return this.#act(group, { kind: 'role', member, role });
  }

  #act(group: Uint8Array, body: OpBody): Outgoing[] {
    const log = this.#known(group);
    const before = new Map(log.state.members);
    const op = createOp(this.#id, { group, timestamp: this.#now(), preds: log.state.heads.map((h) => Uint8Array.from(Buffer.from(h, 'hex'))), body });
    const res = log.receive(op.raw);
    if (res.status !== 'accepted') throw DeaddropError.badInput(`group op refused: ${res.detail ?? res.reason ?? res.status}`);
    return this.#store.transaction(() => {
      this.#store.addOp(group, op.hash, op.raw);
      const out: Outgoing[] = [];
      const after = log.state.members;
      // The removed member gets the op too (it learns it is out); a newcomer gets the welcome instead.
      for (const m of new Set([...before.keys(), ...after.keys()])) {
        if (m !== toHex(this.id) && before.has(m)) out.push({ to: Uint8Array.from(Buffer.from(m, 'hex')), kind: 'op', group, bytes: op.raw });
      }
      if (body.kind === 'add' && after.has(toHex(body.member))) {
        out.push({ to: body.member, kind: 'welcome', group, bytes: encodeWelcome(group, log.ops().map((o) => o.raw)) });
      }
      return [...out, ...this.#afterChange(group, before)];
    });
  }

  /** Encrypts one message to the group. Returns it and one copy per other member. */
  post(group: Uint8Array, plaintext: Uint8Array): { message: Uint8Array; outgoing: Outgoing[] } {
    const st = this.#known(group).state;
    if (!st.members.has(toHex(this.id))) throw DeaddropError.badInput('not a member of this group');
    const out: Outgoing[] = [];
    let own = this.#store.own(group);
    // stale: a member departed since this chain was made; it must not read what we send now
    if (!own || this.#store.isStale(group) || own.index >= ROTATE_AFTER_MESSAGES || this.#now() - own.createdAt >= ROTATE_AFTER_MS) {
      out.push(...this.#rotate(group, own));
      own = this.#store.own(group)!;
    }
    const { messageKey, next } = step(own);
    const message = sealGroupMessage(this.#id, { group, sender: this.id, generation: own.generation, index: own.index }, messageKey, plaintext);
    wipe(messageKey);
    wipe(own.chainKey);
    this.#store.transaction(() => {
      this.#store.setOwn(group, { ...next, createdAt: own.createdAt });
      this.#store.addMessage(group, { sender: this.id, generation: own.generation, index: own.index, receivedAt: this.#now(), plaintext });
    });
    wipe(next.chainKey);
    for (const m of st.members.keys()) {
      if (m !== toHex(this.id)) out.push({ to: Uint8Array.from(Buffer.from(m, 'hex')), kind: 'message', group, bytes: message });
    }
    return { message, outgoing: out };
  }

  /** Messages read (and written) in a group, oldest first, after the id `after`. */
  read(group: Uint8Array, after = 0, limit = 100): StoredMessage[] {
    return this.#store.messages(group, after, limit);
  }

  // ------------------------------------------------------------------------------------------
  // Received bytes (from anyone: never throw on their content)

  /** A membership op. */
  receiveOp(raw: Uint8Array): ReceiveResult & { outgoing: Outgoing[]; released?: ReadResult[] } {
    let group: Uint8Array;
    try {
      group = opGroup(decodeOp(raw));
    } catch (err) {
      return { status: 'refused', reason: 'malformed', detail: err instanceof Error ? err.message : 'malformed', accepted: [], outgoing: [] };
    }
    const log = this.#log(group);
    if (!log) return { status: 'refused', reason: 'wrong-group', detail: 'unknown group', accepted: [], outgoing: [] };
    const before = new Map(log.state.members);
    const res = log.receive(raw);
    if (res.accepted.length === 0) return { ...res, outgoing: [] };
    const outgoing = this.#store.transaction(() => {
      for (const op of res.accepted) this.#store.addOp(group, op.hash, op.raw);
      return this.#afterChange(group, before);
    });
    return { ...res, outgoing, released: this.#retryHeld(group) };
  }

  /** A welcome: the whole history of a group we were added to. */
  receiveWelcome(raw: Uint8Array): { status: 'joined' | 'not-a-member' | 'refused'; group?: Uint8Array; outgoing: Outgoing[]; released?: ReadResult[] } {
    let w: { group: Uint8Array; ops: Uint8Array[] };
    try {
      w = decodeWelcome(raw);
    } catch {
      return { status: 'refused', outgoing: [] };
    }
    const existing = this.#log(w.group);
    if (existing) {
      const out: Outgoing[] = [];
      for (const op of w.ops) out.push(...this.receiveOp(op).outgoing);
      return { status: existing.state.members.has(toHex(this.id)) ? 'joined' : 'not-a-member', group: w.group, outgoing: out };
    }
    const log = new OpLog(w.group, w.ops);
    if (!log.known) return { status: 'refused', outgoing: [] };
    if (!log.state.members.has(toHex(this.id))) return { status: 'not-a-member', group: w.group, outgoing: [] };
    this.#logs.set(toHex(w.group), log);
    const outgoing = this.#store.transaction(() => {
      this.#store.setStatus(w.group, 'member', this.#now());
      for (const op of log.ops()) this.#store.addOp(w.group, op.hash, op.raw);
      return this.#afterChange(w.group, new Map());
    });
    // keys and messages that arrived before the welcome
    for (const k of this.#store.held('key', null)) {
      if (!equalBytes(decodeKeyDistHeader(k).group, w.group)) continue;
      this.#store.release('key', k);
      const opened = openSenderKey(this.#id, k, this.#pairs);
      if (opened) this.#storeKey(opened);
    }
    return { status: 'joined', group: w.group, outgoing, released: this.#retryHeld(w.group) };
  }

  /**
   * A sender key sealed to us; `released` are held messages it opened. A key for a group we do
   * not know yet is held as received, still sealed (at most MAX_HELD_KEYS, GroupStore.hold) until
   * its welcome arrives: nothing opened is stored for groups we are not in.
   */
  receiveKey(raw: Uint8Array): { status: 'stored' | 'held' | 'refused'; released: ReadResult[] } {
    const opened = openSenderKey(this.#id, raw, this.#pairs);
    if (!opened) return { status: 'refused', released: [] };
    if (!this.#log(opened.group)?.known) {
      wipe(opened.chain.chainKey);
      this.#store.hold('key', null, raw, MAX_HELD_KEYS);
      return { status: 'held', released: [] };
    }
    const status = this.#storeKey(opened);
    return { status, released: status === 'stored' ? this.#retryHeld(decodeKeyDistHeader(raw).group) : [] };
  }

  #storeKey(opened: NonNullable<ReturnType<typeof openSenderKey>>): 'stored' | 'refused' {
    if (equalBytes(opened.from, this.id)) {
      wipe(opened.chain.chainKey);
      return 'refused';
    }
    const chains = this.#store.senderChains(opened.group, opened.from);
    const newest = chains.length > 0 ? chains[chains.length - 1]!.generation : -1;
    const have = chains.some((c) => c.generation === opened.chain.generation);
    for (const c of chains) wipe(c.chainKey);
    // A generation we hold already is a replay: taking it again would hand back deleted keys.
    if (have || opened.chain.generation < newest - 1) {
      wipe(opened.chain.chainKey);
      return 'refused';
    }
    this.#store.setSenderChain(opened.group, opened.from, opened.chain, Math.max(opened.chain.generation, newest) - 1);
    wipe(opened.chain.chainKey);
    return 'stored';
  }

  /**
   * A group message. One that arrives before its sender key or its sender's add op is held (in
   * the store, surviving a restart, at most MAX_HELD_MESSAGES per group) and opened when they arrive; it is reported
   * refused now and comes back in `released` of receiveKey/receiveOp.
   */
  receiveMessage(raw: Uint8Array): ReadResult {
    const r = this.#open(raw);
    if (r.status === 'refused' && (r.reason === 'no-key' || r.reason === 'not-a-member' || r.reason === 'unknown-group')) this.#hold(raw);
    return r;
  }

  #hold(raw: Uint8Array): void {
    const m = decodeMessage(raw);
    if (equalBytes(m.sender, this.id)) return;
    const chain = this.#store.senderChains(m.group, m.sender).find((c) => c.generation === m.generation);
    // below the chain: used already or too old, no later key will open it
    if (chain && m.index < chain.index) return;
    this.#store.hold('message', m.group, raw, MAX_HELD_MESSAGES);
  }

  #retryHeld(group: Uint8Array): ReadResult[] {
    const out: ReadResult[] = [];
    for (const raw of this.#store.held('message', group)) {
      const r = this.#open(raw);
      if (r.status === 'ok') out.push(r);
      if (r.status === 'ok' || !(r.reason === 'no-key' || r.reason === 'not-a-member' || r.reason === 'unknown-group')) this.#store.release('message', raw);
    }
    return out;
  }

  #open(raw: Uint8Array): ReadResult {
    let m: ReturnType<typeof decodeMessage>;
    try {
      m = decodeMessage(raw);
    } catch {
      return { status: 'refused', reason: 'malformed' };
    }
    const log = this.#log(m.group);
    if (!log?.known) return { status: 'refused', reason: 'unknown-group' };
    if (!log.state.members.has(toHex(m.sender)) || equalBytes(m.sender, this.id)) return { status: 'refused', reason: 'not-a-member' };
    if (!verifyGroupMessage(m)) return { status: 'refused', reason: 'bad-signature' };
    const chains = this.#store.senderChains(m.group, m.sender);
    const chain = chains.find((c) => c.generation === m.generation);
    if (!chain) return { status: 'refused', reason: 'no-key' };
    const k = keyFor(chain, m.index, this.#store.skipped(m.group, m.sender));
    for (const c of chains) wipe(c.chainKey);
    if (!k) return { status: 'refused', reason: 'no-key' };
    const plaintext = openWithKey(m, k.messageKey);
    wipe(k.messageKey);
    if (!plaintext) return { status: 'refused', reason: 'bad-ciphertext' };
    const id = this.#store.transaction(() => {
      if (k.used) this.#store.useSkipped(m.group, m.sender, k.used);
      else this.#store.setSenderChain(m.group, m.sender, k.chain, m.generation - 1);
      this.#store.addSkipped(m.group, m.sender, k.newSkipped);
      return this.#store.addMessage(m.group, { sender: m.sender, generation: m.generation, index: m.index, receivedAt: this.#now(), plaintext });
    });
    for (const s of k.newSkipped) wipe(s.messageKey);
    return { status: 'ok', id, group: m.group, sender: m.sender, plaintext };
  }

  /** Who sealed a sender key (claimed; opening it proves it), without opening it. */
  static keySender(raw: Uint8Array): Uint8Array | null {
    try {
      return decodeKeyDistHeader(raw).from;
    } catch {
      return null;
    }
  }

  /** Who a sealed sender key is for, without opening it (for routing). */
  static keyRecipient(raw: Uint8Array): Uint8Array | null {
    try {
      return decodeKeyDistHeader(raw).to;
    } catch {
      return null;
    }
  }

  // ------------------------------------------------------------------------------------------

  #log(group: Uint8Array): OpLog | null {
    const k = toHex(group);
    let log = this.#logs.get(k);
    if (!log) {
      if (this.#store.status(group) === null) return null;
      log = new OpLog(group, this.#store.ops(group));
      this.#logs.set(k, log);
    }
    return log;
  }

  #known(group: Uint8Array): OpLog {
    const log = this.#log(group);
    if (!log?.known) throw DeaddropError.notFound('unknown group');
    return log;
  }

  /** Keys to send after the membership moved from `before` to the current state. */
  #afterChange(group: Uint8Array, before: ReadonlyMap<string, Role>): Outgoing[] {
    const after = this.#known(group).state.members;
    const me = toHex(this.id);
    if (!after.has(me)) {
      if (before.has(me)) {
        this.#store.deleteOwn(group);
        this.#store.setStatus(group, 'removed');
      }
      return [];
    }
    this.#store.setStatus(group, 'member');
    const departed = [...before.keys()].filter((m) => !after.has(m));
    const arrived = [...after.keys()].filter((m) => !before.has(m) && m !== me);
    for (const d of departed) this.#store.forgetSender(group, Uint8Array.from(Buffer.from(d, 'hex')));
    const own = this.#store.own(group);
    if (!before.has(me) || !own) return this.#rotate(group, own);
    // Lazy rotation: the departed may hold our chain, so it is never used again (post rotates
    // first), but nothing is sent now: a member who stays silent costs nothing.
    if (departed.length > 0) this.#store.markStale(group);
    // A stale chain is not handed to newcomers either: our next send brings them the new one.
    if (this.#store.isStale(group)) {
      wipe(own.chainKey);
      return [];
    }
    const out = this.#distribute(group, own, arrived);
    wipe(own.chainKey);
    return out;
  }

  /** A new sending chain (next generation), sent to every other current member. */
  #rotate(group: Uint8Array, old: OwnChain | null): Outgoing[] {
    const generation = old ? (old.generation + 1) >>> 0 : Math.floor(this.#now() / 1000) >>> 0;
    if (old) wipe(old.chainKey);
    const fresh: OwnChain = { generation, index: 0, chainKey: randomBytes(32), createdAt: this.#now() };
    this.#store.setOwn(group, fresh);
    this.#store.clearStale(group);
    const others = [...this.#known(group).state.members.keys()].filter((m) => m !== toHex(this.id));
    const out = this.#distribute(group, fresh, others);
    wipe(fresh.chainKey);
    return out;
  }

  #distribute(group: Uint8Array, chain: ChainState, to: readonly string[]): Outgoing[] {
    if (to.length === 0) return [];
    const keys = to.map((m) => Uint8Array.from(Buffer.from(m, 'hex')));
    return sealSenderKeys(this.#id, group, chain, keys, this.#pairs).map((bytes, i) => ({ to: keys[i]!, kind: 'key' as const, group, bytes }));
  }
}
