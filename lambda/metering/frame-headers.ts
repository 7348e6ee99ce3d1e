/**
 * Finds the two routing headers of an event-stream frame (`:message-type`, `:event-type`)
 * in its bytes, without decoding anything else.
 *
 * Why not the codec for this: decoding a frame turns every header into strings and checks two
 * CRCs, several microseconds per frame; a ConverseStream has one frame per token and only its
 * last (`metadata`) frame carries usage. The meter peeks at every frame with this and hands only
 * the frames it needs to @smithy/eventstream-codec, which validates and decodes them fully.
 *
 * Header wire format (AWS event stream): name length (1 byte), name, value type (1 byte), value.
 * Value sizes by type: 0/1 booleans 0, 2 byte 1, 3 short 2, 4 integer 4, 5 long 8,
 * 6 bytes and 7 string 2-byte length + data, 8 timestamp 8, 9 uuid 16.
 */

/** Value size by type; -1 for the length-prefixed types (6, 7). */
const FIXED_SIZES: readonly number[] = [0, 0, 1, 2, 4, 8, -1, -1, 8, 16];
const STRING = 7;
const BYTES = 6;

const MESSAGE_TYPE = Buffer.from(':message-type');
const EVENT_TYPE = Buffer.from(':event-type');

/** Where the routing header values sit in the frame (start/end offsets; -1 when absent). */
export interface FrameRouting {
  messageTypeStart: number;
  messageTypeEnd: number;
  eventTypeStart: number;
  eventTypeEnd: number;
}

export function newRouting(): FrameRouting {
  return { messageTypeStart: -1, messageTypeEnd: -1, eventTypeStart: -1, eventTypeEnd: -1 };
}

/** Fills `out` (reused across frames: no allocation per frame); false when the header block is malformed. */
export function peekRouting(frame: Uint8Array, out: FrameRouting): boolean {
  out.messageTypeStart = out.messageTypeEnd = out.eventTypeStart = out.eventTypeEnd = -1;
  if (frame.byteLength < 16) return false;
  const headersLength = ((frame[4]! << 24) | (frame[5]! << 16) | (frame[6]! << 8) | frame[7]!) >>> 0;
  const end = 12 + headersLength;
  if (end > frame.byteLength - 4) return false;
  let at = 12;
  while (at < end) {
    const nameLength = frame[at]!;
    const nameStart = at + 1;
    const typeAt = nameStart + nameLength;
    if (typeAt >= end) return false;
    const type = frame[typeAt]!;
    let valueStart = typeAt + 1;
    let valueLength: number;
    if (type === STRING || type === BYTES) {
      if (valueStart + 2 > end) return false;
      valueLength = (frame[valueStart]! << 8) | frame[valueStart + 1]!;
      valueStart += 2;
    } else {
      const size = type < FIXED_SIZES.length ? FIXED_SIZES[type]! : -1;
      if (size < 0) return false;
      valueLength = size;
    }
    const next = valueStart + valueLength;
    if (next > end) return false;
    if (type === STRING) {
      if (bytesEqual(frame, nameStart, typeAt, MESSAGE_TYPE)) {
        out.messageTypeStart = valueStart;
        out.messageTypeEnd = next;
      } else if (bytesEqual(frame, nameStart, typeAt, EVENT_TYPE)) {
        out.eventTypeStart = valueStart;
        out.eventTypeEnd = next;
      }
    }
    at = next;
  }
  return true;
}

/** Do the bytes [start, end) of `frame` equal `expected`? */
export function bytesEqual(frame: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start !== expected.byteLength) return false;
  for (let i = 0; i < expected.byteLength; i++) if (frame[start + i] !== expected[i]) return false;
  return true;
}
