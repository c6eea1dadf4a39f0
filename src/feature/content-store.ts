/**
 * A place where one feature puts immutable files for others to read, filled in by whoever wires
 * the features (the CLI: the peer node's storage, peers or Tahoe-LAFS) and used by another
 * (PayPub: a sale's encrypted chunks and signed manifest).
 *
 * It lives in the contract layer so that the feature that provides it (src/node) and the one
 * that consumes it (src/paypub), which are siblings and may not import each other, agree on it
 * without either depending on the other. It is late-bound (a getter): the node starts after
 * PayPub and runs only with an unlocked wallet.
 */

/** A storage server a reader may ask (peers backend): its Ed25519 key, pinned when dialing, and its endpoint. */
export interface StorageServerHint {
  readonly id: Uint8Array;
  readonly url: string;
  /** The mixnet provider keeping the server's mailbox, when it announced one: readers reach it through the mixnet. */
  readonly provider?: Uint8Array;
}

export interface ContentStorePut {
  /** Reads and verifies the file; whoever holds it can read the (possibly still encrypted) bytes. */
  readonly readCap: string;
  readonly size: number;
  /** Servers that took a share (peers backend; empty otherwise): hints for readers who know none of them. */
  readonly servers: readonly StorageServerHint[];
}

export interface ContentStore {
  /** `peers` or `tahoe`: for messages only. */
  readonly kind: string;
  /** Stores `data` and keeps it alive (lease renewal, repair) for as long as this node runs. */
  put(data: Uint8Array, opts?: { readonly name?: string }): Promise<ContentStorePut>;
  /**
   * The file's bytes, verified against the capability. Throws a DeaddropError when it cannot.
   * `servers`: hints handed over with the capability, asked besides the servers this node knows.
   */
  get(readCap: string, opts?: { readonly servers?: readonly StorageServerHint[] }): Promise<Uint8Array>;
}

/** The running content store, or null while none is available. */
export type ContentStoreSource = () => ContentStore | null;
