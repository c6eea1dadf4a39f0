/** The ChainSource conformance table against a real btcd (started once for the file). */
import { afterAll, beforeAll, describe } from 'vitest';
import { openBackend } from '../../src/chain/open.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { describeConformance } from './conformance.js';

let node: RegtestNode;

beforeAll(async () => {
  node = await startRegtestNode({ kind: 'btcd' });
});

afterAll(async () => {
  await node?.stop();
});

describe('btcd backend conformance', () => {
  describeConformance({
    node: () => node,
    backendUrl: () => node.backendUrl,
    open: (url, opts) => openBackend(url, opts),
  });
});
