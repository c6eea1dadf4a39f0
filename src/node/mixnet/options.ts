/**
 * Mixnet options of `deaddrop start`: `--mix-layer <1..3>` and `--provider` choose the roles;
 * DEADDROP_MIX_HOST / DEADDROP_MIX_PORT / DEADDROP_MIX_ADVERTISE place the mix listener,
 * DEADDROP_MIX_PROVIDER picks the home provider (64 hex, optionally `@ws://host:port` to bootstrap), DEADDROP_MIX_DELAY_MS sets the mean
 * Poisson delay per mix hop, DEADDROP_MIX_EPOCH_MS the epoch length. Cover traffic (packets per
 * second, 0 turns a stream off): DEADDROP_MIX_LOOP_RATE (client loops), DEADDROP_MIX_DROP_RATE
 * (client drops), DEADDROP_MIX_MIX_LOOP_RATE (a mix's or provider's own loops), each
 * {@link DEFAULT_COVER_RATE} by default; DEADDROP_MIX_LOOP_TIMEOUT_MS is when a loop counts as lost.
 */
import { DeaddropError } from '../../util/errors.js';
import { fromHex } from '../../util/bytes.js';
import type { CoverSettings } from './cover.js';

/** What the node feature passes to the mixnet service. */
export interface MixnetOptions {
  readonly layer?: number;
  readonly provider?: boolean;
  readonly host?: string;
  readonly port?: number;
  readonly advertise?: string;
  readonly home?: Uint8Array;
  /** Where to dial `home` before its descriptor is known (a new node's bootstrap). */
  readonly homeEndpoint?: string;
  readonly meanDelayMs?: number;
  readonly epochMs?: number;
  readonly fetchIntervalMs?: number;
  readonly cover?: CoverSettings;
}

/** Cover packets per second of each stream in the daemon (1 packet every 20 s: a mobile-class cost). */
export const DEFAULT_COVER_RATE = 0.05;

function rate(value: string, what: string): number {
  const n = Number(value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value.trim()) || !Number.isFinite(n) || n > 100) throw DeaddropError.badInput(`${what} must be a number of packets per second, 0..100`);
  return n;
}

function int(value: string, what: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw DeaddropError.badInput(`${what} must be an integer ${min}..${max}`);
  return n;
}

/** Mixnet options from the start flags and the environment; bad values give BAD_INPUT. */
export function mixnetOptions(flags: { mixLayer?: string; provider?: boolean }, env: NodeJS.ProcessEnv = process.env): MixnetOptions {
  const o: { -readonly [K in keyof MixnetOptions]: MixnetOptions[K] } = {};
  if (flags.mixLayer !== undefined) o.layer = int(flags.mixLayer, '--mix-layer', 1, 3);
  if (flags.provider) o.provider = true;
  if (env.DEADDROP_MIX_HOST) o.host = env.DEADDROP_MIX_HOST;
  if (env.DEADDROP_MIX_PORT) o.port = int(env.DEADDROP_MIX_PORT, 'DEADDROP_MIX_PORT', 0, 65_535);
  if (env.DEADDROP_MIX_ADVERTISE) {
    const a = env.DEADDROP_MIX_ADVERTISE.trim();
    if (!/^wss?:\/\/[^\s/]+:\d+$/.test(a)) throw DeaddropError.badInput('DEADDROP_MIX_ADVERTISE must be ws://host:port');
    o.advertise = a;
  }
  if (env.DEADDROP_MIX_PROVIDER) {
    // `<id>` or `<id>@ws://host:port`: with the endpoint a new node links to its provider before it
    // knows any descriptor, then asks it for the directory (mixnet.md, "Bootstrap of the directory").
    const m = /^([0-9a-f]{64})(?:@(wss?:\/\/[^\s/]+:\d+))?$/.exec(env.DEADDROP_MIX_PROVIDER.trim());
    if (!m) throw DeaddropError.badInput('DEADDROP_MIX_PROVIDER must be a node id (64 hex characters), optionally followed by @ws://host:port');
    o.home = fromHex(m[1]!);
    if (m[2]) o.homeEndpoint = m[2];
  }
  if (env.DEADDROP_MIX_DELAY_MS) o.meanDelayMs = int(env.DEADDROP_MIX_DELAY_MS, 'DEADDROP_MIX_DELAY_MS', 0, 60_000);
  if (env.DEADDROP_MIX_EPOCH_MS) o.epochMs = int(env.DEADDROP_MIX_EPOCH_MS, 'DEADDROP_MIX_EPOCH_MS', 10_000, 7 * 24 * 3600_000);
  const cover = {
    loopRate: env.DEADDROP_MIX_LOOP_RATE ? rate(env.DEADDROP_MIX_LOOP_RATE, 'DEADDROP_MIX_LOOP_RATE') : DEFAULT_COVER_RATE,
    dropRate: env.DEADDROP_MIX_DROP_RATE ? rate(env.DEADDROP_MIX_DROP_RATE, 'DEADDROP_MIX_DROP_RATE') : DEFAULT_COVER_RATE,
    mixLoopRate: env.DEADDROP_MIX_MIX_LOOP_RATE ? rate(env.DEADDROP_MIX_MIX_LOOP_RATE, 'DEADDROP_MIX_MIX_LOOP_RATE') : DEFAULT_COVER_RATE,
  };
  o.cover = env.DEADDROP_MIX_LOOP_TIMEOUT_MS
    ? { ...cover, loopTimeoutMs: int(env.DEADDROP_MIX_LOOP_TIMEOUT_MS, 'DEADDROP_MIX_LOOP_TIMEOUT_MS', 100, 3600_000) }
    : cover;
  return o;
}
