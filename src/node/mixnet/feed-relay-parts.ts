/**
 * Bounded reassembly of relay messages split into PARTs (./feed-relay-codec.ts). Packets of one
 * message take independent routes with independent delays, so PARTs arrive in any order, and some
 * never arrive: a message waits at most `timeoutMs`, and each sender has a cap on messages and
 * bytes waiting, so a contact cannot make us hold more than that for it.
 */
import { toHex } from '../../util/bytes.js';
import { RELAY_PART_DATA, type RelayPart } from './feed-relay-codec.js';

export interface PartsOptions {
  /** Messages waiting per sender (default 16). */
  readonly maxMessages?: number;
  /** Bytes waiting per sender (default 2 MiB). */
  readonly maxBytes?: number;
  /** How long an incomplete message waits (default 120 s). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/** What became of one PART. */
export type PartOutcome = { readonly done: Uint8Array } | 'waiting' | 'malformed' | 'over-budget';

interface Pending {
  readonly sender: string;
  readonly total: number;
  readonly parts: (Uint8Array | undefined)[];
  got: number;
  bytes: number;
  readonly started: number;
}

export class PartsBuffer {
  readonly #o: Required<PartsOptions>;
  readonly #pending = new Map<string, Pending>();
  readonly #perSender = new Map<string, { messages: number; bytes: number }>();
  /** Incomplete messages given up on (timeout). */
  expired = 0;

  constructor(opts: PartsOptions = {}) {
    this.#o = { maxMessages: 16, maxBytes: 2 * 1024 * 1024, timeoutMs: 120_000, now: Date.now, ...opts };
  }

  /** Messages waiting for PARTs (all senders). */
  get size(): number {
    return this.#pending.size;
  }

  add(sender: Uint8Array, p: RelayPart): PartOutcome {
    // Every PART but the last is full: that fixes the message length and rules out overlaps.
    if (p.index < p.total - 1 && p.data.length !== RELAY_PART_DATA) return 'malformed';
    if (p.total === 1) return { done: p.data };
    this.#expire();
    const who = toHex(sender);
    const key = `${who}:${toHex(p.msgId)}`;
    let m = this.#pending.get(key);
    const use = this.#perSender.get(who) ?? { messages: 0, bytes: 0 };
    if (!m) {
      if (use.messages >= this.#o.maxMessages) return 'over-budget';
      m = { sender: who, total: p.total, parts: new Array<Uint8Array | undefined>(p.total), got: 0, bytes: 0, started: this.#o.now() };
      this.#pending.set(key, m);
      use.messages++;
      this.#perSender.set(who, use);
    }
    if (m.total !== p.total) return 'malformed';
    if (m.parts[p.index]) return 'waiting'; // a duplicate
    if (use.bytes + p.data.length > this.#o.maxBytes) {
      this.#forget(key, m);
      return 'over-budget';
    }
    m.parts[p.index] = p.data;
    m.got++;
    m.bytes += p.data.length;
    use.bytes += p.data.length;
    if (m.got < m.total) return 'waiting';
    this.#forget(key, m);
    return { done: Buffer.concat(m.parts as Uint8Array[]) };
  }

  /** Drops everything (closing). */
  clear(): void {
    this.#pending.clear();
    this.#perSender.clear();
  }

  #forget(key: string, m: Pending): void {
    this.#pending.delete(key);
    const use = this.#perSender.get(m.sender);
    if (!use) return;
    use.messages--;
    use.bytes -= m.bytes;
    if (use.messages <= 0) this.#perSender.delete(m.sender);
  }

  #expire(): void {
    const cutoff = this.#o.now() - this.#o.timeoutMs;
    for (const [key, m] of this.#pending) {
      if (m.started > cutoff) continue;
      this.#forget(key, m);
      this.expired++;
    }
  }
}
