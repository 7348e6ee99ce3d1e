/**
 * Incremental line splitting for text/event-stream, as the SSE specification defines lines:
 * terminated by CRLF, LF or CR, in bytes that may be cut anywhere (inside a CRLF pair or a
 * multi-byte UTF-8 character included). Works on bytes, so text is decoded only for the lines
 * a reader actually looks at.
 */

const LF = 0x0a;
const CR = 0x0d;

export interface LineSink {
  /**
   * One complete line without its terminator; `undefined` when the line was longer than the
   * scanner's limit and its content was dropped. `end` is the offset in the current chunk just
   * past the terminator. `line` may view the caller's chunk: copy anything kept.
   */
  line(line: Uint8Array | undefined, end: number): void;
  /** The chunk began with the LF of a CRLF whose CR ended the previous chunk (byte 0 of this chunk). */
  lineFeedOfPreviousLine?(): void;
}

export class LineScanner {
  private carry: Uint8Array[] = [];
  private carryBytes = 0;
  private overlong = false;
  private afterCR = false;

  constructor(private readonly maxLineBytes: number) {}

  push(input: Uint8Array, sink: LineSink): void {
    // Buffer's indexOf is native and several times faster than Uint8Array's.
    const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const n = chunk.byteLength;
    let pos = 0;
    if (this.afterCR) {
      this.afterCR = false;
      if (n > 0 && chunk[0] === LF) {
        pos = 1;
        sink.lineFeedOfPreviousLine?.();
      }
    }
    // Next CR and LF positions, searched natively and each at most once per byte.
    let nextLF = -2;
    let nextCR = -2;
    while (pos < n) {
      if (nextLF !== -1 && nextLF < pos) nextLF = chunk.indexOf(LF, pos);
      if (nextCR !== -1 && nextCR < pos) nextCR = chunk.indexOf(CR, pos);
      const eol = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : Math.min(nextLF, nextCR);
      if (eol === -1) break;
      let end = eol + 1;
      if (chunk[eol] === CR) {
        if (eol + 1 < n) {
          if (chunk[eol + 1] === LF) end = eol + 2;
        } else {
          this.afterCR = true;
        }
      }
      sink.line(this.take(chunk, pos, eol), end);
      pos = end;
    }
    if (pos < n) this.keep(chunk.subarray(pos));
  }

  /** End of input: a last line without a terminator still counts. */
  end(sink: LineSink): void {
    if (this.carryBytes > 0 || this.overlong) sink.line(this.take(new Uint8Array(0), 0, 0), 0);
  }

  private take(chunk: Uint8Array, from: number, to: number): Uint8Array | undefined {
    if (this.overlong) {
      this.overlong = false;
      return undefined;
    }
    const length = to - from;
    if (this.carryBytes === 0) return length > this.maxLineBytes ? undefined : chunk.subarray(from, to);
    const total = this.carryBytes + length;
    const pieces = this.carry;
    this.carry = [];
    this.carryBytes = 0;
    if (total > this.maxLineBytes) return undefined;
    const line = new Uint8Array(total);
    let at = 0;
    for (const piece of pieces) {
      line.set(piece, at);
      at += piece.byteLength;
    }
    line.set(chunk.subarray(from, to), at);
    return line;
  }

  private keep(bytes: Uint8Array): void {
    if (this.overlong) return;
    if (this.carryBytes + bytes.byteLength > this.maxLineBytes) {
      this.overlong = true;
      this.carry = [];
      this.carryBytes = 0;
      return;
    }
    this.carry.push(new Uint8Array(bytes));
    this.carryBytes += bytes.byteLength;
  }
}
