/**
 * Connects a {@link MixnetService} to a running PeerNode: descriptors are appended to the node's
 * own log, every entry the node holds or receives feeds the directory, and only contacts'
 * messages are accepted.
 */
import type { PeerNode } from '../node.js';
import { DESCRIPTOR_TYPE, MAILBOX_TYPE } from './directory.js';
import type { MixnetOptions } from './options.js';
import { MixnetService } from './service.js';
import type { MixMessage } from './service.js';
import { equalBytes } from '../../util/bytes.js';

/** Starts the mixnet side of `node`; `onMessage` hears every message received. */
export async function startNodeMixnet(node: PeerNode, opts: MixnetOptions, onMessage: (m: MixMessage) => void): Promise<MixnetService> {
  const isContact = (n: Uint8Array): boolean => node.contacts().some((c) => equalBytes(c.node, n));
  const service = new MixnetService({ ...opts, identity: node.identity, publish: (d) => void node.append(d), isContact });
  // Earlier entries first (descriptors and mailbox announcements only), then new ones as they come.
  for (const f of node.store.feeds()) {
    for (let from = 1; from <= f.length; from += 256) {
      for (const e of node.store.range(f.author, from, Math.min(f.length, from + 255))) {
        if (e.header.type === DESCRIPTOR_TYPE || e.header.type === MAILBOX_TYPE) service.ingest(e);
      }
    }
  }
  node.on('entry.appended', (e) => service.ingest(e));
  node.on('entry.replicated', (e) => service.ingest(e));
  service.on('message', (m) => {
    if (m.direction === 'in') onMessage(m);
  });
  await service.start();
  return service;
}
