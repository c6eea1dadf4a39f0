/**
 * Dialing contacts. Each contact's endpoints are tried in order through the route the node's
 * options allow (Tor for onions, or never); an unreachable contact is redialed with exponential
 * backoff between `reconnectMinMs` and `reconnectMaxMs`, and a failed dial asks the connected
 * contacts where it went (`onUnreachable`, see whereabouts-gossip.ts).
 */
import type { ContactStore } from './contacts.js';
import type { NodeIdentity } from './identity.js';
import type { DialRoute } from './node.js';
import type { EmitNodeEvent, Sessions } from './sessions.js';
import type { ChannelOptions, SecureChannel } from './transport/secure-channel.js';
import { dial } from './transport/ws-transport.js';
import { toHex } from '../util/bytes.js';

export interface DialerOptions {
  readonly identity: NodeIdentity;
  readonly contacts: ContactStore;
  readonly sessions: Sessions;
  readonly channel: ChannelOptions | undefined;
  /** How to reach `url` for `peer`, or null to never dial it. */
  readonly route: (url: string, peer: Uint8Array) => DialRoute | null;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** Aborted when the node closes: dials in flight stop. */
  readonly signal: AbortSignal;
  readonly emit: EmitNodeEvent;
  /** Every endpoint of `node` failed. */
  readonly onUnreachable: (node: Uint8Array) => void;
}

interface Redial {
  timer: NodeJS.Timeout | null;
  delay: number;
}

/** Dials contacts and redials the unreachable ones. */
export class Dialer {
  readonly #opts: DialerOptions;
  readonly #dialing = new Map<string, Promise<void>>();
  readonly #redials = new Map<string, Redial>();

  constructor(opts: DialerOptions) {
    this.#opts = opts;
  }

  get #closing(): boolean {
    return this.#opts.signal.aborted;
  }

  /** Dials a contact unless it is connected or being dialed. */
  connect(node: Uint8Array): void {
    const { sessions, contacts } = this.#opts;
    const key = toHex(node);
    if (this.#closing || sessions.has(key) || this.#dialing.has(key)) return;
    const contact = contacts.get(node);
    // A contact met over the mixnet has no endpoint: it is never dialed (that would need its address).
    if (!contact || contact.endpoints.length === 0) return;
    const attempt = (async (): Promise<boolean> => {
      for (const url of contact.endpoints) {
        if (this.#closing) return true;
        const route = this.#opts.route(url, node);
        if (route === null) continue;
        try {
          const ch: SecureChannel = await dial(url, this.#opts.identity, { ...this.#opts.channel, ...route, expectedRemote: node, signal: this.#opts.signal });
          if (this.#closing) {
            ch.close('local');
            return true;
          }
          this.#opts.emit('peer.dialed', node, url);
          sessions.attach(ch);
          return true;
        } catch {
          // try the next endpoint
        }
      }
      return false;
    })();
    const p = attempt.then((ok) => {
      this.#dialing.delete(key);
      if (!ok && !this.#closing) {
        this.#opts.onUnreachable(node);
        this.scheduleRedial(node);
      }
    });
    this.#dialing.set(key, p);
  }

  /** Dials `node` again after the current backoff (doubled each time, reset by a session). */
  scheduleRedial(node: Uint8Array): void {
    const key = toHex(node);
    if (this.#closing || this.#opts.sessions.has(key)) return;
    const r = this.#redials.get(key) ?? { timer: null, delay: this.#opts.reconnectMinMs };
    if (r.timer) return;
    r.timer = setTimeout(() => {
      r.timer = null;
      this.connect(node);
    }, r.delay);
    r.delay = Math.min(r.delay * 2, this.#opts.reconnectMaxMs);
    this.#redials.set(key, r);
  }

  cancelRedial(key: string): void {
    const r = this.#redials.get(key);
    if (r?.timer) clearTimeout(r.timer);
    this.#redials.delete(key);
  }

  /** Clears every redial timer. */
  cancelAll(): void {
    for (const r of this.#redials.values()) if (r.timer) clearTimeout(r.timer);
    this.#redials.clear();
  }

  /** Settles once every dial in flight has ended (after the signal is aborted, they end quickly). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#dialing.values()]);
  }
}
