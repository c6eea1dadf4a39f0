/**
 * The peer node's Tor status as the daemon reports it on `/status` (part of the feature
 * contract, see ./contract.ts): the node feature produces it, the daemon and API carry it.
 */

/** What `/node/tor` and `deaddrop node status` show (the peer node's Tor, see node/tor/node-tor.ts). */
export interface NodeTorStatus {
  readonly only: boolean;
  /** The onions' virtual port (what an introduction's onion hint announces). */
  readonly port: number;
  readonly managed: boolean;
  readonly connected: boolean;
  readonly bootstrapped: boolean;
  readonly progress: number;
  readonly summary: string;
  readonly onions: { address: string; kind: 'node' | 'introduction' }[];
  readonly restarts: number;
  readonly lastError: string | null;
  /** How each connected peer was reached: dialed through Tor, dialed directly, or it dialed us. */
  readonly peers: { node: string; via: 'tor' | 'direct' | 'inbound' }[];
}

/** Tor as `/status` reports it: off, or the running node's bootstrap, onions and how peers were reached. */
export type TorStatusReport = { readonly enabled: false } | ({ readonly enabled: true } & NodeTorStatus);
