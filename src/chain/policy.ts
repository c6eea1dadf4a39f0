/**
 * The relay (mempool) policy of each node kind the project runs against, as data: what a
 * transaction must respect for that node to accept and relay it. Code that builds transactions
 * for every node keeps to the intersection (one OP_RETURN of at most 80 bytes, see
 * `MAX_STANDARD_DATA` in src/wallet/tx.ts); tests assert each node's own numbers from here.
 *
 * The values were measured on regtest against the nodes the project pins: btcd v0.26.0 started
 * with `--rejectnonstd`, and Bitcoin Core v31.99 (master d970932f) started by src/regtest/harness.ts
 * with default policy (`-acceptnonstdtxn=0`). test/chain/policy.int.test.ts checks every field
 * against the running node, on both sides of each limit.
 */
import type { NodeKind } from './dialect.js';

/** Limits on a transaction's unconfirmed relatives; counts include the transaction, sizes are in vbytes. */
export interface UnconfirmedLimits {
  readonly maxAncestorCount: number;
  readonly maxAncestorVsize: number;
  readonly maxDescendantCount: number;
  readonly maxDescendantVsize: number;
  readonly maxClusterCount: number;
  readonly maxClusterVsize: number;
}

/** One node's relay policy. */
export interface NodePolicy {
  readonly kind: NodeKind;
  /** Largest data push in one OP_RETURN output, in bytes. */
  readonly maxOpReturnData: number;
  /** Largest total of OP_RETURN output scripts per transaction, in bytes (Core's `-datacarriersize`). */
  readonly maxOpReturnScriptTotal: number;
  /** OP_RETURN outputs one transaction may have (Infinity: no count limit of its own). */
  readonly maxOpReturnOutputs: number;
  /** Minimum relay fee rate in sat per 1000 vB for a transaction without priority. */
  readonly minRelayFeeSatPerKvB: number;
  /**
   * Limits on a transaction's unconfirmed relatives. A chain of unconfirmed transactions (each
   * spending the previous) is one cluster, so `maxClusterCount` is the longest chain the mempool
   * takes: 64 on Core 31 (cluster mempool; it keeps 25/25 ancestors/descendants only for its own
   * wallet's coin selection, and Core up to v30 enforced those), none on btcd v0.26.
   */
  readonly unconfirmed: UnconfirmedLimits;
  /** Largest standard transaction weight (both nodes: 400,000 WU = 100,000 vB). */
  readonly maxStandardTxWeight: number;
  /** Whether more than one OP_RETURN output or data above 80 bytes may be used on this node. */
  readonly largeData: boolean;
}

/** btcd v0.26: one nulldata output of at most 80 data bytes (83-byte script), 1 sat/vB. */
export const BTCD_POLICY: NodePolicy = Object.freeze({
  kind: 'btcd',
  maxOpReturnData: 80,
  maxOpReturnScriptTotal: 83,
  maxOpReturnOutputs: 1,
  minRelayFeeSatPerKvB: 1000,
  unconfirmed: Object.freeze({
    maxAncestorCount: Infinity, maxAncestorVsize: Infinity,
    maxDescendantCount: Infinity, maxDescendantVsize: Infinity,
    maxClusterCount: Infinity, maxClusterVsize: Infinity,
  }),
  maxStandardTxWeight: 400_000,
  largeData: false,
});

/**
 * Bitcoin Core 30+: `-datacarriersize` defaults to 100,000 bytes over all OP_RETURN outputs of a
 * transaction, any number of them; in practice the standard size (100,000 vB) bounds one
 * transaction's data first. Min relay fee 100 sat/kvB (0.1 sat/vB). Cluster limit 64.
 */
export const CORE_POLICY: NodePolicy = Object.freeze({
  kind: 'bitcoind',
  maxOpReturnData: 100_000,
  maxOpReturnScriptTotal: 100_000,
  maxOpReturnOutputs: Infinity,
  minRelayFeeSatPerKvB: 100,
  unconfirmed: Object.freeze({
    maxAncestorCount: 25, maxAncestorVsize: 101_000,
    maxDescendantCount: 25, maxDescendantVsize: 101_000,
    maxClusterCount: 64, maxClusterVsize: 101_000,
  }),
  maxStandardTxWeight: 400_000,
  largeData: true,
});

/** The relay policy of a node kind. */
export function policyFor(kind: NodeKind): NodePolicy {
  return kind === 'btcd' ? BTCD_POLICY : CORE_POLICY;
}
