/**
 * `npm run bench`: the relay's overhead and behaviour under load, measured on loopback against
 * the test fake Bedrock, every figure set against a direct call to the same fake in the same
 * run. Prints a table and writes bench/results/<name>.json. See docs/benchmarks.md.
 *
 *   BENCH_QUICK=1          a smoke run of about a minute (fewer samples, shorter loads)
 *   BENCH_ONLY=a,b         only these sections: latency, streaming, throughput, memory, cold-start, peer
 *   BENCH_KEY=master       the key presented to the relay: master (default) or virtual (a cached
 *                          virtual key issued through the admin API; see bench/lib/bench-key.ts)
 *   BENCH_NAME=<name>      the results file (default: full or quick)
 *   POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_DISABLED
 *                          passed to the relays (default: the relay's own defaults, a log line
 *                          and an EMF record per call, as in Lambda)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { appFromEnv } from '../lambda/deps.js';
import { installAwslambdaGlobal } from '../lambda/local/function-url-emulator.js';
import { functionUrlHandler } from '../lambda/runtime/function-url.js';
import { createDynamoClients, LOCAL_CREDENTIALS } from '../lambda/store/dynamo.js';
import { EMBEDDED_REGION } from '../lambda/store/embedded.js';
import { FAKE_CREDENTIALS, startFakeBedrock } from '../test/support/fake-bedrock.js';
import { benchKeyFromEnv } from './lib/bench-key.js';
import { relayEnv, type BenchContext } from './lib/context.js';
import { machineInfo } from './lib/machine.js';
import { PROJECT_ROOT, spawnDynamo, spawnRelay } from './lib/processes.js';
import { formatTable, markdownTable, type SectionResult } from './lib/report.js';
import { coldStartSection } from './sections/cold-start.js';
import { latencySection } from './sections/latency.js';
import { memorySection } from './sections/memory.js';
import { peerSection } from './sections/peer.js';
import { streamingSection } from './sections/streaming.js';
import { throughputSection } from './sections/throughput.js';

const SECTIONS: Record<string, (ctx: BenchContext) => Promise<SectionResult>> = {
  latency: latencySection,
  streaming: streamingSection,
  throughput: throughputSection,
  memory: memorySection,
  'cold-start': coldStartSection,
  peer: peerSection,
};

const quick = process.env.BENCH_QUICK === '1';
const only = process.env.BENCH_ONLY?.split(',')
  .map((name) => name.trim())
  .filter(Boolean);
const unknown = only?.filter((name) => !(name in SECTIONS)) ?? [];
if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown section(s) ${unknown.join(', ')}; known: ${Object.keys(SECTIONS).join(', ')}`);
const name = process.env.BENCH_NAME || (quick ? 'quick' : 'full');

const progress = (message: string) => process.stderr.write(`· ${message}\n`);
const startedAt = new Date();
const machine = machineInfo();
const key = benchKeyFromEnv();
progress(`bench ${name}: ${quick ? 'quick' : 'full'} run, ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, ${key.label}`);

installAwslambdaGlobal();
const fake = await startFakeBedrock();
const relay = await spawnRelay(relayEnv(fake.url));
// The Lambda entry exactly as lambda/handler.ts builds it, with the environment passed in. In
// AWS the stack always gives it a key table; here an embedded DynamoDB in another process
// stands in (reached over loopback HTTP, as the function reaches DynamoDB over the network).
const keyStore = await spawnDynamo();
// Its per-call log line and metrics are produced (that work is part of a call) but not
// printed: this process's stdout is the benchmark's table.
let telemetryLines = 0;
const built = await appFromEnv(
  { ...relayEnv(fake.url), RELAY_KEYS_TABLE: keyStore.tableName },
  {
    credentials: async () => ({ ...FAKE_CREDENTIALS }),
    dynamo: createDynamoClients({ endpoint: keyStore.endpoint, region: EMBEDDED_REGION, credentials: LOCAL_CREDENTIALS }),
    telemetry: {
      writeMetrics: (line) => void (telemetryLines += line.length > 0 ? 1 : 0),
      log: (level, message, fields) => void (telemetryLines += JSON.stringify({ level, message, ...fields }).length > 0 ? 1 : 0),
    },
  },
);
const handler = functionUrlHandler(async () => built.app);
const ctx: BenchContext = { quick, key, fake, relay, handler, keyStore, progress };

const results: SectionResult[] = [];
const failures: Record<string, string> = {};
try {
  for (const [section, run] of Object.entries(SECTIONS)) {
    if (only && !only.includes(section)) continue;
    const began = performance.now();
    progress(`${section} …`);
    try {
      const result = await run(ctx);
      results.push(result);
      progress(`${section} done in ${((performance.now() - began) / 1000).toFixed(1)} s${result.skipped ? ` (skipped: ${result.skipped})` : ''}`);
    } catch (error) {
      // One broken section must not hide the others' figures; the run still fails at the end.
      failures[section] = error instanceof Error ? (error.stack ?? error.message) : String(error);
      progress(`${section} FAILED: ${failures[section]}`);
    }
  }
} finally {
  await relay.stop();
  await keyStore.stop();
  await fake.close();
}

const rows = results.flatMap((result) => result.rows);
const finishedAt = new Date();
process.stdout.write(`\n${formatTable(rows)}\n`);
for (const result of results) if (result.skipped) process.stdout.write(`\n${result.name}: skipped — ${result.skipped}\n`);
for (const row of rows) if (row.note) process.stdout.write(`note (${row.section}, ${row.metric}): ${row.note}\n`);

const file = join(PROJECT_ROOT, 'bench', 'results', `${name}.json`);
mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(
  file,
  `${JSON.stringify(
    {
      name,
      quick,
      date: startedAt.toISOString(),
      durationSeconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
      machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      key: key.label,
      // Log lines and EMF records the in-process handler produced (proof its telemetry ran).
      inProcessTelemetryLines: telemetryLines,
      rows,
      markdown: markdownTable(rows),
      sections: Object.fromEntries(results.map((result) => [result.name, { ...result.details, ...(result.skipped ? { skipped: result.skipped } : {}) }])),
      failures,
    },
    null,
    2,
  )}\n`,
);
process.stdout.write(`\nwrote ${file} (${Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000)} s)\n`);
if (Object.keys(failures).length > 0) {
  process.stderr.write(`failed sections: ${Object.keys(failures).join(', ')}\n`);
  process.exitCode = 1;
}
