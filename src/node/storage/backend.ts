/**
 * What the daemon asks of a place that keeps files: peers that store for each other
 * (`peers`, this folder's client over the node's transport) or an existing Tahoe-LAFS grid
 * (`tahoe`). Both take plaintext and hand back a capability string that is the file's only
 * name; the backend encrypts before anything leaves the machine.
 */
export type StorageBackendKind = 'peers' | 'tahoe';

export interface StoreProgress {
  readonly phase: 'encode' | 'upload' | 'download' | 'verify' | 'repair';
  readonly done: number;
  readonly total: number;
}

export interface StoragePutResult {
  /** Decrypts and verifies; give it only to those who may read the file. */
  readonly readCap: string;
  readonly size: number;
}

export interface StorageCheckResult {
  readonly healthy: boolean;
  readonly sharesFound: number;
  readonly sharesNeeded: number;
  readonly sharesTotal: number;
  /** Shares regenerated onto servers by this call (0 without `repair`). */
  readonly repaired: number;
  /** Human-readable findings (missing or corrupt shares, unreachable servers); never secrets. */
  readonly problems: readonly string[];
  /** Share health per storage server (peers backend; a Tahoe grid reports totals only). */
  readonly servers?: readonly ServerHealth[];
}

/** What one storage server holds of a file, as a check found it (share numbers). */
export interface ServerHealth {
  /** The server's identity key (hex), as its signed announcement names it. */
  readonly id: string;
  readonly url: string;
  readonly reachable: boolean;
  /** Share numbers that verified. */
  readonly valid: readonly number[];
  /** Share numbers it listed that failed verification or that it could not return. */
  readonly bad: readonly number[];
  /** Share numbers a repair just placed on it. */
  readonly repaired: readonly number[];
}

export interface StorageOpOptions {
  onProgress?(progress: StoreProgress): void;
}

export interface StorageBackend {
  readonly kind: StorageBackendKind;
  put(plaintext: Uint8Array, options?: StorageOpOptions): Promise<StoragePutResult>;
  get(readCap: string, options?: StorageOpOptions): Promise<Uint8Array>;
  /** Accepts a read or a verify capability; repairing never needs the read key. */
  check(cap: string, options?: { readonly repair?: boolean }): Promise<StorageCheckResult>;
}
