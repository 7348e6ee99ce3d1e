/**
 * (b) Streaming: ConverseStream with the fake pacing frames `frameDelayMs` apart, each frame
 * stamped with the moment the fake wrote it (bench/lib/stamped-stream.ts). For every door:
 * time to first byte, and each frame's delay from the fake's write to the client having it
 * whole. The relay's share is the difference from the direct call.
 */
import { keyFor, MASTER_KEY } from '../lib/bench-key.js';
import { converseStreamCall, type BenchContext } from '../lib/context.js';
import { directDoor, lambdaDoor, probe, relayHttpDoor, timeToFirstByte, type Door } from '../lib/doors.js';
import { framesOf } from '../lib/frames.js';
import type { Row, SectionResult } from '../lib/report.js';
import { installStampedStream, STAMPED_MODEL, stampOf } from '../lib/stamped-stream.js';
import { interleave } from '../lib/interleave.js';
import { difference, summarize, type Summary } from '../lib/stats.js';

const TARGET_FRAME_P50_MS = 1;
const TARGET_FRAME_P99_MS = 3;

export async function streamingSection(ctx: BenchContext): Promise<SectionResult> {
  const deltas = 8;
  const frameDelayMs = 10;
  const remove = installStampedStream(ctx.fake, { deltas, frameDelayMs });
  try {
    const localKey = await keyFor(ctx.key, relayHttpDoor(ctx.relay.url, MASTER_KEY));
    const lambdaKey = await keyFor(ctx.key, lambdaDoor(ctx.handler, MASTER_KEY));
    const doors: Door[] = [directDoor(ctx.fake.url), relayHttpDoor(ctx.relay.url, localKey), lambdaDoor(ctx.handler, lambdaKey)];
    const call = converseStreamCall(STAMPED_MODEL);
    const ttfb = new Map<string, number[]>(doors.map((door) => [door.name, []]));
    const frameDelay = new Map<string, number[]>(doors.map((door) => [door.name, []]));
    let incomplete = 0;
    for (const door of doors) await probe(door, call);

    const outcome = await interleave(doors, call, {
      warmup: ctx.quick ? 5 : 10,
      rounds: ctx.quick ? 20 : 60,
      budgetMs: ctx.quick ? 6_000 : 30_000,
      onResponse(door, response, measured) {
        const frames = framesOf(response.chunks);
        if (response.status !== 200 || !response.complete || frames.length !== deltas + 4) {
          incomplete++;
          return;
        }
        if (!measured) return;
        ttfb.get(door.name)!.push(timeToFirstByte(response));
        for (const { at, frame } of frames) {
          const sent = stampOf((frame.json as { p?: unknown }).p);
          if (sent !== undefined) frameDelay.get(door.name)!.push(performance.timeOrigin + at - sent);
        }
      },
      afterRound: () => ctx.fake.requests.splice(0),
    });
    for (const door of doors) door.close();

    const ttfbSummaries = Object.fromEntries([...ttfb].map(([name, values]) => [name, summarize(values)])) as Record<string, Summary>;
    const frameSummaries = Object.fromEntries([...frameDelay].map(([name, values]) => [name, summarize(values)])) as Record<string, Summary>;
    const rows: Row[] = [];
    for (const name of ['local server', 'lambda handler']) {
      const frame = frameSummaries[name]!;
      const frameDirect = frameSummaries['direct']!;
      const extra = difference(frame, frameDirect);
      const frameRow = (p: 'p50' | 'p99', target: number): Row => ({
        section: 'streaming',
        metric: `frame delay ${p}, ${name}`,
        unit: 'ms',
        value: frame[p],
        direct: frameDirect[p],
        target: `< ${target} ms added`,
        pass: extra[p] < target,
      });
      rows.push(
        { section: 'streaming', metric: `time to first byte p50, ${name}`, unit: 'ms', value: ttfbSummaries[name]!.p50, direct: ttfbSummaries['direct']!.p50 },
        { section: 'streaming', metric: `time to first byte p99, ${name}`, unit: 'ms', value: ttfbSummaries[name]!.p99, direct: ttfbSummaries['direct']!.p99 },
        frameRow('p50', TARGET_FRAME_P50_MS),
        frameRow('p99', TARGET_FRAME_P99_MS),
      );
    }
    return {
      name: 'streaming',
      rows,
      details: {
        workload: `ConverseStream, ${deltas + 4} frames ${frameDelayMs} ms apart, one stream at a time per door, interleaved`,
        key: ctx.key.label,
        streams: outcome.measuredRounds,
        incomplete,
        timeToFirstByteMs: ttfbSummaries,
        frameDelayMs: frameSummaries,
      },
    };
  } finally {
    remove();
  }
}
