/**
 * A chain of valid mainnet-like regtest blocks, built as raw bytes and handed to a real node with
 * `submitblock`: far faster than funding and broadcasting 3,000 transactions a block through a
 * wallet, and the node still checks every block (consensus, not policy).
 *
 * Shape: `maturity` small blocks whose coinbases pay an anyone-can-spend P2WSH(OP_TRUE), then
 * `count` big blocks. Big block k:
 * - tx 1 (fan-out) spends the coinbase of block k - maturity into one output per other tx;
 * - most txs spend one fan-out output with a P2WSH witness script `<pad> OP_DROP OP_1` (no
 *   signature; the pad makes the block about 1.4 MB and 3,000 txs, under 4M weight units);
 *   1,120 of them carry a Runestone (`OP_RETURN OP_13 …`), 30 a short OP_RETURN (32-byte hash);
 * - `candidates` txs spend a P2TR key-path output (a real BIP341 signature) created by a filler
 *   tx of the previous big block (of the fan-out for the first), and carry one OP_RETURN of
 *   52-80 bytes (drop-sized): random bytes, except `dropsPerBlock` real drops to `recipient`.
 *
 * So a watcher finds ~50 candidates per block with eligible inputs whose prevouts the node
 * knows (spread over 50 previous txs, as on mainnet), and a few drops.
 */
import { signSchnorr, xOnlyPointFromScalar } from 'tiny-secp256k1';
import { createHash } from 'node:crypto';
import { buildDrop } from '../../src/deaddrop/scan.js';
import type { DropPayloadInput } from '../../src/deaddrop/codec.js';
import { displayHex, merkleRoot, prng, serializeTx, sha256d, type GenInput, type GenOutput, type GenTx } from './blockgen.js';

/** Regtest genesis (Core and btcd). */
export const REGTEST_GENESIS_HASH = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206';
/** Block times start here: past btcd's P2SH switch-over date (2012), which it decides by timestamp. */
const TIME_BASE = 1_700_000_000;

export interface ChainGenOptions {
  /** Big blocks. Default 200. */
  readonly count?: number;
  /** Txs per big block, coinbase included. Default 3,000. */
  readonly txCount?: number;
  /** Drop-sized OP_RETURN candidates per big block. Default 50. */
  readonly candidates?: number;
  /** Runestone txs per big block. Default 1,120. */
  readonly runestones?: number;
  /** Real drops per big block (among the candidates). Default 1. */
  readonly dropsPerBlock?: number;
  /** Silent-payment address the real drops are for (required when dropsPerBlock > 0). */
  readonly recipient?: string;
  /** Filler witness pad (bytes, <= 520). Default 310 (about 1.4 MB blocks). */
  readonly pad?: number;
  readonly seed?: number;
  /** Hash of the block at height 0 (display hex). Default the regtest genesis. */
  readonly genesisHash?: string;
}

/** One block to submit, and what it holds. */
export interface ChainBlock {
  readonly height: number;
  readonly hash: string;
  readonly raw: Uint8Array;
  /** Drops to the recipient: txid and message. */
  readonly drops: readonly { readonly txid: string; readonly message: string }[];
}

/** Small blocks before the first big one (coinbase maturity is 100). */
export const MATURITY = 101;

const OP_TRUE_WSH = p2wsh(Uint8Array.of(0x51));

function cat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function p2wsh(script: Uint8Array): Uint8Array {
  return cat([0x00, 0x20], sha256(script));
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

function u64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

function cs(n: number): number[] {
  return n < 0xfd ? [n] : [0xfd, n & 0xff, n >>> 8];
}

/** BIP34 height push (CScriptNum; 1..16 as OP_N, as Core's `CScript() << height`). */
function heightPush(h: number): number[] {
  if (h >= 1 && h <= 16) return [0x50 + h];
  const bytes: number[] = [];
  for (let v = h; v > 0; v = Math.floor(v / 256)) bytes.push(v & 0xff);
  if (bytes[bytes.length - 1]! & 0x80) bytes.push(0);
  return [bytes.length, ...bytes];
}

/** BIP341 key-path sighash (SIGHASH_DEFAULT) of input 0 of a one-input tx. */
function taprootSighash(tx: GenTx, prevScript: Uint8Array, prevValue: number): Uint8Array {
  const i = tx.inputs[0]!;
  const outs = cat(...tx.outputs.map((o) => cat(u64(o.value), cs(o.script.length), o.script)));
  const msg = cat(
    [0x00, 0x00], u32(tx.version), u32(tx.locktime),
    sha256(cat(i.prevTxid, u32(i.vout))), sha256(u64(prevValue)), sha256(cat(cs(prevScript.length), prevScript)),
    sha256(Uint8Array.from(u32(i.sequence))), sha256(outs), [0x00], u32(0),
  );
  const tag = sha256(new TextEncoder().encode('TapSighash'));
  return sha256(tag, tag, msg);
}

interface Coin {
  readonly txid: Uint8Array; // internal order
  readonly vout: number;
  readonly value: number;
}

/** Fills in a header nonce until the hash meets regtest's target (about two tries). */
function mine(header: Uint8Array): Uint8Array {
  const dv = new DataView(header.buffer, header.byteOffset, 80);
  for (let nonce = 0; ; nonce++) {
    dv.setUint32(76, nonce, true);
    const h = sha256d(header);
    if (h[31]! < 0x7f) return h;
  }
}

function assemble(height: number, prev: Uint8Array, txs: GenTx[], withWitness: boolean): { raw: Uint8Array; hash: Uint8Array; txids: Uint8Array[] } {
  const full = txs.map((t) => serializeTx(t, true));
  const txids = txs.map((t, i) => (t.inputs.some((x) => x.witness.length > 0) ? sha256d(serializeTx(t, false)) : sha256d(full[i]!)));
  if (withWitness) {
    // The coinbase's commitment depends on the other txs' wtxids: fill it in, then reserialize it.
    const wroot = merkleRoot([new Uint8Array(32), ...full.slice(1).map((s) => sha256d(s))]);
    const cb = txs[0]!;
    const commit: GenOutput = { value: 0, script: cat([0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed], sha256d(wroot, new Uint8Array(32))) };
    txs[0] = { ...cb, outputs: [...cb.outputs, commit] };
    full[0] = serializeTx(txs[0], true);
    txids[0] = sha256d(serializeTx(txs[0], false));
  }
  const header = cat(u32(0x20000000), prev, merkleRoot(txids), u32(TIME_BASE + height * 600), u32(0x207fffff), u32(0));
  const hash = mine(header);
  const parts = [header, Uint8Array.from(cs(txs.length)), ...full];
  return { raw: cat(...parts), hash, txids };
}

function coinbase(height: number, witness: boolean): GenTx {
  const scriptSig = cat(heightPush(height), [0x04], u32(height), [0x00]);
  return {
    version: 2,
    inputs: [{ prevTxid: new Uint8Array(32), vout: 0xffffffff, scriptSig, sequence: 0xffffffff, witness: witness ? [new Uint8Array(32)] : [] }],
    outputs: [{ value: 1_000_000_000, script: OP_TRUE_WSH }],
    locktime: 0,
  };
}

/**
 * Builds the chain block by block (a generator: submit each as it comes, memory stays at one
 * block). Heights start at 1 on the regtest genesis.
 */
export function* generateChain(opts: ChainGenOptions = {}): Generator<ChainBlock> {
  const count = opts.count ?? 200;
  const txCount = opts.txCount ?? 3000;
  const nCand = opts.candidates ?? 50;
  const nRunes = opts.runestones ?? Math.round((txCount * 1120) / 3000);
  const nDrops = opts.dropsPerBlock ?? 1;
  if (nDrops > 0 && opts.recipient === undefined) throw new TypeError('chaingen: drops need a recipient');
  const pad = opts.pad ?? 310;
  const rnd = prng(opts.seed ?? 7);
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rnd() & 0xff);
  const fillerScript = cat([0x4d, pad & 0xff, pad >>> 8], new Uint8Array(pad).fill(0x42), [0x75, 0x51]);
  const fillerSpk = p2wsh(fillerScript);
  const key = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const trSpk = cat([0x51, 0x20], xOnlyPointFromScalar(key));

  let prev: Uint8Array = Uint8Array.from(Buffer.from(opts.genesisHash ?? REGTEST_GENESIS_HASH, 'hex').reverse());
  const coinbases: Coin[] = [];
  for (let h = 1; h <= MATURITY; h++) {
    const b = assemble(h, prev, [coinbase(h, false)], false);
    coinbases.push({ txid: b.txids[0]!, vout: 0, value: 1_000_000_000 });
    prev = b.hash;
    yield { height: h, hash: displayHex(b.hash), raw: b.raw, drops: [] };
  }

  let taprootCoins: Coin[] = [];
  for (let k = 0; k < count; k++) {
    const height = MATURITY + 1 + k;
    const nFill = txCount - 2 - nCand;
    const first = taprootCoins.length < nCand;
    const fanOutputs: GenOutput[] = Array.from({ length: nFill }, () => ({ value: 3000, script: fillerSpk }));
    if (first) for (let i = 0; i < nCand; i++) fanOutputs.push({ value: 3000, script: trSpk });
    const cb = coinbases[k]!;
    const fan: GenTx = { version: 2, inputs: [{ prevTxid: cb.txid, vout: 0, scriptSig: new Uint8Array(0), sequence: 0xffffffff, witness: [Uint8Array.of(0x51)] }], outputs: fanOutputs, locktime: 0 };
    const fanTxid = sha256d(serializeTx(fan, false));
    if (first) taprootCoins = Array.from({ length: nCand }, (_, i) => ({ txid: fanTxid, vout: nFill + i, value: 3000 }));

    const fillers: GenTx[] = [];
    for (let i = 0; i < nFill; i++) {
      const outputs: GenOutput[] = [{ value: 1000, script: fillerSpk }];
      if (i < nCand) outputs.push({ value: 1000, script: trSpk }); // spent by the next block's candidates
      if (i < nRunes) outputs.push({ value: 0, script: cat([0x6a, 0x5d, 20 + (i % 20)], bytes(20 + (i % 20))) });
      else if (i < nRunes + 30) outputs.push({ value: 0, script: cat([0x6a, 0x20], bytes(32)) });
      const input: GenInput = { prevTxid: fanTxid, vout: i, scriptSig: new Uint8Array(0), sequence: 0xfffffffd, witness: [fillerScript] };
      fillers.push({ version: 2, inputs: [input], outputs, locktime: 0 });
    }

    const drops: { txid: string; message: string }[] = [];
    const cands: GenTx[] = [];
    for (let i = 0; i < nCand; i++) {
      const coin = taprootCoins[i]!;
      let opReturn: Uint8Array;
      let message = '';
      if (i < nDrops) {
        message = `bench drop ${height}.${i}`;
        const payload: DropPayloadInput = { nodeKey: bytes(32), token: bytes(8), endpoints: ['ws://127.0.0.1:9735'], message };
        const built = buildDrop({ inputs: [{ outpoint: { txid: coin.txid, vout: coin.vout }, prevoutScript: trSpk, privateKey: key }], recipient: opts.recipient!, payload });
        opReturn = built.opReturnScript;
      } else {
        const n = 52 + (rnd() % 29);
        opReturn = cat(n <= 75 ? [0x6a, n] : [0x6a, 0x4c, n], bytes(n)); // direct push up to 75 bytes, then PUSHDATA1
      }
      const unsigned: GenTx = {
        version: 2,
        inputs: [{ prevTxid: coin.txid, vout: coin.vout, scriptSig: new Uint8Array(0), sequence: 0xfffffffd, witness: [] }],
        outputs: [{ value: 0, script: opReturn }, { value: 500, script: fillerSpk }],
        locktime: 0,
      };
      const sig = signSchnorr(taprootSighash(unsigned, trSpk, coin.value), key, new Uint8Array(32));
      const tx: GenTx = { ...unsigned, inputs: [{ ...unsigned.inputs[0]!, witness: [sig] }] };
      cands.push(tx);
      if (i < nDrops) drops.push({ txid: displayHex(sha256d(serializeTx(tx, false))), message });
    }

    // Candidates spread through the block, as on mainnet.
    const body: GenTx[] = [...fillers];
    cands.forEach((c, i) => body.splice(Math.floor(((i + 1) * body.length) / (nCand + 1)), 0, c));
    const b = assemble(height, prev, [coinbase(height, true), fan, ...body], true);
    prev = b.hash;
    coinbases.push({ txid: b.txids[0]!, vout: 0, value: 1_000_000_000 }); // matures for block height + 100
    taprootCoins = fillers.slice(0, nCand).map((f) => ({ txid: sha256d(serializeTx(f, false)), vout: 1, value: 1000 }));
    yield { height, hash: displayHex(b.hash), raw: b.raw, drops };
  }
}
