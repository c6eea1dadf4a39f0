/**
 * Length-prefixed frames carried inside the encrypted channel.
 *
 * Frame: `length:u32be | type:u8 | payload`, where `length` = 1 + payload length and is at most the
 * decoder's `maxFrameBytes`. The frame stream is cut into Noise transport messages of at most
 * 65,519 plaintext bytes (65,535 with the tag), one per WebSocket message, so a frame may span several
 * messages and one message may end in the middle of a frame.
 */
export const FRAME_HEADER_BYTES = 5;
/** Default largest frame: room for a batch of entries up to 2 MiB plus framing. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** Why a frame stream was refused. */
export type FrameError = 'frame-too-large' | 'empty-frame';

/** Encodes one frame header (the payload follows it on the wire). */
export function encodeFrameHeader(type: number, payloadLength: number): Uint8Array {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError('type: expected a byte');
  const out = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(out.buffer).setUint32(0, payloadLength + 1);
  out[4] = type;
  return out;
}

/**
 * Incremental frame decoder. `push` returns the frames completed by a chunk, or an error that
 * makes the stream unusable (the peer must be dropped). Memory held is bounded by
 * `maxFrameBytes` + one chunk: an announced length above the limit fails before buffering.
 */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #need = -1;
  #failed: FrameError | null = null;

  readonly #maxFrameBytes: number;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  push(chunk: Uint8Array): { frames: { type: number; payload: Uint8Array }[]; error: FrameError | null } {
    const frames: { type: number; payload: Uint8Array }[] = [];
    if (this.#failed) return { frames, error: this.#failed };
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 4) break;
        const h = this.#take(4, true);
        const len = h[0]! * 0x1000000 + ((h[1]! << 16) | (h[2]! << 8) | h[3]!);
        if (len === 0) return this.#fail('empty-frame', frames);
        if (len > this.#maxFrameBytes) return this.#fail('frame-too-large', frames);
        this.#need = len;
      }
      if (this.#buffered < 4 + this.#need) break;
      this.#take(4, false);
      const body = this.#take(this.#need, false);
      this.#need = -1;
      frames.push({ type: body[0]!, payload: body.subarray(1) });
    }
    return { frames, error: null };
  }

  #fail(error: FrameError, frames: { type: number; payload: Uint8Array }[]) {
    this.#failed = error;
    this.#chunks = [];
    this.#buffered = 0;
    return { frames, error };
  }

  /** Returns the first n buffered bytes (a view when possible), removing them unless `peek`. */
  #take(n: number, peek: boolean): Uint8Array {
    const first = this.#chunks[0]!;
    let out: Uint8Array;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (!peek) {
        if (first.length === n) this.#chunks.shift();
        else this.#chunks[0] = first.subarray(n);
      }
    } else {
      out = new Uint8Array(n);
      let o = 0;
      let i = 0;
      while (o < n) {
        const c = this.#chunks[i]!;
        const k = Math.min(c.length, n - o);
        out.set(c.subarray(0, k), o);
        o += k;
        if (!peek) {
          if (k === c.length) this.#chunks.shift();
          else this.#chunks[i] = c.subarray(k);
        } else i++;
      }
    }
    if (!peek) this.#buffered -= n;
    return out;
  }
}
