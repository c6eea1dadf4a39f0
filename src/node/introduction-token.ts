/**
 * Introduction tokens (the node's single-use tokens) and the proofs exchanged when a new contact
 * dials in. The wire still calls them invites (INVITE / INVITE_OK, the `deaddrop/invite-*`
 * contexts); only the code says "introduction token", to keep them apart from the `deaddrop:`
 * invite (src/deaddrop/invite.ts) and the node introduction a drop carries (./drop-introduction.ts).
 *
 * The inviter publishes an Introduction (in a dead drop): its endpoints, a fresh pairwise key for
 * this relationship, and a token. A dead drop has room for 8 token bytes only, so the invite is
 * built from a random 8-byte *drop token* t:
 *   tokenId  = SHA-256("deaddrop/invite-id/v1\0" || t)[0..16)
 *   pairwise = Ed25519 key from HKDF(seed, "pairwise-key", tokenId)
 *   token    = tokenId || SHA-256("deaddrop/invite-secret/v1\0" || tokenId || pairwise)[0..16)
 * Whoever read the drop (t and the pairwise public key, both only in the encrypted drop) can
 * compute the 32-byte token ({@link expandDropToken}); the inviter re-derives everything from its
 * seed and the tokenId, so it stores only (tokenId, expiry, used).
 *
 * After the Noise handshake the joiner sends INVITE: tokenId and mac = HMAC-SHA256(token,
 * "deaddrop/invite-proof/v1\0" || handshakeHash). The mac is bound to this session, so a relay or an
 * impostor that saw it cannot reuse it. The inviter checks the invite is unused and unexpired,
 * checks the mac, marks it used (single use, atomically), and answers INVITE_OK: the pairwise key
 * and its signature over ("deaddrop/invite-accept/v1\0" || handshakeHash || inviter || joiner),
 * which proves to the joiner that the node it reached is the one that wrote the introduction.
 */
import { ed25519FromSeed, ed25519Sign, ed25519Verify, hmacSha256, randomBytes, sha256, utf8 } from './crypto.js';
import type { Ed25519KeyPair } from './crypto.js';
import type { NodeIdentity } from './identity.js';
import { TOKEN_ID_BYTES } from './wire.js';
import { concatBytes } from '../util/bytes.js';

export const TOKEN_BYTES = 32;
/** Bytes of the drop token, the part of an invite a dead drop carries. */
export const DROP_TOKEN_BYTES = 8;
const TOKEN_ID_CONTEXT = utf8('deaddrop/invite-id/v1\0');
const SECRET_CONTEXT = utf8('deaddrop/invite-secret/v1\0');
const PROOF_CONTEXT = utf8('deaddrop/invite-proof/v1\0');
const ACCEPT_CONTEXT = utf8('deaddrop/invite-accept/v1\0');

/** What an inviter publishes, and what `bootstrapFromIntroduction` takes. */
export interface Introduction {
  /** Ed25519 key fresh for this relationship; the inviter proves it owns it. */
  readonly pairwiseKey: Uint8Array;
  /** ws:// URLs to dial, best first. */
  readonly endpoints: readonly string[];
  /** 32 bytes: tokenId || secret. */
  readonly token: Uint8Array;
}

/** The tokenId of a drop token. */
export function dropTokenId(dropToken: Uint8Array): Uint8Array {
  if (dropToken.length !== DROP_TOKEN_BYTES) throw new RangeError('dropToken: expected 8 bytes');
  return sha256(TOKEN_ID_CONTEXT, dropToken).subarray(0, TOKEN_ID_BYTES);
}

function inviteToken(tokenId: Uint8Array, pairwiseKey: Uint8Array): Uint8Array {
  return concatBytes(tokenId, sha256(SECRET_CONTEXT, tokenId, pairwiseKey).subarray(0, TOKEN_BYTES - TOKEN_ID_BYTES));
}

/** The 32-byte token of an introduction read from a dead drop (drop token and pairwise key). */
export function expandDropToken(dropToken: Uint8Array, pairwiseKey: Uint8Array): Uint8Array {
  if (pairwiseKey.length !== 32) throw new RangeError('pairwiseKey: expected 32 bytes');
  return inviteToken(dropTokenId(dropToken), pairwiseKey);
}

/** The token and pairwise key pair for a tokenId (deterministic). */
export function introductionTokenSecrets(identity: NodeIdentity, tokenId: Uint8Array): { token: Uint8Array; pairwise: Ed25519KeyPair } {
  if (tokenId.length !== TOKEN_ID_BYTES) throw new RangeError('tokenId: expected 16 bytes');
  const pairwise = ed25519FromSeed(identity.derive('pairwise-key', tokenId, 32));
  return { token: inviteToken(tokenId, pairwise.publicKey), pairwise };
}

/** A freshly issued invite: the introduction, its drop token and its expiry (ms). */
export interface IssuedIntroductionToken extends Introduction {
  /** The 8 bytes a dead drop carries as its token (with `pairwiseKey` they give `token`). */
  readonly dropToken: Uint8Array;
  readonly expiresAt: number;
}

/**
 * Issues a single-use invite: draws a drop token, records (tokenId, expiry) through `record` and
 * returns the introduction. Used by `PeerNode.createIntroductionToken` and by processes that only hold the
 * node's database (`deaddrop drop send` without a running daemon).
 */
export function issueIntroductionToken(
  identity: NodeIdentity,
  endpoints: readonly string[],
  expiresAt: number,
  record: (tokenId: Uint8Array, expiresAt: number) => void,
): IssuedIntroductionToken {
  const dropToken = randomBytes(DROP_TOKEN_BYTES);
  const tokenId = dropTokenId(dropToken);
  record(tokenId, expiresAt);
  const { token, pairwise } = introductionTokenSecrets(identity, tokenId);
  return { pairwiseKey: pairwise.publicKey, endpoints: [...endpoints], token, dropToken, expiresAt };
}

/** The session-bound proof of knowing `token`. */
export function tokenProof(token: Uint8Array, handshakeHash: Uint8Array): Uint8Array {
  return hmacSha256(token, PROOF_CONTEXT, handshakeHash);
}

function acceptMessage(handshakeHash: Uint8Array, inviter: Uint8Array, joiner: Uint8Array): Uint8Array {
  return concatBytes(ACCEPT_CONTEXT, handshakeHash, inviter, joiner);
}

/** The inviter's acceptance signature with the pairwise key. */
export function signAccept(pairwise: Ed25519KeyPair, handshakeHash: Uint8Array, inviter: Uint8Array, joiner: Uint8Array): Uint8Array {
  return ed25519Sign(acceptMessage(handshakeHash, inviter, joiner), pairwise.secretKey);
}

/** Checks an acceptance signature. Never throws. */
export function verifyAccept(
  pairwiseKey: Uint8Array,
  signature: Uint8Array,
  handshakeHash: Uint8Array,
  inviter: Uint8Array,
  joiner: Uint8Array,
): boolean {
  return ed25519Verify(signature, acceptMessage(handshakeHash, inviter, joiner), pairwiseKey);
}

// ---------------------------------------------------------------------------------------------
// Over the mixnet (docs/protocol/mixnet.md, "Introductions over the mixnet"): no Noise session,
// so the proof is bound to a fresh per-attempt nonce and to both keys, and the acceptance signs
// that nonce (with the pairwise key and with the inviter's identity key).

const MIX_PROOF_CONTEXT = utf8('deaddrop/invite-proof-mix/v1\0');
const MIX_ACCEPT_CONTEXT = utf8('deaddrop/invite-accept-mix/v1\0');
/** Bytes of the per-attempt nonce of a mixnet INVITE. */
export const MIX_NONCE_BYTES = 16;

function nonceOk(nonce: Uint8Array): boolean {
  return nonce.length === MIX_NONCE_BYTES;
}

/** The joiner's proof of knowing `token`, for one attempt (`nonce`) between these two keys. */
export function mixTokenProof(token: Uint8Array, nonce: Uint8Array, pairwiseKey: Uint8Array, joiner: Uint8Array): Uint8Array {
  if (!nonceOk(nonce)) throw new RangeError('nonce: expected 16 bytes');
  return hmacSha256(token, MIX_PROOF_CONTEXT, nonce, pairwiseKey, joiner);
}

function mixAcceptMessage(nonce: Uint8Array, pairwiseKey: Uint8Array, inviter: Uint8Array, joiner: Uint8Array): Uint8Array {
  return concatBytes(MIX_ACCEPT_CONTEXT, nonce, pairwiseKey, inviter, joiner);
}

/** The inviter's two acceptance signatures of one mixnet attempt: by the pairwise key and by its identity. */
export function signMixAccept(pairwise: Ed25519KeyPair, identity: NodeIdentity, nonce: Uint8Array, joiner: Uint8Array): { byPairwise: Uint8Array; byInviter: Uint8Array } {
  if (!nonceOk(nonce)) throw new RangeError('nonce: expected 16 bytes');
  const m = mixAcceptMessage(nonce, pairwise.publicKey, identity.publicKey, joiner);
  return { byPairwise: ed25519Sign(m, pairwise.secretKey), byInviter: identity.sign(m) };
}

/** Checks both acceptance signatures of a mixnet attempt. Never throws. */
export function verifyMixAccept(
  pairwiseKey: Uint8Array,
  inviter: Uint8Array,
  joiner: Uint8Array,
  nonce: Uint8Array,
  sig: { byPairwise: Uint8Array; byInviter: Uint8Array },
): boolean {
  if (!nonceOk(nonce)) return false;
  const m = mixAcceptMessage(nonce, pairwiseKey, inviter, joiner);
  return ed25519Verify(sig.byPairwise, m, pairwiseKey) && ed25519Verify(sig.byInviter, m, inviter);
}
