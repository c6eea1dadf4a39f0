/**
 * Publishing, as the CLI and the API do it: the wallet's invite, the wallet's watch identity,
 * and sending an introduction (a drop with a fresh pairwise key and a ledgered token).
 *
 * Everything a user types is checked here before any key is unlocked or coin chosen, with one
 * clear line per mistake: a bad invite, a bad endpoint, a message that does not fit (saying how
 * many bytes are left).
 */
import { createHash } from 'node:crypto';
import { DeaddropError, isDeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import type { WalletKeys } from '../wallet/keys.js';
import type { WatchIdentity } from './watch/candidates.js';
import { encodeAddress } from './bip352.js';
import { MAX_HINTS, PAYLOAD_FIXED_BYTES, payloadSize } from './codec.js';
import { normalizeEndpoint, onionEndpoint } from './endpoint.js';
import { ENVELOPE_MAX_BYTES, SIV_BYTES } from './envelope.js';
import type { IntroductionLedger } from './introductions.js';
import { formatInvite, parseInvite, type Invite } from './invite.js';
import { sendDrop, type DropWallet } from './send.js';
import { toHex } from '../util/bytes.js';

/** Label of the wallet's identity in the watcher's drops and events. */
export const WALLET_IDENTITY = 'wallet';

/** Plaintext bytes in an 80-byte envelope (72). */
export const PAYLOAD_BYTES = ENVELOPE_MAX_BYTES - SIV_BYTES;

/** Bytes left for endpoints and message after the fixed fields (28). */
export const VARIABLE_BYTES = PAYLOAD_BYTES - PAYLOAD_FIXED_BYTES;

/** Default token lifetime: 30 days. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600;

/** The wallet's silent-payment address (BIP352 keys from the seed). */
export function walletSilentAddress(keys: WalletKeys): string {
  const { scan, spend } = keys.silentPaymentKeys();
  scan.privateKey.fill(0);
  spend.privateKey.fill(0);
  return encodeAddress(scan.publicKey, spend.publicKey, keys.network);
}

/** What the watcher decrypts with: the scan private key and the spend public key. */
export function walletIdentity(keys: WalletKeys): WatchIdentity {
  const { scan, spend } = keys.silentPaymentKeys();
  spend.privateKey.fill(0);
  return { label: WALLET_IDENTITY, scanPrivateKey: scan.privateKey, spendPublicKey: spend.publicKey };
}

/** A short, non-secret fingerprint of the wallet's address, to notice a datadir whose seed changed. */
export function addressFingerprint(address: string): string {
  return createHash('sha256').update(`deaddrop/watch-identity\x00${address}`).digest('hex').slice(0, 32);
}

/** An invite as printed by `deaddrop invite` and `GET /invite`. */
export interface InviteInfo {
  readonly uri: string;
  readonly address: string;
  readonly label: string | null;
  readonly birthday: number | null;
  readonly hints: readonly string[];
}

/** The wallet's invite with an optional label, birthday and hints (validated; BAD_INPUT otherwise). */
export function walletInvite(keys: WalletKeys, opts: { label?: string | null; birthday?: number | null; hints?: readonly string[] } = {}): InviteInfo {
  const address = walletSilentAddress(keys);
  const uri = formatInvite({ address, label: opts.label ?? null, birthday: opts.birthday ?? null, hints: opts.hints ?? [] }, keys.network);
  const parsed = parseInvite(uri, keys.network);
  return { uri, address, label: parsed.label, birthday: parsed.birthday, hints: parsed.hints };
}

/** Parses the recipient of a drop: a `deaddrop:` invite or a bare silent-payment address. */
export function parseRecipient(text: string, network: Network): Invite {
  try {
    return parseInvite(text, network);
  } catch (err) {
    if (isDeaddropError(err, 'BAD_ADDRESS')) throw DeaddropError.badAddress(`not a deaddrop invite or silent-payment address: ${err.message}`);
    throw err;
  }
}

/** Parses a token lifetime: `30d`, `12h`, `90m` or `never`. Returns seconds, or null for never. */
export function parseLifetime(text: string): number | null {
  if (text === 'never') return null;
  const m = /^([1-9][0-9]{0,5})([mhd])$/.exec(text);
  if (!m) throw DeaddropError.badInput(`token lifetime must look like 30d, 12h, 90m or never; got ${JSON.stringify(text.slice(0, 20))}`);
  const seconds = Number(m[1]) * { m: 60, h: 3600, d: 86_400 }[m[2] as 'm' | 'h' | 'd'];
  if (seconds > 10 * 365 * 86_400) throw DeaddropError.badInput('token lifetime must be at most 10 years (or never)');
  return seconds;
}

/** The introduction's content as the user gives it. */
export interface IntroductionContent {
  /** Endpoint hints (any string form; normalized). */
  readonly endpoints: readonly string[];
  readonly message?: string;
  /** Also announce the onion of the pairwise key on this port (3 bytes), in canonical form (`ws://<onion>.onion` for 80). */
  readonly onionPort?: number;
}

const utf8 = new TextEncoder();

/**
 * Normalizes the endpoints and checks that endpoints and message fit one 80-byte drop.
 * Throws one clear BAD_INPUT naming how many bytes are available.
 */
export function checkIntroduction(content: IntroductionContent): { endpoints: string[]; message: string } {
  const endpoints = content.endpoints.map((e) => normalizeEndpoint(e));
  const message = content.message ?? '';
  if (content.onionPort !== undefined && (!Number.isSafeInteger(content.onionPort) || content.onionPort < 1 || content.onionPort > 65_535)) {
    throw DeaddropError.badInput('onion port must be 1..65535');
  }
  if (endpoints.length === 0 && content.onionPort === undefined) {
    throw DeaddropError.badInput('an introduction needs at least one --endpoint (where the recipient can reach your node)');
  }
  if (endpoints.length + (content.onionPort === undefined ? 0 : 1) > MAX_HINTS) throw DeaddropError.badInput(`at most ${MAX_HINTS} endpoints`);
  const dummyKey = new Uint8Array(32).fill(1);
  const all = content.onionPort === undefined ? endpoints : [...endpoints, onionEndpoint(dummyKey, content.onionPort)];
  const hintBytes = payloadSize({ nodeKey: dummyKey, token: new Uint8Array(8), endpoints: all }) - PAYLOAD_FIXED_BYTES;
  if (hintBytes > VARIABLE_BYTES) {
    throw DeaddropError.badInput(`endpoints need ${hintBytes} bytes but an introduction has ${VARIABLE_BYTES}: use fewer or shorter endpoints`);
  }
  // Checks the message's characters (BAD_INPUT for control characters) before its length.
  payloadSize({ nodeKey: dummyKey, token: new Uint8Array(8), endpoints: [], message });
  const available = VARIABLE_BYTES - hintBytes;
  const size = utf8.encode(message).length;
  if (size > available) {
    throw DeaddropError.badInput(`message too long: ${size} bytes, ${available} available (${PAYLOAD_BYTES}-byte introduction: ${PAYLOAD_FIXED_BYTES} fixed, ${hintBytes} for endpoints)`, {
      size, available,
    });
  }
  return { endpoints, message };
}

/** What one introduction carries from the introducer's node: a fresh pairwise key and a token the node accepts. */
export interface IssuedIntroduction {
  /** Pairwise Ed25519 public key (32 bytes). */
  readonly nodeKey: Uint8Array;
  /** 8-byte token (secret until redeemed). */
  readonly token: Uint8Array;
  /** As carried: Unix seconds on a whole hour, or null. */
  readonly expiresAt: number | null;
}

/** Issues the node-side invite of one introduction, for a token expiring at `expiresAt` (Unix seconds) or never. */
export type IntroductionIssuer = (expiresAt: number | null) => IssuedIntroduction;

/**
 * Makes the issuer of a datadir's peer node for the wallet's keys. Declared here, implemented
 * by the node (`nodeIssuer` in src/node/drop-introduction.ts) and injected by whoever wires the
 * features (the CLI): the drop feature never imports the node.
 */
export type NodeIssuerFactory = (keys: WalletKeys, datadir: string) => IntroductionIssuer;

/** What to send. */
export interface IntroductionParams extends IntroductionContent {
  /** `deaddrop:` invite or silent-payment address. */
  readonly recipient: string;
  readonly feeRate: number;
  readonly notifyOutput?: boolean;
  /** Token lifetime in seconds from now; null = never expires. Default 30 days. */
  readonly lifetimeSeconds?: number | null;
  /** Clock (Unix seconds) for the expiry. */
  readonly now?: () => number;
}

/** Result of {@link sendIntroduction}. */
export interface IntroductionSent {
  readonly txid: string;
  readonly vsize: number;
  readonly fee: bigint;
  readonly opReturnVout: number;
  readonly notifyVout: number;
  readonly recipient: string;
  /** Number of the introduction in the ledger. */
  readonly introduction: number;
  /** The pairwise node key carried, hex. */
  readonly nodeKey: string;
  readonly expiresAt: number | null;
  readonly endpoints: readonly string[];
}

/** The sending wallet: the drop hook and its network. */
export interface IntroducerWallet extends DropWallet {
  readonly network: Network;
}

/** Where an introduction's key and token come from, and where it is recorded. */
export interface IntroducerDeps {
  readonly ledger: IntroductionLedger;
  readonly issue: IntroductionIssuer;
}

/** Errors after which the drop was certainly not broadcast. */
const NOT_BROADCAST = new Set(['BAD_INPUT', 'BAD_ADDRESS', 'WRONG_NETWORK', 'INSUFFICIENT_FUNDS', 'FEE_TOO_HIGH', 'REJECTED']);

/**
 * Sends an introduction: checks everything, has the node issue a fresh pairwise key and token,
 * records it in the ledger, builds, signs and broadcasts the drop from the wallet, and records
 * the txid.
 * @example
 * const r = await sendIntroduction(wallet, { ledger, issue: issuerOf(keys, datadir) }, { recipient: invite, endpoints: ['ws://1.2.3.4:9000'], message: 'hi', feeRate: 2 });
 */
export async function sendIntroduction(wallet: IntroducerWallet, deps: IntroducerDeps, params: IntroductionParams): Promise<IntroductionSent> {
  const invite = parseRecipient(params.recipient, wallet.network);
  const { endpoints, message } = checkIntroduction(params);
  const now = params.now?.() ?? Math.floor(Date.now() / 1000);
  const lifetime = params.lifetimeSeconds === undefined ? DEFAULT_TOKEN_LIFETIME_SECONDS : params.lifetimeSeconds;
  const issued = deps.issue(lifetime === null ? null : now + lifetime);
  const onion = params.onionPort === undefined ? [] : [onionEndpoint(issued.nodeKey, params.onionPort)];
  const all = [...endpoints, ...onion];
  const n = deps.ledger.reserve({ nodeKey: issued.nodeKey, expiresAt: issued.expiresAt, recipient: invite.address, label: invite.label, endpoints: all });
  try {
    const sent = await sendDrop(wallet, {
      recipient: invite.recipient,
      payload: { nodeKey: issued.nodeKey, token: issued.token, expiresAt: issued.expiresAt, endpoints: all, message },
      feeRate: params.feeRate,
      notifyOutput: params.notifyOutput === true,
    }, { beforeBroadcast: (tx) => deps.ledger.markBuilt(n, tx.txid, tx.opReturnVout) });
    deps.ledger.markSent(n, sent.txid, sent.opReturnVout);
    return {
      txid: sent.txid, vsize: sent.vsize, fee: sent.fee, opReturnVout: sent.opReturnVout, notifyVout: sent.notifyVout, recipient: invite.address,
      introduction: n, nodeKey: toHex(issued.nodeKey), expiresAt: issued.expiresAt, endpoints: all,
    };
  } catch (err) {
    if (err instanceof DeaddropError && NOT_BROADCAST.has(err.code)) deps.ledger.markFailed(n);
    throw err;
  } finally {
    issued.token.fill(0);
  }
}
