/**
 * Builds test/vectors/deaddrop-envelope.json: fixed keys and outpoints in, every intermediate
 * value and the OP_RETURN bytes out. Run `npx tsx test/support/envelope-vectors.ts --write`
 * to regenerate after a deliberate protocol change; test/deaddrop/vectors.test.ts checks the
 * committed file against the implementation (and the envelope against noble-only code).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '@noble/hashes/sha2.js';
import { buildDrop, type DropInput } from '../../src/deaddrop/scan.js';
import {
  createLabel, encodeAddress, labeledSpendKey, outpointFromHex, receiverSharedSecret, summarizeInputs, tweakData, type TxInputView,
} from '../../src/deaddrop/bip352.js';
import { envelopeKeys, open } from '../../src/deaddrop/envelope.js';
import { hash160, taggedHash } from '../../src/util/hash.js';
import { onionAddress } from '../../src/deaddrop/endpoint.js';
import type { DropPayloadInput } from '../../src/deaddrop/codec.js';
import { scalar, secp } from '../../src/util/secp.js';

export const VECTORS_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'vectors', 'deaddrop-envelope.json');

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const key = (label: string): Uint8Array => sha256(new TextEncoder().encode(`deaddrop vector key ${label}`));
const txid = (label: string): string => hex(sha256(new TextEncoder().encode(`deaddrop vector tx ${label}`)));
const pub = (d: Uint8Array): Uint8Array => secp.pointFromScalar(d) as Uint8Array;
const SIG = new Uint8Array(64).fill(0x5a);

export interface VectorInput {
  txid: string;
  vout: number;
  prevout_script: string;
  script_sig: string;
  witness: string[];
  /** For the sender; for P2TR the tweaked (output) key. Absent for inputs that do not count. */
  private_key?: string;
}

function p2tr(label: string, t: string, vout: number): VectorInput {
  const d = key(label);
  const P = pub(d);
  const even = P[0] === 0x03 ? (scalar.negate(d) as Uint8Array) : d;
  const tweaked = scalar.add(even, taggedHash('TapTweak', P.subarray(1))) as Uint8Array;
  const script = Uint8Array.from([0x51, 0x20, ...pub(tweaked).subarray(1)]);
  return { txid: t, vout, prevout_script: hex(script), script_sig: '', witness: [hex(SIG)], private_key: hex(tweaked) };
}

function p2wpkh(label: string, t: string, vout: number): VectorInput {
  const d = key(label);
  const script = Uint8Array.from([0x00, 0x14, ...hash160(pub(d))]);
  return { txid: t, vout, prevout_script: hex(script), script_sig: '', witness: [hex(SIG), hex(pub(d))], private_key: hex(d) };
}

function p2pkh(label: string, t: string, vout: number): VectorInput {
  const d = key(label);
  const script = Uint8Array.from([0x76, 0xa9, 0x14, ...hash160(pub(d)), 0x88, 0xac]);
  return { txid: t, vout, prevout_script: hex(script), script_sig: hex(Uint8Array.from([0x40, ...SIG, 0x21, ...pub(d)])), witness: [], private_key: hex(d) };
}

function p2shP2wpkh(label: string, t: string, vout: number): VectorInput {
  const d = key(label);
  const redeem = Uint8Array.from([0x00, 0x14, ...hash160(pub(d))]);
  const script = Uint8Array.from([0xa9, 0x14, ...hash160(redeem), 0x87]);
  return { txid: t, vout, prevout_script: hex(script), script_sig: hex(Uint8Array.from([0x16, ...redeem])), witness: [hex(SIG), hex(pub(d))], private_key: hex(d) };
}

export const fromHex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

export function toView(i: VectorInput): TxInputView {
  return { outpoint: outpointFromHex(i.txid, i.vout), prevoutScript: fromHex(i.prevout_script), scriptSig: fromHex(i.script_sig), witness: i.witness.map(fromHex) };
}

export function toDropInput(i: VectorInput): DropInput {
  const base = { outpoint: outpointFromHex(i.txid, i.vout), prevoutScript: fromHex(i.prevout_script) };
  return i.private_key === undefined ? base : { ...base, privateKey: fromHex(i.private_key) };
}

export interface VectorPayload {
  node_key: string;
  token: string;
  expires_at: number | null;
  endpoints: string[];
  message: string;
}

export function toPayload(p: VectorPayload): DropPayloadInput {
  return { nodeKey: fromHex(p.node_key), token: fromHex(p.token), expiresAt: p.expires_at, endpoints: p.endpoints, message: p.message };
}

interface CaseSpec {
  comment: string;
  inputs: VectorInput[];
  label: number | null;
  payload: VectorPayload;
  envelopeLength: number;
  notifyOutput: boolean;
}

const scanKey = key('bob scan');
const spendKey = key('bob spend');
const nodeKey = hex(sha256(new TextEncoder().encode('deaddrop vector node key')));

const specs: CaseSpec[] = [
  {
    comment: 'one P2TR key-path input, IPv4 hint, message, notify output, 80 bytes',
    inputs: [p2tr('alice 1', txid('a'), 0)],
    label: null,
    payload: { node_key: nodeKey, token: '0102030405060708', expires_at: 1_767_225_600, endpoints: ['ws://203.0.113.5:7777'], message: 'hello Bob, this is A' },
    envelopeLength: 80,
    notifyOutput: true,
  },
  {
    comment: 'P2TR and P2WPKH inputs, the smallest outpoint second; wss host hint, no expiry',
    inputs: [p2tr('alice 2', txid('b'), 1), p2wpkh('alice 3', txid('b'), 0)],
    label: null,
    payload: { node_key: nodeKey, token: 'a1a2a3a4a5a6a7a8', expires_at: null, endpoints: ['wss://relay.example.org'], message: 'see you' },
    envelopeLength: 80,
    notifyOutput: false,
  },
  {
    comment: 'P2PKH and P2SH-P2WPKH inputs, onion service at the node key and IPv6 hints, empty message, 75-byte envelope (direct push)',
    inputs: [p2pkh('alice 4', txid('c'), 3), p2shP2wpkh('alice 5', txid('d'), 0)],
    label: null,
    payload: {
      node_key: nodeKey, token: 'ffffffffffffffff', expires_at: 1_800_000_000,
      endpoints: [`ws://${onionAddress(fromHex(nodeKey))}.onion`, 'ws://[2001:db8::7]:9735'], message: '',
    },
    envelopeLength: 75,
    notifyOutput: false,
  },
  {
    comment: 'labeled address (m = 1): same envelope key, notify output to the labeled spend key; a bare-multisig input that does not count',
    inputs: [p2tr('alice 6', txid('e'), 0), { txid: txid('f'), vout: 0, prevout_script: hex(Uint8Array.from([0x51, 0x21, ...pub(key('x')), 0x51, 0xae])), script_sig: '0040' + hex(SIG), witness: [] }],
    label: 1,
    payload: { node_key: nodeKey, token: '0000000000000001', expires_at: 3600, endpoints: [], message: 'via label 1' },
    envelopeLength: 80,
    notifyOutput: true,
  },
  {
    comment: 'mixnet hint (type 08: answer over the mixnet at this provider, mailbox = node key) and no IP endpoint, 19-byte message',
    inputs: [p2wpkh('alice 7', txid('9'), 2)],
    label: null,
    payload: { node_key: nodeKey, token: '1122334455667788', expires_at: 1_767_225_600, endpoints: ['mixnet:' + hex(sha256(new TextEncoder().encode('vector provider'))).slice(0, 16)], message: 'answer me privately' },
    envelopeLength: 80,
    notifyOutput: false,
  },
];

function buildCase(spec: CaseSpec): Record<string, unknown> {
  const B_scan = pub(scanKey);
  const B_spend = pub(spendKey);
  const B_m = spec.label === null ? B_spend : labeledSpendKey(B_spend, createLabel(scanKey, spec.label));
  const address = encodeAddress(B_scan, B_m, 'regtest');
  const drop = buildDrop({
    inputs: spec.inputs.map(toDropInput), recipient: address, network: 'regtest', payload: toPayload(spec.payload),
    envelopeLength: spec.envelopeLength, notifyOutput: spec.notifyOutput,
  });
  const summary = summarizeInputs(spec.inputs.map(toView));
  if (summary === null) throw new Error('vector inputs are not eligible');
  const ecdh = receiverSharedSecret(scanKey, summary) as Uint8Array;
  const keys = envelopeKeys(ecdh);
  return {
    comment: spec.comment,
    given: {
      inputs: spec.inputs,
      recipient: { scan_priv_key: hex(scanKey), spend_priv_key: hex(spendKey), label: spec.label, address },
      payload: spec.payload,
      envelope_length: spec.envelopeLength,
      notify_output: spec.notifyOutput,
    },
    expected: {
      input_pub_key_sum: hex(summary.A),
      input_hash: hex(summary.inputHash),
      tweak: hex(tweakData(summary) as Uint8Array),
      shared_secret: hex(ecdh),
      k_enc: hex(keys.enc),
      k_mac: hex(keys.mac),
      plaintext: hex(open(keys, drop.envelope) as Uint8Array),
      envelope: hex(drop.envelope),
      op_return_script: hex(drop.opReturnScript),
      notify_output_script: drop.notifyOutputScript === null ? null : hex(drop.notifyOutputScript),
    },
  };
}

/** The whole vector file as an object. */
export function buildVectors(): Record<string, unknown> {
  const cases = specs.map(buildCase);
  const first = cases[0] as { expected: { tweak: string; envelope: string } };
  const tampered = fromHex(first.expected.envelope);
  tampered[40] = (tampered[40] as number) ^ 0x01;
  return {
    description:
      'deaddrop v0 envelope vectors (docs/protocol/deaddrop.md). Txids are display hex as RPCs print them; ' +
      'private keys of P2TR inputs are the tweaked output keys. "open" cases give tweak data, a scan key and envelope bytes.',
    version: 0,
    network: 'regtest',
    cases,
    open: [
      { comment: 'the recipient opens case 0 from tweak data', scan_priv_key: hex(scanKey), tweak: first.expected.tweak, envelope: first.expected.envelope, expected_message: specs[0]?.payload.message },
      { comment: 'a third party (another scan key) sees nothing', scan_priv_key: hex(key('carol scan')), tweak: first.expected.tweak, envelope: first.expected.envelope, expected_message: null },
      { comment: 'one flipped bit: nothing', scan_priv_key: hex(scanKey), tweak: first.expected.tweak, envelope: hex(tampered), expected_message: null },
      { comment: '80 bytes of unrelated data: nothing', scan_priv_key: hex(scanKey), tweak: first.expected.tweak, envelope: hex(sha256(new Uint8Array(1))) + hex(sha256(new Uint8Array(2))).slice(0, 96), expected_message: null },
    ],
  };
}

if (process.argv.includes('--write')) {
  writeFileSync(VECTORS_PATH, JSON.stringify(buildVectors(), null, 2) + '\n');
  console.log(`wrote ${VECTORS_PATH}`);
}
