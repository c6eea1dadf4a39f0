/**
 * Sender and receiver end to end, pure: build a drop from real keys, read it back from the
 * transaction's inputs or from tweak data, and make sure nobody else reads anything.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { p2tr } from '@scure/btc-signer';
import { buildDrop, openDropFromInputs, openDropWithTweak, type DropInput } from '../../src/deaddrop/scan.js';
import {
  createLabel, encodeAddress, labeledSpendKey, scanOutputs, summarizeInputs, tweakData, type Outpoint, type TxInputView,
} from '../../src/deaddrop/bip352.js';
import { hash160, taggedHash } from '../../src/util/hash.js';
import { parseDropScript } from '../../src/deaddrop/envelope.js';
import type { DropPayloadInput } from '../../src/deaddrop/codec.js';
import { nobleSecp, scalar, secp } from '../../src/util/secp.js';
import { isDeaddropError } from '../../src/util/errors.js';

const sk = (n: number): Uint8Array => taggedHash('test/key', Uint8Array.of(n));
const pub = (d: Uint8Array): Uint8Array => secp.pointFromScalar(d) as Uint8Array;
const op = (n: number, vout = 0): Outpoint => ({ txid: taggedHash('test/txid', Uint8Array.of(n)), vout });
const sig = new Uint8Array(64).fill(0x5a);

/** A BIP86 key-path output: the tweaked private key and its P2TR script. */
function taproot(d: Uint8Array): { key: Uint8Array; script: Uint8Array } {
  const P = pub(d);
  const even = P[0] === 0x03 ? (scalar.negate(d) as Uint8Array) : d;
  const key = scalar.add(even, taggedHash('TapTweak', P.subarray(1))) as Uint8Array;
  const script = Uint8Array.from([0x51, 0x20, ...pub(key).subarray(1)]);
  expect(Buffer.from(script).equals(p2tr(P.subarray(1)).script)).toBe(true);
  return { key, script };
}

/** One spent output of each eligible kind, as sender input and as the receiver's view. */
function inputsOf(kinds: readonly ('p2tr' | 'p2wpkh' | 'p2pkh' | 'p2sh' | 'bare')[]): { send: DropInput[]; view: TxInputView[] } {
  const send: DropInput[] = [];
  const view: TxInputView[] = [];
  kinds.forEach((kind, i) => {
    const d = sk(100 + i);
    const P = pub(d);
    const outpoint = op(i, i % 3);
    if (kind === 'p2tr') {
      const t = taproot(d);
      send.push({ outpoint, prevoutScript: t.script, privateKey: t.key });
      view.push({ outpoint, prevoutScript: t.script, scriptSig: new Uint8Array(0), witness: [sig] });
    } else if (kind === 'p2wpkh') {
      const script = Uint8Array.from([0x00, 0x14, ...hash160(P)]);
      send.push({ outpoint, prevoutScript: script, privateKey: d });
      view.push({ outpoint, prevoutScript: script, scriptSig: new Uint8Array(0), witness: [sig, P] });
    } else if (kind === 'p2pkh') {
      const script = Uint8Array.from([0x76, 0xa9, 0x14, ...hash160(P), 0x88, 0xac]);
      send.push({ outpoint, prevoutScript: script, privateKey: d });
      view.push({ outpoint, prevoutScript: script, scriptSig: Uint8Array.from([0x40, ...sig, 0x21, ...P]), witness: [] });
    } else if (kind === 'p2sh') {
      const redeem = Uint8Array.from([0x00, 0x14, ...hash160(P)]);
      const script = Uint8Array.from([0xa9, 0x14, ...hash160(redeem), 0x87]);
      send.push({ outpoint, prevoutScript: script, privateKey: d });
      view.push({ outpoint, prevoutScript: script, scriptSig: Uint8Array.from([0x16, ...redeem]), witness: [sig, P] });
    } else {
      const script = Uint8Array.from([0x51, 0x21, ...P, 0x51, 0xae]); // bare 1-of-1 multisig: not eligible
      send.push({ outpoint, prevoutScript: script });
      view.push({ outpoint, prevoutScript: script, scriptSig: Uint8Array.from([0x00, 0x40, ...sig]), witness: [] });
    }
  });
  return { send, view };
}

const bob = { scanKey: sk(1), spendPriv: sk(2) };
const bobSpend = pub(bob.spendPriv);
const bobAddress = encodeAddress(pub(bob.scanKey), bobSpend, 'regtest');
const carol = { scanKey: sk(3) };

const payload: DropPayloadInput = {
  nodeKey: new Uint8Array(32).fill(0xab),
  token: Uint8Array.from([9, 8, 7, 6, 5, 4, 3, 2]),
  expiresAt: 1_800_000_000,
  endpoints: ['ws://203.0.113.5:7777'],
  message: 'hello Bob, this is A',
};

describe('round trip', () => {
  it.each([
    [['p2tr'] as const],
    [['p2tr', 'p2tr'] as const],
    [['p2wpkh', 'p2tr', 'p2pkh', 'p2sh', 'bare'] as const],
  ])('Bob opens a drop from %j inputs, by inputs and by tweak data; Carol sees nothing', (kinds) => {
    const { send, view } = inputsOf(kinds);
    const drop = buildDrop({ inputs: send, recipient: bobAddress, network: 'regtest', payload });
    expect(drop.opReturnScript.length).toBe(83);
    expect(drop.notifyOutputScript).toBeNull();
    const envelope = parseDropScript(drop.opReturnScript) as Uint8Array;

    const viaInputs = openDropFromInputs({ scanKey: bob.scanKey, spendKey: bobSpend }, view, envelope);
    expect(viaInputs?.payload).toMatchObject({ message: payload.message, endpoints: payload.endpoints, expiresAt: 1_800_000_000 });
    const tweak = tweakData(summarizeInputs(view) as NonNullable<ReturnType<typeof summarizeInputs>>) as Uint8Array;
    const viaTweak = openDropWithTweak({ scanKey: bob.scanKey }, tweak, envelope);
    expect(viaTweak?.payload).toEqual(viaInputs?.payload);
    expect(viaTweak?.notifyOutputKey).toBeNull();

    expect(openDropFromInputs({ scanKey: carol.scanKey }, view, envelope)).toBeNull();
    expect(openDropWithTweak({ scanKey: carol.scanKey }, tweak, envelope)).toBeNull();
    // The same results through the pure-JS backend.
    expect(openDropFromInputs({ scanKey: bob.scanKey }, view, envelope, nobleSecp)?.payload).toEqual(viaInputs?.payload);
  });

  it('a receiver that misses an input (or sees a different set) reads nothing', () => {
    const { send, view } = inputsOf(['p2tr', 'p2wpkh']);
    const env = buildDrop({ inputs: send, recipient: bobAddress, payload }).envelope;
    expect(openDropFromInputs({ scanKey: bob.scanKey }, view.slice(0, 1), env)).toBeNull();
  });

  it('the notify output is BIP352 output k = 0, which silent-payment scanning finds', () => {
    const { send, view } = inputsOf(['p2tr']);
    const drop = buildDrop({ inputs: send, recipient: bobAddress, payload, notifyOutput: true });
    const outputKey = (drop.notifyOutputScript as Uint8Array).subarray(2);
    expect(drop.notifyOutputScript?.subarray(0, 2)).toEqual(Uint8Array.of(0x51, 0x20));
    const opened = openDropFromInputs({ scanKey: bob.scanKey, spendKey: bobSpend }, view, drop.envelope);
    expect(opened?.notifyOutputKey).toEqual(outputKey);
    const found = scanOutputs(opened?.sharedSecret as Uint8Array, bobSpend, [outputKey, new Uint8Array(32).fill(1)]);
    expect(found.map((f) => [f.k, f.label])).toEqual([[0, null]]);
    // Bob can spend it with b_spend + t_0.
    const d = scalar.add(bob.spendPriv, (found[0] as { tweak: Uint8Array }).tweak) as Uint8Array;
    expect(pub(d).subarray(1)).toEqual(outputKey);
  });

  it('works with a labeled address: same envelope key, the notify output carries the label', () => {
    const label = createLabel(bob.scanKey, 7);
    const labeled = encodeAddress(pub(bob.scanKey), labeledSpendKey(bobSpend, label), 'regtest');
    const { send, view } = inputsOf(['p2tr', 'p2wpkh']);
    const drop = buildDrop({ inputs: send, recipient: labeled, payload, notifyOutput: true });
    const opened = openDropFromInputs({ scanKey: bob.scanKey, spendKey: bobSpend }, view, drop.envelope);
    expect(opened?.payload.message).toBe(payload.message);
    const found = scanOutputs(opened?.sharedSecret as Uint8Array, bobSpend, [(drop.notifyOutputScript as Uint8Array).subarray(2)], [
      createLabel(bob.scanKey, 0),
      label,
    ]);
    expect(found.map((f) => f.label)).toEqual([7]);
  });

  it('shorter envelopes work too', () => {
    const { send, view } = inputsOf(['p2tr']);
    const drop = buildDrop({ inputs: send, recipient: bobAddress, payload: { ...payload, message: 'hi' }, envelopeLength: 61 });
    expect(drop.envelope.length).toBe(61);
    expect(openDropFromInputs({ scanKey: bob.scanKey }, view, drop.envelope)?.payload.message).toBe('hi');
  });
});

describe('sender validation', () => {
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      return isDeaddropError(e) ? e.code : String(e);
    }
    return undefined;
  };
  const { send } = inputsOf(['p2tr', 'p2wpkh']);
  const [tr, wpkh] = send as [DropInput, DropInput];

  it('refuses keys that do not match, missing keys, the untweaked key and witness v2+', () => {
    expect(code(() => buildDrop({ inputs: [{ ...tr, privateKey: sk(100) }], recipient: bobAddress, payload }))).toBe('BAD_INPUT');
    expect(code(() => buildDrop({ inputs: [{ ...wpkh, privateKey: sk(55) }], recipient: bobAddress, payload }))).toBe('BAD_INPUT');
    expect(code(() => buildDrop({ inputs: [{ outpoint: wpkh.outpoint, prevoutScript: wpkh.prevoutScript }], recipient: bobAddress, payload }))).toBe('BAD_INPUT');
    const v2 = { outpoint: op(9), prevoutScript: Uint8Array.from([0x52, 0x20, ...new Uint8Array(32)]) };
    expect(code(() => buildDrop({ inputs: [tr, v2], recipient: bobAddress, payload }))).toBe('BAD_INPUT');
    expect(code(() => buildDrop({ inputs: [], recipient: bobAddress, payload }))).toBe('BAD_INPUT');
    const bare = inputsOf(['bare']).send;
    expect(code(() => buildDrop({ inputs: bare, recipient: bobAddress, payload }))).toBe('BAD_INPUT');
  });

  it('checks the address and its network', () => {
    expect(code(() => buildDrop({ inputs: [tr], recipient: bobAddress, network: 'mainnet', payload }))).toBe('WRONG_NETWORK');
    expect(code(() => buildDrop({ inputs: [tr], recipient: 'sprt1qqqq', payload }))).toBe('BAD_ADDRESS');
  });

  it('says how many bytes an oversized introduction needs', () => {
    expect(() => buildDrop({ inputs: [tr], recipient: bobAddress, payload: { ...payload, message: 'x'.repeat(40) } })).toThrow(/needs 91 bytes, only 72 fit/);
  });
});

describe('the receiver never throws on chain data', () => {
  const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max });
  const spk = fc.oneof(
    bytes(40),
    bytes(32).map((b) => Uint8Array.from([0x51, 0x20, ...b, ...new Uint8Array(32 - b.length)])),
    bytes(20).map((b) => Uint8Array.from([0x00, 0x14, ...b, ...new Uint8Array(20 - b.length)])),
  );
  const input = fc.record({
    outpoint: fc.record({ txid: fc.uint8Array({ minLength: 31, maxLength: 33 }), vout: fc.oneof(fc.nat({ max: 2 ** 32 - 1 }), fc.integer(), fc.double()) }),
    prevoutScript: spk,
    scriptSig: bytes(120),
    witness: fc.array(bytes(70), { maxLength: 4 }),
  });

  it('random inputs, tweak data and envelopes', () => {
    fc.assert(
      fc.property(fc.array(input, { maxLength: 4 }), bytes(90), bytes(34), (inputs, envelope, tweak) => {
        expect(openDropFromInputs({ scanKey: bob.scanKey, spendKey: bobSpend }, inputs, envelope)).toBeNull();
        expect(openDropWithTweak({ scanKey: bob.scanKey }, tweak, envelope)).toBeNull();
      }),
      { numRuns: 500 },
    );
  });
});
