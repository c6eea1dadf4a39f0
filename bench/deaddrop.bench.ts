/**
 * Dead-drop costs.
 *
 * 1. Trial decryptions per second on one core: what the watcher does per candidate
 *    transaction (ECDH with the scan key, two tagged hashes, ChaCha20, HMAC check) on 80-byte
 *    envelopes that are not for us, the common case. Measured with the chosen fast path
 *    (WASM libsecp256k1) and, side by side in the same run, with @noble/curves doing the point
 *    multiplication and everything else identical. Both the full-node form (A and input_hash
 *    from the inputs) and the light-client form (tweak data from the index) are reported, and
 *    the bare point multiplication too, so the symmetric overhead is visible.
 * 2. Drop transaction size for an 80-byte envelope from one P2TR key-path input, without
 *    change, with change, and with change plus the 330-sat notify output: real transactions
 *    built and signed with @scure/btc-signer, then checked by opening the drop from them.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { p2tr } from '@scure/btc-signer/payment.js';
import { Transaction } from '@scure/btc-signer/transaction.js';
import { buildDrop, openDropFromInputs, openDropWithSummary, openDropWithTweak } from '../src/deaddrop/scan.js';
import { encodeAddress, outpointFromHex, summarizeInputs, tweakData, type InputSummary } from '../src/deaddrop/bip352.js';
import { taggedHash } from '../src/util/hash.js';
import { nativeSecp, nobleSecp, scalar, wasmSecp, type Secp } from '../src/util/secp.js';
import { round } from './measure.js';
import type { Emit } from './types.js';

const key = (label: string, i = 0): Uint8Array => taggedHash('bench/deaddrop', new TextEncoder().encode(`${label} ${i}`));
const CANDIDATES = 64;

interface Candidate {
  summary: InputSummary;
  tweak: Uint8Array;
  envelope: Uint8Array;
}

/** Candidate transactions from other senders to other people: random-looking 80-byte envelopes. */
function candidates(backend: Secp): Candidate[] {
  return Array.from({ length: CANDIDATES }, (_, i) => {
    const A = backend.pointFromScalar(key('input', i)) as Uint8Array;
    const summary = { A, inputHash: key('hash', i) };
    const envelope = Uint8Array.from([...key('env-a', i), ...key('env-b', i), ...key('env-c', i).subarray(0, 16)]);
    return { summary, tweak: tweakData(summary, backend) as Uint8Array, envelope };
  });
}

/**
 * Rate (per second) of `trial` over the candidates, timed in batches for `ms` milliseconds.
 * `trial` returns whether the result was the expected one (a decoy must not open).
 */
function rate(trial: (c: Candidate) => boolean, list: readonly Candidate[], ms: number): number {
  for (let i = 0; i < 8; i++) trial(list[i % list.length] as Candidate); // warm up
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 16; i++, n++) {
      if (!trial(list[n % list.length] as Candidate)) throw new Error('bench: unexpected result');
    }
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Alternates fast and anchor for `rounds` rounds and returns the medians. */
function sideBySide(fast: () => number, anchor: () => number, rounds = 5): { fast: number; anchor: number } {
  const f: number[] = [];
  const a: number[] = [];
  for (let r = 0; r < rounds; r++) {
    f.push(fast());
    a.push(anchor());
  }
  return { fast: median(f), anchor: median(a) };
}

/** Both paths must open a real drop, or the rates below would measure a broken check. */
function assertOpensRealDrop(scanKey: Uint8Array, wasm: Secp): void {
  const d = key('sender');
  const P = wasm.pointFromScalar(d) as Uint8Array;
  const prevoutScript = Uint8Array.from([0x51, 0x20, ...P.subarray(1)]);
  const outpoint = outpointFromHex(bytesToHex(key('sender tx')), 1);
  const address = encodeAddress(wasm.pointFromScalar(scanKey) as Uint8Array, P, 'regtest');
  const drop = buildDrop({ inputs: [{ outpoint, prevoutScript, privateKey: d }], recipient: address, payload: { nodeKey: key('n'), token: key('t').subarray(0, 8) } });
  const view = { outpoint, prevoutScript, scriptSig: new Uint8Array(0), witness: [new Uint8Array(64)] };
  const summary = summarizeInputs([view]) as InputSummary;
  for (const b of [wasm, nobleSecp]) {
    if (openDropWithSummary({ scanKey }, summary, drop.envelope, b) === null) throw new Error(`bench: ${b.name} cannot open a real drop`);
  }
}

/** Trial-decryption rates of `wasm` (any fast backend) beside noble; `suffix` tells the backends' lines apart. */
function trials(emit: Emit, wasm: Secp, suffix = ''): void {
  const scanKey = key('scan');
  assertOpensRealDrop(scanKey, wasm);
  const list = candidates(wasm);
  const anchor = '@noble/curves point multiplication, same pipeline, same run';
  const full = sideBySide(
    () => rate((c) => openDropWithSummary({ scanKey }, c.summary, c.envelope, wasm) === null, list, 400),
    () => rate((c) => openDropWithSummary({ scanKey }, c.summary, c.envelope, nobleSecp) === null, list, 600),
  );
  emit({ name: `deaddrop.trial_decrypt.full_node${suffix}`, unit: 'trials/s', value: round(full.fast), anchor, anchorValue: round(full.anchor), ratio: round(full.fast / full.anchor) });
  const light = sideBySide(
    () => rate((c) => openDropWithTweak({ scanKey }, c.tweak, c.envelope, wasm) === null, list, 400),
    () => rate((c) => openDropWithTweak({ scanKey }, c.tweak, c.envelope, nobleSecp) === null, list, 600),
  );
  emit({ name: `deaddrop.trial_decrypt.tweak_data${suffix}`, unit: 'trials/s', value: round(light.fast), anchor, anchorValue: round(light.anchor), ratio: round(light.fast / light.anchor) });
  const mult = (b: Secp) => (c: Candidate): boolean => b.sharedSecretPoint(scanKey, c.tweak) !== null;
  const ecdh = sideBySide(() => rate(mult(wasm), list, 300), () => rate(mult(nobleSecp), list, 500));
  emit({ name: `deaddrop.ecdh${suffix}`, unit: 'mult/s', value: round(ecdh.fast), anchor: '@noble/curves Point.multiply', anchorValue: round(ecdh.anchor), ratio: round(ecdh.fast / ecdh.anchor) });
}

/** Signs a real drop transaction from one BIP86 input and returns its vsize (and checks it opens). */
function dropVsize(change: boolean, notify: boolean): number {
  const internal = key('wallet');
  const pk = schnorr.getPublicKey(internal);
  const spk = p2tr(pk).script;
  const P = nobleSecp.pointFromScalar(internal) as Uint8Array;
  const even = P[0] === 0x03 ? (scalar.negate(internal) as Uint8Array) : internal;
  const tweaked = scalar.add(even, taggedHash('TapTweak', pk)) as Uint8Array;
  const txid = bytesToHex(key('funding'));
  const scanKey = key('bob scan');
  const spendKey = nobleSecp.pointFromScalar(key('bob spend')) as Uint8Array;
  const address = encodeAddress(nobleSecp.pointFromScalar(scanKey) as Uint8Array, spendKey, 'regtest');
  const drop = buildDrop({
    inputs: [{ outpoint: outpointFromHex(txid, 0), prevoutScript: spk, privateKey: tweaked }],
    recipient: address,
    payload: { nodeKey: key('node'), token: key('token').subarray(0, 8), expiresAt: 1_800_000_000, endpoints: ['ws://203.0.113.5:7777'], message: 'hello from the bench!' },
    notifyOutput: notify,
  });
  if (drop.envelope.length !== 80) throw new Error('bench: expected an 80-byte envelope');
  const tx = new Transaction({ allowUnknownOutputs: true });
  tx.addInput({ txid, index: 0, witnessUtxo: { script: spk, amount: 100_000n }, tapInternalKey: pk });
  tx.addOutput({ script: drop.opReturnScript, amount: 0n });
  if (notify) tx.addOutput({ script: drop.notifyOutputScript as Uint8Array, amount: 330n });
  if (change) tx.addOutput({ script: p2tr(schnorr.getPublicKey(key('change'))).script, amount: 99_000n });
  tx.sign(internal);
  tx.finalize();
  // The receiver opens it from what the signed transaction shows.
  const input = tx.getInput(0);
  const view = { outpoint: outpointFromHex(txid, 0), prevoutScript: spk, scriptSig: new Uint8Array(0), witness: input.finalScriptWitness ?? [] };
  if (openDropFromInputs({ scanKey }, [view], drop.envelope) === null) throw new Error('bench: the drop does not open from its own transaction');
  if (summarizeInputs([view]) === null) throw new Error('bench: input not eligible');
  return tx.vsize;
}

export async function run(emit: Emit): Promise<void> {
  if (nativeSecp === null) throw new Error('bench: the native secp256k1 addon did not load; nothing to compare');
  if (wasmSecp === null) throw new Error('bench: tiny-secp256k1 (WASM) did not load; nothing to compare');
  // The default backend (native libsecp256k1) under the plain names; the WASM fallback beside it.
  trials(emit, nativeSecp);
  trials(emit, wasmSecp, '.wasm');
  emit({ name: 'deaddrop.drop_tx.vsize.no_change', unit: 'vB', value: dropVsize(false, false), anchor: 'issue target (at most)', anchorValue: 160, ratio: round(dropVsize(false, false) / 160) });
  emit({ name: 'deaddrop.drop_tx.vsize.change', unit: 'vB', value: dropVsize(true, false), anchor: 'issue target (at most)', anchorValue: 205, ratio: round(dropVsize(true, false) / 205) });
  emit({ name: 'deaddrop.drop_tx.vsize.change_notify', unit: 'vB', value: dropVsize(true, true) });
}
