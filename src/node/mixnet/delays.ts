/**
 * Poisson mixing (Loopix): the sender draws each hop's delay from an exponential distribution with
 * a configurable mean, so that a mix's output is a memoryless mixture of its inputs.
 */
import { randomInt } from 'node:crypto';

const MAX_DELAY_MS = 0xffffffff;
const RESOLUTION = 2 ** 48 - 1;

/** A uniform draw in (0, 1] from the system CSPRNG (delays must not be predictable). */
function uniform(): number {
  return (randomInt(0, RESOLUTION) + 1) / RESOLUTION;
}

/** One exponential delay in whole milliseconds with mean `meanMs` (0 gives 0). */
export function exponentialDelayMs(meanMs: number, draw: () => number = uniform): number {
  if (!Number.isFinite(meanMs) || meanMs < 0) throw new RangeError('mean delay must be a finite number ≥ 0');
  if (meanMs === 0) return 0;
  return Math.min(MAX_DELAY_MS, Math.round(-meanMs * Math.log(draw())) + 0);
}

/** Delays for a route of `hops`: the providers (first and last hop) forward at once, mixes wait. */
export function routeDelaysMs(hops: number, meanMs: number, draw: () => number = uniform): number[] {
  return Array.from({ length: hops }, (_, i) => (i === 0 || i === hops - 1 ? 0 : exponentialDelayMs(meanMs, draw)));
}
