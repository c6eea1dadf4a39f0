/**
 * The invite handshake, both sides. A peer that is not a contact may only send INVITE, within
 * `inviteWaitMs`; anything else drops it. The inviter checks the single-use token's proof
 * against the Noise handshake hash, consumes the token, adds the joiner and answers INVITE_OK
 * signed with the pairwise key; the joiner checks that signature against the pairwise key the
 * introduction announced, then adds the inviter. Either way the connection becomes a session.
 */
import { DeaddropError } from '../util/errors.js';
import type { Contact, ContactStore } from './contacts.js';
import type { NodeIdentity } from './identity.js';
import { introductionTokenSecrets, mixTokenProof, signAccept, tokenProof, verifyAccept, type Introduction } from './introduction-token.js';
import type { Ed25519KeyPair } from './crypto.js';
import type { EmitNodeEvent, Sessions } from './sessions.js';
import type { SecureChannel } from './transport/secure-channel.js';
import { parseEndpoint } from './transport/ws-transport.js';
import { MSG, REFUSAL, TOKEN_ID_BYTES, decodeInvite, decodeInviteOk, encodeInvite, encodeInviteOk } from './wire.js';
import { equalBytes, toHex } from '../util/bytes.js';

export interface InviteHandshakeOptions {
  readonly identity: NodeIdentity;
  readonly contacts: ContactStore;
  readonly sessions: Sessions;
  /** How long a stranger has to present an invite, and a joiner waits for the answer. */
  readonly inviteWaitMs: number;
  /** The endpoints this node publishes (sent to the inviter). */
  readonly endpoints: () => string[];
  readonly emit: EmitNodeEvent;
  /** A contact was added (or found again) by a handshake. */
  readonly onContactAdded: (contact: Contact, added: boolean) => void;
}

/** Both sides of the invite handshake for one node. */
export class InviteHandshake {
  readonly #opts: InviteHandshakeOptions;
  /** Connections of strangers still expected to present an invite. */
  readonly #strangers = new Set<SecureChannel>();

  constructor(opts: InviteHandshakeOptions) {
    this.#opts = opts;
  }

  /** Inviter side: gives a stranger `inviteWaitMs` to present a valid invite. */
  awaitInvite(ch: SecureChannel): void {
    const { emit, sessions } = this.#opts;
    this.#strangers.add(ch);
    const timer = setTimeout(() => {
      emit('peer.rejected', 'no invite');
      ch.close('protocol', 'no invite');
    }, this.#opts.inviteWaitMs);
    const done = (): void => {
      clearTimeout(timer);
      this.#strangers.delete(ch);
      ch.off('frame', onFrame);
    };
    const onFrame = (type: number, payload: Uint8Array): void => {
      done();
      if (type !== MSG.INVITE) return sessions.drop(ch, 'a stranger must send INVITE first');
      if (this.answer(ch, payload)) sessions.attach(ch);
      else {
        emit('peer.rejected', 'invite invalid');
        ch.close('local');
      }
    };
    ch.on('frame', onFrame);
    ch.once('close', () => done());
  }

  /** Inviter side: checks an INVITE; on success adds the contact and sends INVITE_OK, else sends REFUSED. */
  answer(ch: SecureChannel, payload: Uint8Array): boolean {
    const { contacts, identity } = this.#opts;
    const joiner = ch.remote!;
    let m;
    try {
      m = decodeInvite(payload);
    } catch {
      ch.send(MSG.REFUSED, Uint8Array.of(REFUSAL.INVITE_INVALID));
      return false;
    }
    const row = contacts.getIntroductionToken(m.tokenId);
    const { token, pairwise } = introductionTokenSecrets(identity, m.tokenId);
    const ok =
      row !== null &&
      row.usedAt === null &&
      row.expiresAt > Date.now() &&
      equalBytes(tokenProof(token, ch.handshakeHash!), m.mac) &&
      contacts.consumeIntroductionToken(m.tokenId, joiner);
    if (!ok) {
      ch.send(MSG.REFUSED, Uint8Array.of(REFUSAL.INVITE_INVALID));
      return false;
    }
    const endpoints = m.endpoints.filter((u) => parseEndpoint(u) !== null);
    const { contact, added } = contacts.add({ node: joiner, pairwiseKey: pairwise.publicKey, endpoints });
    ch.send(MSG.INVITE_OK, encodeInviteOk({ pairwiseKey: pairwise.publicKey, signature: signAccept(pairwise, ch.handshakeHash!, identity.publicKey, joiner) }));
    this.#opts.onContactAdded(contact, added);
    return true;
  }

  /**
   * Joiner side, on a channel dialed to one of the introduction's endpoints: proves the token,
   * checks the answer, adds the inviter and starts the session. Rejects with REJECTED, TIMEOUT
   * or PROTOCOL.
   */
  join(ch: SecureChannel, url: string, intro: Introduction): Promise<Contact> {
    const { contacts, identity, sessions } = this.#opts;
    return new Promise<Contact>((resolve, reject) => {
      const early: [number, Uint8Array][] = [];
      const finish = (err: Error | null, contact?: Contact): void => {
        clearTimeout(timer);
        ch.off('frame', onFrame);
        ch.off('close', onClose);
        if (err) return reject(err);
        sessions.attach(ch);
        const s = sessions.get(toHex(ch.remote!));
        if (s?.channel === ch) for (const [t, p] of early) sessions.deliver(s, t, p);
        resolve(contact!);
      };
      const timer = setTimeout(
        () => finish(new DeaddropError('TIMEOUT', 'no answer to the invite')),
        this.#opts.inviteWaitMs,
      );
      const onClose = (): void => finish(new DeaddropError('REJECTED', 'the inviter closed the connection'));
      const onFrame = (type: number, payload: Uint8Array): void => {
        if (type === MSG.REFUSED) return finish(new DeaddropError('REJECTED', 'invite refused (used, expired or unknown)'));
        if (type !== MSG.INVITE_OK) {
          if (early.length < 64) early.push([type, payload]);
          return;
        }
        let okMsg;
        try {
          okMsg = decodeInviteOk(payload);
        } catch {
          return finish(DeaddropError.protocol('malformed INVITE_OK'));
        }
        const inviter = ch.remote!;
        if (!equalBytes(okMsg.pairwiseKey, intro.pairwiseKey) || !verifyAccept(okMsg.pairwiseKey, okMsg.signature, ch.handshakeHash!, inviter, identity.publicKey)) {
          return finish(new DeaddropError('REJECTED', 'the node reached does not own the introduced pairwise key'));
        }
        const endpoints = [url, ...intro.endpoints.filter((u) => u !== url && parseEndpoint(u) !== null)];
        const { contact, added } = contacts.add({ node: inviter, pairwiseKey: intro.pairwiseKey, endpoints });
        this.#opts.onContactAdded(contact, added);
        finish(null, contact);
      };
      ch.on('frame', onFrame);
      ch.on('close', onClose);
      const tokenId = intro.token.subarray(0, TOKEN_ID_BYTES);
      ch.send(MSG.INVITE, encodeInvite({ tokenId, mac: tokenProof(intro.token, ch.handshakeHash!), endpoints: this.#opts.endpoints() }));
    });
  }

  /**
   * Inviter side of an INVITE that came over the mixnet (docs/protocol/mixnet.md, "Introductions
   * over the mixnet"): `joiner` is the sender the sealed body authenticated. Checks the invite and
   * the nonce-bound proof, consumes the token (or accepts the same joiner again, whose answer may
   * have been lost), adds the joiner as a contact with no endpoint, and returns the pairwise key
   * pair to sign the answer with; null when refused.
   */
  answerMixnet(joiner: Uint8Array, tokenId: Uint8Array, nonce: Uint8Array, mac: Uint8Array): Ed25519KeyPair | null {
    const { contacts, identity } = this.#opts;
    if (tokenId.length !== TOKEN_ID_BYTES) return null;
    const row = contacts.getIntroductionToken(tokenId);
    if (row === null || row.expiresAt <= Date.now()) return null;
    const { token, pairwise } = introductionTokenSecrets(identity, tokenId);
    if (!equalBytes(mixTokenProof(token, nonce, pairwise.publicKey, joiner), mac)) return null;
    const known = contacts.get(joiner);
    const again = row.usedAt !== null && known?.pairwiseKey != null && equalBytes(known.pairwiseKey, pairwise.publicKey);
    if (!again && !contacts.consumeIntroductionToken(tokenId, joiner)) return null;
    const { contact, added } = contacts.add({ node: joiner, pairwiseKey: pairwise.publicKey, endpoints: [] });
    this.#opts.onContactAdded(contact, added);
    return pairwise;
  }

  /** Joiner side, once the mixnet answer verified: adds the inviter as a contact reached over the mixnet only. */
  addMixnetInviter(inviter: Uint8Array, pairwiseKey: Uint8Array): Contact {
    const { contact, added } = this.#opts.contacts.add({ node: inviter, pairwiseKey, endpoints: [] });
    this.#opts.onContactAdded(contact, added);
    return contact;
  }

  /** Closes the connections of strangers still expected to present an invite. */
  closeAll(): void {
    for (const ch of this.#strangers) ch.close('local');
  }
}
