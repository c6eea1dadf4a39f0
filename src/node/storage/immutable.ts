/**
 * Immutable files of the storage layer (docs/protocol/storage.md): encrypt with a random
 * per-file key, split into segments, erasure-code each segment k-of-n (zfec-compatible), and
 * cover everything with hash trees (blocks of a share, shares of a file, ciphertext segments),
 * as Tahoe-LAFS's CHK files are. Pure functions, no I/O.
 *
 * Capabilities: the read cap (key + UEB hash) decrypts and verifies; the verify cap (storage
 * index + UEB hash) verifies and repairs but cannot decrypt; servers see only the storage index.
 */
import { chacha20 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { base32nopad } from '@scure/base';
import { merkleProof, merkleRoot, taggedHash, verifyMerkleProof } from './hash-tree.js';
import { joinBlocks, ReedSolomon, splitIntoBlocks } from './rs/codec.js';
import { equalBytes } from '../../util/bytes.js';

/** Default segment size (Tahoe's: 128 KiB). */
export const DEFAULT_SEGMENT_SIZE = 128 * 1024;
const MAGIC = Uint8Array.of(0x44, 0x44, 0x53, 0x31); // "DDS1"
const UEB_BYTES = 81;
const KEY_BYTES = 32;
const SI_BYTES = 16;

/** What every share of a file carries and the caps commit to (the URI extension block). */
export interface FileParams {
  readonly k: number;
  readonly n: number;
  readonly segmentSize: number;
  readonly size: number;
  /** Root of the tree over the ciphertext segments. */
  readonly crypttextRoot: Uint8Array;
  /** Root of the tree over the shares' block-tree roots. */
  readonly shareRoot: Uint8Array;
}

export interface ReadCap {
  readonly key: Uint8Array;
  readonly uebHash: Uint8Array;
  readonly k: number;
  readonly n: number;
  readonly size: number;
}

export interface VerifyCap {
  readonly storageIndex: Uint8Array;
  readonly uebHash: Uint8Array;
  readonly k: number;
  readonly n: number;
  readonly size: number;
}

export interface EncodeOptions {
  readonly k?: number;
  readonly n?: number;
  readonly segmentSize?: number;
  /** The file key; random unless given (fixed keys are for test vectors only). */
  readonly key?: Uint8Array;
}

export interface EncodedFile {
  readonly readCap: string;
  readonly verifyCap: string;
  /** base32 of the 16-byte storage index, the only name servers see. */
  readonly storageIndex: string;
  /** shares[r] is share number r, ready to store. */
  readonly shares: Uint8Array[];
}

/** A share that failed verification, and why. */
export class BadShareError extends Error {
  override readonly name = 'BadShareError';
}

const b32 = {
  enc: (b: Uint8Array): string => base32nopad.encode(b).toLowerCase(),
  dec: (s: string): Uint8Array => base32nopad.decode(s.toUpperCase()),
};

/** The storage index for a file key. */
export function storageIndexOf(key: Uint8Array): Uint8Array {
  return taggedHash('storage-index', key).subarray(0, SI_BYTES);
}

function segmentCount(size: number, segmentSize: number): number {
  return Math.max(1, Math.ceil(size / segmentSize));
}

function segmentLength(p: Pick<FileParams, 'size' | 'segmentSize'>, s: number): number {
  return Math.max(0, Math.min(p.segmentSize, p.size - s * p.segmentSize));
}

function blockSize(p: FileParams, s: number): number {
  return Math.max(1, Math.ceil(segmentLength(p, s) / p.k));
}

function proofLength(n: number): number {
  return Math.ceil(Math.log2(n));
}

function encodeUeb(p: FileParams): Uint8Array {
  const out = new Uint8Array(UEB_BYTES);
  const v = new DataView(out.buffer);
  v.setUint8(0, 1);
  v.setUint16(1, p.k);
  v.setUint16(3, p.n);
  v.setUint32(5, p.segmentSize);
  v.setBigUint64(9, BigInt(p.size));
  out.set(p.crypttextRoot, 17);
  out.set(p.shareRoot, 49);
  return out;
}

function decodeUeb(b: Uint8Array): FileParams {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  if (b.length !== UEB_BYTES || v.getUint8(0) !== 1) throw new BadShareError('unknown UEB version');
  const size = v.getBigUint64(9);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new BadShareError('UEB size out of range');
  const p = { k: v.getUint16(1), n: v.getUint16(3), segmentSize: v.getUint32(5), size: Number(size), crypttextRoot: b.slice(17, 49), shareRoot: b.slice(49, 81) };
  if (p.k < 1 || p.n < p.k || p.n > 256 || p.segmentSize < 1) throw new BadShareError('UEB parameters out of range');
  return p;
}

function checkParams(k: number, n: number, segmentSize: number): void {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 1 || n < k || n > 256) throw new RangeError(`storage: need 1 <= k <= n <= 256, got k=${k}, n=${n}`);
  if (!Number.isInteger(segmentSize) || segmentSize < 1 || segmentSize > 2 ** 30) throw new RangeError(`storage: bad segment size ${segmentSize}`);
}

/** Per segment, the n blocks of that segment. */
function encodeSegments(rs: ReedSolomon, ciphertext: Uint8Array, segmentSize: number): Uint8Array[][] {
  const segs: Uint8Array[][] = [];
  const count = segmentCount(ciphertext.length, segmentSize);
  for (let s = 0; s < count; s++) {
    const seg = ciphertext.subarray(s * segmentSize, Math.min(ciphertext.length, (s + 1) * segmentSize));
    segs.push(rs.encode(splitIntoBlocks(seg, rs.k)).map((b) => Uint8Array.from(b)));
  }
  return segs;
}

/** Builds the n share byte strings from per-segment blocks and the file's other parameters. */
function assembleShares(k: number, n: number, segmentSize: number, size: number, crypttextRoot: Uint8Array, blocks: Uint8Array[][]): Uint8Array[] {
  const blockLeaves = Array.from({ length: n }, (_, r) => blocks.map((seg) => taggedHash('block', seg[r] as Uint8Array)));
  const shareLeaves = blockLeaves.map((leaves, r) => taggedHash('share', Uint8Array.of(r), merkleRoot(leaves)));
  const params: FileParams = { k, n, segmentSize, size, crypttextRoot, shareRoot: merkleRoot(shareLeaves) };
  const ueb = encodeUeb(params);
  return Array.from({ length: n }, (_, r) => {
    const parts = [MAGIC, Uint8Array.of(r), ueb, ...blocks.map((seg) => seg[r] as Uint8Array), ...(blockLeaves[r] as Uint8Array[]), ...merkleProof(shareLeaves, r)];
    const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  });
}

/** Length in bytes of every share of a file of `size` bytes (what a server must hold per share). */
export function shareLength(k: number, n: number, segmentSize: number, size: number): number {
  checkParams(k, n, segmentSize);
  const p = { k, n, segmentSize, size, crypttextRoot: new Uint8Array(32), shareRoot: new Uint8Array(32) };
  const count = segmentCount(size, segmentSize);
  // Every segment but the last has the same block size.
  const blocks = count > 1 ? (count - 1) * blockSize(p, 0) + blockSize(p, count - 1) : blockSize(p, 0);
  return 5 + UEB_BYTES + blocks + count * 32 + proofLength(n) * 32;
}

/** Bytes of a share's head that {@link expectedShareLength} reads (magic, number, UEB). */
export const SHARE_HEAD_BYTES = 5 + UEB_BYTES;

/** Where the parts of a share lie (byte offsets), as its verified UEB fixes them. */
export interface ShareLayout {
  readonly params: FileParams;
  /** Segments. */
  readonly count: number;
  /** blockAt[s] is where block s starts; blockAt[count] is where the block-tree leaves start. */
  readonly blockAt: readonly number[];
  /** Where the share-tree proof starts. */
  readonly proofAt: number;
  readonly length: number;
}

/**
 * The layout of a share, read from its first {@link SHARE_HEAD_BYTES} bytes and checked against
 * the verify cap (magic, UEB hash, parameters). Lets a reader fetching a share in ranges refuse a
 * server that announces a wrong size before reading more. Throws BadShareError.
 */
export function shareLayout(verifyCap: string | VerifyCap, head: Uint8Array): ShareLayout {
  const cap = typeof verifyCap === 'string' ? parseVerifyCap(verifyCap) : verifyCap;
  if (head.length < SHARE_HEAD_BYTES || !equalBytes(head.subarray(0, 4), MAGIC)) throw new BadShareError('not a share (bad magic or too short)');
  const ueb = head.subarray(5, SHARE_HEAD_BYTES);
  if (!equalBytes(taggedHash('ueb', ueb), cap.uebHash)) throw new BadShareError('UEB does not match the capability');
  const params = decodeUeb(ueb);
  if (params.k !== cap.k || params.n !== cap.n || params.size !== cap.size) throw new BadShareError('UEB parameters do not match the capability');
  const count = segmentCount(params.size, params.segmentSize);
  const blockAt = [SHARE_HEAD_BYTES];
  for (let s = 0; s < count; s++) blockAt.push((blockAt[s] as number) + blockSize(params, s));
  const proofAt = (blockAt[count] as number) + count * 32;
  return { params, count, blockAt, proofAt, length: proofAt + proofLength(params.n) * 32 };
}

/** The length a share must have, from its head (see {@link shareLayout}). */
export function expectedShareLength(verifyCap: string | VerifyCap, head: Uint8Array): number {
  return shareLayout(verifyCap, head).length;
}

/**
 * Checks the block-tree leaves and share-tree proof of share `num` (`tail` = the share's bytes
 * from `blockAt[count]` to its end) against the file's share root; returns the leaves, against
 * which every block of the share can then be checked alone. Throws BadShareError.
 */
export function verifyShareTail(layout: ShareLayout, num: number, tail: Uint8Array): Uint8Array[] {
  const { params, count } = layout;
  if (num >= params.n) throw new BadShareError(`share number ${num} is outside 0..${params.n - 1}`);
  if (tail.length !== layout.length - (layout.blockAt[count] as number)) throw new BadShareError(`share ${num}: bad tail length`);
  const leaves = Array.from({ length: count }, (_, s) => tail.subarray(s * 32, (s + 1) * 32));
  const proof = Array.from({ length: proofLength(params.n) }, (_, i) => tail.subarray(count * 32 + i * 32, count * 32 + (i + 1) * 32));
  if (!verifyMerkleProof(taggedHash('share', Uint8Array.of(num), merkleRoot(leaves)), num, params.n, proof, params.shareRoot)) {
    throw new BadShareError(`share ${num} is not part of this file (share tree mismatch)`);
  }
  return leaves;
}

/** Throws BadShareError unless `block` is block `s` of a share with these verified leaves. */
export function checkBlock(leaves: readonly Uint8Array[], s: number, block: Uint8Array, num: number): void {
  if (!equalBytes(taggedHash('block', block), leaves[s] as Uint8Array)) throw new BadShareError(`block ${s} of share ${num} is corrupt`);
}

/**
 * Decodes segment `s` from k verified blocks and decrypts it; returns the plaintext and the
 * segment's leaf of the ciphertext tree (check them all with {@link checkCrypttextLeaves}).
 */
export function decodeSegment(key: Uint8Array, params: FileParams, s: number, blocks: readonly { num: number; data: Uint8Array }[]): { plaintext: Uint8Array; leaf: Uint8Array } {
  const data = new ReedSolomon(params.k, params.n).decode(blocks);
  const seg = joinBlocks(data, segmentLength(params, s));
  // The segment starts at byte s·S of the ChaCha20 stream: counter floor(off / 64), skipping off mod 64.
  const off = s * params.segmentSize;
  const skip = off % 64;
  const padded = new Uint8Array(skip + seg.length);
  padded.set(seg, skip);
  return { plaintext: chacha20(key, new Uint8Array(12), padded, undefined, Math.floor(off / 64)).subarray(skip), leaf: taggedHash('crypttext-segment', seg) };
}

/** Throws BadShareError unless the segments' leaves make the file's ciphertext root. */
export function checkCrypttextLeaves(params: FileParams, leaves: readonly Uint8Array[]): void {
  if (!equalBytes(merkleRoot(leaves), params.crypttextRoot)) throw new BadShareError('decoded ciphertext does not match the ciphertext tree');
}

/** Encrypts and encodes a file; returns its shares and capabilities. */
export function encodeFile(plaintext: Uint8Array, options: EncodeOptions = {}): EncodedFile {
  const { k = 3, n = 10, segmentSize = DEFAULT_SEGMENT_SIZE } = options;
  checkParams(k, n, segmentSize);
  const key = options.key ?? randomBytes(KEY_BYTES);
  if (key.length !== KEY_BYTES) throw new RangeError('storage: the file key must be 32 bytes');
  // A key is used for one file only, so a fixed nonce is safe (Tahoe: AES-CTR with a zero IV).
  const ciphertext = chacha20(key, new Uint8Array(12), plaintext);
  const count = segmentCount(ciphertext.length, segmentSize);
  const segLeaves = Array.from({ length: count }, (_, s) => taggedHash('crypttext-segment', ciphertext.subarray(s * segmentSize, (s + 1) * segmentSize)));
  const rs = new ReedSolomon(k, n);
  const shares = assembleShares(k, n, segmentSize, plaintext.length, merkleRoot(segLeaves), encodeSegments(rs, ciphertext, segmentSize));
  const uebHash = taggedHash('ueb', (shares[0] as Uint8Array).subarray(5, 5 + UEB_BYTES));
  const si = storageIndexOf(key);
  return {
    readCap: formatReadCap({ key, uebHash, k, n, size: plaintext.length }),
    verifyCap: formatVerifyCap({ storageIndex: si, uebHash, k, n, size: plaintext.length }),
    storageIndex: b32.enc(si),
    shares,
  };
}

export function formatReadCap(c: ReadCap): string {
  return `dd-chk:r:${b32.enc(c.key)}:${b32.enc(c.uebHash)}:${c.k}:${c.n}:${c.size}`;
}

export function formatVerifyCap(c: VerifyCap): string {
  return `dd-chk:v:${b32.enc(c.storageIndex)}:${b32.enc(c.uebHash)}:${c.k}:${c.n}:${c.size}`;
}

function parseCap(cap: string, kind: 'r' | 'v'): { secret: Uint8Array; uebHash: Uint8Array; k: number; n: number; size: number } {
  const m = /^dd-chk:([rv]):([a-z2-7]+):([a-z2-7]+):(\d{1,3}):(\d{1,3}):(\d{1,16})$/.exec(cap);
  if (!m || m[1] !== kind) throw new RangeError(`storage: not a ${kind === 'r' ? 'read' : 'verify'} capability`);
  let secret: Uint8Array;
  let uebHash: Uint8Array;
  try {
    secret = b32.dec(m[2] as string);
    uebHash = b32.dec(m[3] as string);
  } catch {
    throw new RangeError('storage: malformed capability');
  }
  const [k, n, size] = [Number(m[4]), Number(m[5]), Number(m[6])];
  if (secret.length !== (kind === 'r' ? KEY_BYTES : SI_BYTES) || uebHash.length !== 32 || k < 1 || n < k || n > 256 || !Number.isSafeInteger(size)) {
    throw new RangeError('storage: malformed capability');
  }
  return { secret, uebHash, k, n, size };
}

export function parseReadCap(cap: string): ReadCap {
  const { secret, ...rest } = parseCap(cap, 'r');
  return { key: secret, ...rest };
}

export function parseVerifyCap(cap: string): VerifyCap {
  const { secret, ...rest } = parseCap(cap, 'v');
  return { storageIndex: secret, ...rest };
}

/** The verify cap of a read cap (the holder of a read cap can hand out checking rights). */
export function verifyCapOf(readCap: string): string {
  const r = parseReadCap(readCap);
  return formatVerifyCap({ storageIndex: storageIndexOf(r.key), uebHash: r.uebHash, k: r.k, n: r.n, size: r.size });
}

/** A share that passed verification. */
export interface VerifiedShare {
  readonly num: number;
  readonly params: FileParams;
  /** Block of each segment, every one checked against the share's block tree. */
  readonly blocks: Uint8Array[];
}

/**
 * Checks a share against a verify cap: its UEB hashes to the cap's UEB hash, every block hashes
 * into the share's block tree, and that tree's root is leaf `num` of the file's share tree.
 * `expectedNum`, when given, must match the share's own number. Throws BadShareError.
 */
export function verifyShare(verifyCap: string | VerifyCap, share: Uint8Array, expectedNum?: number): VerifiedShare {
  const cap = typeof verifyCap === 'string' ? parseVerifyCap(verifyCap) : verifyCap;
  if (share.length < 5 + UEB_BYTES || !equalBytes(share.subarray(0, 4), MAGIC)) throw new BadShareError('not a share (bad magic or too short)');
  const num = share[4] as number;
  if (expectedNum !== undefined && num !== expectedNum) throw new BadShareError(`share claims number ${num}, expected ${expectedNum}`);
  const ueb = share.subarray(5, 5 + UEB_BYTES);
  if (!equalBytes(taggedHash('ueb', ueb), cap.uebHash)) throw new BadShareError('UEB does not match the capability');
  const params = decodeUeb(ueb);
  if (params.k !== cap.k || params.n !== cap.n || params.size !== cap.size) throw new BadShareError('UEB parameters do not match the capability');
  if (num >= params.n) throw new BadShareError(`share number ${num} is outside 0..${params.n - 1}`);
  const count = segmentCount(params.size, params.segmentSize);
  let at = 5 + UEB_BYTES;
  const blocksAt: [number, number][] = [];
  for (let s = 0; s < count; s++) {
    blocksAt.push([at, at + blockSize(params, s)]);
    at += blockSize(params, s);
  }
  const expectedLength = at + count * 32 + proofLength(params.n) * 32;
  if (share.length !== expectedLength) throw new BadShareError(`share has ${share.length} bytes, expected ${expectedLength}`);
  const leaves: Uint8Array[] = [];
  const blocks: Uint8Array[] = [];
  for (let s = 0; s < count; s++) {
    const [a, b] = blocksAt[s] as [number, number];
    const block = share.subarray(a, b);
    const leaf = share.subarray(at + s * 32, at + (s + 1) * 32);
    if (!equalBytes(taggedHash('block', block), leaf)) throw new BadShareError(`block ${s} of share ${num} is corrupt`);
    leaves.push(leaf);
    blocks.push(block);
  }
  at += count * 32;
  const proof = Array.from({ length: proofLength(params.n) }, (_, i) => share.subarray(at + i * 32, at + (i + 1) * 32));
  if (!verifyMerkleProof(taggedHash('share', Uint8Array.of(num), merkleRoot(leaves)), num, params.n, proof, params.shareRoot)) {
    throw new BadShareError(`share ${num} is not part of this file (share tree mismatch)`);
  }
  return { num, params, blocks };
}

/** Verifies shares and keeps the first valid one per share number; collects why others failed. */
function verifyAll(cap: VerifyCap, shares: readonly Uint8Array[]): { valid: Map<number, VerifiedShare>; errors: string[] } {
  const valid = new Map<number, VerifiedShare>();
  const errors: string[] = [];
  for (const s of shares) {
    try {
      const v = verifyShare(cap, s);
      if (!valid.has(v.num)) valid.set(v.num, v);
    } catch (e) {
      if (!(e instanceof BadShareError)) throw e;
      errors.push(e.message);
    }
  }
  if (valid.size < cap.k) {
    throw new BadShareError(`need ${cap.k} valid shares, have ${valid.size}${errors.length ? ` (rejected: ${errors.join('; ')})` : ''}`);
  }
  return { valid, errors };
}

/** Rebuilds the ciphertext from k verified shares and checks it against the ciphertext tree. */
function recoverCiphertext(cap: VerifyCap, valid: Map<number, VerifiedShare>): { params: FileParams; ciphertext: Uint8Array; blocks: Uint8Array[][] } {
  const chosen = [...valid.values()].slice(0, cap.k);
  const params = (chosen[0] as VerifiedShare).params;
  const rs = new ReedSolomon(params.k, params.n);
  const count = segmentCount(params.size, params.segmentSize);
  const ciphertext = new Uint8Array(params.size);
  const segBlocks: Uint8Array[][] = [];
  const segLeaves: Uint8Array[] = [];
  for (let s = 0; s < count; s++) {
    const data = rs.decode(chosen.map((v) => ({ num: v.num, data: v.blocks[s] as Uint8Array })));
    const seg = joinBlocks(data, segmentLength(params, s));
    segLeaves.push(taggedHash('crypttext-segment', seg));
    ciphertext.set(seg, s * params.segmentSize);
    segBlocks.push(data);
  }
  if (!equalBytes(merkleRoot(segLeaves), params.crypttextRoot)) throw new BadShareError('decoded ciphertext does not match the ciphertext tree');
  return { params, ciphertext, blocks: segBlocks };
}

/** Decrypts a file from any k valid shares (others may be corrupt, foreign or duplicated). */
export function decodeFile(readCap: string, shares: readonly Uint8Array[]): Uint8Array {
  const rc = parseReadCap(readCap);
  const cap = parseVerifyCap(verifyCapOf(readCap));
  const { ciphertext } = recoverCiphertext(cap, verifyAll(cap, shares).valid);
  return chacha20(rc.key, new Uint8Array(12), ciphertext);
}

/**
 * Regenerates the shares `wanted` from any k valid shares with the verify cap alone (it never
 * sees plaintext). The result verifies against the same cap.
 */
export function repairShares(verifyCap: string, shares: readonly Uint8Array[], wanted: readonly number[]): Map<number, Uint8Array> {
  const cap = parseVerifyCap(verifyCap);
  const { params, blocks } = recoverCiphertext(cap, verifyAll(cap, shares).valid);
  const rs = new ReedSolomon(params.k, params.n);
  const all = assembleShares(params.k, params.n, params.segmentSize, params.size, params.crypttextRoot, blocks.map((data) => rs.encode(data)));
  const out = new Map<number, Uint8Array>();
  for (const r of wanted) {
    if (!Number.isInteger(r) || r < 0 || r >= params.n) throw new RangeError(`storage: share number ${r} is outside 0..${params.n - 1}`);
    out.set(r, all[r] as Uint8Array);
  }
  return out;
}

/*
 * Streaming: the same shares, produced segment by segment in bounded memory. The UEB at the head
 * of every share commits to the ciphertext and share roots, which depend on the whole file, so a
 * put makes two passes over its source: the first hashes (FileHasher), the second encodes again
 * and sends, checking each segment against the first pass (the source must not change meanwhile).
 */

/** The segment count and the ciphertext bytes of segment `s` of a file (for readers of a source). */
export function segmentRange(size: number, segmentSize: number, s: number): { offset: number; length: number } {
  return { offset: s * segmentSize, length: segmentLength({ size, segmentSize }, s) };
}

/** Segments of a file of `size` bytes. */
export function segmentsOf(size: number, segmentSize: number): number {
  return segmentCount(size, segmentSize);
}

/** Encrypts plaintext segment `s` (ChaCha20 from byte s·S of the file's key stream). */
export function encryptSegment(key: Uint8Array, segmentSize: number, s: number, plaintext: Uint8Array): Uint8Array {
  const off = s * segmentSize;
  const skip = off % 64;
  if (skip === 0) return chacha20(key, new Uint8Array(12), plaintext, undefined, off / 64);
  const padded = new Uint8Array(skip + plaintext.length);
  padded.set(plaintext, skip);
  return chacha20(key, new Uint8Array(12), padded, undefined, Math.floor(off / 64)).subarray(skip);
}

/** The n blocks of one ciphertext segment (block r goes to share r). */
export function encodeSegmentBlocks(rs: ReedSolomon, ciphertextSegment: Uint8Array): Uint8Array[] {
  return rs.encode(splitIntoBlocks(ciphertextSegment, rs.k));
}

/** What a finished {@link FileHasher} knows: everything of every share but its blocks. */
export interface SharePlan {
  readonly params: FileParams;
  readonly uebHash: Uint8Array;
  /** Leaf of the ciphertext tree per segment (a second pass checks its segments against them). */
  readonly crypttextLeaves: readonly Uint8Array[];
  /** Length of every share. */
  readonly shareLength: number;
  /** Magic, number and UEB: the first bytes of share r. */
  head(r: number): Uint8Array;
  /** Block-tree leaves and share-tree proof: the last bytes of share r. */
  tail(r: number): Uint8Array;
}

/**
 * Accumulates the hash trees of a file segment by segment (32 bytes per segment and share), so
 * that the UEB and every share's tail are known without holding the file or its shares.
 */
export class FileHasher {
  readonly #k: number;
  readonly #n: number;
  readonly #segmentSize: number;
  readonly #size: number;
  readonly #count: number;
  readonly #crypttext: Uint8Array[] = [];
  /** Per share, its block-tree leaves, concatenated. */
  readonly #leaves: Uint8Array[];
  #next = 0;

  constructor(k: number, n: number, segmentSize: number, size: number) {
    checkParams(k, n, segmentSize);
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`storage: bad file size ${size}`);
    [this.#k, this.#n, this.#segmentSize, this.#size] = [k, n, segmentSize, size];
    this.#count = segmentCount(size, segmentSize);
    this.#leaves = Array.from({ length: n }, () => new Uint8Array(this.#count * 32));
  }

  /** Segments added so far. */
  get added(): number {
    return this.#next;
  }

  /** Adds the next segment: its ciphertext and its n blocks; returns the segment's ciphertext leaf. */
  add(ciphertextSegment: Uint8Array, blocks: readonly Uint8Array[]): Uint8Array {
    const s = this.#next;
    if (s >= this.#count) throw new RangeError('storage: more segments than the file has');
    if (ciphertextSegment.length !== segmentLength({ size: this.#size, segmentSize: this.#segmentSize }, s) || blocks.length !== this.#n) {
      throw new RangeError(`storage: segment ${s} has the wrong length or block count`);
    }
    const leaf = taggedHash('crypttext-segment', ciphertextSegment);
    this.#crypttext.push(leaf);
    blocks.forEach((b, r) => (this.#leaves[r] as Uint8Array).set(taggedHash('block', b), s * 32));
    this.#next++;
    return leaf;
  }

  /** Once every segment was added: the trees, the UEB and each share's head and tail. */
  finish(): SharePlan {
    if (this.#next !== this.#count) throw new RangeError(`storage: ${this.#next} of ${this.#count} segments added`);
    const count = this.#count;
    const leavesOf = (r: number): Uint8Array[] => Array.from({ length: count }, (_, s) => (this.#leaves[r] as Uint8Array).subarray(s * 32, (s + 1) * 32));
    const shareLeaves = Array.from({ length: this.#n }, (_, r) => taggedHash('share', Uint8Array.of(r), merkleRoot(leavesOf(r))));
    const params: FileParams = { k: this.#k, n: this.#n, segmentSize: this.#segmentSize, size: this.#size, crypttextRoot: merkleRoot(this.#crypttext), shareRoot: merkleRoot(shareLeaves) };
    const leaves = this.#leaves;
    return {
      params,
      uebHash: taggedHash('ueb', encodeUeb(params)),
      crypttextLeaves: this.#crypttext,
      shareLength: shareLength(params.k, params.n, params.segmentSize, params.size),
      head: (r) => shareHead(params, r),
      tail: (r) => {
        const proof = merkleProof(shareLeaves, r);
        const out = new Uint8Array(count * 32 + proof.length * 32);
        out.set(leaves[r] as Uint8Array);
        proof.forEach((p, i) => out.set(p, count * 32 + i * 32));
        return out;
      },
    };
  }
}

/** Magic, number and UEB: the first {@link SHARE_HEAD_BYTES} bytes of share r of a file. */
export function shareHead(params: FileParams, r: number): Uint8Array {
  const out = new Uint8Array(SHARE_HEAD_BYTES);
  out.set(MAGIC);
  out[4] = r;
  out.set(encodeUeb(params), 5);
  return out;
}

/** The capabilities and storage index of a file hashed by a {@link FileHasher} under `key`. */
export function capsOf(key: Uint8Array, plan: SharePlan): { readCap: string; verifyCap: string; storageIndex: string } {
  const { k, n, size } = plan.params;
  const si = storageIndexOf(key);
  return {
    readCap: formatReadCap({ key, uebHash: plan.uebHash, k, n, size }),
    verifyCap: formatVerifyCap({ storageIndex: si, uebHash: plan.uebHash, k, n, size }),
    storageIndex: b32.enc(si),
  };
}

/** A fresh random file key. */
export function newFileKey(): Uint8Array {
  return randomBytes(KEY_BYTES);
}

/** Checks the common parameters of a streamed encoding (RangeError otherwise). */
export function checkEncodeParams(k: number, n: number, segmentSize: number, key: Uint8Array): void {
  checkParams(k, n, segmentSize);
  if (key.length !== KEY_BYTES) throw new RangeError('storage: the file key must be 32 bytes');
}

/**
 * Rebuilds the k data blocks of segment `s` from k verified blocks and re-encodes all n (for
 * repair); returns the ciphertext segment too, for the ciphertext tree.
 */
export function reencodeSegment(params: FileParams, s: number, blocks: readonly { num: number; data: Uint8Array }[], rs = new ReedSolomon(params.k, params.n)): { ciphertext: Uint8Array; blocks: Uint8Array[] } {
  const data = rs.decode(blocks);
  const ciphertext = joinBlocks(data, segmentLength(params, s));
  return { ciphertext, blocks: rs.encode(data) };
}
