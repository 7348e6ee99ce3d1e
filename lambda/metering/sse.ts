/**
 * Server-sent events, parsed incrementally from bytes: `event:` and `data:` fields, multi-line
 * data joined with "\n", comments and other fields ignored, an event dispatched at the blank
 * line that ends it (and, leniently, at the end of the stream). An event larger than the limit
 * is skipped whole rather than buffered.
 */
import { LineScanner, type LineSink } from './lines.js';

export const MAX_SSE_EVENT_BYTES = 8 * 1024 * 1024;

/**
 * One event: its data field joined, as bytes (may view the caller's chunk: copy to keep), and
 * its `event:` name, decoded only if asked for (most readers need neither text).
 */
export type SseHandler = (data: Buffer, eventName: () => string | undefined) => void;

const NEWLINE = Buffer.from('\n');
const COLON = 0x3a;
const SPACE = 0x20;

export class SseParser {
  private readonly lines: LineScanner;
  private eventName: Uint8Array | undefined;
  private data: Uint8Array[] = [];
  private dataBytes = 0;
  /** Index of the first data piece that still views the caller's chunk. */
  private firstView = 0;
  private skipping = false;

  constructor(
    private readonly handler: SseHandler,
    private readonly maxEventBytes: number = MAX_SSE_EVENT_BYTES,
  ) {
    this.lines = new LineScanner(maxEventBytes);
  }

  push(chunk: Uint8Array): void {
    this.lines.push(chunk, this.sink);
    // Data pieces still waiting for their blank line must not view the chunk after this call.
    for (let i = this.firstView; i < this.data.length; i++) this.data[i] = new Uint8Array(this.data[i]!);
    this.firstView = this.data.length;
    // Likewise the event name, when it views the chunk (lines that spanned chunks are copies already).
    if (this.eventName && this.eventName.buffer === chunk.buffer) this.eventName = new Uint8Array(this.eventName);
  }

  end(): void {
    this.lines.end(this.sink);
    this.dispatch();
  }

  private readonly sink: LineSink = {
    line: (line) => this.onLine(line),
  };

  private onLine(line: Uint8Array | undefined): void {
    if (line === undefined) {
      this.skipping = true;
      return;
    }
    if (line.byteLength === 0) {
      this.dispatch();
      return;
    }
    if (line[0] === COLON || this.skipping) return;
    const colon = line.indexOf(COLON);
    const nameEnd = colon === -1 ? line.byteLength : colon;
    let valueStart = colon === -1 ? line.byteLength : colon + 1;
    if (valueStart < line.byteLength && line[valueStart] === SPACE) valueStart++;
    const name = fieldName(line, nameEnd);
    if (name === 'data') {
      const value = line.subarray(valueStart);
      this.dataBytes += value.byteLength + 1;
      if (this.dataBytes > this.maxEventBytes) {
        this.skipping = true;
        this.data = [];
        this.firstView = 0;
        return;
      }
      this.data.push(value);
    } else if (name === 'event') {
      this.eventName = line.subarray(valueStart);
    }
  }

  private dispatch(): void {
    const { data, eventName, skipping } = this;
    this.data = [];
    this.firstView = 0;
    this.dataBytes = 0;
    this.eventName = undefined;
    this.skipping = false;
    if (skipping || data.length === 0) return;
    const joined =
      data.length === 1
        ? Buffer.from(data[0]!.buffer, data[0]!.byteOffset, data[0]!.byteLength)
        : Buffer.concat(data.flatMap((piece, i) => (i === 0 ? [piece] : [NEWLINE, piece])));
    this.handler(joined, () => (eventName ? Buffer.from(eventName.buffer, eventName.byteOffset, eventName.byteLength).toString('utf8') : undefined));
  }
}

/** Only the two field names that matter are recognised; anything else is ignored cheaply. */
function fieldName(line: Uint8Array, end: number): 'data' | 'event' | undefined {
  if (end === 4 && line[0] === 0x64 && line[1] === 0x61 && line[2] === 0x74 && line[3] === 0x61) return 'data';
  if (end === 5 && line[0] === 0x65 && line[1] === 0x76 && line[2] === 0x65 && line[3] === 0x6e && line[4] === 0x74) return 'event';
  return undefined;
}
