/**
 * Batches the packets that fall due toward one next hop in the same turn of the event loop.
 *
 * A packet is handed over when it is due (after its Poisson delay, or at once); `push` only queues
 * it, and one `setImmediate` per turn flushes every queue: the check phase runs after the timers
 * and the I/O callbacks of the same turn, so every packet due in that turn leaves together and none
 * leaves later than the end of the turn it fell due in. Packets keep their order per hop (FIFO),
 * so batching never reorders what the per-packet delays decided. A flush cuts each hop's queue
 * into batches of at most {@link MAX_BATCH_PACKETS} (one Noise message each; docs/protocol/mixnet.md,
 * "Batches").
 */
import { FRAME_PACKET, FRAME_PACKETS, MAX_BATCH_PACKETS, encodePackets } from './wire.js';

/** Sends the packets of one flush to one hop (1 to MAX_BATCH_PACKETS of them, oldest first). */
export type BatchSink = (key: string, packets: Buffer[]) => void;

export class PacketBatcher {
  readonly #queues = new Map<string, Buffer[]>();
  readonly #sink: BatchSink;
  readonly #maxBatch: number;
  #immediate: NodeJS.Immediate | undefined;

  /** `maxBatch` below MAX_BATCH_PACKETS (1 turns batching off) is for comparisons and tests. */
  constructor(sink: BatchSink, maxBatch = MAX_BATCH_PACKETS) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH_PACKETS) throw new RangeError(`maxBatch: expected 1 to ${MAX_BATCH_PACKETS}, got ${maxBatch}`);
    this.#sink = sink;
    this.#maxBatch = maxBatch;
  }

  /** Packets queued and not yet flushed. */
  get pending(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  /** Queues `packet` for hop `key`; it leaves at the end of this turn of the event loop. */
  push(key: string, packet: Buffer): void {
    const q = this.#queues.get(key);
    if (q) q.push(packet);
    else this.#queues.set(key, [packet]);
    this.#immediate ??= setImmediate(() => this.flush());
  }

  /** Sends everything queued now (also called by the owner before it closes its links). */
  flush(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    const queues = [...this.#queues];
    this.#queues.clear();
    for (const [key, packets] of queues) {
      for (let i = 0; i < packets.length; i += this.#maxBatch) this.#sink(key, packets.slice(i, i + this.#maxBatch));
    }
  }

  /** Forgets everything queued (the owner is closing without sending). */
  clear(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    this.#queues.clear();
  }
}

/**
 * Sends one flush's packets for one hop: a PACKET frame for a single packet (the frame a lone
 * packet always had), a PACKETS frame for 2 or more.
 */
export function sendPackets(channel: { send(type: number, payload: Uint8Array): boolean }, packets: readonly Buffer[]): void {
  if (packets.length === 1) channel.send(FRAME_PACKET, packets[0]!);
  else channel.send(FRAME_PACKETS, encodePackets(packets));
}
