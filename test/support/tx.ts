/**
 * The one raw-transaction writer of the tests, for in-memory chains and codec tests where
 * scripts are not validated. It serializes by hand (not through the code under test) so that
 * parsers are checked against an independent writer. (test/support/blockgen.ts keeps its own
 * buffer-reusing serializer: it writes thousands of transactions per benchmark block.)
 */
import { randomBytes } from 'node:crypto';
import { hex } from '@scure/base';

export interface RawInput {
  /** The spent txid, display hex (as RPCs print it). */
  readonly txid: string;
  readonly vout: number;
  readonly scriptSig?: Uint8Array;
  readonly witness?: readonly Uint8Array[];
  /** Default 0xfffffffd (RBF signalled). */
  readonly sequence?: number;
}

export interface RawOutput {
  readonly script: Uint8Array;
  readonly value: bigint;
}

export interface RawTxOptions {
  /** Default 2. */
  readonly version?: number;
  /** Default 0. */
  readonly locktime?: number;
}

function u32(n: number): number[] {
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
}

/** CompactSize: one byte below 0xfd, else 0xfd and two bytes (tests never write more). */
function varint(n: number): number[] {
  if (n < 0xfd) return [n];
  if (n > 0xffff) throw new RangeError(`varint ${n} is larger than this test writer supports`);
  return [0xfd, n & 255, n >> 8];
}

/** Serializes a transaction (BIP144 segwit form when any input has a witness). */
export function rawTx(inputs: readonly RawInput[], outputs: readonly RawOutput[], opts: RawTxOptions = {}): Uint8Array {
  const segwit = inputs.some((i) => (i.witness?.length ?? 0) > 0);
  const b: number[] = [...u32(opts.version ?? 2)];
  if (segwit) b.push(0, 1);
  b.push(...varint(inputs.length));
  for (const i of inputs) {
    b.push(...hex.decode(i.txid).reverse(), ...u32(i.vout));
    const ss = i.scriptSig ?? new Uint8Array(0);
    b.push(...varint(ss.length), ...ss, ...u32(i.sequence ?? 0xfffffffd));
  }
  b.push(...varint(outputs.length));
  for (const o of outputs) {
    const v = new Uint8Array(8);
    new DataView(v.buffer).setBigUint64(0, o.value, true);
    b.push(...v, ...varint(o.script.length), ...o.script);
  }
  if (segwit) {
    for (const i of inputs) {
      const w = i.witness ?? [];
      b.push(...varint(w.length));
      for (const item of w) b.push(...varint(item.length), ...item);
    }
  }
  b.push(...u32(opts.locktime ?? 0));
  return Uint8Array.from(b);
}

/** A version-1 coinbase paying `value` to `script`; `tag` makes sibling blocks differ. */
export function coinbaseTx(height: number, tag: number, script: Uint8Array, value: bigint): Uint8Array {
  const scriptSig = Uint8Array.from([4, ...u32(height), 4, ...u32(tag)]);
  return rawTx([{ txid: '00'.repeat(32), vout: 0xffffffff, scriptSig, sequence: 0xffffffff }], [{ script, value }], { version: 1 });
}

/** A non-witness tx spending a random (nonexistent) outpoint to `outputs`: funding for unit tests. */
export function fakePayment(outputs: readonly RawOutput[]): Uint8Array {
  return rawTx([{ txid: hex.encode(randomBytes(32)), vout: 0 }], outputs);
}

