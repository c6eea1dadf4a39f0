/**
 * GroupService: groups on a running PeerNode. Local actions go through GroupMember; what it
 * produces for other members is appended to our own feed as entries sealed to each recipient
 * (./transport.ts), and entries replicated from other feeds are opened and handed back to
 * GroupMember. We follow the feed of every member of our groups, so their entries reach us
 * through any contact that follows them too; a newcomer must be a contact of the member who adds
 * it (it follows its contacts' feeds, which is how the welcome reaches it).
 *
 * Entries are read once: a cursor per feed (`grp_cursor`) records how far we read, and `start`
 * catches up on what replicated while the service was not listening.
 */
import { concatBytes, equalBytes, toHex } from '../../util/bytes.js';
import { DeaddropError } from '../../util/errors.js';
import { randomBytes, sha256 } from '../crypto.js';
import type { LogEntry } from '../log/codec.js';
import type { PeerNode } from '../node.js';
import type { NodeStorage } from '../storage/service.js';
import { type FileShare, MAX_FILE_NAME_BYTES, decodeFileShare, encodeFileShare, isFileShare } from './files.js';
import { GroupMember, type ReadResult } from './member.js';
import type { Role } from './op-codec.js';
import { GroupStore } from './store.js';
import { type Carried, type EntryKeyCache, groupEntryDraft, readGroupEntry } from './transport.js';

/** Default lifetime of a group invite. */
export const GROUP_INVITE_TTL_MS = 7 * 24 * 3600_000;
const INVITE_TOKEN_BYTES = 16;

/** What a joiner needs besides the inviter's `deaddrop:` invite: which group, the token, and whom to ask. */
export interface GroupInvite {
  readonly group: Uint8Array;
  readonly token: Uint8Array;
  readonly inviter: Uint8Array;
  readonly expiresAt: number;
}

function tokenHash(token: Uint8Array): Uint8Array {
  return sha256(new TextEncoder().encode('deaddrop/group-invite/v1\0'), token);
}

/** Publishes a daemon event (EventBus.publish). */
export type PublishGroupEvent = (type: string, id: string, data: Record<string, unknown>) => void;

const utf8 = new TextDecoder('utf-8', { fatal: false });

export class GroupService {
  readonly member: GroupMember;
  readonly #node: PeerNode;
  readonly #store: GroupStore;
  readonly #publish: PublishGroupEvent;
  readonly #storage: () => NodeStorage | null | undefined;
  readonly #keys: EntryKeyCache = new Map();
  readonly #onReplicated = (e: LogEntry): void => this.#onEntry(e);
  #closed = false;

  /** `storage`: the node's storage service, for shared files (it starts after us, hence a getter). */
  constructor(node: PeerNode, publish: PublishGroupEvent = () => undefined, storage: () => NodeStorage | null | undefined = () => null) {
    this.#node = node;
    this.#publish = publish;
    this.#storage = storage;
    this.#store = new GroupStore(node.store.db, node.identity);
    this.member = new GroupMember(node.identity, this.#store);
  }

  /** Follows every member's feed, listens for entries and reads what arrived meanwhile. */
  start(): void {
    this.#node.on('entry.replicated', this.#onReplicated);
    for (const g of this.#store.groups()) this.#followMembers(g.group);
    for (const f of this.#node.store.feeds()) {
      if (toHex(f.author) === toHex(this.#node.id)) continue;
      for (let from = this.#store.cursor(f.author) + 1; from <= f.length; from += 256) {
        for (const e of this.#node.store.range(f.author, from, Math.min(f.length, from + 255))) this.#onEntry(e);
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#node.off('entry.replicated', this.#onReplicated);
    this.#store.destroy();
  }

  create(name: string): Uint8Array {
    const { group, outgoing } = this.member.create(name);
    this.#send(outgoing);
    return group;
  }

  /** Adds a member; it must be one of our contacts (that is how the welcome reaches it). */
  add(group: Uint8Array, member: Uint8Array, role: Role = 'member'): void {
    if (!this.#node.contacts().some((c) => toHex(c.node) === toHex(member))) {
      throw DeaddropError.badInput('the new member must be a contact of this node (invite it through a drop first)');
    }
    this.#send(this.member.add(group, member, role));
    this.#followMembers(group);
  }

  remove(group: Uint8Array, member: Uint8Array): void {
    this.#send(this.member.remove(group, member));
  }

  leave(group: Uint8Array): void {
    this.#send(this.member.leave(group));
  }

  setRole(group: Uint8Array, member: Uint8Array, role: Role): void {
    this.#send(this.member.setRole(group, member, role));
  }

  /** Posts a text message; returns its id in our store. */
  post(group: Uint8Array, text: string): number {
    // a NUL first would make the text look like a file share (./files.ts) to the other members
    if (text.startsWith('\0')) throw DeaddropError.badInput('text: may not start with a NUL character');
    return this.#post(group, new TextEncoder().encode(text));
  }

  #post(group: Uint8Array, plaintext: Uint8Array): number {
    const { outgoing } = this.member.post(group, plaintext);
    this.#send(outgoing);
    return this.member.read(group, 0, Number.MAX_SAFE_INTEGER).at(-1)?.id ?? 0;
  }

  #needStorage(): NodeStorage {
    const s = this.#storage();
    if (!s) throw new DeaddropError('NOT_INITIALIZED', 'the storage service is not running');
    return s;
  }

  /**
   * Shares a file with the group (groups.md section 11): puts it into storage (kept alive by
   * this node) and posts its read capability as a group message, wrapped under our current
   * sender key like any message. Returns the message id, which names the file in `files`/`fetch`.
   */
  async share(group: Uint8Array, data: Uint8Array, name: string): Promise<{ id: number; storageIndex: string; size: number }> {
    if (new TextEncoder().encode(name).length > MAX_FILE_NAME_BYTES) throw DeaddropError.badInput(`name: at most ${MAX_FILE_NAME_BYTES} UTF-8 bytes`);
    // refuse before the (slow, paid-for) put when we could not post afterwards
    if (!this.member.members(group).some((m) => equalBytes(m.member, this.#node.id))) throw DeaddropError.badInput('not a member of this group');
    const storage = this.#needStorage();
    if (data.length > storage.maxPutBytes()) throw DeaddropError.badInput(`the file has ${data.length} bytes; this node's storage takes at most ${storage.maxPutBytes()}`);
    const put = await storage.put(data, { name, keep: true });
    if (this.#closed) throw new DeaddropError('NOT_INITIALIZED', 'the group service closed during the upload');
    const id = this.#post(group, encodeFileShare({ cap: put.readCap, name, size: put.size }));
    this.#publish('node.group.file', `node.group.file:${toHex(this.#node.id)}:${id}`, { id, group: toHex(group), sender: toHex(this.#node.id), name, size: put.size });
    return { id, storageIndex: put.storageIndex, size: put.size };
  }

  /**
   * Files shared with the group that we can read (their capabilities stay inside the node), oldest
   * first. A removed member keeps the files shared before its removal: it held their capabilities.
   */
  files(group: Uint8Array): { id: number; sender: Uint8Array; receivedAt: number; name: string; size: number }[] {
    this.member.members(group); // NOT_FOUND for a group we do not know
    const out: { id: number; sender: Uint8Array; receivedAt: number; name: string; size: number }[] = [];
    for (let after = 0; ;) {
      const page = this.member.read(group, after, 500);
      for (const m of page) {
        const f = decodeFileShare(m.plaintext);
        if (f) out.push({ id: m.id, sender: m.sender, receivedAt: m.receivedAt, name: f.name, size: f.size });
      }
      if (page.length < 500) return out;
      after = page.at(-1)!.id;
    }
  }

  /** Fetches, verifies and decrypts the file shared as message `id`; NOT_FOUND when there is none. */
  async fetch(group: Uint8Array, id: number): Promise<FileShare & { data: Uint8Array }> {
    this.member.members(group);
    const m = this.member.read(group, id - 1, 1)[0];
    const f = m?.id === id ? decodeFileShare(m.plaintext) : null;
    if (!f) throw DeaddropError.notFound(`no file shared as message ${id} in this group`);
    const data = await this.#needStorage().get(f.cap);
    return { ...f, data };
  }

  /**
   * A single-use invite to `group` (admins only). The joiner gets the inviter's `deaddrop:`
   * invite and this; its drop makes the two nodes contacts, and its join request (an entry sealed
   * to us, written at once, replicated once the contact exists) makes us add it.
   */
  createInvite(group: Uint8Array, ttlMs = GROUP_INVITE_TTL_MS): GroupInvite {
    const me = this.member.members(group).find((m) => equalBytes(m.member, this.#node.id));
    if (me?.role !== 'admin') throw DeaddropError.badInput('only an admin of the group can invite');
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw DeaddropError.badInput('ttl must be positive');
    const token = randomBytes(INVITE_TOKEN_BYTES);
    const expiresAt = Date.now() + ttlMs;
    this.#store.addInvite(tokenHash(token), group, expiresAt);
    return { group, token, inviter: this.#node.id, expiresAt };
  }

  /** Asks `inviter` to add us to `group` with an invite token (see createInvite). */
  requestJoin(inviter: Uint8Array, group: Uint8Array, token: Uint8Array): void {
    if (inviter.length !== 32 || group.length !== 32 || token.length !== INVITE_TOKEN_BYTES) throw DeaddropError.badInput('malformed group invite');
    if (equalBytes(inviter, this.#node.id)) throw DeaddropError.badInput('this is our own invite');
    this.#node.follow(inviter);
    this.#send([{ to: inviter, kind: 'join', bytes: concatBytes(group, token) }]);
  }

  /** A join request sealed to us by `from`: add it if the token is an unused invite of that group. */
  #onJoin(from: Uint8Array, bytes: Uint8Array): void {
    if (bytes.length !== 32 + INVITE_TOKEN_BYTES) return;
    const group = bytes.slice(0, 32);
    if (!this.#store.consumeInvite(tokenHash(bytes.subarray(32)), group, from)) return;
    // the joiner is a contact by now (its feed reached us through a session); add it
    this.#send(this.member.add(group, from, 'member'));
    this.#followMembers(group);
  }

  #send(out: readonly Carried[]): void {
    if (out.length === 0) return;
    const drafts = out.map((o) => groupEntryDraft(this.#node.identity, o, this.#keys)).filter((d) => d !== null);
    // appendBatch: one transaction; entries above 1 MiB (a welcome of a very large group) fail here
    for (let i = 0; i < drafts.length; i += 500) this.#node.appendBatch(drafts.slice(i, i + 500));
  }

  #followMembers(group: Uint8Array): void {
    let members: { member: Uint8Array }[];
    try {
      members = this.member.members(group);
    } catch {
      return;
    }
    for (const m of members) if (toHex(m.member) !== toHex(this.#node.id)) this.#node.follow(m.member);
  }

  #onEntry(e: LogEntry): void {
    if (this.#closed) return;
    const carried = readGroupEntry(this.#node.identity, e, this.#keys);
    if (carried) {
      try {
        if (carried.kind === 'join') this.#onJoin(e.author, carried.bytes);
        // a sender key comes from its own author's feed only: nobody fills our store with keys of made-up senders
        else if (carried.kind === 'key' && !equalBytes(GroupMember.keySender(carried.bytes) ?? new Uint8Array(0), e.author)) return this.#store.setCursor(e.author, e.seq);
        else this.#dispatch(carried.kind, carried.bytes);
      } catch (err) {
        // input from others never stops the node; a local fault is reported, not thrown
        this.#publish('node.group.error', `node.group.error:${toHex(e.hash)}`, { message: err instanceof Error ? err.message : String(err) });
      }
    }
    this.#store.setCursor(e.author, e.seq);
  }

  #dispatch(kind: string, bytes: Uint8Array): void {
    if (kind === 'op') {
      const r = this.member.receiveOp(bytes);
      this.#send(r.outgoing);
      this.#read(r.released ?? []);
      if (r.status === 'accepted') {
        const group = r.accepted[0]!.body.kind === 'create' ? r.accepted[0]!.hash : r.accepted[0]!.group;
        this.#followMembers(group);
        this.#publish('node.group.changed', `node.group.changed:${toHex(r.accepted.at(-1)!.hash)}`, { group: toHex(group) });
      } else if (r.status === 'refused' || r.status === 'duplicate') {
        // A forged, unauthorised or replayed change: said, never applied (a noise-kind event).
        this.#publish('node.group.refused', `node.group.refused:${toHex(sha256(bytes))}`, { kind: 'op', status: r.status, reason: r.reason ?? r.status });
      }
    } else if (kind === 'welcome') {
      const r = this.member.receiveWelcome(bytes);
      this.#send(r.outgoing);
      this.#read(r.released ?? []);
      if (r.status === 'joined' && r.group) {
        this.#followMembers(r.group);
        this.#publish('node.group.joined', `node.group.joined:${toHex(r.group)}`, { group: toHex(r.group) });
      }
    } else if (kind === 'key') {
      this.#read(this.member.receiveKey(bytes).released);
    } else {
      this.#read([this.member.receiveMessage(bytes)]);
    }
  }

  #read(results: readonly ReadResult[]): void {
    for (const r of results) {
      if (r.status !== 'ok') continue;
      if (isFileShare(r.plaintext)) {
        const f = decodeFileShare(r.plaintext);
        // the capability stays out of events: whoever watches /events would read the file
        if (f) this.#publish('node.group.file', `node.group.file:${toHex(r.sender)}:${r.id}`, { id: r.id, group: toHex(r.group), sender: toHex(r.sender), name: f.name, size: f.size });
        continue;
      }
      this.#publish('node.group.message', `node.group.message:${toHex(r.sender)}:${r.id}`, { id: r.id, group: toHex(r.group), sender: toHex(r.sender), text: utf8.decode(r.plaintext) });
    }
  }
}
