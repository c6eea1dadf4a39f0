/**
 * In-process mixnet services whose log entries reach each other as replication would deliver
 * them: each node signs real log entries (createEntry) and every entry is given to every running
 * service's `ingest` (and to services started later).
 */
import { randomBytes } from 'node:crypto';
import { NodeIdentity } from '../../src/node/identity.js';
import { ZERO_HASH, createEntry } from '../../src/node/log/codec.js';
import type { EntryDraft, LogEntry } from '../../src/node/log/codec.js';
import { MAILBOX_TYPE } from '../../src/node/mixnet/directory.js';
import { MixnetService } from '../../src/node/mixnet/service.js';
import type { MixnetServiceOptions } from '../../src/node/mixnet/service.js';

export class MixWorld {
  readonly entries: LogEntry[] = [];
  readonly services = new Set<MixnetService>();
  readonly #feeds = new Map<string, { seq: number; prev: Uint8Array }>();

  /** Appends `draft` to `identity`'s feed and hands the signed entry to every service. */
  publish(identity: NodeIdentity, draft: EntryDraft): LogEntry {
    const key = Buffer.from(identity.publicKey).toString('hex');
    const f = this.#feeds.get(key) ?? { seq: 0, prev: ZERO_HASH };
    const e = createEntry(identity, { seq: f.seq + 1, prev: f.prev, timestamp: Date.now(), header: draft.header, body: draft.body ?? new Uint8Array(0) });
    this.#feeds.set(key, { seq: e.seq, prev: e.hash });
    this.entries.push(e);
    for (const s of this.services) s.ingest(e);
    return e;
  }

  /** Starts a service for `identity` (a fresh one by default) that sees every entry so far. */
  async start(opts: Partial<MixnetServiceOptions> & { identity?: NodeIdentity } = {}): Promise<MixnetService> {
    const identity = opts.identity ?? NodeIdentity.fromSeed(randomBytes(32));
    const s = new MixnetService({
      isContact: () => true, fetchIntervalMs: 100, meanDelayMs: 5, ...opts, identity,
      publish: (d) => this.publish(identity, d),
    });
    this.services.add(s);
    for (const e of this.entries) s.ingest(e);
    await s.start();
    return s;
  }

  /** True once `node` announced a provider in its log. */
  directoryHasMailbox(node: Uint8Array): boolean {
    return this.entries.some((e) => e.header.type === MAILBOX_TYPE && Buffer.from(e.author).equals(node));
  }

  async stop(s: MixnetService): Promise<void> {
    this.services.delete(s);
    await s.close();
  }

  async close(): Promise<void> {
    await Promise.all([...this.services].map((s) => s.close()));
    this.services.clear();
  }
}
