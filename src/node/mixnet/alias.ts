/**
 * Mailbox aliases (docs/protocol/mixnet.md, "Introductions over the mixnet"): a client asks its
 * provider to also keep the mailbox named by another Ed25519 key it owns (an introduction's
 * pairwise key), so that a drop's reader can write to it through the mixnet without knowing the
 * client's identity or address.
 *
 *   ALIAS payload = alias(32) || expiresAt u64 ms || Ed25519(alias key,
 *                   "deaddrop/mix-alias/v1\0" || provider(32) || client(32) || alias(32) || expiresAt)
 *
 * The signature proves the client owns the alias key and names both the provider and the
 * authenticated client, so a registration cannot be replayed to another provider or by another
 * client. The provider keeps aliases in memory only (the client registers them again on every
 * connect), at most {@link MAX_ALIASES_PER_CLIENT} per client, none past {@link MAX_ALIAS_TTL_MS}.
 */
import { ed25519Verify, utf8 } from '../crypto.js';
import type { Signer } from '../crypto.js';
import { concatBytes } from '../../util/bytes.js';

const CONTEXT = utf8('deaddrop/mix-alias/v1\0');
/** Bytes of an ALIAS frame payload. */
export const ALIAS_FRAME_BYTES = 32 + 8 + 64;
/** Aliases one client may hold at a provider. */
export const MAX_ALIASES_PER_CLIENT = 256;
/** Longest alias lifetime a provider accepts (the client renews it while the invite lives). */
export const MAX_ALIAS_TTL_MS = 8 * 24 * 3600_000;

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

function message(provider: Uint8Array, client: Uint8Array, alias: Uint8Array, expiresAt: number): Uint8Array {
  return concatBytes(CONTEXT, provider, client, alias, u64(expiresAt));
}

/** The ALIAS frame payload registering `alias` (signed by its key) for `client` at `provider`. */
export function encodeAlias(aliasKey: Signer, provider: Uint8Array, client: Uint8Array, expiresAt: number): Uint8Array {
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0) throw new RangeError('expiresAt: ms since the epoch');
  return concatBytes(aliasKey.publicKey, u64(expiresAt), aliasKey.sign(message(provider, client, aliasKey.publicKey, expiresAt)));
}

/** A verified registration, or null (wrong size, bad signature, expired, too far ahead). Never throws. */
export function decodeAlias(payload: Uint8Array, provider: Uint8Array, client: Uint8Array, now: number): { alias: Uint8Array; expiresAt: number } | null {
  if (payload.length !== ALIAS_FRAME_BYTES) return null;
  const alias = payload.slice(0, 32);
  const expiresAt = Number(new DataView(payload.buffer, payload.byteOffset + 32, 8).getBigUint64(0));
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= now || expiresAt > now + MAX_ALIAS_TTL_MS) return null;
  try {
    return ed25519Verify(payload.subarray(40), message(provider, client, alias, expiresAt), alias) ? { alias, expiresAt } : null;
  } catch {
    return null;
  }
}

/** A provider's aliases: alias → client, bounded per client. */
export class AliasTable {
  readonly #byAlias = new Map<string, { client: string; expiresAt: number }>();
  readonly #byClient = new Map<string, Set<string>>();

  /** Registers (or renews) `alias` for `client`; false when the client already holds the maximum. */
  register(client: string, alias: string, expiresAt: number, now: number): boolean {
    this.#prune(client, now);
    const old = this.#byAlias.get(alias);
    if (old && old.client !== client) this.#byClient.get(old.client)?.delete(alias);
    const mine = this.#byClient.get(client) ?? new Set<string>();
    if (!mine.has(alias) && mine.size >= MAX_ALIASES_PER_CLIENT) return false;
    mine.add(alias);
    this.#byClient.set(client, mine);
    this.#byAlias.set(alias, { client, expiresAt });
    return true;
  }

  /** The live aliases of `client` (hex). */
  aliasesOf(client: string, now: number): string[] {
    this.#prune(client, now);
    return [...(this.#byClient.get(client) ?? [])];
  }

  #prune(client: string, now: number): void {
    const mine = this.#byClient.get(client);
    if (!mine) return;
    for (const a of mine) {
      const e = this.#byAlias.get(a);
      if (!e || e.client !== client || e.expiresAt <= now) {
        mine.delete(a);
        if (e?.client === client) this.#byAlias.delete(a);
      }
    }
    if (mine.size === 0) this.#byClient.delete(client);
  }
}


