/**
 * Meter for AWS event streams (ConverseStream, InvokeModelWithResponseStream, InvokeAgent…).
 *
 * Frames are cut by FrameReader. Each frame's routing headers are peeked at (frame-headers.ts);
 * the frames a reader needs are decoded with @smithy/eventstream-codec, which checks both CRCs.
 * An `exception` (or `error`) frame ends the stream: counting stops there and whatever usage was
 * already reported is kept. A frame that does not parse means the bytes are not an event stream
 * we understand: the meter stops reading, and never throws.
 */
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { Meter, MeterResult } from '../pipeline.js';
import { bytesEqual, newRouting, peekRouting } from './frame-headers.js';
import { FrameReader } from './frames.js';
import { UsageState } from './usage.js';

// decode() keeps no state between calls, so one codec serves every meter.
const codec = new EventStreamCodec(toUtf8, fromUtf8);

const EVENT = Buffer.from('event');

/** Reads usage out of the events of one operation's stream. */
export interface EventReader {
  /** The event types to decode and pass to event(); other frames are skipped after a header peek. */
  readonly events: ReadonlySet<string>;
  /**
   * Only the last of these events can carry usage: keep a copy of the latest and decode that one
   * at the end, instead of decoding each (InvokeModelWithResponseStream: one chunk per token).
   */
  readonly lastOnly?: boolean;
  /** One decoded `event` frame. `body` may view the response chunk: copy anything kept past the call. */
  event(eventType: string, body: Uint8Array, state: UsageState): void;
  /**
   * The stream is a model's answer whose usage comes last: if it ends before that, the meter
   * estimates from the content events (UsageState.result()).
   */
  readonly estimates?: boolean;
  /** The event types that carry generated content, passed to content() as they pass. */
  readonly content?: ReadonlySet<string>;
  /**
   * One content event's payload, read without the CRC checks: it only feeds an estimate, and the
   * exact usage is still read from a validated frame. May view the response chunk.
   */
  contentEvent?(eventType: string, payload: Uint8Array, state: UsageState): void;
}

export class EventStreamMeter implements Meter {
  private readonly frames = new FrameReader();
  private readonly state: UsageState;
  private stopped = false;
  private kept: { eventType: string; frame: Uint8Array } | undefined;
  private readonly routing = newRouting();
  private readonly wanted: ReadonlyArray<readonly [string, Buffer]>;
  private readonly content: ReadonlyArray<readonly [string, Buffer]>;

  constructor(private readonly reader: EventReader) {
    this.wanted = [...reader.events].map((name) => [name, Buffer.from(name)] as const);
    this.content = [...(reader.content ?? [])].map((name) => [name, Buffer.from(name)] as const);
    this.state = new UsageState(reader.estimates === true);
  }

  observe(chunk: Uint8Array): void {
    if (this.stopped) return;
    if (!this.frames.push(chunk, this.onFrame)) this.stopped = true;
  }

  finish(): MeterResult {
    this.stopped = true;
    if (this.kept) {
      const { eventType, frame } = this.kept;
      this.kept = undefined;
      this.decode(eventType, frame);
    }
    return this.state.result();
  }

  private readonly onFrame = (frame: Uint8Array): void => {
    if (this.stopped) return;
    const r = this.routing;
    if (!peekRouting(frame, r)) {
      this.stopped = true;
      return;
    }
    // Only `event` frames carry data; `exception` and `error` end the stream.
    if (r.messageTypeStart === -1 || !bytesEqual(frame, r.messageTypeStart, r.messageTypeEnd, EVENT)) {
      this.stopped = true;
      return;
    }
    if (r.eventTypeStart === -1) return;
    if (this.content.length > 0) {
      const contentType = this.content.find(([, bytes]) => bytesEqual(frame, r.eventTypeStart, r.eventTypeEnd, bytes))?.[0];
      if (contentType !== undefined) this.reader.contentEvent?.(contentType, framePayload(frame), this.state);
    }
    const eventType = this.wanted.find(([, bytes]) => bytesEqual(frame, r.eventTypeStart, r.eventTypeEnd, bytes))?.[0];
    if (eventType === undefined) return;
    if (this.reader.lastOnly) this.kept = { eventType, frame: new Uint8Array(frame) };
    else this.decode(eventType, frame);
  };

  private decode(eventType: string, frame: Uint8Array): void {
    let body: Uint8Array;
    try {
      body = codec.decode(frame).body;
    } catch {
      this.stopped = true; // CRC mismatch or bad headers: not a stream to trust
      return;
    }
    this.reader.event(eventType, body, this.state);
  }
}

/** The payload of a frame whose prelude peekRouting() has checked: after the headers, before the CRC. */
function framePayload(frame: Uint8Array): Uint8Array {
  const headersLength = ((frame[4]! << 24) | (frame[5]! << 16) | (frame[6]! << 8) | frame[7]!) >>> 0;
  return frame.subarray(12 + headersLength, frame.byteLength - 4);
}

/** Parses a frame body as JSON; undefined when it is not JSON. */
export function parseBody(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Does the body contain this text? A cheap test before parsing a large event. */
export function bodyIncludes(body: Uint8Array, needle: Buffer): boolean {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).indexOf(needle) !== -1;
}
