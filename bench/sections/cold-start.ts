/**
 * (e) Cold start: the Lambda bundle built as the CDK stack builds it (lib/relay-stack.ts:
 * NodejsFunction bundling: esbuild, ESM, target node22, minified, every AWS SDK part bundled,
 * linked source map without sources), its size, and the time from process start to the first
 * answer when a fresh Node process loads it the way the Lambda runtime does (awslambda global,
 * import of the module, one Function URL event). The baseline is a fresh process making the
 * same call straight to the fake.
 */
import { mkdtemp, rm, stat, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';
import { MASTER_KEY } from '../lib/bench-key.js';
import { converseCall, relayEnv, type BenchContext } from '../lib/context.js';
import { directDoor } from '../lib/doors.js';
import { functionUrlEvent } from '../lib/lambda-invoke.js';
import { PROJECT_ROOT } from '../lib/processes.js';
import type { Row, SectionResult } from '../lib/report.js';
import { summarize } from '../lib/stats.js';

interface BootTimings {
  readonly scriptStartMs: number;
  readonly initMs: number;
  /** The response stream ended: the client has the whole answer. */
  readonly answerMs: number;
  /** The handler returned (after settling usage). */
  readonly handlerDoneMs: number;
  readonly status: number;
  /** Measured by the parent: spawn() to the answer line. */
  readonly wallMs: number;
}

export async function coldStartSection(ctx: BenchContext): Promise<SectionResult> {
  const runs = ctx.quick ? 3 : 7;
  const dir = await mkdtemp(join(tmpdir(), 'relay-bundle-'));
  try {
    ctx.progress('cold start: bundling lambda/handler.ts with esbuild as the CDK stack does');
    const outfile = join(dir, 'index.mjs');
    const buildStarted = performance.now();
    await build({
      entryPoints: [join(PROJECT_ROOT, 'lambda', 'handler.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      mainFields: ['module', 'main'],
      minify: true,
      sourcemap: true,
      sourcesContent: false,
      banner: { js: "import { createRequire as __relayCreateRequire } from 'node:module'; const require = __relayCreateRequire(import.meta.url);" },
      external: [],
      logLevel: 'warning',
    });
    const buildMs = performance.now() - buildStarted;
    const jsBytes = (await stat(outfile)).size;
    const mapBytes = (await stat(`${outfile}.map`)).size;
    // The deployment package is a zip of both files; deflate is what zip stores.
    const zippedBytes = deflateRawSync(await readFile(outfile)).byteLength + deflateRawSync(await readFile(`${outfile}.map`)).byteLength;

    const env = {
      ...relayEnv(ctx.fake.url),
      // As in AWS, the function has a key table (here the bench's embedded DynamoDB).
      RELAY_KEYS_TABLE: ctx.keyStore.tableName,
      AWS_ENDPOINT_URL_DYNAMODB: ctx.keyStore.endpoint,
      // What the stack sets: source-mapped stack traces cost at load time too.
      NODE_OPTIONS: '--enable-source-maps',
    };
    const call = converseCall();
    const event = functionUrlEvent({
      method: call.method,
      rawPath: `/bedrock${call.path}`,
      headers: { ...call.headers, authorization: `Bearer ${MASTER_KEY}` },
      body: call.body,
    });
    const door = directDoor(ctx.fake.url);

    const relayRuns: BootTimings[] = [];
    const directRuns: BootTimings[] = [];
    for (let i = 0; i < runs; i++) {
      ctx.progress(`cold start: run ${i + 1}/${runs}`);
      relayRuns.push(await boot({ ...env, BOOT_MODE: 'bundle', BOOT_BUNDLE: outfile, BOOT_EVENT: JSON.stringify(event) }));
      const signed = await door.prepare(call);
      const direct = { url: `${ctx.fake.url}${signed.path}`, method: signed.method, headers: signed.headers, body: signed.body.toString('base64') };
      directRuns.push(await boot({ PATH: process.env.PATH ?? '', BOOT_MODE: 'direct', BOOT_DIRECT: JSON.stringify(direct) }));
      ctx.fake.requests.splice(0);
    }
    door.close();
    const failed = [...relayRuns, ...directRuns].filter((run) => run.status !== 200).length;
    if (failed > 0) throw new Error(`cold start: ${failed} boots did not answer 200 (${JSON.stringify(relayRuns.map((r) => r.status))})`);

    const median = (values: number[]) => summarize(values).p50;
    const relayAnswer = median(relayRuns.map((r) => r.answerMs));
    const directAnswer = median(directRuns.map((r) => r.answerMs));
    const rows: Row[] = [
      { section: 'cold start', metric: 'bundle index.mjs', unit: 'KB', value: Math.round(jsBytes / 1024) },
      { section: 'cold start', metric: 'bundle zipped (index.mjs + map)', unit: 'KB', value: Math.round(zippedBytes / 1024) },
      { section: 'cold start', metric: 'process start → first answer (median)', unit: 'ms', value: relayAnswer, direct: directAnswer },
      { section: 'cold start', metric: 'import of the bundle (Lambda "init")', unit: 'ms', value: median(relayRuns.map((r) => r.initMs - r.scriptStartMs)) },
      {
        section: 'cold start',
        metric: 'first invocation after init',
        unit: 'ms',
        value: median(relayRuns.map((r) => r.answerMs - r.initMs)),
        direct: median(directRuns.map((r) => r.answerMs - r.initMs)),
      },
      {
        section: 'cold start',
        metric: 'first invocation, until the handler returned',
        unit: 'ms',
        value: median(relayRuns.map((r) => r.handlerDoneMs - r.initMs)),
      },
      {
        section: 'cold start',
        metric: 'spawn → first answer, wall (median)',
        unit: 'ms',
        value: median(relayRuns.map((r) => r.wallMs)),
        direct: median(directRuns.map((r) => r.wallMs)),
      },
    ];
    return {
      name: 'cold start',
      rows,
      details: {
        bundle: {
          jsBytes,
          mapBytes,
          zippedBytes,
          buildMs: Math.round(buildMs),
          options:
            'esbuild: bundle, platform node, target node22, format esm, minify, sourcemap (no sourcesContent), mainFields module,main, no externals, createRequire banner',
        },
        node: process.version,
        note: 'Lambda runs nodejs22.x on arm64; this is the local Node. The master key comes from RELAY_MASTER_KEY here; in Lambda it is read from Secrets Manager on the first call, one more round trip.',
        runs,
        relayRuns,
        directRuns,
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function boot(env: Record<string, string>): Promise<BootTimings> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bench', 'cold-start', 'lambda-boot.mjs')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let wallMs: number | undefined;
    child.stdout.on('data', (data: Buffer) => {
      out += data.toString('utf8');
      if (wallMs === undefined && /^ANSWERED$/m.test(out)) wallMs = performance.now() - started;
      const line = /^BOOT (\{.*\})$/m.exec(out);
      if (line) resolve({ ...(JSON.parse(line[1]!) as Omit<BootTimings, 'wallMs'>), wallMs: wallMs ?? performance.now() - started });
    });
    child.stderr.on('data', (data: Buffer) => (err += data.toString('utf8')));
    child.once('exit', (code) => {
      if (!/^BOOT /m.test(out)) reject(new Error(`cold-start child exited with ${code}: ${err.slice(-2000)}`));
    });
  });
}
