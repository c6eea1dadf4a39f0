/**
 * Unconfirmed-chain limits of a node's mempool policy, and the check the wallet runs so it
 * never builds a transaction the node would refuse for its unconfirmed ancestry.
 *
 * Bitcoin Core up to v30 refuses a transaction with more than 25 unconfirmed ancestors (itself
 * included) or 101 kvB of them, or one that gives an in-mempool ancestor more than 25
 * descendants / 101 kvB (`-limitancestorcount`, `-limitdescendantcount` and their size
 * options). Core's cluster mempool (v31, the build in ../shared/bitcoin-core) instead limits the
 * connected cluster to 64 transactions and 101 kvB, and keeps the 25/25 limits for its own
 * wallet's coin selection; {@link CORE_POLICY} holds all of them, so one description is right
 * for every Core version. btcd v0.26 enforces no chain limit (a chain of 100 drops was
 * accepted). A transaction has to relay through other nodes too, so off regtest the wallet
 * applies Core's limits whatever its own node is.
 *
 * The numbers live with the rest of each node's relay policy in src/chain/policy.ts.
 */
import { DeaddropError } from '../util/errors.js';
import type { BackendKind } from '../chain/types.js';
import { BTCD_POLICY as BTCD_NODE_POLICY, CORE_POLICY as CORE_NODE_POLICY, type UnconfirmedLimits } from '../chain/policy.js';
import type { Network } from '../util/network.js';

/** The unconfirmed-chain limits the wallet keeps to, named for its error messages. */
export interface ChainPolicy extends UnconfirmedLimits {
  readonly name: string;
}

/** Bitcoin Core's defaults, both the pre-cluster limits and the cluster-mempool ones. */
export const CORE_POLICY: ChainPolicy = Object.freeze({ name: 'Bitcoin Core', ...CORE_NODE_POLICY.unconfirmed });

/** btcd v0.26: no limit on unconfirmed chains. */
export const BTCD_POLICY: ChainPolicy = Object.freeze({ name: 'btcd', ...BTCD_NODE_POLICY.unconfirmed });

/**
 * The policy a wallet follows for a backend: btcd's own on regtest, Core's everywhere else
 * (Electrum and Esplora servers sit on Core, and public networks relay through Core nodes).
 */
export function chainPolicyFor(kind: BackendKind, network: Network): ChainPolicy {
  return kind === 'btcd' && network === 'regtest' ? BTCD_POLICY : CORE_POLICY;
}

/** An unconfirmed transaction as the wallet knows it. */
export interface PendingTx {
  readonly txid: string;
  readonly vsize: number;
  /** txids of its inputs' transactions that are unconfirmed too. */
  readonly parents: readonly string[];
}

/** The wallet's view of its unconfirmed transactions: ancestors, descendants, clusters. */
export class PendingGraph {
  readonly #txs = new Map<string, PendingTx>();
  readonly #children = new Map<string, string[]>();
  readonly #anc = new Map<string, Set<string>>();

  constructor(txs: Iterable<PendingTx>) {
    for (const t of txs) this.#txs.set(t.txid, t);
    for (const t of this.#txs.values()) {
      for (const p of t.parents) if (this.#txs.has(p)) this.#children.set(p, [...(this.#children.get(p) ?? []), t.txid]);
    }
  }

  has(txid: string): boolean {
    return this.#txs.has(txid);
  }

  /** `txid` and its unconfirmed ancestors. */
  ancestors(txid: string): Set<string> {
    const hit = this.#anc.get(txid);
    if (hit) return hit;
    const out = this.#reach(txid, (id) => this.#txs.get(id)!.parents);
    this.#anc.set(txid, out);
    return out;
  }

  /** `txid` and its unconfirmed descendants. */
  descendants(txid: string): Set<string> {
    return this.#reach(txid, (id) => this.#children.get(id) ?? []);
  }

  /** Every unconfirmed transaction connected to `txid` (parents and children, transitively). */
  cluster(txid: string): Set<string> {
    return this.#reach(txid, (id) => [...this.#txs.get(id)!.parents, ...(this.#children.get(id) ?? [])]);
  }

  /** `txid` and every unconfirmed transaction reachable from it through `next` (never past a confirmed one). */
  #reach(txid: string, next: (id: string) => readonly string[]): Set<string> {
    const out = new Set<string>();
    const stack = [txid];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (out.has(id) || !this.#txs.has(id)) continue;
      out.add(id);
      stack.push(...next(id));
    }
    return out;
  }

  vsize(ids: Iterable<string>): number {
    let v = 0;
    for (const id of ids) v += this.#txs.get(id)?.vsize ?? 0;
    return v;
  }

  /**
   * Why a new transaction of `vsize` vB spending outputs of `parents` would break `policy`, or
   * null when it fits. Pass vsize 0 to ask whether any transaction could still spend them.
   */
  violation(policy: ChainPolicy, parents: Iterable<string>, vsize: number): string | null {
    const ps = [...new Set(parents)].filter((p) => this.#txs.has(p));
    if (ps.length === 0) return null;
    const anc = new Set<string>();
    const clu = new Set<string>();
    for (const p of ps) {
      for (const a of this.ancestors(p)) anc.add(a);
      for (const c of this.cluster(p)) clu.add(c);
    }
    if (anc.size + 1 > policy.maxAncestorCount) return `${anc.size} unconfirmed ancestors (the limit is ${policy.maxAncestorCount - 1})`;
    if (this.vsize(anc) + vsize > policy.maxAncestorVsize) return `unconfirmed ancestors of more than ${policy.maxAncestorVsize} vB`;
    for (const a of anc) {
      const d = this.descendants(a);
      if (d.size + 1 > policy.maxDescendantCount) return `an unconfirmed ancestor with ${d.size - 1} descendants already (the limit is ${policy.maxDescendantCount - 1})`;
      if (this.vsize(d) + vsize > policy.maxDescendantVsize) return `an unconfirmed ancestor whose descendants exceed ${policy.maxDescendantVsize} vB`;
    }
    if (clu.size + 1 > policy.maxClusterCount) return `a cluster of ${clu.size} unconfirmed transactions (the limit is ${policy.maxClusterCount})`;
    if (this.vsize(clu) + vsize > policy.maxClusterVsize) return `a cluster of unconfirmed transactions over ${policy.maxClusterVsize} vB`;
    return null;
  }
}

/** Coins the wallet holds back because spending them would break the node's chain limits. */
export interface HeldBack {
  /** Their total value, sat. */
  readonly value: bigint;
  /** The first reason found, e.g. "25 unconfirmed ancestors (the limit is 24)". */
  readonly reason: string;
  readonly policy: string;
}

/**
 * Turns an INSUFFICIENT_FUNDS into the clear error a user can act on when coins were held back
 * for chain limits (still INSUFFICIENT_FUNDS: the funds are not spendable now; `details.reason`
 * is 'unconfirmed-chain-limit'). Other errors pass through.
 */
export function explainShortfall(err: unknown, held: HeldBack | null): unknown {
  if (!held || held.value === 0n || !(err instanceof DeaddropError) || err.code !== 'INSUFFICIENT_FUNDS') return err;
  return new DeaddropError(
    'INSUFFICIENT_FUNDS',
    `${err.message}; ${held.value} sat more are change of unconfirmed transactions that ${held.policy} would refuse to chain further (${held.reason}): they become spendable after the next block`,
    { ...err.details, reason: 'unconfirmed-chain-limit', heldBack: held.value.toString() },
  );
}
