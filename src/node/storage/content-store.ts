/**
 * The node's storage as the features' content store (src/feature/content-store.ts): what PayPub
 * puts a sale into and reads a sale from. Files put through it are kept (leases renewed, checked
 * and repaired on schedule) like `deaddrop store put`'s.
 */
import type { ContentStore } from '../../feature/content-store.js';
import type { NodeStorage } from './service.js';

/** `storage` as a ContentStore. */
export function nodeContentStore(storage: NodeStorage): ContentStore {
  return {
    get kind() {
      return storage.backendKind;
    },
    put: async (data, opts) => {
      const r = await storage.put(data, { keep: true, ...(opts?.name ? { name: opts.name } : {}) });
      return { readCap: r.readCap, size: r.size, servers: r.holders };
    },
    get: (readCap, opts) => storage.get(readCap, opts?.servers ? { servers: opts.servers } : {}),
  };
}
