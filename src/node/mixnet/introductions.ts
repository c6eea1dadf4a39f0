/**
 * Introductions answered over the mixnet (docs/protocol/mixnet.md, "Introductions over the
 * mixnet"), both sides, between a PeerNode and its MixnetService:
 *
 * - Introducer: every live invite's pairwise key is registered as a mailbox alias at the home
 *   provider (renewed every `renewMs`); a sealed INVITE delivered to an alias is opened with that
 *   pairwise key, checked by the node (token, nonce-bound proof, single use), and answered through
 *   the joiner's SURB with INVITE_OK (or REFUSED).
 * - Joiner ({@link MixIntroductions.join}): finds the introducer's provider by the drop's 8-byte id
 *   (asking its own provider for descriptors when it knows none), sends the INVITE to the pairwise
 *   mailbox there with a SURB back, and adds the inviter once its answer verifies.
 * Neither side dials the other or learns its address; both contacts have no endpoint.
 */
import { randomBytes } from 'node:crypto';
import { DeaddropError } from '../../util/errors.js';
import { equalBytes, toHex } from '../../util/bytes.js';
import type { Contact } from '../contacts.js';
import { ed25519FromSeed, signerFromKeyPair, wipe } from '../crypto.js';
import { NodeIdentity } from '../identity.js';
import { MIX_NONCE_BYTES, mixTokenProof, signMixAccept, verifyMixAccept } from '../introduction-token.js';
import { decodeEntry } from '../log/codec.js';
import type { PeerNode } from '../node.js';
import { TOKEN_ID_BYTES } from '../wire.js';
import { MAX_ALIAS_TTL_MS } from './alias.js';
import { DESCRIPTOR_TYPE, MAILBOX_TYPE } from './directory.js';
import { decodeMixAnswer, decodeMixInvite, encodeMixAnswer, encodeMixInvite } from './introduction.js';
import { openBody, sealBody } from './message.js';
import type { MixnetService } from './service.js';

/** What a joiner needs from a drop with a mixnet hint. */
export interface MixIntroduction {
  readonly pairwiseKey: Uint8Array;
  /** 32-byte token (`expandDropToken`). */
  readonly token: Uint8Array;
  /** The hint's 8-byte provider id. */
  readonly providerId: Uint8Array;
}

export interface MixIntroductionsOptions {
  /** How often aliases are registered again (default 60 s). */
  readonly renewMs?: number;
  /**
   * How often the node database is checked for invites issued since the last round (default 2 s):
   * an invite may be issued by another process (`deaddrop drop send`) or by the API, and its alias
   * must be registered before the drop is mined, or the joiner's INVITE waits for the next round.
   */
  readonly checkMs?: number;
  /** How long a joiner waits for the answer (default 60 s). */
  readonly answerTimeoutMs?: number;
}

const USED_GRACE_MS = 24 * 3600_000;
/** Where the node records its home provider (read by `mixnetHintOf` in ../drop-introduction.ts). */
export const HOME_META_KEY = 'mixnet.home';

export class MixIntroductions {
  readonly #node: PeerNode;
  readonly #mix: MixnetService;
  readonly #o: MixIntroductionsOptions;
  /** pairwise key (hex) → token id, for the live invites. */
  readonly #aliases = new Map<string, Uint8Array>();
  #timer: NodeJS.Timeout | null = null;
  #check: NodeJS.Timeout | null = null;
  /** Token ids (hex) registered at the provider in the last round. */
  readonly #registered = new Set<string>();
  readonly #waiting = new Set<() => void>();

  constructor(node: PeerNode, mix: MixnetService, opts: MixIntroductionsOptions = {}) {
    this.#node = node;
    this.#mix = mix;
    this.#o = opts;
  }

  start(): void {
    this.#mix.on('alias', (alias, body) => this.#onAlias(alias, body));
    // On every (re)connect: the provider forgot this link's aliases, and the home is known only now.
    this.#mix.on('linked', () => this.renew());
    this.renew();
    this.#timer = setInterval(() => this.renew(), this.#o.renewMs ?? 60_000);
    this.#check = setInterval(() => this.#renewIfNew(), this.#o.checkMs ?? 2000);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#check) clearInterval(this.#check);
    this.#timer = null;
    this.#check = null;
    for (const cancel of [...this.#waiting]) cancel();
  }

  /** True when `pairwiseKey` belongs to one of this node's live invites (a drop it sent itself). */
  isOwn(pairwiseKey: Uint8Array): boolean {
    return this.#aliases.has(toHex(pairwiseKey));
  }

  #liveInvites(now: number): { id: Buffer; expires: number }[] | null {
    try {
      return this.#node.store.db
        .prepare('SELECT token_id AS id, expires_at AS expires FROM invites WHERE expires_at > ? AND (used_at IS NULL OR used_at > ?)')
        .all(now, now - USED_GRACE_MS) as { id: Buffer; expires: number }[];
    } catch {
      return null; // the node is closing
    }
  }

  /** A full round when an invite was issued since the last one (or the last one had no link). */
  #renewIfNew(): void {
    if (!this.#mix.connected) return;
    const rows = this.#liveInvites(Date.now());
    if (rows?.some((r) => !this.#registered.has(r.id.toString('hex')))) this.renew();
  }

  /** Registers every live (or recently used) invite's pairwise key as an alias at the home provider. */
  renew(): void {
    const now = Date.now();
    this.#rememberHome();
    const rows = this.#liveInvites(now);
    if (!rows) return;
    // Rebuilt every round, so invites that expired or were used long ago are forgotten.
    this.#aliases.clear();
    this.#registered.clear();
    for (const r of rows) {
      const tokenId = new Uint8Array(r.id);
      const seed = this.#node.identity.derive('pairwise-key', tokenId, 32);
      const pair = ed25519FromSeed(seed);
      wipe(seed);
      this.#aliases.set(toHex(pair.publicKey), tokenId);
      if (!this.#mix.connected) continue;
      try {
        this.#mix.registerAlias(signerFromKeyPair(pair), Math.min(r.expires, now + MAX_ALIAS_TTL_MS - 60_000));
        this.#registered.add(r.id.toString('hex'));
      } catch {
        // the link just closed: the next round registers it
      }
    }
  }

  /**
   * Records the home provider in the node database (`node_meta` key {@link HOME_META_KEY}), so that
   * `deaddrop drop send`, which may run without the daemon, can put the mixnet hint in a drop.
   */
  #rememberHome(): void {
    const home = this.#mix.connected ? this.#mix.home : null;
    if (!home) return;
    try {
      this.#node.store.db.prepare('INSERT OR REPLACE INTO node_meta (key, value) VALUES (?, ?)').run(HOME_META_KEY, Buffer.from(home));
    } catch {
      // closing
    }
  }

  #onAlias(alias: Buffer, body: Buffer): void {
    const tokenId = this.#aliases.get(alias.toString('hex'));
    if (!tokenId) return;
    const seed = this.#node.identity.derive('pairwise-key', tokenId, 32);
    const pairwiseId = NodeIdentity.fromSeed(seed);
    wipe(seed);
    const opened = openBody(pairwiseId, body);
    pairwiseId.destroy();
    const invite = opened ? decodeMixInvite(opened.plain) : null;
    if (!opened || !invite || !equalBytes(invite.tokenId, tokenId)) return;
    const joiner = opened.from;
    let pairwise;
    try {
      pairwise = this.#node.answerMixnetInvite(joiner, invite.tokenId, invite.nonce, invite.mac);
    } catch {
      return; // closing
    }
    const own = this.#mix.ownEntries();
    try {
      if (!pairwise || !own || !this.#learn(joiner, invite.mailboxEntry, invite.providerEntry)) {
        this.#mix.answerThrough(invite.surb, encodeMixAnswer({ kind: 'refused', nonce: invite.nonce }));
        return;
      }
      const sig = signMixAccept(pairwise, this.#node.identity, invite.nonce, joiner);
      this.#mix.answerThrough(invite.surb, encodeMixAnswer({ kind: 'ok', nonce: invite.nonce, inviter: this.#node.id, ...sig, mailboxEntry: own.mailbox, providerEntry: own.provider }));
    } catch {
      // No link, or a SURB that does not parse: the joiner times out and tries again.
    } finally {
      pairwise?.secretKey.fill(0);
    }
  }

  /** Adds a correspondent's mailbox announcement (by `author`) and a provider descriptor to the directory, each verified. */
  #learn(author: Uint8Array, mailboxRaw: Uint8Array, providerRaw: Uint8Array): boolean {
    try {
      const mailbox = decodeEntry(mailboxRaw);
      const provider = decodeEntry(providerRaw);
      if (mailbox.header.type !== MAILBOX_TYPE || !equalBytes(mailbox.author, author) || provider.header.type !== DESCRIPTOR_TYPE) return false;
      this.#mix.ingest(provider);
      this.#mix.ingest(mailbox);
      const p = this.#mix.directory.providerOf(author);
      return p !== undefined && this.#mix.directory.get(p)?.provider === true;
    } catch {
      return false;
    }
  }

  /**
   * Joiner side: sends the INVITE over the mixnet and resolves with the inviter as a contact once
   * its answer verifies. Rejects REJECTED (refused: final), TIMEOUT, BACKEND_UNREACHABLE (no link,
   * provider unknown) or the mixnet's TooFewMixes (transient).
   */
  async join(intro: MixIntroduction): Promise<Contact> {
    const mix = this.#mix;
    const own = mix.ownEntries();
    if (!mix.connected || !own) throw DeaddropError.unreachable('the mixnet (no provider link yet)');
    let exits = mix.directory.providersById(intro.providerId);
    if (exits.length === 0) {
      await mix.refreshDirectory();
      exits = mix.directory.providersById(intro.providerId);
    }
    if (exits.length === 0) throw DeaddropError.unreachable('the introducer\'s mixnet provider (no verified descriptor)');
    const nonce = new Uint8Array(randomBytes(MIX_NONCE_BYTES));
    const joiner = this.#node.id;
    const tokenId = intro.token.subarray(0, TOKEN_ID_BYTES);
    const mac = mixTokenProof(intro.token, nonce, intro.pairwiseKey, joiner);
    return new Promise<Contact>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, c?: Contact): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#waiting.delete(cancel);
        if (err) reject(err);
        else resolve(c!);
      };
      const cancel = (): void => finish(DeaddropError.closed('mixnet introductions'));
      this.#waiting.add(cancel);
      const timer = setTimeout(() => finish(new DeaddropError('TIMEOUT', 'no answer to the invite over the mixnet')), this.#o.answerTimeoutMs ?? 60_000);
      const onAnswer = (body: Buffer): void => {
        const a = decodeMixAnswer(body);
        if (!a || !equalBytes(a.nonce, nonce)) return finish(DeaddropError.protocol('malformed answer to the invite'));
        if (a.kind === 'refused') return finish(new DeaddropError('REJECTED', 'invite refused (used, expired or unknown)'));
        if (!verifyMixAccept(intro.pairwiseKey, a.inviter, joiner, nonce, a)) {
          return finish(new DeaddropError('REJECTED', 'the answer is not signed by the introduced pairwise key'));
        }
        if (!this.#learn(a.inviter, a.mailboxEntry, a.providerEntry)) return finish(DeaddropError.protocol('the answer does not say where the inviter\'s mailbox is'));
        try {
          finish(null, this.#node.addMixnetContact(a.inviter, intro.pairwiseKey));
        } catch (err) {
          finish(err as Error);
        }
      };
      try {
        // Every matching provider (normally one; several only on an id collision) gets the invite.
        for (const exit of exits) {
          const surb = mix.createReplyBlock(exit.address, onAnswer);
          const plain = encodeMixInvite({ tokenId, nonce, mac, surb, mailboxEntry: own.mailbox, providerEntry: own.provider });
          mix.sendTo(exit.address, intro.pairwiseKey, sealBody(this.#node.identity, intro.pairwiseKey, plain));
        }
      } catch (err) {
        finish(err as Error);
      }
    });
  }
}
