/**
 * Invites: the `deaddrop:` URI a person hands out so others can leave them dead drops, and its
 * QR code (terminal, PNG, SVG).
 *
 *   deaddrop:<silent-payment address>[?label=<text>][&birthday=<height>][&hint=<endpoint>]...
 *
 * - The address is a BIP352 address (sp1 / tsp1 / sprt1); its hrp gives the network.
 * - `label`: a human-readable name for the recipient (like BIP21's label), percent-encoded
 *   UTF-8, 1..64 characters, no control characters. Not a BIP352 label: a labeled address is
 *   already a different address.
 * - `birthday`: block height before which no drop can exist (the invite's creation height);
 *   scanners and rescans start there. Decimal, no leading zeros.
 * - `hint`: an endpoint of the recipient's own node (src/deaddrop/endpoint.ts), up to 4.
 * Parameters appear at most once each (hint up to 4 times); unknown parameters are refused.
 * `formatInvite` prints the canonical form (lower case, parameters in the order above).
 */
import QRCode from 'qrcode';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import { decodeAddress, networksForHrp, type SilentPaymentAddress } from './bip352.js';
import { normalizeEndpoint } from './endpoint.js';

export const INVITE_SCHEME = 'deaddrop';
export const MAX_LABEL_LENGTH = 64;
export const MAX_INVITE_HINTS = 4;
/** Highest birthday accepted (far beyond any real height; rejects typos such as timestamps). */
export const MAX_BIRTHDAY = 10_000_000;

/** A parsed invite. */
export interface Invite {
  /** The silent-payment address, lower case. */
  readonly address: string;
  readonly recipient: SilentPaymentAddress;
  /** Networks the address's hrp allows (tsp is testnet and signet). */
  readonly networks: readonly Network[];
  readonly label: string | null;
  readonly birthday: number | null;
  readonly hints: readonly string[];
}

/** Fields to format an invite from. */
export interface InviteInput {
  readonly address: string;
  readonly label?: string | null;
  readonly birthday?: number | null;
  readonly hints?: readonly string[];
}

function bad(message: string): DeaddropError {
  return DeaddropError.badInput(`invite: ${message}`);
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function checkLabel(label: string): string {
  const chars = [...label];
  if (chars.length === 0 || chars.length > MAX_LABEL_LENGTH) throw bad(`label must be 1..${MAX_LABEL_LENGTH} characters`);
  if (CONTROL.test(label) || /\p{Cs}/u.test(label)) throw bad('label must not contain control characters');
  return label;
}

function checkBirthday(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_BIRTHDAY) throw bad(`birthday must be a block height 0..${MAX_BIRTHDAY}`);
  return value;
}

function checkHints(hints: readonly string[]): string[] {
  if (hints.length > MAX_INVITE_HINTS) throw bad(`at most ${MAX_INVITE_HINTS} hints`);
  return hints.map((h) => normalizeEndpoint(h));
}

function parseBirthday(text: string): number {
  if (!/^(0|[1-9][0-9]{0,7})$/.test(text)) throw bad(`birthday must be a decimal block height, got ${JSON.stringify(text.slice(0, 20))}`);
  return checkBirthday(Number(text));
}

function decodeComponent(text: string, name: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw bad(`${name} is not valid percent-encoded UTF-8`);
  }
}

/**
 * Parses a `deaddrop:` URI (or a bare silent-payment address). When `network` is given the
 * address must be for it. Throws DeaddropError BAD_INPUT, BAD_ADDRESS or WRONG_NETWORK.
 * @example parseInvite('deaddrop:sprt1qq...?label=Bob&birthday=120')
 */
export function parseInvite(text: string, network?: Network): Invite {
  if (typeof text !== 'string') throw new TypeError(`invite must be a string, got ${typeof text}`);
  const trimmed = text.trim();
  if (trimmed.length > 2048) throw bad('too long');
  const colon = trimmed.indexOf(':');
  const hasScheme = colon !== -1 && trimmed.slice(0, colon).toLowerCase() === INVITE_SCHEME;
  if (!hasScheme && colon !== -1) throw bad(`scheme must be "${INVITE_SCHEME}:"`);
  const rest = hasScheme ? trimmed.slice(colon + 1) : trimmed;
  const q = rest.indexOf('?');
  const addressText = q === -1 ? rest : rest.slice(0, q);
  const recipient = decodeAddress(addressText, network);
  let label: string | null = null;
  let birthday: number | null = null;
  const hints: string[] = [];
  if (q !== -1) {
    const query = rest.slice(q + 1);
    if (query === '') throw bad('empty query');
    for (const part of query.split('&')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw bad(`malformed parameter ${JSON.stringify(part.slice(0, 20))}`);
      const key = part.slice(0, eq);
      const value = decodeComponent(part.slice(eq + 1), key);
      if (key === 'label') {
        if (label !== null) throw bad('label given twice');
        label = checkLabel(value);
      } else if (key === 'birthday') {
        if (birthday !== null) throw bad('birthday given twice');
        birthday = parseBirthday(value);
      } else if (key === 'hint') {
        hints.push(value);
      } else {
        throw bad(`unknown parameter ${JSON.stringify(key.slice(0, 20))}`);
      }
    }
  }
  return {
    address: addressText.toLowerCase(),
    recipient,
    networks: networksForHrp(recipient.hrp),
    label,
    birthday,
    hints: checkHints(hints),
  };
}

/** The canonical `deaddrop:` URI. Validates every field; throws like parseInvite. */
export function formatInvite(input: InviteInput, network?: Network): string {
  decodeAddress(input.address, network);
  const params: string[] = [];
  if (input.label !== undefined && input.label !== null) params.push(`label=${encodeURIComponent(checkLabel(input.label))}`);
  if (input.birthday !== undefined && input.birthday !== null) params.push(`birthday=${checkBirthday(input.birthday)}`);
  for (const h of checkHints(input.hints ?? [])) params.push(`hint=${encodeURIComponent(h)}`);
  return `${INVITE_SCHEME}:${input.address.toLowerCase()}${params.length > 0 ? '?' + params.join('&') : ''}`;
}

/**
 * The text a QR code carries: scheme and address upper-cased, so the long part uses the QR
 * alphanumeric mode (about 30% fewer modules); the query keeps its case.
 */
export function qrText(uri: string): string {
  const invite = parseInvite(uri);
  const q = uri.indexOf('?');
  return `${INVITE_SCHEME.toUpperCase()}:${invite.address.toUpperCase()}${q === -1 ? '' : uri.slice(q)}`;
}

const QR_OPTIONS = { errorCorrectionLevel: 'M' } as const;

/** The QR code as UTF-8 half blocks for a terminal (two modules per character cell). */
export async function inviteQrTerminal(uri: string): Promise<string> {
  return QRCode.toString(qrText(uri), { ...QR_OPTIONS, type: 'terminal', small: true });
}

/** The QR code as an SVG document. */
export async function inviteQrSvg(uri: string): Promise<string> {
  return QRCode.toString(qrText(uri), { ...QR_OPTIONS, type: 'svg', margin: 2 });
}

/** The QR code as PNG bytes (`scale` pixels per module). */
export async function inviteQrPng(uri: string, scale = 6): Promise<Uint8Array> {
  return new Uint8Array(await QRCode.toBuffer(qrText(uri), { ...QR_OPTIONS, type: 'png', scale, margin: 2 }));
}

/** Writes the QR code to `path` as PNG. */
export async function writeInviteQrPng(path: string, uri: string, scale = 6): Promise<void> {
  await QRCode.toFile(path, qrText(uri), { ...QR_OPTIONS, type: 'png', scale, margin: 2 });
}
