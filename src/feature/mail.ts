/**
 * Store-and-forward mail between nodes, for features that must reach a node while it is offline
 * (PayPub's pre-signature announcements, docs/protocol/paypub.md §12): a message goes to a
 * mailbox kept by a provider and is fetched when its owner connects again.
 *
 * It lives in the contract layer, as content-store.ts does, so that the feature providing it
 * (src/node: the mixnet, sealed end to end, authenticated sender) and the one using it
 * (src/paypub), siblings that may not import each other, agree on it. The hub is created by
 * whoever wires the features (the CLI) and is late-bound: the node attaches its channel when its
 * mixnet runs, after PayPub has registered its handler.
 */

/** Where a node's mail is kept: its provider's key and its mailbox (both 32 bytes). */
export interface MailAddress {
  readonly provider: Uint8Array;
  readonly mailbox: Uint8Array;
}

/** What the node provides: its own address, and sending. */
export interface MailChannel {
  /** This node's mailbox, once its provider link is up. */
  own(): MailAddress | null;
  /**
   * Seals `plain` to `to.mailbox` (authenticated as this node) and sends it to that mailbox at
   * `to.provider`. Rejects when there is no provider link yet or no route to `to.provider`.
   */
  send(to: MailAddress, plain: Uint8Array): Promise<void>;
}

/** Hears one opened message: its authenticated sender and plaintext (first byte: its kind). */
export type MailHandler = (from: Uint8Array, plain: Uint8Array) => void;

/** One hub per daemon: the channel (when attached) and the handlers by kind byte. */
export class MailHub {
  #channel: MailChannel | null = null;
  readonly #handlers = new Map<number, MailHandler>();

  /** The node's channel (or null when it stops). */
  attach(channel: MailChannel | null): void {
    this.#channel = channel;
  }

  /** Registers the handler of messages whose first byte is `kind` (one per kind). */
  on(kind: number, handler: MailHandler): void {
    if (this.#handlers.has(kind)) throw new Error(`mail kind ${kind} already has a handler`);
    this.#handlers.set(kind, handler);
  }

  off(kind: number): void {
    this.#handlers.delete(kind);
  }

  /** The node's mailbox, when its channel runs and is linked. */
  own(): MailAddress | null {
    return this.#channel?.own() ?? null;
  }

  /** Sends through the attached channel; rejects when there is none. */
  send(to: MailAddress, plain: Uint8Array): Promise<void> {
    if (!this.#channel) return Promise.reject(new Error('mail: no channel (the node or its mixnet is not running)'));
    return this.#channel.send(to, plain);
  }

  /**
   * Called by the channel for every opened message: true when a handler took its kind. A
   * handler's exception is its own bug, never the channel's: it is swallowed here.
   */
  deliver(from: Uint8Array, plain: Uint8Array): boolean {
    const h = plain.length > 0 ? this.#handlers.get(plain[0]!) : undefined;
    if (!h) return false;
    try {
      h(from, plain);
    } catch {
      // the handler counts its own failures
    }
    return true;
  }
}
