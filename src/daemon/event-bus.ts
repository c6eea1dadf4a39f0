/**
 * The daemon's event stream. Every state change a user may care about (chain tip, wallet,
 * drops, PayPub, peers) is published here once and fanned out to the API websocket and CLI.
 * Events carry a stable `id` chosen by the producer, so a consumer that sees the same event
 * twice (after a reconnect or a replay) can drop the duplicate.
 */
export interface DaemonEvent {
  readonly id: string;
  readonly type: string;
  readonly time: number;
  readonly data: Record<string, unknown>;
}

export type EventListener = (event: DaemonEvent) => void;

export class EventBus {
  private readonly listeners = new Set<EventListener>();
  private readonly recent: DaemonEvent[] = [];

  constructor(private readonly keepRecent = 256) {}

  publish(type: string, id: string, data: Record<string, unknown>): DaemonEvent {
    const event: DaemonEvent = { id, type, time: Date.now(), data };
    this.recent.push(event);
    if (this.recent.length > this.keepRecent) this.recent.shift();
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // A failing consumer must not stop delivery to the others.
      }
    }
    return event;
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Listeners currently subscribed (API websockets among them). */
  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** The most recent events, oldest first, optionally filtered by type prefix. */
  history(typePrefix?: string): DaemonEvent[] {
    return typePrefix ? this.recent.filter((e) => e.type.startsWith(typePrefix)) : [...this.recent];
  }
}
