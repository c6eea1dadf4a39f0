/**
 * Which backend serves a capability: its prefix says where the file lives (`dd-chk:` on peers,
 * `dd-tahoe:` / `dd-tahoe-v:` on a Tahoe-LAFS grid), whatever backend this node puts new files on.
 * A capability handed over by someone else (a PayPub offer, an attachment) may name the other
 * one. Pure functions, no I/O.
 *
 * - Reading a peers file needs no configuration: every node has the peers client, and the servers
 *   come from verified announcements or the hints handed over with the cap.
 * - Reading a Tahoe file needs a Tahoe client node that joined the same grid, which this node
 *   reaches only when it runs with `--storage tahoe:<url>`. Without one, the answer is a clear
 *   UNSUPPORTED (reason `needs-tahoe`), never a parse error about the wrong kind of capability.
 * - Checking, repairing and keeping use this node's own backend only (a peers node renews leases
 *   on peers; a Tahoe grid checks its own files): a capability of the other backend is refused
 *   with UNSUPPORTED (reason `other-backend`).
 */
import { DeaddropError } from '../../util/errors.js';
import type { StorageBackendKind } from './backend.js';
import { TAHOE_READ_PREFIX, TAHOE_VERIFY_PREFIX } from './tahoe-cap.js';

const PEERS_PREFIX = 'dd-chk:';

/** What the backends are called in messages. */
const NAMES: Record<StorageBackendKind, string> = { peers: 'peers storage (dd-chk:)', tahoe: 'a Tahoe-LAFS grid (dd-tahoe:)' };

/**
 * The backend a capability belongs to, by its prefix (its syntax is the backend's to check);
 * BAD_INPUT (reason `malformed-cap`) for neither. The capability is never echoed: a read cap holds a key.
 */
export function capBackend(cap: string): StorageBackendKind {
  if (typeof cap === 'string') {
    if (cap.startsWith(PEERS_PREFIX)) return 'peers';
    if (cap.startsWith(TAHOE_READ_PREFIX) || cap.startsWith(TAHOE_VERIFY_PREFIX)) return 'tahoe';
  }
  throw DeaddropError.badInput(
    `not a storage capability: expected dd-chk:r:… or dd-chk:v:… (peers) or ${TAHOE_READ_PREFIX}… or ${TAHOE_VERIFY_PREFIX}… (Tahoe-LAFS)`,
    { reason: 'malformed-cap' },
  );
}

/**
 * The backend that reads `cap` on a node whose own backend is `own`: peers caps on the peers
 * client (always there), Tahoe caps on the node's Tahoe backend; UNSUPPORTED (reason
 * `needs-tahoe`) when the file is on a Tahoe grid and this node has no Tahoe client.
 */
export function readBackendFor(cap: string, own: StorageBackendKind): StorageBackendKind {
  const kind = capBackend(cap);
  if (kind === 'tahoe' && own !== 'tahoe') {
    throw new DeaddropError(
      'UNSUPPORTED',
      'this file is on a Tahoe-LAFS grid (a dd-tahoe: capability) and this node reads peers storage only: '
        + 'run the daemon with --storage tahoe:<web API URL of a Tahoe client node that joined the same grid> to read it',
      { reason: 'needs-tahoe', backend: own },
    );
  }
  return kind;
}

/** Refuses (UNSUPPORTED, reason `other-backend`) a capability of another backend than `own`, for check, repair and keep. */
export function checkOwnBackend(cap: string, own: StorageBackendKind): void {
  const kind = capBackend(cap);
  if (kind !== own) {
    throw new DeaddropError('UNSUPPORTED', `this capability names a file on ${NAMES[kind]}, and this node keeps its files on ${NAMES[own]}: it checks, repairs and keeps only those`, {
      reason: 'other-backend', backend: own,
    });
  }
}
