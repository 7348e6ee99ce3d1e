/**
 * Splits a received event stream back into frames, each stamped with the arrival time of the
 * chunk that completed it (a frame split across two socket reads counts when it is whole,
 * which is when a client's decoder can hand it on).
 */
import { decodeEventStream, type DecodedFrame } from '../../test/support/fake-bedrock.js';
import type { TimedChunk } from './lambda-invoke.js';

export interface TimedFrame {
  readonly at: number;
  readonly frame: DecodedFrame;
}

export function framesOf(chunks: readonly TimedChunk[]): TimedFrame[] {
  const frames: TimedFrame[] = [];
  let pending: Buffer = Buffer.alloc(0);
  for (const chunk of chunks) {
    pending = pending.byteLength === 0 ? chunk.data : Buffer.concat([pending, chunk.data]);
    while (pending.byteLength >= 4) {
      const total = pending.readUInt32BE(0);
      if (pending.byteLength < total) break;
      for (const frame of decodeEventStream(pending.subarray(0, total))) frames.push({ at: chunk.at, frame });
      pending = pending.subarray(total);
    }
  }
  return frames;
}

/** SSE events (`data: …` blocks separated by a blank line), stamped the same way. */
export function sseDataOf(chunks: readonly TimedChunk[]): { at: number; data: string }[] {
  const events: { at: number; data: string }[] = [];
  let pending = '';
  for (const chunk of chunks) {
    pending += chunk.data.toString('utf8');
    let end: number;
    while ((end = pending.indexOf('\n\n')) !== -1) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (data) events.push({ at: chunk.at, data });
    }
  }
  return events;
}
