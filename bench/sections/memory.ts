/**
 * (d) Peak memory of the relay process (`npm start`) with 200 concurrent streams.
 *
 * The relay runs in a child process; its peak resident set (VmHWM in /proc/<pid>/status) is
 * reset after warm-up (clear_refs), so the reading covers the load only, not start-up. The
 * baseline is the same process idle after warm-up: the difference is what 200 open streams
 * cost. (A direct call has no relay process, so there is no direct figure to set against.)
 */
import { keyFor, MASTER_KEY } from '../lib/bench-key.js';
import { converseStreamCall, type BenchContext } from '../lib/context.js';
import { probe, relayHttpDoor } from '../lib/doors.js';
import { framesOf } from '../lib/frames.js';
import { memoryOf, resetPeakMemory } from '../lib/processes.js';
import type { Row, SectionResult } from '../lib/report.js';
import { installStampedStream, STAMPED_MODEL } from '../lib/stamped-stream.js';

export async function memorySection(ctx: BenchContext): Promise<SectionResult> {
  const concurrency = 200;
  const deltas = 40;
  const frameDelayMs = 20;
  const pid = ctx.relay.pid;
  if (!memoryOf(pid)) return { name: 'memory', rows: [], details: {}, skipped: '/proc/<pid>/status is not readable here (not Linux?)' };

  const remove = installStampedStream(ctx.fake, { deltas, frameDelayMs });
  const key = await keyFor(ctx.key, relayHttpDoor(ctx.relay.url, MASTER_KEY));
  // One socket per stream, as 200 separate clients would open.
  const door = relayHttpDoor(ctx.relay.url, key, { maxSockets: concurrency });
  const call = converseStreamCall(STAMPED_MODEL);
  try {
    await probe(door, call);
    // Warm-up at full width: sockets, buffers and JIT reach their steady state first.
    await Promise.all(Array.from({ length: concurrency }, async () => door.send(await door.prepare(call))));
    ctx.fake.requests.splice(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const idle = memoryOf(pid)!;
    const peakReset = resetPeakMemory(pid);

    let sampledPeakKb = idle.rssKb;
    const sampler = setInterval(() => {
      const now = memoryOf(pid);
      if (now) sampledPeakKb = Math.max(sampledPeakKb, now.rssKb);
    }, 10);
    const started = performance.now();
    const responses = await Promise.all(Array.from({ length: concurrency }, async () => door.send(await door.prepare(call))));
    const elapsedMs = performance.now() - started;
    clearInterval(sampler);
    const after = memoryOf(pid)!;
    const peakKb = peakReset ? Math.max(after.hwmKb, sampledPeakKb) : sampledPeakKb;
    const complete = responses.filter((r) => r.status === 200 && r.complete && framesOf(r.chunks).length === deltas + 4).length;
    ctx.fake.requests.splice(0);

    const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;
    const rows: Row[] = [
      { section: 'memory', metric: `peak RSS, ${concurrency} concurrent streams`, unit: 'MB', value: mb(peakKb), note: `idle ${mb(idle.rssKb)} MB` },
      { section: 'memory', metric: 'RSS added by the streams', unit: 'MB', value: mb(peakKb - idle.rssKb) },
      { section: 'memory', metric: 'RSS per open stream', unit: 'KB', value: Math.round((peakKb - idle.rssKb) / concurrency) },
    ];
    if (complete !== concurrency) rows.push({ section: 'memory', metric: 'streams completed', unit: '', value: complete, note: `of ${concurrency}` });
    return {
      name: 'memory',
      rows,
      details: {
        workload: `${concurrency} ConverseStream calls at once through npm start, ${deltas + 4} frames ${frameDelayMs} ms apart (≈${Math.round(((deltas + 3) * frameDelayMs) / 100) / 10} s each)`,
        note: 'the relay runs under tsx (as npm start does), whose compiler accounts for part of the idle RSS',
        key: ctx.key.label,
        idleRssKb: idle.rssKb,
        peakRssKb: peakKb,
        peakFrom: peakReset ? 'VmHWM after clear_refs, and 10 ms VmRSS samples' : '10 ms VmRSS samples (VmHWM could not be reset)',
        elapsedMs: Math.round(elapsedMs),
        streamsCompleted: complete,
      },
    };
  } finally {
    door.close();
    remove();
  }
}
