/**
 * The daemon's event stream. Every state change a user may care about (chain tip, wallet,
 * drops, PayPub, peers) is published here once and fanned out to the API websocket and CLI.
 * Events carry a stable `id` chosen by the producer, so a consumer that sees the same event
 * twice (after a reconnect or a replay) can drop the duplicate.
 *
 * The replay history is kept per kind (the type's first segment: `drop`, `paypub`, `wallet`,
 * `node`, `chain`...), each kind with its own bound, and noise (events strangers can cause and
 * progress ticks) in a small history of its own: a burst of one kind can no longer push the
 * drops, sales and wallet changes a reconnecting client needs out of `?replay=1`.
 */
export interface DaemonEvent {
  readonly id: string;
  readonly type: string;
  readonly time: number;
  readonly data: Record<string, unknown>;
}

export type EventListener = (event: DaemonEvent) => void;

/** Types kept in the small noise history rather than under their kind. */
export const NOISE_TYPES: readonly string[] = ['node.peer.rejected', 'node.group.refused', 'watch.progress', 'storage.progress', 'wallet.progress'];

/** History bound of the noise kind. */
const NOISE_KEEP = 32;

interface Retained {
  readonly seq: number;
  readonly event: DaemonEvent;
}

export class EventBus {
  readonly #listeners = new Set<EventListener>();
  readonly #recent = new Map<string, Retained[]>();
  #seq = 0;

  readonly #keepRecent: number;

  /** `keepRecent`: events kept per kind for replay. */
  constructor(keepRecent = 256) {
    this.#keepRecent = keepRecent;
  }

  publish(type: string, id: string, data: Record<string, unknown>): DaemonEvent {
    const event: DaemonEvent = { id, type, time: Date.now(), data };
    this.#retain(event);
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // A failing consumer must not stop delivery to the others.
      }
    }
    return event;
  }

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Listeners currently subscribed (API websockets among them). */
  get subscriberCount(): number {
    return this.#listeners.size;
  }

  /** The most recent events of every kind, oldest first, optionally filtered by type prefix. */
  history(typePrefix?: string): DaemonEvent[] {
    const all: Retained[] = [];
    for (const [kind, list] of this.#recent) all.push(...list.slice(-(kind === '' ? NOISE_KEEP : this.#keepRecent)));
    all.sort((a, b) => a.seq - b.seq);
    const events = all.map((r) => r.event);
    return typePrefix ? events.filter((e) => e.type.startsWith(typePrefix)) : events;
  }

  #retain(event: DaemonEvent): void {
    const noise = NOISE_TYPES.some((t) => event.type === t);
    const kind = noise ? '' : event.type.split('.', 1)[0]!;
    let list = this.#recent.get(kind);
    if (!list) this.#recent.set(kind, (list = []));
    list.push({ seq: this.#seq++, event });
    // Trim in batches: an array shift per event would cost O(n) each.
    const keep = noise ? NOISE_KEEP : this.#keepRecent;
    if (list.length >= keep * 2) list.splice(0, list.length - keep);
  }
}
