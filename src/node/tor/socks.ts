/**
 * Dialing through Tor's SOCKS port with stream isolation per contact.
 *
 * `socks5h`: the host name (an onion, or any clear-net name in Tor-only mode) is resolved by
 * Tor, never by the local resolver. Tor isolates streams by SOCKS username/password
 * (IsolateSOCKSAuth, on by default), so each contact gets its own credentials and therefore its
 * own circuits: an observer of the exits or the onion services cannot link two contacts' traffic
 * to one node through a shared circuit. The credentials are an HMAC of the contact key under a
 * random per-process secret, so they say nothing about the contact themselves.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Agent } from 'node:http';
import { SocksProxyAgent } from 'socks-proxy-agent';
import { DeaddropError } from '../../util/errors.js';

/** Where Tor's SOCKS port listens. */
export interface SocksAddress {
  readonly host: string;
  readonly port: number;
}

/** Makes SOCKS agents, one isolation group per contact key. */
export class TorSocksConnector {
  readonly #address: SocksAddress;
  readonly #secret = randomBytes(32);

  constructor(address: SocksAddress) {
    if (!Number.isInteger(address.port) || address.port < 1 || address.port > 65535) throw DeaddropError.badInput('tor SOCKS port out of range');
    this.#address = { ...address };
  }

  get address(): SocksAddress {
    return { ...this.#address };
  }

  /** The SOCKS username used for a contact (stable in this process, unlinkable across contacts). */
  isolationKey(contact: Uint8Array | string): string {
    return createHmac('sha256', this.#secret).update(contact).digest('hex').slice(0, 32);
  }

  /**
   * An agent for one connection (pass it to ws as `agent`). `contact` selects the isolation
   * group: the same contact shares circuits, different contacts never do.
   */
  agent(contact: Uint8Array | string, opts: { timeoutMs?: number } = {}): Agent {
    const user = this.isolationKey(contact);
    const host = this.#address.host.includes(':') ? `[${this.#address.host}]` : this.#address.host;
    const url = `socks5h://${user}:x@${host}:${this.#address.port}`;
    return new SocksProxyAgent(url, { timeout: opts.timeoutMs ?? 60_000 });
  }
}
