/**
 * The Lambda entry as Lambda runs it: the deployment bundle (scripts/bundle.ts, built as the
 * CDK stack builds it) loaded by the real Node.js runtime interface client, aws-lambda-ric,
 * under Node 22, behind a Function URL, over real HTTP. The local emulator provides its own
 * `awslambda` global; here the runtime's own global, its handler loading and its streaming
 * response protocol are the ones in use (design.md §5).
 *
 * Node 22 and aws-lambda-ric are installed into a cache outside the project on first use
 * (ric-install.ts). If that install is impossible the suite is skipped with the install error,
 * unless RELAY_RIC_REQUIRED=1 (as .ci/lambda-runtime.sh sets), where it fails instead.
 *
 *   node --import tsx --test test/lambda-runtime/ric.test.ts
 *   RELAY_RIC_FORMATS=esm …                  # only the stack's ESM bundle (default: esm,cjs)
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bundleLambda, STACK_FORMAT, type BundleFormat, type BundleResult } from '../../scripts/bundle.js';
import {
  decodeEventStream,
  eventFrame,
  eventStreamReply,
  FAKE_REPLY_CHUNKS,
  fakeBedrockEnv,
  startFakeBedrock,
  type FakeBedrock,
} from '../support/fake-bedrock.js';
import { startLambda, type LocalLambda } from './harness.js';
import { ensureRic, type RicInstallOutcome } from './ric-install.js';

const MASTER_KEY = 'sk-ric-master-key-0123456789abcdef';
const REQUIRED = process.env.RELAY_RIC_REQUIRED === '1';
const FORMATS = (process.env.RELAY_RIC_FORMATS ?? 'esm,cjs')
  .split(',')
  .map((f) => f.trim())
  .filter((f): f is BundleFormat => f === 'esm' || f === 'cjs');

const installStarted = performance.now();
const install: RicInstallOutcome = await ensureRic({ log: (line) => process.stderr.write(`# ${line}\n`) });
const installSeconds = ((performance.now() - installStarted) / 1000).toFixed(1);

if (!install.ok) {
  // The whole reason on stderr; a short one in the TAP line.
  process.stderr.write(`# aws-lambda-ric install failed: ${install.reason}\n`);
  const summary = install.reason
    .split('\n')
    .filter((line) => line.trim() && !/^\s*(npm error\s+)?at |^(---|\$ )/.test(line))
    .slice(0, 6)
    .join(' | ');
  test('the Lambda bundle under aws-lambda-ric and Node 22', { skip: REQUIRED ? false : `aws-lambda-ric could not be installed here: ${summary}` }, () => {
    assert.fail(`installing Node 22 and aws-lambda-ric failed (RELAY_RIC_REQUIRED=1): ${install.reason}`);
  });
}

const conversation = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Say hello.' }] }] });
const bearer = { authorization: `Bearer ${MASTER_KEY}` };

async function readAll(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}

for (const format of install.ok ? FORMATS : []) {
  const label = format === STACK_FORMAT ? `${format}, as the stack deploys it` : `${format}`;
  describe(`the relay's Lambda bundle (${label}) under aws-lambda-ric and Node 22`, () => {
    let fake: FakeBedrock;
    let lambda: LocalLambda;
    let bundle: BundleResult;
    let taskRoot: string;

    before(async () => {
      if (!install.ok) return;
      // Outside the project: no package.json above the task root, as in /var/task.
      taskRoot = await mkdtemp(join(tmpdir(), `relay-ric-${format}-`));
      bundle = await bundleLambda({ format, outDir: taskRoot });
      fake = await startFakeBedrock();
      lambda = await startLambda({
        install,
        taskRoot,
        handler: bundle.handler,
        environment: {
          ...fakeBedrockEnv(fake),
          RELAY_MASTER_KEY: MASTER_KEY,
          POWERTOOLS_SERVICE_NAME: 'bedrock-relay',
          POWERTOOLS_METRICS_NAMESPACE: 'BedrockRelay',
          // As the stack sets it.
          NODE_OPTIONS: '--enable-source-maps',
        },
      });
    });

    after(async () => {
      await lambda?.close();
      await fake?.close();
      if (taskRoot) await rm(taskRoot, { recursive: true, force: true });
    });

    test('the runtime loads the bundle as index.handler, without esbuild warnings', (t) => {
      assert.ok(install.ok);
      t.diagnostic(
        `node ${install.nodeVersion}, aws-lambda-ric ${install.ricVersion} (${install.installed ? `installed in ${installSeconds} s` : 'cached'}); ` +
          `bundle ${Math.round(bundle.bytes / 1024)} KB built in ${Math.round(bundle.buildMs)} ms; init ${lambda.initMs} ms`,
      );
      assert.deepEqual(bundle.warnings, [], 'esbuild warnings');
      assert.equal(lambda.runtime.initError, undefined);
    });

    test('GET /health/liveliness → 200 JSON', async () => {
      const response = await fetch(`${lambda.url}/health/liveliness`);
      const body = await response.text();
      assert.equal(response.status, 200, lambda.diagnostics());
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(JSON.parse(body), { status: 'healthy' });
      // Answered through the streaming protocol (the handler is streamified) with a prelude.
      assert.equal(lambda.exchanges.at(-1)?.answer, 'stream');
      assert.equal(lambda.exchanges.at(-1)?.contentType, 'application/vnd.awslambda.http-integration-response');
    });

    test('Converse with the master key → 200 with the fake model answer, signed with the function credentials', async () => {
      const seen = fake.requests.length;
      const response = await fetch(`${lambda.url}/bedrock/model/cohere.command-r-v1:0/converse`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: conversation,
      });
      const body = await response.text();
      const upstream = fake.requests[seen];
      assert.ok(upstream, `no request reached the fake${lambda.diagnostics()}`);
      assert.equal(upstream.signature.valid, true, `signature: ${JSON.stringify(upstream.signature).slice(0, 1500)}`);
      assert.equal(response.status, 200, `${body}${lambda.diagnostics()}`);
      assert.equal(upstream.operation, 'Converse');
      assert.equal(upstream.modelId, 'cohere.command-r-v1:0');
      assert.equal(upstream.body.toString('utf8'), conversation, 'the request body goes upstream as received');
      const answer = JSON.parse(body) as { output: { message: { content: Array<{ text: string }> } }; stopReason: string };
      assert.equal(answer.output.message.content[0]?.text, FAKE_REPLY_CHUNKS.join(''));
      assert.equal(answer.stopReason, 'end_turn');
    });

    test('an unauthenticated call → 401 with x-amzn-errortype, and nothing goes upstream', async () => {
      const seen = fake.requests.length;
      const response = await fetch(`${lambda.url}/bedrock/model/cohere.command-r-v1:0/converse`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: conversation,
      });
      const body = await response.text();
      assert.equal(response.status, 401, `${body}${lambda.diagnostics()}`);
      assert.ok(response.headers.get('x-amzn-errortype'), 'x-amzn-errortype header');
      assert.equal(typeof (JSON.parse(body) as { message?: unknown }).message, 'string');
      assert.equal(fake.requests.length, seen);
    });

    test('ConverseStream → the event stream arrives intact and in order', async () => {
      const response = await fetch(`${lambda.url}/bedrock/model/cohere.command-r-v1:0/converse-stream`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: conversation,
      });
      const bytes = await readAll(response);
      assert.equal(response.status, 200, `${bytes.toString('utf8').slice(0, 500)}${lambda.diagnostics()}`);
      assert.equal(response.headers.get('content-type'), 'application/vnd.amazon.eventstream');
      const frames = decodeEventStream(bytes); // checks both CRCs of every frame
      assert.deepEqual(
        frames.map((f) => f.eventType),
        ['messageStart', ...FAKE_REPLY_CHUNKS.map(() => 'contentBlockDelta'), 'contentBlockStop', 'messageStop', 'metadata'],
      );
      const text = frames
        .filter((f) => f.eventType === 'contentBlockDelta')
        .map((f) => (f.json as { delta: { text: string } }).delta.text)
        .join('');
      assert.equal(text, FAKE_REPLY_CHUNKS.join(''));
      assert.equal(lambda.exchanges.at(-1)?.outcome, 'complete');
    });

    test('a streamed body is relayed byte for byte, frame by frame', async () => {
      const frames = [
        eventFrame('messageStart', { role: 'assistant' }),
        // Multi-byte text, a NUL (the prelude delimiter is NULs), and frames far above the
        // runtime's stream high-water mark, so its write() backpressure and 'drain' are used.
        ...['ü', '\u0000'.repeat(8), ...Array.from({ length: 4 }, (_, i) => String(i).repeat(256 * 1024))].map((text) =>
          eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text } }),
        ),
        eventFrame('messageStop', { stopReason: 'end_turn' }),
      ];
      const remove = fake.override((req) => (req.modelId === 'exact.bytes-v1:0' ? { ...eventStreamReply(frames), delayMs: 5 } : undefined));
      try {
        const response = await fetch(`${lambda.url}/bedrock/model/exact.bytes-v1:0/converse-stream`, {
          method: 'POST',
          headers: { ...bearer, 'content-type': 'application/json' },
          body: conversation,
        });
        const bytes = await readAll(response);
        assert.equal(response.status, 200, lambda.diagnostics());
        assert.ok(bytes.equals(Buffer.concat(frames)), `received ${bytes.byteLength} bytes, sent ${Buffer.concat(frames).byteLength}`);
      } finally {
        remove();
      }
    });

    test('an upstream reset mid-stream cuts the client stream (an error, never a clean end)', async () => {
      const response = await fetch(`${lambda.url}/bedrock/model/fake.midstream-reset/converse-stream`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: conversation,
      });
      assert.equal(response.status, 200, lambda.diagnostics());
      await assert.rejects(readAll(response), Error, `the body ended cleanly${lambda.diagnostics()}`);
      const exchange = lambda.exchanges.at(-1);
      assert.equal(exchange?.outcome, 'cut', lambda.diagnostics());
      assert.equal(exchange?.end?.kind, 'error-trailer', 'the runtime reported the failure in its error trailers');
      // The environment survives: the next invocation is answered.
      const next = await fetch(`${lambda.url}/health/liveliness`);
      assert.equal(next.status, 200, lambda.diagnostics());
      await next.text();
    });

    test('an empty upstream body → 202 with an empty body, not 502 (the prelude trap of design.md §5)', async () => {
      const remove = fake.override((req) =>
        req.method === 'DELETE' && req.path === '/agents/A1/agentAliases/B1/memories' ? { kind: 'body', status: 202, headers: {}, body: '' } : undefined,
      );
      try {
        const response = await fetch(`${lambda.url}/bedrock/agents/A1/agentAliases/B1/memories`, { method: 'DELETE', headers: bearer });
        const body = await readAll(response);
        assert.equal(response.status, 202, `${body.toString('utf8')}${lambda.diagnostics()}`);
        assert.equal(body.byteLength, 0);
        const exchange = lambda.exchanges.at(-1);
        assert.equal(exchange?.outcome, 'complete');
        assert.equal(JSON.parse(exchange?.prelude ?? 'null')?.statusCode, 202);
        assert.equal(fake.requests.at(-1)?.signature.valid, true);
      } finally {
        remove();
      }
    });

    test('the runtime logged no invocation error but the mid-stream one', () => {
      const invokeErrors = lambda.ric
        .output()
        .split('\n')
        .filter((line) => line.includes('Invoke Error'));
      assert.equal(invokeErrors.length, 1, lambda.diagnostics());
      assert.match(invokeErrors[0]!, /upstream failed mid-stream/);
    });
  });
}

/**
 * The harness itself: with the real runtime, a handler that ends its HttpResponseStream without
 * a write loses the prelude (→ 502), while one empty write keeps it. If this stops holding
 * (a new aws-lambda-ric), the empty-body test above no longer proves what it says.
 */
if (install.ok)
  describe('harness fidelity: the prelude trap of design.md §5 is real under aws-lambda-ric', () => {
    let lambda: LocalLambda;
    let taskRoot: string;

    before(async () => {
      if (!install.ok) return;
      taskRoot = await mkdtemp(join(tmpdir(), 'relay-ric-canary-'));
      await writeFile(join(taskRoot, 'package.json'), '{ "type": "commonjs" }\n');
      await writeFile(
        join(taskRoot, 'index.js'),
        `exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, { statusCode: 202, headers: { 'x-canary': event.rawPath } });
  if (event.rawPath === '/write-empty') stream.write(new Uint8Array(0));
  if (event.rawPath === '/fail-midway') {
    stream.write('partial');
    throw new Error('failed after the body started');
  }
  await new Promise((resolve) => stream.end(resolve));
});
`,
      );
      lambda = await startLambda({ install, taskRoot });
    });

    after(async () => {
      await lambda?.close();
      if (taskRoot) await rm(taskRoot, { recursive: true, force: true });
    });

    test('end() without a write → 502', async () => {
      const response = await fetch(`${lambda.url}/end-only`);
      await response.text();
      assert.equal(response.status, 502, lambda.diagnostics());
      assert.equal(lambda.exchanges.at(-1)?.prelude, undefined);
    });

    test('an empty write() before end() → the status and headers arrive', async () => {
      const response = await fetch(`${lambda.url}/write-empty`);
      assert.equal(await response.text(), '');
      assert.equal(response.status, 202, lambda.diagnostics());
      assert.equal(response.headers.get('x-canary'), '/write-empty');
    });

    test('a handler that throws after the body started → the client connection is cut', async () => {
      const response = await fetch(`${lambda.url}/fail-midway`);
      assert.equal(response.status, 202);
      await assert.rejects(response.text());
      assert.equal(lambda.exchanges.at(-1)?.end?.kind, 'error-trailer', lambda.diagnostics());
    });
  });
