/**
 * Contact cards: how two contacts learn each other's silent-payment address, which a beacon drop
 * must be addressed to.
 *
 * The introducer of a drop knows the recipient's address (it was in the invite), but the
 * recipient learns nothing about the introducer's wallet from the drop. So once two nodes are
 * contacts, each appends to its own feed one card per contact: an entry signed by the author (so
 * its origin is authenticated like every entry), replicated like every entry, and readable only
 * by that contact:
 *
 *   header  { type: "deaddrop/contact-card", app: "deaddrop" }
 *   body    version:u8 = 1 | tag(16) | XChaCha20-Poly1305(K, random nonce, address UTF-8, ad = author || tag)
 *   K       = HKDF-SHA256(X25519(author, contact), salt "deaddrop/contact-card/v1", info = both Ed25519 keys sorted)
 *   tag     = HMAC-SHA256(K, "tag")[0..16)
 *
 * Other readers of the feed see that a card exists, not for whom or what it says. Cards are
 * never trusted for anything but where to send a beacon drop; the beacon itself is an ordinary
 * introduction whose pairwise key the sender proves over Noise.
 */
import { aeadOpen, aeadSeal, hkdf, hmacSha256, utf8, wipe } from './crypto.js';
import type { NodeIdentity } from './identity.js';
import type { EntryDraft, LogEntry } from './log/codec.js';
import { concatBytes, equalBytes } from '../util/bytes.js';

export const CONTACT_CARD_TYPE = 'deaddrop/contact-card';
const VERSION = 1;
const TAG_BYTES = 16;
const SALT = utf8('deaddrop/contact-card/v1');
const MAX_ADDRESS_BYTES = 256;

function cardKey(identity: NodeIdentity, contact: Uint8Array): Uint8Array | null {
  const shared = identity.sharedSecret(contact);
  if (!shared) return null;
  const [lo, hi] = Buffer.compare(identity.publicKey, contact) < 0 ? [identity.publicKey, contact] : [contact, identity.publicKey];
  const key = hkdf(shared, SALT, concatBytes(lo, hi), 32);
  wipe(shared);
  return key;
}

/** The entry draft of our card for `contact`, or null for a key that is not a valid point. */
export function contactCardDraft(identity: NodeIdentity, contact: Uint8Array, address: string): EntryDraft | null {
  const key = cardKey(identity, contact);
  if (!key) return null;
  const tag = hmacSha256(key, utf8('tag')).subarray(0, TAG_BYTES);
  const sealed = aeadSeal(key, utf8(address), concatBytes(identity.publicKey, tag));
  wipe(key);
  return { header: { type: CONTACT_CARD_TYPE, app: 'deaddrop' }, body: concatBytes(Uint8Array.of(VERSION), tag, sealed) };
}

/**
 * The address in `entry` if it is a card from its author to us, else null (someone else's card,
 * another entry type, anything malformed). Never throws.
 */
export function readContactCard(identity: NodeIdentity, entry: LogEntry): string | null {
  if (entry.header.type !== CONTACT_CARD_TYPE) return null;
  const body = entry.body;
  if (body.length < 1 + TAG_BYTES || body.length > 1 + TAG_BYTES + 40 + MAX_ADDRESS_BYTES || body[0] !== VERSION) return null;
  const key = cardKey(identity, entry.author);
  if (!key) return null;
  try {
    const tag = body.subarray(1, 1 + TAG_BYTES);
    if (!equalBytes(tag, hmacSha256(key, utf8('tag')).subarray(0, TAG_BYTES))) return null;
    const plain = aeadOpen(key, body.subarray(1 + TAG_BYTES), concatBytes(entry.author, tag));
    if (!plain) return null;
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    return null;
  } finally {
    wipe(key);
  }
}
