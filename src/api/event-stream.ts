/**
 * One `/events` subscriber: a bounded queue in front of a websocket.
 *
 * Why it is built this way (issue 17): a subscriber that stops reading used to get every event
 * written into the socket until 4 MiB were buffered, then a close frame queued behind those
 * megabytes (it never arrived), then a destroy 30 s later, at which point Node failed every
 * queued frame one by one (one error object each): a 4–5 s stall of the whole daemon for twenty
 * such clients. Here:
 * - at most `window` frames are ever handed to the socket without having been flushed to the
 *   kernel; further events wait in our own queue (shared buffers, dropped in O(1));
 * - that queue is bounded by events and by bytes; past either bound the subscriber is cut off at
 *   once with `terminate()` (the socket is destroyed, no close frame waits behind the data), so
 *   dropping a subscriber costs at most `window` failed writes however much was pending;
 * - each event is serialized once, whatever the number of subscribers, and the frames queued for
 *   a subscriber are written once per turn of the event loop with the socket corked (one write
 *   system call for many frames instead of one each).
 */
import type { WebSocket } from 'ws';
import type { DaemonEvent } from '../util/event-bus.js';

export interface EventStreamLimits {
  /** Frames handed to the socket and not yet flushed to the kernel. */
  readonly window: number;
  /** Events waiting behind the window before the subscriber is cut off. */
  readonly maxQueuedEvents: number;
  /** Bytes waiting behind the window before the subscriber is cut off. */
  readonly maxQueuedBytes: number;
}

export const DEFAULT_STREAM_LIMITS: EventStreamLimits = { window: 256, maxQueuedEvents: 2048, maxQueuedBytes: 2 * 1024 * 1024 };

/**
 * Each event's JSON as UTF-8 bytes, computed once for all subscribers (events are immutable once
 * published); sent as a text frame without another string-to-bytes conversion per subscriber.
 */
const serialized = new WeakMap<DaemonEvent, Buffer>();

function toJson(event: DaemonEvent): Buffer {
  let bytes = serialized.get(event);
  if (bytes === undefined) {
    bytes = Buffer.from(JSON.stringify(event));
    serialized.set(event, bytes);
  }
  return bytes;
}

const EMPTY = Buffer.alloc(0);
const TEXT = { binary: false } as const;

/** Streams events to one websocket within `limits`; `onCut` runs once when it stops for any reason. */
export class EventStream {
  readonly #socket: WebSocket;
  readonly #limits: EventStreamLimits;
  readonly #onEnd: () => void;
  readonly #queue: Buffer[] = [];
  #head = 0;
  #queuedBytes = 0;
  #inFlight = 0;
  #ended = false;
  #scheduled = false;
  /** Replay events (and their bytes) still queued: exempt from the bounds. */
  #replayEvents = 0;
  #replayBytes = 0;
  readonly #afterWrite = (err?: Error): void => {
    this.#inFlight--;
    if (err) return this.end();
    if (!this.#scheduled && this.#head < this.#queue.length) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  };
  /** Writes what is queued once per turn of the event loop, corked: one syscall for many frames. */
  readonly #flush = (): void => {
    this.#scheduled = false;
    const raw = (this.#socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    raw?.cork();
    try {
      this.#pump();
    } finally {
      raw?.uncork();
    }
  };

  constructor(socket: WebSocket, onEnd: () => void, limits: EventStreamLimits = DEFAULT_STREAM_LIMITS) {
    this.#socket = socket;
    this.#limits = limits;
    this.#onEnd = onEnd;
    socket.once('close', () => this.end());
    socket.once('error', () => this.end());
  }

  /** True once the subscriber was cut off or closed. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Queues the replay history: it may exceed the bounds (it is at most the bus's history), and
   * the bounds apply to what is queued beyond it until it has been written.
   */
  replay(events: readonly DaemonEvent[]): void {
    for (const e of events) {
      if (this.#ended) return;
      const text = toJson(e);
      this.#replayEvents++;
      this.#replayBytes += text.length;
      this.#enqueue(text);
    }
  }

  /** Queues one event; cuts the subscriber off when it is too far behind. */
  push(event: DaemonEvent): void {
    if (this.#ended) return;
    this.#enqueue(toJson(event));
  }

  #enqueue(text: Buffer): void {
    this.#queue.push(text);
    this.#queuedBytes += text.length;
    const events = this.#queue.length - this.#head - this.#replayEvents;
    if (events > this.#limits.maxQueuedEvents || this.#queuedBytes - this.#replayBytes > this.#limits.maxQueuedBytes) return this.cut();
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Drops the subscriber now: destroys the socket instead of queueing a close frame. */
  cut(): void {
    if (this.#ended) return;
    this.end();
    this.#socket.terminate();
  }

  /** Stops streaming and releases the queue (idempotent). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#queue.length = 0;
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#replayEvents = 0;
    this.#replayBytes = 0;
    this.#onEnd();
  }

  #write(text: Buffer): void {
    if (this.#socket.readyState !== this.#socket.OPEN) return this.end();
    this.#inFlight++;
    this.#socket.send(text, TEXT, this.#afterWrite);
  }

  #pump(): void {
    while (!this.#ended && this.#inFlight < this.#limits.window && this.#head < this.#queue.length) {
      const text = this.#queue[this.#head]!;
      this.#queue[this.#head++] = EMPTY;
      this.#queuedBytes -= text.length;
      if (this.#replayEvents > 0) {
        // The replay is queued first, so the first frames written are its own.
        this.#replayEvents--;
        this.#replayBytes -= text.length;
      }
      this.#write(text);
    }
    // Compact the consumed prefix now and then, so the array does not grow without bound.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
