/**
 * A ConverseStream reply whose frames carry the moment the fake wrote them, so a client can
 * measure each frame's delay from the fake's socket write to its own decoder without a hook in
 * the fake: a fake.override() answering with a custom reply built from eventFrame().
 *
 * The stamp is epoch milliseconds with sub-millisecond precision (performance.timeOrigin +
 * performance.now()). It goes in Bedrock's throw-away padding field `p` of every frame (clients
 * ignore it) and also as the text of each contentBlockDelta, which is what survives a gateway
 * that translates the stream into another format (Portkey's OpenAI SSE).
 */
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { EVENTSTREAM_CONTENT_TYPE, eventFrame, expectedConverseUsage, type FakeBedrock } from '../../test/support/fake-bedrock.js';

/** The model ID that selects the stamped reply; any other request gets the fake's own answers. */
export const STAMPED_MODEL = 'bench.stamped-v1:0';
const STAMP_PREFIX = 't=';

export interface StampedOptions {
  /** contentBlockDelta frames per reply (the frames a client waits for token by token). */
  readonly deltas: number;
  /** Pause between frames, as a model's token cadence. */
  readonly frameDelayMs: number;
}

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

export function installStampedStream(fake: FakeBedrock, options: StampedOptions): () => void {
  return fake.override((req) => {
    if (req.operation !== 'ConverseStream' || req.modelId !== STAMPED_MODEL) return undefined;
    return { kind: 'custom', write: (res) => writeStamped(res, req.body, options) };
  });
}

async function writeStamped(res: ServerResponse, requestBody: Buffer, options: StampedOptions): Promise<void> {
  const frames: ((stamp: string) => Uint8Array)[] = [
    (stamp) => eventFrame('messageStart', { role: 'assistant', p: stamp }),
    ...Array.from(
      { length: options.deltas },
      () => (stamp: string) => eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: stamp }, p: stamp }),
    ),
    (stamp) => eventFrame('contentBlockStop', { contentBlockIndex: 0, p: stamp }),
    (stamp) => eventFrame('messageStop', { stopReason: 'end_turn', p: stamp }),
    (stamp) => eventFrame('metadata', { usage: expectedConverseUsage(requestBody), metrics: { latencyMs: 1 }, p: stamp }),
  ];
  let closed = false;
  res.once('close', () => (closed = true));
  res.writeHead(200, { 'content-type': EVENTSTREAM_CONTENT_TYPE });
  res.flushHeaders();
  for (const [index, build] of frames.entries()) {
    if (index > 0) await sleep(options.frameDelayMs);
    if (closed) return;
    // The stamp is taken immediately before the bytes are handed to the socket.
    await new Promise<void>((resolve) => res.write(build(`${STAMP_PREFIX}${epochNow().toFixed(3)}`), () => resolve()));
  }
  res.end();
}

/** The stamp in a frame payload or a text delta, or undefined. */
export function stampOf(value: unknown): number | undefined {
  if (typeof value !== 'string' || !value.startsWith(STAMP_PREFIX)) return undefined;
  const parsed = Number(value.slice(STAMP_PREFIX.length));
  return Number.isFinite(parsed) ? parsed : undefined;
}
