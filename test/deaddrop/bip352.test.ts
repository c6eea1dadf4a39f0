/**
 * The official BIP352 send and receive vectors (test/vectors/bip352/, see SOURCE.md there), run through
 * src/deaddrop/bip352.ts with both secp backends, plus address edge cases.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bech32m } from '@scure/base';
import {
  createLabel, createOutputs, decodeAddress, encodeAddress, inputPublicKey, labeledSpendKey, outpointFromHex,
  receiverSharedSecret, receiverSharedSecretFromTweak, scanOutputs, senderSharedSecret, summarizeInputs, sumPrivateKeys,
  tweakData, K_MAX, type SenderKey, type SilentPaymentAddress, type TxInputView,
} from '../../src/deaddrop/bip352.js';
import { nativeSecp, nobleSecp, wasmSecp, scalar, type Secp } from '../../src/util/secp.js';
import { isDeaddropError } from '../../src/util/errors.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const vectorsPath = path.resolve(repoRoot, 'test', 'vectors', 'bip352', 'send_and_receive_test_vectors.json');

interface Vin {
  txid: string;
  vout: number;
  scriptSig: string;
  txinwitness: string;
  prevout: { scriptPubKey: { hex: string } };
  private_key?: string;
}
interface Recipient { address: string; scan_pub_key: string; spend_pub_key: string; count?: number }
interface SendCase {
  given: { vin: Vin[]; recipients: Recipient[] };
  expected: { outputs: string[][]; shared_secrets?: (string | null)[]; input_pub_keys?: string[]; input_private_key_sum?: string };
}
interface RecvOutput { pub_key: string; priv_key_tweak: string; signature: string }
interface RecvCase {
  given: { vin: Vin[]; outputs: string[]; key_material: { scan_priv_key: string; spend_priv_key: string }; labels: number[] };
  expected: {
    addresses: string[]; outputs?: RecvOutput[]; n_outputs?: number; tweak?: string | null; shared_secret?: string | null; input_pub_key_sum?: string;
  };
}
interface Case { comment: string; sending: SendCase[]; receiving: RecvCase[] }

const cases = JSON.parse(readFileSync(vectorsPath, 'utf8')) as Case[];
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Deserializes a witness as the vectors give it: CompactSize count, then CompactSize-prefixed items. */
function parseWitness(h: string): Uint8Array[] {
  const b = hex(h);
  if (b.length === 0) return [];
  let o = 0;
  const varint = (): number => {
    const first = b[o++] as number;
    if (first < 0xfd) return first;
    const n = first === 0xfd ? 2 : first === 0xfe ? 4 : 8;
    let v = 0;
    for (let i = 0; i < n; i++) v += (b[o + i] as number) * 2 ** (8 * i);
    o += n;
    return v;
  };
  const count = varint();
  const items: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const len = varint();
    items.push(b.slice(o, o + len));
    o += len;
  }
  return items;
}

function inputView(v: Vin): TxInputView {
  return {
    outpoint: outpointFromHex(v.txid, v.vout),
    scriptSig: hex(v.scriptSig),
    witness: parseWitness(v.txinwitness),
    prevoutScript: hex(v.prevout.scriptPubKey.hex),
  };
}

const backends: Secp[] = [nativeSecp, wasmSecp, nobleSecp].filter((b): b is Secp => b !== null);

it('the native and WASM backends loaded (so the fast paths are what these vectors exercise)', () => {
  expect(nativeSecp).not.toBeNull();
  expect(wasmSecp).not.toBeNull();
  expect(cases.length).toBeGreaterThanOrEqual(28);
});

describe.each(backends.map((b) => [b.name, b] as const))('BIP352 vectors with %s', (_name, backend) => {
  describe.each(cases.map((c) => [c.comment, c] as const))('%s', (_comment, c) => {
    it.each(c.sending.map((s, i) => [i, s] as const))('sending #%i', (_i, s) => {
      const views = s.given.vin.map(inputView);
      const keys: SenderKey[] = [];
      const pubs: string[] = [];
      s.given.vin.forEach((v, i) => {
        const pub = inputPublicKey(views[i] as TxInputView, backend);
        if (pub === null) return;
        pubs.push(toHex(pub));
        keys.push({ privateKey: hex(v.private_key as string), taproot: (views[i] as TxInputView).prevoutScript[0] === 0x51 });
      });
      if (s.expected.input_pub_keys !== undefined) expect(pubs).toEqual(s.expected.input_pub_keys);

      const recipients: SilentPaymentAddress[] = [];
      for (const r of s.given.recipients) {
        const addr = decodeAddress(r.address);
        expect(toHex(addr.scanKey)).toBe(r.scan_pub_key);
        expect(toHex(addr.spendKey)).toBe(r.spend_pub_key);
        for (let n = 0; n < (r.count ?? 1); n++) recipients.push(addr);
      }
      const outpoints = views.map((v) => v.outpoint);
      const expectFail = s.expected.outputs.length === 1 && (s.expected.outputs[0] as string[]).length === 0;
      if (expectFail) {
        const attempt = (): unknown => (keys.length === 0 ? [] : createOutputs(keys, outpoints, recipients, backend));
        if (keys.length === 0) expect(attempt()).toEqual([]);
        else expect(attempt).toThrow();
        return;
      }
      if (s.expected.input_private_key_sum !== undefined) {
        expect(toHex(sumPrivateKeys(keys, backend))).toBe(s.expected.input_private_key_sum);
      }
      s.expected.shared_secrets?.forEach((ss, i) => {
        if (ss === null) return;
        const r = recipients[i] as SilentPaymentAddress;
        expect(toHex(senderSharedSecret(keys, outpoints, r.scanKey, backend))).toBe(ss);
      });
      const got = createOutputs(keys, outpoints, recipients, backend).map(toHex).sort();
      const matches = s.expected.outputs.some((set) => JSON.stringify([...set].sort()) === JSON.stringify(got));
      expect(matches, `outputs ${got.join(',')}`).toBe(true);
    });

    it.each(c.receiving.map((r, i) => [i, r] as const))('receiving #%i', (_i, r) => {
      const scanKey = hex(r.given.key_material.scan_priv_key);
      const spendPriv = hex(r.given.key_material.spend_priv_key);
      const scanPub = backend.pointFromScalar(scanKey) as Uint8Array;
      const spendPub = backend.pointFromScalar(spendPriv) as Uint8Array;
      const labels = r.given.labels.map((m) => createLabel(scanKey, m));
      const addresses = [
        encodeAddress(scanPub, spendPub, 'mainnet'),
        ...labels.map((l) => encodeAddress(scanPub, labeledSpendKey(spendPub, l), 'mainnet')),
      ];
      expect(addresses).toEqual(r.expected.addresses);

      const summary = summarizeInputs(r.given.vin.map(inputView), backend);
      const expectedCount = r.expected.n_outputs ?? r.expected.outputs?.length ?? 0;
      if (summary === null) {
        expect(expectedCount).toBe(0);
        expect(r.expected.tweak ?? null).toBeNull();
        return;
      }
      if (r.expected.input_pub_key_sum !== undefined) expect(toHex(summary.A)).toBe(r.expected.input_pub_key_sum);
      const tweak = tweakData(summary, backend) as Uint8Array;
      if (typeof r.expected.tweak === 'string') expect(toHex(tweak)).toBe(r.expected.tweak);
      const ecdh = receiverSharedSecret(scanKey, summary, backend) as Uint8Array;
      if (typeof r.expected.shared_secret === 'string') expect(toHex(ecdh)).toBe(r.expected.shared_secret);
      // The light-client path (b_scan · tweak data) reaches the same shared secret.
      expect(toHex(receiverSharedSecretFromTweak(scanKey, tweak, backend) as Uint8Array)).toBe(toHex(ecdh));

      const found = scanOutputs(ecdh, spendPub, r.given.outputs.map(hex), labels, backend);
      expect(found.length).toBe(expectedCount);
      if (r.expected.outputs === undefined || r.expected.outputs.length === 0) return;
      const want = new Map(r.expected.outputs.map((o) => [o.pub_key, o]));
      const msg = sha256(new TextEncoder().encode('message'));
      const aux = sha256(new TextEncoder().encode('random auxiliary data'));
      for (const f of found) {
        const w = want.get(toHex(f.outputKey));
        expect(w, `unexpected output ${toHex(f.outputKey)}`).toBeDefined();
        expect(toHex(f.tweak)).toBe(w?.priv_key_tweak);
        // The spending key b_spend + tweak signs for the output key.
        const d = scalar.add(spendPriv, f.tweak) as Uint8Array;
        expect(toHex(schnorr.getPublicKey(d))).toBe(toHex(f.outputKey));
        const sig = schnorr.sign(msg, d, aux);
        expect(schnorr.verify(sig, msg, f.outputKey)).toBe(true);
        expect(toHex(sig)).toBe(w?.signature);
      }
    });
  });
});

describe('silent-payment addresses', () => {
  const scan = nobleSecp.pointFromScalar(scalar.fromBigInt(7n)) as Uint8Array;
  const spend = nobleSecp.pointFromScalar(scalar.fromBigInt(11n)) as Uint8Array;

  it('round-trips on every network with its hrp', () => {
    for (const [network, hrp] of [['mainnet', 'sp'], ['testnet', 'tsp'], ['signet', 'tsp'], ['regtest', 'sprt']] as const) {
      const a = encodeAddress(scan, spend, network);
      expect(a.startsWith(`${hrp}1q`)).toBe(true);
      const d = decodeAddress(a, network);
      expect(d).toMatchObject({ hrp, version: 0 });
      expect(toHex(d.scanKey)).toBe(toHex(scan));
      expect(toHex(d.spendKey)).toBe(toHex(spend));
      expect(toHex(decodeAddress(a.toUpperCase()).spendKey)).toBe(toHex(spend));
    }
  });

  it('rejects the wrong network, v31, bad lengths, bad checksums and non-points', () => {
    const a = encodeAddress(scan, spend, 'regtest');
    expect(() => decodeAddress(a, 'mainnet')).toThrow(/expected mainnet/);
    const words = (v: number, data: Uint8Array): string => bech32m.encode('sp', [v, ...bech32m.toWords(data)], 1023);
    const data = Buffer.concat([scan, spend]);
    expect(() => decodeAddress(words(31, data))).toThrow(/reserved/);
    expect(() => decodeAddress(words(0, Buffer.concat([data, Buffer.from([1])])))).toThrow(/exactly 66/);
    expect(() => decodeAddress(words(0, data.subarray(0, 65)))).toThrow(/exactly 66/);
    // v1..v30: the first 66 bytes are read, the rest ignored.
    expect(decodeAddress(words(5, Buffer.concat([data, Buffer.alloc(10, 9)]))).version).toBe(5);
    const bad = Buffer.from(data);
    bad[0] = 0x05;
    expect(() => decodeAddress(words(0, bad))).toThrow(/not valid points/);
    const flipped = a.slice(0, -1) + (a.endsWith('q') ? 'p' : 'q');
    for (const s of [flipped, 'bc1qxyz', '', 'sp1' + 'q'.repeat(1100), a.slice(0, 10) + a.slice(10).toUpperCase()]) {
      let err: unknown;
      try {
        decodeAddress(s);
      } catch (e) {
        err = e;
      }
      expect(isDeaddropError(err, 'BAD_ADDRESS'), s.slice(0, 20)).toBe(true);
    }
  });

  it('K_MAX is the BIP value the vectors exercise', () => {
    expect(K_MAX).toBe(2323);
  });
});
