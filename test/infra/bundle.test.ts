/**
 * The real bundle, run the way Lambda runs it: synthesize the app with esbuild bundling (the one
 * bundling synth of the infra tests), take the function's asset from the cloud assembly (not the
 * TypeScript sources), import its handler in a plain `node` process with only the environment the
 * stack sets plus what Lambda itself provides, and invoke it with Function URL payload v2.0 events.
 *
 * `awslambda` is shimmed the way the managed runtime (aws-lambda-ric) implements it: the
 * HttpResponseStream prelude (JSON + 8 NUL bytes) is emitted by the first write() only, so a handler
 * that ends the stream without writing loses its status and headers here, as in Lambda.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { addRelayStack, cdkJsonContext } from '../../lib/app.js';
import { HANDLER_ENTRY } from '../../lib/relay-stack.js';

const SKIP = existsSync(HANDLER_ENTRY) ? false : `lambda/handler.ts does not exist yet, so there is no bundle to run (${HANDLER_ENTRY})`;

/** Runs in a child `node` process, like the Lambda runtime: shim, import, invoke, report bytes. */
const RUNNER = `
import { Writable } from 'node:stream';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

globalThis.awslambda = {
  streamifyResponse(handler) {
    handler[Symbol.for('aws.lambda.runtime.handler.streaming')] = 'response';
    return handler;
  },
  HttpResponseStream: {
    from(underlying, prelude) {
      underlying.setContentType('application/vnd.awslambda.http-integration-response');
      const metadata = JSON.stringify(prelude);
      underlying._onBeforeFirstWrite = (write) => { write(metadata); write(new Uint8Array(8)); };
      return underlying;
    },
  },
};

function responseStream() {
  const chunks = [];
  const stream = new Writable({ write(chunk, encoding, callback) { chunks.push(Buffer.from(chunk, encoding)); callback(); } });
  stream.contentType = undefined;
  stream.setContentType = (type) => { stream.contentType = type; };
  const write = stream.write.bind(stream);
  let first = true;
  stream.write = (chunk, encoding, callback) => {
    if (first) { first = false; stream._onBeforeFirstWrite?.((data) => write(data)); }
    return write(chunk, encoding, callback);
  };
  stream.collected = () => Buffer.concat(chunks);
  return stream;
}

const [taskRoot, handlerSetting, eventsFile, resultsFile] = process.argv.slice(2);
const [moduleName, exportName] = handlerSetting.split('.');
const file = ['.js', '.mjs', '.cjs'].map((ext) => join(taskRoot, moduleName + ext)).find((path) => existsSync(path));
const handler = (await import(pathToFileURL(file).href))[exportName];
if (typeof handler !== 'function') throw new Error('no handler export ' + exportName);
const results = [];
for (const event of JSON.parse(readFileSync(eventsFile, 'utf8'))) {
  const stream = responseStream();
  const finished = new Promise((resolve) => stream.on('finish', resolve));
  const context = {
    awsRequestId: event.requestContext.requestId, functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: '$LATEST', memoryLimitInMB: '1024', getRemainingTimeInMillis: () => 900000,
    callbackWaitsForEmptyEventLoop: true, invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:relay',
    logGroupName: '/aws/lambda/relay', logStreamName: 'test',
  };
  let timer;
  const outcome = await Promise.race([
    Promise.all([handler(event, stream, context), finished]).then(() => 'finished'),
    new Promise((resolve) => { timer = setTimeout(() => resolve('timed out'), 15000); }),
  ]).catch((error) => 'threw: ' + (error?.stack ?? error));
  clearTimeout(timer);
  results.push({ outcome, contentType: stream.contentType, raw: stream.collected().toString('base64') });
}
// stdout is the function's log stream (Powertools writes logs and EMF metrics there), so the
// results go to a file.
writeFileSync(resultsFile, JSON.stringify(results));
process.exit(0);
`;

interface Invocation {
  readonly outcome: string;
  readonly contentType?: string;
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Splits what the handler wrote into the prelude (JSON, then 8 NUL bytes) and the body. */
function parseStreamed(result: { outcome: string; contentType?: string; raw: string }): Invocation {
  const raw = Buffer.from(result.raw, 'base64');
  const separator = raw.indexOf(Buffer.alloc(8));
  assert.ok(
    separator > 0,
    `the response starts with a JSON prelude and 8 NUL bytes (outcome: ${result.outcome}; bytes: ${JSON.stringify(raw.toString('utf8').slice(0, 200))})`,
  );
  const prelude = JSON.parse(raw.subarray(0, separator).toString('utf8')) as { statusCode: number; headers?: Record<string, string> };
  return {
    outcome: result.outcome,
    contentType: result.contentType,
    statusCode: prelude.statusCode,
    headers: Object.fromEntries(Object.entries(prelude.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    body: raw.subarray(separator + 8).toString('utf8'),
  };
}

/** A Function URL payload v2.0 event, as Lambda builds it. */
function functionUrlEvent(method: string, rawPath: string, headers: Record<string, string>, body?: string) {
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: '',
    headers: { host: 'abcdefghij.lambda-url.us-east-1.on.aws', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443', ...headers },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abcdefghij',
      domainName: 'abcdefghij.lambda-url.us-east-1.on.aws',
      domainPrefix: 'abcdefghij',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: headers['user-agent'] ?? 'test' },
      requestId: `req-${Math.random().toString(16).slice(2)}`,
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body === undefined ? {} : { body, isBase64Encoded: false }),
  };
}

/** Records every request an AWS service fake receives; answers like the service would. */
class FakeService {
  readonly requests: { method?: string; url?: string; target?: string }[] = [];
  private readonly server: Server;
  constructor(answer: (request: IncomingMessage, body: string) => { status: number; body: string }) {
    this.server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        this.requests.push({ method: request.method, url: request.url, target: request.headers['x-amz-target'] as string | undefined });
        const { status, body: text } = answer(request, body);
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(text);
      });
    });
  }
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Runs `events` through the handler in `taskRoot` in a fresh `node` process, as Lambda would. */
async function runInLambdaLikeProcess(taskRoot: string, handlerSetting: string, events: unknown[], env: Record<string, string>) {
  const work = mkdtempSync(join(tmpdir(), 'relay-bundle-run-'));
  try {
    const runner = join(work, 'runner.mjs');
    const eventsFile = join(work, 'events.json');
    const resultsFile = join(work, 'results.json');
    writeFileSync(runner, RUNNER);
    writeFileSync(eventsFile, JSON.stringify(events));
    const { stdout } = await promisify(execFile)(process.execPath, [runner, taskRoot, handlerSetting, eventsFile, resultsFile], {
      env: { PATH: process.env.PATH ?? '', ...env },
      cwd: taskRoot,
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as { outcome: string; contentType?: string; raw: string }[];
    return { results, logs: stdout };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

describe('the awslambda shim', () => {
  it('behaves like the managed runtime: the prelude goes out with the first write(), and end(body) alone loses it', async () => {
    const taskRoot = mkdtempSync(join(tmpdir(), 'relay-shim-'));
    try {
      writeFileSync(
        join(taskRoot, 'index.mjs'),
        `export const handler = awslambda.streamifyResponse(async (event, stream) => {
          const out = awslambda.HttpResponseStream.from(stream, { statusCode: 418, headers: { 'x-test': 'yes' } });
          if (event.rawPath === '/write') { out.write('hello'); out.end(); } else { out.end('hello'); }
        });`,
      );
      const {
        results: [written, endedOnly],
      } = await runInLambdaLikeProcess(taskRoot, 'index.handler', [functionUrlEvent('GET', '/write', {}), functionUrlEvent('GET', '/end-only', {})], {});
      const parsed = parseStreamed(written!);
      assert.deepEqual([parsed.statusCode, parsed.headers['x-test'], parsed.body], [418, 'yes', 'hello']);
      assert.equal(Buffer.from(endedOnly!.raw, 'base64').toString('utf8'), 'hello', 'no prelude: Lambda would answer 502');
    } finally {
      rmSync(taskRoot, { recursive: true, force: true });
    }
  });
});

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:BedrockRelay-test-MasterKey-AbCdEf';
const MASTER_KEY = 'Z'.repeat(48);

describe('the synthesized Lambda bundle', { skip: SKIP }, () => {
  let outdir = '';
  let assetDir = '';
  let handlerSetting = '';
  let stackVariables: Record<string, unknown> = {};
  const secretsManager = new FakeService((request) =>
    request.headers['x-amz-target'] === 'secretsmanager.GetSecretValue'
      ? { status: 200, body: JSON.stringify({ ARN: SECRET_ARN, Name: 'BedrockRelay-test-MasterKey', SecretString: MASTER_KEY, VersionId: 'v1' }) }
      : { status: 400, body: JSON.stringify({ __type: 'InvalidRequestException', message: 'unexpected call' }) },
  );
  const dynamodb = new FakeService(() => ({
    status: 400,
    body: JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException', message: 'no table in this test' }),
  }));
  const bedrock = new FakeService(() => ({ status: 500, body: '{"message":"the relay must not call Bedrock in this test"}' }));

  before(async () => {
    outdir = mkdtempSync(join(tmpdir(), 'relay-cdk-out-'));
    const app = new App({ outdir, context: cdkJsonContext() });
    const stack = addRelayStack(app, { env: {}, nag: false });
    const assembly = app.synth();
    const artifact = assembly.getStackByName(stack.stackName);
    const resources = artifact.template.Resources as Record<string, { Type: string; Properties: Record<string, any> }>;
    const fn = Object.values(resources).find((resource) => resource.Type === 'AWS::Lambda::Function')!;
    handlerSetting = fn.Properties.Handler as string;
    stackVariables = fn.Properties.Environment.Variables as Record<string, unknown>;
    // The asset the function's S3 key points at, as the deploy would upload it.
    const objectKey = fn.Properties.Code.S3Key as string;
    const manifest = JSON.parse(readFileSync(join(outdir, `${artifact.id}.assets.json`), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging?: string }; destinations: Record<string, { objectKey: string }> }>;
    };
    const asset = Object.values(manifest.files).find((file) => Object.values(file.destinations).some((d) => d.objectKey === objectKey));
    assert.ok(asset, `the assembly has the asset for ${objectKey}`);
    assert.equal(asset.source.packaging, 'zip');
    assetDir = join(outdir, asset.source.path);
  });

  after(async () => {
    await Promise.all([secretsManager.stop(), dynamodb.stop(), bedrock.stop()].map((p) => p.catch(() => undefined)));
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  it('is one minified ESM file with a source map, the AWS SDK and Powertools bundled in', (t) => {
    assert.equal(handlerSetting, 'index.handler');
    const code = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
    assert.ok(existsSync(join(assetDir, 'index.mjs.map')), 'index.mjs.map');
    assert.match(code, /\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
    assert.ok(code.startsWith("import { createRequire as __relayCreateRequire } from 'node:module';"), 'the createRequire banner comes first');
    // A dependency left external would appear as a module specifier: `from"@aws-sdk/…"` or
    // `import"…"` (static), or a call `x("@aws-sdk/…")` (esbuild's __require, minified). Error
    // messages that merely mention `[require("@aws-sdk/…")]` do not count. The run below also proves
    // it: the bundle is loaded from a temporary directory with no node_modules above it.
    const external = /(?:\b(?:from|import)["']|(?<![[\w$.])[\w$]+\(["'])(?:@aws-sdk|@smithy|@aws-lambda-powertools)\/[\w./-]+["']/.exec(code);
    assert.equal(external?.[0], undefined, 'no SDK package is left external');
    assert.match(code, /GetSecretValue/, 'the Secrets Manager client is inside');
    const lines = code.split('\n').length;
    assert.ok(code.length / lines > 1000, `minified (${lines} lines for ${code.length} characters)`);
    t.diagnostic(
      `bundle: index.mjs ${(statSync(join(assetDir, 'index.mjs')).size / 1024).toFixed(0)} KiB, index.mjs.map ${(statSync(join(assetDir, 'index.mjs.map')).size / 1024).toFixed(0)} KiB`,
    );
  });

  it('answers Function URL events as Lambda would run it', async () => {
    const endpoints = {
      secrets: await secretsManager.start(),
      dynamodb: await dynamodb.start(),
      bedrock: await bedrock.start(),
    };
    // The stack's variables, with CloudFormation references as they resolve at deploy time.
    const resolved: Record<string, string> = {};
    for (const [name, value] of Object.entries(stackVariables)) {
      if (typeof value === 'string') resolved[name] = value;
      else if (name === 'RELAY_MASTER_KEY_SECRET_ARN') resolved[name] = SECRET_ARN;
      else if (name === 'RELAY_SIGV4_SECRET_ARN') resolved[name] = SECRET_ARN.replace('MasterKey', 'SigV4SigningSecret');
      else if (name === 'RELAY_KEYS_TABLE') resolved[name] = 'BedrockRelay-test-KeysTable-1A2B3C';
      else if (name === 'RELAY_BEDROCK_REGION') resolved[name] = 'us-east-1';
      else assert.fail(`no deploy-time value for ${name}: ${JSON.stringify(value)}`);
    }
    const env: Record<string, string> = {
      // What Lambda itself sets for every function.
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_LAMBDA_FUNCTION_NAME: 'BedrockRelay-test-RelayFunction',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      // What Lambda sets for the stack's LoggingConfig (JSON format, application level INFO).
      AWS_LAMBDA_LOG_FORMAT: 'JSON',
      AWS_LAMBDA_LOG_LEVEL: 'INFO',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      LAMBDA_TASK_ROOT: assetDir,
      AWS_ACCESS_KEY_ID: 'ASIATESTTESTTESTTEST',
      AWS_SECRET_ACCESS_KEY: 'test-secret-access-key',
      AWS_SESSION_TOKEN: 'test-session-token',
      ...resolved,
      // Everything the SDK or the relay would call lands on loopback fakes.
      AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secrets,
      AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: endpoints.bedrock,
      AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME: endpoints.bedrock,
      AWS_ENDPOINT_URL_BEDROCK: endpoints.bedrock,
      AWS_ENDPOINT_URL_BEDROCK_MANTLE: endpoints.bedrock,
    };
    const { results, logs } = await runInLambdaLikeProcess(
      assetDir,
      handlerSetting,
      [
        functionUrlEvent('GET', '/health/liveliness', { 'user-agent': 'curl/8.7.1', accept: '*/*' }),
        functionUrlEvent(
          'POST',
          '/bedrock/model/x/converse',
          { 'user-agent': 'curl/8.7.1', 'content-type': 'application/json' },
          JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'hello' }] }] }),
        ),
      ],
      env,
    );
    const [liveliness, unauthenticated] = results.map(parseStreamed);

    assert.equal(liveliness!.outcome, 'finished');
    assert.equal(liveliness!.contentType, 'application/vnd.awslambda.http-integration-response');
    assert.equal(liveliness!.statusCode, 200, `liveliness body: ${liveliness!.body}`);

    assert.equal(unauthenticated!.outcome, 'finished');
    assert.equal(unauthenticated!.statusCode, 401, `body: ${unauthenticated!.body}`);
    assert.match(unauthenticated!.headers['content-type'] ?? '', /json/);
    assert.ok(unauthenticated!.headers['x-amzn-errortype'], 'a Bedrock-shaped error names its type in x-amzn-errortype');
    assert.equal(typeof (JSON.parse(unauthenticated!.body) as { message?: unknown }).message, 'string');
    assert.equal(bedrock.requests.length, 0, 'nothing went upstream');

    // The relay call was metered in the shape the dashboard and alarms read (lib/operations.ts).
    const emf = logs
      .split('\n')
      .filter((line) => line.includes('"CloudWatchMetrics"'))
      .map((line) => JSON.parse(line) as { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] } });
    const directives = emf.flatMap((record) => record._aws.CloudWatchMetrics).filter((d) => d.Namespace === 'BedrockRelay');
    assert.equal(directives.length, 1, `one EMF record for the one relayed call (logs: ${logs.slice(0, 500)})`);
    const dimensionSets = directives[0]!.Dimensions.map((set) => [...set].sort().join(','));
    // Per-key dimensions are opt-in (RELAY_METRICS_PER_KEY), so the deployed default bills none.
    assert.deepEqual(dimensionSets.sort(), ['model,service', 'service']);
    const names = directives[0]!.Metrics.map((metric) => metric.Name);
    for (const name of ['Requests', 'ClientErrors', 'RelayErrors', 'UpstreamErrors', 'UpstreamThrottles', 'Latency'])
      assert.ok(names.includes(name), `EMF has ${name}`);
  });
});
