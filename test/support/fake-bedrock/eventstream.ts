/**
 * AWS event-stream frames (application/vnd.amazon.eventstream) as Bedrock sends them, built and
 * read with `@smithy/eventstream-codec` so the bytes are those the SDKs parse.
 */
import { EventStreamCodec } from '@smithy/eventstream-codec';
import type { MessageHeaders } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

export const EVENTSTREAM_CONTENT_TYPE = 'application/vnd.amazon.eventstream';

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/**
 * Bedrock pads streamed events with a `p` field of throw-away characters so that frame sizes do
 * not reveal token lengths. The fake does the same (deterministically), so meters must ignore it.
 */
export function padding(seed: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return alphabet.slice(0, 8 + ((seed * 7) % (alphabet.length - 8)));
}

/** An `event` frame: `:event-type` names the union member, the payload is its JSON. */
export function eventFrame(eventType: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: stringHeaders({ ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' }),
    body: fromUtf8(JSON.stringify(payload)),
  });
}

/** An `exception` frame: a modelled error the SDK raises as the named exception, mid-stream. */
export function exceptionFrame(exceptionType: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: stringHeaders({ ':exception-type': exceptionType, ':content-type': 'application/json', ':message-type': 'exception' }),
    body: fromUtf8(JSON.stringify(payload)),
  });
}

/**
 * A `chunk` event (InvokeModelWithResponseStream, InvokeAgent): the payload, JSON or text, goes
 * base64-encoded in `bytes`. Pass a padding seed for the surfaces that pad (see `padding`).
 */
export function chunkFrame(inner: unknown, paddingSeed?: number): Uint8Array {
  const bytes = Buffer.from(typeof inner === 'string' ? inner : JSON.stringify(inner), 'utf8').toString('base64');
  return eventFrame('chunk', paddingSeed === undefined ? { bytes } : { bytes, p: padding(paddingSeed) });
}

export interface DecodedFrame {
  /** Header values; string headers as strings, others as the codec gives them. */
  readonly headers: Readonly<Record<string, unknown>>;
  readonly messageType: string | undefined;
  readonly eventType: string | undefined;
  readonly exceptionType: string | undefined;
  readonly body: Buffer;
  /** The payload parsed as JSON, when it is JSON. */
  readonly json: unknown;
  /** For `chunk` events: the base64 `bytes` decoded and parsed as JSON (undefined otherwise). */
  readonly chunk: unknown;
}

/**
 * Split a buffer holding whole frames into decoded frames. Throws on a truncated or corrupt
 * frame (the codec checks both CRCs), which is what a test of byte-exact relaying wants.
 */
export function decodeEventStream(data: Uint8Array): DecodedFrame[] {
  const frames: DecodedFrame[] = [];
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  while (offset < buf.length) {
    if (buf.length - offset < 4) throw new Error(`truncated event-stream frame at byte ${offset}`);
    const total = buf.readUInt32BE(offset);
    if (total < 16 || offset + total > buf.length) throw new Error(`truncated event-stream frame at byte ${offset}`);
    const message = codec.decode(buf.subarray(offset, offset + total));
    offset += total;
    const headers: Record<string, unknown> = {};
    for (const [name, header] of Object.entries(message.headers)) headers[name] = header.value;
    const body = Buffer.from(message.body);
    const json = tryJson(body.toString('utf8'));
    const eventType = stringOrUndefined(headers[':event-type']);
    const bytes = eventType === 'chunk' && isRecord(json) && typeof json['bytes'] === 'string' ? json['bytes'] : undefined;
    frames.push({
      headers,
      messageType: stringOrUndefined(headers[':message-type']),
      eventType,
      exceptionType: stringOrUndefined(headers[':exception-type']),
      body,
      json,
      chunk: bytes === undefined ? undefined : tryJson(Buffer.from(bytes, 'base64').toString('utf8')),
    });
  }
  return frames;
}

function stringHeaders(values: Record<string, string>): MessageHeaders {
  const headers: MessageHeaders = {};
  for (const [name, value] of Object.entries(values)) headers[name] = { type: 'string', value };
  return headers;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
