/**
 * Splits an AWS event stream (application/vnd.amazon.eventstream) into whole frames as bytes
 * arrive in arbitrary chunks.
 *
 * A frame starts with its total length (4 bytes, big-endian), so the reader only ever keeps the
 * one partial frame at the end of a chunk; whole frames inside a chunk are handed on as views of
 * it without copying. The length is bounded: anything outside [16, maxFrameBytes] is not an
 * event stream, and the reader stops rather than buffer without limit.
 */

/** The smallest frame: prelude (8) + prelude CRC (4) + message CRC (4). */
export const MIN_FRAME_BYTES = 16;
/** AWS event stream messages carry at most 16 MiB of payload; allow for headers on top. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024 + 128 * 1024;

/** Receives one whole frame. The bytes may view the caller's chunk: copy anything kept. */
export type FrameSink = (frame: Uint8Array) => void;

export class FrameReader {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Total length of the pending frame, once its first 4 bytes are in. */
  private expected = 0;
  private broken = false;

  constructor(private readonly maxFrameBytes: number = MAX_FRAME_BYTES) {}

  /** False once the stream has shown it is not a valid frame sequence. */
  get healthy(): boolean {
    return !this.broken;
  }

  /** True when bytes of an unfinished frame are held. */
  get midFrame(): boolean {
    return this.pendingBytes > 0;
  }

  push(chunk: Uint8Array, sink: FrameSink): boolean {
    if (this.broken) return false;
    let offset = 0;
    const n = chunk.byteLength;

    if (this.pendingBytes > 0) {
      if (this.pendingBytes < 4) {
        const take = Math.min(4 - this.pendingBytes, n);
        this.hold(chunk.subarray(0, take));
        offset = take;
        if (this.pendingBytes < 4) return true;
      }
      if (this.expected === 0 && !this.setExpected(this.peekLength())) return false;
      const need = this.expected - this.pendingBytes;
      if (n - offset < need) {
        this.hold(chunk.subarray(offset));
        return true;
      }
      const frame = new Uint8Array(this.expected);
      let at = 0;
      for (const piece of this.pending) {
        frame.set(piece, at);
        at += piece.byteLength;
      }
      frame.set(chunk.subarray(offset, offset + need), at);
      offset += need;
      this.pending = [];
      this.pendingBytes = 0;
      this.expected = 0;
      sink(frame);
    }

    while (n - offset >= 4) {
      const length = uint32(chunk, offset);
      if (!this.valid(length)) return false;
      if (n - offset < length) break;
      sink(chunk.subarray(offset, offset + length));
      offset += length;
    }
    if (offset < n) {
      this.hold(chunk.subarray(offset));
      if (this.pendingBytes >= 4 && !this.setExpected(this.peekLength())) return false;
    }
    return true;
  }

  private valid(length: number): boolean {
    if (length >= MIN_FRAME_BYTES && length <= this.maxFrameBytes) return true;
    this.broken = true;
    this.pending = [];
    this.pendingBytes = 0;
    return false;
  }

  private setExpected(length: number): boolean {
    if (!this.valid(length)) return false;
    this.expected = length;
    return true;
  }

  /** Keeps a copy: the caller's chunk goes on to the client and may be reused. */
  private hold(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.pending.push(new Uint8Array(bytes));
    this.pendingBytes += bytes.byteLength;
  }

  private peekLength(): number {
    let value = 0;
    let got = 0;
    for (const piece of this.pending) {
      for (let i = 0; i < piece.byteLength && got < 4; i++, got++) value = value * 256 + piece[i]!;
      if (got === 4) break;
    }
    return value;
  }
}

/** Big-endian uint32 without allocating a DataView per chunk. */
function uint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}
