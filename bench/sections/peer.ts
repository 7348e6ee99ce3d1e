/**
 * (f) Side by side with the Portkey AI gateway (npm @portkey-ai/gateway), both ending at the
 * same fake Bedrock. Portkey translates formats, so the closest workload is compared: an OpenAI
 * chat completion through Portkey (which it turns into a Bedrock Converse / ConverseStream) vs
 * a native Converse through the relay, each set against the direct call to the fake.
 *
 * Portkey is configured per request, as its docs describe for Bedrock: x-portkey-provider:
 * bedrock, the region and the credentials in x-portkey-aws-* headers, and x-portkey-custom-host
 * for the endpoint. Every target reaches the fake through the same port-80 forwarder (see
 * bench/lib/forwarder.ts for why Portkey needs it).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { FAKE_CREDENTIALS } from '../../test/support/fake-bedrock.js';
import { keyFor, MASTER_KEY } from '../lib/bench-key.js';
import { BENCH_MODEL, converseCall, converseStreamCall, relayEnv, type BenchContext } from '../lib/context.js';
import { body, directDoor, httpSend, probe, relayHttpDoor, timeToFirstByte, type BedrockCall, type Door, type DoorResponse } from '../lib/doors.js';
import { startForwarder, type Forwarder } from '../lib/forwarder.js';
import { framesOf, sseDataOf } from '../lib/frames.js';
import { freePort, PROJECT_ROOT, spawnFake, spawnRelay, spawnService } from '../lib/processes.js';
import type { Row, SectionResult } from '../lib/report.js';
import { installStampedStream, STAMPED_MODEL, stampOf } from '../lib/stamped-stream.js';
import { interleave } from '../lib/interleave.js';
import { summarize, type Summary } from '../lib/stats.js';
import { load, relayTarget, signedDirectTarget, type LoadFigures, type LoadTarget } from './throughput.js';

const PORTKEY_DIR = join(PROJECT_ROOT, 'node_modules', '@portkey-ai', 'gateway');
const FORWARD_PORT = 80;

/** Published figures for LiteLLM, which cannot run here (Python); cited, not measured. */
export const LITELLM_PUBLISHED = {
  source: 'https://docs.litellm.ai/docs/benchmarks',
  setup: 'LiteLLM proxy against a fake OpenAI endpoint, Locust 1000 users; each instance 4 CPU / 8 GB, PostgreSQL, no Redis',
  overheadMs: {
    'two instances (≈1035 req/s)': { p50: 12, p95: 29, p99: 43, mean: 14.74 },
    'four instances (≈1170 req/s)': { p50: 2, p95: 8, p99: 13, mean: 3.32 },
  },
  alsoCited: { source: 'https://docs.litellm.ai/docs/proxy/perf', claim: 'LiteLLM proxy adds 0.00325 s (3.25 ms) latency compared with the raw OpenAI API' },
} as const;

export async function peerSection(ctx: BenchContext): Promise<SectionResult> {
  const version = (JSON.parse(readFileSync(join(PORTKEY_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  let forwarder: Forwarder | undefined;
  try {
    forwarder = await startForwarder(FORWARD_PORT, ctx.fake.port);
  } catch (error) {
    return {
      name: 'peer',
      rows: [],
      details: { portkey: version, litellmPublished: LITELLM_PUBLISHED },
      skipped:
        `Portkey not measured: it signs the endpoint's hostname without its port, so it can only reach the fake on port ${FORWARD_PORT}, ` +
        `and this process may not listen there (${(error as Error).message}). Run the bench as a user allowed to bind port 80 ` +
        '(e.g. sysctl net.ipv4.ip_unprivileged_port_start=80).',
    };
  }
  const portkeyPort = await freePort();
  const portkey = await spawnService({
    args: [join(PORTKEY_DIR, 'build', 'start-server.js'), `--port=${portkeyPort}`, '--headless'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' },
    ready: /Ready for connections/,
  });
  const relay = await spawnRelay(relayEnv(forwarder.url));
  try {
    const key = await keyFor(ctx.key, relayHttpDoor(relay.url, MASTER_KEY));
    const doors: Door[] = [directDoor(forwarder.url), relayHttpDoor(relay.url, key), portkeyDoor(`http://127.0.0.1:${portkeyPort}`, forwarder.url)];
    const latency = await sequentialLatency(ctx, doors);
    const streaming = await streamingDelay(ctx, doors);
    for (const door of doors) door.close();

    // Throughput: the fake moves to its own process (load generator and fake apart), behind a
    // port-80 forwarder of its own; the relay and Portkey follow it there.
    await forwarder.close();
    forwarder = undefined;
    const throughput = await throughputAt16(ctx, key, portkeyPort);

    const rows: Row[] = [];
    const row = (metric: string, unit: string, value: number, direct: number): Row => ({ section: 'peer', metric, unit, value, direct });
    for (const [name, label] of [
      ['local server', 'relay, Converse'],
      ['portkey', `Portkey ${version}, chat completion`],
    ] as const) {
      rows.push(
        row(`${label} p50`, 'ms', latency.summaries[name]!.p50, latency.summaries['direct']!.p50),
        row(`${label} p99`, 'ms', latency.summaries[name]!.p99, latency.summaries['direct']!.p99),
      );
    }
    for (const [name, label] of [
      ['local server', 'relay'],
      ['portkey', 'Portkey'],
    ] as const) {
      rows.push(
        row(`${label} stream time to first byte p50`, 'ms', streaming.ttfb[name]!.p50, streaming.ttfb['direct']!.p50),
        row(`${label} stream delta delay p50`, 'ms', streaming.frames[name]!.p50, streaming.frames['direct']!.p50),
        row(`${label} stream delta delay p99`, 'ms', streaming.frames[name]!.p99, streaming.frames['direct']!.p99),
      );
    }
    if (throughput) {
      rows.push(
        row('relay requests/s, 16 clients', 'req/s', throughput.relay.requestsPerSecond, throughput.direct.requestsPerSecond),
        row('Portkey requests/s, 16 clients', 'req/s', throughput.portkey.requestsPerSecond, throughput.direct.requestsPerSecond),
      );
    }
    return {
      name: 'peer',
      rows,
      details: {
        portkey: version,
        route: `every target through a TCP forwarder on 127.0.0.1:${FORWARD_PORT} to the fake`,
        workloads: {
          relay: `POST /bedrock/model/${BENCH_MODEL}/converse (native Converse, bytes passed through)`,
          portkey: `POST /v1/chat/completions {model: "${BENCH_MODEL}"} → Converse (OpenAI ⇄ Bedrock translation)`,
        },
        latencyMs: latency,
        streaming,
        throughput16: throughput,
        litellmPublished: LITELLM_PUBLISHED,
      },
    };
  } finally {
    await relay.stop();
    await portkey.stop();
    await forwarder?.close();
  }
}

/** OpenAI chat completions into Portkey, which calls Bedrock Converse(-Stream) at `bedrockUrl`. */
function portkeyDoor(portkeyUrl: string, bedrockUrl: string): Door {
  const base = new URL(portkeyUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    name: 'portkey',
    async prepare(call: BedrockCall) {
      const [, , model = BENCH_MODEL, operation] = call.path.split('/');
      const request = {
        model: decodeURIComponent(model),
        stream: operation === 'converse-stream',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'Hello' }],
      };
      return {
        method: 'POST',
        path: '/v1/chat/completions',
        headers: {
          'content-type': 'application/json',
          'x-portkey-provider': 'bedrock',
          'x-portkey-aws-region': 'us-east-1',
          'x-portkey-aws-access-key-id': FAKE_CREDENTIALS.accessKeyId,
          'x-portkey-aws-secret-access-key': FAKE_CREDENTIALS.secretAccessKey,
          'x-portkey-aws-session-token': FAKE_CREDENTIALS.sessionToken,
          'x-portkey-custom-host': bedrockUrl,
        },
        body: Buffer.from(JSON.stringify(request)),
      };
    },
    send: (prepared) => httpSend(base, agent, prepared),
    close: () => agent.destroy(),
  };
}

async function sequentialLatency(ctx: BenchContext, doors: readonly Door[]): Promise<{ summaries: Record<string, Summary>; rounds: number }> {
  const call = converseCall();
  for (const door of doors) await probe(door, call);
  const samples = new Map<string, number[]>(doors.map((door) => [door.name, []]));
  const outcome = await interleave(doors, call, {
    warmup: ctx.quick ? 100 : 300,
    rounds: ctx.quick ? 300 : 1500,
    budgetMs: ctx.quick ? 5_000 : 20_000,
    onResponse(door, response, measured) {
      if (response.status !== 200 || !response.complete)
        throw new Error(`peer latency: ${door.name} answered ${response.status}: ${body(response).toString().slice(0, 300)}`);
      if (measured) samples.get(door.name)!.push(response.endedAt - response.startedAt);
    },
    afterRound: (round) => round % 500 === 0 && ctx.fake.requests.splice(0),
  });
  return { summaries: Object.fromEntries([...samples].map(([name, values]) => [name, summarize(values)])), rounds: outcome.measuredRounds };
}

/** The stamps on the text deltas, whichever format they arrived in. */
function deltaStamps(door: Door, response: DoorResponse): { at: number; sent: number }[] {
  const stamps: { at: number; sent: number }[] = [];
  if (door.name === 'portkey') {
    for (const event of sseDataOf(response.chunks)) {
      if (event.data === '[DONE]') continue;
      const content = (JSON.parse(event.data) as { choices?: { delta?: { content?: unknown } }[] }).choices?.[0]?.delta?.content;
      const sent = stampOf(content);
      if (sent !== undefined) stamps.push({ at: event.at, sent });
    }
  } else {
    for (const { at, frame } of framesOf(response.chunks)) {
      if (frame.eventType !== 'contentBlockDelta') continue;
      const sent = stampOf((frame.json as { delta?: { text?: unknown } }).delta?.text);
      if (sent !== undefined) stamps.push({ at, sent });
    }
  }
  return stamps;
}

async function streamingDelay(ctx: BenchContext, doors: readonly Door[]) {
  const deltas = 8;
  const remove = installStampedStream(ctx.fake, { deltas, frameDelayMs: 10 });
  try {
    const call = converseStreamCall(STAMPED_MODEL);
    const ttfb = new Map<string, number[]>(doors.map((door) => [door.name, []]));
    const frames = new Map<string, number[]>(doors.map((door) => [door.name, []]));
    const outcome = await interleave(doors, call, {
      warmup: ctx.quick ? 3 : 5,
      rounds: ctx.quick ? 10 : 30,
      budgetMs: ctx.quick ? 5_000 : 20_000,
      onResponse(door, response, measured) {
        const stamps = deltaStamps(door, response);
        if (response.status !== 200 || stamps.length !== deltas) {
          throw new Error(
            `peer streaming: ${door.name} answered ${response.status} with ${stamps.length} stamped deltas: ${body(response).toString().slice(0, 300)}`,
          );
        }
        if (!measured) return;
        ttfb.get(door.name)!.push(timeToFirstByte(response));
        for (const { at, sent } of stamps) frames.get(door.name)!.push(performance.timeOrigin + at - sent);
      },
      afterRound: () => ctx.fake.requests.splice(0),
    });
    const summaries = (map: Map<string, number[]>) =>
      Object.fromEntries([...map].map(([name, values]) => [name, summarize(values)])) as Record<string, Summary>;
    return {
      workload: `ConverseStream, ${deltas} text deltas 10 ms apart; Portkey re-encodes them as OpenAI SSE chunks`,
      rounds: outcome.measuredRounds,
      ttfb: summaries(ttfb),
      frames: summaries(frames),
    };
  } finally {
    remove();
  }
}

async function throughputAt16(
  ctx: BenchContext,
  key: string,
  portkeyPort: number,
): Promise<{ direct: LoadFigures; relay: LoadFigures; portkey: LoadFigures } | undefined> {
  const fake = await spawnFake({ forwardPort: FORWARD_PORT });
  let relay: Awaited<ReturnType<typeof spawnRelay>> | undefined;
  try {
    if (!fake.forwardUrl) return undefined;
    relay = await spawnRelay(relayEnv(fake.forwardUrl));
    const relayKey = key === MASTER_KEY ? key : await keyFor(ctx.key, relayHttpDoor(relay.url, MASTER_KEY));
    const door = portkeyDoor(`http://127.0.0.1:${portkeyPort}`, fake.forwardUrl);
    const prepared = await door.prepare(converseCall());
    await probe(door, converseCall());
    door.close();
    const targets: LoadTarget[] = [
      await signedDirectTarget(fake.forwardUrl),
      await relayTarget(relay.url, relayKey),
      { name: 'portkey', url: `http://127.0.0.1:${portkeyPort}${prepared.path}`, method: prepared.method, headers: prepared.headers, body: prepared.body },
    ];
    const duration = ctx.quick ? 2 : 10;
    const figures: Record<string, LoadFigures> = {};
    for (const target of targets) await load(target, 16, 1);
    for (const target of targets) {
      ctx.progress(`peer throughput: ${target.name}, 16 connections, ${duration} s`);
      figures[target.name] = await load(target, 16, duration);
    }
    return { direct: figures['direct']!, relay: figures['relay']!, portkey: figures['portkey']! };
  } finally {
    await relay?.stop();
    await fake.stop();
  }
}
