/**
 * test/vectors/deaddrop-envelope.json: the committed vectors match the implementation, the
 * file matches its generator, and the envelope bytes match a noble-only implementation of
 * docs/protocol/deaddrop.md.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { buildDrop, openDropFromInputs, openDropWithTweak } from '../../src/deaddrop/scan.js';
import { encodeAddress, createLabel, labeledSpendKey, summarizeInputs, tweakData } from '../../src/deaddrop/bip352.js';
import { decodePayload } from '../../src/deaddrop/codec.js';
import { nobleSecp, secp } from '../../src/util/secp.js';
import {
  VECTORS_PATH, buildVectors, fromHex, toDropInput, toPayload, toView, type VectorInput, type VectorPayload,
} from '../support/envelope-vectors.js';

interface VectorCase {
  comment: string;
  given: {
    inputs: VectorInput[];
    recipient: { scan_priv_key: string; spend_priv_key: string; label: number | null; address: string };
    payload: VectorPayload;
    envelope_length: number;
    notify_output: boolean;
  };
  expected: Record<'input_pub_key_sum' | 'input_hash' | 'tweak' | 'shared_secret' | 'k_enc' | 'k_mac' | 'plaintext' | 'envelope' | 'op_return_script', string> & {
    notify_output_script: string | null;
  };
}
interface OpenCase { comment: string; scan_priv_key: string; tweak: string; envelope: string; expected_message: string | null }

const file = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as { version: number; cases: VectorCase[]; open: OpenCase[] };
const hex = (b: Uint8Array | null | undefined): string | null => (b === null || b === undefined ? null : Buffer.from(b).toString('hex'));

it('the committed file is what the generator produces', () => {
  expect(file).toEqual(JSON.parse(JSON.stringify(buildVectors())));
  expect(file.version).toBe(0);
  expect(file.cases.length).toBeGreaterThanOrEqual(4);
});

describe.each(file.cases.map((c) => [c.comment, c] as const))('%s', (_comment, c) => {
  const { given, expected } = c;
  const scanKey = fromHex(given.recipient.scan_priv_key);

  it('the sender produces exactly the expected outputs', () => {
    const B_spend = secp.pointFromScalar(fromHex(given.recipient.spend_priv_key)) as Uint8Array;
    const B_m = given.recipient.label === null ? B_spend : labeledSpendKey(B_spend, createLabel(scanKey, given.recipient.label));
    expect(encodeAddress(secp.pointFromScalar(scanKey) as Uint8Array, B_m, 'regtest')).toBe(given.recipient.address);
    const drop = buildDrop({
      inputs: given.inputs.map(toDropInput), recipient: given.recipient.address, network: 'regtest', payload: toPayload(given.payload),
      envelopeLength: given.envelope_length, notifyOutput: given.notify_output,
    });
    expect(hex(drop.envelope)).toBe(expected.envelope);
    expect(hex(drop.opReturnScript)).toBe(expected.op_return_script);
    expect(hex(drop.notifyOutputScript)).toBe(expected.notify_output_script);
    expect(drop.envelope.length).toBe(given.envelope_length);
  });

  it('the intermediate values hold, and the envelope matches a noble-only implementation', () => {
    const summary = summarizeInputs(given.inputs.map(toView), nobleSecp);
    expect(hex(summary?.A)).toBe(expected.input_pub_key_sum);
    expect(hex(summary?.inputHash)).toBe(expected.input_hash);
    expect(hex(summary === null ? null : tweakData(summary, nobleSecp))).toBe(expected.tweak);
    expect(hex(nobleSecp.sharedSecretPoint(scanKey, fromHex(expected.tweak)))).toBe(expected.shared_secret);
    const ecdh = fromHex(expected.shared_secret);
    const kEnc = schnorr.utils.taggedHash('deaddrop/v0/enc', ecdh);
    const kMac = schnorr.utils.taggedHash('deaddrop/v0/mac', ecdh);
    expect([hex(kEnc), hex(kMac)]).toEqual([expected.k_enc, expected.k_mac]);
    const plaintext = fromHex(expected.plaintext);
    const siv = hmac(sha256, kMac, plaintext).subarray(0, 8);
    const nonce = new Uint8Array(12);
    nonce.set(siv);
    expect(hex(Uint8Array.from([...siv, ...chacha20(kEnc, nonce, plaintext)]))).toBe(expected.envelope);
    expect(decodePayload(plaintext)).toMatchObject({ message: given.payload.message, endpoints: given.payload.endpoints });
  });

  it('the recipient opens it from the inputs and from tweak data, with both backends', () => {
    const spendKey = secp.pointFromScalar(fromHex(given.recipient.spend_priv_key)) as Uint8Array;
    for (const backend of [secp, nobleSecp]) {
      const got = openDropFromInputs({ scanKey, spendKey }, given.inputs.map(toView), fromHex(expected.envelope), backend);
      expect(got?.payload).toEqual({
        version: 0,
        nodeKey: fromHex(given.payload.node_key),
        token: fromHex(given.payload.token),
        expiresAt: given.payload.expires_at === null ? null : Math.ceil(given.payload.expires_at / 3600) * 3600,
        endpoints: given.payload.endpoints,
        message: given.payload.message,
      });
      expect(hex(openDropWithTweak({ scanKey }, fromHex(expected.tweak), fromHex(expected.envelope), backend)?.sharedSecret)).toBe(expected.shared_secret);
      // Unlabeled k = 0 key: equals the notify output only when the address was not labeled.
      if (given.notify_output && given.recipient.label === null) expect(hex(got?.notifyOutputKey)).toBe(expected.notify_output_script?.slice(4));
    }
  });
});

describe.each(file.open.map((c) => [c.comment, c] as const))('open: %s', (_comment, c) => {
  it('gives the expected result', () => {
    const got = openDropWithTweak({ scanKey: fromHex(c.scan_priv_key) }, fromHex(c.tweak), fromHex(c.envelope));
    expect(got?.payload.message ?? null).toBe(c.expected_message);
  });
});
