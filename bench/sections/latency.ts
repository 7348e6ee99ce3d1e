/**
 * (a) Added latency of a non-streaming Converse: the local server (HTTP/1.1 keep-alive client)
 * and the Lambda handler called in-process, each against the direct call to the same fake.
 * Calls are interleaved (direct, local, lambda, rotating who goes first) so that load from
 * elsewhere on the machine falls on all three alike.
 *
 * Beside them, two floors: the same direct call through a plain TCP pipe in a process of its own
 * (bench/processes/tcp-pipe.ts), what any extra process on the path costs on this machine; and
 * the relay's call through the least relay node:http allows (bench/processes/signing-proxy.ts:
 * parse, buffer, SigV4, forward; no key check, policy, accounting or logs), what any Node.js
 * relay costs. The local server's added latency is reported against both as a ratio (issue 12).
 */
import { keyFor, MASTER_KEY } from '../lib/bench-key.js';
import { converseCall, type BenchContext } from '../lib/context.js';
import { directDoor, lambdaDoor, probe, relayHttpDoor, type Door } from '../lib/doors.js';
import { interleave } from '../lib/interleave.js';
import { FLOORS, SIGNING_PROXY_FLOOR, spawnSigningProxy, spawnTcpPipe, TCP_PIPE_FLOOR } from '../lib/processes.js';
import type { Row, SectionResult } from '../lib/report.js';
import { difference, summarize, type Summary } from '../lib/stats.js';

const TARGET_P50_MS = 1;
const TARGET_P99_MS = 3;
/** Issue 12's goals for the local server (`npm start`). */
const LOCAL_TARGET_P50_MS = 0.5;
const LOCAL_TARGET_P99_MS = 2;
type Percentile = 'p50' | 'p99';

export async function latencySection(ctx: BenchContext): Promise<SectionResult> {
  const warmup = ctx.quick ? 200 : 500;
  const rounds = ctx.quick ? 600 : 3000;
  const budgetMs = ctx.quick ? 8_000 : 45_000;
  const localKey = await keyFor(ctx.key, relayHttpDoor(ctx.relay.url, MASTER_KEY));
  const lambdaKey = await keyFor(ctx.key, lambdaDoor(ctx.handler, MASTER_KEY));
  const pipe = await spawnTcpPipe(ctx.fake.port);
  const proxy = await spawnSigningProxy(ctx.fake.port);
  const doors: Door[] = [
    directDoor(ctx.fake.url),
    { ...directDoor(pipe.url), name: TCP_PIPE_FLOOR },
    { ...relayHttpDoor(proxy.url, 'not-checked'), name: SIGNING_PROXY_FLOOR },
    relayHttpDoor(ctx.relay.url, localKey),
    lambdaDoor(ctx.handler, lambdaKey),
  ];
  const samples = new Map<string, number[]>(doors.map((door) => [door.name, []]));
  const failures = new Map<string, number>(doors.map((door) => [door.name, 0]));
  const call = converseCall();
  for (const door of doors) await probe(door, call);

  const outcome = await interleave(doors, call, {
    warmup,
    rounds,
    budgetMs,
    onResponse(door, response, measured) {
      if (response.status !== 200 || !response.complete) failures.set(door.name, failures.get(door.name)! + 1);
      else if (measured) samples.get(door.name)!.push(response.endedAt - response.startedAt);
    },
    // The fake keeps every request; forget them (not the overrides) so memory stays flat.
    afterRound: (round) => round % 500 === 0 && ctx.fake.requests.splice(0),
  });
  for (const door of doors) door.close();
  await pipe.stop();
  await proxy.stop();

  const summaries = Object.fromEntries([...samples].map(([name, values]) => [name, summarize(values)])) as Record<string, Summary>;
  const direct = summaries['direct']!;
  const rows: Row[] = [];
  const floors = FLOORS.map((name) => ({ name, added: difference(summaries[name]!, direct) }));
  const overFloors = (extra: Pick<Summary, Percentile>, p: Percentile) =>
    floors.map((floor) => `${(extra[p] / floor.added[p]).toFixed(1)}× the ${floor.name.replace(' (floor)', '')}'s +${floor.added[p].toFixed(3)} ms`).join('; ');
  for (const name of FLOORS) {
    for (const p of ['p50', 'p99'] as const)
      rows.push({ section: 'latency', metric: `Converse ${p}, ${name}`, unit: 'ms', value: summaries[name]![p], direct: direct[p] });
  }
  for (const name of ['local server', 'lambda handler']) {
    const summary = summaries[name]!;
    const extra = difference(summary, direct);
    const targets = name === 'local server' ? { p50: LOCAL_TARGET_P50_MS, p99: LOCAL_TARGET_P99_MS } : { p50: TARGET_P50_MS, p99: TARGET_P99_MS };
    const targetRow = (p: Percentile): Row => ({
      section: 'latency',
      metric: `Converse ${p}, ${name}`,
      unit: 'ms',
      value: summary[p],
      direct: direct[p],
      target: `≤ ${targets[p]} ms added`,
      pass: extra[p] <= targets[p],
      note: name === 'local server' ? overFloors(extra, p) : undefined,
    });
    rows.push(targetRow('p50'), { section: 'latency', metric: `Converse p90, ${name}`, unit: 'ms', value: summary.p90, direct: direct.p90 }, targetRow('p99'));
  }
  return {
    name: 'latency',
    rows,
    details: {
      workload: 'Converse (non-streaming), amazon.nova-micro-v1:0, one call at a time per door, interleaved',
      key: ctx.key.label,
      warmup,
      rounds: outcome.measuredRounds,
      ...(outcome.cutShort ? { cutShort: `time budget of ${budgetMs / 1000} s reached after ${outcome.measuredRounds} of ${rounds} rounds` } : {}),
      failures: Object.fromEntries(failures),
      summariesMs: summaries,
      addedMs: {
        ...Object.fromEntries(floors.map((floor) => [floor.name, floor.added])),
        'local server': difference(summaries['local server']!, direct),
        'lambda handler': difference(summaries['lambda handler']!, direct),
      },
    },
  };
}
