/** Test helpers for the mixnet: mix nodes with keys, and routes over them. */
import { createHash, randomBytes } from 'node:crypto';
import { x25519Base } from '../../src/node/mixnet/primitives.js';
import type { RouteHop } from '../../src/node/mixnet/sphinx.js';

/** A mix node as a test sees it: address, X25519 key pair. */
export interface TestMix {
  readonly address: Buffer;
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
}

/** A mix whose keys derive from `seed` (reproducible) or are random. */
export function testMix(seed?: string): TestMix {
  const privateKey = seed === undefined ? randomBytes(32) : createHash('sha256').update(`mix key ${seed}`).digest();
  const address = seed === undefined ? randomBytes(32) : createHash('sha256').update(`mix address ${seed}`).digest();
  return { address, privateKey, publicKey: x25519Base(privateKey) };
}

/** The route over `mixes` with the given per-hop delays (zero by default). */
export function routeOver(mixes: readonly TestMix[], delays: readonly number[] = []): RouteHop[] {
  return mixes.map((m, i) => ({ address: m.address, publicKey: m.publicKey, delayMs: delays[i] ?? 0 }));
}
