/**
 * Invite tokens and the proofs exchanged when a new contact dials in.
 *
 * The inviter publishes an Introduction (in a dead drop): its endpoints, a fresh pairwise key for
 * this relationship, and a 32-byte token = tokenId(16) || secret(16). Both the secret and the
 * pairwise key are derived from the inviter's identity and the random tokenId, so the inviter stores
 * only (tokenId, expiry, used).
 *
 * After the Noise handshake the joiner sends INVITE: tokenId and mac = HMAC-SHA256(token,
 * "deaddrop/invite-proof/v1\0" || handshakeHash). The mac is bound to this session, so a relay or an
 * impostor that saw it cannot reuse it. The inviter checks the invite is unused and unexpired,
 * checks the mac, marks it used (single use, atomically), and answers INVITE_OK: the pairwise key
 * and its signature over ("deaddrop/invite-accept/v1\0" || handshakeHash || inviter || joiner),
 * which proves to the joiner that the node it reached is the one that wrote the introduction.
 */
import { concatBytes, ed25519FromSeed, ed25519Sign, ed25519Verify, hmacSha256, utf8 } from './crypto.js';
import type { Ed25519KeyPair } from './crypto.js';
import type { NodeIdentity } from './identity.js';
import { TOKEN_ID_BYTES } from './wire.js';

export const TOKEN_BYTES = 32;
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

/** The token and pairwise key pair for a tokenId (deterministic). */
export function inviteSecrets(identity: NodeIdentity, tokenId: Uint8Array): { token: Uint8Array; pairwise: Ed25519KeyPair } {
  if (tokenId.length !== TOKEN_ID_BYTES) throw new RangeError('tokenId: expected 16 bytes');
  const secret = identity.derive('invite-token', tokenId, TOKEN_BYTES - TOKEN_ID_BYTES);
  const pairwise = ed25519FromSeed(identity.derive('pairwise-key', tokenId, 32));
  return { token: concatBytes(tokenId, secret), pairwise };
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
