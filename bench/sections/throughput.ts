/**
 * (c) Throughput with 1, 16 and 128 concurrent clients (autocannon, HTTP/1.1 keep-alive),
 * relay vs direct, and beside them two floors: the direct call through a plain TCP pipe in a
 * process of its own (bench/processes/tcp-pipe.ts), what any extra process on the path costs
 * in throughput on this machine, and the relay's call through the least relay node:http allows
 * (bench/processes/signing-proxy.ts: parse, buffer, SigV4, forward), what any Node.js relay costs. The fake runs in a process of its own so the load generator, the fake and
 * the relay each have an event loop; on a 2-core machine they still share the cores, which
 * is the honest condition for a relay that shares its host (Bedrock itself would be remote).
 */
import autocannon, { type Result } from 'autocannon';
import { keyFor, MASTER_KEY } from '../lib/bench-key.js';
import { converseCall, relayEnv, type BenchContext } from '../lib/context.js';
import { directDoor, probe, relayHttpDoor } from '../lib/doors.js';
import { FLOORS, SIGNING_PROXY_FLOOR, spawnFake, spawnRelay, spawnSigningProxy, spawnTcpPipe, TCP_PIPE_FLOOR } from '../lib/processes.js';
import type { Row, SectionResult } from '../lib/report.js';
import { createHash } from 'node:crypto';

/** Issue 12: at 128 virtual-key clients the local server keeps this share of direct throughput. */
const TARGET_SHARE_128 = 0.7;

export interface LoadTarget {
  readonly name: string;
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface LoadFigures {
  readonly connections: number;
  readonly requestsPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly completed: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly timeouts: number;
}

export async function load(target: LoadTarget, connections: number, durationSeconds: number): Promise<LoadFigures> {
  const result: Result = await autocannon({
    url: target.url,
    method: target.method,
    headers: { ...target.headers },
    body: target.body,
    connections,
    pipelining: 1,
    duration: durationSeconds,
    timeout: 10,
  });
  return {
    connections,
    requestsPerSecond: Math.round(result.requests.average),
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    completed: result.latency.totalCount,
    errors: result.errors,
    non2xx: result.non2xx,
    timeouts: result.timeouts,
  };
}

/** The direct call, signed once: the fake, like AWS, accepts a signature for 15 minutes. */
export async function signedDirectTarget(fakeUrl: string): Promise<LoadTarget> {
  const door = directDoor(fakeUrl);
  const prepared = await door.prepare(converseCall());
  await probe(door, converseCall());
  door.close();
  return { name: 'direct', url: `${fakeUrl}${prepared.path}`, method: prepared.method, headers: prepared.headers, body: prepared.body };
}

export async function relayTarget(relayUrl: string, key: string): Promise<LoadTarget> {
  const door = relayHttpDoor(relayUrl, key);
  const prepared = await door.prepare(converseCall());
  await probe(door, converseCall());
  door.close();
  return { name: 'relay', url: `${relayUrl}${prepared.path}`, method: prepared.method, headers: prepared.headers, body: prepared.body };
}

export async function throughputSection(ctx: BenchContext): Promise<SectionResult> {
  const durationSeconds = ctx.quick ? 2 : 10;
  const levels = [1, 16, 128];
  const fake = await spawnFake();
  const relay = await spawnRelay(relayEnv(fake.url));
  const pipe = await spawnTcpPipe(Number(new URL(fake.url).port));
  const proxy = await spawnSigningProxy(Number(new URL(fake.url).port));
  try {
    const key = await keyFor(ctx.key, relayHttpDoor(relay.url, MASTER_KEY));
    const targets = [
      await signedDirectTarget(fake.url),
      await relayTarget(relay.url, key),
      { ...(await signedDirectTarget(pipe.url)), name: TCP_PIPE_FLOOR },
      { ...(await relayTarget(proxy.url, 'not-checked')), name: SIGNING_PROXY_FLOOR },
    ];
    // JIT and connection pools warm before anything is counted.
    for (const target of targets) await load(target, 16, 1);

    const figures: Record<string, LoadFigures[]> = { direct: [], relay: [], [TCP_PIPE_FLOOR]: [], [SIGNING_PROXY_FLOOR]: [] };
    for (const [index, connections] of levels.entries()) {
      // The order rotates, so a drift of the machine's load falls on every target alike.
      const order = targets.map((_, i) => targets[(i + index) % targets.length]!);
      for (const target of order) {
        ctx.progress(`throughput: ${target.name}, ${connections} connections, ${durationSeconds} s`);
        figures[target.name]!.push(await load(target, connections, durationSeconds));
      }
    }

    const rows: Row[] = [];
    for (const [index, connections] of levels.entries()) {
      const relayFigures = figures['relay']![index]!;
      const directFigures = figures['direct']![index]!;
      const failed = relayFigures.errors + relayFigures.non2xx + relayFigures.timeouts;
      const note =
        failed > 0
          ? `${failed} failed requests through the relay (errors ${relayFigures.errors}, timeouts ${relayFigures.timeouts}, non-2xx ${relayFigures.non2xx})`
          : undefined;
      const clients = `${connections} client${connections === 1 ? '' : 's'}`;
      const share = directFigures.requestsPerSecond > 0 ? relayFigures.requestsPerSecond / directFigures.requestsPerSecond : 0;
      const target = connections === 128 ? { target: `≥ ${TARGET_SHARE_128 * 100} % of direct`, pass: share >= TARGET_SHARE_128 } : {};
      const percentOf = (part: number, whole: number) => (whole > 0 ? `${((part / whole) * 100).toFixed(0)} %` : '?');
      const floorNote = [
        `${percentOf(relayFigures.requestsPerSecond, directFigures.requestsPerSecond)} of direct`,
        ...FLOORS.map((name) => {
          const floorRate = figures[name]![index]!.requestsPerSecond;
          return `the ${name.replace(' (floor)', '')} keeps ${percentOf(floorRate, directFigures.requestsPerSecond)} (relay: ${percentOf(relayFigures.requestsPerSecond, floorRate)} of it)`;
        }),
      ].join('; ');
      for (const name of FLOORS) {
        rows.push({
          section: 'throughput',
          metric: `requests/s, ${clients}, ${name}`,
          unit: 'req/s',
          value: figures[name]![index]!.requestsPerSecond,
          direct: directFigures.requestsPerSecond,
        });
      }
      rows.push(
        {
          section: 'throughput',
          metric: `requests/s, ${clients}`,
          unit: 'req/s',
          value: relayFigures.requestsPerSecond,
          direct: directFigures.requestsPerSecond,
          note: note ? `${floorNote}; ${note}` : floorNote,
          ...target,
        },
        { section: 'throughput', metric: `latency p50, ${clients}`, unit: 'ms', value: relayFigures.latencyP50Ms, direct: directFigures.latencyP50Ms },
        { section: 'throughput', metric: `latency p99, ${clients}`, unit: 'ms', value: relayFigures.latencyP99Ms, direct: directFigures.latencyP99Ms },
      );
    }
    // Every call's usage recorded? The key's request count against what the loads completed
    // (calls still in flight when a load stopped were cut by the client: counted too, or not).
    let usage: Record<string, number> | undefined;
    if (key !== MASTER_KEY) {
      const completed = figures['relay']!.reduce((sum, f) => sum + f.completed, 0);
      const cutAtMost = levels.reduce((sum, c) => sum + c, 0) + 16;
      const recorded = await settledRequests(relay.url, key);
      usage = { completed, recorded, cutAtMost };
      rows.push({
        section: 'throughput',
        metric: 'usage recorded (key requests)',
        unit: 'calls',
        value: recorded,
        target: 'every completed call',
        pass: recorded >= completed,
        note: `${completed} completed in the timed loads, plus warm-up; up to ${cutAtMost} cut at the loads' ends`,
      });
    }
    return {
      name: 'throughput',
      rows,
      details: {
        workload:
          'Converse (non-streaming), autocannon, HTTP/1.1 keep-alive, no pipelining; fake in its own process; the floors: direct through a TCP pipe in its own process, and through a minimal node:http signing proxy in its own process',
        key: ctx.key.label,
        durationSeconds,
        figures,
        ...(usage ? { usage } : {}),
      },
    };
  } finally {
    await proxy.stop();
    await pipe.stop();
    await relay.stop();
    await fake.stop();
  }
}

/** The key's recorded request count once it has stopped growing (usage is written after each call). */
async function settledRequests(relayUrl: string, key: string): Promise<number> {
  const token = createHash('sha256').update(key).digest('hex');
  let last = -1;
  for (let i = 0; i < 100; i++) {
    const answer = await fetch(`${relayUrl}/key/info?key=${token}`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
    const info = ((await answer.json()) as { info?: { usage_totals?: { requests?: number } } }).info;
    const requests = info?.usage_totals?.requests ?? 0;
    if (requests === last) return requests;
    last = requests;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return last;
}
