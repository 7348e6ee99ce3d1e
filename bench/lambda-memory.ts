/**
 * Lambda memory chosen by measurement (issue #14.6). Measures the relay's CPU time per call and per
 * streamed frame (the Lambda handler in-process, the fake Bedrock and the key store in processes of
 * their own, so their CPU is not counted), and the CPU of a cold start (the esbuild bundle booted in a
 * fresh Node process). Then models the CPU share Lambda gives at 256, 512 and 1,024 MB (memory /
 * 1,769 MB of one vCPU) two ways, and prints added latency and cost per million calls at each:
 *
 *   fluid  every CPU millisecond is stretched by 1/share (a pessimistic bound);
 *   CFS    a quota of share × 100 ms per 100 ms period (Linux's default CFS period): a burst
 *          within the quota runs at full speed, a longer one waits for the next periods.
 *
 *   node --import tsx bench/lambda-memory.ts            # writes bench/results/lambda-memory.json
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { appFromEnv } from '../lambda/deps.js';
import { installAwslambdaGlobal } from '../lambda/local/function-url-emulator.js';
import { functionUrlHandler } from '../lambda/runtime/function-url.js';
import { createDynamoClients, LOCAL_CREDENTIALS } from '../lambda/store/dynamo.js';
import { EMBEDDED_REGION } from '../lambda/store/embedded.js';
import { stackBuildOptions } from '../scripts/bundle.js';
import { FAKE_CREDENTIALS } from '../test/support/fake-bedrock.js';
import { benchKeyFromEnv, keyFor, MASTER_KEY } from './lib/bench-key.js';
import { converseCall, converseStreamCall, relayEnv } from './lib/context.js';
import { lambdaDoor, type BedrockCall, type Door } from './lib/doors.js';
import { functionUrlEvent } from './lib/lambda-invoke.js';
import { PROJECT_ROOT, spawnDynamo, spawnService } from './lib/processes.js';

const MEMORY_MB = [256, 512, 1024] as const;
/** Lambda: 1,769 MB of memory buys one vCPU; CPU is proportional below that. */
const MB_PER_VCPU = 1769;
const CFS_PERIOD_MS = 100;
/** arm64, us-east-1: per GB-second and per request (https://aws.amazon.com/lambda/pricing/). */
const GB_SECOND_USD = 0.0000133334;
const REQUEST_USD = 0.2 / 1e6;
/** The call the cost is quoted for: a streamed answer of 30 s wall with 500 frames. */
const TYPICAL = { wallMs: 30_000, frames: 500 };
const calls = Number(process.env.CALLS ?? 200);

installAwslambdaGlobal();
const fake = await spawnService({
  args: ['--import', 'tsx', 'bench/processes/frames-server.ts'],
  env: { PATH: process.env.PATH, HOME: process.env.HOME },
  ready: /^FAKE (\{.*\})$/m,
});
const fakeUrl = (JSON.parse(fake.ready[1]!) as { url: string }).url;
const store = await spawnDynamo();
let telemetry = 0;
const env = { ...relayEnv(fakeUrl), RELAY_KEYS_TABLE: store.tableName };
const built = await appFromEnv(env, {
  credentials: async () => ({ ...FAKE_CREDENTIALS }),
  dynamo: createDynamoClients({ endpoint: store.endpoint, region: EMBEDDED_REGION, credentials: LOCAL_CREDENTIALS }),
  // Serialised as Lambda would write them (that work is part of a call), then dropped.
  telemetry: {
    writeMetrics: (line) => void (telemetry += line.length),
    log: (level, message, fields) => void (telemetry += JSON.stringify({ level, message, ...fields }).length),
  },
});
const handler = functionUrlHandler(async () => built.app);

/** CPU milliseconds (user + system) of this process per call of `call`, after a warm-up. */
async function cpuPerCall(door: Door, call: BedrockCall, n: number): Promise<number> {
  for (let i = 0; i < 20; i++) await door.send(await door.prepare(call));
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const response = await door.send(await door.prepare(call));
    if (response.status !== 200 || !response.complete) throw new Error(`call failed: ${response.status}`);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / n;
}

/** CPU milliseconds of a cold start: bundle, boot it in a fresh process, answer one call. */
async function coldStartCpuMs(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'relay-memory-'));
  try {
    const outfile = join(dir, 'index.mjs');
    await build(stackBuildOptions(outfile, 'esm'));
    const call = converseCall();
    const event = functionUrlEvent({
      method: call.method,
      rawPath: `/bedrock${call.path}`,
      headers: { ...call.headers, authorization: `Bearer ${MASTER_KEY}` },
      body: call.body,
    });
    const runs: number[] = [];
    for (let i = 0; i < 5; i++) {
      // bash's `times` prints the children's user and system CPU seconds.
      const result = spawnSync('bash', ['-c', 'node bench/cold-start/lambda-boot.mjs >/dev/null; times'], {
        cwd: PROJECT_ROOT,
        env: {
          ...process.env,
          ...env,
          AWS_ENDPOINT_URL_DYNAMODB: store.endpoint,
          NODE_OPTIONS: '--enable-source-maps',
          BOOT_BUNDLE: outfile,
          BOOT_EVENT: JSON.stringify(event),
        },
        encoding: 'utf8',
      });
      const children = result.stdout.trim().split('\n').at(-1) ?? '';
      const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
      runs.push(seconds * 1000);
    }
    return runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Wall time of a burst of `cpuMs` under a CFS quota of share × period per period. */
function cfsWallMs(cpuMs: number, share: number): number {
  const quota = share * CFS_PERIOD_MS;
  if (cpuMs <= quota) return cpuMs;
  const fullPeriods = Math.ceil(cpuMs / quota) - 1;
  return fullPeriods * CFS_PERIOD_MS + (cpuMs - fullPeriods * quota);
}

try {
  const key = await keyFor(benchKeyFromEnv('virtual'), lambdaDoor(handler, MASTER_KEY));
  const door = lambdaDoor(handler, key);
  const converse = await cpuPerCall(door, converseCall(), calls);
  const stream10 = await cpuPerCall(door, converseStreamCall('bench.frames-10'), calls);
  const stream200 = await cpuPerCall(door, converseStreamCall('bench.frames-200'), Math.max(20, calls / 5));
  const perFrame = Math.max(0, (stream200 - stream10) / 190);
  const perStreamedCall = stream10 - 10 * perFrame;
  const coldStart = await coldStartCpuMs();
  const rssMb = process.memoryUsage().rss / 2 ** 20;

  const rows = MEMORY_MB.map((memoryMb) => {
    const share = memoryMb / MB_PER_VCPU;
    const callCpu = perStreamedCall + TYPICAL.frames * perFrame;
    const costPerMillion = (wallMs: number) => 1e6 * ((memoryMb / 1024) * (wallMs / 1000) * GB_SECOND_USD + REQUEST_USD);
    return {
      memoryMb,
      vcpuShare: Number(share.toFixed(3)),
      addedPerCallMs: { fluid: perStreamedCall / share, cfs: cfsWallMs(perStreamedCall, share) },
      addedPerFrameMs: { fluid: perFrame / share, cfs: cfsWallMs(perFrame, share) },
      // A streamed call's frames arrive spread over its whole run, so its CPU never bunches up.
      addedPerTypicalCallMs: { fluid: callCpu / share, cfs: cfsWallMs(perStreamedCall, share) + TYPICAL.frames * cfsWallMs(perFrame, share) },
      coldStartMs: { fluid: coldStart / share, cfs: cfsWallMs(coldStart, share) },
      usdPerMillionTypicalCalls: Number(costPerMillion(TYPICAL.wallMs + callCpu / share).toFixed(2)),
      usdPerMillion1sCalls: Number(costPerMillion(1000 + perStreamedCall / share).toFixed(2)),
    };
  });
  const result = {
    measuredAt: new Date().toISOString(),
    node: process.version,
    calls,
    cpuMs: { converse, streamedCall: perStreamedCall, perFrame, coldStart },
    harnessRssMb: Number(rssMb.toFixed(1)),
    typical: TYPICAL,
    rows,
    telemetryBytes: telemetry,
  };
  await writeFile(join(PROJECT_ROOT, 'bench', 'results', 'lambda-memory.json'), `${JSON.stringify(result, null, 2)}\n`);
  const f = (n: number) => n.toFixed(3);
  process.stdout.write(
    `relay CPU: Converse ${f(converse)} ms/call, ConverseStream ${f(perStreamedCall)} ms/call + ${f(perFrame)} ms/frame, cold start ${coldStart.toFixed(0)} ms (${process.version})\n`,
  );
  process.stdout.write('memory | share | added/call fluid, CFS | added/frame fluid, CFS | cold start fluid, CFS | $/1M (30 s, 500 frames) | $/1M (1 s)\n');
  for (const r of rows) {
    process.stdout.write(
      `${r.memoryMb} MB | ${r.vcpuShare} | ${f(r.addedPerCallMs.fluid)}, ${f(r.addedPerCallMs.cfs)} ms | ${f(r.addedPerFrameMs.fluid)}, ${f(r.addedPerFrameMs.cfs)} ms | ` +
        `${r.coldStartMs.fluid.toFixed(0)}, ${r.coldStartMs.cfs.toFixed(0)} ms | $${r.usdPerMillionTypicalCalls} | $${r.usdPerMillion1sCalls}\n`,
    );
  }
} finally {
  await fake.stop();
  await store.stop();
}
