/**
 * A few group members in one process, each with its own in-memory node database, and a router
 * that carries their `Outgoing` byte strings: delivered at once, held for an offline member, or
 * shuffled. Real crypto and real stores throughout; nothing is mocked.
 */
import { openNodeDatabase, type SqliteDatabase } from '../../../src/node/db.js';
import { NodeIdentity } from '../../../src/node/identity.js';
import { GroupMember, type Outgoing, type ReadResult } from '../../../src/node/groups/member.js';
import { GroupStore } from '../../../src/node/groups/store.js';
import { toHex } from '../../../src/util/bytes.js';
import { prng as uint32Prng } from '../../support/blockgen.js';

export interface Party {
  readonly name: string;
  readonly seed: Uint8Array;
  readonly identity: NodeIdentity;
  readonly db: SqliteDatabase;
  store: GroupStore;
  member: GroupMember;
  readonly inbox: Outgoing[];
  online: boolean;
  /** Every message this party read, in order. */
  readonly read: Extract<ReadResult, { status: 'ok' }>[];
  readonly refused: { kind: string; reason: string }[];
}

/** A deterministic PRNG in [0, 1) (blockgen's mulberry32) for shuffles that a failing seed can replay. */
export function prng(seed: number): () => number {
  const next = uint32Prng(seed);
  return () => next() / 4294967296;
}

export function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

export class World {
  readonly parties = new Map<string, Party>();
  /** Every byte string ever sent, for eavesdropper checks. */
  readonly wire: Outgoing[] = [];

  party(name: string, seedByte: number): Party {
    const seed = new Uint8Array(32).fill(seedByte);
    const identity = NodeIdentity.fromSeed(seed);
    const db = openNodeDatabase(':memory:');
    const store = new GroupStore(db, identity);
    const p: Party = { name, seed, identity, db, store, member: new GroupMember(identity, store), inbox: [], online: true, read: [], refused: [] };
    this.parties.set(toHex(identity.publicKey), p);
    return p;
  }

  /** A process restart: the party's member and store are built anew over the same database. */
  restart(p: Party): void {
    p.store.destroy();
    p.store = new GroupStore(p.db, p.identity);
    p.member = new GroupMember(p.identity, p.store);
  }

  /** Queues byte strings for their recipients, then delivers to everyone online until quiet. */
  send(out: readonly Outgoing[], rand?: () => number): void {
    for (const o of out) {
      this.wire.push(o);
      this.parties.get(toHex(o.to))?.inbox.push(o);
    }
    this.flush(rand);
  }

  /** Delivers queued byte strings to online parties (in order, or shuffled) until nothing moves. */
  flush(rand?: () => number): void {
    for (let moved = true; moved; ) {
      moved = false;
      for (const p of this.parties.values()) {
        if (!p.online || p.inbox.length === 0) continue;
        const batch = p.inbox.splice(0);
        if (rand) shuffle(batch, rand);
        for (const o of batch) {
          moved = true;
          const next = this.#deliver(p, o);
          for (const n of next) {
            this.wire.push(n);
            this.parties.get(toHex(n.to))?.inbox.push(n);
          }
        }
      }
    }
  }

  #deliver(p: Party, o: Outgoing): Outgoing[] {
    switch (o.kind) {
      case 'op': {
        const r = p.member.receiveOp(o.bytes);
        if (r.status === 'refused') p.refused.push({ kind: 'op', reason: r.reason ?? '' });
        this.#released(p, r.released ?? []);
        return r.outgoing;
      }
      case 'welcome': {
        const r = p.member.receiveWelcome(o.bytes);
        this.#released(p, r.released ?? []);
        return r.outgoing;
      }
      case 'key': {
        const r = p.member.receiveKey(o.bytes);
        if (r.status === 'refused') p.refused.push({ kind: 'key', reason: 'refused' });
        this.#released(p, r.released);
        return [];
      }
      case 'message': {
        const r = p.member.receiveMessage(o.bytes);
        if (r.status === 'ok') p.read.push(r);
        else p.refused.push({ kind: 'message', reason: r.reason });
        return [];
      }
    }
  }

  /** Held messages that a later key or op opened: read after all, so no longer refused. */
  #released(p: Party, rs: readonly ReadResult[]): void {
    for (const r of rs) {
      if (r.status !== 'ok') continue;
      p.read.push(r);
      const i = p.refused.findIndex((x) => x.kind === 'message' && (x.reason === 'no-key' || x.reason === 'not-a-member'));
      if (i >= 0) p.refused.splice(i, 1);
    }
  }

  /** Members of `group` as `party` sees them: sorted names. */
  membersSeenBy(p: Party, group: Uint8Array): string[] {
    return p.member.members(group).map((m) => `${this.parties.get(toHex(m.member))?.name ?? '?'}:${m.role}`).sort();
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const untext = (b: Uint8Array): string => new TextDecoder().decode(b);
