/**
 * Deterministic generator of mainnet-like raw blocks for tests and benchmarks.
 *
 * Shape (defaults), after mainnet blocks of late 2025 (see shared/notes/chain-facts.md):
 * ~3,000 txs and ~1.3-1.4 MB (about 3.8M weight units); 1,200 OP_RETURN outputs of which
 * 1,120 are Runestones (`6a 5d ...`, at most 42 bytes of data), 30 other short ones (Omni, 32-byte hashes, bare
 * OP_RETURN) and 50 of 43-80 bytes (plain data, Babylon, CoreDAO, non-minimal and
 * multi-push encodings); inputs mix P2TR key-path, P2WPKH, P2SH-P2WPKH, P2WSH 2-of-3
 * and legacy P2PKH/P2SH multisig with realistic script and witness sizes, plus a few
 * inscription-like script-path spends; a 300-output payout, P2SH multisig scriptSigs and
 * large witness items make every CompactSize width that fits in a block appear. Segwit
 * serialization; txs without witness are serialized the legacy way, as Core does.
 *
 * The generator never parses: it serializes from its own structures and computes txids,
 * the witness commitment and the merkle root itself, so it is an independent oracle.
 */
import { createHash } from 'node:crypto';

export type OpReturnKind =
  | 'runestone'
  | 'data'
  | 'data-pushdata1'
  | 'hash'
  | 'omni'
  | 'babylon'
  | 'coredao'
  | 'multi-push'
  | 'bare'
  | 'witness-commitment';

/** Ground truth about one OP_RETURN output the generator wrote. */
export interface GeneratedOpReturn {
  readonly tx: number;
  readonly vout: number;
  readonly kind: OpReturnKind;
  /** Length of the single pushed data, or of all bytes after OP_RETURN for other shapes. */
  readonly dataLength: number;
}

export interface GenInput {
  readonly prevTxid: Uint8Array;
  readonly vout: number;
  readonly scriptSig: Uint8Array;
  readonly sequence: number;
  readonly witness: readonly Uint8Array[];
}

export interface GenOutput {
  readonly value: number;
  readonly script: Uint8Array;
}

export interface GenTx {
  readonly version: number;
  readonly inputs: readonly GenInput[];
  readonly outputs: readonly GenOutput[];
  readonly locktime: number;
}

export interface GeneratedBlock {
  readonly raw: Uint8Array;
  readonly txs: readonly GenTx[];
  /** Display-order txids, one per tx. */
  readonly txids: readonly string[];
  readonly wtxids: readonly string[];
  readonly opReturns: readonly GeneratedOpReturn[];
  /** Display-order block hash. */
  readonly hash: string;
}

export interface BlockGenOptions {
  readonly seed?: number;
  /** Total txs including the coinbase (>= 1). Default 3,000. Small blocks get a random sample of the shapes. */
  readonly txCount?: number;
  /** Runestone txs. Default 1,120 per 3,000 txs. */
  readonly runestones?: number;
}

/** mulberry32: tiny, fast, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  u32(): number {
    return this.next();
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + (this.next() % (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.next();
      out[i] = v;
      if (i + 1 < n) out[i + 1] = v >>> 8;
      if (i + 2 < n) out[i + 2] = v >>> 16;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Serialization (independent of src/chain)

class Writer {
  buf = new Uint8Array(1024); // grows by doubling; small so that per-tx writers stay cheap
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.len++] = v;
  }
  u32(v: number): void {
    this.room(4);
    for (let i = 0; i < 4; i++) this.buf[this.len++] = (v >>> (8 * i)) & 0xff;
  }
  /** Little-endian uint64 of a safe integer. */
  u64(v: number): void {
    this.u32(v % 0x1_0000_0000);
    this.u32(Math.floor(v / 0x1_0000_0000));
  }
  cs(n: number): void {
    if (n < 0xfd) this.u8(n);
    else if (n <= 0xffff) {
      this.u8(0xfd);
      this.u8(n & 0xff);
      this.u8(n >>> 8);
    } else {
      this.u8(0xfe);
      this.u32(n);
    }
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  varBytes(b: Uint8Array): void {
    this.cs(b.length);
    this.bytes(b);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function hasWitness(tx: GenTx): boolean {
  return tx.inputs.some((i) => i.witness.length > 0);
}

/** Serializes `tx`; with witness (BIP144) only when asked and when it has any. */
export function serializeTx(tx: GenTx, withWitness: boolean, w = new Writer()): Uint8Array {
  const segwit = withWitness && hasWitness(tx);
  w.u32(tx.version);
  if (segwit) {
    w.u8(0);
    w.u8(1);
  }
  w.cs(tx.inputs.length);
  for (const i of tx.inputs) {
    w.bytes(i.prevTxid);
    w.u32(i.vout);
    w.varBytes(i.scriptSig);
    w.u32(i.sequence);
  }
  w.cs(tx.outputs.length);
  for (const o of tx.outputs) {
    w.u64(o.value);
    w.varBytes(o.script);
  }
  if (segwit) {
    for (const i of tx.inputs) {
      w.cs(i.witness.length);
      for (const item of i.witness) w.varBytes(item);
    }
  }
  w.u32(tx.locktime);
  return w.done();
}

export function sha256d(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return createHash('sha256').update(h.digest()).digest();
}

export function displayHex(hash: Uint8Array): string {
  return Buffer.from(hash).reverse().toString('hex');
}

export function merkleRoot(hashes: Uint8Array[]): Uint8Array {
  let level = hashes;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(sha256d(level[i]!, level[i + 1] ?? level[i]!));
    level = next;
  }
  return level[0]!;
}

// ---------------------------------------------------------------------------------------------
// Scripts, signatures and inputs

const cat = (...parts: (Uint8Array | number[])[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** Minimal push of `data` (direct push up to 75 bytes, then OP_PUSHDATA1/2). */
function push(data: Uint8Array): Uint8Array {
  if (data.length < 0x4c) return cat([data.length], data);
  if (data.length <= 0xff) return cat([0x4c, data.length], data);
  return cat([0x4d, data.length & 0xff, data.length >>> 8], data);
}

function derSig(r: Rng): Uint8Array {
  // Low-S DER: r is 32 or 33 bytes (high bit set needs a 0x00 pad), s is 32; then SIGHASH_ALL.
  const rLen = r.chance(0.5) ? 33 : 32;
  const rv = r.bytes(rLen);
  if (rLen === 33) {
    rv[0] = 0;
    rv[1]! |= 0x80;
  } else rv[0]! &= 0x7f;
  const sv = r.bytes(32);
  sv[0]! &= 0x7f;
  return cat([0x30, 4 + rLen + 32, 0x02, rLen], rv, [0x02, 32], sv, [0x01]);
}

function pubkey(r: Rng): Uint8Array {
  return cat([r.chance(0.5) ? 2 : 3], r.bytes(32));
}

function schnorrSig(r: Rng): Uint8Array {
  // 64 bytes for SIGHASH_DEFAULT; 65 with an explicit sighash byte now and then.
  return r.chance(0.05) ? cat(r.bytes(64), [0x83]) : r.bytes(64);
}

type InputKind = 'p2tr' | 'p2wpkh' | 'p2sh-p2wpkh' | 'p2wsh-multisig' | 'p2pkh' | 'p2sh-multisig';

function makeInput(r: Rng, kind: InputKind): GenInput {
  const base = { prevTxid: r.bytes(32), vout: r.chance(0.7) ? r.int(0, 3) : r.int(0, 300), sequence: r.chance(0.6) ? 0xfffffffd : 0xffffffff };
  const none = new Uint8Array(0);
  switch (kind) {
    case 'p2tr':
      return { ...base, scriptSig: none, witness: [schnorrSig(r)] };
    case 'p2wpkh':
      return { ...base, scriptSig: none, witness: [derSig(r), pubkey(r)] };
    case 'p2sh-p2wpkh':
      return { ...base, scriptSig: push(cat([0x00, 0x14], r.bytes(20))), witness: [derSig(r), pubkey(r)] };
    case 'p2wsh-multisig':
      return { ...base, scriptSig: none, witness: [none, derSig(r), derSig(r), multisigScript(r, 3)] };
    case 'p2pkh':
      return { ...base, scriptSig: cat(push(derSig(r)), push(pubkey(r))), witness: [] };
    case 'p2sh-multisig':
      // 3 signatures and a 3-of-5 redeem script: a scriptSig over 252 bytes (0xfd CompactSize).
      return { ...base, scriptSig: cat([0x00], push(derSig(r)), push(derSig(r)), push(derSig(r)), push(multisigScript(r, 5))), witness: [] };
  }
}

function multisigScript(r: Rng, n: number): Uint8Array {
  const keys = Array.from({ length: n }, () => push(pubkey(r)));
  return cat([0x50 + (n === 3 ? 2 : 3)], ...keys, [0x50 + n, 0xae]);
}

function pickInputKind(r: Rng): InputKind {
  const x = r.int(0, 99);
  if (x < 36) return 'p2tr';
  if (x < 78) return 'p2wpkh';
  if (x < 85) return 'p2sh-p2wpkh';
  if (x < 88) return 'p2wsh-multisig';
  return 'p2pkh';
}

function payScript(r: Rng): Uint8Array {
  const x = r.int(0, 99);
  if (x < 40) return cat([0x51, 0x20], r.bytes(32)); // P2TR
  if (x < 75) return cat([0x00, 0x14], r.bytes(20)); // P2WPKH
  if (x < 85) return cat([0x76, 0xa9, 0x14], r.bytes(20), [0x88, 0xac]); // P2PKH
  if (x < 95) return cat([0xa9, 0x14], r.bytes(20), [0x87]); // P2SH
  return cat([0x00, 0x20], r.bytes(32)); // P2WSH
}

function payOutput(r: Rng): GenOutput {
  return { value: r.chance(0.1) ? r.int(330, 10_000) : r.int(10_000, 2_000_000_000), script: payScript(r) };
}

// ---------------------------------------------------------------------------------------------
// OP_RETURN payloads

const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));
const KNOWN_PREFIXES = [ascii('omni'), ascii('bbn1'), ascii('SAT+'), [0xaa, 0x21, 0xa9, 0xed]];

/** Random data that does not start with another protocol's magic. */
function freeData(r: Rng, n: number): Uint8Array {
  for (;;) {
    const d = r.bytes(n);
    if (!KNOWN_PREFIXES.some((p) => p.every((b, i) => d[i] === b))) return d;
  }
}

function leb128(r: Rng, into: number[]): void {
  let v = r.chance(0.5) ? r.int(0, 127) : r.u32() * (r.int(1, 64) | 0);
  do {
    const b = v % 128;
    v = Math.floor(v / 128);
    into.push(v > 0 ? b | 0x80 : b);
  } while (v > 0);
}

/** A Runestone: `OP_RETURN OP_13` then one (rarely two) pushes of LEB128 integers, <= 42 bytes. */
function runestone(r: Rng): { script: Uint8Array; dataLength: number } {
  const body: number[] = [];
  const target = r.int(4, 40);
  while (body.length < target) leb128(r, body);
  const data = Uint8Array.from(body.slice(0, Math.min(body.length, 42)));
  if (data.length > 20 && r.chance(0.1)) {
    const cut = r.int(1, data.length - 1);
    return { script: cat([0x6a, 0x5d], push(data.subarray(0, cut)), push(data.subarray(cut))), dataLength: data.length };
  }
  return { script: cat([0x6a, 0x5d], push(data)), dataLength: data.length };
}

function opReturnScript(r: Rng, kind: OpReturnKind): { script: Uint8Array; dataLength: number } {
  switch (kind) {
    case 'runestone':
      return runestone(r);
    case 'data': {
      const n = r.int(43, 80);
      return { script: cat([0x6a], push(freeData(r, n))), dataLength: n };
    }
    case 'data-pushdata1': {
      const n = r.int(43, 75); // OP_PUSHDATA1 where a direct push would do: non-minimal but a single push
      return { script: cat([0x6a, 0x4c, n], freeData(r, n)), dataLength: n };
    }
    case 'hash':
      return { script: cat([0x6a], push(freeData(r, 32))), dataLength: 32 };
    case 'omni':
      return { script: cat([0x6a], push(cat(ascii('omni'), [0, 0, 0, 0, 0, 0, 0, 31], r.bytes(8)))), dataLength: 20 };
    case 'babylon':
      // tag(4) version(1) staker pk(32) finality provider pk(32) staking time(2) = 71 bytes
      return { script: cat([0x6a], push(cat(ascii('bbn1'), [0], r.bytes(64), [0xfa, 0xfa]))), dataLength: 71 };
    case 'coredao': {
      const body = cat(ascii('SAT+'), [0x01, 0x04, 0x5c], r.bytes(20), r.bytes(20), [0x01]);
      return { script: cat([0x6a], push(body)), dataLength: body.length };
    }
    case 'multi-push': {
      const a = freeData(r, r.int(20, 40));
      const b = freeData(r, r.int(23, 38)); // a + b + 2 push opcodes stays within 45..80
      return { script: cat([0x6a], push(a), push(b)), dataLength: a.length + b.length + 2 };
    }
    case 'bare':
      return { script: Uint8Array.of(0x6a), dataLength: 0 };
    case 'witness-commitment':
      throw new RangeError('the coinbase writes the witness commitment');
  }
}

// ---------------------------------------------------------------------------------------------
// Transactions and the block

interface Draft {
  tx: GenTx;
  opReturns: { vout: number; kind: OpReturnKind; dataLength: number }[];
}

function dataTx(r: Rng, kind: OpReturnKind): Draft {
  const nIn = r.chance(0.85) ? 1 : 2;
  const inputs = Array.from({ length: nIn }, () => makeInput(r, r.chance(0.7) ? 'p2tr' : 'p2wpkh'));
  const { script, dataLength } = opReturnScript(r, kind);
  const outputs: GenOutput[] = [];
  const pos = kind === 'runestone' ? r.int(0, 1) : r.int(0, 2);
  const nPay = r.int(1, 2);
  for (let i = 0; i < nPay; i++) outputs.push(kind === 'runestone' ? { value: r.chance(0.5) ? 546 : 330, script: cat([0x51, 0x20], r.bytes(32)) } : payOutput(r));
  const vout = Math.min(pos, outputs.length);
  outputs.splice(vout, 0, { value: 0, script });
  return { tx: { version: 2, inputs, outputs, locktime: 0 }, opReturns: [{ vout, kind, dataLength }] };
}

function paymentTx(r: Rng, shape: 'normal' | 'consolidation' | 'batch' | 'legacy-multisig'): Draft {
  let nIn: number;
  let nOut: number;
  if (shape === 'consolidation') [nIn, nOut] = [r.int(20, 120), 1];
  else if (shape === 'batch') [nIn, nOut] = [r.int(1, 4), r.int(30, 120)];
  else if (shape === 'legacy-multisig') [nIn, nOut] = [r.int(1, 3), 2];
  else {
    const x = r.int(0, 99);
    nIn = x < 52 ? 1 : x < 80 ? 2 : x < 94 ? r.int(3, 5) : r.int(6, 15);
    nOut = r.chance(0.12) ? 1 : r.chance(0.85) ? 2 : r.int(3, 8);
  }
  // A fifth of ordinary payments are all-legacy: serialized without witness, as in real blocks.
  const legacy = shape === 'legacy-multisig' || (shape === 'normal' && r.chance(0.18));
  const kindFor = (): InputKind => (shape === 'legacy-multisig' ? 'p2sh-multisig' : legacy ? 'p2pkh' : pickInputKind(r));
  const inputs = Array.from({ length: nIn }, () => makeInput(r, kindFor()));
  const outputs = Array.from({ length: nOut }, () => payOutput(r));
  const locktime = r.chance(0.4) ? r.int(900_000, 936_000) : 0;
  return { tx: { version: r.chance(0.8) ? 2 : 1, inputs, outputs, locktime }, opReturns: [] };
}

/** Spends a taproot script path whose tapscript carries `size` bytes, as inscriptions do. */
function inscriptionTx(r: Rng, size: number): Draft {
  const tapscript = cat([0x20], r.bytes(32), [0xac, 0x00, 0x63], r.bytes(size - 38), [0x68]);
  const controlBlock = cat([0xc0], r.bytes(32));
  const input: GenInput = { prevTxid: r.bytes(32), vout: 0, scriptSig: new Uint8Array(0), sequence: 0xfffffffd, witness: [r.bytes(64), tapscript, controlBlock] };
  return { tx: { version: 2, inputs: [input], outputs: [{ value: 546, script: cat([0x51, 0x20], r.bytes(32)) }], locktime: 0 }, opReturns: [] };
}

function coinbase(r: Rng, height: number, commitment: Uint8Array): GenTx {
  const h = [height & 0xff, (height >>> 8) & 0xff, (height >>> 16) & 0xff];
  const scriptSig = cat([3], h, push(r.bytes(20)), push(Uint8Array.from(ascii('/deaddrop blockgen/'))));
  const reward: GenOutput = { value: 312_500_000 + r.int(0, 5_000_000), script: cat([0x00, 0x14], r.bytes(20)) };
  const witnessCommit: GenOutput = { value: 0, script: cat([0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed], commitment) };
  return {
    version: 2,
    inputs: [{ prevTxid: new Uint8Array(32), vout: 0xffffffff, scriptSig, sequence: 0xffffffff, witness: [new Uint8Array(32)] }],
    outputs: [reward, witnessCommit],
    locktime: 0,
  };
}

/** The non-coinbase drafts, in a shuffled but deterministic order. */
function drafts(r: Rng, txCount: number, runestones: number): Draft[] {
  const kinds: OpReturnKind[] = [
    ...Array<OpReturnKind>(runestones).fill('runestone'),
    ...Array<OpReturnKind>(12).fill('omni'),
    ...Array<OpReturnKind>(16).fill('hash'),
    ...Array<OpReturnKind>(2).fill('bare'),
    ...Array<OpReturnKind>(32).fill('data'),
    ...Array<OpReturnKind>(4).fill('data-pushdata1'),
    ...Array<OpReturnKind>(10).fill('babylon'),
    ...Array<OpReturnKind>(2).fill('coredao'),
    ...Array<OpReturnKind>(2).fill('multi-push'),
  ];
  const out: Draft[] = kinds.map((k) => dataTx(r, k));
  const special: Draft[] = [
    ...Array.from({ length: 24 }, () => paymentTx(r, 'consolidation')),
    ...Array.from({ length: 8 }, () => paymentTx(r, 'batch')),
    ...Array.from({ length: 6 }, () => paymentTx(r, 'legacy-multisig')),
  ];
  // Inscription-like taproot script-path spends: witness items past 252 and 65,535 bytes (0xfd, 0xfe).
  for (const size of [300, 1200, 4000, 70_000]) special.push(inscriptionTx(r, size));
  // One payout batch with more than 252 outputs (0xfd output count).
  special.push({ tx: { ...paymentTx(r, 'batch').tx, outputs: Array.from({ length: 300 }, () => payOutput(r)) }, opReturns: [] });
  out.push(...special);
  while (out.length < txCount - 1) out.push(paymentTx(r, 'normal'));
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  // Small blocks (txCount below the number of special txs) keep a random sample of them.
  out.length = Math.min(out.length, txCount - 1);
  return out;
}

/**
 * Builds a deterministic mainnet-like block (see the module comment for its shape).
 * @example const { raw, txids } = generateBlock({ seed: 1 });
 */
export function generateBlock(options: BlockGenOptions = {}): GeneratedBlock {
  const seed = options.seed ?? 1;
  const txCount = options.txCount ?? 3000;
  if (!Number.isSafeInteger(txCount) || txCount < 1) throw new RangeError(`blockgen: txCount must be a positive integer, got ${txCount}`);
  const r = new Rng(seed);
  const body = drafts(r, txCount, options.runestones ?? Math.round((txCount * 1120) / 3000));
  const serialized = body.map((d) => serializeTx(d.tx, true));
  const wtxidBytes = serialized.map((s) => sha256d(s));
  const witnessRoot = merkleRoot([new Uint8Array(32), ...wtxidBytes]);
  const cb = coinbase(r, 936_000 + (seed % 1000), sha256d(witnessRoot, new Uint8Array(32)));
  const txs = [cb, ...body.map((d) => d.tx)];
  const full = [serializeTx(cb, true), ...serialized];
  const txidBytes = txs.map((tx, i) => (hasWitness(tx) ? sha256d(serializeTx(tx, false)) : sha256d(full[i]!)));

  const w = new Writer();
  w.u32(0x20000000 | (r.u32() & 0x1fffe000));
  w.bytes(r.bytes(32));
  w.bytes(merkleRoot(txidBytes));
  w.u32(1_760_000_000 + r.int(0, 10_000_000));
  w.u32(0x17023a04);
  w.u32(r.u32());
  const header = w.buf.slice(0, 80);
  w.cs(txs.length);
  for (const s of full) w.bytes(s);

  const opReturns: GeneratedOpReturn[] = [{ tx: 0, vout: 1, kind: 'witness-commitment', dataLength: 36 }];
  body.forEach((d, i) => d.opReturns.forEach((o) => opReturns.push({ tx: i + 1, ...o })));
  return {
    raw: w.done(),
    txs,
    txids: txidBytes.map(displayHex),
    wtxids: [sha256d(full[0]!), ...wtxidBytes].map(displayHex),
    opReturns,
    hash: displayHex(sha256d(header)),
  };
}

/** The mainnet genesis block (height 0), serialized. Its hash is 000000000019d6689c...e26f. */
export const MAINNET_GENESIS_HEX =
  '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c' +
  '0101000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000';
